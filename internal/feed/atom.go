package feed

import (
	"strings"
	"time"

	"github.com/gorilla/feeds"
)

// emptyUpdated stands in for <updated> of a feed with no entries: Atom requires
// the element, and the clock must not make two builds differ.
const emptyUpdated = "1970-01-01T00:00:00Z"

// atomFeed extends gorilla's feed with xml:lang, several links (alternate, self,
// hub) and its own entries.
type atomFeed struct {
	*feeds.AtomFeed
	Lang    string           `xml:"xml:lang,attr,omitempty"`
	Links   []feeds.AtomLink `xml:"link"`
	Entries []*atomEntry     `xml:"entry"`
}

// atomEntry extends gorilla's entry with one <author> per author (name, uri,
// email) and one <category term> per topic.
type atomEntry struct {
	*feeds.AtomEntry
	Authors    []*feeds.AtomAuthor `xml:"author"`
	Categories []atomCategory      `xml:"category"`
}

type atomCategory struct {
	Term string `xml:"term,attr"`
}

func (s *site) atom(c *channel) ([]byte, error) {
	g := s.gorilla(c)
	f := (&feeds.Atom{Feed: g}).AtomFeed()
	// gorilla uses the feed's link as its id; the feed's own URL is as
	// permanent and, unlike the home page, differs between the site feed and
	// topic feeds. It is taken where the entry ids are, so it outlives a move.
	f.Id = Resolve(s.idBase, c.dir+AtomName)
	f.Link = nil
	if f.Updated == "" {
		f.Updated = emptyUpdated
	}
	credit := s.Title
	var email, uri string
	if a := s.Author; a != nil {
		credit, email, uri = strings.TrimSpace(a.Name), a.Email, a.URL
	}
	// Entries without an author inherit the feed's, so every entry has one.
	f.Author = &feeds.AtomAuthor{AtomPerson: feeds.AtomPerson{Name: credit, Email: email, Uri: uri}}

	doc := &atomFeed{
		AtomFeed: f,
		Lang:     s.Language,
		Links: []feeds.AtomLink{
			{Href: c.home, Rel: "alternate", Type: "text/html"},
			{Href: c.url(s, AtomName), Rel: "self", Type: AtomType},
		},
	}
	for _, h := range s.Hubs {
		doc.Links = append(doc.Links, feeds.AtomLink{Href: h, Rel: "hub"})
	}
	for i, ge := range f.Entries {
		it := &c.items[i]
		p := it.piece
		ge.Id = it.tagID
		ge.Published = it.published.Format(time.RFC3339)
		ge.Updated = it.modified.Format(time.RFC3339)
		if ge.Summary != nil {
			ge.Summary.Type = "text"
		}
		ge.Links[0].Type = "text/html"
		if it.guid != it.page {
			ge.Links = append(ge.Links, feeds.AtomLink{Href: it.guid, Rel: "related", Type: "text/html"})
		}
		if link, ok := absoluteHTTP(p.Source.URL); ok {
			ge.Links = append(ge.Links, feeds.AtomLink{Href: link, Rel: "via"})
		}
		e := &atomEntry{AtomEntry: ge}
		// One author element per author, named only: the roles are in the
		// content's byline.
		for _, a := range p.Authors {
			if name := strings.TrimSpace(a.Name); name != "" {
				e.Authors = append(e.Authors, &feeds.AtomAuthor{AtomPerson: feeds.AtomPerson{Name: name, Email: a.Email, Uri: httpOrEmpty(a.URL)}})
			}
		}
		for _, t := range topicNames(p.Topics) {
			e.Categories = append(e.Categories, atomCategory{Term: t})
		}
		doc.Entries = append(doc.Entries, e)
	}
	return marshalXML(doc)
}

func httpOrEmpty(raw string) string {
	u, _ := absoluteHTTP(raw)
	return u
}
