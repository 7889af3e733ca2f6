package site

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"publisher/internal/content"
	"publisher/internal/output"
	"publisher/internal/subscriber"
	"publisher/templates"
)

const base = "https://desk.example/"

const hostile = `<script>alert(1)</script>`

var day = time.Date(2024, 4, 10, 8, 0, 0, 0, time.UTC)

func fixture() []content.Piece {
	return []content.Piece{
		{
			ID: "older", Slug: "older", File: "older.md", Title: "Older piece",
			Authors: []content.Author{{Name: "Ann Analyst", Role: "Senior Fellow", URL: "https://desk.example/ann"}, {Name: "Bob Baker"}},
			Date:    day, Updated: day.AddDate(0, 0, 3),
			Summary: "Older summary.",
			Topics:  []string{"Energy Policy"},
			Source:  content.Source{Name: "The Daily Paper", URL: "https://paper.example/older"},
			HTML:    `<p>Read <a href="../newer/">the newer piece</a>.</p><p><img src="map.png" alt="a map"></p>`,
		},
		{
			ID: "newer", Slug: "newer", File: "newer.txt", Title: hostile,
			Authors:   []content.Author{{Name: "Cleo <b>Chen</b>", Role: "Editor"}},
			FirstSeen: day.AddDate(0, 0, 1),
			Lede:      "Newer lede & more.",
			Topics:    []string{"Energy Policy", "EU"},
			Source:    content.Source{Name: "Quarterly Review"},
			HTML:      "<p>Newer body.</p>",
		},
		{ID: "draft", Slug: "draft", Title: "Draft", Draft: true, Date: day, HTML: "<p>x</p>"},
	}
}

func newSite(t *testing.T, mutate ...func(*Options)) *Site {
	t.Helper()
	opts := Options{
		Title: "Analysis Desk", Description: "Analysis from the desk", BaseURL: base,
		Language: "en-GB", SubscribeAction: "/subscribe", DefaultCadence: "weekly",
	}
	for _, m := range mutate {
		m(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func renderPages(t *testing.T, s *Site) map[string]*html.Node {
	t.Helper()
	files, err := s.Render(fixture())
	if err != nil {
		t.Fatal(err)
	}
	pages := map[string]*html.Node{}
	for _, f := range files {
		doc, err := html.Parse(bytes.NewReader(f.Data))
		if err != nil {
			t.Fatalf("%s: %v", f.Path, err)
		}
		pages[f.Path] = doc
	}
	return pages
}

// find returns every element named tag under n, in document order.
func find(n *html.Node, tag string) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == tag {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
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

func hasAttr(n *html.Node, key string) bool {
	return slices.ContainsFunc(n.Attr, func(a html.Attribute) bool { return a.Key == key })
}

func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(strings.Fields(b.String()), " ")
}

func TestPages(t *testing.T) {
	pages := renderPages(t, newSite(t))
	var paths []string
	for p := range pages {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	want := []string{
		"archive/2024/04/index.html", "archive/index.html", "index.html",
		"pieces/newer/index.html", "pieces/older/index.html",
		"topics/energy-policy/2024/04/index.html", "topics/energy-policy/index.html",
		"topics/eu/2024/04/index.html", "topics/eu/index.html",
	}
	if !slices.Equal(paths, want) {
		t.Fatalf("pages %q, want %q", paths, want)
	}
}

func TestEveryPageHasAutodiscoveryLangViewportAndNoScript(t *testing.T) {
	pages := renderPages(t, newSite(t))
	siteFeeds := []string{
		"application/rss+xml " + base + "feed.xml",
		"application/atom+xml " + base + "atom.xml",
		"application/feed+json " + base + "feed.json",
	}
	for path, doc := range pages {
		var alternates []string
		for _, l := range find(doc, "link") {
			if attr(l, "rel") == "alternate" {
				alternates = append(alternates, attr(l, "type")+" "+attr(l, "href"))
				if attr(l, "title") == "" {
					t.Errorf("%s: autodiscovery link without a title", path)
				}
			}
		}
		want := siteFeeds
		if strings.HasPrefix(path, "topics/eu/") {
			want = append([]string{
				"application/rss+xml " + base + "topics/eu/feed.xml",
				"application/atom+xml " + base + "topics/eu/atom.xml",
				"application/feed+json " + base + "topics/eu/feed.json",
			}, siteFeeds...)
		}
		if strings.HasPrefix(path, "topics/energy-policy/") {
			want = append([]string{
				"application/rss+xml " + base + "topics/energy-policy/feed.xml",
				"application/atom+xml " + base + "topics/energy-policy/atom.xml",
				"application/feed+json " + base + "topics/energy-policy/feed.json",
			}, siteFeeds...)
		}
		if !slices.Equal(alternates, want) {
			t.Errorf("%s: alternates %q, want %q", path, alternates, want)
		}
		if lang := attr(find(doc, "html")[0], "lang"); lang != "en-GB" {
			t.Errorf("%s: lang %q", path, lang)
		}
		viewport := false
		for _, m := range find(doc, "meta") {
			if attr(m, "name") == "viewport" && strings.Contains(attr(m, "content"), "width=device-width") {
				viewport = true
			}
		}
		if !viewport {
			t.Errorf("%s: no viewport meta", path)
		}
		if s := find(doc, "script"); len(s) > 0 {
			t.Errorf("%s: %d script elements", path, len(s))
		}
		styles := find(doc, "style")
		if len(styles) != 1 || !strings.Contains(text(styles[0]), "prefers-color-scheme:dark") {
			t.Errorf("%s: want one inline style with a dark-mode rule", path)
		}
		if slices.ContainsFunc(find(doc, "link"), func(l *html.Node) bool { return attr(l, "rel") == "stylesheet" }) {
			t.Errorf("%s: external stylesheet", path)
		}
	}
}

func TestIndexListsPiecesAndEveryFeed(t *testing.T) {
	doc := renderPages(t, newSite(t))["index.html"]
	items := find(find(doc, "ol")[0], "li")
	if len(items) != 2 {
		t.Fatalf("%d pieces listed, want 2 (drafts left out)", len(items))
	}
	first, second := text(items[0]), text(items[1])
	if !strings.HasPrefix(first, hostile) || !strings.Contains(first, "11 April 2024") || !strings.Contains(first, "Cleo <b>Chen</b> (Editor)") || !strings.Contains(first, "Newer lede & more.") {
		t.Errorf("first entry %q", first)
	}
	if !strings.HasPrefix(second, "Older piece") || !strings.Contains(second, "Ann Analyst (Senior Fellow), Bob Baker") || !strings.Contains(second, "Older summary.") {
		t.Errorf("second entry %q", second)
	}
	if href := attr(find(items[1], "a")[0], "href"); href != base+"pieces/older/" {
		t.Errorf("piece link %q", href)
	}
	if dt := attr(find(items[1], "time")[0], "datetime"); dt != "2024-04-10T08:00:00Z" {
		t.Errorf("datetime %q", dt)
	}

	var feeds []string
	for _, a := range find(doc, "a") {
		if h := attr(a, "href"); strings.HasSuffix(h, ".xml") || strings.HasSuffix(h, ".json") || strings.HasSuffix(h, ".opml") {
			feeds = append(feeds, strings.TrimPrefix(h, base))
		}
	}
	for _, want := range []string{
		"feed.xml", "atom.xml", "feed.json",
		"topics/energy-policy/feed.xml", "topics/energy-policy/atom.xml", "topics/energy-policy/feed.json",
		"topics/eu/feed.xml", "topics/eu/atom.xml", "topics/eu/feed.json", "feeds.opml",
	} {
		if !slices.Contains(feeds, want) {
			t.Errorf("index does not link %s (links %q)", want, feeds)
		}
	}
}

func TestSignUpForm(t *testing.T) {
	doc := renderPages(t, newSite(t))["index.html"]
	forms := find(doc, "form")
	if len(forms) != 1 {
		t.Fatalf("%d forms", len(forms))
	}
	f := forms[0]
	if attr(f, "method") != "post" || attr(f, "action") != "/subscribe" {
		t.Errorf("form method %q action %q", attr(f, "method"), attr(f, "action"))
	}
	var fields, topics []string
	for _, in := range find(f, "input") {
		fields = append(fields, attr(in, "type")+":"+attr(in, "name"))
		if attr(in, "type") == "checkbox" {
			topics = append(topics, attr(in, "value"))
		}
		if attr(in, "name") == "email" && !hasAttr(in, "required") {
			t.Error("email is not required")
		}
		if id := attr(in, "id"); id != "" && !slices.ContainsFunc(find(f, "label"), func(l *html.Node) bool { return attr(l, "for") == id }) {
			t.Errorf("input %s has no label", id)
		}
	}
	if want := []string{"email:email", "text:name", "checkbox:topics", "checkbox:topics"}; !slices.Equal(fields, want) {
		t.Errorf("fields %q, want %q", fields, want)
	}
	if !slices.Equal(topics, []string{"Energy Policy", "EU"}) {
		t.Errorf("topic values %q", topics)
	}
	selects := find(f, "select")
	if len(selects) != 1 || attr(selects[0], "name") != "cadence" {
		t.Fatal("no cadence select")
	}
	var options []string
	for _, o := range find(selects[0], "option") {
		v := attr(o, "value")
		if hasAttr(o, "selected") {
			v += "*"
		}
		options = append(options, v)
	}
	if !slices.Equal(options, []string{"immediate", "daily", "weekly*"}) {
		t.Errorf("cadence options %q", options)
	}
	for _, o := range find(selects[0], "option") {
		if got, want := text(o), subscriber.CadenceLabel(attr(o, "value")); got != want {
			t.Errorf("option %q reads %q, want %q, as on the preferences page", attr(o, "value"), got, want)
		}
	}
	buttons := find(f, "button")
	if len(buttons) != 1 || attr(buttons[0], "type") != "submit" {
		t.Error("no submit button")
	}

	noForm := renderPages(t, newSite(t, func(o *Options) { o.SubscribeAction = "" }))["index.html"]
	if len(find(noForm, "form")) != 0 {
		t.Error("form shown with nowhere to post")
	}
	unsafe := renderPages(t, newSite(t, func(o *Options) { o.SubscribeAction = "javascript:alert(1)" }))["index.html"]
	if a := attr(find(unsafe, "form")[0], "action"); strings.Contains(a, "javascript") {
		t.Errorf("action %q", a)
	}
}

func TestPiecePage(t *testing.T) {
	doc := renderPages(t, newSite(t))["pieces/older/index.html"]
	article := find(doc, "article")[0]
	if h := text(find(article, "h1")[0]); h != "Older piece" {
		t.Errorf("h1 %q", h)
	}
	if title := text(find(doc, "title")[0]); title != "Older piece · Analysis Desk" {
		t.Errorf("title %q", title)
	}
	meta := text(find(article, "p")[0])
	if meta != "By Ann Analyst (Senior Fellow), Bob Baker · 10 April 2024 · updated 13 April 2024" {
		t.Errorf("byline %q", meta)
	}
	var hrefs, srcs []string
	for _, a := range find(article, "a") {
		hrefs = append(hrefs, attr(a, "href"))
	}
	for _, img := range find(article, "img") {
		srcs = append(srcs, attr(img, "src"))
	}
	wantHrefs := []string{"https://desk.example/ann", base + "pieces/newer/", "https://paper.example/older", base + "topics/energy-policy/"}
	if !slices.Equal(hrefs, wantHrefs) {
		t.Errorf("links %q, want %q", hrefs, wantHrefs)
	}
	if !slices.Equal(srcs, []string{base + "pieces/older/map.png"}) {
		t.Errorf("images %q", srcs)
	}
	var source string
	for _, p := range find(article, "p") {
		if attr(p, "class") == "source" {
			source = text(p)
		}
	}
	if source != "Originally published in The Daily Paper." {
		t.Errorf("source %q", source)
	}
	for _, l := range find(doc, "link") {
		if attr(l, "rel") == "canonical" && attr(l, "href") != base+"pieces/older/" {
			t.Errorf("canonical %q", attr(l, "href"))
		}
	}
}

func TestHostileTextIsEscaped(t *testing.T) {
	s := newSite(t, func(o *Options) { o.Title = hostile })
	files, err := s.Render(fixture())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if bytes.Contains(f.Data, []byte(hostile)) || bytes.Contains(f.Data, []byte("<b>Chen")) {
			t.Errorf("%s: hostile text printed unescaped", f.Path)
		}
		doc, err := html.Parse(bytes.NewReader(f.Data))
		if err != nil {
			t.Fatal(err)
		}
		if len(find(doc, "script")) != 0 || len(find(doc, "b")) != 0 {
			t.Errorf("%s: hostile markup became elements", f.Path)
		}
	}
	doc, _ := html.Parse(bytes.NewReader(files[slices.IndexFunc(files, func(f output.File) bool { return f.Path == "pieces/newer/index.html" })].Data))
	if h := text(find(find(doc, "article")[0], "h1")[0]); h != hostile {
		t.Errorf("h1 text %q, want the title as text", h)
	}
}

func TestTopicPage(t *testing.T) {
	doc := renderPages(t, newSite(t))["topics/eu/index.html"]
	if h := text(find(find(doc, "main")[0], "h1")[0]); h != "EU" {
		t.Errorf("h1 %q", h)
	}
	items := find(find(doc, "ol")[0], "li")
	if len(items) != 1 || !strings.HasPrefix(text(items[0]), hostile) {
		t.Errorf("topic lists %d pieces", len(items))
	}
}

func TestDeterministicAndWrittenOnce(t *testing.T) {
	s := newSite(t)
	a, err := s.Render(fixture())
	if err != nil {
		t.Fatal(err)
	}
	reversed := fixture()
	slices.Reverse(reversed)
	b, err := s.Render(reversed)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != len(b) {
		t.Fatalf("%d files, then %d", len(a), len(b))
	}
	for i := range a {
		if a[i].Path != b[i].Path || !bytes.Equal(a[i].Data, b[i].Data) {
			t.Errorf("%s differs between renders", a[i].Path)
		}
	}
	dir := t.TempDir()
	if st, err := output.Write(dir, a); err != nil || st.Written != len(a) {
		t.Fatalf("%+v %v", st, err)
	}
	if st, err := output.Write(dir, b); err != nil || st.Written != 0 || st.Unchanged != len(a) {
		t.Fatalf("second write %+v %v", st, err)
	}
}

func TestBadPieceLeftOut(t *testing.T) {
	pieces := append(fixture(), content.Piece{ID: "bad", Slug: "a/b", File: "bad.md", Title: "Bad", Date: day})
	files, err := newSite(t).Render(pieces)
	if err == nil || !strings.Contains(err.Error(), "bad.md") {
		t.Fatalf("error %v should name bad.md", err)
	}
	if len(files) != 9 {
		t.Errorf("%d pages, want the 9 of the good pieces", len(files))
	}
}

func writeTemplate(t *testing.T, dir, name, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestTemplateProblemsNameFileAndLine(t *testing.T) {
	if errs := CheckTemplates(templates.FS("")); len(errs) != 0 {
		t.Fatalf("embedded templates: %v", errs)
	}

	dir := t.TempDir()
	writeTemplate(t, dir, PieceTemplate, "{{define \"site-main\"}}\n<h1>{{.Piece.Title}}</h1>\n{{if}}\n{{end}}\n")
	_, err := New(Options{Title: "x", BaseURL: base, Templates: templates.FS(dir)})
	if err == nil || !strings.Contains(err.Error(), PieceTemplate+":3") {
		t.Errorf("parse error %v should name %s:3", err, PieceTemplate)
	}
	if errs := CheckTemplates(templates.FS(dir)); len(errs) != 1 || !strings.Contains(errs[0].Error(), PieceTemplate+":3") {
		t.Errorf("CheckTemplates: %v", errs)
	}

	// Parses, but fails when run: only executing finds it.
	dir = t.TempDir()
	writeTemplate(t, dir, TopicTemplate, "{{define \"site-main\"}}\n\n<h1>{{.Topic.Nmae}}</h1>\n{{end}}\n")
	s, err := New(Options{Title: "x", BaseURL: base, Templates: templates.FS(dir)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); err == nil || !strings.Contains(err.Error(), TopicTemplate+":3") {
		t.Errorf("Check: %v should name %s:3", err, TopicTemplate)
	}
	if errs := CheckTemplates(templates.FS(dir)); len(errs) != 1 || !strings.Contains(errs[0].Error(), "Nmae") {
		t.Errorf("CheckTemplates: %v", errs)
	}

	// An override that forgets to define the page body.
	dir = t.TempDir()
	writeTemplate(t, dir, IndexTemplate, "<p>no defines</p>\n")
	if errs := CheckTemplates(templates.FS(dir)); len(errs) != 1 || !strings.Contains(errs[0].Error(), IndexTemplate) {
		t.Errorf("CheckTemplates: %v", errs)
	}

	// An override of the layout is used.
	dir = t.TempDir()
	writeTemplate(t, dir, LayoutTemplate, `{{define "site-layout"}}<!DOCTYPE html><html lang="{{.Site.Language}}"><title>custom</title>{{template "site-main" .}}</html>{{end}}{{define "site-piece-list"}}{{end}}`)
	files, err := newSite(t, func(o *Options) { o.Templates = templates.FS(dir) }).Render(fixture())
	if err != nil || !bytes.Contains(files[0].Data, []byte("<title>custom</title>")) {
		t.Errorf("override layout not used: %v", err)
	}
}

// Lists print each piece's entry, rendered once from the layout's
// "site-piece-entry", and pages their feeds from "site-feeds-head/-foot",
// rendered once per set of feeds; a layout that defines none of these and
// uses the fields itself (as layouts did before) still works.
func TestPartsRenderedOnceOverrides(t *testing.T) {
	parts, err := fs.ReadFile(templates.FS(""), PartsTemplate)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	custom := strings.Replace(string(parts), `<h2><a href="{{.URL}}">{{.Title}}</a></h2>`, `<h2 class="mine"><a href="{{.URL}}">{{.Title}}</a></h2>`, 1)
	custom = strings.Replace(custom, `<a href="{{$f.URL}}" type="{{$f.Type}}">{{$f.Label}}</a>`, `<a class="mine" href="{{$f.URL}}" type="{{$f.Type}}">{{$f.Label}}</a>`, 1)
	if strings.Count(custom, `class="mine"`) != 2 {
		t.Fatal("the entry's heading or the footer's feed link is not in the parts any more")
	}
	writeTemplate(t, dir, PartsTemplate, custom)
	s := newSite(t, func(o *Options) { o.Templates = templates.FS(dir) })
	pages := renderPages(t, s)
	for _, page := range []string{"index.html", "topics/eu/index.html", "archive/2024/04/index.html"} {
		heads := find(find(pages[page], "ol")[0], "h2")
		if len(heads) == 0 || attr(heads[0], "class") != "mine" {
			t.Errorf("%s does not list the overridden entry", page)
		}
	}
	// The footer names the site's own feeds, on every page but the front
	// page, whose body lists every feed.
	for page, want := range map[string]int{"index.html": 0, "pieces/older/index.html": 3, "topics/eu/index.html": 3, "archive/index.html": 3} {
		var links []string
		for _, a := range find(find(pages[page], "footer")[0], "a") {
			if attr(a, "class") == "mine" {
				links = append(links, attr(a, "href"))
			}
		}
		if len(links) != want || want > 0 && !slices.Contains(links, base+"feed.xml") {
			t.Errorf("%s: footer feed links %q, want %d from the overridden template", page, links, want)
		}
	}

	dir = t.TempDir()
	writeTemplate(t, dir, LayoutTemplate, `{{define "site-layout"}}<!DOCTYPE html><html lang="{{.Site.Language}}"><title>t</title>`+
		`{{range .Feeds}}<link rel="alternate" href="{{.URL}}">{{end}}{{template "site-main" .}}</html>{{end}}`+
		`{{define "site-piece-list"}}<ol>{{range .}}<li><a href="{{.URL}}">{{.Title}}</a></li>{{end}}</ol>{{end}}`)
	pages = renderPages(t, newSite(t, func(o *Options) { o.Templates = templates.FS(dir) }))
	items := find(find(pages["index.html"], "ol")[0], "li")
	if len(items) != 2 || text(items[1]) != "Older piece" || attr(find(items[1], "a")[0], "href") != base+"pieces/older/" {
		t.Errorf("a list without entries: %d items", len(items))
	}
	if links := find(pages["topics/eu/index.html"], "link"); len(links) != 6 || attr(links[0], "href") != base+"topics/eu/feed.xml" {
		t.Errorf("a layout listing .Feeds itself: %d links", len(links))
	}
}

// The site's header and the sign-up form are rendered once for many pages
// ("site-header", "site-subscribe") and every page shows its frame's: one
// header naming the site with its links home and to the archive, one form,
// which on a topic's pages signs up for that topic. Overrides of either are
// used, and a layout of its own that prints the header and calls the form
// itself (as layouts did before) still works.
func TestSharedPartsOnEveryPage(t *testing.T) {
	check := func(t *testing.T, pages map[string]*html.Node, headerClass, formClass string) {
		t.Helper()
		if len(pages) < 8 {
			t.Fatalf("%d pages", len(pages))
		}
		for path, doc := range pages {
			var headers []*html.Node
			for _, h := range find(doc, "header") {
				if strings.Contains(attr(h, "class"), "site") {
					headers = append(headers, h)
				}
			}
			if len(headers) != 1 {
				t.Errorf("%s: %d site headers", path, len(headers))
				continue
			}
			var hrefs []string
			for _, a := range find(headers[0], "a") {
				hrefs = append(hrefs, attr(a, "href"))
			}
			if !slices.Equal(hrefs, []string{base, base, base + "archive/"}) || !strings.Contains(text(headers[0]), "Analysis Desk") ||
				!strings.Contains(text(headers[0]), "Analysis from the desk") || attr(headers[0], "class") != headerClass {
				t.Errorf("%s: header %q links %q", path, text(headers[0]), hrefs)
			}
			var forms []*html.Node
			for _, sec := range find(doc, "section") {
				if strings.Contains(attr(sec, "class"), "subscribe") {
					forms = append(forms, sec)
				}
			}
			if len(forms) != 1 || attr(forms[0], "class") != formClass {
				t.Errorf("%s: %d sign-up forms", path, len(forms))
				continue
			}
			hidden := ""
			for _, in := range find(forms[0], "input") {
				if attr(in, "type") == "hidden" {
					hidden = attr(in, "value")
				}
			}
			want := ""
			if strings.HasPrefix(path, "topics/eu/") {
				want = "EU"
			} else if strings.HasPrefix(path, "topics/energy-policy/") {
				want = "Energy Policy"
			}
			if hidden != want {
				t.Errorf("%s: the form signs up for topic %q, want %q", path, hidden, want)
			}
		}
	}
	check(t, renderPages(t, newSite(t)), "site", "box subscribe")

	layout, err := fs.ReadFile(templates.FS(""), LayoutTemplate)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := fs.ReadFile(templates.FS(""), PartsTemplate)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	customLayout := strings.Replace(string(layout), `<header class="site">`, `<header class="site mine">`, 1)
	customParts := strings.Replace(string(parts), `<section class="box subscribe" id="subscribe">`, `<section class="box subscribe mine" id="subscribe">`, 1)
	if customLayout == string(layout) || customParts == string(parts) {
		t.Fatal("the header or the form is not where the test looks for it")
	}
	writeTemplate(t, dir, LayoutTemplate, customLayout)
	writeTemplate(t, dir, PartsTemplate, customParts)
	check(t, renderPages(t, newSite(t, func(o *Options) { o.Templates = templates.FS(dir) })), "site mine", "box subscribe mine")

	// An older layout: the header written out in the frame, and pages that
	// call the form themselves.
	dir = t.TempDir()
	inline := `<header class="site old"><p class="site-title"><a href="{{.Site.Home}}">{{.Site.Title}}</a></p>` +
		`{{with .Site.Description}}<p class="tagline">{{.}}</p>{{end}}<nav><a href="{{.Site.Home}}">Latest</a> <a href="{{.Site.ArchiveURL}}">Archive</a></nav></header>`
	oldLayout := strings.Replace(string(layout), "{{.Header}}", inline, 1)
	if oldLayout == string(layout) {
		t.Fatal("the layout prints no .Header")
	}
	writeTemplate(t, dir, LayoutTemplate, oldLayout)
	writeTemplate(t, dir, PartsTemplate, customParts)
	for _, name := range pageTemplates {
		page, err := fs.ReadFile(templates.FS(""), name)
		if err != nil {
			t.Fatal(err)
		}
		writeTemplate(t, dir, name, strings.Replace(string(page), "{{.Subscribe}}", `{{template "site-subscribe" .}}`, 1))
	}
	check(t, renderPages(t, newSite(t, func(o *Options) { o.Templates = templates.FS(dir) })), "site old", "box subscribe mine")
}

// TestForEachTurnsAPanicIntoAnError: a bug meeting one page fails the build
// with an error; the process (a daemon serving the site) goes on.
func TestForEachTurnsAPanicIntoAnError(t *testing.T) {
	err := forEach(8, func(i int) error {
		if i == 3 {
			var pages []string
			_ = pages[i] // an index out of range: a runtime panic
		}
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "internal error rendering page 3") {
		t.Fatalf("err = %v", err)
	}
}
