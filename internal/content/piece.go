// Package content turns the desk's files into pieces and reports every problem
// it met on the way, with the file and line it concerns. It knows nothing of the
// store, the feeds or the mail.
package content

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"publisher/internal/problem"
)

// Author is one person credited on a piece.
type Author struct {
	Name  string `yaml:"name" json:"name"`
	Role  string `yaml:"role,omitempty" json:"role,omitempty"`
	Email string `yaml:"email,omitempty" json:"email,omitempty"`
	URL   string `yaml:"url,omitempty" json:"url,omitempty"`
}

// Source names the publication a piece first appeared in.
type Source struct {
	Name string `yaml:"name" json:"name"`
	URL  string `yaml:"url,omitempty" json:"url,omitempty"`
}

// Piece is one published (or draft) article, whatever format it came in.
type Piece struct {
	// ID is stable across runs: it is the slug, never a time or a random value.
	ID   string
	Slug string

	Title string
	// TitleDerived is true when no title was given and one was cut from the lede.
	TitleDerived bool
	Authors      []Author
	// Date is the publication date the editor gave; zero when none was given.
	Date time.Time
	// Updated is the editor's last-updated date; zero when none was given.
	Updated      time.Time
	Summary      string
	Topics       []string
	CanonicalURL string
	Source       Source
	Image        string
	Draft        bool

	// HTML is the sanitised body. Links in it may still be relative to the
	// piece (see LinksBase); renderers make them absolute (PieceHTML).
	HTML string
	// LinksBase is the URL the body's relative links and images were made
	// absolute against as the piece was loaded (Options.LinkBase); empty when
	// they were left as written.
	LinksBase string
	// Text is the body as plain text, one paragraph per blank-line-separated
	// block, as a plain-text piece's file gives it; empty for a Markdown piece
	// (and with Options.SkipText). PlainText gives it for any piece.
	Text string
	// Lede is the first paragraph of the body as plain text.
	Lede string
	// Assets are the files beside the piece it links to, to be published
	// beside its page.
	Assets []Asset

	// File is the path of the source file, relative to the content folder.
	File string
	// Hash is a digest of the source bytes (and sidecar), to notice edits.
	Hash string

	// FirstSeen is when the publisher first saw this piece. The content package
	// leaves it zero; the run fills it from the store.
	FirstSeen time.Time

	// body reads HTML and Text from the file when Load took the piece from
	// its Cache without them (see Body).
	body *lazyBody
	// cached is the Cache entry Load recorded the piece under (see Cached).
	cached *FileResult
}

// Published is the date readers see: the editor's date, else when the piece was first seen.
func (p *Piece) Published() time.Time {
	if !p.Date.IsZero() {
		return p.Date
	}
	return p.FirstSeen
}

// Modified is the later of Updated and Published.
func (p *Piece) Modified() time.Time {
	if p.Updated.After(p.Published()) {
		return p.Updated
	}
	return p.Published()
}

// Problem and Severity are the shared problem report; the aliases keep this
// package's own names.
type (
	Problem  = problem.Problem
	Severity = problem.Severity
)

const (
	// Warning: the piece is published, but something was guessed or dropped.
	Warning = problem.Warning
	// Error: the piece (or file) is not published.
	Error = problem.Error
)

// Byline names the authors as a sentence would: "A", "A and B", "A, B and C";
// with roles, each name is followed by its role in parentheses: "A (Analyst)
// and B". Authors without a name are left out.
func Byline(authors []Author, roles bool) string {
	var names []string
	for _, a := range authors {
		name, role := strings.TrimSpace(a.Name), strings.TrimSpace(a.Role)
		if name == "" {
			continue
		}
		if roles && role != "" {
			name += " (" + role + ")"
		}
		names = append(names, name)
	}
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// Key identifies everything a rendering of p is made from: its file, the
// bytes of the file and its sidecar (Hash) and its first-seen time. Two
// pieces with the same key render the same, with the same settings and
// templates, so a build may keep what it rendered from one for the other.
// Pieces built by hand (no Hash) are keyed by every field.
//
// It is a 128-bit hash: keys are hashed again for every page a piece is
// listed on, and kept between builds.
func (p *Piece) Key() string {
	var sum [sha256.Size]byte
	if p.Hash == "" {
		sum = sha256.Sum256(fmt.Appendf(nil, "fields %#v", *p))
	} else {
		// On the stack for any usual path: a key is made for every piece on
		// every build.
		var buf [256]byte
		b := append(append(append(buf[:0], p.File...), 0), p.Hash...)
		b = strconv.AppendInt(append(b, 0), p.FirstSeen.UnixNano(), 10)
		sum = sha256.Sum256(b)
	}
	return hex.EncodeToString(sum[:16])
}
