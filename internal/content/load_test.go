package content

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unsafe"
)

// writeTree writes files (slash paths relative to a new temp dir) and returns the dir.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func ids(pieces []Piece) []string {
	out := make([]string, len(pieces))
	for i, p := range pieces {
		out[i] = p.ID
	}
	return out
}

// findProblem returns the first problem for file whose message contains s.
func findProblem(problems []Problem, file, s string) (Problem, bool) {
	for _, p := range problems {
		if p.File == file && strings.Contains(p.Message, s) {
			return p, true
		}
	}
	return Problem{}, false
}

const goodMD = "---\ntitle: Good\ntopics: [energy]\n---\nA good body.\n"

func TestLoadBadInputKeepsTheGoodPieces(t *testing.T) {
	fixtures := map[string]string{
		"good.md":                 goodMD,
		"nested/deeper/good2.txt": "Ana Babić\nA plain-text body that loads.\n",
		"empty.md":                "",
		"blank.txt":               "\n  \r\n",
		"binary.txt":              "Ana\x00\x01\x02",
		"latin1.txt":              "Ana Babi\xe6\nBody.\n",
		"unparsable.md":           "---\ntitle: [unclosed\n---\nBody.\n",
		"unknown-key.md":          "---\ntitle: X\ntags: [a]\n---\nBody.\n",
		"bad-date.md":             "---\ntitle: X\ndate: 03/11/2026\n---\nBody.\n",
		"a-dup.md":                "---\ntitle: First\nslug: same\n---\nBody.\n",
		"b-dup.md":                "---\ntitle: Second\nslug: same\n---\nBody.\n",
		"script.md":               "---\ntitle: S\n---\nText.\n\n<script>x()</script>\n\n[l](javascript:x())\n",
		"big.md":                  "---\ntitle: Big\n---\n" + strings.Repeat("word ", 400) + "\n",
		"draft.md":                "---\ntitle: D\ndraft: true\n---\nNot yet.\n",
		"orphan.yaml":             "title: Nobody\n",
		"notes.docx":              "PK",
		"tool.exe":                "MZ",
		"README.md":               "# Desk notes\n",
		".hidden.md":              "ignored",
		".git/config":             "ignored",
		"empty-body.txt":          "Originally published in the Review\nAna Babić\n",
		"sidecar-bad.txt":         "Ana Babić\nBody of a piece whose sidecar is wrong.\n",
		"sidecar-bad.yaml":        "title: OK\n\nlanguage: en\n",
		"!!!.md":                  "---\ntitle: No slug from this name\n---\nBody.\n",
	}
	dir := writeTree(t, fixtures)
	pieces, problems, err := Load(context.Background(), dir, Options{MaxBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(ids(pieces), ","), "good,good2,same,script"; got != want {
		t.Errorf("loaded %s, want %s; problems:\n%v", got, want, problems)
	}
	for _, p := range pieces {
		if p.ID == "same" && p.Title != "First" {
			t.Errorf("duplicate slug: %q won, want the first by path", p.Title)
		}
		if p.ID == "good2" && p.File != "nested/deeper/good2.txt" {
			t.Errorf("File = %q, want the slash path relative to the content folder", p.File)
		}
	}
	expect := []struct {
		file     string
		line     int
		severity Severity
		contains string
	}{
		{"empty.md", 0, Error, "empty file"},
		{"blank.txt", 0, Error, "empty file"},
		{"binary.txt", 1, Error, "NUL byte at byte offset 3"},
		{"latin1.txt", 1, Error, "invalid UTF-8 at byte offset 8"},
		{"unparsable.md", 2, Error, "unparsable YAML"},
		{"unknown-key.md", 3, Error, `unknown key "tags"`},
		{"bad-date.md", 3, Error, `date: "03/11/2026" is not a date`},
		{"b-dup.md", 0, Error, `duplicate slug "same": already used by a-dup.md`},
		{"script.md", 6, Warning, "removed <script> at line 6"},
		{"script.md", 8, Warning, "removed javascript: URL at line 8"},
		{"big.md", 0, Error, "too large"},
		{"orphan.yaml", 0, Warning, "sidecar with no piece"},
		{"notes.docx", 0, Warning, "not published: no piece links to it"},
		{"tool.exe", 0, Warning, "ignored"},
		{"empty-body.txt", 0, Error, "empty body"},
		{"sidecar-bad.yaml", 3, Error, `unknown key "language"`},
		{"!!!.md", 0, Error, "empty slug"},
	}
	for _, e := range expect {
		p, ok := findProblem(problems, e.file, e.contains)
		if !ok {
			t.Errorf("no problem for %s containing %q; got:\n%v", e.file, e.contains, problems)
			continue
		}
		if p.Line != e.line || p.Severity != e.severity {
			t.Errorf("%v: want line %d, %s", p, e.line, e.severity)
		}
	}
	for _, p := range problems {
		switch p.File {
		case "README.md", ".hidden.md", ".git/config", "draft.md", "good.md", "nested/deeper/good2.txt", "a-dup.md":
			if p.Severity == Error || p.File == "README.md" || strings.HasPrefix(p.File, ".") {
				t.Errorf("unexpected problem: %v", p)
			}
		}
	}
}

func TestLoadSampleContent(t *testing.T) {
	pieces, problems, err := Load(context.Background(), "../../content", Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := "arctic-shipping-lanes,baltic-cable-security,black-sea-grain-insurance,caspian-gas-swaps,central-bank-reserves,drone-defence-procurement,lng-contracts-europe"
	if got := strings.Join(ids(pieces), ","); got != want {
		t.Errorf("sample pieces = %s, want %s (drafts skipped)", got, want)
	}
	// The only thing the samples may be warned about is the derived title,
	// which the undated plain-text sample shows on purpose.
	if len(problems) != 1 || problems[0].File != "black-sea-grain-insurance.txt" || !strings.HasPrefix(problems[0].Message, "no title: derived") {
		t.Errorf("problems = %v", problems)
	}
	dated, txt := 0, 0
	for _, p := range pieces {
		if !p.Date.IsZero() && strings.HasSuffix(p.File, ".md") {
			dated++
		}
		if strings.HasSuffix(p.File, ".txt") {
			txt++
		}
		if len(p.Authors) == 0 || p.Title == "" || p.HTML == "" || PlainText(&p) == "" || p.Lede == "" {
			t.Errorf("%s: incomplete piece %+v", p.File, p)
		}
	}
	if dated > 2 || txt < 3 || len(pieces)-txt < 4 {
		t.Errorf("samples: %d dated Markdown, %d plain text, %d Markdown", dated, txt, len(pieces)-txt)
	}
}

func TestLoadIsDeterministic(t *testing.T) {
	a, pa, err := Load(context.Background(), "../../content", Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, pb, _ := Load(context.Background(), "../../content", Options{})
	for i := range a {
		if a[i].Hash != b[i].Hash || a[i].HTML != b[i].HTML || a[i].ID != b[i].ID {
			t.Errorf("piece %d differs between loads", i)
		}
	}
	if len(pa) != len(pb) {
		t.Errorf("problems differ between loads")
	}
}

func TestLoadSidecarBesideMarkdown(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"a.md":   goodMD,
		"a.yaml": "title: From the sidecar\ntopics: [Security]\n",
	})
	pieces, problems, err := Load(context.Background(), dir, Options{})
	if err != nil || len(problems) != 0 || len(pieces) != 1 {
		t.Fatalf("pieces %v problems %v err %v", pieces, problems, err)
	}
	if p := pieces[0]; p.Title != "From the sidecar" || len(p.Topics) != 1 || p.Topics[0] != "security" {
		t.Errorf("sidecar did not win: %q %q", p.Title, p.Topics)
	}
}

func TestLoadUnreadableFolderIsAnError(t *testing.T) {
	_, _, err := Load(context.Background(), filepath.Join(t.TempDir(), "missing"), Options{})
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want not-exist", err)
	}
	file := filepath.Join(t.TempDir(), "f.md")
	if err := os.WriteFile(file, []byte(goodMD), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(context.Background(), file, Options{}); err == nil {
		t.Error("a file as content folder: no error")
	}
}

func TestLoadStopsWhenCancelled(t *testing.T) {
	dir := writeTree(t, map[string]string{"a.md": goodMD})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := Load(ctx, dir, Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestReadLimitedDoesNotReadPastTheLimit(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "huge.md"))
	if err != nil {
		t.Fatal(err)
	}
	// A sparse 8 GiB file: reading it whole would exhaust memory.
	if err := f.Truncate(8 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var buf bytes.Buffer
	data, prob := readLimited(&buf, dir, "huge.md", DefaultMaxBytes)
	if prob == nil || data != nil || !strings.Contains(prob.Message, "too large: 8589934592 bytes") {
		t.Errorf("prob = %v, len(data) = %d", prob, len(data))
	}
}

// SkipText must change nothing but Piece.Text: not which pieces load, not
// their ledes, titles or problems.
func TestLoadSkipTextChangesOnlyText(t *testing.T) {
	dir := t.TempDir()
	for name, src := range map[string]string{
		"plain.md":      "---\ntitle: Plain\n---\nFirst paragraph.\n\nSecond.\n",
		"untitled.md":   "## A heading first\n\nThen the lede paragraph.\n",
		"list-only.md":  "---\ntitle: List\n---\n- one\n- two\n",
		"empty-body.md": "---\ntitle: Nothing\n---\n\n",
		"only-html.md":  "---\ntitle: Stripped\n---\n<script>x()</script>\n",
		"link-block.md": "<a href=\"https://example.org/\">Link<p>para</p></a>\n",
		"wire.txt":      "Ana Babić\nA plain-text body.\n\nAnd more.\n",
		"empty.txt":     "Originally published in the Review\nAna Babić\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"../../content", dir} {
		full, fullProblems, err := Load(context.Background(), d, Options{})
		if err != nil {
			t.Fatal(err)
		}
		skipped, skippedProblems, err := Load(context.Background(), d, Options{SkipText: true})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(fullProblems, skippedProblems) {
			t.Errorf("%s: problems differ:\n full %v\n skip %v", d, fullProblems, skippedProblems)
		}
		if len(full) != len(skipped) {
			t.Fatalf("%s: %d pieces, %d with SkipText", d, len(full), len(skipped))
		}
		for i := range full {
			if skipped[i].Text != "" {
				t.Errorf("%s: %s keeps its text", d, skipped[i].File)
			}
			f := full[i]
			f.Text = ""
			if !reflect.DeepEqual(f, skipped[i]) {
				t.Errorf("%s: %s differs beyond Text:\n full %+v\n skip %+v", d, f.File, f, skipped[i])
			}
		}
	}
}

// A caller that walked the folder already hands its list over: the same pieces
// and problems come back as from Load's own walk, whatever the list's order.
func TestLoadWithFilesGiven(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"b.md":           "---\ntitle: B\nslug: same\n---\nBody of b.\n",
		"a/z.md":         "---\ntitle: Z\nslug: same\n---\nBody of z, first in path order.\n",
		"a.md":           "---\ntitle: A\n---\nBody of a.\n",
		"wire.txt":       "Ana Babić\nA plain-text body.\n",
		"wire.yaml":      "title: Wire\n",
		"orphan.yaml":    "title: Nobody\n",
		"README.md":      "Notes for the desk.\n",
		"notes.docx":     "not a piece",
		"desk/LICENSE":   "all rights",
		"desk/draft.md":  "---\ntitle: Draft\ndraft: true\n---\nNot yet.\n",
		"desk/broken.md": "---\ntitle: [unclosed\n---\nBody.\n",
	})
	walked, walkedProblems, err := Load(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	files := []string{"wire.yaml", "desk/broken.md", "README.md", "a/z.md", "notes.docx", "b.md", "orphan.yaml",
		"desk/LICENSE", "a.md", "desk/draft.md", "wire.txt"}
	given, givenProblems, err := Load(context.Background(), dir, Options{Files: files})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(walked, given) || !reflect.DeepEqual(walkedProblems, givenProblems) {
		t.Errorf("with the files given:\n%v\n%v\nwalked:\n%v\n%v", given, givenProblems, walked, walkedProblems)
	}
	// a.md, wire.txt, and a/z.md, which takes "same" from b.md by path order.
	if len(walked) != 3 || len(walkedProblems) < 4 || !slices.ContainsFunc(walked, func(p Piece) bool { return p.Slug == "same" && p.File == "a/z.md" }) {
		t.Errorf("%d pieces, %d problems: the fixture is not what the test thinks", len(walked), len(walkedProblems))
	}
}

// BenchmarkLoad is loading 400 pieces of about 5 KB, half Markdown with front
// matter, links, a heading, a list and a table, half plain text with a
// sidecar: the per-piece cost of a full build's parse.
func BenchmarkLoad(b *testing.B) {
	dir := b.TempDir()
	words := strings.Fields("ports tariffs contracts negotiators observers reserves pipeline budget regulator exporters insurers markets cargoes transit the a of to")
	sentence := func(i, n int) string {
		var s []string
		for k := range n {
			s = append(s, words[(i*7+k*3)%len(words)])
		}
		return strings.ToUpper(s[0][:1]) + strings.Join(s, " ")[1:] + "."
	}
	para := func(i int) string {
		var s []string
		for k := range 6 {
			s = append(s, sentence(i+k, 9+k))
		}
		return strings.Join(s, " ")
	}
	for i := range 200 {
		md := fmt.Sprintf("---\ntitle: \"Piece %d on ports\"\nauthors:\n  - name: Ann Analyst\n    role: Fellow\ndate: 2026-11-01T09:00:00Z\ntopics: [\"Energy\", \"Economy\"]\nsummary: %q\n---\n\n", i, sentence(i, 14))
		for p := range 8 {
			md += para(i+p) + "\n\n"
			switch p {
			case 2:
				md += "## A section\n\n- " + sentence(i, 6) + "\n- " + sentence(i+1, 7) + "\n\n"
			case 4:
				md += fmt.Sprintf("See [the piece before](../piece-%d/) and [the report](https://source.example/r/%d), or *www.example.org*.\n\n", i-1, i)
			case 6:
				md += "| Port | Calls |\n| --- | ---: |\n| Split | 120 |\n| Rijeka | 80 |\n\n"
			}
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("piece-%03d.md", i)), []byte(md), 0o644); err != nil {
			b.Fatal(err)
		}
		txt := "Originally published in the Harbour Review\nAnn Analyst\n"
		for p := range 8 {
			txt += para(i+p) + "\n"
		}
		txt += "Ann Analyst\nFellow, Harbour Institute"
		side := fmt.Sprintf("title: Plain piece %d\ndate: 2026-11-02T09:00:00Z\ntopics: [Economy]\n", i)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("plain-%03d.txt", i)), []byte(txt), 0o644); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("plain-%03d.yaml", i)), []byte(side), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	base, _ := url.Parse("https://desk.example/pieces/")
	opts := Options{SkipText: true, LinkBase: func(slug string) *url.URL { return base.JoinPath(slug + "/") }}
	b.ReportAllocs()
	for b.Loop() {
		pieces, problems, err := Load(context.Background(), dir, opts)
		if err != nil || len(pieces) != 400 {
			b.Fatalf("%d pieces, %v, %v", len(pieces), problems, err)
		}
	}
}

// A slab hands out copies packed one after another in shared blocks, which
// stay intact as later copies fill the block and others follow; a string too
// large to pack gets its own copy.
func TestSlabPacksCopies(t *testing.T) {
	var sl slab
	buf := []byte("title")
	a := sl.copy(string(buf))
	b := sl.copy("a body of some length")
	buf[0] = 'T' // the copy is not the caller's bytes
	if a != "title" || b != "a body of some length" {
		t.Fatalf("copies %q %q", a, b)
	}
	if unsafe.StringData(b) != (*byte)(unsafe.Add(unsafe.Pointer(unsafe.StringData(a)), len(a))) {
		t.Error("the second copy does not follow the first in the block")
	}
	var kept []string
	for i := range 3 * slabSize / 1000 {
		kept = append(kept, sl.copy(strings.Repeat(string(rune('a'+i%26)), 1000)))
	}
	for i, s := range kept {
		if s != strings.Repeat(string(rune('a'+i%26)), 1000) {
			t.Fatalf("copy %d changed as the slab filled", i)
		}
	}
	if a != "title" || b != "a body of some length" {
		t.Fatalf("the first copies changed: %q %q", a, b)
	}
	big := strings.Repeat("x", slabSize/4)
	if c := sl.copy(big); c != big || unsafe.StringData(c) == unsafe.StringData(big) {
		t.Error("a large string is not copied on its own")
	}
	if sl.copy("") != "" {
		t.Error("empty string")
	}
}
