package feed

import (
	"encoding/xml"
	"html"
	"time"

	"github.com/gorilla/feeds"

	"publisher/internal/content"
)

const (
	atomNS    = "http://www.w3.org/2005/Atom"
	dcNS      = "http://purl.org/dc/elements/1.1/"
	contentNS = "http://purl.org/rss/1.0/modules/content/"
)

// rssDoc is gorilla's <rss> element with the Atom and Dublin Core namespaces
// the extensions below use.
type rssDoc struct {
	XMLName   xml.Name    `xml:"rss"`
	Version   string      `xml:"version,attr"`
	ContentNS string      `xml:"xmlns:content,attr"`
	AtomNS    string      `xml:"xmlns:atom,attr"`
	DCNS      string      `xml:"xmlns:dc,attr"`
	Channel   *rssChannel `xml:"channel"`
}

// rssChannel extends gorilla's channel with atom:link (self, hub) and puts its
// own items, which carry more than gorilla's, after them.
type rssChannel struct {
	XMLName xml.Name `xml:"channel"`
	*feeds.RssFeed
	AtomLinks []atomLink `xml:"atom:link"`
	Items     []*rssItem `xml:"item"`
}

// atomLink is <atom:link>; gorilla's AtomLink names itself plain <link>, which
// in RSS would be a second channel link.
type atomLink struct {
	XMLName xml.Name `xml:"atom:link"`
	Href    string   `xml:"href,attr"`
	Rel     string   `xml:"rel,attr"`
	Type    string   `xml:"type,attr,omitempty"`
}

// rssItem extends gorilla's item with a dc:creator naming the authors, a
// category per topic and a <source url> element (gorilla's Source is bare
// text, which RSS does not allow).
type rssItem struct {
	*feeds.RssItem
	Creator    string     `xml:"dc:creator,omitempty"`
	Categories []string   `xml:"category"`
	Source     *rssSource `xml:"source,omitempty"`
}

type rssSource struct {
	URL  string `xml:"url,attr"`
	Name string `xml:",chardata"`
}

func (s *site) rss(c *channel) ([]byte, error) {
	ch := (&feeds.Rss{Feed: s.gorilla(c)}).RssFeed()
	ch.Language = s.Language
	ch.Generator = "publisher"
	ch.Docs = "https://www.rssboard.org/rss-specification"
	// gorilla writes " (Name)" when there is no address; RSS wants an address here.
	ch.ManagingEditor = ""
	if a := s.Author; a != nil && a.Email != "" {
		ch.ManagingEditor = a.Email + " (" + a.Name + ")"
	}

	doc := &rssDoc{
		Version:   "2.0",
		ContentNS: contentNS,
		AtomNS:    atomNS,
		DCNS:      dcNS,
		Channel: &rssChannel{
			RssFeed:   ch,
			AtomLinks: []atomLink{{Href: c.url(s, RSSName), Rel: "self", Type: RSSType}},
		},
	}
	for _, h := range s.Hubs {
		doc.Channel.AtomLinks = append(doc.Channel.AtomLinks, atomLink{Href: h, Rel: "hub"})
	}
	for i, gi := range ch.Items {
		it := &c.items[i]
		p := it.piece
		// RSS <description> is HTML; the summary is plain text.
		gi.Description = html.EscapeString(it.summary)
		gi.PubDate = it.published.Format(time.RFC1123Z)
		// RSS <author> must be an e-mail address; dc:creator carries the names,
		// all in one element: readers keep only one (gofeed the first, Miniflux
		// the last). The roles are in the content's byline.
		gi.Author = ""
		ri := &rssItem{RssItem: gi, Creator: content.Byline(p.Authors, false)}
		ri.Categories = topicNames(p.Topics)
		if link, ok := absoluteHTTP(p.Source.URL); ok {
			name := p.Source.Name
			if name == "" {
				name = link
			}
			ri.Source = &rssSource{URL: link, Name: name}
		}
		doc.Channel.Items = append(doc.Channel.Items, ri)
	}
	return marshalXML(doc)
}

func marshalXML(v any) ([]byte, error) {
	body, err := xml.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(xml.Header)+len(body)+1)
	out = append(out, xml.Header...)
	out = append(out, body...)
	return append(out, '\n'), nil
}
