package content

import (
	"strings"

	"github.com/inbucket/html2text"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// PlainText is p's body as plain text, for the text part of an email:
// paragraphs separated by a blank line, headings underlined, list items
// starting with "* ", links as "text ( url )", tables laid out in ASCII.
// A plain-text piece carries it from its file (Piece.Text); a Markdown piece's
// is worked out from its HTML here, by inbucket/html2text, only when asked:
// a build never needs it, and a digest only for the pieces it carries.
func PlainText(p *Piece) string {
	if p.Text != "" {
		return p.Text
	}
	if p.HTML == "" && p.body != nil {
		if _, text, err := p.body.get(); err == nil && text != "" {
			return text
		}
	}
	body, _ := Body(p)
	return HTMLToText(body)
}

// HTMLToText turns an HTML fragment (a piece's HTML, with its links already
// absolute when they should be) into plain text, as PlainText describes.
func HTMLToText(fragment string) string {
	nodes, err := parseFragment(fragment)
	if err != nil {
		return ""
	}
	root := &html.Node{Type: html.DocumentNode}
	for _, n := range nodes {
		root.AppendChild(n)
	}
	text, err := html2text.FromHTMLNode(root, html2text.Options{PrettyTables: true})
	if err != nil {
		return ""
	}
	return text
}

// nodesLede is the lede of a sanitised, parsed HTML fragment: the text of its
// first paragraph, or of its first block when it has no paragraph, with
// spaces collapsed and no markup or link addresses (it stands in for a summary).
func nodesLede(nodes []*html.Node) string {
	for _, n := range nodes {
		if p := firstElement(n, atom.P); p != nil {
			return collapse(textContent(p))
		}
	}
	for _, n := range nodes {
		if s := collapse(textContent(n)); s != "" {
			return s
		}
	}
	return ""
}

// firstElement is the first element named a in n's subtree, in document order.
func firstElement(n *html.Node, a atom.Atom) *html.Node {
	if n.Type == html.ElementNode && n.DataAtom == a {
		return n
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if found := firstElement(c, a); found != nil {
			return found
		}
	}
	return nil
}

// textContent is the text under n; a line break or a block boundary becomes a
// space, and images count by their alt text.
func textContent(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		switch {
		case n.Type == html.TextNode:
			b.WriteString(n.Data)
		case n.Type == html.ElementNode && n.DataAtom == atom.Br:
			b.WriteByte(' ')
		case n.Type == html.ElementNode && n.DataAtom == atom.Img:
			if alt := attr(n, "alt"); alt != "" {
				b.WriteString("[" + alt + "]")
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
		if n.Type == html.ElementNode && n.DataAtom != atom.A && isBlock(n.DataAtom) {
			b.WriteByte(' ')
		}
	}
	walk(n)
	return b.String()
}

func collapse(s string) string { return strings.Join(strings.Fields(s), " ") }

func isBlock(a atom.Atom) bool {
	switch a {
	case atom.P, atom.Li, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6,
		atom.Blockquote, atom.Pre, atom.Div, atom.Tr, atom.Td, atom.Th, atom.Ul, atom.Ol,
		atom.Table, atom.Hr, atom.Dt, atom.Dd, atom.Figure, atom.Figcaption, atom.Section:
		return true
	}
	return false
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Namespace == "" && a.Key == key {
			return a.Val
		}
	}
	return ""
}
