package digest

import (
	"bytes"
	"io/fs"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"time"
	"unicode/utf8"

	"golang.org/x/net/html"

	"publisher/internal/content"
	"publisher/internal/mail"
	"publisher/templates"
)

// digest.body: summary gives each piece's title, byline, teaser and a link to
// read on, and none of its body.
func TestSummaryMode(t *testing.T) {
	r := newTestRenderer(t, WithFullText(false))
	pieces := samplePieces()
	long := strings.Repeat("The reservoirs are low this year and the imports are booked. ", 12)
	pieces[1].Lede, pieces[1].HTML = long, "<p>"+long+"</p><p>The second paragraph.</p>"
	out, err := r.Render(Recipient{Name: "Ana", Email: "ana@example.org"}, pieces, testLinks)
	if err != nil {
		t.Fatal(err)
	}
	doc := parseHTML(t, out.HTML)
	links := anchorsByText(doc)
	want := []string{"https://desk.example.org/analysis/pieces/grid-winter/", "https://partner.example.com/2026/border-talks"}
	if got := links["Continue reading"]; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("continue-reading links %v, want %v", got, want)
	}
	page := textOf(doc)
	for _, absent := range []string{"Reservoirs stand at a third of capacity", "The second paragraph", "Read more"} {
		if strings.Contains(page, absent) || strings.Contains(out.Text, absent) {
			t.Errorf("a summary digest carries %q", absent)
		}
	}
	if !strings.Contains(page, "By Ana Petrova (analyst) and Li Wen") || !strings.Contains(page, "the margin for a cold snap is thin") {
		t.Error("the first piece's byline or summary is missing")
	}
	// A lede without a summary is cut near 300 characters, at a sentence.
	for _, p := range findAll(doc, "p") {
		if attr(p, "class") == "summary" && strings.HasPrefix(textOf(p), "The reservoirs") {
			if n := utf8.RuneCountInString(textOf(p)); n > 360 || !strings.HasSuffix(textOf(p), ".") {
				t.Errorf("teaser of %d characters: %q", n, textOf(p))
			}
		}
	}
	for _, u := range want {
		if !strings.Contains(out.Text, "Continue reading:\n"+u+"\n") {
			t.Errorf("text part lacks the link to %s", u)
		}
	}
}

// Tables, quotations and figures in a piece keep their shape in an email,
// in styles inlined on the elements themselves.
func TestFullTextTablesQuotesFiguresStyled(t *testing.T) {
	r := newTestRenderer(t)
	p := samplePieces()[0]
	p.HTML = `<table><thead><tr><th>Year</th><th>Tonnes</th></tr></thead><tbody><tr><td>2025</td><td>12,400</td></tr></tbody></table>` +
		`<blockquote><p>Quoted.</p></blockquote><figure><img src="chart.png" alt="chart"><figcaption>Source: the desk.</figcaption></figure>`
	p.Text = ""
	out, err := r.Render(Recipient{Email: "ana@example.org"}, []content.Piece{p}, testLinks)
	if err != nil {
		t.Fatal(err)
	}
	var body *html.Node
	for _, div := range findAll(parseHTML(t, out.HTML), "div") {
		if attr(div, "class") == "fulltext" {
			body = div
		}
	}
	if body == nil {
		t.Fatal("no full text")
	}
	for tag, want := range map[string]string{"td": "border:1px solid", "th": "border:1px solid", "blockquote": "border-left:4px solid", "figcaption": "font-size:13px", "table": "border-collapse:collapse"} {
		els := findAll(body, tag)
		if len(els) == 0 || !strings.Contains(strings.ReplaceAll(attr(els[0], "style"), " ", ""), strings.ReplaceAll(want, " ", "")) {
			t.Errorf("<%s> in the body: %d, style lacks %q", tag, len(els), want)
		}
	}
	// The text part lays the table out in columns and leaves the lines alone.
	var rows []string
	for _, l := range strings.Split(out.Text, "\n") {
		if strings.HasPrefix(l, "|") {
			rows = append(rows, strings.Join(strings.Fields(l), " "))
		}
	}
	if strings.Join(rows, "\n") != "| YEAR | TONNES |\n| 2025 | 12,400 |" {
		t.Errorf("table rows in the text part: %q\n%s", rows, out.Text)
	}
}

func TestWrapLeavesLaidOutLinesAlone(t *testing.T) {
	table := "+------+--------------------------------------------------------------------------+\n| YEAR | A VERY LONG HEADER THAT RUNS PAST SEVENTY-TWO COLUMNS WITHOUT ANY LINE BREAK |"
	if got := wrap(72, table); got != table {
		t.Errorf("table rewrapped:\n%s", got)
	}
	if got := wrap(20, "---------\nHeading\n---------\n> quoted text that is rather long indeed"); got != "---------\nHeading\n---------\n> quoted text that is rather long indeed" {
		t.Errorf("rules or quotes rewrapped:\n%s", got)
	}
	if got := wrap(20, "plain words that run past the width"); got != "plain words that run\npast the width" {
		t.Errorf("prose: %q", got)
	}
}

// Each digest has a page on the site: the emails link to it, it names
// nobody, and one set of pieces has one page whoever it went to.
func TestViewInBrowserPage(t *testing.T) {
	r := newTestRenderer(t, WithViewPages(true), WithFullText(false))
	ana, err := r.Render(Recipient{Name: "Zoe Reader", Email: "ana@example.org"}, samplePieces(), testLinks)
	if err != nil {
		t.Fatal(err)
	}
	bob, err := r.Render(Recipient{Email: "bob@example.org"}, samplePieces(), Links{Unsubscribe: "https://desk.example.org/u?t=bob", Preferences: "https://desk.example.org/p?t=bob"})
	if err != nil {
		t.Fatal(err)
	}
	if ana.View == nil || bob.View == nil || ana.View.Path != bob.View.Path || !bytes.Equal(ana.View.HTML, bob.View.HTML) {
		t.Fatalf("two readers of the same pieces: pages %+v and %+v", ana.View, bob.View)
	}
	if !regexp.MustCompile(`^digests/[0-9a-f]{24}/index\.html$`).MatchString(ana.View.Path) {
		t.Errorf("page path %q", ana.View.Path)
	}
	url := "https://desk.example.org/analysis/" + strings.TrimSuffix(ana.View.Path, "index.html")
	if got := anchorsByText(parseHTML(t, ana.HTML))["View in browser"]; len(got) != 1 || got[0] != url {
		t.Errorf("view-in-browser links %v, want %s", got, url)
	}
	if !strings.Contains(ana.Text, "View in your browser:\n"+url+"\n") {
		t.Error("the text part does not give the page's address")
	}
	page := string(ana.View.HTML)
	for _, private := range []string{"ana@example.org", "Zoe", "tok-ana", "unsubscribe", "preferences", "View in browser"} {
		if strings.Contains(page, private) {
			t.Errorf("the public page carries %q", private)
		}
	}
	doc := parseHTML(t, page)
	for _, div := range findAll(doc, "div") {
		if attr(div, "class") == "preheader" {
			t.Error("the page has a preheader")
		}
	}
	links := anchorsByText(doc)
	if len(links["Grid operators brace for a dry winter"]) != 1 || len(links["subscribe on the site"]) != 1 {
		t.Errorf("the page lacks the pieces or the way to subscribe: %v", links)
	}
	other, err := r.Render(Recipient{Email: "ana@example.org"}, samplePieces()[:1], testLinks)
	if err != nil || other.View.Path == ana.View.Path {
		t.Errorf("another set of pieces has the same page %q (%v)", other.View.Path, err)
	}
	if plain, _ := newTestRenderer(t).Render(Recipient{Email: "ana@example.org"}, samplePieces(), testLinks); plain.View != nil || strings.Contains(plain.HTML, "View in browser") {
		t.Error("a renderer without view pages links to one")
	}
}

// SpamAssassin (the rules Debian ships, local tests only) must not read the
// preheader as hidden text; it did when the preheader was coloured like its
// background, and the same check against that stylesheet shows it still can.
func TestPreheaderIsNotLowContrastToSpamAssassin(t *testing.T) {
	sa, err := exec.LookPath("spamassassin")
	if err != nil {
		t.Fatal("spamassassin not found: install Debian's spamassassin package (scripts/test.sh does)")
	}
	css, err := fs.ReadFile(templates.Embedded(), Stylesheet)
	if err != nil {
		t.Fatal(err)
	}
	old := regexp.MustCompile(`(?m)^\.preheader \{[^}]*\}`).ReplaceAllString(string(css),
		".preheader { display: none; max-height: 0; max-width: 0; overflow: hidden; opacity: 0; mso-hide: all; font-size: 1px; line-height: 1px; color: #f3f3f0; background-color: #f3f3f0; }")
	if old == string(css) {
		t.Fatal("no .preheader rule in digest.css")
	}
	overlay := fstest.MapFS{Stylesheet: {Data: []byte(old)}}
	for _, name := range []string{HTMLTemplate, TextTemplate} {
		data, _ := fs.ReadFile(templates.Embedded(), name)
		overlay[name] = &fstest.MapFile{Data: data}
	}
	check := func(fsys fs.FS) string {
		r, err := NewRenderer(fsys, testSite, "")
		if err != nil {
			t.Fatal(err)
		}
		out, err := r.Render(Recipient{Name: "Ana", Email: "ana@example.org"}, samplePieces(), testLinks)
		if err != nil {
			t.Fatal(err)
		}
		m := &mail.Message{
			From: mail.Address{Name: "The Eastern Desk", Email: "digest@desk.example.org"}, To: mail.Address{Email: "ana@example.org"},
			Subject: out.Subject, Date: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC), MessageID: "digest-1-1@desk.example.org",
			ListID: "The Eastern Desk <digest.desk.example.org>", UnsubscribeURL: testLinks.Unsubscribe,
			UnsubscribeMailto: "mailto:digest@desk.example.org?subject=unsubscribe", HTML: out.HTML, Text: out.Text,
		}
		var raw bytes.Buffer
		if _, err := mail.WriteTo(&raw, m, nil); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(sa, "-L", "-t", "--cf=use_auto_whitelist 0")
		cmd.Stdin = &raw
		cmd.Env = append(cmd.Environ(), "HOME="+t.TempDir())
		report, err := cmd.Output()
		if err != nil {
			t.Fatalf("spamassassin: %v", err)
		}
		return string(report)
	}
	if report := check(templates.Embedded()); strings.Contains(report, "HTML_FONT_LOW_CONTRAST") || !strings.Contains(report, "Content analysis details") {
		t.Errorf("SpamAssassin on the digest:\n%s", report[strings.Index(report, "Content analysis"):])
	}
	if report := check(overlay); !strings.Contains(report, "HTML_FONT_LOW_CONTRAST") {
		t.Error("SpamAssassin did not flag the old, background-coloured preheader: the check cannot fail")
	}
}
