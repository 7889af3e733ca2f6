package bounce

import (
	"fmt"
	"net/mail"
	"strings"
	"time"
)

// ARF is a feedback report (RFC 5965): most often a reader who pressed
// "report spam" at their mailbox provider.
type ARF struct {
	// ID is the report's own Message-ID (or a digest of its bytes).
	ID string
	// FeedbackType: abuse, fraud, virus, other, not-spam, auth-failure
	// (lower case).
	FeedbackType string
	UserAgent    string
	Version      string
	// OriginalMailFrom is the return path the digest went out with.
	OriginalMailFrom string
	// OriginalRcptTo are the recipients the provider names; providers often
	// leave them out or redact them.
	OriginalRcptTo []string
	ReportingMTA   string
	SourceIP       string
	ArrivalDate    time.Time
	// MessageID is the reported message's Message-ID, without angle brackets.
	MessageID string
	// VERPRecipient is the reader's address decoded from the return path.
	VERPRecipient string
	// OriginalTo is the reported message's To address, when not redacted.
	OriginalTo string
	// ListUnsubscribe is the reported message's List-Unsubscribe header:
	// its link carries the reader's signed token.
	ListUnsubscribe string
	Date            time.Time
}

// complaintTypes are the feedback types that mean "this reader does not want
// this mail"; not-spam, virus and auth-failure reports do not.
var complaintTypes = map[string]bool{"abuse": true, "fraud": true}

// ParseARF reads a feedback report. verp decodes the return path (see
// ParseDSN). A message that is not a feedback report gives ErrNotReport.
func ParseARF(raw []byte, verp VERP) (*ARF, error) {
	r, err := readReport(raw)
	if err != nil {
		return nil, err
	}
	if r.statusType != typeFeedbackReport {
		return nil, fmt.Errorf("%w: a %s, not a feedback report", ErrNotReport, r.statusType)
	}
	return r.arf(verp)
}

func (r *report) arf(verp VERP) (*ARF, error) {
	blocks, errs := groups(r.status)
	if len(errs) > 0 {
		return nil, fmt.Errorf("arf %s: %s: %w", r.id, typeFeedbackReport, errs[0])
	}
	fields := mail.Header{}
	for _, b := range blocks {
		for k, v := range b {
			fields[k] = append(fields[k], v...)
		}
	}
	a := &ARF{
		ID:               r.id,
		FeedbackType:     strings.ToLower(strings.TrimSpace(fields.Get("Feedback-Type"))),
		UserAgent:        strings.TrimSpace(fields.Get("User-Agent")),
		Version:          strings.TrimSpace(fields.Get("Version")),
		OriginalMailFrom: address(fields.Get("Original-Mail-From")),
		ReportingMTA:     typedValue(fields.Get("Reporting-Mta")),
		SourceIP:         strings.TrimSpace(fields.Get("Source-Ip")),
		ArrivalDate:      date(fields.Get("Arrival-Date")),
		MessageID:        r.originalMessageID(fields),
		Date:             date(r.header.Get("Date")),
	}
	if a.FeedbackType == "" {
		return nil, fmt.Errorf("arf %s: no Feedback-Type", r.id)
	}
	for _, v := range fields["Original-Rcpt-To"] {
		if addr := address(v); addr != "" {
			a.OriginalRcptTo = append(a.OriginalRcptTo, addr)
		}
	}
	if r.original != nil {
		if list, err := r.original.AddressList("To"); err == nil && len(list) == 1 {
			a.OriginalTo = strings.ToLower(list[0].Address)
		}
		a.ListUnsubscribe = strings.TrimSpace(r.original.Get("List-Unsubscribe"))
	}
	a.VERPRecipient = r.verpRecipient(verp, fields.Get("Original-Mail-From"))
	return a, nil
}

// Events gives one complaint for an abuse or fraud report, none for other
// feedback types.
func (a *ARF) Events() []Event {
	if !complaintTypes[a.FeedbackType] {
		return nil
	}
	who := a.VERPRecipient
	if who == "" && len(a.OriginalRcptTo) > 0 {
		who = a.OriginalRcptTo[0]
	}
	if who == "" {
		who = a.OriginalTo
	}
	at := a.ArrivalDate
	if at.IsZero() {
		at = a.Date
	}
	return []Event{{Source: "arf", ID: a.ID, Kind: Complaint, Recipient: who, MessageID: a.MessageID,
		Diagnostic: "feedback-type " + a.FeedbackType, At: at}}
}
