package content

import (
	"net/url"
	"testing"
)

func TestResolveLinks(t *testing.T) {
	base, _ := url.Parse("https://desk.example.org/analysis/pieces/lng-contracts/")
	tests := []struct{ in, want string }{
		{`<p><a href="notes.html">n</a></p>`, `<p><a href="https://desk.example.org/analysis/pieces/lng-contracts/notes.html">n</a></p>`},
		{`<a href="../other/">o</a>`, `<a href="https://desk.example.org/analysis/pieces/other/">o</a>`},
		{`<a href="/about/">a</a>`, `<a href="https://desk.example.org/about/">a</a>`},
		{`<a href="#fn1">1</a>`, `<a href="https://desk.example.org/analysis/pieces/lng-contracts/#fn1">1</a>`},
		{`<img src="map.png" alt="m">`, `<img src="https://desk.example.org/analysis/pieces/lng-contracts/map.png" alt="m"/>`},
		{`<img srcset="a.png 1x, /b.png 2x">`, `<img srcset="https://desk.example.org/analysis/pieces/lng-contracts/a.png 1x, https://desk.example.org/b.png 2x"/>`},
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

func TestHTMLToText(t *testing.T) {
	in := `<h2>Head</h2><p>One <a href="https://x.example/a">link</a> and <a href="https://x.example/b">https://x.example/b</a>.</p>` +
		`<ol><li>first</li><li>second <strong>bold</strong></li></ol><blockquote><p>quoted</p></blockquote><pre><code>a  b
c</code></pre><p>line<br>break</p>`
	want := "Head\n\nOne link (https://x.example/a) and https://x.example/b.\n\n- first\n- second bold\n\nquoted\n\na b\nc\n\nline\nbreak"
	if got := HTMLToText(in); got != want {
		t.Errorf("HTMLToText =\n%q\nwant\n%q", got, want)
	}
}
