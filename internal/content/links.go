package content

import (
	"fmt"
	"net/url"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// ResolveLinks makes every relative link and image in an HTML fragment absolute
// against base (feeds, archive and emails pass site base URL + "pieces/<slug>/"),
// so that they work wherever the HTML is read. Absolute and mailto: links stay as
// they are; javascript: URLs are dropped. The same input gives the same output.
func ResolveLinks(body string, base *url.URL) (string, error) {
	if base == nil || !base.IsAbs() {
		return "", fmt.Errorf("resolve links: base URL %v is not absolute", base)
	}
	context := &html.Node{Type: html.ElementNode, Data: "body", DataAtom: atom.Body}
	nodes, err := html.ParseFragment(strings.NewReader(body), context)
	if err != nil {
		return "", fmt.Errorf("resolve links: parse HTML: %w", err)
	}
	var b strings.Builder
	for _, n := range nodes {
		resolveNode(n, base)
		if err := html.Render(&b, n); err != nil {
			return "", fmt.Errorf("resolve links: render HTML: %w", err)
		}
	}
	return b.String(), nil
}

// urlAttrs lists, per element, the attributes that hold one URL.
var urlAttrs = map[atom.Atom][]string{
	atom.A:      {"href"},
	atom.Area:   {"href"},
	atom.Img:    {"src"},
	atom.Source: {"src"},
	atom.Video:  {"src", "poster"},
	atom.Audio:  {"src"},
	atom.Track:  {"src"},
}

func resolveNode(n *html.Node, base *url.URL) {
	if n.Type == html.ElementNode {
		keys := urlAttrs[n.DataAtom]
		kept := n.Attr[:0]
		for _, a := range n.Attr {
			switch {
			case a.Namespace != "":
			case a.Key == "srcset" && (n.DataAtom == atom.Img || n.DataAtom == atom.Source):
				a.Val = resolveSrcset(a.Val, base)
			case contains(keys, a.Key):
				v, ok := resolveURL(a.Val, base)
				if !ok {
					continue // a script URL: drop the attribute
				}
				a.Val = v
			}
			kept = append(kept, a)
		}
		n.Attr = kept
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		resolveNode(c, base)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// resolveURL returns the absolute form of ref, or false for a URL that must go.
// A reference that does not parse is left as it is: it cannot be made better.
func resolveURL(ref string, base *url.URL) (string, bool) {
	trimmed := strings.TrimSpace(ref)
	if isScriptURL(trimmed) {
		return "", false
	}
	u, err := url.Parse(trimmed)
	if err != nil {
		return ref, true
	}
	if u.IsAbs() {
		return ref, true // http:, https:, mailto:, tel: … stay as written
	}
	return base.ResolveReference(u).String(), true
}

// isScriptURL catches javascript:/vbscript:/data: schemes, also when a browser
// would ignore embedded tabs, newlines or other control characters in them.
func isScriptURL(s string) bool {
	var b strings.Builder
	for _, r := range s {
		if r > ' ' && r != 0x7f {
			b.WriteRune(r)
		}
		if b.Len() > 16 {
			break
		}
	}
	lower := strings.ToLower(b.String())
	return strings.HasPrefix(lower, "javascript:") || strings.HasPrefix(lower, "vbscript:") || strings.HasPrefix(lower, "data:text/html")
}

// resolveSrcset resolves each "url [descriptor]" candidate of a srcset.
func resolveSrcset(srcset string, base *url.URL) string {
	candidates := strings.Split(srcset, ",")
	out := make([]string, 0, len(candidates))
	for _, c := range candidates {
		fields := strings.Fields(c)
		if len(fields) == 0 {
			continue
		}
		v, ok := resolveURL(fields[0], base)
		if !ok {
			continue
		}
		fields[0] = v
		out = append(out, strings.Join(fields, " "))
	}
	return strings.Join(out, ", ")
}
