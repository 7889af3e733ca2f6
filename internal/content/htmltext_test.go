package content

import "testing"

// lede is nodesLede on a fragment, as a build works it out.
func lede(fragment string) string {
	nodes, err := parseFragment(fragment)
	if err != nil {
		return ""
	}
	return nodesLede(nodes)
}

// lede must pick what the full walk picks, however the fragment is shaped.
func TestLedeMatchesFullWalk(t *testing.T) {
	for _, frag := range []string{
		"",
		"<p>First.</p><p>Second.</p>",
		"<h2>Heading</h2><p>Then the paragraph.</p>",
		"<ul><li>only</li><li>a list</li></ul>",
		"<blockquote><p>Quoted first</p></blockquote><p>After</p>",
		"<div>loose <em>text</em></div><p>para</p>",
		"loose text before <p>a paragraph</p>",
		"<p>with <a href=\"https://example.org/\">a link</a> and<br>a break</p>",
		"<pre>code\n  kept</pre>",
		"<table><tr><td>a</td><td>b</td></tr></table>",
	} {
		_, blocks := htmlToText(frag)
		if got, want := lede(frag), ledeOf(blocks); got != want {
			t.Errorf("%q: lede %q, full walk %q", frag, got, want)
		}
	}
}

func FuzzLede(f *testing.F) {
	f.Add("<h2>Heading</h2><p>Then the paragraph.</p>")
	f.Add("<ul><li>a</li></ul>text<p>p</p>")
	f.Fuzz(func(t *testing.T, frag string) {
		_, blocks := htmlToText(frag)
		if got, want := lede(frag), ledeOf(blocks); got != want {
			t.Fatalf("%q: lede %q, full walk %q", frag, got, want)
		}
	})
}
