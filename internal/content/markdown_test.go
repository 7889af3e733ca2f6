package content

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseMarkdownAllFields(t *testing.T) {
	p, problems := ParseMarkdown("analysis/all-fields.md", readFixture(t, "markdown/all-fields.md"))
	if len(problems) != 0 {
		t.Fatalf("problems: %v", problems)
	}
	if p.Title != "Rail freight across the Suwałki gap" || p.TitleDerived {
		t.Errorf("Title = %q derived=%v", p.Title, p.TitleDerived)
	}
	wantAuthors := []Author{
		{Name: "Karolina Nowak", Role: "Transport analyst", Email: "k.nowak@example.org", URL: "https://example.org/people/nowak"},
		{Name: "Jurgis Vaitkus"},
	}
	if !reflect.DeepEqual(p.Authors, wantAuthors) {
		t.Errorf("Authors = %+v, want %+v", p.Authors, wantAuthors)
	}
	if want := time.Date(2026, 11, 4, 0, 0, 0, 0, time.UTC); !p.Date.Equal(want) {
		t.Errorf("Date = %v, want %v", p.Date, want)
	}
	if want := time.Date(2026, 11, 6, 10, 30, 0, 0, time.UTC); !p.Updated.Equal(want) {
		t.Errorf("Updated = %v, want %v", p.Updated, want)
	}
	if p.Summary != "Why a 65-kilometre border strip matters for supply lines." {
		t.Errorf("Summary = %q", p.Summary)
	}
	if want := []string{"security", "foreign-policy", "transport"}; !reflect.DeepEqual(p.Topics, want) {
		t.Errorf("Topics = %q, want %q (slug form, no duplicates)", p.Topics, want)
	}
	if p.Slug != "suwalki-rail-freight" || p.ID != "suwalki-rail-freight" {
		t.Errorf("Slug/ID = %q/%q", p.Slug, p.ID)
	}
	if p.CanonicalURL != "https://example.org/analysis/suwalki-rail-freight" {
		t.Errorf("CanonicalURL = %q", p.CanonicalURL)
	}
	if want := (Source{Name: "Baltic Transport Quarterly", URL: "https://example.org/btq/42"}); p.Source != want {
		t.Errorf("Source = %+v", p.Source)
	}
	if p.Image != "/images/suwalki.jpg" || p.Draft {
		t.Errorf("Image = %q Draft = %v", p.Image, p.Draft)
	}
	if p.File != "analysis/all-fields.md" || len(p.Hash) != 64 {
		t.Errorf("File = %q Hash = %q", p.File, p.Hash)
	}
	for _, s := range []string{
		"<li>Gauge changes slow every train.</li>",
		`<a href="notes/gauge.html" rel="nofollow">background note</a>`,
		`<a href="mailto:desk@example.org" rel="nofollow">mailto:desk@example.org</a>`,
		`<img src="map.png" alt="Map of the corridor"/>`,
	} {
		if !strings.Contains(p.HTML, s) {
			t.Errorf("HTML lacks %q:\n%s", s, p.HTML)
		}
	}
	if p.Text != "" {
		t.Errorf("Text = %q: a Markdown piece's plain text is worked out when asked", p.Text)
	}
	for _, want := range []string{
		"The corridor between Poland and Lithuania carries more military freight than its size suggests.",
		"* Gauge changes slow every train.\n* Two bridges carry most of the load.",
		"Read the background note ( notes/gauge.html ) or write to mailto:desk@example.org",
	} {
		if text := PlainText(&p); !strings.Contains(text, want) {
			t.Errorf("PlainText lacks %q:\n%s", want, text)
		}
	}
	if p.Lede != "The corridor between Poland and Lithuania carries more military freight than its size suggests." {
		t.Errorf("Lede = %q", p.Lede)
	}
}

func TestParseMarkdownAuthorForms(t *testing.T) {
	for src, want := range map[string][]Author{
		"authors: Ana Babić":                          {{Name: "Ana Babić"}},
		"authors: [Ana Babić, Ivo Perić]":             {{Name: "Ana Babić"}, {Name: "Ivo Perić"}},
		"authors:\n  name: Ana Babić\n  role: Editor": {{Name: "Ana Babić", Role: "Editor"}},
	} {
		p, problems := ParseMarkdown("a.md", []byte("---\ntitle: T\n"+src+"\n---\nBody.\n"))
		if len(problems) != 0 || !reflect.DeepEqual(p.Authors, want) {
			t.Errorf("%q: Authors = %+v problems %v, want %+v", src, p.Authors, problems, want)
		}
	}
}

func TestParseMarkdownRemovesDangerousHTMLWithWarnings(t *testing.T) {
	p, problems := ParseMarkdown("dangerous.md", readFixture(t, "markdown/dangerous.md"))
	want := []Problem{
		{File: "dangerous.md", Line: 7, Severity: Warning, Message: "removed <script> at line 7"},
		{File: "dangerous.md", Line: 9, Severity: Warning, Message: "removed event handler onclick= at line 9"},
		{File: "dangerous.md", Line: 11, Severity: Warning, Message: "removed javascript: URL at line 11"},
	}
	if !reflect.DeepEqual(problems, want) {
		t.Errorf("problems =\n%v\nwant\n%v", problems, want)
	}
	for _, bad := range []string{"<script", "alert", "onclick", "steal", "javascript", "JavaScript"} {
		if strings.Contains(p.HTML, bad) {
			t.Errorf("HTML still contains %q:\n%s", bad, p.HTML)
		}
	}
	if !strings.Contains(p.HTML, "<p>A normal first paragraph.</p>") || !strings.Contains(p.HTML, "Click text.") {
		t.Errorf("harmless content was lost:\n%s", p.HTML)
	}
}

func TestParseMarkdownWithoutFrontMatter(t *testing.T) {
	p, problems := ParseMarkdown("water-tariffs.md", readFixture(t, "markdown/no-front-matter.md"))
	if len(problems) != 2 {
		t.Fatalf("problems = %v, want no-front-matter and derived-title warnings", problems)
	}
	if problems[0].Severity != Warning || problems[0].Line != 1 || !strings.Contains(problems[0].Message, "no front matter") {
		t.Errorf("first problem = %v", problems[0])
	}
	if problems[1].Message != `no title: derived from the lede: "Water tariffs in Central Asia are set below cost"` {
		t.Errorf("second problem = %v", problems[1])
	}
	if p.Title != "Water tariffs in Central Asia are set below cost" || !p.TitleDerived || p.Slug != "water-tariffs" {
		t.Errorf("Title = %q derived=%v slug=%q", p.Title, p.TitleDerived, p.Slug)
	}
}

func TestParseMarkdownBadFrontMatter(t *testing.T) {
	tests := []struct {
		name, src string
		line      int
		contains  []string
	}{
		{"unknown key", "---\ntitle: T\nauthor: Ana\n---\nBody.\n", 3, []string{`unknown key "author"`}},
		{"bad date", "---\ntitle: T\n\ndate: 2026-13-45\n---\nBody.\n", 4, []string{"date", "2026-13-45"}},
		{"bad updated", "---\ntitle: T\nupdated: yesterday\n---\nBody.\n", 3, []string{"updated", "yesterday"}},
		{"unparsable", "---\ntitle: T\ntopics: [a, b\n---\nBody.\n", 0, []string{"unparsable YAML"}},
		{"tab indentation", "---\ntitle: T\nsource:\n\tname: X\n---\nBody.\n", 4, []string{"unparsable YAML"}},
		{"not a mapping", "---\n- a\n- b\n---\nBody.\n", 2, []string{"expected a mapping"}},
		{"never closed", "---\ntitle: T\nBody.\n", 1, []string{"never closed"}},
		{"javascript canonical", "---\ntitle: T\ncanonical_url: javascript:alert(1)\n---\nBody.\n", 3, []string{"canonical_url", "javascript"}},
		{"javascript image", "---\ntitle: T\nimage: \"JAVASCRIPT:alert(1)\"\n---\nBody.\n", 3, []string{"image"}},
		{"bad source url", "---\ntitle: T\nsource:\n  name: X\n  url: ftp://example.org/x\n---\nBody.\n", 5, []string{"source.url", "ftp"}},
		{"bad author url", "---\ntitle: T\nauthors:\n  - name: A\n    url: javascript:x\n---\nBody.\n", 5, []string{"authors.url"}},
		{"bad author email", "---\ntitle: T\nauthors:\n  - name: A\n    email: not-an-address\n---\nBody.\n", 5, []string{"authors.email"}},
		{"author without name", "---\ntitle: T\nauthors:\n  - role: Editor\n---\nBody.\n", 4, []string{"without a name"}},
		{"unknown author key", "---\ntitle: T\nauthors:\n  - name: A\n    twitter: x\n---\nBody.\n", 5, []string{`unknown key "twitter"`}},
		{"bad slug", "---\ntitle: T\nslug: Hello World\n---\nBody.\n", 3, []string{"slug", "hello-world"}},
		{"bad draft", "---\ntitle: T\ndraft: maybe\n---\nBody.\n", 3, []string{"draft"}},
		{"duplicate key", "---\ntitle: T\ntitle: U\n---\nBody.\n", 0, []string{"title"}},
		{"empty body", "---\ntitle: T\n---\n\n\n", 4, []string{"empty body"}},
		{"empty file", "", 0, []string{"empty file"}},
		{"nul byte", "---\ntitle: T\n---\nBo\x00dy\n", 4, []string{"NUL", "offset 19"}},
		{"invalid utf-8", "---\ntitle: T\n---\nBody \xff\xfe.\n", 4, []string{"invalid UTF-8", "offset 22"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, problems := ParseMarkdown("bad.md", []byte(tc.src))
			errs := errorsOf(problems)
			if len(errs) == 0 {
				t.Fatalf("no error; problems: %v", problems)
			}
			got := errs[0]
			if got.File != "bad.md" {
				t.Errorf("File = %q", got.File)
			}
			if tc.line != 0 && got.Line != tc.line {
				t.Errorf("Line = %d, want %d (%v)", got.Line, tc.line, got)
			}
			for _, c := range tc.contains {
				if !strings.Contains(got.Message, c) {
					t.Errorf("message %q lacks %q", got.Message, c)
				}
			}
		})
	}
}

func TestDeriveTitle(t *testing.T) {
	for lede, want := range map[string]string{
		"The U.S. Treasury widened sanctions on Monday. Markets shrugged.": "The U.S. Treasury widened sanctions on Monday",
		"Dr. Ana Babić and J. R. Smith disagree. They often do.":           "Dr. Ana Babić and J. R. Smith disagree",
		"Will the truce hold? Nobody in Geneva is betting on it.":          "Will the truce hold?",
		"Prices rose 3.5 per cent, e.g. in energy. Then they fell.":        "Prices rose 3.5 per cent, e.g. in energy",
		"“We will not pay.” The minister was clear.":                       "“We will not pay.”",
		"No full stop at all":                "No full stop at all",
		strings.Repeat("word ", 30) + "end.": strings.TrimSpace(strings.Repeat("word ", 19)) + " word…",
		strings.Repeat("x", 150):             strings.Repeat("x", 99) + "…",
	} {
		got := deriveTitle(lede)
		if got != want {
			t.Errorf("deriveTitle(%q) = %q, want %q", lede, got, want)
		}
		if n := len([]rune(got)); n > maxDerivedTitle {
			t.Errorf("deriveTitle(%q) has %d characters", lede, n)
		}
	}
}

func TestSlugify(t *testing.T) {
	for in, want := range map[string]string{
		"Foreign Policy":      "foreign-policy",
		"  Energy & Climate ": "energy-climate",
		"Čierna Hora 2026":    "cierna-hora-2026",
		"already-fine":        "already-fine",
		"---":                 "",
		"日本":                  "",
	} {
		if got := Slugify(in); got != want {
			t.Errorf("Slugify(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestScanDangerousHTMLPreFilterMissesNothing checks the cheap pre-filter against
// the expressions alone, line by line, on lines that do and do not need them.
func TestScanDangerousHTMLPreFilterMissesNothing(t *testing.T) {
	lines := []string{
		"plain prose, nothing here",
		"a link: https://example.org/ and a colon",
		"<p onclick = \"x()\">hi</p> and <img src=x ONERROR=y>",
		"[click](JavaScript:alert(1))",
		"[click](vbscript :msgbox)",
		"[long s](java\u017fcript:alert(1))",
		"<SCRIPT>alert(1)</script>",
		"script: not a URL scheme? javascript :yes",
		"curly “quotes” and script without colon",
	}
	body := strings.Join(lines, "\n")
	var want []Problem
	for i, line := range lines {
		n := 5 + i
		if scriptTag.MatchString(line) {
			want = append(want, Problem{File: "f.md", Line: n, Severity: Warning, Message: fmt.Sprintf("removed <script> at line %d", n)})
		}
		for _, m := range eventHandler.FindAllStringSubmatch(line, -1) {
			want = append(want, Problem{File: "f.md", Line: n, Severity: Warning, Message: fmt.Sprintf("removed event handler %s= at line %d", strings.ToLower(m[1]), n)})
		}
		if m := scriptURL.FindStringSubmatch(line); m != nil {
			want = append(want, Problem{File: "f.md", Line: n, Severity: Warning, Message: fmt.Sprintf("removed %s: URL at line %d", strings.ToLower(m[1]), n)})
		}
	}
	if len(want) < 6 {
		t.Fatalf("the fixture finds only %d problems", len(want))
	}
	if got := scanDangerousHTML("f.md", []byte(body), 5); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	if got := scanDangerousHTML("f.md", []byte("no tags\nno schemes: here\n"), 1); got != nil {
		t.Errorf("clean body: %v", got)
	}
}

// A block inside a link once made the hand-written plain-text walk slice past
// the end of its buffer and panic (found by FuzzLede).
func TestParseMarkdownBlockInsideLink(t *testing.T) {
	src := "---\ntitle: Link around a paragraph\n---\n<a href=\"https://example.org/report\">The report<p>Its first paragraph.</p></a>\n\nAfter it.\n"
	p, problems := ParseMarkdown("block-in-link.md", []byte(src))
	for _, pr := range problems {
		if pr.Severity == Error {
			t.Errorf("problem: %v", pr)
		}
	}
	if text := PlainText(&p); !strings.Contains(text, "Its first paragraph.") || !strings.Contains(text, "After it.") {
		t.Errorf("text %q", text)
	}
	if !strings.HasPrefix(p.Lede, "The report") {
		t.Errorf("lede %q", p.Lede)
	}
}

// mayHoldScript must say yes wherever the expressions could match: "script" in
// any case, or any non-ASCII byte.
func mayHoldScriptRef(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return true
		}
	}
	return strings.Contains(strings.ToLower(s), "script")
}

func TestMayHoldScript(t *testing.T) {
	for _, s := range []string{"", "p", "script", "SCRIPT", "ScRiPt", "a <sCrIpT> b", "xscriptx", "scrip", "cript", "pscript",
		"prose with no such word, plenty of p and P", "ſcript", "é", "javascript:", "12345678script", "1234567é", "scriptp"} {
		if got, want := mayHoldScript(s), mayHoldScriptRef(s); got != want {
			t.Errorf("mayHoldScript(%q) = %v, want %v", s, got, want)
		}
	}
}

func FuzzMayHoldScript(f *testing.F) {
	f.Add("a line with script in it")
	f.Add("no such word here, p and P")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := mayHoldScript(s), mayHoldScriptRef(s); got != want {
			t.Fatalf("mayHoldScript(%q) = %v, want %v", s, got, want)
		}
	})
}
