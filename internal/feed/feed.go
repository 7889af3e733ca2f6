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
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	// IDBase is the base URL entry ids are made on: the base URL the site was
	// first built with (the store records it), so that ids outlive a move to
	// another host or path; empty means BaseURL.
	IDBase string
	// IDAuthority, when set, is the host name entry ids carry instead of
	// IDBase's (feed.id_authority).
	IDAuthority string
	// OPMLFormat is the one format feeds.opml lists for each feed: "rss"
	// (the default), "atom" or "json".
	OPMLFormat string
}

// OPML formats.
const (
	OPMLRSS  = "rss"
	OPMLAtom = "atom"
	OPMLJSON = "json"
)

// site is Options checked and with everything the formats share worked out once.
type site struct {
	Options
	base   *url.URL
	idBase *url.URL // base with the id authority as host
	home   string
}

// channel is one feed (the site's or a topic's) before it is put in a format.
type channel struct {
	title, description string
	dir                string // "" or "topics/<slug>/"
	home               string // the HTML page the feed stands for
	pieces             []int  // indexes in Feeds.sorted, newest first
	items              []item // worked out when the channel is rendered
}

func (c *channel) url(s *site, name string) string { return Resolve(s.base, c.dir+name) }

// item is one piece with everything its entries need, computed once and shared
// by the site feed and the topic feeds.
type item struct {
	piece     *content.Piece
	title     string
	page      string // the piece's archive page
	guid      string // RSS guid and JSON Feed id
	permalink bool   // guid is a URL that opens the piece
	tagID     string // Atom id
	summary   string // plain text
	html      string // links made absolute, source attribution appended
	image     string
	published time.Time
	modified  time.Time
}

// Feeds is every feed of a site, planned: which pieces each feed carries.
// Rendering a feed needs the bodies of its pieces; planning needs none, so an
// incremental build plans every feed, then loads the bodies of, and renders,
// only the feeds whose Key changed.
type Feeds struct {
	s        *site
	sorted   []content.Piece
	channels []*channel
	problems error
}

// Channel is one feed, in its three formats.
type Channel struct {
	// Dir is where its files go: "" for the site's, "topics/<slug>/" for a topic's.
	Dir string
	// Key changes whenever any of its files would.
	Key string
	// Pieces are those it carries, newest first: they point into the plan's
	// own copy of the pieces, where a caller may fill in bodies before
	// rendering.
	Pieces []*content.Piece
}

// Files are the paths of the channel's three files.
func (c Channel) Files() []string {
	return []string{c.Dir + RSSName, c.Dir + AtomName, c.Dir + JSONName}
}

// Plan works out which pieces each feed carries. Pieces that cannot be put in
// a feed are left out and named by Problems.
func Plan(opts Options, pieces []content.Piece) (*Feeds, error) {
	s, err := newSite(opts)
	if err != nil {
		return nil, err
	}
	sorted, sortErr := Newest(pieces)
	f := &Feeds{s: s, sorted: sorted, problems: sortErr}
	var newest []int
	for i := 0; i < len(sorted) && len(newest) < s.Items; i++ {
		newest = append(newest, i)
	}
	f.channels = []*channel{{
		title:       s.Title,
		description: s.Description,
		home:        s.home,
		pieces:      newest,
	}}
	slugs := map[string]string{} // a topic's spelling → its slug, worked out once
	hasTopic := func(p *content.Piece, slug string) bool {
		for _, raw := range p.Topics {
			s, ok := slugs[raw]
			if !ok {
				if t := strings.TrimSpace(raw); t != "" {
					s = TopicSlug(t)
				}
				slugs[raw] = s
			}
			if s != "" && s == slug {
				return true
			}
		}
		return false
	}
	for _, t := range Topics(sorted) {
		var on []int
		for i := 0; i < len(sorted) && len(on) < s.Items; i++ {
			if hasTopic(&sorted[i], t.Slug) {
				on = append(on, i)
			}
		}
		dir := TopicDir(t.Slug)
		f.channels = append(f.channels, &channel{
			title:       s.Title + ": " + t.Name,
			description: fmt.Sprintf("%s: pieces on %s", s.Title, t.Name),
			dir:         dir,
			home:        Resolve(s.base, dir),
			pieces:      on,
		})
	}
	return f, nil
}

// Problems names the pieces left out of every feed.
func (f *Feeds) Problems() error { return f.problems }

// Channels lists the feeds: the site's first, then each topic's.
func (f *Feeds) Channels() []Channel {
	out := make([]Channel, len(f.channels))
	for i, c := range f.channels {
		h := sha256.New()
		fmt.Fprintf(h, "%q %q %q %q\n", c.title, c.description, c.dir, c.home)
		ch := Channel{Dir: c.dir, Pieces: make([]*content.Piece, len(c.pieces))}
		for k, idx := range c.pieces {
			ch.Pieces[k] = &f.sorted[idx]
			fmt.Fprintf(h, "%q\n", f.sorted[idx].Key())
		}
		ch.Key = hex.EncodeToString(h.Sum(nil))
		out[i] = ch
	}
	return out
}

// RenderChannel renders feed i of Channels in its three formats. A piece
// whose links cannot be resolved is still carried, with its links as written,
// and named in the error.
func (f *Feeds) RenderChannel(i int) ([]output.File, error) {
	c := f.channels[i]
	f.readBodies(c)
	var errs []error
	c.items = make([]item, len(c.pieces))
	for k, idx := range c.pieces {
		var err error
		if c.items[k], err = f.s.item(&f.sorted[idx]); err != nil {
			errs = append(errs, err)
		}
	}
	defer func() { c.items = nil }() // the bodies are not kept past the render
	rss, err := f.s.rss(c)
	if err != nil {
		return nil, fmt.Errorf("feed: %s%s: %w", c.dir, RSSName, err)
	}
	atom, err := f.s.atom(c)
	if err != nil {
		return nil, fmt.Errorf("feed: %s%s: %w", c.dir, AtomName, err)
	}
	jsonFeed, err := f.s.json(c)
	if err != nil {
		return nil, fmt.Errorf("feed: %s%s: %w", c.dir, JSONName, err)
	}
	return []output.File{
		{Path: c.dir + RSSName, Data: rss},
		{Path: c.dir + AtomName, Data: atom},
		{Path: c.dir + JSONName, Data: jsonFeed},
	}, errors.Join(errs...)
}

// readBodies reads, on every core, the bodies of the channel's pieces that
// were taken from a cache without them (content.Body): an incremental build
// renders a feed whose pieces it did not parse. Errors are left to item.
func (f *Feeds) readBodies(c *channel) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(c.pieces)) {
		wg.Go(func() {
			for k := int(next.Add(1)) - 1; k < len(c.pieces); k = int(next.Add(1)) - 1 {
				_, _ = content.Body(&f.sorted[c.pieces[k]])
			}
		})
	}
	wg.Wait()
}

// OPML renders feeds.opml, which needs no piece's body.
func (f *Feeds) OPML() (output.File, error) {
	data, err := f.s.opml(f.channels, f.sorted)
	if err != nil {
		return output.File{}, fmt.Errorf("feed: %s: %w", OPMLName, err)
	}
	return output.File{Path: OPMLName, Data: data}, nil
}

// Render returns feed.xml, atom.xml and feed.json for the site and for every
// topic, and feeds.opml. Pieces that cannot be put in a feed are left out and
// named in the error; the files returned are complete for the others, so a
// caller may write them and report the error.
func Render(opts Options, pieces []content.Piece) ([]output.File, error) {
	f, err := Plan(opts, pieces)
	if err != nil {
		return nil, err
	}
	errs := []error{f.problems}
	files := make([]output.File, 0, 3*len(f.channels)+1)
	for i := range f.channels {
		out, err := f.RenderChannel(i)
		if out == nil {
			return nil, err
		}
		files = append(files, out...)
		errs = append(errs, err)
	}
	opml, err := f.OPML()
	if err != nil {
		return nil, err
	}
	files = append(files, opml)
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
	switch opts.OPMLFormat {
	case "":
		opts.OPMLFormat = OPMLRSS
	case OPMLRSS, OPMLAtom, OPMLJSON:
	default:
		return nil, fmt.Errorf("feed: OPML format %q: want rss, atom or json", opts.OPMLFormat)
	}
	idBase := base
	if opts.IDBase != "" {
		if idBase, err = ParseBase(opts.IDBase); err != nil {
			return nil, fmt.Errorf("feed: id base: %w", err)
		}
	}
	if opts.IDAuthority != "" {
		if err := CheckAuthority(opts.IDAuthority); err != nil {
			return nil, fmt.Errorf("feed: id authority: %w", err)
		}
		u := *idBase
		u.Host = opts.IDAuthority
		idBase = &u
	}
	return &site{Options: opts, base: base, idBase: idBase, home: base.String()}, nil
}

// item works out everything the entries for p need. On a link-resolving
// failure the piece still goes out, with its links as written.
func (s *site) item(p *content.Piece) (item, error) {
	pageURL := PieceURL(s.base, p.Slug)
	it := item{
		piece:     p,
		title:     p.Title,
		page:      pageURL.String(),
		guid:      PieceURL(s.idBase, p.Slug).String(),
		tagID:     s.tagID(p),
		summary:   content.Teaser(p),
		published: utc(p.Published()),
		modified:  utc(p.Modified()),
	}
	// The guid is the page's URL where the ids were first made; after a move
	// it no longer opens the piece, but it still names it.
	it.permalink = it.guid == it.page
	if it.title == "" {
		it.title = p.Slug
	}
	// A canonical URL given by the editor is where the piece lives for good,
	// and it opens the full piece, so it is a permalink guid too.
	if c, ok := absoluteHTTP(p.CanonicalURL); ok {
		it.guid, it.permalink = c, true
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
	it.html = bylineHTML(p.Authors) + body + Attribution(p.Source)
	return it, err
}

// bylineHTML is the paragraph that opens an entry's content: the authors with
// their roles, which the author elements (names only) leave out.
func bylineHTML(authors []content.Author) string {
	if by := content.Byline(authors, true); by != "" {
		return `<p class="byline">By ` + html.EscapeString(by) + "</p>"
	}
	return ""
}

// tagID is the entry's permanent Atom id (RFC 4151): the id authority (the
// host the site was first built on), the day the piece was first published
// (which never changes, as first-seen is stored) and the piece's path under
// the site as it was then.
func (s *site) tagID(p *content.Piece) string {
	specific := strings.TrimPrefix(s.idBase.EscapedPath(), "/") + url.PathEscape(p.Slug)
	return fmt.Sprintf("tag:%s,%s:%s", s.idBase.Hostname(), utc(p.Published()).Format(time.DateOnly), specific)
}

// CheckAuthority reports whether host can be the authority of tag: URIs: a
// host name (no port, no user, no path).
func CheckAuthority(host string) error {
	u, err := url.Parse("https://" + host + "/")
	if err != nil || u.Host != host || u.Port() != "" || host == "" || strings.ContainsAny(host, "@/ ") {
		return fmt.Errorf("%q is not a host name such as desk.example.org", host)
	}
	return nil
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
			IsPermaLink: strconv.FormatBool(it.permalink),
			Created:     it.published,
			Updated:     it.modified,
			Content:     it.html,
		})
	}
	return f
}
