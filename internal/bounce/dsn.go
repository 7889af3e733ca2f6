package bounce

import (
	"errors"
	"fmt"
	"net/mail"
	"strconv"
	"strings"
	"time"

	pubmail "publisher/internal/mail"
)

// DSN is a delivery status notification (RFC 3464).
type DSN struct {
	// ID is the notification's own Message-ID (or a digest of its bytes).
	ID           string
	ReportingMTA string
	// EnvelopeID is the ENVID the original was sent with, when the server
	// kept it (Original-Envelope-Id).
	EnvelopeID string
	// MessageID is the returned message's Message-ID, without angle brackets.
	MessageID string
	// VERPRecipient is the reader's address decoded from the VERP return
	// path the notification came back to; empty when it is not VERP-style.
	VERPRecipient string
	// Date is the notification's Date header.
	Date       time.Time
	Recipients []Recipient
	// Problems are recipient blocks that could not be read; the others were.
	Problems []string
}

// Recipient is one recipient block of a DSN.
type Recipient struct {
	FinalRecipient    string // lower-cased address
	OriginalRecipient string // lower-cased address; empty when not given
	// Action: failed, delayed, delivered, relayed or expanded (lower case).
	Action string
	// Status is the RFC 3463 code ("5.1.1"). Where the field says only
	// X.0.0 and the diagnostic is more precise, the diagnostic's.
	Status string
	// DiagnosticType ("smtp", "x-postfix", ...) and Diagnostic (the server's
	// reply, "550 5.1.1 ...") come from Diagnostic-Code.
	DiagnosticType string
	Diagnostic     string
	RemoteMTA      string
	LastAttempt    time.Time
	// Cause says whose problem a failure is (see mail.ClassifyStatus).
	Cause pubmail.Cause
}

// Actions a recipient block may report.
var actions = map[string]bool{"failed": true, "delayed": true, "delivered": true, "relayed": true, "expanded": true}

// ParseDSN reads a delivery status notification. verp decodes the return
// path the notification came back to (the zero VERP accepts any
// "prefix+local=domain@host" address). A message that is not a DSN gives
// ErrNotReport; a DSN none of whose recipient blocks can be read, an error
// naming each.
func ParseDSN(raw []byte, verp VERP) (*DSN, error) {
	r, err := readReport(raw)
	if err != nil {
		return nil, err
	}
	if r.statusType != typeDeliveryStatus && r.statusType != typeGlobalDeliveryStatus {
		return nil, fmt.Errorf("%w: a %s, not a delivery status notification", ErrNotReport, r.statusType)
	}
	return r.dsn(verp)
}

func (r *report) dsn(verp VERP) (*DSN, error) {
	blocks, errs := groups(r.status)
	d := &DSN{ID: r.id, Date: date(r.header.Get("Date"))}
	for _, err := range errs {
		d.Problems = append(d.Problems, err.Error())
	}
	perMessage := mail.Header{}
	for i, b := range blocks {
		if b.Get("Final-Recipient") == "" && b.Get("Action") == "" {
			// The per-message fields (a server may split them, or put
			// them after the recipients: take them wherever they are).
			for k, v := range b {
				perMessage[k] = append(perMessage[k], v...)
			}
			continue
		}
		rec, err := recipient(b)
		if err != nil {
			d.Problems = append(d.Problems, fmt.Sprintf("block %d: %v", i+1, err))
			continue
		}
		d.Recipients = append(d.Recipients, rec)
	}
	d.ReportingMTA = typedValue(perMessage.Get("Reporting-Mta"))
	d.EnvelopeID = strings.TrimSpace(perMessage.Get("Original-Envelope-Id"))
	d.MessageID = r.originalMessageID(perMessage)
	d.VERPRecipient = r.verpRecipient(verp)
	if len(d.Recipients) == 0 {
		if len(d.Problems) == 0 {
			return nil, errors.New("dsn " + d.ID + ": no recipient block")
		}
		return nil, fmt.Errorf("dsn %s: no readable recipient block: %s", d.ID, strings.Join(d.Problems, "; "))
	}
	return d, nil
}

// recipient reads one recipient block.
func recipient(b mail.Header) (Recipient, error) {
	rec := Recipient{
		FinalRecipient:    address(b.Get("Final-Recipient")),
		OriginalRecipient: address(b.Get("Original-Recipient")),
		Action:            strings.ToLower(strings.TrimSpace(b.Get("Action"))),
		RemoteMTA:         typedValue(b.Get("Remote-Mta")),
		LastAttempt:       date(b.Get("Last-Attempt-Date")),
	}
	if rec.FinalRecipient == "" {
		return rec, fmt.Errorf("field Final-Recipient %q is not an address", b.Get("Final-Recipient"))
	}
	// Some servers add a comment: "failed (bad mailbox)".
	rec.Action, _, _ = strings.Cut(rec.Action, " ")
	if !actions[rec.Action] {
		return rec, fmt.Errorf("field Action %q: want failed, delayed, delivered, relayed or expanded", b.Get("Action"))
	}
	if typ, text, ok := strings.Cut(b.Get("Diagnostic-Code"), ";"); ok {
		rec.DiagnosticType = strings.ToLower(strings.TrimSpace(typ))
		rec.Diagnostic = strings.Join(strings.Fields(text), " ")
	}
	status := b.Get("Status")
	if status != "" && pubmail.EnhancedCode(strings.TrimSpace(status)) == "" {
		return rec, fmt.Errorf("field Status %q is not a status code such as 5.1.1", status)
	}
	code, _ := replyCode(rec.Diagnostic)
	rec.Cause, rec.Status = Classify(status, rec.Diagnostic)
	if rec.Status == "" && code == 0 {
		return rec, errors.New("neither a Status nor an SMTP diagnostic")
	}
	return rec, nil
}

// Classify judges a failure reported with an RFC 3463 status ("5.1.1", or "")
// and a server's reply ("550 5.1.1 ...", with or without a "smtp;" type in
// front), and returns the status it went by: where the status says only
// X.0.0 (Exim's "5.0.0", whatever the remote server said), or nothing, the
// reply's own enhanced code.
func Classify(status, diagnostic string) (pubmail.Cause, string) {
	if typ, rest, ok := strings.Cut(diagnostic, ";"); ok && !strings.ContainsAny(typ, " \t") {
		diagnostic = rest
	}
	diagnostic = strings.Join(strings.Fields(diagnostic), " ")
	code, text := replyCode(diagnostic)
	status = pubmail.EnhancedCode(strings.TrimSpace(status))
	if diag := pubmail.EnhancedCode(text); diag != "" && (status == "" ||
		(strings.HasSuffix(status, ".0.0") && diag[0] == status[0])) {
		status = diag
	}
	return pubmail.ClassifyStatus(code, status, text), status
}

// replyCode splits "550 5.1.1 text" (or "550-5.1.1 text") into its reply code
// and the rest; 0 and the whole when it does not start with one.
func replyCode(s string) (int, string) {
	if len(s) >= 3 && (len(s) == 3 || s[3] == ' ' || s[3] == '-') {
		if code, err := strconv.Atoi(s[:3]); err == nil && code >= 200 && code < 600 {
			return code, strings.TrimSpace(s[min(len(s), 4):])
		}
	}
	return 0, s
}

// typedValue drops the type of a typed field ("dns; mx.example.org").
func typedValue(v string) string {
	if _, rest, ok := strings.Cut(v, ";"); ok {
		v = rest
	}
	return strings.TrimSpace(v)
}

// Events turns each recipient block into an event.
func (d *DSN) Events() []Event {
	var out []Event
	for _, rec := range d.Recipients {
		kind := Delivered
		switch rec.Action {
		case "failed":
			kind = FailureKind(rec.Cause)
		case "delayed":
			kind = Delayed
		}
		who := d.VERPRecipient
		if who == "" {
			who = rec.OriginalRecipient
		}
		if who == "" {
			who = rec.FinalRecipient
		}
		at := rec.LastAttempt
		if at.IsZero() {
			at = d.Date
		}
		out = append(out, Event{
			Source: "dsn", ID: d.ID + "/" + rec.FinalRecipient + "/" + rec.Action, Kind: kind,
			Recipient: who, MessageID: d.MessageID, Status: rec.Status, Diagnostic: rec.Diagnostic, At: at,
		})
	}
	return out
}
