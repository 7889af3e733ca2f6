package cycle

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"time"

	"publisher/internal/content"
)

// The build index is read and written by every build that is not skipped, and
// at 10,000 pieces it holds 5-8 MB of strings. encoding/gob took 0.19 s of CPU to
// write it and 0.10 s to read it (a profile of an incremental build of 10,000
// pieces, docs/benchmarks.md): more than the rest of such a build. The format
// below is a run of length-prefixed strings and varints, written in one pass
// and read back as substrings of one string: a few milliseconds each way.
// TestIndexRoundTrip fails when content.FileResult or content.Piece gains a
// field this codec does not carry.

// indexMagic starts the file; its last byte is indexVersion. The file ends
// with the CRC-32C of what comes before: a file a crash left half written is
// refused, whatever it holds.
const indexMagic = "publisher build index\n"

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errIndex is any index file that cannot be read back whole.
var errIndex = errors.New("build index: malformed")

// indexWriter appends to a buffer it hands to out, with the checksum taken,
// whenever it holds a chunk: the index never sits whole in memory.
type indexWriter struct {
	b   []byte
	out io.Writer
	crc uint32
	err error
}

const indexChunk = 64 << 10

func (w *indexWriter) flush() {
	w.crc = crc32.Update(w.crc, crcTable, w.b)
	if w.err == nil {
		_, w.err = w.out.Write(w.b)
	}
	w.b = w.b[:0]
}

func (w *indexWriter) uint(n uint64) { w.b = binary.AppendUvarint(w.b, n) }
func (w *indexWriter) int(n int64)   { w.b = binary.AppendVarint(w.b, n) }
func (w *indexWriter) str(s string) {
	w.uint(uint64(len(s)))
	w.b = append(w.b, s...)
	if len(w.b) >= indexChunk {
		w.flush()
	}
}
func (w *indexWriter) bool(v bool) {
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}

func (w *indexWriter) time(t time.Time) {
	data, err := t.MarshalBinary()
	if err != nil {
		data = nil // a time outside MarshalBinary's range reads back as zero
	}
	w.str(string(data))
}

// raw writes bytes an indexWriter wrote before.
func (w *indexWriter) raw(s string) {
	w.b = append(w.b, s...)
	if len(w.b) >= indexChunk {
		w.flush()
	}
}

func (w *indexWriter) strs(list []string) {
	w.uint(uint64(len(list)))
	for _, s := range list {
		w.str(s)
	}
}

// encodeIndex writes idx in the index format to out, the maps in sorted order
// so the same index gives the same bytes. The output's snapshot goes last: a
// build works it out while the rest is encoded, and hands it over through
// output (nil: idx.Output); an error from output is encodeIndex's.
func encodeIndex(out io.Writer, idx *buildIndex, output func() (string, error)) error {
	w := &indexWriter{b: make([]byte, 0, 2*indexChunk), out: out}
	w.b = append(w.b, indexMagic...)
	w.b = append(w.b, byte(idx.Version))
	w.str(idx.Global)
	w.uint(uint64(idx.Seen.Count))
	w.time(idx.Seen.Newest)
	// The output's paths are sorted while the pieces are written.
	sortedPaths := make(chan []string, 1)
	go func() {
		paths := make([]string, 0, len(idx.Files))
		for p := range idx.Files {
			paths = append(paths, p)
		}
		slices.Sort(paths)
		sortedPaths <- paths
	}()
	files := idx.order
	if len(files) != len(idx.Content) || !slices.IsSorted(files) {
		files = make([]string, 0, len(idx.Content))
		for f := range idx.Content {
			files = append(files, f)
		}
		slices.Sort(files)
	}
	w.uint(uint64(len(files)))
	for _, f := range files {
		w.str(f)
		res := idx.Content[f]
		if res == nil {
			<-sortedPaths
			return fmt.Errorf("build index: %s listed but not recorded", f)
		}
		if raw, ok := idx.encoded[res]; ok {
			w.raw(raw)
		} else {
			writeResult(w, res)
		}
		w.time(res.Piece.FirstSeen)
	}
	paths := <-sortedPaths
	w.uint(uint64(len(paths)))
	for _, p := range paths {
		w.str(p)
		w.str(idx.Files[p])
	}
	snapshot := idx.Output
	if output != nil {
		var err error
		if snapshot, err = output(); err != nil {
			return err
		}
	}
	w.str(snapshot)
	w.flush()
	if w.err == nil {
		_, w.err = out.Write(binary.LittleEndian.AppendUint32(nil, w.crc))
	}
	return w.err
}

// writeResult writes r but its piece's first-seen time, which a build may
// change on a result it takes unchanged (encodeIndex writes it after).
func writeResult(w *indexWriter, r *content.FileResult) {
	w.str(r.Sig)
	w.bool(r.OK)
	w.str(r.Sidecar)
	w.strs(r.Refs)
	w.uint(uint64(len(r.Problems)))
	for _, p := range r.Problems {
		w.str(p.File)
		w.int(int64(p.Line))
		w.int(int64(p.Severity))
		w.str(p.Message)
	}
	p := &r.Piece
	w.str(p.ID)
	w.str(p.Slug)
	w.str(p.Title)
	w.bool(p.TitleDerived)
	w.uint(uint64(len(p.Authors)))
	for _, a := range p.Authors {
		w.str(a.Name)
		w.str(a.Role)
		w.str(a.Email)
		w.str(a.URL)
	}
	w.time(p.Date)
	w.time(p.Updated)
	w.str(p.Summary)
	w.strs(p.Topics)
	w.str(p.CanonicalURL)
	w.str(p.Source.Name)
	w.str(p.Source.URL)
	w.str(p.Image)
	w.bool(p.Draft)
	w.str(p.HTML)
	w.str(p.LinksBase)
	w.str(p.Text)
	w.str(p.Lede)
	w.uint(uint64(len(p.Assets)))
	for _, a := range p.Assets {
		w.str(a.Src)
		w.str(a.Dst)
	}
	w.str(p.File)
	w.str(p.Hash)
}

// indexReader reads the index format from one string; the strings it returns
// are parts of it (so the whole index stays in memory while any is used: a
// few megabytes, instead of a quarter of a million small allocations).
type indexReader struct {
	s   string
	err error
}

// uint and int read what binary.AppendUvarint and AppendVarint wrote.
func (r *indexReader) uint() uint64 {
	var n uint64
	for i := 0; r.err == nil && i < len(r.s) && i < binary.MaxVarintLen64; i++ {
		c := r.s[i]
		n |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			r.s = r.s[i+1:]
			return n
		}
	}
	r.err = errIndex
	return 0
}

func (r *indexReader) int() int64 {
	u := r.uint()
	n := int64(u >> 1)
	if u&1 != 0 {
		n = ^n
	}
	return n
}

func (r *indexReader) str() string {
	n := r.uint()
	if r.err != nil || n > uint64(len(r.s)) {
		r.err = errIndex
		return ""
	}
	s := r.s[:n]
	r.s = r.s[n:]
	return s
}

func (r *indexReader) bool() bool {
	if r.err != nil || len(r.s) == 0 || r.s[0] > 1 {
		r.err = errIndex
		return false
	}
	v := r.s[0] == 1
	r.s = r.s[1:]
	return v
}

func (r *indexReader) time() time.Time {
	var t time.Time
	if data := r.str(); data != "" && r.err == nil {
		if err := t.UnmarshalBinary([]byte(data)); err != nil {
			r.err = errIndex
		}
	}
	return t
}

// count reads a length, which cannot be more than the bytes left: a
// malformed file must not make the reader allocate without bound.
func (r *indexReader) count() int {
	n := r.uint()
	if n > uint64(len(r.s)) {
		r.err = errIndex
		return 0
	}
	return int(n)
}

func (r *indexReader) strs() []string {
	n := r.count()
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = r.str()
	}
	return out
}

// checksum is the CRC-32C of s, taken through a small buffer rather than a
// copy of the whole string.
func checksum(s string) uint32 {
	var buf [32 << 10]byte
	var crc uint32
	for len(s) > 0 {
		n := copy(buf[:], s)
		crc = crc32.Update(crc, crcTable, buf[:n])
		s = s[n:]
	}
	return crc
}

// decodeIndex reads what encodeIndex wrote.
func decodeIndex(data string) (*buildIndex, error) {
	if len(data) <= len(indexMagic)+4 || data[:len(indexMagic)] != indexMagic {
		return nil, errIndex
	}
	body, sum := data[:len(data)-4], data[len(data)-4:]
	if checksum(body) != binary.LittleEndian.Uint32([]byte(sum)) {
		return nil, errIndex
	}
	data = body
	r := &indexReader{s: data[len(indexMagic)+1:]}
	idx := &buildIndex{Version: int(data[len(indexMagic)])}
	if idx.Version != indexVersion {
		return nil, fmt.Errorf("build index: version %d, want %d", idx.Version, indexVersion)
	}
	idx.Global = r.str()
	idx.Seen.Count = int(r.uint())
	idx.Seen.Newest = r.time()
	n := r.count()
	// Every result takes more than minResultBytes, so a count that claims
	// more results than the bytes left can hold is refused before the
	// results, all in one allocation, are made.
	if n > len(r.s)/minResultBytes {
		return nil, errIndex
	}
	idx.Content = make(map[string]*content.FileResult, n)
	idx.encoded = make(map[*content.FileResult]string, n)
	idx.order = make([]string, n)
	results := make([]content.FileResult, n)
	for i := range n {
		f := r.str()
		idx.order[i] = f
		start := r.s
		readResult(r, &results[i])
		idx.encoded[&results[i]] = start[:len(start)-len(r.s)]
		results[i].Piece.FirstSeen = r.time()
		idx.Content[f] = &results[i]
		if r.err != nil {
			return nil, r.err
		}
	}
	n = r.count()
	idx.Files = make(map[string]string, n)
	for range n {
		p := r.str()
		idx.Files[p] = r.str()
	}
	idx.Output = r.str()
	if r.err == nil && r.s != "" {
		r.err = errIndex
	}
	if r.err != nil {
		return nil, r.err
	}
	return idx, nil
}

// minResultBytes is fewer bytes than the smallest result writeResult writes
// (with its file name): a byte or more for each of its 29 fields.
const minResultBytes = 24

// readResult reads what writeResult wrote.
func readResult(r *indexReader, res *content.FileResult) {
	res.Sig = r.str()
	res.OK = r.bool()
	res.Sidecar = r.str()
	res.Refs = r.strs()
	if n := r.count(); n > 0 {
		res.Problems = make([]content.Problem, n)
		for i := range res.Problems {
			pr := &res.Problems[i]
			pr.File = r.str()
			pr.Line = int(r.int())
			pr.Severity = content.Severity(r.int())
			pr.Message = r.str()
		}
	}
	p := &res.Piece
	p.ID = r.str()
	p.Slug = r.str()
	p.Title = r.str()
	p.TitleDerived = r.bool()
	if n := r.count(); n > 0 {
		p.Authors = make([]content.Author, n)
		for i := range p.Authors {
			a := &p.Authors[i]
			a.Name, a.Role, a.Email, a.URL = r.str(), r.str(), r.str(), r.str()
		}
	}
	p.Date = r.time()
	p.Updated = r.time()
	p.Summary = r.str()
	p.Topics = r.strs()
	p.CanonicalURL = r.str()
	p.Source.Name = r.str()
	p.Source.URL = r.str()
	p.Image = r.str()
	p.Draft = r.bool()
	p.HTML = r.str()
	p.LinksBase = r.str()
	p.Text = r.str()
	p.Lede = r.str()
	if n := r.count(); n > 0 {
		p.Assets = make([]content.Asset, n)
		for i := range p.Assets {
			p.Assets[i].Src, p.Assets[i].Dst = r.str(), r.str()
		}
	}
	p.File = r.str()
	p.Hash = r.str()
}
