package bounce

import (
	"fmt"
	"net/mail"
	"strings"
)

// VERP is a variable envelope return path: the digest for reader@example.org
// goes out with the return path bounces+reader=example.org@desk.example.org,
// so a bounce names its reader even when the server that sent it does not.
// The zero VERP encodes nothing and decodes any address of that shape.
type VERP struct {
	local, domain string
}

// maxLocalPart is RFC 5321's limit on a local part.
const maxLocalPart = 64

// NewVERP takes the bounce mailbox's address ("bounces@desk.example.org").
func NewVERP(bounceAddress string) (VERP, error) {
	a, err := mail.ParseAddress(bounceAddress)
	if err != nil {
		return VERP{}, fmt.Errorf("bounce address %q: %w", bounceAddress, err)
	}
	local, domain, ok := splitAddress(a.Address)
	if !ok || strings.ContainsAny(local, "+=") {
		return VERP{}, fmt.Errorf("bounce address %q: want local@domain with no + or = in the local part", bounceAddress)
	}
	return VERP{local: local, domain: strings.ToLower(domain)}, nil
}

// Encode gives the return path for mail to reader. It reports false when
// reader cannot be carried (a quoted local part, or a local part over 64
// octets); the caller then sends with the bounce address itself and relies on
// the Message-ID.
func (v VERP) Encode(reader string) (string, bool) {
	if v.local == "" {
		return "", false
	}
	local, domain, ok := splitAddress(reader)
	if !ok || strings.ContainsAny(local, "\"\\ ") {
		return "", false
	}
	tagged := v.local + "+" + local + "=" + domain
	if len(tagged) > maxLocalPart {
		return "", false
	}
	return tagged + "@" + v.domain, true
}

// Decode gives the reader's address carried by a VERP return path, lower-cased.
func (v VERP) Decode(addr string) (string, bool) {
	addr = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(addr), "<"), ">")
	local, domain, ok := splitAddress(addr)
	if !ok {
		return "", false
	}
	var tag string
	if v.local == "" {
		_, tag, ok = strings.Cut(local, "+")
	} else {
		prefix := v.local + "+"
		ok = strings.EqualFold(domain, v.domain) && len(local) > len(prefix) && strings.EqualFold(local[:len(prefix)], prefix)
		if ok {
			tag = local[len(prefix):]
		}
	}
	if !ok {
		return "", false
	}
	// The reader's domain cannot hold "=", so the last one splits.
	i := strings.LastIndexByte(tag, '=')
	if i <= 0 || i == len(tag)-1 {
		return "", false
	}
	reader := tag[:i] + "@" + tag[i+1:]
	a, err := mail.ParseAddress(reader)
	if err != nil || a.Address != reader {
		return "", false
	}
	return strings.ToLower(reader), true
}

// splitAddress splits at the last "@".
func splitAddress(addr string) (local, domain string, ok bool) {
	i := strings.LastIndexByte(addr, '@')
	if i <= 0 || i == len(addr)-1 {
		return "", "", false
	}
	return addr[:i], addr[i+1:], true
}
