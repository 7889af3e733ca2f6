package content

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// lede is nodesLede on a fragment, as Load works it out.
func lede(fragment string) string {
	nodes, err := parseFragment(fragment)
	if err != nil {
		return ""
	}
	return nodesLede(nodes)
}

func TestLede(t *testing.T) {
	for frag, want := range map[string]string{
		"":                            "",
		"<p>First.</p><p>Second.</p>": "First.",
		"<h2>Heading</h2><p>Then the paragraph.</p>":                                    "Then the paragraph.",
		"<ul><li>only</li><li>a list</li></ul>":                                         "only a list",
		"<blockquote><p>Quoted first</p></blockquote><p>After</p>":                      "Quoted first",
		"loose text before <p>a paragraph</p>":                                          "a paragraph",
		"<p>with <a href=\"https://example.org/\">a link</a> and<br>a break</p>":        "with a link and a break",
		"<p>an <img src=\"m.png\" alt=\"map\"> and   spaces\n across lines</p><p>x</p>": "an [map] and spaces across lines",
		"<pre>code\n  kept</pre>":                                                       "code kept",
		"<table><tr><td>a</td><td>b</td></tr></table>":                                  "a b",
	} {
		if got := lede(frag); got != want {
			t.Errorf("%q: lede %q, want %q", frag, got, want)
		}
	}
}

// The plain text comes from inbucket/html2text: what a text part needs of it.
func TestHTMLToText(t *testing.T) {
	in := `<h2>Head</h2><p>One <a href="https://x.example/a">link</a> and <a href="https://x.example/b">https://x.example/b</a>.</p>` +
		`<ol><li>first</li><li>second</li></ol><blockquote><p>quoted</p></blockquote>` +
		`<table><thead><tr><th>Year</th><th>Tonnes</th></tr></thead><tbody><tr><td>2025</td><td>12,400</td></tr><tr><td>2026</td><td>9,100</td></tr></tbody></table>` +
		`<p>line<br>break</p>`
	got := HTMLToText(in)
	for _, want := range []string{
		"Head\n----",
		"One link ( https://x.example/a ) and https://x.example/b.",
		"* first\n* second",
		"> quoted",
		"line\nbreak",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("HTMLToText lacks %q:\n%s", want, got)
		}
	}
	// A table is laid out in columns, one row a line, not run together.
	var rows []string
	for _, l := range strings.Split(got, "\n") {
		if strings.HasPrefix(l, "|") {
			rows = append(rows, strings.Join(strings.Fields(l), " "))
		}
	}
	if strings.Join(rows, "\n") != "| YEAR | TONNES |\n| 2025 | 12,400 |\n| 2026 | 9,100 |" {
		t.Errorf("table rows %q in:\n%s", rows, got)
	}
}

func TestPlainText(t *testing.T) {
	txt := Piece{HTML: "<p>a</p>", Text: "kept as the file gave it"}
	if got := PlainText(&txt); got != txt.Text {
		t.Errorf("plain-text piece: %q", got)
	}
	md := Piece{HTML: `<p>One &amp; <em>two</em>.</p><p>Three.</p>`}
	if got := PlainText(&md); got != "One & two.\n\nThree." {
		t.Errorf("Markdown piece: %q", got)
	}
}

func FuzzLede(f *testing.F) {
	f.Add("<h2>Heading</h2><p>Then the paragraph.</p>")
	f.Add("<ul><li>a</li></ul>text<p>p</p>")
	f.Fuzz(func(t *testing.T, frag string) {
		if !utf8.ValidString(frag) {
			return
		}
		got := lede(frag)
		if !utf8.ValidString(got) || got != strings.Join(strings.Fields(got), " ") {
			t.Fatalf("%q: lede %q is not one line of collapsed text", frag, got)
		}
		_ = HTMLToText(frag) // must not panic
	})
}

// BenchmarkHTMLToText is one 6-paragraph piece with a heading, two links and
// a small table, parsed and converted (docs/benchmarks.md compares it with the
// hand-written converter it replaced).
func BenchmarkHTMLToText(b *testing.B) {
	var body strings.Builder
	for i := range 6 {
		if i == 2 {
			body.WriteString("<h2>Section 2</h2>\n")
		}
		body.WriteString("<p>")
		for range 6 {
			body.WriteString("Analysts expect the ministry to revise its forecast after pipeline tariffs rose sharply. ")
		}
		if i == 1 {
			body.WriteString(`See <a href="https://desk.example/pieces/a/">the piece before</a> and <a href="https://source.example/r/1">the report</a>.`)
		}
		body.WriteString("</p>\n")
	}
	body.WriteString("<table><tr><th>Year</th><th>Volume</th></tr><tr><td>2025</td><td>12</td></tr></table>")
	for b.Loop() {
		HTMLToText(body.String())
	}
}
