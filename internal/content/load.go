package content

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"publisher/internal/osfile"
)

// DefaultMaxBytes is the size limit for one piece when Options.MaxBytes is 0.
const DefaultMaxBytes = 2 << 20

// Options tune Load.
type Options struct {
	// MaxBytes is the largest piece (or sidecar) file accepted; 0 means DefaultMaxBytes.
	MaxBytes int64
	// SkipText leaves Piece.Text of plain-text pieces empty, for a caller that
	// never reads it (feeds and archive pages do not): it is a third of what
	// such a piece holds, and PlainText works it out again when asked.
	SkipText bool
	// LinkBase, when set, gives the URL a piece's page is read at (from its
	// slug): each body's relative links and images are made absolute against it
	// as the piece is loaded, in the parse that loading needs anyway, so its
	// plain text carries them absolute too. Piece.LinksBase records it, and
	// PieceHTML then has nothing left to do for that URL.
	LinkBase func(slug string) *url.URL
	// Files, when not nil, are the files under the folder, slash-separated and
	// relative to it, from a walk the caller made anyway (leaving out what is
	// Hidden, as Load does). Load then does not walk the folder again.
	Files []string
	// MaxAssetBytes is the largest file beside a piece that is published with
	// it (Piece.Assets); 0 means DefaultMaxAssetBytes.
	MaxAssetBytes int64
	// Cache, when set, spares reading the files unchanged since the last Load.
	Cache *Cache
}

// Load reads every piece under dir (subfolders included): .md files (Markdown
// with YAML front matter) and .txt files (the newsroom plain-text format), each
// with an optional <name>.yaml sidecar whose keys win. Files are read in sorted
// path order, so when two pieces claim one slug the first path wins.
//
// Every problem with a file is returned as a Problem and the other pieces still
// load; the error is only for a folder that cannot be read or a cancelled ctx.
// Drafts and pieces with errors are left out. Pieces come sorted by ID.
func Load(ctx context.Context, dir string, opts Options) ([]Piece, []Problem, error) {
	maxBytes := opts.MaxBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	var (
		files    []string
		problems []Problem
		err      error
	)
	if opts.Files != nil {
		files = make([]string, 0, len(opts.Files))
		for _, f := range opts.Files {
			if !isHousekeeping(path.Base(f)) {
				files = append(files, f)
			}
		}
		if !sort.StringsAreSorted(files) {
			sort.Strings(files)
		}
	} else if files, problems, err = listFiles(dir); err != nil {
		return nil, nil, err
	}

	var pieceFiles, assetFiles []string
	sidecars := map[string]bool{}
	for _, f := range files {
		switch ext := strings.ToLower(path.Ext(f)); {
		case ext == ".md", ext == ".txt":
			pieceFiles = append(pieceFiles, f)
		case ext == ".yaml":
			sidecars[f] = false
		case ext == ".yml":
			problems = append(problems, Problem{File: f, Severity: Warning, Message: "ignored: a sidecar must end in .yaml"})
		case IsAsset(f):
			assetFiles = append(assetFiles, f)
		default:
			problems = append(problems, Problem{File: f, Severity: Warning, Message: "ignored: not a piece (.md or .txt), a sidecar (.yaml) or a file a piece can link to (an image, a PDF…)"})
		}
	}
	if opts.MaxAssetBytes <= 0 {
		opts.MaxAssetBytes = DefaultMaxAssetBytes
	}
	loader := &stubLoader{dir: dir, maxBytes: maxBytes, opts: opts}
	if opts.Cache != nil {
		opts.Cache.Next = make(map[string]*FileResult, len(pieceFiles))
		opts.Cache.NextFiles = pieceFiles
	}

	// Parsing is most of the work and each file stands alone: spread it over the
	// cores, then take the results in path order, so which file wins a slug stays
	// the same.
	results := make([]parsed, len(pieceFiles))
	// Each worker takes the next file by counter: handing 10,000 files over
	// a channel cost more than checking that they are unchanged.
	var (
		next      atomic.Int64
		cancelled atomic.Bool
		wg        sync.WaitGroup
	)
	for range min(runtime.GOMAXPROCS(0), len(pieceFiles), 8) {
		wg.Go(func() {
			var ps *parser // made when a file must be read
			var sigBuf []byte
			for {
				i := int(next.Add(1)) - 1
				if i >= len(pieceFiles) {
					return
				}
				if i%64 == 0 && ctx.Err() != nil {
					cancelled.Store(true)
					return
				}
				f := pieceFiles[i]
				sidecar := ""
				// The name is put together on the stack: most files have no
				// sidecar, and the name is only kept for those that do.
				var nameBuf [256]byte
				if sc := appendSidecarName(nameBuf[:0], f); hasKey(sidecars, string(sc)) {
					sidecar = string(sc)
				}
				if c := opts.Cache; c != nil {
					if prev := c.Prev[f]; prev != nil && prev.Sidecar == sidecar {
						if sig := c.sigHex(&sigBuf, f, sidecar, prev.Refs); prev.Sig == string(sig[:]) {
							prev.Reused = true
							// The piece is the Cache entry's own, not a copy: 10,000 of them
							// were a quarter of what a cached Load allocated.
							results[i] = parsed{piece: &prev.Piece, ok: prev.OK, problems: prev.Problems, sidecar: prev.Sidecar, refs: prev.Refs, reused: prev}
							prev.Piece.body = loader.body(&prev.Piece, sidecar != "")
							continue
						}
					}
				}
				if ps == nil {
					ps = newParser()
					ps.linkBase = opts.LinkBase
				}
				results[i] = ps.parseFileSafely(dir, f, sidecar != "", maxBytes, opts.MaxAssetBytes)
				if opts.SkipText {
					results[i].piece.Text = "" // plain-text pieces have it anyway
				}
				if c := opts.Cache; c != nil {
					r := &results[i]
					r.sig = c.sig(&sigBuf, f, r.sidecar, r.refs)
					r.entry = r.cacheEntry()
				}
			}
		})
	}
	wg.Wait()
	if cancelled.Load() {
		return nil, nil, fmt.Errorf("load %s: %w", dir, ctx.Err())
	}

	// The pieces are gathered as indexes in results and copied out once, in
	// ID order: a Piece is some 400 bytes, and appending and sorting 10,000
	// of them moved more memory than the rest of a cached Load.
	var chosen []int
	slugOwner := make(map[string]string, len(pieceFiles))
	linked := map[string]bool{}
	for i, f := range pieceFiles {
		r := &results[i]
		if c := opts.Cache; c != nil {
			if r.reused != nil {
				r.entry = r.reused
			}
			c.Next[f] = r.entry
		}
		problems = append(problems, r.problems...)
		if r.sidecar != "" {
			sidecars[r.sidecar] = true
		}
		if !r.ok {
			continue
		}
		p := r.piece
		if earlier, taken := slugOwner[p.Slug]; taken {
			problems = append(problems, Problem{File: f, Severity: Error,
				Message: fmt.Sprintf("duplicate slug %q: already used by %s, which wins", p.Slug, earlier)})
			continue
		}
		slugOwner[p.Slug] = f
		chosen = append(chosen, i)
		for _, a := range p.Assets {
			linked[a.Src] = true
		}
	}
	for _, a := range assetFiles {
		if !linked[a] {
			problems = append(problems, Problem{File: a, Severity: Warning, Message: "not published: no piece links to it"})
		}
	}
	for _, sc := range sortedKeys(sidecars) {
		if !sidecars[sc] {
			problems = append(problems, Problem{File: sc, Severity: Warning,
				Message: "sidecar with no piece: no .md or .txt file of the same name beside it"})
		}
	}
	if !sort.SliceIsSorted(chosen, func(i, j int) bool { return results[chosen[i]].piece.ID < results[chosen[j]].piece.ID }) {
		sort.SliceStable(chosen, func(i, j int) bool { return results[chosen[i]].piece.ID < results[chosen[j]].piece.ID })
	}
	pieces := make([]Piece, len(chosen))
	for k, i := range chosen {
		pieces[k] = *results[i].piece
		pieces[k].cached = results[i].entry
	}
	sort.SliceStable(problems, func(i, j int) bool { return problems[i].File < problems[j].File })
	return pieces, problems, nil
}

// parsed is what became of one piece file.
type parsed struct {
	piece    *Piece
	ok       bool // a publishable piece: no error, not a draft
	problems []Problem
	sidecar  string      // the sidecar this file took, if any
	refs     []string    // the files in its folder it links to (FileResult.Refs)
	reused   *FileResult // the Cache's entry it was taken from
	entry    *FileResult // the Cache's entry for it now (reused or new)
	sig      string      // FileResult.Sig (with a Cache)
}

// cacheEntry is the Cache's entry for a file just parsed: made by the worker
// that parsed it, as its teaser takes a while.
func (r *parsed) cacheEntry() *FileResult {
	kept := *r.piece
	kept.HTML, kept.Text, kept.body = "", "", nil
	// Of the lede only its teaser is ever shown (see Teaser), and none of it
	// when there is a summary; a cached piece carries that much, as the Cache
	// is read on every build.
	kept.Lede = ""
	if kept.Summary == "" {
		kept.Lede = Teaser(&Piece{Lede: r.piece.Lede})
	}
	return &FileResult{
		Sig: r.sig, Piece: kept, OK: r.ok, Problems: r.problems,
		Sidecar: r.sidecar, Refs: r.refs,
	}
}

// parseFile reads and parses one piece file and, when hasSidecar, its sidecar;
// and checks the files it links to.
func (ps *parser) parseFile(dir, f string, hasSidecar bool, maxBytes, maxAssetBytes int64) parsed {
	r := parsed{piece: &Piece{}}
	// The bytes read are not kept past this call (every string of a piece is
	// its own copy), so each worker reads every file into the same buffers.
	data, prob := readLimited(&ps.fileBuf, dir, f, maxBytes)
	if prob != nil {
		r.problems = []Problem{*prob}
		return r
	}
	var sidecar []byte
	if sc := sidecarName(f); hasSidecar {
		r.sidecar = sc
		if sidecar, prob = readLimited(&ps.sidecarBuf, dir, sc, maxBytes); prob != nil {
			r.problems = []Problem{*prob, {File: f, Severity: Error, Message: fmt.Sprintf("not published: its sidecar %s cannot be used", sc)}}
			return r
		}
		if sidecar == nil {
			sidecar = []byte{} // an empty sidecar is still a sidecar
		}
	}
	ps.refs = ps.refs[:0]
	if strings.EqualFold(path.Ext(f), ".md") {
		*r.piece, r.problems = ps.parseMarkdown(f, data, sidecar)
	} else {
		*r.piece, r.problems = ParsePlainText(f, data, sidecar)
		// A plain-text body is paragraphs of escaped text: no link to resolve.
		if base := ps.base(r.piece.Slug); base != nil {
			r.piece.LinksBase = base.String()
		}
	}
	if r.piece.Image != "" {
		ps.refs = appendRef(ps.refs, r.piece.Image)
	}
	if !hasError(r.problems) && len(ps.refs) > 0 {
		var probs []Problem
		r.piece.Assets, probs = checkAssets(dir, f, ps.refs, maxAssetBytes)
		r.problems = append(r.problems, probs...)
		for _, ref := range ps.refs {
			if dst := path.Clean(ref); dst != ".." && !strings.HasPrefix(dst, "../") {
				r.refs = append(r.refs, path.Join(path.Dir(f), dst))
			}
		}
	}
	r.ok = !hasError(r.problems) && !r.piece.Draft
	r.piece.compact(&ps.keep)
	return r
}

// compact gives the piece's strings storage of their own, in keep. Every piece
// is kept for the whole run: a lede or a name cut from the file's text would
// keep the whole file alive, and a body built in a growing buffer holds up to
// twice its length.
func (p *Piece) compact(keep *slab) {
	for _, s := range []*string{&p.Title, &p.Summary, &p.CanonicalURL, &p.Image, &p.HTML, &p.Text, &p.Lede,
		&p.Source.Name, &p.Source.URL, &p.LinksBase} {
		*s = keep.copy(*s)
	}
	for i := range p.Authors {
		a := &p.Authors[i]
		a.Name, a.Role, a.Email, a.URL = keep.copy(a.Name), keep.copy(a.Role), keep.copy(a.Email), keep.copy(a.URL)
	}
	for i := range p.Topics {
		p.Topics[i] = keep.copy(p.Topics[i])
	}
}

// slabSize is the size of a slab's blocks.
const slabSize = 256 << 10

// slab copies the strings pieces keep into large blocks, one after another.
// Copied one by one, they would lie among the parse's garbage of the same
// sizes, and the heap would keep tens of megabytes of half-used spans for
// them through the rest of the run (at 10,000 pieces, 42 MB, which the
// collector's soft limit then lacks: it ran every 10-15 MB of the render).
// A block lives as long as any string in it: the pieces of one load live and
// die together.
type slab struct{ b strings.Builder }

// copy returns a copy of s in the slab. strings.Builder never writes to the
// bytes it has already handed out as a string, so the copies stay valid as
// the block fills.
func (sl *slab) copy(s string) string {
	switch {
	case s == "":
		return ""
	case len(s) > slabSize/8:
		return strings.Clone(s)
	case sl.b.Cap()-sl.b.Len() < len(s):
		sl.b = strings.Builder{}
		sl.b.Grow(slabSize)
	}
	start := sl.b.Len()
	sl.b.WriteString(s)
	return sl.b.String()[start:]
}

// listFiles returns the slash-separated paths under dir, sorted. Hidden files
// and folders (".git", ".DS_Store", editor swap files) and README/LICENSE files
// are skipped: they are the desk's housekeeping, not pieces.
func listFiles(dir string) ([]string, []Problem, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("read content folder: %w", err)
	}
	if !info.IsDir() {
		return nil, nil, fmt.Errorf("read content folder %s: not a folder", dir)
	}
	if _, err := os.ReadDir(dir); err != nil {
		return nil, nil, fmt.Errorf("read content folder: %w", err)
	}
	var files []string
	var problems []Problem
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		rel, relErr := filepath.Rel(dir, p)
		if relErr != nil {
			return relErr
		}
		rel = filepath.ToSlash(rel)
		if err != nil {
			// A subfolder that cannot be read is one bad item, not a failed load.
			problems = append(problems, Problem{File: rel, Severity: Error, Message: fmt.Sprintf("cannot read: %v", err)})
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if rel == "." {
			return nil
		}
		if Hidden(d.Name()) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() || isHousekeeping(d.Name()) {
			return nil
		}
		files = append(files, rel)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read content folder %s: %w", dir, err)
	}
	sort.Strings(files)
	return files, problems, nil
}

// Hidden reports whether Load passes over a file or folder of this name, and
// all that is in such a folder: hidden ones (".git", ".DS_Store") and editors'
// backups ("piece.md~").
func Hidden(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~")
}

func isHousekeeping(name string) bool {
	upper := strings.ToUpper(strings.TrimSuffix(name, path.Ext(name)))
	return upper == "README" || upper == "LICENSE" || upper == "LICENCE"
}

// readLimited reads dir/rel into buf unless it is larger than maxBytes, which it learns
// without reading the file: a huge file must not be pulled into memory.
// The bytes returned are buf's: good until buf is used again.
func readLimited(buf *bytes.Buffer, dir, rel string, maxBytes int64) ([]byte, *Problem) {
	fail := func(format string, args ...any) *Problem {
		return &Problem{File: rel, Severity: Error, Message: fmt.Sprintf(format, args...)}
	}
	f, err := osfile.Open(filepath.Join(dir, filepath.FromSlash(rel)), os.O_RDONLY, 0)
	if err != nil {
		return nil, fail("cannot open: %v", unwrapPath(err))
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fail("cannot stat: %v", unwrapPath(err))
	}
	if !info.Mode().IsRegular() {
		return nil, fail("not a regular file")
	}
	if info.Size() > maxBytes {
		return nil, fail("too large: %d bytes, the limit is %d", info.Size(), maxBytes)
	}
	// The file may grow between Stat and Read: read one byte past the limit to
	// know. Room for the size found (and the read that finds the end) saves
	// growing the buffer, and a read call each time.
	buf.Reset()
	buf.Grow(int(info.Size()) + bytes.MinRead)
	if _, err := buf.ReadFrom(io.LimitReader(f, maxBytes+1)); err != nil {
		return nil, fail("cannot read: %v", unwrapPath(err))
	}
	if int64(buf.Len()) > maxBytes {
		return nil, fail("too large: over the limit of %d bytes", maxBytes)
	}
	return buf.Bytes(), nil
}

// unwrapPath drops the absolute path from an *fs.PathError: the Problem already
// names the file, relative to the content folder.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func hasKey(m map[string]bool, k string) bool {
	_, ok := m[k]
	return ok
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// parseFileSafely is parseFile, with a panic (a bug meeting an odd file) turned
// into an error for that file alone: the other pieces load, and a daemon is not
// brought down by one file.
func (ps *parser) parseFileSafely(dir, file string, hasSidecar bool, maxBytes, maxAssetBytes int64) (res parsed) {
	defer func() {
		if r := recover(); r != nil {
			res = parsed{piece: &Piece{}, problems: []Problem{{File: file, Severity: Error, Message: fmt.Sprintf("internal error while reading this piece (please report it): %v", r)}}}
		}
	}()
	return ps.parseFile(dir, file, hasSidecar, maxBytes, maxAssetBytes)
}
