package feed

import (
	"encoding/xml"
	"time"

	"publisher/internal/content"
)

// opml is an OPML 2.0 subscription list of every feed the site offers.
type opml struct {
	XMLName xml.Name `xml:"opml"`
	Version string   `xml:"version,attr"`
	Head    opmlHead `xml:"head"`
	Body    opmlBody `xml:"body"`
}

type opmlHead struct {
	Title        string `xml:"title"`
	DateModified string `xml:"dateModified,omitempty"`
}

type opmlBody struct {
	Outlines []opmlOutline `xml:"outline"`
}

type opmlOutline struct {
	Text     string `xml:"text,attr"`
	Title    string `xml:"title,attr,omitempty"`
	Type     string `xml:"type,attr,omitempty"`
	Version  string `xml:"version,attr,omitempty"`
	XMLURL   string `xml:"xmlUrl,attr,omitempty"`
	HTMLURL  string `xml:"htmlUrl,attr,omitempty"`
	Language string `xml:"language,attr,omitempty"`
}

// opml lists one format of each feed (Options.OPMLFormat): a reader imports
// every outline, so listing all three would subscribe to each feed three times.
// dateModified is the newest change among the feeds' pieces.
func (s *site) opml(channels []*channel, sorted []content.Piece) ([]byte, error) {
	format := map[string]struct{ name, label, version string }{
		OPMLRSS:  {RSSName, "RSS", "RSS2"},
		OPMLAtom: {AtomName, "Atom", "Atom"},
		OPMLJSON: {JSONName, "JSON Feed", "JSONFeed"},
	}[s.OPMLFormat]
	doc := &opml{Version: "2.0", Head: opmlHead{Title: s.Title + ": feeds"}}
	var newest time.Time
	for _, c := range channels {
		for _, i := range c.pieces {
			if m := utc(sorted[i].Modified()); m.After(newest) {
				newest = m
			}
		}
		doc.Body.Outlines = append(doc.Body.Outlines, opmlOutline{
			Text:     c.title,
			Title:    c.title,
			Type:     "rss", // OPML's type for any subscribable feed
			Version:  format.version,
			XMLURL:   c.url(s, format.name),
			HTMLURL:  c.home,
			Language: s.Language,
		})
	}
	if !newest.IsZero() {
		doc.Head.DateModified = newest.Format(time.RFC1123Z)
	}
	return marshalXML(doc)
}
