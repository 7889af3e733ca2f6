// Package token signs and verifies the links publisher puts in emails and pages
// (confirm, unsubscribe, preferences). A token is the purpose, the subscriber id
// and an optional expiry, authenticated with HMAC-SHA256 under the configured secret,
// so the server needs no table of issued links.
package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Errors returned by Verify. Callers show one message for all of them, so a forger
// learns nothing from which check failed.
var (
	ErrMalformed = errors.New("token: malformed")
	ErrSignature = errors.New("token: bad signature")
	ErrExpired   = errors.New("token: expired")
)

// Signer signs and verifies tokens with one secret.
type Signer struct {
	key []byte
}

// New returns a Signer for secret, which must not be empty.
func New(secret string) (*Signer, error) {
	if secret == "" {
		return nil, errors.New("token: empty secret")
	}
	// Derive the MAC key so the raw secret is never used for more than one purpose.
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("publisher token key v1"))
	return &Signer{key: mac.Sum(nil)}, nil
}

// Sign returns a URL-safe token binding purpose and subscriberID, valid until
// expires (the zero time: no expiry).
func (s *Signer) Sign(purpose string, subscriberID int64, expires time.Time) string {
	var exp int64
	if !expires.IsZero() {
		exp = expires.Unix()
	}
	payload := strconv.FormatInt(subscriberID, 36) + "." + strconv.FormatInt(exp, 36)
	return payload + "." + s.mac(purpose, payload)
}

// Verify checks tok for purpose and returns the subscriber id it carries.
func (s *Signer) Verify(purpose, tok string, now time.Time) (int64, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || len(tok) > 128 {
		return 0, ErrMalformed
	}
	payload := parts[0] + "." + parts[1]
	want := s.mac(purpose, payload)
	if !hmac.Equal([]byte(want), []byte(parts[2])) {
		return 0, ErrSignature
	}
	id, err := strconv.ParseInt(parts[0], 36, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%w: subscriber id", ErrMalformed)
	}
	exp, err := strconv.ParseInt(parts[1], 36, 64)
	if err != nil || exp < 0 {
		return 0, fmt.Errorf("%w: expiry", ErrMalformed)
	}
	if exp != 0 && now.Unix() > exp {
		return 0, ErrExpired
	}
	return id, nil
}

func (s *Signer) mac(purpose, payload string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
