package e2e

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// emailParts reads an .eml's text and HTML parts, decoded.
func emailParts(t *testing.T, path string) (text, htmlPart string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	_, params, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			return text, htmlPart
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(part)
		switch ct := part.Header.Get("Content-Type"); {
		case strings.HasPrefix(ct, "text/plain"):
			text = string(b)
		case strings.HasPrefix(ct, "text/html"):
			htmlPart = string(b)
		}
	}
}

// linksAndImages are every href and every image source of an HTML document,
// with any style attribute that loads something.
func linksAndImages(t *testing.T, doc string) (links, images, styles []string) {
	t.Helper()
	root, err := html.Parse(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			for _, a := range n.Attr {
				switch {
				case a.Key == "href":
					links = append(links, a.Val)
				case a.Key == "src" || a.Key == "srcset" || a.Key == "background" || a.Key == "poster":
					images = append(images, a.Val)
				case a.Key == "style" && strings.Contains(strings.ToLower(a.Val), "url("):
					styles = append(styles, a.Val)
				}
			}
			if n.Data == "style" && n.FirstChild != nil && strings.Contains(strings.ToLower(n.FirstChild.Data), "url(") {
				styles = append(styles, n.FirstChild.Data)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(root)
	return links, images, styles
}

var textURL = regexp.MustCompile(`https?://[^\s<>")\]]+`)

// No digest carries a tracking pixel or a click redirect: every link goes
// straight where the piece or the site says, the same for every reader but
// for the reader's own unsubscribe and preference links; every image is one
// the piece itself shows; nothing differs from reader to reader that could
// tell who opened or clicked.
func TestDigestsCarryNoTrackingPixelsOrClickRedirects(t *testing.T) {
	d := newDesk(t, `site:
  base_url: https://desk.example.org/
mail:
  transport: file
  outbox_dir: outbox
digest:
  default_cadence: immediate
  # The whole piece, so that its links and image are in the email too.
  body: full
`)
	const piece = `---
title: Grid storage after the winter
source: {name: Energy Review, url: "https://review.example.net/issue/12"}
topics: [energy]
---

The [operator's report](https://operator.example.com/reports/winter.pdf) says
storage ran low in February.

![Storage levels](https://images.example.net/storage-levels.png)

More in [our earlier piece](../other/).
`
	d.write("content/grid-storage.md", piece)
	d.write("subscribers/list.csv", "email,name\nann@example.org,Ann\nbob@example.org,Bob\n")
	if r := d.run("run"); r.code != 0 {
		t.Fatalf("run: %d\n%s", r.code, r.stderr)
	}
	emls, _ := filepath.Glob(filepath.Join(d.dir, "outbox", "*.eml"))
	if len(emls) != 2 {
		t.Fatalf("%d emails, want 2", len(emls))
	}
	// What may be linked: the site, its pages, and the piece's own links.
	allowedExternal := map[string]bool{
		"https://operator.example.com/reports/winter.pdf": true,
		"https://review.example.net/issue/12":             true,
	}
	shared := map[string][]string{} // per email: the links and images every reader gets
	for _, p := range emls {
		text, doc := emailParts(t, p)
		links, images, styles := linksAndImages(t, doc)
		if len(links) < 4 {
			t.Fatalf("%s: only %d links: %v", p, len(links), links)
		}
		var same []string
		check := func(where, raw string) {
			u, err := url.Parse(raw)
			if err != nil || !u.IsAbs() {
				t.Errorf("%s %s: not an absolute link: %q", p, where, raw)
				return
			}
			switch {
			case u.Host == "desk.example.org" && (u.Path == "/unsubscribe" || u.Path == "/preferences"):
				// The reader's own: a signed token, the one thing that differs.
				if len(u.Query()) != 1 || u.Query().Get("token") == "" {
					t.Errorf("%s %s: %q carries more than its token", p, where, raw)
				}
			case u.Host == "desk.example.org":
				// The site, a piece's page, or the digest's own page for reading it
				// in the browser (one per set of pieces, the same for every reader).
				if u.RawQuery != "" || u.Fragment != "" || !(u.Path == "/" || strings.HasPrefix(u.Path, "/pieces/") || strings.HasPrefix(u.Path, "/digests/")) {
					t.Errorf("%s %s: a link to the site that is no page of it: %q", p, where, raw)
				}
				same = append(same, raw)
			case allowedExternal[raw]:
				same = append(same, raw)
			default:
				t.Errorf("%s %s: a link the piece does not give (a redirect?): %q", p, where, raw)
			}
		}
		for _, l := range links {
			check("HTML link", l)
		}
		for _, l := range textURL.FindAllString(text, -1) {
			check("text link", strings.TrimRight(l, ".,;:"))
		}
		if !slices.Equal(images, []string{"https://images.example.net/storage-levels.png"}) {
			t.Errorf("%s: images %q, want the piece's one image and nothing else", p, images)
		}
		if len(styles) > 0 {
			t.Errorf("%s: styles that load something: %q", p, styles)
		}
		if strings.Contains(doc, "ann@example.org") && strings.Contains(doc, "bob@example.org") {
			t.Errorf("%s: both readers' addresses", p)
		}
		slices.Sort(same)
		shared[p] = same
	}
	if a, b := shared[emls[0]], shared[emls[1]]; !slices.Equal(a, b) {
		t.Errorf("the readers' links differ beyond their own:\n%v\n%v", a, b)
	}
}
