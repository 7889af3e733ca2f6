// Package subscriber reads the subscriber list from CSV files and writes it back.
// Every bad row is reported with its file and line and skipped; the rest go on.
package subscriber

import (
	"fmt"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Cadences a subscriber may choose.
const (
	Immediate = "immediate"
	Daily     = "daily"
	Weekly    = "weekly"
)

// ValidCadence reports whether c is one of the known cadences.
func ValidCadence(c string) bool {
	return c == Immediate || c == Daily || c == Weekly
}

// Row is one subscriber as read from a file.
type Row struct {
	// Email is the bare address, lower-cased.
	Email string
	Name  string
	// Topics are topic slugs, sorted and without duplicates; empty means all topics.
	Topics  []string
	Cadence string
	// File and Line say where the row was read.
	File string
	Line int
}

// Severity says whether a problem made a row (or file) be skipped.
type Severity int

const (
	// Warning: the row was used, but something was ignored or merged.
	Warning Severity = iota
	// Error: the row (or, with Line 0 or 1 for the header, the file) was skipped.
	Error
)

func (s Severity) String() string {
	if s == Error {
		return "error"
	}
	return "warning"
}

// Problem is one thing wrong with one row or file.
type Problem struct {
	File     string
	Line     int // 0 when the problem concerns the whole file
	Severity Severity
	Message  string
}

func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %s: %s", p.File, p.Line, p.Severity, p.Message)
	}
	return fmt.Sprintf("%s: %s: %s", p.File, p.Severity, p.Message)
}

// TopicSlug turns a topic as people write it ("Foreign Policy") into the slug form
// pieces carry ("foreign-policy"): accents folded, ASCII letters and digits kept,
// everything else collapsed into single hyphens. It is the same rule the content
// package applies to piece topics, so the two compare equal.
func TopicSlug(s string) string {
	var b strings.Builder
	pendingHyphen := false
	for _, r := range norm.NFKD.String(s) {
		switch {
		case unicode.Is(unicode.Mn, r):
			continue // combining accent left by NFKD
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		case r >= 'A' && r <= 'Z':
			r += 'a' - 'A'
		default:
			pendingHyphen = b.Len() > 0
			continue
		}
		if pendingHyphen {
			b.WriteByte('-')
			pendingHyphen = false
		}
		b.WriteRune(r)
	}
	return b.String()
}
