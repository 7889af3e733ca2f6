package digest

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"
	"unicode/utf8"
	"unsafe"

	"golang.org/x/net/html"

	"publisher/internal/content"
	"publisher/templates"
)

func parseHTML(t *testing.T, s string) *html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(s))
	if err != nil {
		t.Fatalf("parsing rendered HTML: %v", err)
	}
	return doc
}

// findAll returns every element named tag under n, in document order.
func findAll(n *html.Node, tag string) []*html.Node {
	var out []*html.Node
	for d := range n.Descendants() {
		if d.Type == html.ElementNode && d.Data == tag {
			out = append(out, d)
		}
	}
	return out
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func textOf(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return b.String()
}

// anchorsByText maps each link's text to its href.
func anchorsByText(doc *html.Node) map[string][]string {
	out := map[string][]string{}
	for _, a := range findAll(doc, "a") {
		text := strings.TrimSpace(textOf(a))
		out[text] = append(out[text], attr(a, "href"))
	}
	return out
}

var mediaBlock = regexp.MustCompile(`(?s)@media[^{]*\{(?:[^{}]*\{[^{}]*\})*[^{}]*\}`)

func TestRenderHTML(t *testing.T) {
	r := newTestRenderer(t)
	out, err := r.Render(Recipient{Name: "Ana Petrova", Email: "ana@example.org"}, samplePieces(), testLinks)
	if err != nil {
		t.Fatal(err)
	}
	doc := parseHTML(t, out.HTML)

	t.Run("single-column table layout about 600px wide", func(t *testing.T) {
		found := false
		for _, table := range findAll(doc, "table") {
			if attr(table, "width") == "600" && strings.Contains(attr(table, "style"), "max-width:600px") && attr(table, "role") == "presentation" {
				found = true
				for _, tr := range findAll(table, "tr") {
					if n := len(findAll(tr, "td")); n != 1 {
						t.Errorf("a row of the container has %d cells, want 1", n)
					}
				}
			}
		}
		if !found {
			t.Error("no presentation table 600px wide")
		}
	})

	t.Run("hidden preheader", func(t *testing.T) {
		body := findAll(doc, "body")[0]
		var first *html.Node
		for c := body.FirstChild; c != nil; c = c.NextSibling {
			if c.Type == html.ElementNode {
				first = c
				break
			}
		}
		if first == nil || !strings.Contains(attr(first, "style"), "display:none") || !strings.Contains(attr(first, "style"), "max-height:0") {
			t.Fatalf("first element of body is not a hidden preheader: %v", first)
		}
		if !strings.HasPrefix(textOf(first), out.Preheader) || out.Preheader == "" {
			t.Errorf("preheader text %q does not start with %q", textOf(first), out.Preheader)
		}
	})

	t.Run("no external stylesheet and only media queries left in style", func(t *testing.T) {
		for _, l := range findAll(doc, "link") {
			if strings.Contains(strings.ToLower(attr(l, "rel")), "stylesheet") {
				t.Errorf("external stylesheet link: %v", l.Attr)
			}
		}
		styles := findAll(doc, "style")
		if len(styles) == 0 {
			t.Fatal("the dark-mode and narrow-screen media queries are gone")
		}
		for _, s := range styles {
			css := textOf(s)
			if !strings.Contains(css, "prefers-color-scheme: dark") {
				t.Errorf("style without the dark-mode query: %q", css)
			}
			if rest := strings.TrimSpace(mediaBlock.ReplaceAllString(css, "")); rest != "" {
				t.Errorf("CSS left un-inlined outside media queries: %q", rest)
			}
		}
	})

	t.Run("every cell sets background and text colour", func(t *testing.T) {
		cells := findAll(doc, "td")
		if len(cells) < 5 {
			t.Fatalf("only %d cells", len(cells))
		}
		for _, td := range cells {
			style := attr(td, "style")
			if !regexp.MustCompile(`(^|;)background-color:#`).MatchString(style) || !regexp.MustCompile(`(^|;)color:#`).MatchString(style) || attr(td, "bgcolor") == "" {
				t.Errorf("cell %q lacks explicit background and text colours: %q", attr(td, "class"), style)
			}
		}
		schemes := map[string]string{}
		for _, m := range findAll(doc, "meta") {
			schemes[attr(m, "name")] = attr(m, "content")
		}
		if schemes["color-scheme"] != "light dark" || schemes["supported-color-schemes"] != "light dark" {
			t.Errorf("colour-scheme metas = %v", schemes)
		}
	})

	t.Run("items: linked titles, authors with roles, dates, source, summary, full text", func(t *testing.T) {
		links := anchorsByText(doc)
		for title, url := range map[string]string{
			"Grid operators brace for a dry winter":   "https://desk.example.org/analysis/pieces/grid-winter/",
			"Border talks resume after a quiet month": "https://partner.example.com/2026/border-talks",
		} {
			if got := links[title]; len(got) != 1 || got[0] != url {
				t.Errorf("title %q links to %v, want %s", title, got, url)
			}
		}
		// The full text is all there is to read: no link after it to read it again.
		if got := links["Continue reading"]; len(got) != 0 {
			t.Errorf("continue-reading links next to the full text = %v", got)
		}
		if got := links["Read more"]; len(got) != 0 {
			t.Errorf("read-more links next to the full text = %v", got)
		}
		if got := links["Regional Monitor"]; len(got) != 1 || got[0] != "https://monitor.example.com/" {
			t.Errorf("source link = %v", got)
		}
		if got := links["the data"]; len(got) != 1 || got[0] != "https://desk.example.org/analysis/pieces/data/" {
			t.Errorf("relative link in the body was not made absolute: %v", got)
		}
		page := textOf(doc)
		for _, want := range []string{
			"By Ana Petrova (analyst) and Li Wen", "1 March 2026", "Source: Regional Monitor",
			"By Sam Okafor (editor)", "27 February 2026",
			"Reservoir levels are low and import capacity is booked",
			"Hello Ana Petrova,", "here are the 2 new pieces from The Eastern Desk",
		} {
			if !strings.Contains(page, want) {
				t.Errorf("HTML text lacks %q", want)
			}
		}
		// The second piece has no summary: its lede is the body's first paragraph, shown once.
		if n := strings.Count(page, "Negotiators met again"); n != 1 {
			t.Errorf("lede shown %d times, want once", n)
		}
	})

	t.Run("unsubscribe and preferences links", func(t *testing.T) {
		links := anchorsByText(doc)
		if got := links["Unsubscribe"]; len(got) != 1 || got[0] != testLinks.Unsubscribe {
			t.Errorf("unsubscribe links = %v, want [%s]", got, testLinks.Unsubscribe)
		}
		if got := links["Change your preferences"]; len(got) != 1 || got[0] != testLinks.Preferences {
			t.Errorf("preferences links = %v", got)
		}
		if !strings.Contains(textOf(doc), "because ana@example.org is subscribed") {
			t.Error("footer does not say which address is subscribed")
		}
	})
}

func TestRenderText(t *testing.T) {
	r := newTestRenderer(t)
	out, err := r.Render(Recipient{Name: "Ana Petrova", Email: "ana@example.org"}, samplePieces(), testLinks)
	if err != nil {
		t.Fatal(err)
	}
	text := out.Text
	for _, want := range []string{
		"The Eastern Desk: 2 new pieces\n",
		"Hello Ana Petrova,\n",
		"\nGrid operators brace for a dry winter\nBy Ana Petrova (analyst) and Li Wen\n1 March 2026 · Source: Regional Monitor\n",
		"\nBorder talks resume after a quiet month\nBy Sam Okafor (editor)\n27 February 2026\n",
		"Reservoirs stand at a third of capacity.\n",
		"Unsubscribe:\n" + testLinks.Unsubscribe + "\n", // raw, not HTML-escaped
		"Change your preferences:\n" + testLinks.Preferences + "\n",
		strings.Repeat("-", 72) + "\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text part lacks %q", want)
		}
	}
	if strings.Contains(text, "<") || strings.Contains(text, "&amp;") {
		t.Error("text part carries markup")
	}
	if strings.Contains(text, "\n\n\n") {
		t.Error("text part has runs of blank lines")
	}
	if !strings.Contains(text, "Reservoir levels are low and import capacity is booked; the margin for a\ncold snap is thin.") {
		t.Errorf("summary not wrapped at 72 columns:\n%s", text)
	}
	for i, line := range strings.Split(text, "\n") {
		if utf8.RuneCountInString(line) > 72 && strings.Contains(line, " ") && !strings.Contains(line, "http") {
			t.Errorf("line %d longer than 72 columns: %q", i+1, line)
		}
	}
}

func TestRenderHostileInput(t *testing.T) {
	r := newTestRenderer(t)
	hostile := content.Piece{
		ID: "x", Hash: "hx", FirstSeen: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC),
		Title:   "<script>alert(1)</script> Rock & \"Roll\"\r\nBcc: victim@example.com",
		Summary: "<img src=x onerror=alert(1)> summary",
		Authors: []content.Author{{Name: "<b>Mallory</b>", Role: "\"role\""}},
		Source:  content.Source{Name: "Evil", URL: "javascript:alert(1)"},
	}
	out, err := r.Render(Recipient{Name: "<i>Eve</i>\r\nX-Evil: 1", Email: "eve@example.org"}, []content.Piece{hostile}, testLinks)
	if err != nil {
		t.Fatal(err)
	}
	doc := parseHTML(t, out.HTML)
	if n := len(findAll(doc, "script")) + len(findAll(doc, "img")) + len(findAll(doc, "b")) + len(findAll(doc, "i")); n != 0 {
		t.Errorf("%d injected elements made it into the HTML", n)
	}
	page := textOf(doc)
	for _, want := range []string{
		`<script>alert(1)</script> Rock & "Roll" Bcc: victim@example.com`,
		"<img src=x onerror=alert(1)> summary",
		`By <b>Mallory</b> ("role")`,
		"Hello <i>Eve</i> X-Evil: 1,",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("escaped text %q not shown as text", want)
		}
	}
	for _, a := range findAll(doc, "a") {
		if strings.HasPrefix(strings.ToLower(attr(a, "href")), "javascript:") {
			t.Errorf("javascript: link survived: %v", a.Attr)
		}
	}
	if strings.ContainsAny(out.Subject, "\r\n") || strings.ContainsAny(out.Preheader, "\r\n") {
		t.Errorf("line break in subject %q or preheader %q", out.Subject, out.Preheader)
	}
	if out.Subject != `<script>alert(1)</script> Rock & "Roll" Bcc: victim@example.com` {
		t.Errorf("subject = %q", out.Subject)
	}
}

func TestSubject(t *testing.T) {
	piece := func(id, title string, day int) content.Piece {
		return content.Piece{ID: id, Hash: id, Title: title, FirstSeen: time.Date(2026, 3, day, 0, 0, 0, 0, time.UTC)}
	}
	long := strings.Repeat("Ünïcödé words ", 20)
	tests := []struct {
		name     string
		template string
		pieces   []content.Piece
		want     string
	}{
		{"one piece", "", []content.Piece{piece("a", "Only piece", 1)}, "Only piece"},
		{"newest and a count", "", []content.Piece{piece("a", "Older", 1), piece("b", "Newest", 3), piece("c", "Middle", 2)}, "Newest + 2 more"},
		{"non-ASCII kept", "", []content.Piece{piece("a", "Žurnál: ceny energií v Česku", 1)}, "Žurnál: ceny energií v Česku"},
		{"control characters removed", "", []content.Piece{piece("a", "Line\r\none\x00\x1b[31m\u2028two\ttabs", 1)}, "Line one [31m two tabs"},
		{"custom template", "{{.Site.Title}}: {{.Count}} new", []content.Piece{piece("a", "A", 1), piece("b", "B", 2)}, "The Eastern Desk: 2 new"},
		{"template can truncate", "{{truncate 10 .Newest.Title}}{{if .More}} + {{.More}} more{{end}}", []content.Piece{piece("a", "A very long headline indeed", 1), piece("b", "Z", 0)}, "A very… + 1 more"},
		{"empty result falls back to the site title", "{{if false}}x{{end}}", []content.Piece{piece("a", "A", 1)}, "The Eastern Desk"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewRenderer(templates.Embedded(), testSite, tt.template)
			if err != nil {
				t.Fatal(err)
			}
			out, err := r.Render(Recipient{Email: "a@example.org"}, tt.pieces, testLinks)
			if err != nil {
				t.Fatal(err)
			}
			if out.Subject != tt.want {
				t.Errorf("subject = %q, want %q", out.Subject, tt.want)
			}
		})
	}
	t.Run("long subject truncated at a word", func(t *testing.T) {
		r := newTestRenderer(t)
		out, err := r.Render(Recipient{Email: "a@example.org"}, []content.Piece{piece("a", long, 1)}, testLinks)
		if err != nil {
			t.Fatal(err)
		}
		kept, cut := strings.CutSuffix(out.Subject, "…")
		if n := utf8.RuneCountInString(out.Subject); n > maxSubjectRunes || !cut || !strings.HasPrefix(long, kept+" ") {
			t.Errorf("subject of %d runes not cut at a word: %q", n, out.Subject)
		}
	})
}

func TestNewRendererErrors(t *testing.T) {
	good := func() fstest.MapFS {
		fsys := fstest.MapFS{}
		for _, name := range []string{HTMLTemplate, TextTemplate, Stylesheet} {
			b, err := templates.Embedded().(interface{ ReadFile(string) ([]byte, error) }).ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			fsys[name] = &fstest.MapFile{Data: b}
		}
		return fsys
	}
	brokenHTML := good()
	brokenHTML[HTMLTemplate] = &fstest.MapFile{Data: []byte("<html>\n<body>\n{{if .Items}}")}
	brokenText := good()
	brokenText[TextTemplate] = &fstest.MapFile{Data: []byte("line one\n{{.Site.Title\n")}
	missing := good()
	delete(missing, Stylesheet)
	tests := []struct {
		name    string
		fsys    fstest.MapFS
		site    SiteInfo
		subject string
		want    string
	}{
		{"HTML syntax error names file and line", brokenHTML, testSite, "", "digest.html.tmpl:3"},
		{"text syntax error names file and line", brokenText, testSite, "", "digest.txt.tmpl:2"},
		{"missing stylesheet", missing, testSite, "", "digest.css"},
		{"bad subject template", good(), testSite, "{{.Newest.Title", "subject template"},
		{"relative base URL", good(), SiteInfo{Title: "x", BaseURL: "/site/"}, "", "base URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewRenderer(tt.fsys, tt.site, tt.subject)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
	t.Run("subject execution error", func(t *testing.T) {
		r, err := NewRenderer(good(), testSite, "{{.Nope}}")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Render(Recipient{Email: "a@example.org"}, samplePieces(), testLinks); err == nil || !strings.Contains(err.Error(), "subject") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestRenderRejects(t *testing.T) {
	r := newTestRenderer(t)
	if _, err := r.Render(Recipient{Email: "a@example.org"}, nil, testLinks); err == nil {
		t.Error("rendered a digest of nothing")
	}
	for _, links := range []Links{
		{Unsubscribe: "javascript:alert(1)", Preferences: testLinks.Preferences},
		{Unsubscribe: testLinks.Unsubscribe, Preferences: ""},
		{Unsubscribe: "/unsubscribe", Preferences: testLinks.Preferences},
	} {
		if _, err := r.Render(Recipient{Email: "a@example.org"}, samplePieces(), links); err == nil {
			t.Errorf("accepted links %+v", links)
		}
	}
}

func manyPieces(n, bodyParagraphs int) []content.Piece {
	pieces := make([]content.Piece, n)
	para := strings.Repeat("Analysts expect the pipeline tariff dispute to drag on well into the next heating season. ", 6)
	for i := range pieces {
		var body, text strings.Builder
		for range bodyParagraphs {
			body.WriteString("<p>" + para + "</p>")
			text.WriteString(para + "\n\n")
		}
		pieces[i] = content.Piece{
			ID: fmt.Sprintf("piece-%03d", i), Slug: fmt.Sprintf("piece-%03d", i), Hash: fmt.Sprintf("h%d", i),
			Title:     fmt.Sprintf("Piece number %d on the long winter ahead", i),
			Authors:   []content.Author{{Name: "Ana Petrova", Role: "analyst"}},
			Date:      time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Hour),
			FirstSeen: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
			Summary:   fmt.Sprintf("Summary %d: the short version of a long argument about gas storage.", i),
			HTML:      body.String(), Text: text.String(),
		}
	}
	return pieces
}

func TestRenderSizeLimit(t *testing.T) {
	r := newTestRenderer(t)
	rcpt := Recipient{Name: "Ana", Email: "ana@example.org"}

	small, err := r.Render(rcpt, manyPieces(2, 2), testLinks)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(small.HTML, "Analysts expect the pipeline") || !strings.Contains(small.Text, "Analysts expect the pipeline") {
		t.Error("a short digest should carry the full text")
	}

	out, err := r.Render(rcpt, manyPieces(40, 12), testLinks)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.HTML) > MaxHTMLBytes {
		t.Errorf("HTML is %d bytes, over %d", len(out.HTML), MaxHTMLBytes)
	}
	if strings.Contains(out.HTML, "Analysts expect the pipeline") || strings.Contains(out.Text, "Analysts expect the pipeline") {
		t.Error("full text kept although it does not fit")
	}
	for _, want := range []string{"Summary 0:", "Summary 39:", "Piece number 39", "Unsubscribe"} {
		if !strings.Contains(out.HTML, want) {
			t.Errorf("summaries-only digest lacks %q", want)
		}
	}

	huge, err := r.Render(rcpt, manyPieces(400, 1), testLinks)
	if err != nil {
		t.Fatal(err)
	}
	if len(huge.HTML) > MaxHTMLBytes {
		t.Errorf("HTML is %d bytes, over %d", len(huge.HTML), MaxHTMLBytes)
	}
	doc := parseHTML(t, huge.HTML)
	links := anchorsByText(doc)
	if len(links["Unsubscribe"]) != 1 || !strings.Contains(huge.HTML, "Piece number 399") {
		t.Error("a cut digest must keep the newest pieces and the footer")
	}
	shown := len(links["Continue reading"])
	if shown == 0 || shown >= 400 {
		t.Fatalf("%d of 400 pieces shown", shown)
	}
	wantMore := fmt.Sprintf("%d more pieces are waiting", 400-shown)
	if !strings.Contains(textOf(doc), wantMore) || !strings.Contains(huge.Text, wantMore) {
		t.Errorf("the cut digest does not say %q", wantMore)
	}
}

func TestRenderCachePersonalises(t *testing.T) {
	r := newTestRenderer(t)
	pieces := samplePieces()
	ana := Recipient{Name: "Ana Petrova", Email: "ana@example.org"}
	anaLinks := Links{Unsubscribe: "https://desk.example.org/u?t=ANA-TOKEN", Preferences: "https://desk.example.org/p?t=ANA-PREF"}
	bob := Recipient{Name: "Bob O'Neil & Co", Email: "bob@example.com"}
	bobLinks := Links{Unsubscribe: "https://desk.example.org/u?t=BOB-TOKEN&a=b", Preferences: "https://desk.example.org/p?t=BOB-PREF"}

	a, err := r.Render(ana, pieces, anaLinks)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Render(bob, pieces, bobLinks)
	if err != nil {
		t.Fatal(err)
	}
	if r.cache.builds != 1 {
		t.Errorf("%d shared renderings built for one piece set, want 1", r.cache.builds)
	}
	for _, part := range []string{a.HTML, a.Text} {
		if !strings.Contains(part, "ANA-TOKEN") || !strings.Contains(part, "ana@example.org") || !strings.Contains(part, "Ana Petrova") {
			t.Error("Ana's digest lacks her own details")
		}
		if strings.Contains(part, "BOB") || strings.Contains(part, "bob@example.com") || strings.Contains(part, "Neil") {
			t.Error("Bob's details leaked into Ana's digest")
		}
	}
	if !strings.Contains(b.HTML, "Hello Bob O&#39;Neil &amp; Co,") || !strings.Contains(b.Text, "Hello Bob O'Neil & Co,") {
		t.Error("Bob's name not escaped for HTML and raw in text")
	}
	if links := anchorsByText(parseHTML(t, b.HTML)); len(links["Unsubscribe"]) != 1 || links["Unsubscribe"][0] != bobLinks.Unsubscribe {
		t.Errorf("Bob's unsubscribe link = %v", links["Unsubscribe"])
	}
	if strings.Contains(b.HTML+b.Text, "ANA") || strings.Contains(b.HTML+b.Text, "ana@example.org") {
		t.Error("Ana's details leaked into Bob's digest")
	}
	if strings.Contains(a.HTML+b.HTML+a.Text+b.Text, r.tag) {
		t.Error("a placeholder was left unfilled")
	}
	// The parts join into the bodies, and the shared ones are the very same
	// strings for both readers: the mail package caches their encoding by
	// identity.
	for _, c := range []struct {
		name         string
		aBody, bBody string
		aParts       []string
		bParts       []string
	}{{"HTML", a.HTML, b.HTML, a.HTMLParts, b.HTMLParts}, {"Text", a.Text, b.Text, a.TextParts, b.TextParts}} {
		if strings.Join(c.aParts, "") != c.aBody || strings.Join(c.bParts, "") != c.bBody {
			t.Errorf("%sParts do not join into %s", c.name, c.name)
		}
		if len(c.aParts) < 3 || len(c.aParts)%2 != 1 || len(c.aParts) != len(c.bParts) {
			t.Fatalf("%sParts: %d and %d parts, want the same odd number >= 3", c.name, len(c.aParts), len(c.bParts))
		}
		for i := 0; i < len(c.aParts); i += 2 {
			if unsafe.StringData(c.aParts[i]) != unsafe.StringData(c.bParts[i]) || len(c.aParts[i]) != len(c.bParts[i]) {
				t.Errorf("%sParts[%d] is a different string for each reader", c.name, i)
			}
		}
		var personal []string
		for i := 1; i < len(c.aParts); i += 2 {
			personal = append(personal, c.aParts[i])
		}
		if !slices.Contains(personal, anaLinks.Unsubscribe) || !slices.Contains(personal, ana.Email) {
			t.Errorf("%sParts: Ana's values %q are not all parts of their own", c.name, personal)
		}
	}

	// No name: the greeting has no name in it, which is a different shared rendering.
	c, err := r.Render(Recipient{Email: "c@example.org"}, pieces, anaLinks)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(c.Text, "Hello,\n") || r.cache.builds != 2 {
		t.Errorf("nameless greeting: builds=%d text=%q", r.cache.builds, c.Text[:80])
	}

	// An edited piece (new hash) is not served from the cache.
	edited := samplePieces()
	edited[0].Hash, edited[0].Title = "h1-edited", "Grid operators revise their winter outlook"
	e, err := r.Render(ana, edited, anaLinks)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.HTML, "revise their winter outlook") {
		t.Error("an edited piece was served from the cache")
	}
}

func TestRenderConcurrent(t *testing.T) {
	r := newTestRenderer(t)
	sets := [][]content.Piece{samplePieces(), samplePieces()[:1], samplePieces()[1:]}
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Go(func() {
			email := fmt.Sprintf("reader%d@example.org", i)
			links := Links{Unsubscribe: fmt.Sprintf("https://desk.example.org/u?t=tok%dx", i), Preferences: "https://desk.example.org/p"}
			out, err := r.Render(Recipient{Name: fmt.Sprintf("Reader %d", i), Email: email}, sets[i%len(sets)], links)
			if err != nil {
				t.Error(err)
				return
			}
			if !strings.Contains(out.HTML, links.Unsubscribe) || !strings.Contains(out.Text, email) || strings.Count(out.Text, "?t=tok") != 1 {
				t.Errorf("reader %d got someone else's digest", i)
			}
		})
	}
	wg.Wait()
	if r.cache.builds != len(sets) {
		t.Errorf("%d shared renderings built for %d piece sets", r.cache.builds, len(sets))
	}
}

func TestRenderCacheIsBounded(t *testing.T) {
	r := newTestRenderer(t, WithFullText(false))
	base := samplePieces()[0]
	for i := range cacheEntries + 10 {
		p := base
		p.ID, p.Hash = fmt.Sprintf("p%d", i), fmt.Sprintf("h%d", i)
		if _, err := r.Render(Recipient{Email: "a@example.org"}, []content.Piece{p}, testLinks); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(r.cache.entries); n != cacheEntries || r.cache.order.Len() != cacheEntries {
		t.Errorf("cache holds %d entries, want %d", n, cacheEntries)
	}
}

func TestWrap(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"short", "short"},
		{"aaaa bbbb cccc", "aaaa bbbb\ncccc"},
		{"first line\n\nsecond  paragraph here", "first line\n\nsecond\nparagraph\nhere"},
		{"https://example.org/a/very/long/url ok", "https://example.org/a/very/long/url\nok"},
		{"ääää öööö üüüü", "ääää öööö\nüüüü"},
	} {
		if got := wrap(10, tt.in); got != tt.want {
			t.Errorf("wrap(10, %q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func BenchmarkRender(b *testing.B) {
	pieces := manyPieces(8, 3)
	links := Links{Unsubscribe: "https://desk.example.org/u?t=abc", Preferences: "https://desk.example.org/p?t=abc"}
	b.Run("cache-hit", func(b *testing.B) {
		r := newTestRenderer(b)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := r.Render(Recipient{Name: "Reader", Email: fmt.Sprintf("r%d@example.org", i)}, pieces, links); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cache-miss", func(b *testing.B) {
		r := newTestRenderer(b)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			p := slicesCloneWithHash(pieces, i)
			if _, err := r.Render(Recipient{Name: "Reader", Email: "r@example.org"}, p, links); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// slicesCloneWithHash gives the pieces a new identity so each Render misses the cache.
func slicesCloneWithHash(pieces []content.Piece, n int) []content.Piece {
	out := make([]content.Piece, len(pieces))
	copy(out, pieces)
	out[0].Hash = fmt.Sprintf("bench-%d", n)
	return out
}
