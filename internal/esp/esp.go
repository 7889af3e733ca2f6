// Package esp verifies the webhooks that email service providers post about
// the mail they delivered for us (Amazon SES through SNS, Postmark, Mailgun,
// SendGrid), and turns their payloads into bounce.Events.
//
// A request is believed only once its signature (or, for Postmark, its
// credentials) checks out; everything in the body is data from the network
// until then. Each event carries the provider's own id, so an event posted
// twice (a retry, a replay) can be recorded once.
package esp

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
	"time"

	"publisher/internal/bounce"
)

// Provider verifies one provider's webhook requests and reads their events.
type Provider interface {
	// Name is the provider's name in the webhook's path: "ses", "postmark",
	// "mailgun", "sendgrid".
	Name() string
	// Events checks that the request came from the provider and returns the
	// events it reports. The error wraps ErrUnauthorized for a request that
	// is not the provider's (a bad signature, stale, wrong credentials),
	// ErrBadRequest for one that is but cannot be read; any other error is
	// ours (a certificate that could not be fetched) and worth a retry.
	Events(ctx context.Context, header http.Header, body []byte) ([]bounce.Event, error)
}

// Finisher is a Provider that must hear when every event of a request was
// recorded (Mailgun remembers the request's token then, to refuse replays).
type Finisher interface {
	Done(body []byte)
}

// Errors a Provider's Events wraps.
var (
	ErrUnauthorized = errors.New("not from the provider")
	ErrBadRequest   = errors.New("unreadable payload")
)

// DefaultMaxAge is how old a signed timestamp may be (Mailgun, SendGrid)
// before the request is refused as a replay. Generous, since a provider
// retries for hours after our endpoint was down; events already recorded are
// ignored when posted again anyway.
const DefaultMaxAge = time.Hour

// fresh reports whether a signed timestamp is within maxAge of now (either
// side: clocks drift).
func fresh(at, now time.Time, maxAge time.Duration) bool {
	d := now.Sub(at)
	return d <= maxAge && d >= -maxAge
}

// equal compares secrets in constant time.
func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// address lower-cases an address and strips angle brackets.
func address(s string) string {
	return strings.ToLower(strings.Trim(strings.TrimSpace(s), "<>"))
}

// messageID strips the angle brackets and spaces off a Message-ID.
func messageID(s string) string {
	return strings.Trim(strings.TrimSpace(s), "<>")
}

// unix reads seconds since 1970 that may carry a fraction.
func unix(sec float64) time.Time {
	if sec <= 0 {
		return time.Time{}
	}
	whole := int64(sec)
	return time.Unix(whole, int64((sec-float64(whole))*1e9)).UTC()
}
