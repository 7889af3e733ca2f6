package site

import (
	"fmt"
	"html/template"
	"net/url"
	"strings"
	"time"

	"publisher/internal/content"
	"publisher/internal/feed"
	"publisher/internal/subscriber"
)

// pageData is what every page template receives. Pages use the parts that
// concern them: Pieces (lists), Piece (piece page), Topic (topic pages and
// their archive), Years (archive indexes), Prev and Next (runs of pages).
//
// Everything a page shows comes from here, and every field is exported but
// the pieces, so that the JSON of a page's data (with its pieces' keys, and
// frame for the fields many pages share) says when the page would change (see
// Plan).
type pageData struct {
	Site        *siteData `json:"-"` // keyed once per build
	Title       string    // the page's own title; empty on the front page
	Description string
	Canonical   string
	Feeds       []feedLink `json:"-"` // autodiscovery links for this page (keyed in frame)
	// FeedsHead and FeedsFoot are Feeds rendered by "site-feeds-head" and
	// the site's own feeds by "site-feeds-foot", once per set of feeds;
	// empty when the layout defines no such template. The front page, which
	// lists every feed in its body, has no FeedsFoot.
	FeedsHead, FeedsFoot template.HTML `json:"-"` // made from Feeds
	// Header is "site-header" and Subscribe "site-subscribe", rendered once
	// for every page with the same Site (and Topic, for Subscribe).
	Header, Subscribe template.HTML `json:"-"`
	Pieces            []*pieceView  `json:"-"`
	Piece             *pieceView    `json:"-"`
	Topic             *feedGroup    `json:"-"` // keyed in frame
	// Heading names an archive page: "November 2026", "November 2026, page 2".
	Heading string
	// Prev is the page of older pieces, Next of newer ones (rel="prev", rel="next").
	Prev, Next *navLink
	// Archive is the index of the archive the page belongs to (the site's or
	// the topic's); Years lists its months, on the pages that show them.
	Archive string
	Years   []yearGroup
	// frame keys what many pages share (Feeds, Topic): worked out once per
	// set of pages, not marshalled again for each.
	frame string
}

type siteData struct {
	Title, Description, Language string
	Home                         string
	// ArchiveURL is the site's archive, month by month.
	ArchiveURL      string
	SubscribeAction string
	// Topics are offered by the sign-up form; piece pages get none (their
	// form is the short one), so that they do not change with the topic list.
	Topics   []feed.Topic
	Cadences []cadence
	// FeedGroups are the site's feeds first, then each topic's (the site's
	// alone on piece pages).
	FeedGroups []feedGroup
	OPML       string
}

type cadence struct {
	Value, Label string
	Selected     bool
}

// feedGroup is one feed in its three formats.
type feedGroup struct {
	Name  string
	Home  string // the HTML page the feed stands for
	Links []feedLink
}

type feedLink struct {
	Title string // for autodiscovery: "Desk (RSS)"
	Label string // for lists: "RSS"
	Type  string
	URL   string
}

type pieceView struct {
	piece       *content.Piece
	index       int // in the plan's sorted pieces
	Slug        string
	Title       string
	URL         string
	Canonical   string
	Authors     []authorView
	DateISO     string
	DateText    string
	UpdatedISO  string // empty unless updated on a later day
	UpdatedText string
	// Summary is the piece's teaser: its summary, or its lede cut near 300 characters.
	Summary string
	Image   string
	Source  content.Source // Name always set when there is a source; URL only when http(s)
	Topics  []topicView
	// Entry is the piece as one item of a list ("site-piece-entry"), rendered
	// once and shared by every list page; empty when the layout defines no entry.
	Entry template.HTML
	// body is the resolved HTML while the piece's own page is rendered; see HTML.
	body    template.HTML
	pageURL *url.URL
}

// HTML is the piece's body with its links made absolute. Only the piece's own
// page holds it (see Site.render); any other template that asks for it gets it
// worked out on the spot, so that the bodies of all pieces are never held at once.
func (v pieceView) HTML() template.HTML {
	if v.body != "" {
		return v.body
	}
	body, _ := resolvedBody(v.piece, v.pageURL)
	return body
}

type authorView struct{ Name, Role, URL string }

type topicView struct {
	Name, URL string
	slug      string
}

func (s *Site) siteData(topics []feed.Topic) *siteData {
	home := s.base.String()
	sd := &siteData{
		Title:           s.opts.Title,
		Description:     s.opts.Description,
		Language:        s.opts.Language,
		Home:            home,
		ArchiveURL:      feed.Resolve(s.base, ArchiveDir),
		SubscribeAction: s.opts.SubscribeAction,
		Topics:          topics,
		OPML:            feed.Resolve(s.base, feed.OPMLName),
	}
	preselect := s.opts.DefaultCadence
	if preselect == "" {
		preselect = s.opts.Cadences[0]
	}
	for _, c := range s.opts.Cadences {
		sd.Cadences = append(sd.Cadences, cadence{Value: c, Label: subscriber.CadenceLabel(c), Selected: c == preselect})
	}
	sd.FeedGroups = append(sd.FeedGroups, s.feedGroup(s.opts.Title, s.opts.Title, ""))
	for _, t := range topics {
		sd.FeedGroups = append(sd.FeedGroups, s.feedGroup(t.Name, s.opts.Title+": "+t.Name, feed.TopicDir(t.Slug)))
	}
	return sd
}

// pieceSite is sd as the piece pages see it: no topics, only the site's own
// feeds. A piece page then depends on nothing but its piece.
func pieceSite(sd *siteData) *siteData {
	ps := *sd
	ps.Topics = nil
	ps.FeedGroups = sd.FeedGroups[:1]
	return &ps
}

func (s *Site) feedGroup(name, title, dir string) feedGroup {
	g := feedGroup{Name: name, Home: feed.Resolve(s.base, dir)}
	for _, f := range []struct{ file, label, typ string }{
		{feed.RSSName, "RSS", feed.RSSType},
		{feed.AtomName, "Atom", feed.AtomType},
		{feed.JSONName, "JSON Feed", feed.JSONType},
	} {
		g.Links = append(g.Links, feedLink{
			Title: title + " (" + f.label + ")",
			Label: f.label,
			Type:  f.typ,
			URL:   feed.Resolve(s.base, dir+f.file),
		})
	}
	return g
}

// pieceView prepares one piece, sorted[index] in a plan, for the templates.
func (s *Site) pieceView(p *content.Piece, index int) pieceView {
	pageURL := feed.PieceURL(s.base, p.Slug)
	published, modified := p.Published().UTC(), p.Modified().UTC()
	v := pieceView{
		piece:     p,
		index:     index,
		pageURL:   pageURL,
		Slug:      p.Slug,
		Title:     p.Title,
		URL:       pageURL.String(),
		Canonical: pageURL.String(),
		DateISO:   published.Format(time.RFC3339),
		DateText:  published.Format("2 January 2006"),
		Summary:   content.Teaser(p),
	}
	if v.Title == "" {
		v.Title = p.Slug
	}
	if modified.Format(time.DateOnly) != published.Format(time.DateOnly) {
		v.UpdatedISO = modified.Format(time.RFC3339)
		v.UpdatedText = modified.Format("2 January 2006")
	}
	if c, ok := httpURL(p.CanonicalURL); ok {
		v.Canonical = c
	}
	if p.Image != "" {
		if u, err := url.Parse(p.Image); err == nil {
			v.Image = pageURL.ResolveReference(u).String()
		}
	}
	for _, a := range p.Authors {
		name := strings.TrimSpace(a.Name)
		if name == "" {
			continue
		}
		link, _ := httpURL(a.URL)
		v.Authors = append(v.Authors, authorView{Name: name, Role: strings.TrimSpace(a.Role), URL: link})
	}
	v.Source.Name = strings.TrimSpace(p.Source.Name)
	if link, ok := httpURL(p.Source.URL); ok {
		v.Source.URL = link
		if v.Source.Name == "" {
			u, _ := url.Parse(link)
			v.Source.Name = u.Host
		}
	}
	seen := map[string]bool{}
	for _, name := range p.Topics {
		name = strings.TrimSpace(name)
		slug := feed.TopicSlug(name)
		if name == "" || seen[slug] {
			continue
		}
		seen[slug] = true
		v.Topics = append(v.Topics, topicView{Name: name, URL: feed.Resolve(s.base, feed.TopicDir(slug)), slug: slug})
	}
	return v
}

// resolvedBody is p's HTML with its links made absolute against pageURL. On error
// the body keeps its links as they were.
func resolvedBody(p *content.Piece, pageURL *url.URL) (template.HTML, error) {
	body, err := content.PieceHTML(p, pageURL)
	if err != nil {
		body = p.HTML
		err = fmt.Errorf("%s: site: %w", p.File, err)
	}
	// The body was sanitised by package content when it was loaded; it is the
	// one value the templates print unescaped.
	return template.HTML(body), err
}

func httpURL(raw string) (string, bool) {
	raw = strings.TrimSpace(raw)
	u, err := url.Parse(raw)
	if raw == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", false
	}
	return u.String(), true
}
