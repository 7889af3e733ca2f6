package site

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"publisher/internal/content"
	"publisher/internal/output"
)

// archive makes n pieces, one every step back from the newest, as benchgen
// does: topics A (every piece), B (every other).
func archive(n int, newest time.Time, step time.Duration) []content.Piece {
	pieces := make([]content.Piece, n)
	for i := range pieces {
		slug := fmt.Sprintf("p%05d", i)
		pieces[i] = content.Piece{
			ID: slug, Slug: slug, File: slug + ".md", Hash: "h" + slug, Title: "Piece " + slug,
			Authors: []content.Author{{Name: "Ann Analyst", Role: "Fellow"}},
			Date:    newest.Add(-time.Duration(i) * step),
			Lede:    strings.Repeat("A long first paragraph that runs on. ", 30),
			Topics:  []string{"A"},
			HTML:    "<p>Body of " + slug + ".</p>",
		}
		if i%2 == 0 {
			pieces[i].Topics = append(pieces[i].Topics, "B")
		}
	}
	return pieces
}

func keys(t *testing.T, s *Site, pieces []content.Piece) map[string]string {
	t.Helper()
	plan, err := s.Plan(pieces)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, pg := range plan.Pages() {
		if _, dup := out[pg.Path]; dup {
			t.Fatalf("%s planned twice", pg.Path)
		}
		out[pg.Path] = pg.Key
	}
	return out
}

// listed is the piece slugs a list page links to in its list, in order.
func listed(doc *html.Node) []string {
	var out []string
	for _, ol := range find(doc, "ol") {
		for _, h := range find(ol, "h2") {
			out = append(out, strings.TrimPrefix(text(h), "Piece "))
		}
	}
	return out
}

// rel is the href of the page's <link rel=...>, or "".
func rel(doc *html.Node, name string) string {
	for _, l := range find(doc, "link") {
		if attr(l, "rel") == name {
			return attr(l, "href")
		}
	}
	return ""
}

func TestArchiveIsPagedByMonthAndLinkedPrevNext(t *testing.T) {
	// 45 pieces a day apart, ending 10 March: 10 in March, 28 in February, 7 in January.
	newest := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	s := newSite(t, func(o *Options) { o.PageSize = 10 })
	files, err := s.Render(archive(45, newest, 24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	pages := map[string]*html.Node{}
	for _, f := range files {
		doc, err := html.Parse(bytes.NewReader(f.Data))
		if err != nil {
			t.Fatal(err)
		}
		pages[f.Path] = doc
	}
	front := pages["index.html"]
	if got := listed(front); len(got) != 10 || got[0] != "p00000" || got[9] != "p00009" {
		t.Errorf("front page lists %q, want the 10 newest", got)
	}
	// February: 28 pieces from the oldest, in parts of 10.
	for path, want := range map[string][2]string{
		"archive/2026/02/index.html":   {"p00037", "p00028"},
		"archive/2026/02/2/index.html": {"p00027", "p00018"},
		"archive/2026/02/3/index.html": {"p00017", "p00010"},
		"archive/2026/01/index.html":   {"p00044", "p00038"},
		"archive/2026/03/index.html":   {"p00009", "p00000"},
	} {
		got := listed(pages[path])
		if len(got) == 0 || got[0] != want[0] || got[len(got)-1] != want[1] {
			t.Errorf("%s lists %q, want %s … %s, oldest first", path, got, want[0], want[1])
		}
	}
	// Following rel="prev" from the front page walks every archive page once,
	// back to January, and rel="next" walks forward to the front page again.
	var walked []string
	seen := map[string]int{}
	for url := rel(front, "prev"); url != ""; {
		path := strings.TrimPrefix(url, base) + "index.html"
		doc, ok := pages[path]
		if !ok || len(walked) > 20 {
			t.Fatalf("rel=prev leads to %s, which is not a page (after %q)", url, walked)
		}
		walked = append(walked, path)
		for _, slug := range listed(doc) {
			seen[slug]++
		}
		if back := rel(doc, "next"); back == "" {
			t.Errorf("%s has no rel=next", path)
		}
		url = rel(doc, "prev")
	}
	if want := []string{"archive/2026/03/index.html", "archive/2026/02/3/index.html", "archive/2026/02/2/index.html", "archive/2026/02/index.html", "archive/2026/01/index.html"}; !slices.Equal(walked, want) {
		t.Errorf("rel=prev walk %q, want %q", walked, want)
	}
	if len(seen) != 45 {
		t.Errorf("the archive pages list %d pieces, want all 45", len(seen))
	}
	for slug, n := range seen {
		if n != 1 {
			t.Errorf("%s is on %d archive pages", slug, n)
		}
	}
	if next := rel(pages["archive/2026/03/index.html"], "next"); next != base {
		t.Errorf("the newest archive page's rel=next is %q, want the front page", next)
	}
	// The archive's index lists the months with their counts.
	months := text(find(pages["archive/index.html"], "main")[0])
	if !strings.Contains(months, "2026 March (10) February (28) January (7)") {
		t.Errorf("archive index: %q", months)
	}
	// A topic's page shows its newest and its own months; B has every other piece.
	b := pages["topics/b/index.html"]
	if got := listed(b); len(got) != 10 || got[0] != "p00000" || got[1] != "p00002" {
		t.Errorf("topic page lists %q", got)
	}
	if got := text(find(b, "main")[0]); !strings.Contains(got, "March (5) February (14) January (4)") {
		t.Errorf("topic months: %q", got)
	}
	if prev := rel(b, "prev"); prev != base+"topics/b/2026/03/" {
		t.Errorf("topic page rel=prev %q", prev)
	}
}

// Adding the newest piece changes the pages that show it and the front of each
// run; no other page, whatever the archive's size.
func TestArchivePagesDoNotShiftWhenAPieceIsAdded(t *testing.T) {
	newest := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	s := newSite(t, func(o *Options) { o.PageSize = 10 })
	old := archive(203, newest, 7*time.Hour)
	added := content.Piece{
		ID: "new", Slug: "new", File: "new.md", Hash: "hnew", Title: "New", Topics: []string{"B"},
		Date: newest.Add(time.Hour), Lede: "New.", HTML: "<p>New.</p>",
	}
	before, after := keys(t, s, old), keys(t, s, append(slices.Clone(old), added))
	var changed []string
	for path, key := range after {
		if before[path] != key {
			changed = append(changed, path)
		}
	}
	for path := range before {
		if _, ok := after[path]; !ok {
			t.Errorf("%s is gone", path)
		}
	}
	slices.Sort(changed)
	// March holds 33 pieces before (3 full parts and 3), so the new one joins part 4.
	want := []string{
		"archive/2026/03/4/index.html", "archive/index.html", "index.html", "pieces/new/index.html",
		"topics/b/2026/03/2/index.html", "topics/b/index.html",
	}
	if !slices.Equal(changed, want) {
		t.Errorf("changed pages:\n%q\nwant\n%q", changed, want)
	}

	// A back-dated piece changes its own month only (and the indexes).
	backdated := added
	backdated.Date = time.Date(2026, 2, 10, 0, 0, 0, 0, time.UTC)
	after = keys(t, s, append(slices.Clone(old), backdated))
	for path, key := range after {
		if before[path] != key && !strings.Contains(path, "/2026/02/") && !strings.HasPrefix(path, "pieces/new/") &&
			path != "archive/index.html" && path != "topics/b/index.html" {
			t.Errorf("a piece back-dated to February changed %s", path)
		}
	}
}

// Every page stays under 200 KB however long the archive grows.
func TestEveryPageIsSmallAtTenThousandPieces(t *testing.T) {
	s := newSite(t)
	plan, err := s.Plan(archive(10000, time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC), 3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	largest, name, n := 0, "", 0
	lists := 0
	err = plan.Render(func(p Page) bool {
		if p.Piece == nil {
			lists++
		}
		return p.Piece == nil || p.Path == "pieces/p05000/index.html"
	}, func(f output.File) {
		n++
		if len(f.Data) > largest {
			largest, name = len(f.Data), f.Path
		}
		f.Release()
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != lists+1 || lists < 1000 {
		t.Fatalf("rendered %d pages of %d lists", n, lists)
	}
	if largest > 200<<10 {
		t.Errorf("largest page %s: %d bytes, over 200 KB", name, largest)
	}
	t.Logf("%d list pages, largest %s at %d bytes", lists, name, largest)
}

func TestPiecePageHasTheShortSignUpForm(t *testing.T) {
	doc := renderPages(t, newSite(t))["pieces/older/index.html"]
	forms := find(doc, "form")
	if len(forms) != 1 || attr(forms[0], "action") != "/subscribe" || attr(forms[0], "method") != "post" {
		t.Fatalf("%d forms on a piece page", len(forms))
	}
	var fields []string
	for _, in := range find(forms[0], "input") {
		fields = append(fields, attr(in, "type")+":"+attr(in, "name"))
	}
	if !slices.Equal(fields, []string{"email:email"}) {
		t.Errorf("fields %q: the short form asks for the address only", fields)
	}
	var selected []string
	for _, o := range find(forms[0], "option") {
		if hasAttr(o, "selected") {
			selected = append(selected, attr(o, "value"))
		}
	}
	if !slices.Equal(selected, []string{"weekly"}) {
		t.Errorf("preselected %q, want digest.default_cadence (weekly here)", selected)
	}
}

// The front page lists every feed once, in its body; the footer repeats none.
func TestFrontPageListsEachFeedOnce(t *testing.T) {
	doc := renderPages(t, newSite(t))["index.html"]
	count := map[string]int{}
	for _, a := range find(doc, "a") {
		if h := attr(a, "href"); strings.HasSuffix(h, ".xml") || strings.HasSuffix(h, ".json") || strings.HasSuffix(h, ".opml") {
			count[h]++
		}
	}
	if len(count) != 10 {
		t.Errorf("%d feeds linked, want 10", len(count))
	}
	for h, n := range count {
		if n != 1 {
			t.Errorf("%s linked %d times", h, n)
		}
	}
}

// BenchmarkPlan is planning the archive of 10,000 pieces: every page and its
// key, what an incremental build does before it renders a handful of pages.
func BenchmarkPlan(b *testing.B) {
	s, err := New(Options{Title: "Desk", BaseURL: base, SubscribeAction: "/subscribe"})
	if err != nil {
		b.Fatal(err)
	}
	pieces := archive(10000, time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC), 3*time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Plan(pieces); err != nil {
			b.Fatal(err)
		}
	}
}

// Every page of the archive offers the sign-up form; a topic's pages sign up
// for that topic.
func TestEveryPageHasTheSignUpForm(t *testing.T) {
	pages := renderPages(t, newSite(t))
	for path, doc := range pages {
		var signup *html.Node
		for _, f := range find(doc, "form") {
			if attr(f, "action") == "/subscribe" && attr(f, "method") == "post" {
				signup = f
			}
		}
		if signup == nil {
			t.Errorf("%s has no sign-up form", path)
			continue
		}
		inputs := map[string]string{}
		for _, in := range find(signup, "input") {
			inputs[attr(in, "name")] = attr(in, "type") + "=" + attr(in, "value")
		}
		if _, ok := inputs["email"]; !ok {
			t.Errorf("%s: the form asks for no address", path)
		}
		if strings.HasPrefix(path, "topics/eu/") && inputs["topics"] != "hidden=EU" {
			t.Errorf("%s: the topic's form signs up for %q, want EU", path, inputs["topics"])
		}
	}
}

// BenchmarkRender is rendering every page of a 10,000-piece archive (what a
// full build renders), without writing it anywhere.
func BenchmarkRender(b *testing.B) {
	s, err := New(Options{Title: "Desk", Description: "Analysis from the desk", BaseURL: base, SubscribeAction: "/subscribe"})
	if err != nil {
		b.Fatal(err)
	}
	pieces := archive(10000, time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC), 3*time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		plan, err := s.Plan(pieces)
		if err != nil {
			b.Fatal(err)
		}
		var size int
		if err := plan.Render(func(Page) bool { return true }, func(f output.File) {
			size += len(f.Data)
			if f.Release != nil {
				f.Release()
			}
		}); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(size)/1e6, "MB/op")
	}
}
