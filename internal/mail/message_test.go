package mail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"testing"
	"time"
)

var testDate = time.Date(2026, 3, 14, 9, 30, 0, 0, time.FixedZone("CET", 3600))

func sampleMessage(i int) *Message {
	return &Message{
		From:              Address{Name: "Analysis Desk — Zoë", Email: "desk@example.org"},
		To:                Address{Name: fmt.Sprintf("Jürgen Ångström %d", i), Email: fmt.Sprintf("reader%d@example.net", i)},
		ReplyTo:           Address{Name: "Desk editors", Email: "editors@example.org"},
		Subject:           "Über den Haushalt: Café-Steuer, 日本語の見出し + 3 more",
		Date:              testDate,
		MessageID:         fmt.Sprintf("d12.s%d@example.org", i),
		ListID:            "Desk digest <digest.example.org>",
		UnsubscribeURL:    fmt.Sprintf("https://example.org/unsubscribe?s=%d&t=abc123", i),
		UnsubscribeMailto: fmt.Sprintf("mailto:unsubscribe@example.org?subject=unsubscribe-%d", i),
		Text:              "Hello Jürgen,\n\nThree pieces this week.\n\nUnsubscribe: https://example.org/unsubscribe\n",
		HTML:              "<!doctype html><html><body><p>Hello J&uuml;rgen,</p><p>Three pieces this week. Größe ✓</p></body></html>",
	}
}

// parsed is a received message taken apart the way a mail client would.
type parsed struct {
	Header mail.Header
	Parts  []part
	Raw    []byte
}

type part struct {
	ContentType string
	Params      map[string]string
	Body        string
}

func parseMessage(t testing.TB, raw []byte) parsed {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("message does not parse: %v\n%s", err, raw)
	}
	p := parsed{Header: msg.Header, Raw: raw}
	mediaType, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("Content-Type %q: %v", msg.Header.Get("Content-Type"), err)
	}
	if !strings.HasPrefix(mediaType, "multipart/") {
		body, err := io.ReadAll(msg.Body)
		if err != nil {
			t.Fatal(err)
		}
		p.Parts = append(p.Parts, part{ContentType: mediaType, Params: params, Body: string(body)})
		return p
	}
	if mediaType != "multipart/alternative" {
		t.Fatalf("Content-Type %q, want multipart/alternative", mediaType)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		// NextPart decodes quoted-printable bodies for us.
		mp, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("multipart: %v", err)
		}
		ct, ctParams, err := mime.ParseMediaType(mp.Header.Get("Content-Type"))
		if err != nil {
			t.Fatalf("part Content-Type: %v", err)
		}
		body, err := io.ReadAll(mp)
		if err != nil {
			t.Fatal(err)
		}
		p.Parts = append(p.Parts, part{ContentType: ct, Params: ctParams, Body: string(body)})
	}
	return p
}

// assertMessage checks every header and both parts of a message built from m.
func assertMessage(t testing.TB, raw []byte, m *Message) {
	t.Helper()
	p := parseMessage(t, raw)
	h := p.Header

	// Header lines must be plain ASCII: names and subject as encoded words.
	head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	for i, c := range head {
		if c >= 0x80 {
			t.Fatalf("non-ASCII byte %#x in header at %d:\n%s", c, i, head)
		}
	}

	addr := func(name string) *mail.Address {
		list, err := h.AddressList(name)
		if err != nil || len(list) != 1 {
			t.Fatalf("%s %q: %v (%d addresses)", name, h.Get(name), err, len(list))
		}
		return list[0]
	}
	for _, c := range []struct {
		header string
		want   Address
	}{{"From", m.From}, {"To", m.To}, {"Reply-To", m.ReplyTo}} {
		got := addr(c.header)
		if got.Name != c.want.Name || got.Address != c.want.Email {
			t.Errorf("%s = %q <%s>, want %q <%s>", c.header, got.Name, got.Address, c.want.Name, c.want.Email)
		}
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
	if err != nil || subject != m.Subject {
		t.Errorf("Subject decodes to %q (%v), want %q", subject, err, m.Subject)
	}
	date, err := h.Date()
	if err != nil || !date.Equal(m.Date) {
		t.Errorf("Date %q = %v (%v), want %v", h.Get("Date"), date, err, m.Date)
	}
	wantHeaders := map[string]string{
		"Message-Id":            "<" + m.MessageID + ">",
		"List-Id":               m.ListID,
		"List-Unsubscribe":      "<" + m.UnsubscribeURL + ">, <" + m.UnsubscribeMailto + ">",
		"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
		"Mime-Version":          "1.0",
		"Precedence":            "bulk",
	}
	for name, want := range wantHeaders {
		if got := h.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
		if n := len(h[name]); n != 1 {
			t.Errorf("%s appears %d times", name, n)
		}
	}

	if len(p.Parts) != 2 {
		t.Fatalf("%d parts, want 2", len(p.Parts))
	}
	text, html := p.Parts[0], p.Parts[1]
	if text.ContentType != "text/plain" || !strings.EqualFold(text.Params["charset"], "utf-8") {
		t.Errorf("first part %s %v, want text/plain; charset=utf-8", text.ContentType, text.Params)
	}
	if html.ContentType != "text/html" || !strings.EqualFold(html.Params["charset"], "utf-8") {
		t.Errorf("second part %s %v, want text/html; charset=utf-8", html.ContentType, html.Params)
	}
	// Line ends are CRLF on the wire.
	if got, want := text.Body, strings.ReplaceAll(m.Text, "\n", "\r\n"); got != want {
		t.Errorf("text part = %q, want %q", got, want)
	}
	if html.Body != m.HTML {
		t.Errorf("html part = %q, want %q", html.Body, m.HTML)
	}
}

func TestWriteToProducesCompleteMessage(t *testing.T) {
	m := sampleMessage(7)
	var buf bytes.Buffer
	if _, err := WriteTo(&buf, m, nil); err != nil {
		t.Fatal(err)
	}
	assertMessage(t, buf.Bytes(), m)
	if bytes.Contains(buf.Bytes(), []byte("go-mail")) {
		t.Error("message advertises go-mail in a header")
	}
}

func TestTextOnlyMessageIsSinglePart(t *testing.T) {
	m := sampleMessage(1)
	m.HTML = ""
	var buf bytes.Buffer
	if _, err := WriteTo(&buf, m, nil); err != nil {
		t.Fatal(err)
	}
	p := parseMessage(t, buf.Bytes())
	if len(p.Parts) != 1 || p.Parts[0].ContentType != "text/plain" {
		t.Fatalf("parts %+v, want one text/plain", p.Parts)
	}
}

func TestListHeadersAreOptional(t *testing.T) {
	m := sampleMessage(1)
	m.ListID, m.UnsubscribeURL, m.UnsubscribeMailto, m.ReplyTo = "", "", "", Address{}
	var buf bytes.Buffer
	if _, err := WriteTo(&buf, m, nil); err != nil {
		t.Fatal(err)
	}
	h := parseMessage(t, buf.Bytes()).Header
	for _, name := range []string{"List-Id", "List-Unsubscribe", "List-Unsubscribe-Post", "Reply-To"} {
		if v, ok := h[name]; ok {
			t.Errorf("%s present: %q", name, v)
		}
	}

	// A mailto alone gives List-Unsubscribe without the one-click header,
	// which RFC 8058 reserves for https.
	m.UnsubscribeMailto = "mailto:leave@example.org"
	buf.Reset()
	if _, err := WriteTo(&buf, m, nil); err != nil {
		t.Fatal(err)
	}
	h = parseMessage(t, buf.Bytes()).Header
	if got := h.Get("List-Unsubscribe"); got != "<mailto:leave@example.org>" {
		t.Errorf("List-Unsubscribe = %q", got)
	}
	if _, ok := h["List-Unsubscribe-Post"]; ok {
		t.Error("List-Unsubscribe-Post without an https URL")
	}
}

func TestNonASCIIListNameIsEncoded(t *testing.T) {
	m := sampleMessage(1)
	m.ListID = "Schreibtisch Übersicht <digest.example.org>"
	var buf bytes.Buffer
	if _, err := WriteTo(&buf, m, nil); err != nil {
		t.Fatal(err)
	}
	got := parseMessage(t, buf.Bytes()).Header.Get("List-Id")
	decoded, err := new(mime.WordDecoder).DecodeHeader(got)
	if err != nil || decoded != m.ListID {
		t.Errorf("List-Id %q decodes to %q (%v), want %q", got, decoded, err, m.ListID)
	}
	if !strings.HasSuffix(got, " <digest.example.org>") {
		t.Errorf("List-Id %q: the id must stay outside the encoded word", got)
	}
}

func TestInternationalisedDomainBecomesALabel(t *testing.T) {
	m := sampleMessage(1)
	m.To = Address{Name: "Leser", Email: "leser@bücher.example"}
	var buf bytes.Buffer
	if _, err := WriteTo(&buf, m, nil); err != nil {
		t.Fatal(err)
	}
	to, err := parseMessage(t, buf.Bytes()).Header.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Address != "leser@xn--bcher-kva.example" {
		t.Fatalf("To = %v (%v), want leser@xn--bcher-kva.example", to, err)
	}
}

func TestExtraHeaders(t *testing.T) {
	m := sampleMessage(1)
	m.Headers = map[string]string{"X-Digest-Id": "12", "x-topic": "Wirtschaft – Größe"}
	var buf bytes.Buffer
	if _, err := WriteTo(&buf, m, nil); err != nil {
		t.Fatal(err)
	}
	h := parseMessage(t, buf.Bytes()).Header
	if got := h.Get("X-Digest-Id"); got != "12" {
		t.Errorf("X-Digest-Id = %q", got)
	}
	topic, _ := new(mime.WordDecoder).DecodeHeader(h.Get("X-Topic"))
	if topic != "Wirtschaft – Größe" {
		t.Errorf("X-Topic decodes to %q", topic)
	}
}

func TestValidateRefusesWhatCouldBreakAHeader(t *testing.T) {
	cases := []struct {
		name   string
		change func(m *Message)
		field  string
	}{
		{"CRLF in To name", func(m *Message) { m.To.Name = "Eve\r\nBcc: victim@example.com" }, "To.Name"},
		{"LF in From name", func(m *Message) { m.From.Name = "Desk\nX-Evil: 1" }, "From.Name"},
		{"CR in subject", func(m *Message) { m.Subject = "Hello\rBcc: x@example.com" }, "Subject"},
		{"LF in subject", func(m *Message) { m.Subject = "Hello\nBcc: x@example.com" }, "Subject"},
		{"NUL in subject", func(m *Message) { m.Subject = "Hello\x00" }, "Subject"},
		{"tab in subject", func(m *Message) { m.Subject = "a\tb" }, "Subject"},
		{"C1 control in name", func(m *Message) { m.To.Name = "a\u0085b" }, "To.Name"},
		{"line separator in subject", func(m *Message) { m.Subject = "a\u2028b" }, "Subject"},
		{"invalid UTF-8 in subject", func(m *Message) { m.Subject = "a\xffb" }, "Subject"},
		{"CRLF in Reply-To name", func(m *Message) { m.ReplyTo.Name = "x\r\nTo: y@example.com" }, "ReplyTo.Name"},
		{"CRLF in message id", func(m *Message) { m.MessageID = "a@b\r\nBcc: c@d" }, "MessageID"},
		{"CRLF in list id", func(m *Message) { m.ListID = "x <a.b>\r\nBcc: c@d" }, "ListID"},
		{"CRLF in unsubscribe URL", func(m *Message) { m.UnsubscribeURL = "https://e.org/u\r\nBcc: c@d" }, "UnsubscribeURL"},
		{"CRLF in mailto", func(m *Message) { m.UnsubscribeMailto = "mailto:u@e.org\r\nBcc: c@d" }, "UnsubscribeMailto"},
		{"CRLF in extra header", func(m *Message) { m.Headers = map[string]string{"X-A": "1\r\nBcc: c@d"} }, `Headers["X-A"]`},
		{"colon in extra header name", func(m *Message) { m.Headers = map[string]string{"Bcc: c@d\r\nX": "1"} }, "Headers"},
		{"extra header overrides From", func(m *Message) { m.Headers = map[string]string{"from": "eve@example.com"} }, `Headers["from"]`},
		{"extra DKIM-Signature", func(m *Message) { m.Headers = map[string]string{"DKIM-Signature": "v=1"} }, "Headers"},
		{"CRLF in address", func(m *Message) { m.To.Email = "a@example.com\r\nBcc: c@d" }, "To.Email"},
		{"two addresses", func(m *Message) { m.To.Email = "a@example.com, b@example.com" }, "To.Email"},
		{"name in address", func(m *Message) { m.To.Email = "Eve <a@example.com>" }, "To.Email"},
		{"not an address", func(m *Message) { m.To.Email = "not-an-address" }, "To.Email"},
		{"empty To", func(m *Message) { m.To.Email = "" }, "To.Email"},
		{"bad From", func(m *Message) { m.From.Email = "desk@" }, "From.Email"},
		{"message id with brackets", func(m *Message) { m.MessageID = "<a@b>" }, "MessageID"},
		{"message id without @", func(m *Message) { m.MessageID = "abc" }, "MessageID"},
		{"empty message id", func(m *Message) { m.MessageID = "" }, "MessageID"},
		{"http unsubscribe", func(m *Message) { m.UnsubscribeURL = "http://example.org/u" }, "UnsubscribeURL"},
		{"http unsubscribe off loopback", func(m *Message) { m.UnsubscribeURL = "http://localhost.example.org/u" }, "UnsubscribeURL"},
		{"unsubscribe URL with >", func(m *Message) { m.UnsubscribeURL = "https://example.org/u>, <https://evil.example" }, "UnsubscribeURL"},
		{"mailto not mailto", func(m *Message) { m.UnsubscribeMailto = "https://example.org" }, "UnsubscribeMailto"},
		{"list id without id", func(m *Message) { m.ListID = "Desk digest" }, "ListID"},
		{"empty text", func(m *Message) { m.Text = " \n" }, "Text"},
		{"invalid UTF-8 in HTML", func(m *Message) { m.HTML = "\xff" }, "HTML"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := sampleMessage(1)
			c.change(m)
			err := m.Validate()
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			if !errors.Is(err, ErrInvalidMessage) {
				t.Errorf("error %v does not wrap ErrInvalidMessage", err)
			}
			if !strings.Contains(err.Error(), c.field) {
				t.Errorf("error %q does not name field %s", err, c.field)
			}
			if Classify(err) != Permanent {
				t.Errorf("Classify = %v, want permanent", Classify(err))
			}
			var buf bytes.Buffer
			if _, err := WriteTo(&buf, m, nil); err == nil || buf.Len() != 0 {
				t.Errorf("WriteTo wrote %d bytes, err %v", buf.Len(), err)
			}
		})
	}
}

func TestValidateAcceptsOrdinaryMessages(t *testing.T) {
	for _, change := range []func(m *Message){
		func(m *Message) {},
		func(m *Message) { m.To.Name = `O'Brien, "Pat" (desk)` },
		func(m *Message) { m.ListID = "digest.example.org" },
		func(m *Message) { m.To.Email = "user+tag@sub.example.co.uk" },
		func(m *Message) { m.To.Email = "leser@bücher.example" },
		func(m *Message) { m.Subject = "" },
	} {
		m := sampleMessage(1)
		change(m)
		if err := m.Validate(); err != nil {
			t.Errorf("%+v: %v", m, err)
		}
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	m := sampleMessage(1)
	m.Subject = "a\nb"
	m.To.Name = "c\rd"
	m.Text = ""
	err := m.Validate()
	for _, field := range []string{"Subject", "To.Name", "Text"} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("error %v does not mention %s", err, field)
		}
	}
}

func TestQuotedNameRoundTrips(t *testing.T) {
	m := sampleMessage(1)
	m.To.Name = `O'Brien, "Pat" (desk)`
	var buf bytes.Buffer
	if _, err := WriteTo(&buf, m, nil); err != nil {
		t.Fatal(err)
	}
	assertMessage(t, buf.Bytes(), m)
}

func TestLongSubjectIsFoldedAndDecodes(t *testing.T) {
	m := sampleMessage(1)
	m.Subject = strings.Repeat("Größere Überschrift mit Umlauten äöü ", 8)
	var buf bytes.Buffer
	if _, err := WriteTo(&buf, m, nil); err != nil {
		t.Fatal(err)
	}
	head, _, _ := bytes.Cut(buf.Bytes(), []byte("\r\n\r\n"))
	for _, line := range strings.Split(string(head), "\r\n") {
		if len(line) > 998 {
			t.Errorf("header line of %d bytes", len(line))
		}
	}
	assertMessage(t, buf.Bytes(), m)
}

func BenchmarkRender(b *testing.B) {
	m := sampleMessage(1)
	m.HTML = strings.Repeat(m.HTML, 40) // a digest-sized HTML part, ~5 KB
	b.ReportAllocs()
	for b.Loop() {
		if _, err := WriteTo(io.Discard, m, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenderSigned(b *testing.B) {
	key := testKeys(b)["rsa-pkcs8"]
	dkim, err := LoadDKIM("example.org", "desk", key.file)
	if err != nil {
		b.Fatal(err)
	}
	m := sampleMessage(1)
	m.HTML = strings.Repeat(m.HTML, 40)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := WriteTo(io.Discard, m, dkim); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSMTPSend(b *testing.B) {
	ts := startServer(b, serverOptions{})
	s := newSender(b, plainTransport(b, ts, nil))
	m := sampleMessage(1)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Send(context.Background(), m); err != nil {
			b.Fatal(err)
		}
	}
}

func TestUnsubscribeOverHTTPOnlyOnLoopback(t *testing.T) {
	for _, u := range []string{"http://localhost:8080/unsubscribe?token=x", "http://127.0.0.1/u", "http://[::1]:8080/u"} {
		m := sampleMessage(1)
		m.UnsubscribeURL = u
		if err := m.Validate(); err != nil {
			t.Errorf("%s refused: %v", u, err)
		}
		raw, err := Render(m, nil)
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		msg, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		if got := msg.Header.Get("List-Unsubscribe"); !strings.Contains(got, "<"+u+">") {
			t.Errorf("List-Unsubscribe = %q, want %s listed", got, u)
		}
		if got := msg.Header.Get("List-Unsubscribe-Post"); got != "" {
			t.Errorf("List-Unsubscribe-Post = %q for a plain-http link; one-click needs https", got)
		}
	}
}
