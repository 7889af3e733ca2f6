package content

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

func TestResolveLinks(t *testing.T) {
	base, _ := url.Parse("https://desk.example.org/analysis/pieces/lng-contracts/")
	tests := []struct{ in, want string }{
		{`<p><a href="notes.html">n</a></p>`, `<p><a href="https://desk.example.org/analysis/pieces/lng-contracts/notes.html">n</a></p>`},
		{`<a href="../other/">o</a>`, `<a href="https://desk.example.org/analysis/pieces/other/">o</a>`},
		{`<a href="/about/">a</a>`, `<a href="https://desk.example.org/about/">a</a>`},
		{`<a href="#fn1">1</a>`, `<a href="https://desk.example.org/analysis/pieces/lng-contracts/#fn1">1</a>`},
		{`<img src="map.png" alt="m">`, `<img src="https://desk.example.org/analysis/pieces/lng-contracts/map.png" alt="m">`},
		{`<p><IMG SRC='map.png' alt="a &amp; b"/></p>`, `<p><img src="https://desk.example.org/analysis/pieces/lng-contracts/map.png" alt="a &amp; b"/></p>`},
		{`<img srcset="a.png 1x, /b.png 2x">`, `<img srcset="https://desk.example.org/analysis/pieces/lng-contracts/a.png 1x, https://desk.example.org/b.png 2x">`},
		{`<p class=x>untouched <a  href="https://other.example/">as written</a><br></p>`, `<p class=x>untouched <a  href="https://other.example/">as written</a><br></p>`},
		{`<a href="https://other.example/x?a=1&amp;b=2">x</a>`, `<a href="https://other.example/x?a=1&amp;b=2">x</a>`},
		{`<a href="mailto:desk@example.org">m</a>`, `<a href="mailto:desk@example.org">m</a>`},
		{`<a href="//cdn.example.net/x.js">p</a>`, `<a href="https://cdn.example.net/x.js">p</a>`},
		{`<a href=" JavaScript:alert(1)" title="t">j</a>`, `<a title="t">j</a>`},
		{`<a href="java&#x09;script:alert(1)">j</a>`, `<a>j</a>`},
		{`text &amp; <em>more</em>`, `text &amp; <em>more</em>`},
		{``, ``},
	}
	for _, tc := range tests {
		got, err := ResolveLinks(tc.in, base)
		if err != nil {
			t.Errorf("ResolveLinks(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ResolveLinks(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
		again, _ := ResolveLinks(got, base)
		if again != got {
			t.Errorf("ResolveLinks is not stable on its own output: %q -> %q", got, again)
		}
	}
}

func TestResolveLinksNeedsAnAbsoluteBase(t *testing.T) {
	rel, _ := url.Parse("pieces/x/")
	for _, base := range []*url.URL{nil, rel} {
		if _, err := ResolveLinks(`<a href="a">a</a>`, base); err == nil {
			t.Errorf("base %v: no error", base)
		}
	}
}

// resolveTree is ResolveLinks as a browser would see it: parse the fragment,
// resolve the URL attributes on the tree, write it back. The streaming
// ResolveLinks must give a page the same tree.
func resolveTree(t *testing.T, body string, base *url.URL) string {
	t.Helper()
	out, err := resolveParsed(body, base)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func FuzzResolveLinks(f *testing.F) {
	f.Add(`<p><a href="notes.html">n</a> <img src=map.png srcset="a.png 1x, /b.png 2x"></p>`)
	f.Add(`<a href=" JavaScript:alert(1)" title="t">j</a><video src=v.mp4 poster=p.png></video>`)
	f.Add(`<div><b><i>misnested</b></i><a href="x"><p>block in a link`)
	f.Add(`<textarea><a href="x"></textarea><style>a{}</style><svg><a href="y"/></svg>`)
	f.Add(`<svg><style><a href=""></a></style></svg>`)
	base, _ := url.Parse("https://desk.example.org/pieces/one/")
	f.Fuzz(func(t *testing.T, fragment string) {
		balanced, err := balance(fragment)
		if err != nil {
			t.Skip() // not HTML the parser accepts
		}
		got, err := ResolveLinks(balanced, base)
		if err != nil {
			t.Fatalf("ResolveLinks(%q): %v", balanced, err)
		}
		gotTree, err := balance(got)
		if err != nil {
			t.Fatal(err)
		}
		if want := resolveTree(t, balanced, base); gotTree != want {
			t.Fatalf("ResolveLinks(%q) = %q\nparsed: %q\nwant:   %q", balanced, got, gotTree, want)
		}
	})
}

// A Markdown piece's raw HTML may leave elements open or misnest them; the
// body must come out balanced, or it would swallow the rest of the page.
func TestParseMarkdownBalancesRawHTML(t *testing.T) {
	p, probs := ParseMarkdown("raw.md", []byte("---\ntitle: Raw\n---\nBefore.\n\n<div class=\"x\">\n\n*open <b>bold <i>both</b> end*\n\n<table><tr><td>cell\n"))
	if hasError(probs) {
		t.Fatalf("problems: %v", probs)
	}
	z := html.NewTokenizer(strings.NewReader(p.HTML))
	var open []string
	for tt := z.Next(); tt != html.ErrorToken; tt = z.Next() {
		name, _ := z.TagName()
		switch tt {
		case html.StartTagToken:
			if a := atom.Lookup(name); a != atom.Br && a != atom.Img && a != atom.Hr {
				open = append(open, string(name))
			}
		case html.EndTagToken:
			if len(open) == 0 || open[len(open)-1] != string(name) {
				t.Fatalf("</%s> does not close the last open element (%v) in %q", name, open, p.HTML)
			}
			open = open[:len(open)-1]
		}
	}
	if len(open) > 0 {
		t.Errorf("left open: %v in %q", open, p.HTML)
	}
	if !strings.Contains(p.HTML, "<p>Before.</p>") || !strings.Contains(p.HTML, "cell") {
		t.Errorf("HTML lost content: %q", p.HTML)
	}
}

// With a LinkBase, a body's links are made absolute as it loads: the HTML, the
// plain text (an email's text part) and the lede all carry absolute URLs, and
// PieceHTML has nothing left to do for that base.
func TestLoadResolvesLinksAgainstLinkBase(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"gauge.md": "---\ntitle: Gauge\n---\nSee [the note](notes/gauge.html) and ![map](map.png) or [the desk](https://desk.example.org/).\n",
		"wire.txt": "Ana Babić\nA plain-text body with notes/gauge.html in it.\n",
	})
	site, _ := url.Parse("https://archive.example.org/analysis/")
	base := func(slug string) *url.URL { return site.ResolveReference(&url.URL{Path: "pieces/" + slug + "/"}) }
	pieces, problems, err := Load(context.Background(), dir, Options{LinkBase: base})
	if err != nil || hasError(problems) {
		t.Fatal(err, problems)
	}
	byID := map[string]Piece{}
	for _, p := range pieces {
		byID[p.ID] = p
	}
	md := byID["gauge"]
	for _, want := range []string{`href="https://archive.example.org/analysis/pieces/gauge/notes/gauge.html"`, `src="https://archive.example.org/analysis/pieces/gauge/map.png"`, `href="https://desk.example.org/"`} {
		if !strings.Contains(md.HTML, want) {
			t.Errorf("HTML lacks %s:\n%s", want, md.HTML)
		}
	}
	if want := "the note ( https://archive.example.org/analysis/pieces/gauge/notes/gauge.html )"; !strings.Contains(PlainText(&md), want) {
		t.Errorf("text %q lacks %q", PlainText(&md), want)
	}
	if md.LinksBase != base("gauge").String() || byID["wire"].LinksBase != base("wire").String() {
		t.Errorf("LinksBase %q, %q", md.LinksBase, byID["wire"].LinksBase)
	}
	if got, err := PieceHTML(&md, base("gauge")); err != nil || got != md.HTML {
		t.Errorf("PieceHTML against the load's base changed the body: %v", err)
	}
	// Another base finds the links absolute already and leaves them.
	other, _ := url.Parse("https://mirror.example.net/p/gauge/")
	if got, _ := PieceHTML(&md, other); strings.Contains(got, "mirror.example.net") || !strings.Contains(got, "archive.example.org") {
		t.Errorf("PieceHTML against another base: %s", got)
	}

	// Without a LinkBase the body keeps its links as written.
	plain, _, err := Load(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range plain {
		if p.LinksBase != "" || (p.ID == "gauge" && !strings.Contains(p.HTML, `href="notes/gauge.html"`)) {
			t.Errorf("%s: LinksBase %q, HTML %s", p.ID, p.LinksBase, p.HTML)
		}
		if p.ID == "gauge" {
			got, err := PieceHTML(&p, base("gauge"))
			if err != nil || got != md.HTML {
				t.Errorf("PieceHTML resolving now:\n%s\nwant the body resolved at load:\n%s", got, md.HTML)
			}
		}
	}
}
