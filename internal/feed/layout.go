package feed

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"publisher/internal/content"
)

// Where the feeds live in the output folder. The archive (package site) links to
// them and to the piece and topic pages by these same names.
const (
	RSSName  = "feed.xml"
	AtomName = "atom.xml"
	JSONName = "feed.json"
	OPMLName = "feeds.opml"
)

// Media types of the three feed formats, for autodiscovery links and atom:link.
const (
	RSSType  = "application/rss+xml"
	AtomType = "application/atom+xml"
	JSONType = "application/feed+json"
)

// DefaultItems is how many items a feed carries when Options.Items is not set.
const DefaultItems = 50

// PieceDir is the folder of a piece's archive page, relative to the output root.
func PieceDir(slug string) string { return "pieces/" + slug + "/" }

// PieceURL is the absolute URL of a piece's page on the site at base: what its
// relative links are resolved against, in the archive, the feeds and emails.
func PieceURL(base *url.URL, slug string) *url.URL {
	return base.ResolveReference(&url.URL{Path: PieceDir(slug)})
}

// TopicDir is the folder of a topic's feeds and page, relative to the output root.
func TopicDir(topicSlug string) string { return "topics/" + topicSlug + "/" }

// Topic is a topic that at least one piece carries.
type Topic struct {
	Name string // as the pieces spell it
	Slug string // its folder name under topics/
}

// TopicSlug turns a topic into a folder name by the rule pieces' topics follow
// (content.Slugify). A topic with nothing left gets a name derived from its hash,
// so it still has a stable home.
func TopicSlug(name string) string {
	if slug := content.Slugify(name); slug != "" {
		return slug
	}
	sum := sha256.Sum256([]byte(name))
	return "topic-" + hex.EncodeToString(sum[:4])
}

// Topics lists the topics of pieces, by slug. Spellings that share a slug
// ("EU", "eu") are one topic, named by the spelling that sorts first.
func Topics(pieces []content.Piece) []Topic {
	bySlug := map[string]string{}
	// A desk has a handful of topics and many pieces: each spelling is
	// slugified once (Unicode normalisation is not cheap).
	slugs := map[string]string{}
	for i := range pieces {
		if pieces[i].Draft {
			continue
		}
		for _, raw := range pieces[i].Topics {
			slug, ok := slugs[raw]
			if !ok {
				if t := strings.TrimSpace(raw); t != "" {
					slug = TopicSlug(t)
				}
				slugs[raw] = slug
			}
			if slug == "" {
				continue
			}
			name := strings.TrimSpace(raw)
			if old, ok := bySlug[slug]; !ok || name < old {
				bySlug[slug] = name
			}
		}
	}
	topics := make([]Topic, 0, len(bySlug))
	for slug, name := range bySlug {
		topics = append(topics, Topic{Name: name, Slug: slug})
	}
	slices.SortFunc(topics, func(a, b Topic) int { return strings.Compare(a.Slug, b.Slug) })
	return topics
}

// Newest returns the publishable pieces (no drafts) newest first: by publication
// date, then by id, so equal dates still give one order. Pieces that cannot be
// published (bad slug, no date) are left out and described in the error.
//
// When every piece is publishable and they come in that order already (as a
// run hands them over), the result is pieces itself, not a copy: at 10,000
// pieces the copies were a tenth of an incremental build. Callers only read it.
func Newest(pieces []content.Piece) ([]content.Piece, error) {
	newestFirst := func(a, b *content.Piece) int {
		if c := b.Published().Compare(a.Published()); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	}
	publishable := func(p *content.Piece) error {
		switch {
		case p.Draft:
			return errDraft
		case CheckSlug(p.Slug) != nil:
			return fmt.Errorf("%s: slug: %w", p.File, CheckSlug(p.Slug))
		case p.Published().IsZero():
			return fmt.Errorf("%s: no date and no first-seen time: left out", p.File)
		}
		return nil
	}
	ready := true
	for i := range pieces {
		if publishable(&pieces[i]) != nil || i > 0 && newestFirst(&pieces[i-1], &pieces[i]) > 0 {
			ready = false
			break
		}
	}
	if ready {
		return pieces[:len(pieces):len(pieces)], nil
	}
	var errs []error
	out := make([]content.Piece, 0, len(pieces))
	for i := range pieces {
		switch err := publishable(&pieces[i]); {
		case err == errDraft:
		case err != nil:
			errs = append(errs, err)
		default:
			out = append(out, pieces[i])
		}
	}
	slices.SortStableFunc(out, func(a, b content.Piece) int { return newestFirst(&a, &b) })
	return out, errors.Join(errs...)
}

// errDraft leaves a draft out without a word: drafts are never published.
var errDraft = errors.New("draft")

// CheckSlug reports whether slug can name a folder under pieces/.
func CheckSlug(slug string) error {
	switch {
	case slug == "":
		return errors.New("empty")
	case slug == "." || slug == "..":
		return fmt.Errorf("%q is not a folder name", slug)
	case strings.ContainsAny(slug, "/\\\x00"):
		return fmt.Errorf("%q contains a slash or NUL", slug)
	}
	return nil
}

// ParseBase checks the site's base URL and returns it with a trailing slash.
func ParseBase(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("base URL %q: %w", raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("base URL %q: must be an absolute http(s) URL", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("base URL %q: must have no query or fragment", raw)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
		u.RawPath = ""
	}
	return u, nil
}

// Resolve returns base joined with a relative output path, escaped as a URL.
func Resolve(base *url.URL, rel string) string {
	return base.ResolveReference(&url.URL{Path: rel}).String()
}

// topicNames is a piece's topics, trimmed, without empty ones.
func topicNames(topics []string) []string {
	var out []string
	for _, t := range topics {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}
