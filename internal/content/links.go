package content

import (
	"fmt"
	"io"
	"net/url"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// ResolveLinks makes every relative link and image in an HTML fragment absolute
// against base (feeds, archive and emails pass site base URL + "pieces/<slug>/"),
// so that they work wherever the HTML is read. Absolute and mailto: links stay as
// they are; javascript: URLs are dropped. The same input gives the same output.
//
// Only the tags holding such a URL are rewritten; every other byte is copied as
// it is, so body must already be whole, balanced HTML, as a Piece's HTML is (Load
// makes it so).
func ResolveLinks(body string, base *url.URL) (string, error) {
	if base == nil || !base.IsAbs() {
		return "", fmt.Errorf("resolve links: base URL %v is not absolute", base)
	}
	if strings.IndexByte(body, '=') < 0 {
		return body, nil // no attribute, so no URL (a plain-text piece's body)
	}
	var (
		b      strings.Builder
		copied int // body[:copied] is in b, or unchanged when b is empty
		offset int // where the current token starts in body
		attrs  []html.Attribute
	)
	z := html.NewTokenizer(strings.NewReader(body))
	for {
		tt := z.Next()
		start := offset
		offset += len(z.Raw())
		if tt == html.ErrorToken {
			if err := z.Err(); err != io.EOF {
				return "", fmt.Errorf("resolve links: read HTML: %w", err)
			}
			break
		}
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
			continue
		}
		name, more := z.TagName()
		a := atom.Lookup(name)
		if a == atom.Svg || a == atom.Math {
			// Inside these the parser reads <style> and the like as elements,
			// where a tokenizer sees only text; such a body (the sanitiser lets
			// none through) takes the slow way, through the parsed tree.
			return resolveParsed(body, base)
		}
		if !more || urlAttrs[a] == nil {
			continue
		}
		tag := string(name) // z's buffer is reused by TagAttr
		attrs = attrs[:0]
		changed := false
		for more {
			var k, v []byte
			k, v, more = z.TagAttr()
			key, val := string(k), string(v)
			resolved, keep := resolveAttr(a, key, val, base)
			changed = changed || !keep || resolved != val
			if keep {
				attrs = append(attrs, html.Attribute{Key: key, Val: resolved})
			}
		}
		if !changed {
			continue
		}
		b.Grow(len(body) + 256)
		b.WriteString(body[copied:start])
		b.WriteString(html.Token{Type: tt, Data: tag, Attr: attrs}.String())
		copied = offset
	}
	if b.Len() == 0 && copied == 0 {
		return body, nil
	}
	b.WriteString(body[copied:])
	return b.String(), nil
}

// PieceHTML is p's body with its links absolute against base, the URL the
// piece is read at: as loaded when Load made them absolute against that same
// URL (Options.LinkBase), else resolved now with ResolveLinks.
func PieceHTML(p *Piece, base *url.URL) (string, error) {
	body, err := Body(p)
	if err != nil {
		return "", err
	}
	if p.LinksBase != "" && base != nil && p.LinksBase == base.String() {
		return body, nil
	}
	return ResolveLinks(body, base)
}

func resolveParsed(body string, base *url.URL) (string, error) {
	nodes, err := parseFragment(body)
	if err != nil {
		return "", fmt.Errorf("resolve links: %w", err)
	}
	for _, n := range nodes {
		resolveNode(n, base)
	}
	out, err := renderNodes(nodes, len(body))
	if err != nil {
		return "", fmt.Errorf("resolve links: %w", err)
	}
	return out, nil
}

func resolveNode(n *html.Node, base *url.URL) {
	if n.Type == html.ElementNode {
		kept := n.Attr[:0]
		for _, a := range n.Attr {
			if a.Namespace == "" {
				v, keep := resolveAttr(n.DataAtom, a.Key, a.Val, base)
				if !keep {
					continue
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

// balance parses an HTML fragment as a browser would in a page's body and
// writes it back: every element closed, misnested tags put right, as Load
// leaves a Markdown body. A piece's body is printed inside the archive's pages
// and emails, where an element left open would swallow the rest of the page.
func balance(fragment string) (string, error) {
	nodes, err := parseFragment(fragment)
	if err != nil {
		return "", err
	}
	return renderNodes(nodes, len(fragment))
}

func parseFragment(fragment string) ([]*html.Node, error) {
	return parseFragmentFrom(strings.NewReader(fragment))
}

func parseFragmentFrom(r io.Reader) ([]*html.Node, error) {
	nodes, err := html.ParseFragment(r, &html.Node{Type: html.ElementNode, Data: "body", DataAtom: atom.Body})
	if err != nil {
		return nil, fmt.Errorf("parse HTML: %w", err)
	}
	return nodes, nil
}

func renderNodes(nodes []*html.Node, sizeHint int) (string, error) {
	var b strings.Builder
	b.Grow(sizeHint + sizeHint/8)
	for _, n := range nodes {
		if err := html.Render(&b, n); err != nil {
			return "", fmt.Errorf("render HTML: %w", err)
		}
	}
	return b.String(), nil
}

// resolveAttr is the value attribute key of an element el should have with
// its URLs absolute against base, or false for an attribute to drop (a
// script URL). Attributes that hold no URL keep their value.
func resolveAttr(el atom.Atom, key, val string, base *url.URL) (string, bool) {
	switch {
	case key == "srcset" && (el == atom.Img || el == atom.Source):
		return resolveSrcset(val, base), true
	case contains(urlAttrs[el], key):
		return resolveURL(val, base)
	}
	return val, true
}

// urlAttrs lists, per element, the attributes that hold one URL (img and
// source also take a srcset of them).
var urlAttrs = map[atom.Atom][]string{
	atom.A:      {"href"},
	atom.Area:   {"href"},
	atom.Img:    {"src"},
	atom.Source: {"src"},
	atom.Video:  {"src", "poster"},
	atom.Audio:  {"src"},
	atom.Track:  {"src"},
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
