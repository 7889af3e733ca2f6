package esp

import (
	"container/list"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"publisher/internal/bounce"
)

// Mailgun reads Mailgun's webhooks. Each carries a signature: the hex
// HMAC-SHA256, under the webhook signing key, of its timestamp and a random
// token. The signature does not cover the event, so a timestamp older than
// MaxAge is refused and a token is accepted once.
type Mailgun struct {
	SigningKey string
	// MaxAge: 0 means DefaultMaxAge.
	MaxAge time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu     sync.Mutex
	tokens map[string]*list.Element // tokens already used, within MaxAge
	order  *list.List               // of usedToken, oldest first
}

type usedToken struct {
	token string
	at    time.Time
}

// maxTokens bounds the memory of used tokens, whatever the rate.
const maxTokens = 100_000

// Name is "mailgun".
func (m *Mailgun) Name() string { return "mailgun" }

type mailgunPayload struct {
	Signature struct {
		Timestamp string
		Token     string
		Signature string
	}
	EventData struct {
		ID        string
		Event     string
		Timestamp float64
		Severity  string
		Reason    string
		Recipient string
		Message   struct {
			Headers map[string]string
		}
		DeliveryStatus struct {
			Code         int
			EnhancedCode string `json:"enhanced-code"`
			Message      string
			Description  string
		} `json:"delivery-status"`
	} `json:"event-data"`
}

func (m *Mailgun) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *Mailgun) maxAge() time.Duration {
	if m.MaxAge > 0 {
		return m.MaxAge
	}
	return DefaultMaxAge
}

// Events verifies the signature and reads the one event. The token is
// remembered only by Done, once the event is recorded: a retry of a request
// we failed to record must still get through.
func (m *Mailgun) Events(ctx context.Context, h http.Header, body []byte) ([]bounce.Event, error) {
	var p mailgunPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("mailgun: %w: %w", ErrBadRequest, err)
	}
	if err := m.verify(p.Signature.Timestamp, p.Signature.Token, p.Signature.Signature); err != nil {
		return nil, err
	}
	d := p.EventData
	e := bounce.Event{Source: "mailgun", ID: d.ID, Recipient: address(d.Recipient),
		MessageID: messageID(d.Message.Headers["message-id"]), At: unix(d.Timestamp)}
	status := d.DeliveryStatus
	diagnostic := status.Message
	if diagnostic == "" {
		diagnostic = status.Description
	}
	if status.Code != 0 {
		diagnostic = strconv.Itoa(status.Code) + " " + diagnostic
	}
	switch d.Event {
	case "failed":
		if d.Severity == "temporary" {
			e.Kind = bounce.Delayed // Mailgun tries again
			break
		}
		switch d.Reason {
		case "suppress-bounce":
			e.Kind = bounce.HardBounce // the address bounced hard before
		case "suppress-complaint":
			e.Kind = bounce.Complaint
		case "suppress-unsubscribe":
			e.Kind = bounce.Unsubscribe
		case "espblock":
			e.Kind = bounce.Refused
		case "old":
			e.Kind = bounce.SoftBounce // gave up after temporary failures
		default:
			cause, effective := bounce.Classify(status.EnhancedCode, diagnostic)
			e.Kind, e.Status = bounce.FailureKind(cause), effective
			if status.Code == 0 && effective == "" {
				e.Kind = bounce.HardBounce // a permanent failure with nothing more said
			}
		}
		e.Diagnostic = diagnostic
	case "complained":
		e.Kind = bounce.Complaint
	case "unsubscribed":
		e.Kind = bounce.Unsubscribe
	case "delivered":
		e.Kind = bounce.Delivered
	case "rejected":
		e.Kind, e.Diagnostic = bounce.Refused, d.Reason
	case "accepted", "opened", "clicked", "stored":
		return nil, nil
	default:
		return nil, fmt.Errorf("mailgun: %w: event %q", ErrBadRequest, d.Event)
	}
	if e.ID == "" || e.Recipient == "" {
		return nil, fmt.Errorf("mailgun: %w: a %s event without its id or recipient", ErrBadRequest, d.Event)
	}
	return []bounce.Event{e}, nil
}

// verify checks the signature, the timestamp's age and that the token is new.
func (m *Mailgun) verify(timestamp, token, signature string) error {
	if m.SigningKey == "" {
		return fmt.Errorf("mailgun: %w: no signing key is set", ErrUnauthorized)
	}
	mac := hmac.New(sha256.New, []byte(m.SigningKey))
	mac.Write([]byte(timestamp + token))
	want := hex.EncodeToString(mac.Sum(nil))
	if token == "" || !hmac.Equal([]byte(want), []byte(signature)) {
		return fmt.Errorf("mailgun: %w: bad signature", ErrUnauthorized)
	}
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil || !fresh(time.Unix(sec, 0), m.now(), m.maxAge()) {
		return fmt.Errorf("mailgun: %w: timestamp %q is not within %s of now", ErrUnauthorized, timestamp, m.maxAge())
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, used := m.tokens[token]; used {
		return fmt.Errorf("mailgun: %w: token already used (a replay)", ErrUnauthorized)
	}
	return nil
}

// Done remembers the token of a request whose events were all recorded, so
// that the same signature is not accepted again.
func (m *Mailgun) Done(body []byte) {
	var p mailgunPayload
	if json.Unmarshal(body, &p) != nil || p.Signature.Token == "" {
		return
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tokens == nil {
		m.tokens, m.order = map[string]*list.Element{}, list.New()
	}
	// Tokens older than MaxAge need no memory: their timestamps are refused.
	for front := m.order.Front(); front != nil; front = m.order.Front() {
		u := front.Value.(usedToken)
		if now.Sub(u.at) <= m.maxAge() && m.order.Len() < maxTokens {
			break
		}
		delete(m.tokens, u.token)
		m.order.Remove(front)
	}
	if _, ok := m.tokens[p.Signature.Token]; !ok {
		m.tokens[p.Signature.Token] = m.order.PushBack(usedToken{p.Signature.Token, now})
	}
}
