package esp

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha1" // SNS signature version 1 is SHA1withRSA (version 2, SHA256withRSA, is the default)
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"publisher/internal/bounce"
	pubmail "publisher/internal/mail"
)

// SES reads Amazon SES notifications delivered by an SNS topic to an HTTPS
// subscription. SNS signs every message with a certificate it serves from
// sns.<region>.amazonaws.com; anyone with an AWS account can make SNS sign
// messages of their own topic, so only the topics in TopicARNs are believed.
type SES struct {
	// TopicARNs are the SNS topics SES publishes our notifications to.
	TopicARNs []string
	// Client fetches signing certificates and confirms subscriptions; nil
	// means a client with a 10 s timeout. Tests give one that reaches a
	// local TLS server under the real host names.
	Client *http.Client

	mu    sync.Mutex
	certs map[string]*x509.Certificate // by URL; SNS rotates them rarely
}

// maxCerts bounds the certificate cache: a handful of regions at most.
const maxCerts = 32

// snsHost is the only host a signing certificate or a subscription URL may
// be on.
var snsHost = regexp.MustCompile(`^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$`)

// Name is "ses".
func (s *SES) Name() string { return "ses" }

// snsMessage is the envelope SNS posts.
type snsMessage struct {
	Type             string
	MessageID        string `json:"MessageId"`
	Token            string
	TopicArn         string
	Subject          *string // absent and empty differ in the string to sign
	Message          string
	Timestamp        string
	SignatureVersion string
	Signature        string
	SigningCertURL   string
	SubscribeURL     string
}

// Events verifies an SNS message, confirms a subscription to an allowed
// topic, and reads a notification's SES events.
func (s *SES) Events(ctx context.Context, header http.Header, body []byte) ([]bounce.Event, error) {
	var m snsMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("ses: %w: %w", ErrBadRequest, err)
	}
	if !slices.Contains(s.TopicARNs, m.TopicArn) {
		return nil, fmt.Errorf("ses: %w: topic %q is not one of ours", ErrUnauthorized, m.TopicArn)
	}
	if err := s.verify(ctx, &m); err != nil {
		return nil, err
	}
	switch m.Type {
	case "SubscriptionConfirmation":
		if err := s.confirm(ctx, m.SubscribeURL); err != nil {
			return nil, err
		}
		return nil, nil
	case "UnsubscribeConfirmation":
		return nil, nil
	case "Notification":
		return sesEvents(m.MessageID, []byte(m.Message))
	}
	return nil, fmt.Errorf("ses: %w: SNS message type %q", ErrBadRequest, m.Type)
}

// verify checks the message's signature with the certificate SNS serves for it.
func (s *SES) verify(ctx context.Context, m *snsMessage) error {
	var hash crypto.Hash
	switch m.SignatureVersion {
	case "1":
		hash = crypto.SHA1
	case "2":
		hash = crypto.SHA256
	default:
		return fmt.Errorf("ses: %w: SignatureVersion %q", ErrUnauthorized, m.SignatureVersion)
	}
	sig, err := base64.StdEncoding.DecodeString(m.Signature)
	if err != nil || len(sig) == 0 {
		return fmt.Errorf("ses: %w: Signature is not base64", ErrUnauthorized)
	}
	if err := checkSNSURL(m.SigningCertURL); err != nil {
		return fmt.Errorf("ses: %w: SigningCertURL: %w", ErrUnauthorized, err)
	}
	cert, err := s.cert(ctx, m.SigningCertURL)
	if err != nil {
		return err
	}
	key, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return fmt.Errorf("ses: %w: the signing certificate's key is not RSA", ErrUnauthorized)
	}
	var digest []byte
	if hash == crypto.SHA1 {
		sum := sha1.Sum([]byte(stringToSign(m)))
		digest = sum[:]
	} else {
		sum := sha256.Sum256([]byte(stringToSign(m)))
		digest = sum[:]
	}
	if err := rsa.VerifyPKCS1v15(key, hash, digest, sig); err != nil {
		return fmt.Errorf("ses: %w: bad signature", ErrUnauthorized)
	}
	return nil
}

// stringToSign is SNS's canonical form: named fields, each as "Name\nvalue\n",
// in a fixed order; Subject only on a notification that has one.
func stringToSign(m *snsMessage) string {
	var b strings.Builder
	add := func(name, value string) {
		b.WriteString(name)
		b.WriteByte('\n')
		b.WriteString(value)
		b.WriteByte('\n')
	}
	add("Message", m.Message)
	add("MessageId", m.MessageID)
	if m.Type == "Notification" {
		if m.Subject != nil {
			add("Subject", *m.Subject)
		}
	} else {
		add("SubscribeURL", m.SubscribeURL)
	}
	add("Timestamp", m.Timestamp)
	if m.Type != "Notification" {
		add("Token", m.Token)
	}
	add("TopicArn", m.TopicArn)
	add("Type", m.Type)
	return b.String()
}

// checkSNSURL refuses any URL but https on an SNS host: fetching one named by
// an unverified message must never reach anywhere else.
func checkSNSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Scheme != "https" || u.User != nil || u.Port() != "" || !snsHost.MatchString(u.Hostname()) {
		return fmt.Errorf("%q is not https on sns.<region>.amazonaws.com", raw)
	}
	return nil
}

func (s *SES) client() *http.Client {
	if s.Client != nil {
		return s.Client
	}
	return &http.Client{Timeout: 10 * time.Second}
}

// cert fetches (once) and parses the certificate at rawURL.
func (s *SES) cert(ctx context.Context, rawURL string) (*x509.Certificate, error) {
	s.mu.Lock()
	cert, ok := s.certs[rawURL]
	s.mu.Unlock()
	if ok {
		return cert, nil
	}
	if !strings.HasSuffix(strings.ToLower(strings.SplitN(rawURL, "?", 2)[0]), ".pem") {
		return nil, fmt.Errorf("ses: %w: SigningCertURL %q is not a .pem", ErrUnauthorized, rawURL)
	}
	body, err := s.get(ctx, rawURL, 64<<10)
	if err != nil {
		return nil, fmt.Errorf("ses: signing certificate: %w", err)
	}
	block, _ := pem.Decode(body)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("ses: %w: %s holds no PEM certificate", ErrUnauthorized, rawURL)
	}
	cert, err = x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("ses: %w: %s: %w", ErrUnauthorized, rawURL, err)
	}
	s.mu.Lock()
	if s.certs == nil || len(s.certs) >= maxCerts {
		s.certs = map[string]*x509.Certificate{}
	}
	s.certs[rawURL] = cert
	s.mu.Unlock()
	return cert, nil
}

// confirm visits a subscription's SubscribeURL, which is how SNS learns that
// we want its notifications.
func (s *SES) confirm(ctx context.Context, subscribeURL string) error {
	if err := checkSNSURL(subscribeURL); err != nil {
		return fmt.Errorf("ses: %w: SubscribeURL: %w", ErrUnauthorized, err)
	}
	if _, err := s.get(ctx, subscribeURL, 64<<10); err != nil {
		return fmt.Errorf("ses: confirming the subscription: %w", err)
	}
	return nil
}

func (s *SES) get(ctx context.Context, rawURL string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", rawURL, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", rawURL, err)
	}
	return body, nil
}

// sesNotification is what SES publishes: notificationType for notifications
// set on an identity, eventType for a configuration set's event publishing.
type sesNotification struct {
	NotificationType string
	EventType        string
	Mail             struct {
		Headers []struct {
			Name, Value string
		}
		CommonHeaders struct {
			MessageID string `json:"messageId"`
		}
	}
	Bounce struct {
		BounceType        string
		BounceSubType     string
		Timestamp         time.Time
		BouncedRecipients []struct {
			EmailAddress, Status, DiagnosticCode string
		}
	}
	Complaint struct {
		ComplaintFeedbackType string
		Timestamp             time.Time
		ComplainedRecipients  []struct{ EmailAddress string }
	}
	Delivery struct {
		Timestamp  time.Time
		Recipients []string
	}
	DeliveryDelay struct {
		Timestamp         time.Time
		DelayedRecipients []struct {
			EmailAddress, Status, DiagnosticCode string
		}
	}
	Reject struct{ Reason string }
}

// sesEvents reads one SES notification; id is the SNS message's id.
func sesEvents(id string, msg []byte) ([]bounce.Event, error) {
	var n sesNotification
	if err := json.Unmarshal(msg, &n); err != nil {
		return nil, fmt.Errorf("ses: %w: Message: %w", ErrBadRequest, err)
	}
	// SES rewrites the Message-ID it sends with; the original stays in the
	// headers it reports.
	ourID := messageID(n.Mail.CommonHeaders.MessageID)
	for _, h := range n.Mail.Headers {
		if strings.EqualFold(h.Name, "Message-ID") {
			ourID = messageID(h.Value)
		}
	}
	event := func(kind bounce.Kind, to, status, diag string, at time.Time) bounce.Event {
		return bounce.Event{Source: "ses", ID: id + "/" + address(to), Kind: kind, Recipient: address(to),
			MessageID: ourID, Status: status, Diagnostic: diag, At: at}
	}
	var out []bounce.Event
	typ := n.NotificationType
	if typ == "" {
		typ = n.EventType
	}
	switch typ {
	case "Bounce":
		for _, r := range n.Bounce.BouncedRecipients {
			kind, status := sesBounceKind(n.Bounce.BounceType, n.Bounce.BounceSubType, r.Status, r.DiagnosticCode)
			out = append(out, event(kind, r.EmailAddress, status, r.DiagnosticCode, n.Bounce.Timestamp))
		}
	case "Complaint":
		if strings.EqualFold(n.Complaint.ComplaintFeedbackType, "not-spam") {
			return nil, nil
		}
		for _, r := range n.Complaint.ComplainedRecipients {
			out = append(out, event(bounce.Complaint, r.EmailAddress, "", n.Complaint.ComplaintFeedbackType, n.Complaint.Timestamp))
		}
	case "Delivery":
		for _, r := range n.Delivery.Recipients {
			out = append(out, event(bounce.Delivered, r, "", "", n.Delivery.Timestamp))
		}
	case "DeliveryDelay":
		for _, r := range n.DeliveryDelay.DelayedRecipients {
			out = append(out, event(bounce.Delayed, r.EmailAddress, r.Status, r.DiagnosticCode, n.DeliveryDelay.Timestamp))
		}
	case "Send", "Open", "Click", "Rendering Failure", "Reject", "Subscription":
		// Nothing about a reader's address: a rejected message (a virus)
		// is refused before any recipient was tried.
		return nil, nil
	default:
		return nil, fmt.Errorf("ses: %w: notification type %q", ErrBadRequest, typ)
	}
	for _, e := range out {
		if e.Recipient == "" {
			return nil, fmt.Errorf("ses: %w: a %s without an address", ErrBadRequest, typ)
		}
	}
	return out, nil
}

// sesBounceKind reads SES's bounce type with the recipient's own status: a
// "Permanent" bounce whose server said 5.7.1 is a block, not a dead address.
func sesBounceKind(typ, subType, status, diagnostic string) (bounce.Kind, string) {
	switch subType {
	case "MessageTooLarge", "ContentRejected", "AttachmentRejected":
		return bounce.Refused, status
	case "Suppressed", "OnAccountSuppressionList":
		// SES refused to try: the address bounced hard before.
		return bounce.HardBounce, status
	case "MailboxFull":
		return bounce.SoftBounce, status
	}
	if status != "" || diagnostic != "" {
		cause, effective := bounce.Classify(status, diagnostic)
		switch {
		case cause == pubmail.CauseSender:
			return bounce.Refused, effective
		case typ == "Permanent":
			return bounce.FailureKind(cause), effective
		}
		return bounce.SoftBounce, effective
	}
	if typ == "Permanent" {
		return bounce.HardBounce, status
	}
	return bounce.SoftBounce, status // Transient, Undetermined
}
