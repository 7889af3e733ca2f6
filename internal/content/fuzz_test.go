package content

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// checkParsed asserts what must hold for any input: problems name a file we
// know and a sane line, and a piece without errors is usable downstream.
func checkParsed(t *testing.T, p Piece, problems []Problem, files ...string) {
	t.Helper()
	for _, pr := range problems {
		known := false
		for _, f := range files {
			known = known || pr.File == f
		}
		if !known || pr.Line < 0 || pr.Message == "" || (pr.Severity != Warning && pr.Severity != Error) {
			t.Fatalf("bad problem %#v", pr)
		}
	}
	if hasError(problems) {
		return
	}
	if !validSlug(p.ID) || p.ID != p.Slug {
		t.Fatalf("piece without errors has ID %q slug %q", p.ID, p.Slug)
	}
	if p.Title == "" || strings.TrimSpace(PlainText(&p)) == "" {
		t.Fatalf("piece without errors lacks title or text: %#v", p)
	}
	for _, s := range []string{p.Title, p.HTML, PlainText(&p), p.Lede} {
		if !utf8.ValidString(s) {
			t.Fatalf("invalid UTF-8 in output %q", s)
		}
	}
	if p.TitleDerived && utf8.RuneCountInString(p.Title) > maxDerivedTitle {
		t.Fatalf("derived title too long: %q", p.Title)
	}
	if strings.Contains(strings.ToLower(p.HTML), "<script") {
		t.Fatalf("script survived: %q", p.HTML)
	}
}

func FuzzParsePlainText(f *testing.F) {
	// More seeds live in testdata/fuzz/FuzzParsePlainText.
	f.Add([]byte("Originally published in the Review\nAna Babić and Ivo Perić\nBody.\nAna Babić\nEditor"), []byte(nil))
	f.Add([]byte("Body only. Second sentence."), []byte("title: T\nslug: s\n"))
	f.Fuzz(func(t *testing.T, data, sidecar []byte) {
		p, problems := ParsePlainText("f.txt", data, sidecar)
		checkParsed(t, p, problems, "f.txt", "f.yaml")
		if !hasError(problems) && !strings.Contains(string(sidecar), "slug") {
			if p.ID != "f" {
				t.Fatalf("ID = %q, want the file name", p.ID)
			}
		}
	})
}

func FuzzParseMarkdown(f *testing.F) {
	// More seeds live in testdata/fuzz/FuzzParseMarkdown.
	f.Add([]byte("---\ntitle: T\ndate: 2026-11-01\n---\nBody <script>x</script>\n"))
	f.Add([]byte("No front matter. [x](javascript:y)"))
	ps := newParser()
	f.Fuzz(func(t *testing.T, data []byte) {
		p, problems := ps.parseMarkdown("f.md", data, nil)
		checkParsed(t, p, problems, "f.md")
	})
}
