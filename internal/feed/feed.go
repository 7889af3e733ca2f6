// Package feed renders the site's pieces as RSS 2.0, Atom 1.0 and JSON Feed 1.1,
// for the whole site and per topic, plus an OPML list of every feed. It is a
// pure renderer: the same pieces give the same bytes, whatever the clock says.
//
// gorilla/feeds builds the bulk of each document; what it lacks (self and hub
// links, language, several authors and categories, stable ids, published dates)
// is filled in on structs that wrap the ones it returns, and encoding/xml or
// encoding/json marshals the whole.
package feed

import (
	"errors"
	"fmt"
	"html"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/feeds"

	"publisher/internal/content"
	"publisher/internal/output"
)

// Options describe the site the feeds belong to.
type Options struct {
	Title       string
	Description string
	// BaseURL is the absolute URL the output folder is served at.
	BaseURL string
	// Language is a BCP 47 tag such as "en" or "de-CH"; empty leaves it out.
	Language string
	// Items is the most items a feed carries; 0 means DefaultItems.
	Items int
	// Hubs are WebSub hub URLs, announced in every feed.
	Hubs []string
	// Author, when set, is credited on the feeds themselves (Atom needs an author
	// for entries without one; the site title stands in when this is nil).
	Author *content.Author
}

// site is Options checked and with everything the formats share worked out once.
type site struct {
	Options
	base *url.URL
	home string
}

// channel is one feed (the site's or a topic's) before it is put in a format.
type channel struct {
	title, description string
	dir                string // "" or "topics/<slug>/"
	home               string // the HTML page the feed stands for
	items              []item
}

func (c *channel) url(s *site, name string) string { return Resolve(s.base, c.dir+name) }

// item is one piece with everything its entries need, computed once and shared
// by the site feed and the topic feeds.
type item struct {
	piece     *content.Piece
	title     string
	page      string // the piece's archive page
	guid      string // RSS guid and JSON Feed id
	tagID     string // Atom id
	summary   string // plain text
	html      string // links made absolute, source attribution appended
	image     string
	published time.Time
	modified  time.Time
}

// Render returns feed.xml, atom.xml and feed.json for the site and for every
// topic, and feeds.opml. Pieces that cannot be put in a feed are left out and
// named in the error; the files returned are complete for the others, so a
// caller may write them and report the error.
func Render(opts Options, pieces []content.Piece) ([]output.File, error) {
	s, err := newSite(opts)
	if err != nil {
		return nil, err
	}
	sorted, sortErr := Newest(pieces)
	errs := []error{sortErr}
	// Work out an item only for pieces some feed carries: with a long archive
	// most pieces are in none, and resolving links is the costly part.
	items := make([]*item, len(sorted))
	pick := func(indexes []int) []item {
		out := make([]item, 0, len(indexes))
		for _, i := range indexes {
			if items[i] == nil {
				it, err := s.item(&sorted[i])
				if err != nil {
					errs = append(errs, err)
				}
				items[i] = &it
			}
			out = append(out, *items[i])
		}
		return out
	}

	var newest []int
	for i := 0; i < len(sorted) && len(newest) < s.Items; i++ {
		newest = append(newest, i)
	}
	channels := []*channel{{
		title:       s.Title,
		description: s.Description,
		home:        s.home,
		items:       pick(newest),
	}}
	for _, t := range Topics(sorted) {
		var on []int
		for i := 0; i < len(sorted) && len(on) < s.Items; i++ {
			if HasTopic(&sorted[i], t.Slug) {
				on = append(on, i)
			}
		}
		dir := TopicDir(t.Slug)
		channels = append(channels, &channel{
			title:       s.Title + ": " + t.Name,
			description: fmt.Sprintf("%s: pieces on %s", s.Title, t.Name),
			dir:         dir,
			home:        Resolve(s.base, dir),
			items:       pick(on),
		})
	}

	files := make([]output.File, 0, 3*len(channels)+1)
	for _, c := range channels {
		rss, err := s.rss(c)
		if err != nil {
			return nil, fmt.Errorf("feed: %s%s: %w", c.dir, RSSName, err)
		}
		atom, err := s.atom(c)
		if err != nil {
			return nil, fmt.Errorf("feed: %s%s: %w", c.dir, AtomName, err)
		}
		jsonFeed, err := s.json(c)
		if err != nil {
			return nil, fmt.Errorf("feed: %s%s: %w", c.dir, JSONName, err)
		}
		files = append(files,
			output.File{Path: c.dir + RSSName, Data: rss},
			output.File{Path: c.dir + AtomName, Data: atom},
			output.File{Path: c.dir + JSONName, Data: jsonFeed},
		)
	}
	opml, err := s.opml(channels)
	if err != nil {
		return nil, fmt.Errorf("feed: %s: %w", OPMLName, err)
	}
	files = append(files, output.File{Path: OPMLName, Data: opml})
	return files, errors.Join(errs...)
}

// Check reports what in opts would make Render fail before it renders anything.
func Check(opts Options) error {
	_, err := newSite(opts)
	return err
}

func newSite(opts Options) (*site, error) {
	if strings.TrimSpace(opts.Title) == "" {
		return nil, errors.New("feed: site title is empty")
	}
	base, err := ParseBase(opts.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("feed: %w", err)
	}
	for _, h := range opts.Hubs {
		if u, err := url.Parse(h); err != nil || !u.IsAbs() {
			return nil, fmt.Errorf("feed: hub %q: must be an absolute URL", h)
		}
	}
	if opts.Items <= 0 {
		opts.Items = DefaultItems
	}
	if opts.Description == "" {
		opts.Description = opts.Title
	}
	return &site{Options: opts, base: base, home: base.String()}, nil
}

// item works out everything the entries for p need. On a link-resolving
// failure the piece still goes out, with its links as written.
func (s *site) item(p *content.Piece) (item, error) {
	pageURL := PieceURL(s.base, p.Slug)
	it := item{
		piece:     p,
		title:     p.Title,
		page:      pageURL.String(),
		guid:      pageURL.String(),
		tagID:     s.tagID(p),
		summary:   Summary(p),
		published: utc(p.Published()),
		modified:  utc(p.Modified()),
	}
	if it.title == "" {
		it.title = p.Slug
	}
	// A canonical URL given by the editor is where the piece lives for good,
	// and it opens the full piece, so it is a permalink guid too.
	if c, ok := absoluteHTTP(p.CanonicalURL); ok {
		it.guid = c
	}
	if p.Image != "" {
		if u, err := url.Parse(p.Image); err == nil {
			it.image = pageURL.ResolveReference(u).String()
		}
	}
	body, err := content.PieceHTML(p, pageURL)
	if err != nil {
		body = p.HTML
		err = fmt.Errorf("%s: feed: %w", p.File, err)
	}
	it.html = body + Attribution(p.Source)
	return it, err
}

// tagID is the entry's permanent Atom id (RFC 4151): the site's host, the day
// the piece was first published (which never changes, as first-seen is
// stored) and the piece's path under the site.
func (s *site) tagID(p *content.Piece) string {
	specific := strings.TrimPrefix(s.base.EscapedPath(), "/") + url.PathEscape(p.Slug)
	return fmt.Sprintf("tag:%s,%s:%s", s.base.Hostname(), utc(p.Published()).Format(time.DateOnly), specific)
}

// Summary is the piece's summary, else its lede: plain text.
func Summary(p *content.Piece) string {
	if s := strings.TrimSpace(p.Summary); s != "" {
		return s
	}
	return strings.TrimSpace(p.Lede)
}

// Attribution is the closing paragraph that names where a piece first appeared,
// or "" when it names no source.
func Attribution(src content.Source) string {
	name := strings.TrimSpace(src.Name)
	link, hasURL := absoluteHTTP(src.URL)
	if name == "" && hasURL {
		if u, err := url.Parse(link); err == nil {
			name = u.Host
		}
	}
	if name == "" {
		return ""
	}
	if !hasURL {
		return "<p>Originally published in " + html.EscapeString(name) + ".</p>"
	}
	return `<p>Originally published in <a href="` + html.EscapeString(link) + `">` + html.EscapeString(name) + "</a>.</p>"
}

// Credit is how an author is named in feeds: "Name, Role" as in a byline, or
// the name alone. Not "Name (Role)": readers (gofeed among them) take a
// parenthesis in an author field for RSS's "address (name)" form and lose the name.
func Credit(a content.Author) string {
	name, role := strings.TrimSpace(a.Name), strings.TrimSpace(a.Role)
	if role == "" || name == "" {
		return name
	}
	return name + ", " + role
}

func absoluteHTTP(raw string) (string, bool) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", false
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", false
	}
	return u.String(), true
}

// utc drops the zone and the sub-second part, so every format shows one instant
// the same way.
func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

// gorilla builds the format-neutral feed gorilla/feeds turns into each format.
func (s *site) gorilla(c *channel) *feeds.Feed {
	f := &feeds.Feed{
		Title:       c.title,
		Link:        &feeds.Link{Href: c.home},
		Description: c.description,
	}
	if len(c.items) > 0 {
		// Dates come from the items, never the clock, so output is reproducible.
		f.Created = c.items[0].published
		for _, it := range c.items {
			if it.modified.After(f.Updated) {
				f.Updated = it.modified
			}
		}
	}
	for i := range c.items {
		it := &c.items[i]
		f.Items = append(f.Items, &feeds.Item{
			Title:       it.title,
			Link:        &feeds.Link{Href: it.page},
			Description: it.summary,
			Id:          it.guid,
			IsPermaLink: "true",
			Created:     it.published,
			Updated:     it.modified,
			Content:     it.html,
		})
	}
	return f
}
