package cycle

import (
	"bytes"
	"encoding/binary"
	"io"
	"reflect"
	"slices"
	"testing"
	"time"

	"publisher/internal/content"
)

// nonZeroFields names the exported fields of v (a struct) left at their zero
// value, looking into nested structs and the first element of slices.
func zeroFields(v reflect.Value, prefix string) []string {
	var out []string
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		fv := v.Field(i)
		name := prefix + f.Name
		switch {
		case fv.IsZero():
			out = append(out, name)
		case fv.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Time]():
			out = append(out, zeroFields(fv, name+".")...)
		case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.Struct:
			out = append(out, zeroFields(fv.Index(0), name+"[0].")...)
		}
	}
	return out
}

// Every field of a cached result survives the index, so that a piece taken
// from the cache renders as the same piece parsed afresh. A field added to
// content.FileResult or content.Piece fails here until the codec carries it.
func TestIndexRoundTrip(t *testing.T) {
	date := time.Date(2026, 11, 3, 9, 0, 0, 0, time.FixedZone("", 2*3600))
	res := content.FileResult{
		Sig: "sig", OK: true, Sidecar: "a.yaml", Refs: []string{"a/chart.svg", "a/missing.pdf"}, Reused: true,
		Problems: []content.Problem{{File: "a.md", Line: 3, Severity: content.Error, Message: "m"}},
		Piece: content.Piece{
			ID: "a", Slug: "a", Title: "Ä title", TitleDerived: true,
			Authors: []content.Author{{Name: "N", Role: "R", Email: "e@x", URL: "https://x/"}},
			Date:    date, Updated: date.Add(time.Hour), Summary: "S", Topics: []string{"T1", "T2"},
			CanonicalURL: "https://c/", Source: content.Source{Name: "Src", URL: "https://s/"}, Image: "i.png",
			Draft: true, HTML: "<p>h</p>", LinksBase: "https://b/", Text: "t", Lede: "l",
			Assets: []content.Asset{{Src: "a/chart.svg", Dst: "chart.svg"}},
			File:   "a.md", Hash: "h", FirstSeen: date.UTC(),
		},
	}
	if zero := zeroFields(reflect.ValueOf(res), ""); len(zero) > 0 {
		t.Fatalf("the fixture leaves fields unset, so the test cannot see them dropped: %q", zero)
	}
	idx := &buildIndex{
		Version: indexVersion, Global: "g", Output: "o",
		Content: map[string]*content.FileResult{"a.md": &res, "b.md": {Sig: "other"}},
		Files:   map[string]string{"index.html": "k1", "pieces/a/index.html": "k2"},
	}
	data := encode(t, idx)
	got, err := decodeIndex(string(data))
	if err != nil {
		t.Fatal(err)
	}
	res.Reused = false // a result read back was not reused yet
	if len(got.encoded) != 2 {
		t.Errorf("%d results kept as read, want 2", len(got.encoded))
	}
	if !slices.Equal(got.order, []string{"a.md", "b.md"}) {
		t.Errorf("read in the order %q, want a.md, b.md", got.order)
	}
	again := *got
	again.encoded, again.order = nil, nil
	if !reflect.DeepEqual(&again, idx) {
		t.Errorf("read back\n%+v\nwant\n%+v", &again, idx)
	}
	// The same index gives the same bytes, whether its results are written
	// as they were read or encoded again.
	if string(encode(t, got)) != string(data) || string(encode(t, &again)) != string(data) {
		t.Error("the same index gives other bytes")
	}
	// The order a build gives is used only when sorted, and must list what
	// is recorded.
	again.order = []string{"b.md", "a.md"}
	if string(encode(t, &again)) != string(data) {
		t.Error("an unsorted order changed the bytes")
	}
	again.order = []string{"a.md", "c.md"}
	if err := encodeIndex(io.Discard, &again, nil); err == nil {
		t.Error("an order naming a file not recorded was written")
	}
	// Anything cut short or altered is refused, never half read.
	flipped := []byte(string(data))
	flipped[len(flipped)/2] ^= 1
	for _, bad := range []string{"", "not an index", string(data[:len(data)-1]), string(data) + "x", string(flipped), string(data[:len(indexMagic)]) + "\x63" + string(data[len(indexMagic)+1:])} {
		if _, err := decodeIndex(bad); err == nil {
			t.Errorf("a malformed index (%d bytes) was read", len(bad))
		}
	}
}

// A result a build takes unchanged is written back as it was read, with the
// first-seen time the build gave it; one it replaced is encoded afresh.
func TestIndexWritesReusedResultsAsRead(t *testing.T) {
	first := time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)
	idx := &buildIndex{Version: indexVersion, Content: map[string]*content.FileResult{
		"a.md": {Sig: "sa", OK: true, Piece: content.Piece{ID: "a", Title: "A", File: "a.md", FirstSeen: first}},
		"b.md": {Sig: "sb", OK: true, Piece: content.Piece{ID: "b", Title: "B", File: "b.md", FirstSeen: first}},
	}}
	prev, err := decodeIndex(string(encode(t, idx)))
	if err != nil {
		t.Fatal(err)
	}
	// The next build: a.md unchanged, but the store gave it another time
	// (put back from an older copy); b.md parsed again, with a new title.
	later := first.Add(time.Hour)
	a := prev.Content["a.md"]
	a.Piece.FirstSeen = later
	b := *prev.Content["b.md"]
	b.Piece.Title = "B, revised"
	next := &buildIndex{Version: indexVersion, Content: map[string]*content.FileResult{"a.md": a, "b.md": &b}, encoded: prev.encoded}
	got, err := decodeIndex(string(encode(t, next)))
	if err != nil {
		t.Fatal(err)
	}
	if ga := got.Content["a.md"]; ga.Sig != "sa" || ga.Piece.Title != "A" || !ga.Piece.FirstSeen.Equal(later) {
		t.Errorf("a.md read back as %+v, want sig sa, title A, first seen %v", ga, later)
	}
	if gb := got.Content["b.md"]; gb.Piece.Title != "B, revised" || !gb.Piece.FirstSeen.Equal(first) {
		t.Errorf("b.md read back with title %q, first seen %v; want the revised title, %v", gb.Piece.Title, gb.Piece.FirstSeen, first)
	}
}

func encode(t testing.TB, idx *buildIndex) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := encodeIndex(&b, idx, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func FuzzDecodeIndex(f *testing.F) {
	// The seed without its checksum, which the fuzz function adds.
	seed := encode(f, &buildIndex{Version: indexVersion, Content: map[string]*content.FileResult{"a.md": {Sig: "s"}}})
	f.Add(string(seed[:len(seed)-4]))
	f.Fuzz(func(t *testing.T, data string) {
		// A valid checksum keeps the fuzzer from stopping there.
		if len(data) > len(indexMagic) {
			data = string(binary.LittleEndian.AppendUint32([]byte(data), checksum(data)))
		}
		idx, err := decodeIndex(data) // must not panic, whatever the bytes
		if err != nil {
			return
		}
		again, err := decodeIndex(string(encode(t, idx)))
		if err == nil {
			again.encoded, idx.encoded = nil, nil // keyed by the results' addresses
			again.order, idx.order = nil, nil
		}
		if err != nil || !reflect.DeepEqual(again, idx) {
			t.Fatalf("an index read back and written again reads differently: %v", err)
		}
	})
}
