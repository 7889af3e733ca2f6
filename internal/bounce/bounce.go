// Package bounce reads what comes back after a digest went out: delivery
// status notifications (RFC 3464) and spam-complaint reports (ARF, RFC 5965)
// from the bounce mailbox, and the VERP return paths that say whose digest a
// bounce is about. Each becomes Events: hard bounce, soft bounce, complaint,
// and the rest, in one vocabulary shared with the ESP webhooks.
//
// Every message parsed here comes from strangers: parts are read through
// limits, nothing is trusted to be well formed, and a broken recipient block
// is reported without losing the others.
package bounce

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"time"

	pubmail "publisher/internal/mail"
)

// Kind is what an event says about a delivery.
type Kind string

// Kinds of event.
const (
	// HardBounce: the reader's address is dead. Counts toward the bounce limit.
	HardBounce Kind = "hard_bounce"
	// SoftBounce: the reader's mailbox refused for now (full, or a queue gave
	// up on a temporary failure). Never suppresses on its own.
	SoftBounce Kind = "soft_bounce"
	// Refused: the message was refused for the sender's reasons (policy, block
	// list, content); says nothing about the reader.
	Refused Kind = "refused"
	// Delayed: a server on the way is still trying.
	Delayed Kind = "delayed"
	// Delivered: a server on the way, or the ESP, reports delivery.
	Delivered Kind = "delivered"
	// Complaint: the reader marked the digest as spam. Suppresses at once.
	Complaint Kind = "complaint"
	// Unsubscribe: the reader left through the ESP's own link or header.
	Unsubscribe Kind = "unsubscribe"
)

// FailureKind is the kind of a delivery that failed for good, by whose
// problem the failure was: a hard bounce only when the reader's address is
// dead; a soft bounce for a full mailbox, or a server that gave up after
// temporary failures.
func FailureKind(c pubmail.Cause) Kind {
	switch c {
	case pubmail.CauseHardBounce:
		return HardBounce
	case pubmail.CauseSender:
		return Refused
	}
	return SoftBounce
}

// Event is one piece of feedback about one delivery.
type Event struct {
	// Source is where it came from: "dsn", "arf", "ses", "postmark",
	// "mailgun", "sendgrid".
	Source string
	// ID identifies the event within its source, so that one delivered twice
	// (a webhook retried, a mailbox message read again after a crash) is
	// recorded once.
	ID   string
	Kind Kind
	// Recipient is the reader's address, lower-cased, as best known: the
	// VERP-decoded return path, else the original recipient, else the final
	// one. Empty when the report hides it (complaint reports often do).
	Recipient string
	// MessageID is the Message-ID of the digest it concerns, without angle
	// brackets; empty when the report does not carry it.
	MessageID string
	// Status is the RFC 3463 status code ("5.1.1") when known; Diagnostic the
	// server's words.
	Status     string
	Diagnostic string
	// At is when it happened, as the report says; zero when it does not.
	At time.Time
}

// ErrNotReport is returned for a message that is neither a delivery status
// notification nor a feedback report: an auto-reply, a human's answer, a
// bounce in free text.
var ErrNotReport = errors.New("not a delivery status or feedback report")

// Parse reads one message from the bounce mailbox and returns its events. A
// message that is not a report gives ErrNotReport.
func Parse(raw []byte, verp VERP) ([]Event, error) {
	r, err := readReport(raw)
	if err != nil {
		return nil, err
	}
	switch r.statusType {
	case typeDeliveryStatus, typeGlobalDeliveryStatus:
		d, err := r.dsn(verp)
		if err != nil {
			return nil, err
		}
		return d.Events(), nil
	case typeFeedbackReport:
		a, err := r.arf(verp)
		if err != nil {
			return nil, err
		}
		return a.Events(), nil
	}
	return nil, ErrNotReport
}

// Media types of the machine-readable part of a report, and of the returned
// message or its headers.
const (
	typeDeliveryStatus       = "message/delivery-status"
	typeGlobalDeliveryStatus = "message/global-delivery-status" // RFC 6533: UTF-8 allowed
	typeFeedbackReport       = "message/feedback-report"
)

var originalTypes = map[string]bool{
	"message/rfc822":         true,
	"message/global":         true,
	"text/rfc822-headers":    true,
	"message/global-headers": true,
	"message/rfc822-headers": true, // not registered, but sent
}

// Limits on what is read of one message.
const (
	maxStatusBytes = 1 << 20   // the machine-readable part
	maxHeaderBytes = 256 << 10 // the returned message's header
	maxDepth       = 5         // multipart nesting
)

// report is what the walk through one message's parts found.
type report struct {
	id         string
	header     mail.Header // the report's own header
	statusType string
	status     []byte      // the machine-readable part, decoded
	original   mail.Header // the returned message's header; nil when absent
}

func readReport(raw []byte) (*report, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrNotReport, err)
	}
	r := &report{header: msg.Header, id: reportID(msg.Header, raw)}
	mediaType, params := mediaType(msg.Header.Get("Content-Type"))
	if !strings.HasPrefix(mediaType, "multipart/") {
		return nil, fmt.Errorf("%w: Content-Type %q", ErrNotReport, mediaType)
	}
	walkErr := r.walk(msg.Body, params["boundary"], 0)
	if r.status == nil {
		if walkErr != nil {
			return nil, fmt.Errorf("%w: %w", ErrNotReport, walkErr)
		}
		return nil, fmt.Errorf("%w: no %s, %s or %s part", ErrNotReport, typeDeliveryStatus, typeGlobalDeliveryStatus, typeFeedbackReport)
	}
	// A part broken after the status was read (a truncated returned message)
	// loses nothing that matters.
	return r, nil
}

// reportID is the report's Message-ID, or a digest of its bytes when it has none.
func reportID(h mail.Header, raw []byte) string {
	if id := messageID(h.Get("Message-Id")); id != "" {
		return id
	}
	sum := sha256.Sum256(raw)
	return "sha256:" + hex.EncodeToString(sum[:16])
}

// walk looks through the parts of one multipart body, and those nested in it,
// for the status part and the returned message.
func (r *report) walk(body io.Reader, boundary string, depth int) error {
	if boundary == "" {
		return errors.New("multipart without a boundary")
	}
	if depth > maxDepth {
		return nil
	}
	mr := multipart.NewReader(body, boundary)
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("MIME part: %w", err)
		}
		mediaType, params := mediaType(p.Header.Get("Content-Type"))
		content := decode(p)
		switch {
		case strings.HasPrefix(mediaType, "multipart/"):
			if err := r.walk(content, params["boundary"], depth+1); err != nil && r.status == nil {
				return err
			}
		case r.status == nil && (mediaType == typeDeliveryStatus || mediaType == typeGlobalDeliveryStatus || mediaType == typeFeedbackReport):
			status, err := io.ReadAll(io.LimitReader(content, maxStatusBytes))
			if err != nil && len(status) == 0 {
				return fmt.Errorf("%s part: %w", mediaType, err)
			}
			r.statusType, r.status = mediaType, status
		case r.original == nil && originalTypes[mediaType]:
			// What arrived of a returned message cut short still counts.
			head, _ := io.ReadAll(io.LimitReader(content, maxHeaderBytes))
			if m, err := mail.ReadMessage(bytes.NewReader(head)); err == nil {
				r.original = m.Header
			}
		}
	}
}

// mediaType parses a Content-Type, lower-cased; a part without one is
// text/plain (RFC 2045).
func mediaType(v string) (string, map[string]string) {
	if strings.TrimSpace(v) == "" {
		return "text/plain", nil
	}
	t, params, err := mime.ParseMediaType(v)
	if err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter) {
		return "", nil
	}
	return strings.ToLower(t), params
}

// decode undoes a part's base64 transfer encoding; multipart already undoes
// quoted-printable.
func decode(p *multipart.Part) io.Reader {
	if strings.EqualFold(strings.TrimSpace(p.Header.Get("Content-Transfer-Encoding")), "base64") {
		return base64.NewDecoder(base64.StdEncoding, p)
	}
	return p
}

// groups splits a status part into its blocks of fields (separated by blank
// lines) and parses each as a header. A block that does not parse is an error
// of its own; the others go on.
func groups(status []byte) ([]mail.Header, []error) {
	text := strings.ReplaceAll(string(status), "\r\n", "\n")
	var out []mail.Header
	var errs []error
	var block strings.Builder
	n := 0
	flush := func() {
		if block.Len() == 0 {
			return
		}
		n++
		block.WriteString("\n")
		m, err := mail.ReadMessage(strings.NewReader(block.String()))
		if err != nil {
			errs = append(errs, fmt.Errorf("block %d: %w", n, err))
		} else {
			out = append(out, m.Header)
		}
		block.Reset()
	}
	for line := range strings.SplitSeq(text, "\n") {
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		block.WriteString(line)
		block.WriteString("\n")
	}
	flush()
	return out, errs
}

// address takes the address out of a typed field ("rfc822; reader@example.org")
// or a plain one ("<reader@example.org>"), lower-cased.
func address(v string) string {
	if typ, rest, ok := strings.Cut(v, ";"); ok && !strings.Contains(typ, "@") {
		v = rest
	}
	v = strings.TrimSpace(v)
	if a, err := mail.ParseAddress(v); err == nil {
		return strings.ToLower(a.Address)
	}
	v = strings.TrimSuffix(strings.TrimPrefix(v, "<"), ">")
	if strings.ContainsAny(v, " \t<>") || !strings.Contains(v, "@") {
		return ""
	}
	return strings.ToLower(v)
}

// messageID strips the angle brackets and spaces off a Message-ID.
func messageID(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, '<'); i >= 0 {
		if j := strings.IndexByte(v[i:], '>'); j > 0 {
			return v[i+1 : i+j]
		}
	}
	if strings.ContainsAny(v, " \t<>") {
		return ""
	}
	return v
}

// date parses an RFC 5322 date into UTC, zero when absent or bad.
func date(v string) time.Time {
	t, err := mail.ParseDate(strings.TrimSpace(v))
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

// verpCandidates are the header fields that may hold the VERP address a
// report came back to, best first.
var verpCandidates = []string{"Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To"}

// verpRecipient decodes the reader's address from wherever the report shows
// the return path: extra (fields of the report itself, such as ARF's
// Original-Mail-From), the returned message's Return-Path, then the headers
// the report was delivered under.
func (r *report) verpRecipient(verp VERP, extra ...string) string {
	try := append([]string(nil), extra...)
	if r.original != nil {
		try = append(try, r.original.Get("Return-Path"))
	}
	for _, field := range verpCandidates {
		try = append(try, r.header[field]...)
	}
	for _, v := range try {
		if v == "" {
			continue
		}
		if list, err := mail.ParseAddressList(v); err == nil {
			for _, a := range list {
				if reader, ok := verp.Decode(a.Address); ok {
					return reader
				}
			}
			continue
		}
		if reader, ok := verp.Decode(address(v)); ok {
			return reader
		}
	}
	return ""
}

// originalMessageID is the Message-ID of the returned message, or what the
// report's own fields say it was.
func (r *report) originalMessageID(fields mail.Header) string {
	if r.original != nil {
		if id := messageID(r.original.Get("Message-Id")); id != "" {
			return id
		}
	}
	if fields != nil {
		return messageID(fields.Get("X-Original-Message-Id")) // Gmail adds it to its per-message fields
	}
	return ""
}
