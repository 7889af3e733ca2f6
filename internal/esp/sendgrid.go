package esp

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"publisher/internal/bounce"
)

// SendGrid reads SendGrid's signed Event Webhook: a JSON array of events,
// with an ECDSA P-256 signature (base64 DER, SHA-256) over the timestamp
// header followed by the raw body, checked with the verification key SendGrid
// shows under the webhook's settings.
type SendGrid struct {
	key    *ecdsa.PublicKey
	MaxAge time.Duration // 0 means DefaultMaxAge
	Now    func() time.Time
}

// Headers of the signed Event Webhook.
const (
	SendGridSignatureHeader = "X-Twilio-Email-Event-Webhook-Signature"
	SendGridTimestampHeader = "X-Twilio-Email-Event-Webhook-Timestamp"
)

// NewSendGrid takes the verification key as SendGrid shows it: base64 of the
// DER public key (a PEM block is accepted too).
func NewSendGrid(verificationKey string) (*SendGrid, error) {
	k := strings.TrimSpace(verificationKey)
	k = strings.TrimPrefix(k, "-----BEGIN PUBLIC KEY-----")
	k = strings.TrimSuffix(k, "-----END PUBLIC KEY-----")
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(k), ""))
	if err != nil {
		return nil, fmt.Errorf("sendgrid: verification key is not base64: %w", err)
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("sendgrid: verification key: %w", err)
	}
	key, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("sendgrid: verification key is not an ECDSA key")
	}
	return &SendGrid{key: key}, nil
}

// Name is "sendgrid".
func (s *SendGrid) Name() string { return "sendgrid" }

type sendgridEvent struct {
	Email          string
	Timestamp      int64
	Event          string
	SMTPID         string `json:"smtp-id"`
	SGEventID      string `json:"sg_event_id"`
	Reason         string
	Status         string
	Type           string // bounce: "bounce" or "blocked"
	Classification string `json:"bounce_classification"`
	Response       string
}

// Events verifies the signature and timestamp and reads every event.
func (s *SendGrid) Events(ctx context.Context, h http.Header, body []byte) ([]bounce.Event, error) {
	if err := s.verify(h.Get(SendGridTimestampHeader), h.Get(SendGridSignatureHeader), body); err != nil {
		return nil, err
	}
	var events []sendgridEvent
	if err := json.Unmarshal(body, &events); err != nil {
		return nil, fmt.Errorf("sendgrid: %w: %w", ErrBadRequest, err)
	}
	var out []bounce.Event
	for i, ev := range events {
		e := bounce.Event{Source: "sendgrid", ID: ev.SGEventID, Recipient: address(ev.Email),
			MessageID: messageID(ev.SMTPID), Status: ev.Status, Diagnostic: ev.Reason, At: unix(float64(ev.Timestamp))}
		switch ev.Event {
		case "bounce":
			e.Kind, e.Status = sendgridBounce(ev)
		case "dropped":
			e.Kind = sendgridDropped(ev.Reason)
		case "deferred":
			e.Kind, e.Diagnostic = bounce.Delayed, ev.Response
		case "delivered":
			e.Kind, e.Diagnostic = bounce.Delivered, ev.Response
		case "spamreport":
			e.Kind = bounce.Complaint
		case "unsubscribe", "group_unsubscribe":
			e.Kind = bounce.Unsubscribe
		case "processed", "open", "click", "group_resubscribe":
			continue
		default:
			return nil, fmt.Errorf("sendgrid: %w: event %d: %q", ErrBadRequest, i, ev.Event)
		}
		if e.ID == "" || e.Recipient == "" {
			return nil, fmt.Errorf("sendgrid: %w: event %d (%s) without sg_event_id or email", ErrBadRequest, i, ev.Event)
		}
		out = append(out, e)
	}
	return out, nil
}

func (s *SendGrid) verify(timestamp, signature string, body []byte) error {
	if s.key == nil {
		return fmt.Errorf("sendgrid: %w: no verification key is set", ErrUnauthorized)
	}
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil || len(sig) == 0 {
		return fmt.Errorf("sendgrid: %w: %s is missing or not base64", ErrUnauthorized, SendGridSignatureHeader)
	}
	digest := sha256.Sum256(append([]byte(timestamp), body...))
	if !ecdsa.VerifyASN1(s.key, digest[:], sig) {
		return fmt.Errorf("sendgrid: %w: bad signature", ErrUnauthorized)
	}
	now, maxAge := time.Now(), s.MaxAge
	if s.Now != nil {
		now = s.Now()
	}
	if maxAge <= 0 {
		maxAge = DefaultMaxAge
	}
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil || !fresh(time.Unix(sec, 0), now, maxAge) {
		return fmt.Errorf("sendgrid: %w: timestamp %q is not within %s of now", ErrUnauthorized, timestamp, maxAge)
	}
	return nil
}

// sendgridBounce: a "blocked" bounce, or one SendGrid puts down to content,
// reputation or volume, is the sender's problem; the rest go by the server's
// status and reply.
func sendgridBounce(ev sendgridEvent) (bounce.Kind, string) {
	if ev.Type == "blocked" {
		return bounce.Refused, ev.Status
	}
	switch ev.Classification {
	case "Content", "Reputation", "Frequency or Volume Too High":
		return bounce.Refused, ev.Status
	}
	if ev.Status == "" && ev.Reason == "" {
		return bounce.HardBounce, "" // a bounce with nothing more said
	}
	cause, status := bounce.Classify(ev.Status, ev.Reason)
	return bounce.FailureKind(cause), status
}

// sendgridDropped: SendGrid did not send at all, mostly because of its own
// suppression lists, which say why.
func sendgridDropped(reason string) bounce.Kind {
	switch reason {
	case "Bounced Address", "Invalid":
		return bounce.HardBounce
	case "Spam Reporting Address":
		return bounce.Complaint
	case "Unsubscribed Address":
		return bounce.Unsubscribe
	}
	return bounce.Refused
}
