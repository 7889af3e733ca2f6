package feed

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mmcdole/gofeed"
	gatom "github.com/mmcdole/gofeed/atom"
	gjson "github.com/mmcdole/gofeed/json"
	grss "github.com/mmcdole/gofeed/rss"

	"publisher/internal/content"
	"publisher/internal/output"
)

const base = "https://desk.example/analysis/"

var (
	alphaDate   = time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)
	alphaUpdate = time.Date(2024, 3, 5, 9, 0, 0, 0, time.UTC)
	// bravo has no date: it is dated by when it was first seen, in a zone
	// other than UTC to show that the feeds normalise it.
	bravoSeen = time.Date(2024, 3, 2, 12, 30, 0, 0, time.FixedZone("CET", 3600))
)

func fixture() []content.Piece {
	return []content.Piece{
		{
			ID: "alpha", Slug: "alpha", File: "alpha.md",
			Title: "Alpha & the <grid>",
			Authors: []content.Author{
				{Name: "Ann Analyst", Role: "Senior Fellow", Email: "ann@desk.example", URL: "https://desk.example/people/ann"},
				{Name: "Bob Baker"},
			},
			Date: alphaDate, Updated: alphaUpdate,
			Summary: "Alpha summary.",
			Topics:  []string{"Energy Policy", "EU"},
			Source:  content.Source{Name: "The Daily Paper", URL: "https://paper.example/alpha"},
			HTML:    `<p>See <a href="../bravo/">bravo</a> and <a href="https://other.example/x">x</a>.</p><p><img src="chart.png" alt="chart"></p>`,
			Image:   "cover.jpg",
		},
		{
			ID: "bravo", Slug: "bravo", File: "bravo.txt",
			Title:        "Bravo",
			Authors:      []content.Author{{Name: "Cleo Chen", Role: "Editor, Quarterly Review"}},
			FirstSeen:    bravoSeen,
			Lede:         "Bravo lede.",
			Topics:       []string{"Energy Policy"},
			CanonicalURL: "https://elsewhere.example/bravo",
			Source:       content.Source{Name: "Quarterly Review"},
			HTML:         "<p>Bravo body.</p>",
		},
		{
			ID: "charlie", Slug: "charlie", File: "charlie.md",
			Title:   "Charlie",
			Date:    alphaDate, // same instant as alpha: ordered by id after it
			Summary: "Charlie summary.",
			HTML:    "<p>Charlie body.</p>",
		},
		{
			ID: "delta", Slug: "delta", File: "delta.md", Title: "Delta draft", Draft: true,
			Date: alphaDate.AddDate(0, 1, 0), HTML: "<p>Never published.</p>",
		},
	}
}

func testOptions() Options {
	return Options{
		Title:       "Analysis Desk",
		Description: "Analysis from the desk",
		BaseURL:     strings.TrimSuffix(base, "/"), // Render adds the slash
		Language:    "en-GB",
		Hubs:        []string{"https://hub.example/"},
	}
}

func render(t testing.TB, opts Options, pieces []content.Piece) map[string][]byte {
	t.Helper()
	files, err := Render(opts, pieces)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		if _, dup := out[f.Path]; dup {
			t.Fatalf("%s produced twice", f.Path)
		}
		out[f.Path] = f.Data
	}
	return out
}

// want describes one expected item, the same in every format.
type want struct {
	title, page, guid, tagID, summary string
	published, modified               time.Time
	authors                           []string // names, one element each (Atom, JSON Feed)
	creator                           string   // RSS: one dc:creator naming them all
	categories                        []string
	contains                          []string
}

func wantAlpha() want {
	return want{
		title: "Alpha & the <grid>", page: base + "pieces/alpha/", guid: base + "pieces/alpha/",
		tagID: "tag:desk.example,2024-03-01:analysis/alpha", summary: "Alpha summary.",
		published: alphaDate, modified: alphaUpdate,
		authors:    []string{"Ann Analyst", "Bob Baker"},
		creator:    "Ann Analyst and Bob Baker",
		categories: []string{"Energy Policy", "EU"},
		contains: []string{
			`<p class="byline">By Ann Analyst (Senior Fellow) and Bob Baker</p>`,
			`<a href="` + base + `pieces/bravo/">bravo</a>`,
			`<a href="https://other.example/x">x</a>`,
			`<img src="` + base + `pieces/alpha/chart.png" alt="chart">`,
			`<p>Originally published in <a href="https://paper.example/alpha">The Daily Paper</a>.</p>`,
		},
	}
}

func wantBravo() want {
	return want{
		title: "Bravo", page: base + "pieces/bravo/", guid: "https://elsewhere.example/bravo",
		tagID: "tag:desk.example,2024-03-02:analysis/bravo", summary: "Bravo lede.",
		published: bravoSeen.UTC(), modified: bravoSeen.UTC(),
		authors:    []string{"Cleo Chen"},
		creator:    "Cleo Chen",
		categories: []string{"Energy Policy"},
		contains:   []string{`<p class="byline">By Cleo Chen (Editor, Quarterly Review)</p><p>Bravo body.</p>`, "<p>Originally published in Quarterly Review.</p>"},
	}
}

func wantCharlie() want {
	return want{
		title: "Charlie", page: base + "pieces/charlie/", guid: base + "pieces/charlie/",
		tagID: "tag:desk.example,2024-03-01:analysis/charlie", summary: "Charlie summary.",
		published: alphaDate, modified: alphaDate,
		contains: []string{"<p>Charlie body.</p>"},
	}
}

func TestRenderProducesEveryFeed(t *testing.T) {
	files := render(t, testOptions(), fixture())
	var got []string
	for p := range files {
		got = append(got, p)
	}
	slices.Sort(got)
	want := []string{
		"atom.xml", "feed.json", "feed.xml", "feeds.opml",
		"topics/energy-policy/atom.xml", "topics/energy-policy/feed.json", "topics/energy-policy/feed.xml",
		"topics/eu/atom.xml", "topics/eu/feed.json", "topics/eu/feed.xml",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("files:\n got %q\nwant %q", got, want)
	}
}

// checkUniversal asserts what gofeed's format-neutral view shows of any of the three formats.
func checkUniversal(t *testing.T, name string, data []byte, title, home, self string, items []want) {
	t.Helper()
	f, err := gofeed.NewParser().Parse(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: gofeed: %v", name, err)
	}
	if f.Title != title || f.Link != home || f.FeedLink != self || f.Language != "en-GB" {
		t.Errorf("%s: title %q link %q feed link %q language %q; want %q %q %q en-GB", name, f.Title, f.Link, f.FeedLink, f.Language, title, home, self)
	}
	if len(f.Items) != len(items) {
		t.Fatalf("%s: %d items, want %d", name, len(f.Items), len(items))
	}
	for i, w := range items {
		it := f.Items[i]
		if it.Title != w.title {
			t.Errorf("%s item %d: title %q, want %q", name, i, it.Title, w.title)
		}
		if it.Link != w.page {
			t.Errorf("%s item %d: link %q, want %q", name, i, it.Link, w.page)
		}
		if it.PublishedParsed == nil || !it.PublishedParsed.Equal(w.published) {
			t.Errorf("%s item %d: published %v, want %v", name, i, it.PublishedParsed, w.published)
		}
		if !slices.Equal(it.Categories, w.categories) && (len(it.Categories) > 0 || len(w.categories) > 0) {
			t.Errorf("%s item %d: categories %q, want %q", name, i, it.Categories, w.categories)
		}
		for _, c := range w.contains {
			if !strings.Contains(it.Content, c) {
				t.Errorf("%s item %d: content lacks %s:\n%s", name, i, c, it.Content)
			}
		}
		var authors []string
		for _, a := range it.Authors {
			authors = append(authors, a.Name)
		}
		want := w.authors
		if strings.HasSuffix(name, RSSName) && w.creator != "" {
			want = []string{w.creator}
		}
		if !slices.Equal(authors, want) {
			t.Errorf("%s item %d: authors %q, want %q", name, i, authors, want)
		}
	}
}

func TestRSS(t *testing.T) {
	files := render(t, testOptions(), fixture())
	items := []want{wantBravo(), wantAlpha(), wantCharlie()}
	checkUniversal(t, "feed.xml", files["feed.xml"], "Analysis Desk", base, base+"feed.xml", items)

	f, err := (&grss.Parser{}).Parse(bytes.NewReader(files["feed.xml"]))
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != "2.0" || f.Description != "Analysis from the desk" || f.Language != "en-GB" {
		t.Errorf("channel: version %q description %q language %q", f.Version, f.Description, f.Language)
	}
	// lastBuildDate is the newest change among the items, pubDate the newest publication.
	if f.LastBuildDate != "Tue, 05 Mar 2024 09:00:00 +0000" || f.PubDate != "Sat, 02 Mar 2024 11:30:00 +0000" {
		t.Errorf("lastBuildDate %q pubDate %q", f.LastBuildDate, f.PubDate)
	}
	for i, w := range items {
		it := f.Items[i]
		if it.GUID == nil || it.GUID.Value != w.guid || it.GUID.IsPermalink != "true" {
			t.Errorf("item %d: guid %+v, want %s permalink", i, it.GUID, w.guid)
		}
		if want := w.published.Format(time.RFC1123Z); it.PubDate != want {
			t.Errorf("item %d: pubDate %q, want %q", i, it.PubDate, want)
		}
		// The summary is plain text; RSS descriptions are HTML, so it arrives escaped.
		if it.Description != w.summary {
			t.Errorf("item %d: description %q, want %q", i, it.Description, w.summary)
		}
		var creators []string
		if it.DublinCoreExt != nil {
			creators = it.DublinCoreExt.Creator
		}
		if want := []string{w.creator}; w.creator == "" && len(creators) > 0 || w.creator != "" && !slices.Equal(creators, want) {
			t.Errorf("item %d: dc:creator %q, want one naming %q", i, creators, w.creator)
		}
		if it.Author != "" {
			t.Errorf("item %d: <author> %q: RSS wants an e-mail address there", i, it.Author)
		}
	}
	if s := f.Items[1].Source; s == nil || s.URL != "https://paper.example/alpha" || s.Title != "The Daily Paper" {
		t.Errorf("alpha source %+v", s)
	}
	if s := f.Items[0].Source; s != nil {
		t.Errorf("bravo has no source URL, so no <source>: got %+v", s)
	}

	// What gofeed does not show: the namespaced atom:link elements.
	var raw struct {
		Channel struct {
			Links []struct {
				Href string `xml:"href,attr"`
				Rel  string `xml:"rel,attr"`
				Type string `xml:"type,attr"`
			} `xml:"http://www.w3.org/2005/Atom link"`
		} `xml:"channel"`
	}
	if err := xml.Unmarshal(files["feed.xml"], &raw); err != nil {
		t.Fatal(err)
	}
	links := fmt.Sprint(raw.Channel.Links)
	if want := "[{" + base + "feed.xml self application/rss+xml} {https://hub.example/ hub }]"; links != want {
		t.Errorf("atom:link %s, want %s", links, want)
	}
}

func TestAtom(t *testing.T) {
	files := render(t, testOptions(), fixture())
	items := []want{wantBravo(), wantAlpha(), wantCharlie()}
	checkUniversal(t, "atom.xml", files["atom.xml"], "Analysis Desk", base, base+"atom.xml", items)

	f, err := (&gatom.Parser{}).Parse(bytes.NewReader(files["atom.xml"]))
	if err != nil {
		t.Fatal(err)
	}
	if f.ID != base+"atom.xml" || f.Updated != "2024-03-05T09:00:00Z" || f.Subtitle != "Analysis from the desk" || f.Language != "en-GB" {
		t.Errorf("feed: id %q updated %q subtitle %q language %q", f.ID, f.Updated, f.Subtitle, f.Language)
	}
	if len(f.Authors) != 1 || f.Authors[0].Name != "Analysis Desk" {
		t.Errorf("feed author %+v: entries without authors need one", f.Authors)
	}
	var links []string
	for _, l := range f.Links {
		links = append(links, l.Rel+" "+l.Type+" "+l.Href)
	}
	if want := []string{"alternate text/html " + base, "self application/atom+xml " + base + "atom.xml", "hub  https://hub.example/"}; !slices.Equal(links, want) {
		t.Errorf("feed links %q, want %q", links, want)
	}

	ids := map[string]bool{}
	for i, w := range items {
		e := f.Entries[i]
		if e.ID != w.tagID {
			t.Errorf("entry %d: id %q, want %q", i, e.ID, w.tagID)
		}
		if ids[e.ID] {
			t.Errorf("entry %d: id %q used twice", i, e.ID)
		}
		ids[e.ID] = true
		if e.Published != w.published.Format(time.RFC3339) || e.Updated != w.modified.Format(time.RFC3339) {
			t.Errorf("entry %d: published %q updated %q, want %v %v", i, e.Published, e.Updated, w.published, w.modified)
		}
		if e.Summary != w.summary {
			t.Errorf("entry %d: summary %q, want %q", i, e.Summary, w.summary)
		}
		if e.Content == nil || e.Content.Type != "html" {
			t.Errorf("entry %d: content %+v, want type html", i, e.Content)
		}
		var names []string
		for _, a := range e.Authors {
			names = append(names, a.Name)
		}
		if !slices.Equal(names, w.authors) {
			t.Errorf("entry %d: authors %q, want %q", i, names, w.authors)
		}
		var terms []string
		for _, c := range e.Categories {
			terms = append(terms, c.Term)
		}
		if !slices.Equal(terms, w.categories) {
			t.Errorf("entry %d: categories %q, want %q", i, terms, w.categories)
		}
	}
	ann := f.Entries[1].Authors[0]
	if ann.Email != "ann@desk.example" || ann.URI != "https://desk.example/people/ann" {
		t.Errorf("author email %q uri %q", ann.Email, ann.URI)
	}
	var bravoLinks []string
	for _, l := range f.Entries[0].Links {
		bravoLinks = append(bravoLinks, l.Rel+" "+l.Href)
	}
	if want := []string{"alternate " + base + "pieces/bravo/", "related https://elsewhere.example/bravo"}; !slices.Equal(bravoLinks, want) {
		t.Errorf("bravo links %q, want %q", bravoLinks, want)
	}
	var alphaLinks []string
	for _, l := range f.Entries[1].Links {
		alphaLinks = append(alphaLinks, l.Rel+" "+l.Href)
	}
	if want := []string{"alternate " + base + "pieces/alpha/", "via https://paper.example/alpha"}; !slices.Equal(alphaLinks, want) {
		t.Errorf("alpha links %q, want %q", alphaLinks, want)
	}
}

func TestJSONFeed(t *testing.T) {
	files := render(t, testOptions(), fixture())
	items := []want{wantBravo(), wantAlpha(), wantCharlie()}
	checkUniversal(t, "feed.json", files["feed.json"], "Analysis Desk", base, base+"feed.json", items)

	f, err := (&gjson.Parser{}).Parse(bytes.NewReader(files["feed.json"]))
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != "https://jsonfeed.org/version/1.1" || f.Language != "en-GB" || f.Description != "Analysis from the desk" {
		t.Errorf("feed: version %q language %q description %q", f.Version, f.Language, f.Description)
	}
	for i, w := range items {
		it := f.Items[i]
		if it.ID != w.guid || it.URL != w.page || it.Summary != w.summary {
			t.Errorf("item %d: id %q url %q summary %q", i, it.ID, it.URL, it.Summary)
		}
		if it.DatePublished != w.published.Format(time.RFC3339) || it.DateModified != w.modified.Format(time.RFC3339) {
			t.Errorf("item %d: dates %q %q", i, it.DatePublished, it.DateModified)
		}
		if it.Author != nil {
			t.Errorf("item %d: deprecated author %+v", i, it.Author)
		}
		var names []string
		for _, a := range it.Authors {
			names = append(names, a.Name)
		}
		if !slices.Equal(names, w.authors) {
			t.Errorf("item %d: authors %q, want %q", i, names, w.authors)
		}
		if !slices.Equal(it.Tags, w.categories) {
			t.Errorf("item %d: tags %q, want %q", i, it.Tags, w.categories)
		}
	}
	if f.Items[1].Authors[0].URL != "https://desk.example/people/ann" {
		t.Errorf("author url %q", f.Items[1].Authors[0].URL)
	}
	if f.Items[1].Image != base+"pieces/alpha/cover.jpg" {
		t.Errorf("image %q", f.Items[1].Image)
	}
	if f.Items[0].ExternalURL != "https://elsewhere.example/bravo" || f.Items[1].ExternalURL != "https://paper.example/alpha" {
		t.Errorf("external urls %q %q", f.Items[0].ExternalURL, f.Items[1].ExternalURL)
	}
	// gofeed does not read hubs.
	var raw struct {
		Hubs []struct{ Type, URL string } `json:"hubs"`
	}
	if err := json.Unmarshal(files["feed.json"], &raw); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(raw.Hubs) != "[{WebSub https://hub.example/}]" {
		t.Errorf("hubs %v", raw.Hubs)
	}
}

func TestTopicFeeds(t *testing.T) {
	files := render(t, testOptions(), fixture())
	for _, tc := range []struct {
		slug, name string
		items      []want
	}{
		{"energy-policy", "Energy Policy", []want{wantBravo(), wantAlpha()}},
		{"eu", "EU", []want{wantAlpha()}},
	} {
		dir := "topics/" + tc.slug + "/"
		for _, name := range []string{RSSName, AtomName, JSONName} {
			checkUniversal(t, dir+name, files[dir+name], "Analysis Desk: "+tc.name, base+dir, base+dir+name, tc.items)
		}
		a, err := (&gatom.Parser{}).Parse(bytes.NewReader(files[dir+AtomName]))
		if err != nil {
			t.Fatal(err)
		}
		// The topic feed has its own id; its entries keep the ids they have in the site feed.
		if a.ID != base+dir+AtomName || a.Entries[len(a.Entries)-1].ID != wantAlpha().tagID {
			t.Errorf("%s: feed id %q, last entry id %q", dir, a.ID, a.Entries[len(a.Entries)-1].ID)
		}
		if want := tc.items[0].modified; tc.slug == "eu" && a.Updated != want.Format(time.RFC3339) {
			t.Errorf("%s: updated %q, want %v", dir, a.Updated, want)
		}
	}
}

func TestOPMLListsEveryFeedOnce(t *testing.T) {
	type outline struct {
		Text     string    `xml:"text,attr"`
		Type     string    `xml:"type,attr"`
		Version  string    `xml:"version,attr"`
		XMLURL   string    `xml:"xmlUrl,attr"`
		HTMLURL  string    `xml:"htmlUrl,attr"`
		Outlines []outline `xml:"outline"`
	}
	for format, file := range map[string]string{"": RSSName, OPMLRSS: RSSName, OPMLAtom: AtomName, OPMLJSON: JSONName} {
		opts := testOptions()
		opts.OPMLFormat = format
		files := render(t, opts, fixture())
		var doc struct {
			XMLName      xml.Name  `xml:"opml"`
			Version      string    `xml:"version,attr"`
			Title        string    `xml:"head>title"`
			DateModified string    `xml:"head>dateModified"`
			Outlines     []outline `xml:"body>outline"`
		}
		if err := xml.Unmarshal(files[OPMLName], &doc); err != nil {
			t.Fatal(err)
		}
		if doc.Version != "2.0" || doc.Title != "Analysis Desk: feeds" || doc.DateModified != "Tue, 05 Mar 2024 09:00:00 +0000" {
			t.Errorf("head: version %q title %q dateModified %q", doc.Version, doc.Title, doc.DateModified)
		}
		// One outline per feed, in one format: importing it subscribes once to each.
		var got []string
		for _, o := range doc.Outlines {
			if o.Type != "rss" || len(o.Outlines) != 0 {
				t.Errorf("format %q: outline %+v", format, o)
			}
			got = append(got, o.Text+" "+o.XMLURL+" "+o.HTMLURL)
			if _, ok := files[strings.TrimPrefix(o.XMLURL, base)]; !ok {
				t.Errorf("OPML lists %s, which was not produced", o.XMLURL)
			}
		}
		want := []string{
			"Analysis Desk " + base + file + " " + base,
			"Analysis Desk: Energy Policy " + base + "topics/energy-policy/" + file + " " + base + "topics/energy-policy/",
			"Analysis Desk: EU " + base + "topics/eu/" + file + " " + base + "topics/eu/",
		}
		if !slices.Equal(got, want) {
			t.Errorf("format %q: outlines\n%q\nwant\n%q", format, got, want)
		}
	}
	opts := testOptions()
	opts.OPMLFormat = "rdf"
	if _, err := Render(opts, fixture()); err == nil {
		t.Error("an unknown OPML format was accepted")
	}
}

// Entry ids are made on the base URL the site was first built with: moving to
// another host changes every link but no id.
func TestEntryIDsSurviveAMove(t *testing.T) {
	before := render(t, testOptions(), fixture())
	moved := testOptions()
	moved.IDBase = moved.BaseURL
	moved.BaseURL = "https://new-home.example/desk/"
	after := render(t, moved, fixture())

	ids := func(files map[string][]byte) (rss, atom, json []string) {
		for name, out := range map[string]*[]string{RSSName: &rss, AtomName: &atom, JSONName: &json} {
			f, err := gofeed.NewParser().Parse(bytes.NewReader(files[name]))
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range f.Items {
				*out = append(*out, it.GUID)
			}
		}
		return
	}
	r1, a1, j1 := ids(before)
	r2, a2, j2 := ids(after)
	if !slices.Equal(r1, r2) || !slices.Equal(a1, a2) || !slices.Equal(j1, j2) {
		t.Errorf("ids changed with the host:\nRSS %q -> %q\nAtom %q -> %q\nJSON %q -> %q", r1, r2, a1, a2, j1, j2)
	}
	f, err := (&grss.Parser{}).Parse(bytes.NewReader(after[RSSName]))
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range f.Items {
		if !strings.HasPrefix(it.Link, "https://new-home.example/desk/pieces/") {
			t.Errorf("link %q is not on the new host", it.Link)
		}
		// A guid that no longer opens the piece is no permalink; a canonical URL still is.
		if want := strconv.FormatBool(it.GUID.Value == "https://elsewhere.example/bravo"); it.GUID.IsPermalink != want {
			t.Errorf("guid %+v: isPermaLink should be %s", it.GUID, want)
		}
	}
	if a, _ := (&gatom.Parser{}).Parse(bytes.NewReader(after[AtomName])); a.ID != base+AtomName {
		t.Errorf("feed id %q changed with the host", a.ID)
	}

	// feed.id_authority names the host of the ids outright.
	named := testOptions()
	named.IDAuthority = "ids.example.org"
	a, err := (&gatom.Parser{}).Parse(bytes.NewReader(render(t, named, fixture())[AtomName]))
	if err != nil || a.Entries[1].ID != "tag:ids.example.org,2024-03-01:analysis/alpha" {
		t.Errorf("with an id authority: %v %q", err, a.Entries[1].ID)
	}
	for _, bad := range []string{"ids.example.org:8080", "a/b", "user@host", ""} {
		if err := CheckAuthority(bad); err == nil {
			t.Errorf("authority %q accepted", bad)
		}
	}
}

// A channel's key changes exactly when one of its files would.
func TestChannelKeys(t *testing.T) {
	keys := func(pieces []content.Piece) map[string]string {
		f, err := Plan(testOptions(), pieces)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, c := range f.Channels() {
			out[c.Dir] = c.Key
		}
		return out
	}
	first := keys(fixture())
	if again := keys(fixture()); fmt.Sprint(again) != fmt.Sprint(first) {
		t.Fatal("keys differ between two plans of the same pieces")
	}
	edited := fixture()
	edited[2].Summary = "Charlie, edited." // charlie has no topic: only the site's feed
	second := keys(edited)
	if second[""] == first[""] || second["topics/eu/"] != first["topics/eu/"] || second["topics/energy-policy/"] != first["topics/energy-policy/"] {
		t.Errorf("editing charlie: keys %v -> %v", first, second)
	}
}

func TestOutputIsDeterministic(t *testing.T) {
	first := render(t, testOptions(), fixture())
	shuffled := fixture()
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	second := render(t, testOptions(), shuffled)
	if len(first) != len(second) {
		t.Fatalf("%d files, then %d", len(first), len(second))
	}
	for p, data := range first {
		if !bytes.Equal(data, second[p]) {
			t.Errorf("%s differs between two renders of the same pieces", p)
		}
	}

	// Written twice to disk: the second write changes nothing, not even mtimes.
	dir := t.TempDir()
	files, _ := Render(testOptions(), fixture())
	if st, err := output.Write(dir, files); err != nil || st.Written != len(files) {
		t.Fatalf("first write: %+v %v", st, err)
	}
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, f := range files {
		if err := os.Chtimes(filepath.Join(dir, f.Path), old, old); err != nil {
			t.Fatal(err)
		}
	}
	again, _ := Render(testOptions(), fixture())
	st, err := output.Write(dir, again)
	if err != nil || st.Written != 0 || st.Unchanged != len(files) || st.Removed != 0 {
		t.Fatalf("second write: %+v %v", st, err)
	}
	for _, f := range files {
		fi, err := os.Stat(filepath.Join(dir, f.Path))
		if err != nil || !fi.ModTime().Equal(old) {
			t.Errorf("%s was rewritten", f.Path)
		}
	}
}

func TestItemsLimit(t *testing.T) {
	opts := testOptions()
	opts.Items = 2
	files := render(t, opts, fixture())
	f, err := gofeed.NewParser().Parse(bytes.NewReader(files["feed.xml"]))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Items) != 2 || f.Items[0].Title != "Bravo" || f.Items[1].Title != "Alpha & the <grid>" {
		t.Errorf("items %d: want the two newest", len(f.Items))
	}
}

func TestContentLinksAreAbsolute(t *testing.T) {
	files := render(t, testOptions(), fixture())
	for _, name := range []string{RSSName, AtomName, JSONName} {
		f, err := gofeed.NewParser().Parse(bytes.NewReader(files[name]))
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range f.Items {
			for _, attr := range []string{`href="`, `src="`} {
				for rest := it.Content; ; {
					i := strings.Index(rest, attr)
					if i < 0 {
						break
					}
					rest = rest[i+len(attr):]
					if !strings.HasPrefix(rest, "https://") {
						t.Errorf("%s %q: relative %s%s", name, it.Title, attr, rest[:min(len(rest), 30)])
					}
				}
			}
		}
	}
}

// TestFeedRules checks rules a feed validator applies that parsers forgive.
func TestFeedRules(t *testing.T) {
	files := render(t, testOptions(), fixture())
	for path, data := range files {
		if !strings.HasSuffix(path, ".xml") && !strings.HasSuffix(path, ".opml") {
			continue
		}
		if !bytes.HasPrefix(data, []byte(`<?xml version="1.0" encoding="UTF-8"?>`)) {
			t.Errorf("%s: no XML declaration", path)
		}
		// Well-formed, every element closed, namespaces declared.
		dec := xml.NewDecoder(bytes.NewReader(data))
		for {
			tok, err := dec.Token()
			if err != nil {
				if err.Error() != "EOF" {
					t.Errorf("%s: %v", path, err)
				}
				break
			}
			if se, ok := tok.(xml.StartElement); ok && se.Name.Space != "" && !strings.HasPrefix(se.Name.Space, "http") {
				t.Errorf("%s: element %s:%s in an undeclared namespace", path, se.Name.Space, se.Name.Local)
			}
		}
		if strings.HasSuffix(path, RSSName) {
			f, err := (&grss.Parser{}).Parse(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range []string{f.PubDate, f.LastBuildDate} {
				if _, err := time.Parse(time.RFC1123Z, d); err != nil {
					t.Errorf("%s: channel date %q is not RFC 1123 with numeric zone", path, d)
				}
			}
			for _, it := range f.Items {
				if _, err := time.Parse(time.RFC1123Z, it.PubDate); err != nil {
					t.Errorf("%s: pubDate %q is not RFC 1123 with numeric zone", path, it.PubDate)
				}
				if it.GUID.IsPermalink == "true" && !strings.HasPrefix(it.GUID.Value, "https://") {
					t.Errorf("%s: permalink guid %q is not a URL", path, it.GUID.Value)
				}
			}
		}
		if strings.HasSuffix(path, AtomName) {
			f, err := (&gatom.Parser{}).Parse(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{f.ID: true}
			for _, e := range f.Entries {
				if seen[e.ID] || !strings.HasPrefix(e.ID, "tag:desk.example,") {
					t.Errorf("%s: entry id %q repeated or not a tag URI", path, e.ID)
				}
				seen[e.ID] = true
				for _, d := range []string{e.Published, e.Updated} {
					if _, err := time.Parse(time.RFC3339, d); err != nil {
						t.Errorf("%s: date %q: %v", path, d, err)
					}
				}
				if e.Title == "" || e.Content == nil || (len(e.Authors) == 0 && len(f.Authors) == 0) {
					t.Errorf("%s: entry %q lacks title, content or an author", path, e.ID)
				}
			}
		}
	}
}

func TestEmptySiteStillValid(t *testing.T) {
	files := render(t, testOptions(), nil)
	if len(files) != 4 {
		t.Errorf("%d files for no pieces, want the 3 site feeds and the OPML", len(files))
	}
	a, err := (&gatom.Parser{}).Parse(bytes.NewReader(files[AtomName]))
	if err != nil || a.Updated == "" {
		t.Errorf("atom: %v, updated %q: Atom requires <updated>", err, a.Updated)
	}
	var raw map[string]any
	if err := json.Unmarshal(files[JSONName], &raw); err != nil {
		t.Fatal(err)
	}
	if items, ok := raw["items"].([]any); !ok || len(items) != 0 {
		t.Errorf("JSON Feed requires an items array: %v", raw["items"])
	}
}

func TestBadPiecesAreLeftOutAndNamed(t *testing.T) {
	pieces := append(fixture(),
		content.Piece{ID: "x", Slug: "../escape", File: "escape.md", Title: "Escape", Date: alphaDate},
		content.Piece{ID: "undated", Slug: "undated", File: "undated.txt", Title: "Undated"},
	)
	files, err := Render(testOptions(), pieces)
	if err == nil || !strings.Contains(err.Error(), "escape.md") || !strings.Contains(err.Error(), "undated.txt") {
		t.Fatalf("error %v should name escape.md and undated.txt", err)
	}
	for _, f := range files {
		if f.Path == RSSName {
			if bytes.Contains(f.Data, []byte("Escape")) || bytes.Contains(f.Data, []byte("Undated")) {
				t.Error("a bad piece made it into the feed")
			}
			if !bytes.Contains(f.Data, []byte("Charlie")) {
				t.Error("the good pieces are missing")
			}
			return
		}
	}
	t.Fatal("no feed.xml despite good pieces")
}

func TestOptionsAreChecked(t *testing.T) {
	for _, opts := range []Options{
		{Title: "", BaseURL: base},
		{Title: "x", BaseURL: "/relative/"},
		{Title: "x", BaseURL: "ftp://desk.example/"},
		{Title: "x", BaseURL: base, Hubs: []string{"not a url"}},
	} {
		if _, err := Render(opts, fixture()); err == nil {
			t.Errorf("Render(%+v) accepted bad options", opts)
		}
	}
}

// TestFeedparserAcceptsFeeds runs the check script CI uses, with Python's
// feedparser, over rendered feeds, and shows that it does catch a broken one.
func TestFeedparserAcceptsFeeds(t *testing.T) {
	dir := t.TempDir()
	files, err := Render(testOptions(), fixture())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := output.Write(dir, files); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join("..", "..", "scripts", "check_feeds.py")
	out, err := exec.Command("/usr/bin/python3", script, dir).CombinedOutput()
	if err != nil {
		t.Fatalf("check_feeds.py: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "9 feeds parsed without a warning") {
		t.Errorf("unexpected output: %s", out)
	}

	broken := filepath.Join(dir, "topics", "eu", "atom.xml")
	if err := os.WriteFile(broken, []byte(`<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>x</title><entry><title>a &amp b</title></entry></feed>`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command("/usr/bin/python3", script, dir).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), broken) {
		t.Errorf("broken feed: exit %v, output %s", err, out)
	}
}

// TestThroughContentLoad renders pieces the content package loaded from files.
func TestThroughContentLoad(t *testing.T) {
	dir := t.TempDir()
	md := "---\ntitle: Loaded piece\nauthors:\n  - name: Dana Doe\n    role: Analyst\ndate: 2024-05-06\ntopics: [Trade]\nsource:\n  name: Weekly\n  url: https://weekly.example/\n---\n\nFirst paragraph with [a link](notes/) and ![a chart](chart.png).\n"
	if err := os.WriteFile(filepath.Join(dir, "loaded.md"), []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	pieces, problems, err := content.Load(t.Context(), dir, content.Options{})
	if err != nil || len(pieces) != 1 {
		t.Fatalf("Load: %d pieces, problems %v, err %v", len(pieces), problems, err)
	}
	files := render(t, testOptions(), pieces)
	f, err := gofeed.NewParser().Parse(bytes.NewReader(files["topics/trade/atom.xml"]))
	if err != nil {
		t.Fatal(err)
	}
	it := f.Items[0]
	page := base + "pieces/" + pieces[0].Slug + "/"
	if it.Title != "Loaded piece" || it.Link != page || it.Authors[0].Name != "Dana Doe" {
		t.Errorf("item %q %q %+v", it.Title, it.Link, it.Authors[0])
	}
	for _, s := range []string{`By Dana Doe (Analyst)`, `href="` + page + `notes/"`, `src="` + page + `chart.png"`, `Originally published in <a href="https://weekly.example/">Weekly</a>`} {
		if !strings.Contains(it.Content, s) {
			t.Errorf("content lacks %s:\n%s", s, it.Content)
		}
	}
}

func benchPieces(n int) []content.Piece {
	topics := []string{"Energy", "EU", "Trade", "Security", "Climate"}
	pieces := make([]content.Piece, n)
	for i := range pieces {
		slug := fmt.Sprintf("piece-%04d", i)
		pieces[i] = content.Piece{
			ID: slug, Slug: slug, File: slug + ".md", Title: "Piece " + slug,
			Authors: []content.Author{{Name: "Ann Analyst", Role: "Fellow"}, {Name: "Bob Baker"}},
			Date:    alphaDate.Add(time.Duration(i) * time.Hour),
			Summary: "A summary of the piece.",
			Topics:  []string{topics[i%len(topics)], topics[(i+2)%len(topics)]},
			Source:  content.Source{Name: "The Paper", URL: "https://paper.example/" + slug},
			HTML:    strings.Repeat(`<p>A paragraph with <a href="../other/">a link</a> and some words to make it long enough.</p>`, 12),
		}
	}
	return pieces
}

func BenchmarkRender(b *testing.B) {
	for _, n := range []int{50, 1000} {
		b.Run(fmt.Sprintf("pieces=%d", n), func(b *testing.B) {
			pieces := benchPieces(n)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Render(testOptions(), pieces); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
