package content

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const (
	fixtureP1  = "Port authorities in the Adriatic have started charging a congestion fee on cruise calls, and the early numbers suggest it works."
	fixtureP2  = "Split and Dubrovnik saw fewer same-day calls in the first season, while longer stays rose — the opposite of what the lines had warned."
	fixtureP3  = "Whether the fee survives depends on the next coalition, not on the numbers."
	horvat     = "Petra Horvat"
	horvatRole = "Economist, Zagreb Policy Lab"
)

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func paragraphsHTML(ps ...string) string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = "<p>" + p + "</p>"
	}
	return strings.Join(out, "\n")
}

func errorsOf(problems []Problem) []Problem {
	var out []Problem
	for _, p := range problems {
		if p.Severity == Error {
			out = append(out, p)
		}
	}
	return out
}

func TestParsePlainTextFormatCases(t *testing.T) {
	adriatic := Source{Name: "Adriatic Economic Review"}
	tests := []struct {
		file    string
		source  Source
		authors []Author
		body    []string
		// warning is a substring of a warning the case must give ("" = no warnings but the derived title).
		warning string
	}{
		{"full.txt", adriatic, []Author{{Name: horvat, Role: horvatRole}}, []string{fixtureP1, fixtureP2, fixtureP3}, ""},
		{"no-provenance.txt", Source{}, []Author{{Name: horvat, Role: horvatRole}}, []string{fixtureP1, fixtureP2}, ""},
		{"two-authors.txt", adriatic, []Author{{Name: horvat, Role: horvatRole}, {Name: "Marko Kovač", Role: "Port consultant"}}, []string{fixtureP1, fixtureP2, fixtureP3}, ""},
		{"three-authors.txt", Source{}, []Author{{Name: horvat}, {Name: "Marko Kovač"}, {Name: "Ana Babić"}}, []string{fixtureP1, fixtureP2}, ""},
		{"no-signature.txt", adriatic, []Author{{Name: horvat}}, []string{fixtureP1, fixtureP2, fixtureP3}, ""},
		{"name-only-signature.txt", Source{}, []Author{{Name: horvat}}, []string{fixtureP1, fixtureP2}, ""},
		{"crlf.txt", adriatic, []Author{{Name: horvat, Role: horvatRole}}, []string{fixtureP1, fixtureP2}, ""},
		{"trailing-newline.txt", adriatic, []Author{{Name: horvat, Role: horvatRole}}, []string{fixtureP1, fixtureP2}, ""},
		{"bom.txt", adriatic, []Author{{Name: horvat, Role: horvatRole}}, []string{fixtureP1, fixtureP2}, ""},
		{"no-byline.txt", Source{}, nil, []string{fixtureP1, fixtureP2}, "no byline"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			data := readFixture(t, "plaintext/"+tc.file)
			p, problems := ParsePlainText(tc.file, data, nil)
			if errs := errorsOf(problems); len(errs) > 0 {
				t.Fatalf("unexpected errors: %v", errs)
			}
			if p.Source != tc.source {
				t.Errorf("Source = %+v, want %+v", p.Source, tc.source)
			}
			if !reflect.DeepEqual(p.Authors, tc.authors) {
				t.Errorf("Authors = %+v, want %+v", p.Authors, tc.authors)
			}
			if want := paragraphsHTML(tc.body...); p.HTML != want {
				t.Errorf("HTML =\n%q\nwant\n%q", p.HTML, want)
			}
			if want := strings.Join(tc.body, "\n\n"); p.Text != want {
				t.Errorf("Text =\n%q\nwant\n%q", p.Text, want)
			}
			if p.Lede != tc.body[0] {
				t.Errorf("Lede = %q, want %q", p.Lede, tc.body[0])
			}
			for _, s := range []string{"Originally published", "\r", "\ufeff", horvatRole} {
				if strings.Contains(p.HTML, s) || strings.Contains(p.Text, s) {
					t.Errorf("body contains %q", s)
				}
			}
			wantTitle := "Port authorities in the Adriatic have started charging a congestion fee on cruise calls, and the…"
			if p.Title != wantTitle || !p.TitleDerived {
				t.Errorf("Title = %q (derived %v), want %q derived", p.Title, p.TitleDerived, wantTitle)
			}
			wantSlug := strings.TrimSuffix(tc.file, ".txt")
			if p.Slug != wantSlug || p.ID != wantSlug {
				t.Errorf("Slug/ID = %q/%q, want %q", p.Slug, p.ID, wantSlug)
			}
			if !p.Date.IsZero() {
				t.Errorf("Date = %v, want zero (the file has none)", p.Date)
			}
			var sawDerived, sawWanted bool
			for _, pr := range problems {
				if pr.File != tc.file {
					t.Errorf("problem names file %q, want %q", pr.File, tc.file)
				}
				if strings.HasPrefix(pr.Message, "no title: derived from the lede: ") {
					sawDerived = true
				} else if tc.warning != "" && strings.Contains(pr.Message, tc.warning) {
					sawWanted = true
				} else {
					t.Errorf("unexpected problem: %v", pr)
				}
			}
			if !sawDerived {
				t.Errorf("no derived-title warning in %v", problems)
			}
			if tc.warning != "" && !sawWanted {
				t.Errorf("no warning containing %q in %v", tc.warning, problems)
			}
		})
	}
}

func TestParsePlainTextSameResultWhateverTheLineEnds(t *testing.T) {
	lf, _ := ParsePlainText("a.txt", readFixture(t, "plaintext/no-signature.txt"), nil)
	crlf := strings.ReplaceAll(string(readFixture(t, "plaintext/no-signature.txt")), "\n", "\r\n") + "\r\n"
	got, _ := ParsePlainText("a.txt", append([]byte("\xef\xbb\xbf"), crlf...), nil)
	lf.Hash, got.Hash = "", ""
	if !reflect.DeepEqual(lf, got) {
		t.Errorf("CRLF+BOM piece differs from LF piece:\n%+v\n%+v", got, lf)
	}
}

func TestParsePlainTextEscapesMarkup(t *testing.T) {
	p, problems := ParsePlainText("markup.txt", readFixture(t, "plaintext/markup.txt"), nil)
	if errs := errorsOf(problems); len(errs) > 0 {
		t.Fatal(errs)
	}
	want := "<p>Fees rose &lt;b&gt;sharply&lt;/b&gt; &amp; calls fell &lt;script&gt;alert(1)&lt;/script&gt;.</p>"
	if !strings.HasPrefix(p.HTML, want) {
		t.Errorf("HTML = %q, want prefix %q", p.HTML, want)
	}
	if !strings.HasPrefix(p.Text, "Fees rose <b>sharply</b> & calls") {
		t.Errorf("Text = %q: plain text must stay unescaped", p.Text)
	}
}

func TestParsePlainTextSidecarWins(t *testing.T) {
	data := readFixture(t, "plaintext/full.txt")
	sidecar := readFixture(t, "plaintext/full.yaml")
	p, problems := ParsePlainText("desk/full.txt", data, sidecar)
	if len(problems) != 0 {
		t.Fatalf("problems: %v", problems)
	}
	if p.Title != "Adriatic ports test a cruise congestion fee" || p.TitleDerived {
		t.Errorf("Title = %q derived=%v", p.Title, p.TitleDerived)
	}
	if want := time.Date(2026, 11, 5, 7, 0, 0, 0, time.UTC); !p.Date.Equal(want) {
		t.Errorf("Date = %v, want %v", p.Date, want)
	}
	if want := []string{"economy", "tourism-policy"}; !reflect.DeepEqual(p.Topics, want) {
		t.Errorf("Topics = %q, want %q", p.Topics, want)
	}
	if want := []Author{{Name: horvat, Role: "Chief economist, Zagreb Policy Lab"}}; !reflect.DeepEqual(p.Authors, want) {
		t.Errorf("Authors = %+v, want the sidecar's %+v", p.Authors, want)
	}
	if p.Slug != "adriatic-cruise-fee" || p.ID != "adriatic-cruise-fee" {
		t.Errorf("Slug/ID = %q/%q", p.Slug, p.ID)
	}
	if p.Source.Name != "Adriatic Economic Review" {
		t.Errorf("Source = %+v: a key the sidecar does not set keeps the parsed value", p.Source)
	}
	if p.File != "desk/full.txt" {
		t.Errorf("File = %q", p.File)
	}
	plain, _ := ParsePlainText("desk/full.txt", data, nil)
	if p.Hash == plain.Hash || len(p.Hash) != 64 {
		t.Errorf("Hash %q must cover the sidecar too (without: %q)", p.Hash, plain.Hash)
	}
}

func TestParsePlainTextSidecarProblemsNameTheSidecar(t *testing.T) {
	data := readFixture(t, "plaintext/full.txt")
	sidecar := []byte("title: Fine\ntopics: [energy]\ndate: last tuesday\nwriter: someone\n")
	_, problems := ParsePlainText("desk/full.txt", data, sidecar)
	want := []Problem{
		{File: "desk/full.yaml", Line: 3, Severity: Error},
		{File: "desk/full.yaml", Line: 4, Severity: Error},
	}
	if len(problems) != len(want) {
		t.Fatalf("problems = %v, want %d", problems, len(want))
	}
	for i, w := range want {
		got := problems[i]
		if got.File != w.File || got.Line != w.Line || got.Severity != w.Severity {
			t.Errorf("problem %d = %v, want %s:%d %s", i, got, w.File, w.Line, w.Severity)
		}
	}
	if !strings.Contains(problems[0].Message, "date") || !strings.Contains(problems[0].Message, "last tuesday") {
		t.Errorf("date problem does not name key and value: %v", problems[0])
	}
	if !strings.Contains(problems[1].Message, `unknown key "writer"`) {
		t.Errorf("unknown-key problem does not name the key: %v", problems[1])
	}
}

func TestParsePlainTextSignatureOnlyIsEmptyBody(t *testing.T) {
	_, problems := ParsePlainText("x.txt", []byte("Originally published in the Review\nAna Babić\nAna Babić\nAnalyst"), nil)
	errs := errorsOf(problems)
	if len(errs) != 1 || !strings.Contains(errs[0].Message, "empty body") {
		t.Errorf("problems = %v, want one empty-body error", problems)
	}
}

func TestParseBylineRejectsSentences(t *testing.T) {
	for _, line := range []string{
		"Oil prices rose sharply this week.",
		"Why does Minsk matter?",
		"Analysts expect more, and soon",
		strings.Repeat("Name ", 40),
	} {
		if names, ok := parseByline(line); ok {
			t.Errorf("parseByline(%q) = %q, want no byline", line, names)
		}
	}
	for line, want := range map[string][]string{
		"Ursula von der Leyen":                {"Ursula von der Leyen"},
		"A. B. Smith Jr. and C. Jones":        {"A. B. Smith Jr.", "C. Jones"},
		"by Ana Babić":                        {"Ana Babić"},
		"Ana Babić, Ivo Perić, and Mia Jurić": {"Ana Babić", "Ivo Perić", "Mia Jurić"},
	} {
		if names, ok := parseByline(line); !ok || !reflect.DeepEqual(names, want) {
			t.Errorf("parseByline(%q) = %q, %v; want %q", line, names, ok, want)
		}
	}
}

func TestSourceName(t *testing.T) {
	for in, want := range map[string]string{
		"the Eurasia Daily Monitor": "Eurasia Daily Monitor",
		"The Economist.":            "The Economist",
		"Foreign Affairs":           "Foreign Affairs",
		"  theatre weekly ":         "theatre weekly",
		"":                          "",
	} {
		if got := sourceName(in); got != want {
			t.Errorf("sourceName(%q) = %q, want %q", in, got, want)
		}
	}
}
