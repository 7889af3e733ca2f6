package content

import (
	"context"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestAssetsBesideAPiece(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"desk/lng.md": "---\ntitle: LNG\nimage: cover.jpg\n---\n\n![chart](chart.svg) ![map](figs/map%20one.png)\n" +
			"[report](report.pdf?v=2#p3) [missing](missing.pdf) [up](../shared/logo.png) [evil](evil.svg) [big](big.pdf)\n" +
			"[another piece](../other/) [a page](notes.html) [abs](https://example.org/x.png) [root](/img/x.png)\n",
		"desk/cover.jpg":          "jpeg",
		"desk/chart.svg":          `<svg xmlns="http://www.w3.org/2000/svg"><rect width="1" height="1"/></svg>`,
		"desk/figs/map one.png":   "png",
		"desk/report.pdf":         "%PDF",
		"desk/evil.svg":           `<svg xmlns="http://www.w3.org/2000/svg"><rect onload="alert(1)"/></svg>`,
		"desk/big.pdf":            strings.Repeat("x", 2000),
		"shared/logo.png":         "png",
		"desk/unlinked.png":       "png",
		"plain.txt":               "Ana Babić\nA plain piece.\n",
		"plain.yaml":              "image: plain.png\n",
		"plain.png":               "png",
		"desk/other-draft.md":     "---\ntitle: D\ndraft: true\n---\n![x](draft.png)\n",
		"desk/draft.png":          "png",
		"desk/notes.html.unknown": "?",
	})
	pieces, problems, err := Load(context.Background(), dir, Options{MaxAssetBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]Piece{}
	for _, p := range pieces {
		byID[p.ID] = p
	}
	want := []Asset{
		{Src: "desk/chart.svg", Dst: "chart.svg"},
		{Src: "desk/figs/map one.png", Dst: "figs/map one.png"},
		{Src: "desk/report.pdf", Dst: "report.pdf"},
		{Src: "desk/cover.jpg", Dst: "cover.jpg"},
	}
	if got := byID["lng"].Assets; !reflect.DeepEqual(got, want) {
		t.Errorf("assets\n%+v\nwant\n%+v", got, want)
	}
	if got := byID["plain"].Assets; !reflect.DeepEqual(got, []Asset{{Src: "plain.png", Dst: "plain.png"}}) {
		t.Errorf("plain-text piece's image: %+v", got)
	}
	for file, s := range map[string]string{
		"desk/lng.md":             "links to missing.pdf, which is not in the content folder",
		"desk/lng.md ":            "links to ../shared/logo.png, outside the piece's folder",
		"desk/lng.md  ":           "links to evil.svg, an SVG with scripts",
		"desk/lng.md   ":          "links to big.pdf, which is too large to publish",
		"desk/unlinked.png":       "not published: no piece links to it",
		"shared/logo.png":         "not published: no piece links to it",
		"desk/draft.png":          "not published: no piece links to it",
		"desk/notes.html.unknown": "ignored",
	} {
		if _, ok := findProblem(problems, strings.TrimSpace(file), s); !ok {
			t.Errorf("no problem for %s containing %q; got:\n%v", file, s, problems)
		}
	}
	for _, p := range problems {
		if p.Severity == Error {
			t.Errorf("an asset problem must not stop the piece: %v", p)
		}
	}
}

// stats is what the build's fingerprint gives a Cache: every file's stats.
func stats(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = fmt.Sprintf("%d %d %o", info.Size(), info.ModTime().UnixNano(), info.Mode())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func reusedFiles(c *Cache) []string {
	var out []string
	for f, r := range c.Next {
		if r.Reused {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return out
}

func TestCacheSparesUnchangedFilesAndReadsBodiesWhenAsked(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"a.md":      "---\ntitle: A\n---\n\nBody of [a](notes/) with ![c](chart.png).\n",
		"chart.png": "png",
		"b.txt":     "Ana Babić\nFirst paragraph of b.\nSecond paragraph of b.\n",
		"b.yaml":    "title: B\n",
		"c.md":      "---\ntitle: C\n---\n\nC body.\n",
		"bad.md":    "---\ntitle: [\n---\nx\n",
	})
	base := func(slug string) *url.URL { u, _ := url.Parse("https://desk.example/pieces/" + slug + "/"); return u }
	load := func(prev map[string]*FileResult) ([]Piece, []Problem, *Cache) {
		c := &Cache{Stats: stats(t, dir), Prev: prev}
		pieces, problems, err := Load(context.Background(), dir, Options{Cache: c, LinkBase: base})
		if err != nil {
			t.Fatal(err)
		}
		return pieces, problems, c
	}
	full, fullProblems, c1 := load(nil)
	if got := reusedFiles(c1); len(got) != 0 {
		t.Fatalf("reused %q with no cache", got)
	}
	again, problems, c2 := load(c1.Next)
	if got := reusedFiles(c2); !slices.Equal(got, []string{"a.md", "b.txt", "bad.md", "c.md"}) {
		t.Fatalf("reused %q, want every piece file", got)
	}
	if !reflect.DeepEqual(problems, fullProblems) {
		t.Errorf("problems differ when cached:\n%v\n%v", problems, fullProblems)
	}
	if len(again) != len(full) {
		t.Fatalf("%d pieces, then %d", len(full), len(again))
	}
	for i := range full {
		f, g := full[i], again[i]
		if g.HTML != "" || g.Text != "" {
			t.Errorf("%s: a cached piece comes without its body", g.File)
		}
		body, err := Body(&g)
		if err != nil || body != f.HTML {
			t.Errorf("%s: body read again %q, %v; want %q", g.File, body, err, f.HTML)
		}
		if PlainText(&g) != PlainText(&f) {
			t.Errorf("%s: plain text %q, want %q", g.File, PlainText(&g), PlainText(&f))
		}
		page, _ := url.Parse("https://desk.example/pieces/" + f.Slug + "/")
		if a, b := mustHTML(t, &f, page), mustHTML(t, &g, page); a != b {
			t.Errorf("%s: PieceHTML differs", g.File)
		}
		if f.Cached() == nil || f.Cached() != c1.Next[f.File] || g.Cached() != c2.Next[g.File] || !g.Cached().Reused {
			t.Errorf("%s: Cached() is not the Cache entry the piece was recorded under", g.File)
		}
		f.HTML, f.Text, f.body, g.body = "", "", nil, nil
		f.cached, g.cached = nil, nil
		if !reflect.DeepEqual(f, g) {
			t.Errorf("%s: cached piece\n%+v\nwant\n%+v", g.File, g, f)
		}
	}

	// Touch c.md, drop b's sidecar, change the image a links to: each of
	// those pieces is read again, and only those.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "c.md"), later, later); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "b.yaml")); err != nil {
		t.Fatal(err)
	}
	_, _, c3 := load(c2.Next)
	if got := reusedFiles(c3); !slices.Equal(got, []string{"a.md", "bad.md"}) {
		t.Errorf("after touching c and dropping b's sidecar, reused %q", got)
	}
	if err := os.WriteFile(filepath.Join(dir, "chart.png"), []byte("a new png"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, c4 := load(c3.Next)
	if got := reusedFiles(c4); slices.Contains(got, "a.md") {
		t.Errorf("a.md reused though the image it links to changed")
	}

	// A file that changes after it was listed is not silently served stale.
	stale, _, _ := load(c4.Next)
	if err := os.WriteFile(filepath.Join(dir, "c.md"), []byte("---\ntitle: C\n---\n\nC body, edited.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range stale {
		if p.File == "c.md" {
			if _, err := Body(&p); err == nil || !strings.Contains(err.Error(), "c.md") {
				t.Errorf("reading a changed file's body: %v", err)
			}
		}
	}
}

func mustHTML(t *testing.T, p *Piece, page *url.URL) string {
	t.Helper()
	h, err := PieceHTML(p, page)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
