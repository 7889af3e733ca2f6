package esp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"publisher/internal/bounce"
)

// Postmark reads Postmark's webhooks. Postmark does not sign them: it sends
// the basic-auth credentials written into the webhook's URL
// (https://user:password@desk.example.org/webhooks/postmark) and any custom
// headers set on the webhook. Set Username and Password, or Header and
// Secret, or both; a request must carry every one that is set.
type Postmark struct {
	Username, Password string
	// Header names a custom header whose value must equal Secret.
	Header, Secret string
}

// Name is "postmark".
func (p *Postmark) Name() string { return "postmark" }

// Check says whether p is set up to authenticate anything.
func (p *Postmark) Check() error {
	if p.Username == "" && p.Header == "" {
		return errors.New("postmark: set basic-auth credentials or a secret header")
	}
	if (p.Username == "") != (p.Password == "") || (p.Header == "") != (p.Secret == "") {
		return errors.New("postmark: a user name needs a password, a header a secret")
	}
	return nil
}

func (p *Postmark) authorized(h http.Header) bool {
	if err := p.Check(); err != nil {
		return false
	}
	ok := true
	if p.Username != "" {
		req := http.Request{Header: h}
		user, pass, given := req.BasicAuth()
		// Both compared, whatever the first gives: no early exit to time.
		ok = given && equal(user, p.Username) && equal(pass, p.Password)
	}
	if p.Header != "" {
		ok = equal(h.Get(p.Header), p.Secret) && ok
	}
	return ok
}

// postmarkRecord is every field of Postmark's webhooks that we read.
type postmarkRecord struct {
	RecordType      string
	ID              json.Number // bounces and spam complaints
	Type            string
	MessageID       string
	Email           string // bounces, complaints
	Recipient       string // deliveries, subscription changes
	Details         string
	Description     string
	BouncedAt       time.Time
	DeliveredAt     time.Time
	ChangedAt       time.Time
	SuppressSending bool
	// SuppressionReason: HardBounce, SpamComplaint or ManualSuppression.
	SuppressionReason string
}

// Events authenticates the request and reads its one record.
func (p *Postmark) Events(ctx context.Context, h http.Header, body []byte) ([]bounce.Event, error) {
	if !p.authorized(h) {
		return nil, fmt.Errorf("postmark: %w: wrong or missing credentials", ErrUnauthorized)
	}
	var r postmarkRecord
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("postmark: %w: %w", ErrBadRequest, err)
	}
	// Postmark's MessageID is its own, not our Message-ID: the reader is
	// matched by address.
	e := bounce.Event{Source: "postmark", Diagnostic: r.Details}
	switch r.RecordType {
	case "Bounce", "SpamComplaint":
		kind, ok := postmarkKind(r.Type)
		if r.RecordType == "SpamComplaint" {
			kind, ok = bounce.Complaint, true
		}
		if !ok {
			return nil, nil
		}
		if r.ID.String() == "" {
			return nil, fmt.Errorf("postmark: %w: a %s without its ID", ErrBadRequest, r.RecordType)
		}
		e.ID, e.Kind, e.Recipient, e.At = "bounce/"+r.ID.String(), kind, address(r.Email), r.BouncedAt
		if e.Diagnostic == "" {
			e.Diagnostic = r.Description
		}
	case "Delivery":
		e.ID, e.Kind, e.Recipient, e.At = "delivery/"+r.MessageID+"/"+address(r.Recipient), bounce.Delivered, address(r.Recipient), r.DeliveredAt
	case "SubscriptionChange":
		// Bounces and complaints arrive on their own webhooks; this one adds
		// only the reader who left through Postmark's own unsubscribe link.
		if !r.SuppressSending || r.SuppressionReason != "ManualSuppression" {
			return nil, nil
		}
		e.ID = "unsubscribe/" + r.MessageID + "/" + address(r.Recipient) + "/" + strconv.FormatInt(r.ChangedAt.Unix(), 10)
		e.Kind, e.Recipient, e.At = bounce.Unsubscribe, address(r.Recipient), r.ChangedAt
	case "Open", "Click":
		return nil, nil // not tracked
	default:
		return nil, fmt.Errorf("postmark: %w: RecordType %q", ErrBadRequest, r.RecordType)
	}
	if e.Recipient == "" {
		return nil, fmt.Errorf("postmark: %w: a %s without an address", ErrBadRequest, r.RecordType)
	}
	return []bounce.Event{e}, nil
}

// postmarkKind maps Postmark's bounce types; false for those that are no
// verdict on the address (an auto-reply, a subscribe request).
func postmarkKind(typ string) (bounce.Kind, bool) {
	switch typ {
	case "HardBounce", "BadEmailAddress":
		return bounce.HardBounce, true
	case "SoftBounce", "Transient", "DnsError", "Unknown":
		return bounce.SoftBounce, true
	case "Blocked", "DMARCPolicy", "SMTPApiError", "SpamNotification", "VirusNotification", "TemplateRenderingFailed":
		return bounce.Refused, true
	case "SpamComplaint":
		return bounce.Complaint, true
	case "Unsubscribe":
		return bounce.Unsubscribe, true
	}
	// AutoResponder, Subscribe, AddressChange, ChallengeVerification,
	// OpenRelayTest, ManuallyDeactivated, Unconfirmed, InboundError.
	return "", false
}
