package content

import (
	"strings"
	"unicode"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// textBlock is one paragraph-like block of rendered HTML as plain text.
type textBlock struct {
	tag  atom.Atom // the element that made the block (p, li, h2, …)
	text string
}

// htmlToText turns a sanitised HTML fragment into plain text for the email text
// part: one block per paragraph, heading or list item (list items start with
// "- "), links written "text (url)", blocks separated by a blank line.
func htmlToText(fragment string) (text string, blocks []textBlock) {
	nodes, err := parseFragment(fragment)
	if err != nil {
		return "", nil
	}
	return nodesToText(nodes)
}

func nodesToText(nodes []*html.Node) (text string, blocks []textBlock) {
	w := &textWalker{}
	for _, n := range nodes {
		w.walk(n, false)
	}
	w.flush()
	var b strings.Builder
	for i, blk := range w.blocks {
		switch {
		case i == 0:
		case blk.tag == atom.Li && w.blocks[i-1].tag == atom.Li:
			b.WriteString("\n") // a list stays together
		default:
			b.WriteString("\n\n")
		}
		b.WriteString(blk.text)
	}
	return b.String(), w.blocks
}

// HTMLToText turns an HTML fragment (a piece's HTML, after ResolveLinks when the
// links should be absolute) into the plain text used for Piece.Text: paragraphs
// separated by a blank line, list items starting with "- ", links as "text (url)".
func HTMLToText(fragment string) string {
	text, _ := htmlToText(fragment)
	return text
}

// nodesLede returns the first paragraph of a sanitised, parsed HTML fragment
// as plain text, or its first block when it has no paragraph: what
// nodesToText's blocks give, without walking past that paragraph. A build
// that does not keep Piece.Text needs only this.
func nodesLede(nodes []*html.Node) string {
	w := &textWalker{stopAtParagraph: true}
	for _, n := range nodes {
		if w.done {
			break
		}
		w.walk(n, false)
	}
	w.flush()
	return ledeOf(w.blocks)
}

// ledeOf picks the lede from a fragment's blocks.
func ledeOf(blocks []textBlock) string {
	for _, b := range blocks {
		if b.tag == atom.P {
			return b.text
		}
	}
	if len(blocks) > 0 {
		return blocks[0].text
	}
	return ""
}

type textWalker struct {
	blocks  []textBlock
	cur     strings.Builder
	curTag  atom.Atom
	flushes int
	// stopAtParagraph ends the walk (done) once a paragraph block is complete.
	stopAtParagraph, done bool
}

func (w *textWalker) flush() {
	w.flushes++
	s := w.cur.String()
	w.cur.Reset()
	tag := w.curTag
	w.curTag = 0
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	s = strings.TrimSpace(strings.Join(lines, "\n"))
	if s == "" {
		return
	}
	if tag == atom.Li {
		s = "- " + s
	}
	w.blocks = append(w.blocks, textBlock{tag: tag, text: s})
	w.done = w.stopAtParagraph && tag == atom.P
}

func isBlock(a atom.Atom) bool {
	switch a {
	case atom.P, atom.Li, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6,
		atom.Blockquote, atom.Pre, atom.Div, atom.Tr, atom.Ul, atom.Ol, atom.Table,
		atom.Hr, atom.Dt, atom.Dd, atom.Figure, atom.Figcaption, atom.Section:
		return true
	}
	return false
}

func (w *textWalker) walk(n *html.Node, pre bool) {
	if w.done {
		return
	}
	switch n.Type {
	case html.TextNode:
		if pre {
			// Keep line breaks of code blocks; flush() collapses spaces per line only.
			w.cur.WriteString(n.Data)
		} else {
			// Spaces are collapsed in flush(); only keep that there was one.
			if strings.TrimLeftFunc(n.Data, unicode.IsSpace) != n.Data {
				w.cur.WriteString(" ")
			}
			w.cur.WriteString(strings.Join(strings.Fields(n.Data), " "))
			if strings.TrimRightFunc(n.Data, unicode.IsSpace) != n.Data {
				w.cur.WriteString(" ")
			}
		}
		return
	case html.ElementNode:
	default:
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			w.walk(c, pre)
		}
		return
	}
	block := isBlock(n.DataAtom)
	if block {
		w.flush()
		w.curTag = n.DataAtom
	}
	switch n.DataAtom {
	case atom.Br:
		w.cur.WriteByte('\n')
	case atom.Img:
		if alt := attr(n, "alt"); alt != "" {
			w.cur.WriteString("[" + alt + "]")
		}
	case atom.Td, atom.Th:
		if strings.TrimSpace(w.cur.String()) != "" {
			w.cur.WriteString(" | ")
		}
	}
	linkTextStart, flushes := w.cur.Len(), w.flushes
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		w.walk(c, pre || n.DataAtom == atom.Pre)
	}
	if w.flushes != flushes {
		// A block inside the link (<a><p>…</p></a>) flushed what came before it.
		linkTextStart = 0
	}
	if n.DataAtom == atom.A {
		href := attr(n, "href")
		linkText := strings.TrimSpace(w.cur.String()[linkTextStart:])
		shown := strings.TrimPrefix(href, "mailto:")
		if href != "" && !strings.HasPrefix(href, "#") && linkText != href && linkText != shown {
			w.cur.WriteString(" (" + shown + ")")
		}
	}
	if block {
		w.flush()
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Namespace == "" && a.Key == key {
			return a.Val
		}
	}
	return ""
}
