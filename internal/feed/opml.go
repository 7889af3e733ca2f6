package feed

import (
	"encoding/xml"
	"time"
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
	Text     string        `xml:"text,attr"`
	Title    string        `xml:"title,attr,omitempty"`
	Type     string        `xml:"type,attr,omitempty"`
	Version  string        `xml:"version,attr,omitempty"`
	XMLURL   string        `xml:"xmlUrl,attr,omitempty"`
	HTMLURL  string        `xml:"htmlUrl,attr,omitempty"`
	Language string        `xml:"language,attr,omitempty"`
	Outlines []opmlOutline `xml:"outline"`
}

// opml groups the three formats of each feed under one outline per feed.
func (s *site) opml(channels []*channel) ([]byte, error) {
	doc := &opml{Version: "2.0", Head: opmlHead{Title: s.Title + ": feeds"}}
	var newest time.Time
	for _, c := range channels {
		for _, it := range c.items {
			if it.modified.After(newest) {
				newest = it.modified
			}
		}
		group := opmlOutline{Text: c.title, Title: c.title, HTMLURL: c.home}
		for _, f := range []struct{ name, label, version string }{
			{RSSName, "RSS", "RSS2"},
			{AtomName, "Atom", "Atom"},
			{JSONName, "JSON Feed", "JSONFeed"},
		} {
			text := c.title + " (" + f.label + ")"
			group.Outlines = append(group.Outlines, opmlOutline{
				Text:     text,
				Title:    text,
				Type:     "rss", // OPML's type for any subscribable feed
				Version:  f.version,
				XMLURL:   c.url(s, f.name),
				HTMLURL:  c.home,
				Language: s.Language,
			})
		}
		doc.Body.Outlines = append(doc.Body.Outlines, group)
	}
	if !newest.IsZero() {
		doc.Head.DateModified = newest.Format(time.RFC1123Z)
	}
	return marshalXML(doc)
}
