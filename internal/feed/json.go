package feed

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/gorilla/feeds"
)

// JSONFeedVersion is the JSON Feed version the feeds declare.
const JSONFeedVersion = "https://jsonfeed.org/version/1.1"

// jsonFeed is gorilla's JSON feed with "items" always present: JSON Feed
// requires the array even when it is empty, and gorilla omits it then.
type jsonFeed struct {
	*feeds.JSONFeed
	Items []*feeds.JSONItem `json:"items"`
}

func (s *site) json(c *channel) ([]byte, error) {
	f := (&feeds.JSON{Feed: s.gorilla(c)}).JSONFeed()
	f.Version = JSONFeedVersion
	f.Language = s.Language
	f.FeedUrl = c.url(s, JSONName)
	f.HomePageUrl = c.home
	// "author" is deprecated in 1.1; "authors" replaces it.
	f.Author = nil
	f.Authors = nil
	if a := s.Author; a != nil {
		f.Authors = []*feeds.JSONAuthor{{Name: strings.TrimSpace(a.Name), Url: httpOrEmpty(a.URL)}}
	}
	for _, h := range s.Hubs {
		f.Hubs = append(f.Hubs, &feeds.JSONHub{Type: "WebSub", Url: h})
	}
	doc := &jsonFeed{JSONFeed: f, Items: make([]*feeds.JSONItem, 0, len(f.Items))}
	for i, gi := range f.Items {
		it := &c.items[i]
		p := it.piece
		gi.Author = nil
		gi.Authors = nil
		for _, a := range p.Authors {
			if name := strings.TrimSpace(a.Name); name != "" {
				gi.Authors = append(gi.Authors, &feeds.JSONAuthor{Name: name, Url: httpOrEmpty(a.URL)})
			}
		}
		gi.Tags = topicNames(p.Topics)
		gi.Image = it.image
		gi.ExternalUrl = ""
		if it.guid != it.page {
			gi.ExternalUrl = it.guid
		} else if link, ok := absoluteHTTP(p.Source.URL); ok {
			gi.ExternalUrl = link
		}
		doc.Items = append(doc.Items, gi)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Feeds carry HTML; \u003c escapes would only make them harder to read.
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
