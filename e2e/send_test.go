package e2e

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"

	"publisher/internal/smtptest"
)

// parsed is one received message, decoded.
type parsed struct {
	header mail.Header
	text   string
	html   string
	raw    string
}

func parseMessage(t *testing.T, data []byte) parsed {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("not a MIME message: %v\n%s", err, data)
	}
	p := parsed{header: msg.Header, raw: string(data)}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type = %q, want multipart/alternative", msg.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var order []string
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(part) // multipart decodes quoted-printable itself
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
		order = append(order, ct)
		switch ct {
		case "text/plain":
			p.text = string(body)
		case "text/html":
			p.html = string(body)
		}
	}
	if strings.Join(order, ",") != "text/plain,text/html" {
		t.Fatalf("parts = %v, want text/plain then text/html", order)
	}
	return p
}

func decodeHeader(t *testing.T, v string) string {
	t.Helper()
	s, err := new(mime.WordDecoder).DecodeHeader(v)
	if err != nil {
		t.Fatalf("decode %q: %v", v, err)
	}
	return s
}

func byRecipient(t *testing.T, srv *smtptest.Server) map[string][]parsed {
	t.Helper()
	out := map[string][]parsed{}
	for _, m := range srv.Messages() {
		for _, r := range m.To {
			out[r] = append(out[r], parseMessage(t, m.Data))
		}
	}
	return out
}

func TestRunSendsPersonalisedDigestsOverSMTP(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	d := newDesk(t, smtpConfig(srv.Port, ""))
	d.piece("grid-sync", "Grid synchronisation, one year on", "energy")
	d.piece("border-drills", "Border drills and what they signal", "security")
	d.write("subscribers/list.csv", "email,name,topics,cadence\n"+
		"alice@example.org,Alice Example,,immediate\n"+
		"bozena@example.com,Božena Nováková,security,immediate\n"+
		"carol@example.net,Carol Daily,,daily\n")

	r := d.run("run")
	if r.code != 0 {
		t.Fatalf("run exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	got := byRecipient(t, srv)
	if len(got["alice@example.org"]) != 1 || len(got["bozena@example.com"]) != 1 {
		t.Fatalf("messages per recipient: %v", counts(got))
	}
	// Carol is daily and joined just now: her first digest waits for the next send moment.
	if n := len(got["carol@example.net"]); n != 0 {
		t.Fatalf("daily subscriber got %d messages on joining", n)
	}

	alice := got["alice@example.org"][0]
	h := alice.header
	if from := decodeHeader(t, h.Get("From")); from != `"Test Desk" <digest@desk.example.org>` && from != "Test Desk <digest@desk.example.org>" {
		t.Errorf("From = %q", from)
	}
	if to := decodeHeader(t, h.Get("To")); !strings.Contains(to, "Alice Example") || !strings.Contains(to, "<alice@example.org>") {
		t.Errorf("To = %q", to)
	}
	if rt := h.Get("Reply-To"); !strings.Contains(rt, "editors@desk.example.org") {
		t.Errorf("Reply-To = %q", rt)
	}
	if _, err := h.Date(); err != nil {
		t.Errorf("Date: %v", err)
	}
	if id := h.Get("Message-ID"); !regexp.MustCompile(`^<digest\.[a-z2-7]{32}@desk\.example\.org>$`).MatchString(id) {
		t.Errorf("Message-ID = %q", id)
	}
	if lid := h.Get("List-Id"); !strings.Contains(lid, "<digest.desk.example.org>") {
		t.Errorf("List-Id = %q", lid)
	}
	lu := h.Get("List-Unsubscribe")
	if !regexp.MustCompile(`^<https://desk\.example\.org/unsubscribe\?token=[^>]+>, ?<mailto:digest@desk\.example\.org\?subject=unsubscribe>$`).MatchString(lu) {
		t.Errorf("List-Unsubscribe = %q", lu)
	}
	if p := h.Get("List-Unsubscribe-Post"); p != "List-Unsubscribe=One-Click" {
		t.Errorf("List-Unsubscribe-Post = %q", p)
	}
	subject := decodeHeader(t, h.Get("Subject"))
	if !strings.Contains(subject, "+ 1 more") {
		t.Errorf("Subject = %q, want the newest title + 1 more", subject)
	}
	unsubURL := strings.TrimPrefix(strings.SplitN(lu, ">", 2)[0], "<")
	for _, part := range []struct{ name, body string }{{"text", alice.text}, {"html", alice.html}} {
		for _, want := range []string{"Grid synchronisation, one year on", "Border drills and what they signal", "Ona Petraitė", "Senior fellow"} {
			if !strings.Contains(part.body, want) {
				t.Errorf("%s part lacks %q", part.name, want)
			}
		}
		body := part.body
		if part.name == "html" {
			body = strings.ReplaceAll(body, "&amp;", "&")
		}
		if !strings.Contains(body, unsubURL) {
			t.Errorf("%s part lacks the visible unsubscribe link %s", part.name, unsubURL)
		}
	}
	if !strings.Contains(alice.text, "Alice") {
		t.Errorf("text part is not personalised:\n%s", alice.text)
	}

	// Topics: Božena asked for security only; her name is encoded in the header.
	b := got["bozena@example.com"][0]
	if to := decodeHeader(t, b.header.Get("To")); !strings.Contains(to, "Božena Nováková") {
		t.Errorf("To = %q", to)
	}
	if !strings.Contains(b.html, "Border drills") || strings.Contains(b.html, "Grid synchronisation") {
		t.Errorf("topic filter not applied to Božena's digest")
	}
	if b.header.Get("List-Unsubscribe") == lu {
		t.Errorf("two subscribers share one unsubscribe link")
	}

	// Nothing new: nothing sent.
	before := srv.Count()
	if r := d.run("run"); r.code != 0 {
		t.Fatalf("second run exit %d: %s", r.code, r.stderr)
	}
	if srv.Count() != before {
		t.Fatalf("second run with nothing new sent %d messages", srv.Count()-before)
	}

	// A new piece goes to those who want its topic, and only it.
	d.piece("pipeline-tariffs", "Pipeline tariffs after the winter", "energy")
	if r := d.run("run"); r.code != 0 {
		t.Fatalf("third run exit %d: %s", r.code, r.stderr)
	}
	got = byRecipient(t, srv)
	if len(got["alice@example.org"]) != 2 || len(got["bozena@example.com"]) != 1 {
		t.Fatalf("after a new energy piece: %v", counts(got))
	}
	latest := got["alice@example.org"][1]
	if s := decodeHeader(t, latest.header.Get("Subject")); s != "Pipeline tariffs after the winter" {
		t.Errorf("Subject = %q", s)
	}
	if strings.Contains(latest.html, "Border drills") {
		t.Errorf("a piece already sent was sent again")
	}
}

func counts(m map[string][]parsed) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[k] = len(v)
	}
	return out
}

func TestRunRetriesTemporaryAndSuppressesPermanentFailures(t *testing.T) {
	var mu sync.Mutex
	tries := map[string]int{}
	srv := smtptest.Start(t, smtptest.Options{})
	srv.SetOptions(smtptest.Options{Rcpt: func(rcpt string) *smtp.SMTPError {
		switch {
		case strings.HasPrefix(rcpt, "temp"):
			mu.Lock()
			tries[rcpt]++
			n := tries[rcpt]
			mu.Unlock()
			if n <= 2 {
				return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
			}
		case strings.HasPrefix(rcpt, "gone"):
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	}})
	d := newDesk(t, strings.Replace(smtpConfig(srv.Port, ""), "  retry_base: 50ms\n", "  retry_base: 50ms\n  bounce_limit: 1\n  max_attempts: 5\n", 1))
	d.piece("grid-sync", "Grid synchronisation", "energy")
	var csv strings.Builder
	csv.WriteString("email,name\n")
	for i := range 10 {
		fmt.Fprintf(&csv, "ok%d@example.org,OK %d\n", i, i)
	}
	for i := range 4 {
		fmt.Fprintf(&csv, "temp%d@example.org,Temp %d\n", i, i)
	}
	for i := range 3 {
		fmt.Fprintf(&csv, "gone%d@example.org,Gone %d\n", i, i)
	}
	d.write("subscribers/list.csv", csv.String())

	r := d.run("run")
	if r.code != 1 {
		t.Fatalf("run exit %d, want 1 (some deliveries failed)\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"sent 14", "retried 8", "failed 3", "suppressed 3", "pending 0"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("summary %q lacks %q", r.stdout, want)
		}
	}
	per := srv.PerRecipient()
	for i := range 10 {
		if per[fmt.Sprintf("ok%d@example.org", i)] != 1 {
			t.Errorf("ok%d got %d", i, per[fmt.Sprintf("ok%d@example.org", i)])
		}
	}
	for i := range 4 {
		if per[fmt.Sprintf("temp%d@example.org", i)] != 1 {
			t.Errorf("temp%d got %d after retries", i, per[fmt.Sprintf("temp%d@example.org", i)])
		}
	}
	list := d.run("subscribers", "list", "--status", "bounced")
	for i := range 3 {
		if !strings.Contains(list.stdout, fmt.Sprintf("gone%d@example.org", i)) {
			t.Errorf("gone%d not suppressed:\n%s", i, list.stdout)
		}
	}
	// A bounced address stays suppressed though it is still in the list file.
	d.piece("second", "Second piece", "energy")
	r = d.run("run")
	if r.code != 0 {
		t.Fatalf("second run exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "sent 14") {
		t.Errorf("second run: %s", r.stdout)
	}
}

func TestBadRowsAndInjectionNeverReachAHeader(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	d := newDesk(t, smtpConfig(srv.Port, ""))
	d.write("content/injected.md", "---\ntitle: \"Quiet title\\r\\nBcc: victim@example.com\"\n---\n\nBody text of the piece.\n")
	d.write("subscribers/list.csv", "email,name\n"+
		"\"eve@example.org\",\"Eve\r\nBcc: victim@example.com\"\n"+
		"not-an-address,Nobody\n"+
		"\"mallory@example.org\r\nBcc: x@example.com\",Mallory\n"+
		"good@example.org,Good Reader\n")
	r := d.run("run")
	if r.code != 0 {
		t.Fatalf("run exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"list.csv:2", "list.csv:4", "list.csv:5"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr does not name %s:\n%s", want, r.stderr)
		}
	}
	msgs := srv.Messages()
	if len(msgs) != 1 || msgs[0].To[0] != "good@example.org" {
		t.Fatalf("messages: %d, to %v", len(msgs), msgs)
	}
	m := parseMessage(t, msgs[0].Data)
	if len(m.header["Bcc"]) != 0 {
		t.Fatalf("a Bcc header was injected:\n%s", m.raw)
	}
	headerBlock := m.raw[:strings.Index(m.raw, "\r\n\r\n")]
	for _, line := range strings.Split(headerBlock, "\r\n") {
		if strings.HasPrefix(strings.ToLower(line), "bcc") {
			t.Fatalf("an injected header line:\n%s", headerBlock)
		}
	}
	// The title's line break became a space inside the one Subject line.
	if s := decodeHeader(t, m.header.Get("Subject")); strings.ContainsAny(s, "\r\n") || !strings.HasPrefix(s, "Quiet title") {
		t.Fatalf("Subject = %q", s)
	}
	if to := decodeHeader(t, m.header.Get("To")); to != `"Good Reader" <good@example.org>` {
		t.Fatalf("To = %q", to)
	}
}
