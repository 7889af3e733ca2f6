// Package valid holds the checks every way in applies to what people type and
// files say: addresses, cadences, one-line text, topic names, loopback hosts. The
// web form, the command line, the list files and the configuration all call these,
// so an address one of them accepts is never refused by another. It imports
// nothing of publisher's, so that config may use it.
package valid

import (
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Cadences a subscriber may choose.
const (
	Immediate = "immediate"
	Daily     = "daily"
	Weekly    = "weekly"
)

// Cadences lists the cadences in the order forms and help show them.
func Cadences() []string { return []string{Immediate, Daily, Weekly} }

// Cadence reports whether c is one of the known cadences.
func Cadence(c string) bool {
	return c == Immediate || c == Daily || c == Weekly
}

// MaxEmailLen is the longest address accepted (RFC 5321's path limit less the brackets).
const MaxEmailLen = 254

// MaxTopicLen is the longest topic name accepted.
const MaxTopicLen = 64

// Email problems; the messages complete a sentence that starts with the address.
var (
	ErrEmailEmpty   = errors.New("is empty")
	ErrEmailTooLong = fmt.Errorf("is longer than %d characters", MaxEmailLen)
	ErrEmailControl = errors.New("contains a line break or control character")
	ErrEmailInvalid = errors.New("is not a valid address")
	ErrEmailNotBare = errors.New("must be a bare address such as reader@example.org")
)

// Email checks a bare address ("reader@example.org": no display name, no
// comment, no domain literal) and returns it lower-cased. net/mail accepts UTF-8
// (RFC 6532), so internationalised addresses pass.
func Email(s string) (string, error) {
	switch {
	case s == "":
		return "", ErrEmailEmpty
	case Line(s) != nil:
		return "", ErrEmailControl
	case len(s) > MaxEmailLen:
		return "", ErrEmailTooLong
	}
	addr, err := netmail.ParseAddress(s)
	if err != nil {
		return "", ErrEmailInvalid
	}
	// A display name or comment would be a way to smuggle text into the To header.
	if addr.Name != "" || addr.Address != s || strings.ContainsAny(s, " <>()\"") {
		return "", ErrEmailNotBare
	}
	if _, domain, _ := strings.Cut(s, "@"); domain == "" || strings.HasPrefix(domain, "[") {
		return "", ErrEmailInvalid
	}
	return strings.ToLower(s), nil
}

// Line checks text bound for a mail header or a one-line field: valid UTF-8, no
// line break, no other control character (C0, C1, and the Unicode line and
// paragraph separators, which some clients treat as line ends).
func Line(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8")
	}
	for _, r := range s {
		switch {
		case r == '\r' || r == '\n' || r == '\u2028' || r == '\u2029':
			return errors.New("contains a line break")
		case unicode.IsControl(r):
			return fmt.Errorf("contains control character %U", r)
		}
	}
	return nil
}

// Topic checks one topic name as a person typed it and returns it trimmed.
func Topic(t string) (string, error) {
	t = strings.TrimSpace(t)
	if err := Line(t); err != nil {
		return "", err
	}
	if len(t) > MaxTopicLen {
		return "", fmt.Errorf("is longer than %d characters", MaxTopicLen)
	}
	return t, nil
}

// LoopbackHost accepts "localhost" and loopback IP literals; other names are
// not trusted to resolve to this machine.
func LoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
