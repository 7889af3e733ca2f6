// Package mail builds one MIME message (headers, List-*, DKIM) and sends it
// through a transport: an outbox directory or an SMTP server.
package mail

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"net/textproto"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	gomail "github.com/wneessen/go-mail"
	"golang.org/x/net/idna"

	"publisher/internal/valid"
)

// ErrInvalidMessage marks every problem Validate finds; sending such a
// message again can never succeed.
var ErrInvalidMessage = errors.New("invalid message")

// Address is a mailbox with an optional display name.
type Address struct {
	Name  string
	Email string
}

// Message is one email, already personalised. Every string field except
// Text and HTML ends up in a header, so Validate refuses control characters
// in them: v0.8.1 of go-mail writes some headers without checking.
type Message struct {
	From    Address
	To      Address
	ReplyTo Address // optional
	Subject string
	Date    time.Time // zero means now
	// MessageID is the id without angle brackets, e.g. "d12.s34@example.org".
	// It must be stable for one digest and subscriber: the file transport
	// names its files after it.
	MessageID string
	// ListID is "phrase <list.id.example.org>" or just "list.id.example.org".
	ListID string
	// UnsubscribeURL is the RFC 8058 one-click https endpoint; with it the
	// message carries List-Unsubscribe-Post too. Plain http is accepted for a
	// loopback host only, and then without List-Unsubscribe-Post.
	UnsubscribeURL string
	// UnsubscribeMailto is a "mailto:" URI added to List-Unsubscribe.
	UnsubscribeMailto string
	Text              string // required
	HTML              string // optional; with it the message is multipart/alternative
	// TextParts and HTMLParts may give Text and HTML cut where one reader's
	// copy differs from the next: shared, personal, shared, ..., shared.
	// Shared parts that are the same strings (the same memory) from message
	// to message are encoded once per Sender rather than once per message.
	// Parts that do not join into the body are ignored.
	TextParts, HTMLParts []string
	// Headers holds extra header fields. Fields this package writes itself
	// cannot be replaced through it.
	Headers map[string]string
}

// reservedHeaders are written by Build; letting Headers set them would allow
// a second From or a forged signature.
var reservedHeaders = map[string]bool{
	"From": true, "To": true, "Cc": true, "Bcc": true, "Reply-To": true, "Sender": true,
	"Subject": true, "Date": true, "Message-Id": true, "Mime-Version": true,
	"Content-Type": true, "Content-Transfer-Encoding": true, "Content-Disposition": true,
	"List-Id": true, "List-Unsubscribe": true, "List-Unsubscribe-Post": true,
	"Dkim-Signature": true, "Return-Path": true, "Received": true,
}

// Validate reports every problem with m, each naming its field, joined into
// one error that wraps ErrInvalidMessage.
func (m *Message) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrInvalidMessage, field, fmt.Sprintf(format, args...)))
	}
	check := func(field, value string) bool {
		if err := headerSafe(value); err != nil {
			bad(field, "%v", err)
			return false
		}
		return true
	}

	if _, err := mailbox("From", m.From); err != nil {
		errs = append(errs, err)
	}
	if _, err := mailbox("To", m.To); err != nil {
		errs = append(errs, err)
	}
	if m.ReplyTo != (Address{}) {
		if _, err := mailbox("ReplyTo", m.ReplyTo); err != nil {
			errs = append(errs, err)
		}
	}
	check("Subject", m.Subject)

	if check("MessageID", m.MessageID) {
		if err := checkMessageID(m.MessageID); err != nil {
			bad("MessageID", "%v", err)
		}
	}
	if m.ListID != "" && check("ListID", m.ListID) {
		if _, _, err := splitListID(m.ListID); err != nil {
			bad("ListID", "%v", err)
		}
	}
	if m.UnsubscribeURL != "" && check("UnsubscribeURL", m.UnsubscribeURL) {
		if err := checkUnsubscribeURL(m.UnsubscribeURL); err != nil {
			bad("UnsubscribeURL", "%v", err)
		}
	}
	if m.UnsubscribeMailto != "" && check("UnsubscribeMailto", m.UnsubscribeMailto) {
		if err := checkMailto(m.UnsubscribeMailto); err != nil {
			bad("UnsubscribeMailto", "%v", err)
		}
	}
	for name, value := range m.Headers {
		field := "Headers[" + fmt.Sprintf("%q", name) + "]"
		if err := checkFieldName(name); err != nil {
			bad(field, "%v", err)
			continue
		}
		if reservedHeaders[textproto.CanonicalMIMEHeaderKey(name)] {
			bad(field, "header is written by the mail package itself")
			continue
		}
		check(field, value)
	}

	if strings.TrimSpace(m.Text) == "" {
		bad("Text", "the text part is empty")
	} else if !utf8.ValidString(m.Text) {
		bad("Text", "not valid UTF-8")
	}
	if m.HTML != "" && !utf8.ValidString(m.HTML) {
		bad("HTML", "not valid UTF-8")
	}
	return errors.Join(errs...)
}

// headerSafe refuses anything that could end a header line or confuse a
// reader: C0/C1 controls (CR, LF, TAB, NUL...), Unicode line and paragraph
// separators, and invalid UTF-8.
func headerSafe(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	for i, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return fmt.Errorf("control character %U at byte %d", r, i)
		}
	}
	return nil
}

// mailbox validates one address and returns it ready for a header: the
// domain in ASCII (IDNA A-labels), so neither the header nor RCPT TO needs
// SMTPUTF8 for an internationalised domain.
func mailbox(field string, a Address) (*mail.Address, error) {
	bad := func(sub, format string, args ...any) error {
		return fmt.Errorf("%w: %s.%s: %s", ErrInvalidMessage, field, sub, fmt.Sprintf(format, args...))
	}
	if err := headerSafe(a.Name); err != nil {
		return nil, bad("Name", "%v", err)
	}
	if err := headerSafe(a.Email); err != nil {
		return nil, bad("Email", "%v", err)
	}
	if a.Email == "" {
		return nil, bad("Email", "empty")
	}
	parsed, err := mail.ParseAddress(a.Email)
	if err != nil {
		return nil, bad("Email", "%q: %v", a.Email, err)
	}
	if parsed.Name != "" || parsed.Address != strings.TrimSpace(a.Email) {
		return nil, bad("Email", "%q: give the bare address; the display name goes in Name", a.Email)
	}
	at := strings.LastIndexByte(parsed.Address, '@')
	local, domain := parsed.Address[:at], parsed.Address[at+1:]
	ascii, err := idna.Lookup.ToASCII(domain)
	if err != nil {
		return nil, bad("Email", "%q: domain: %v", a.Email, err)
	}
	return &mail.Address{Name: a.Name, Address: local + "@" + ascii}, nil
}

// checkMessageID accepts dot-atom@dot-atom (RFC 5322 msg-id without the
// brackets), which is also what the file transport can name a file after.
func checkMessageID(id string) error {
	if id == "" {
		return errors.New("empty")
	}
	if strings.ContainsAny(id, "<>") {
		return fmt.Errorf("%q: give the id without angle brackets", id)
	}
	left, right, ok := strings.Cut(id, "@")
	if !ok || !isDotAtom(left) || !isDotAtom(right) {
		return fmt.Errorf("%q: want dot-atom@dot-atom, e.g. d12.s34@example.org", id)
	}
	return nil
}

func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-/=?^_`{|}~.", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// splitListID splits "phrase <id>" (RFC 2919) into its phrase and id.
func splitListID(s string) (phrase, id string, err error) {
	s = strings.TrimSpace(s)
	if open := strings.LastIndexByte(s, '<'); open >= 0 {
		if !strings.HasSuffix(s, ">") {
			return "", "", fmt.Errorf("%q: want \"phrase <list.id>\"", s)
		}
		phrase, id = strings.TrimSpace(s[:open]), s[open+1:len(s)-1]
	} else {
		id = s
	}
	if strings.ContainsAny(phrase, "<>") || !isDotAtom(id) || !strings.Contains(id, ".") {
		return "", "", fmt.Errorf("%q: want \"phrase <list.id.example.org>\"", s)
	}
	return phrase, id, nil
}

// formatListID quotes the phrase the way RFC 2919 wants it: encoded words
// for non-ASCII, a quoted string when it holds specials.
func formatListID(s string) string {
	phrase, id, _ := splitListID(s)
	if phrase == "" {
		return "<" + id + ">"
	}
	return encodePhrase(phrase) + " <" + id + ">"
}

func encodePhrase(p string) string {
	for _, r := range p {
		if r >= utf8.RuneSelf {
			return mime.QEncoding.Encode("utf-8", p)
		}
	}
	if strings.ContainsAny(p, "()<>[]:;@\\,.\"") {
		return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(p) + `"`
	}
	return p
}

// uriUnsafe are characters that would break out of the <...> that wrap each
// URI in List-Unsubscribe or split it into two URIs.
const uriUnsafe = "<>,\" "

func checkUnsubscribeURL(raw string) error {
	if strings.ContainsAny(raw, uriUnsafe) || !isASCII(raw) {
		return fmt.Errorf("%q: contains a character not allowed in List-Unsubscribe (escape it)", raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	// RFC 8058 wants https; plain http is let through only for a loopback host,
	// where a local trial (file outbox, Mailpit) has no certificate to offer.
	if u.Host == "" || (u.Scheme != "https" && (u.Scheme != "http" || !valid.LoopbackHost(u.Hostname()))) {
		return fmt.Errorf("%q: one-click unsubscribe needs an https URL (RFC 8058)", raw)
	}
	return nil
}

func checkMailto(raw string) error {
	if strings.ContainsAny(raw, uriUnsafe) || !isASCII(raw) {
		return fmt.Errorf("%q: contains a character not allowed in List-Unsubscribe (escape it)", raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Scheme != "mailto" || u.Opaque == "" {
		return fmt.Errorf("%q: want mailto:address", raw)
	}
	addr, err := url.PathUnescape(u.Opaque)
	if err != nil {
		return fmt.Errorf("%q: %v", raw, err)
	}
	if _, err := mail.ParseAddress(addr); err != nil {
		return fmt.Errorf("%q: %v", raw, err)
	}
	return nil
}

func checkFieldName(name string) error {
	if name == "" {
		return errors.New("empty header name")
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 33 || c > 126 || c == ':' {
			return fmt.Errorf("header name has character %q at byte %d", c, i)
		}
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// buildHeader validates m and turns it into a go-mail message that holds
// the header fields alone: go-mail encodes and folds them, and writeBody adds
// the body, whose encoding it can cache between messages (go-mail would
// encode every body afresh).
func buildHeader(m *Message) (*gomail.Msg, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())

	// Validate already accepted these, so the errors cannot happen here.
	from, _ := mailbox("From", m.From)
	to, _ := mailbox("To", m.To)
	msg.FromMailAddress(from)
	msg.ToMailAddress(to)
	if m.ReplyTo != (Address{}) {
		replyTo, _ := mailbox("ReplyTo", m.ReplyTo)
		msg.ReplyToMailAddress(replyTo)
	}
	msg.Subject(m.Subject)
	date := m.Date
	if date.IsZero() {
		date = time.Now()
	}
	msg.SetDateWithValue(date)
	msg.SetMessageIDWithValue(m.MessageID)
	// Bulk mail: keeps auto-replies (vacation notices) from answering a digest.
	msg.SetBulk()

	if m.ListID != "" {
		msg.SetGenHeaderPreformatted("List-Id", formatListID(m.ListID))
	}
	switch {
	case strings.HasPrefix(m.UnsubscribeURL, "http:"):
		// A loopback trial (Validate lets plain http through only there): the link
		// is listed, but one-click (RFC 8058) is claimed for https alone.
		uris := []string{m.UnsubscribeURL}
		if m.UnsubscribeMailto != "" {
			uris = append(uris, m.UnsubscribeMailto)
		}
		msg.SetListUnsubscribe(uris...)
	case m.UnsubscribeURL != "":
		var extra []string
		if m.UnsubscribeMailto != "" {
			extra = append(extra, m.UnsubscribeMailto)
		}
		if err := msg.SetListUnsubscribeOneClick(m.UnsubscribeURL, extra...); err != nil {
			return nil, fmt.Errorf("%w: UnsubscribeURL: %w", ErrInvalidMessage, err)
		}
	case m.UnsubscribeMailto != "":
		msg.SetListUnsubscribe(m.UnsubscribeMailto)
	}
	for name, value := range m.Headers {
		msg.SetGenHeader(gomail.Header(textproto.CanonicalMIMEHeaderKey(name)), value)
	}

	return msg, nil
}

// Render returns m as raw RFC 5322 bytes (CRLF line ends), DKIM-signed
// when dkim is not nil. These are the exact bytes both transports deliver.
func Render(m *Message, dkim *DKIM) ([]byte, error) {
	var buf bytes.Buffer
	return renderInto(&buf, nil, m, dkim)
}

// renderInto renders m into buf, which callers may reuse between messages,
// and returns the bytes to send: buf's own bytes when dkim is nil. enc may
// be nil.
func renderInto(buf *bytes.Buffer, enc *bodyEncoder, m *Message, dkim *DKIM) ([]byte, error) {
	msg, err := buildHeader(m)
	if err != nil {
		return nil, err
	}
	buf.Grow(len(m.Text) + len(m.HTML)*11/10 + 2048)
	if _, err := msg.WriteTo(buf); err != nil {
		return nil, fmt.Errorf("render message %s: %w", m.MessageID, err)
	}
	if err := writeBody(buf, enc, m); err != nil {
		return nil, fmt.Errorf("render message %s: %w", m.MessageID, err)
	}
	if dkim == nil {
		return buf.Bytes(), nil
	}
	signed, err := dkim.sign(buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("render message %s: %w", m.MessageID, err)
	}
	return signed, nil
}

// WriteTo writes what Render returns.
func WriteTo(w io.Writer, m *Message, dkim *DKIM) (int64, error) {
	raw, err := Render(m, dkim)
	if err != nil {
		return 0, err
	}
	n, err := w.Write(raw)
	if err != nil {
		return int64(n), fmt.Errorf("write message %s: %w", m.MessageID, err)
	}
	return int64(n), nil
}

// envelope returns the SMTP MAIL FROM and RCPT TO addresses, with
// internationalised domains in ASCII.
func (m *Message) envelope() (from, to string, err error) {
	f, err := mailbox("From", m.From)
	if err != nil {
		return "", "", err
	}
	t, err := mailbox("To", m.To)
	if err != nil {
		return "", "", err
	}
	return f.Address, t.Address, nil
}
