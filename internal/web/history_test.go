package web

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"publisher/internal/esp"
	"publisher/internal/esp/esptest"
	"publisher/internal/store"
)

// What a reader does on the site is in their history, saying how.
func TestReaderChangesAreInTheHistory(t *testing.T) {
	e := newEnv(t, nil)
	if r := e.postForm("/subscribe", signupForm("ala@example.org"), nil); r.status != http.StatusOK {
		t.Fatalf("subscribe: %d", r.status)
	}
	_, text, _ := mailParts(t, e.smtp.waitMessage(t, 1))
	link := confirmLink.FindString(text)
	u, err := url.Parse(link)
	if err != nil || link == "" {
		t.Fatalf("confirmation link %q: %v", link, err)
	}
	if r := e.get(u.RequestURI(), nil); r.status != http.StatusOK {
		t.Fatalf("confirm: %d", r.status)
	}
	sub := e.subscriber("ala@example.org")
	req, _ := http.NewRequest(http.MethodPost, e.base+"unsubscribe?token="+e.signer.Sign(PurposeUnsubscribe, sub.ID, time.Time{}), strings.NewReader("List-Unsubscribe=One-Click"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if r := e.do(req); r.status != http.StatusOK {
		t.Fatalf("one-click: %d", r.status)
	}
	changes, err := e.st.StatusHistory(context.Background(), sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range changes {
		got = append(got, c.From+">"+c.To+" "+c.By+": "+c.Reason)
	}
	want := []string{">pending web: web", "pending>active web: confirmation link", "active>unsubscribed web: one-click unsubscribe (RFC 8058)"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("history:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// An address erased on request signs up: the answer is the one everybody
// gets, and nothing is recorded or sent.
func TestErasedAddressIsNotAddedBySignup(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	if _, err := e.st.Erase(ctx, "gone@example.org", time.Now()); err != nil {
		t.Fatal(err)
	}
	r := e.postForm("/subscribe", signupForm("Gone@Example.org"), nil)
	if r.status != http.StatusOK || !strings.Contains(r.body, "Check your inbox") {
		t.Fatalf("subscribe: %d %s", r.status, r.body)
	}
	e.srv.signups.wait()
	if _, err := e.st.SubscriberByEmail(ctx, "gone@example.org"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an erased address was added by a sign-up: %v", err)
	}
	// A second address signing up afterwards is mailed: the first sent nothing.
	e.postForm("/subscribe", signupForm("next@example.org"), nil)
	if raw := e.smtp.waitMessage(t, 1); !bytes.Contains(raw, []byte("next@example.org")) || len(e.smtp.messages()) != 1 {
		t.Fatalf("confirmation emails: %d, the first to:\n%.300s", len(e.smtp.messages()), raw)
	}
}

// The daemon's server serves the webhooks beside the site, with its security
// headers, and the providers' posts pass without a browser's Origin.
func TestWebhooksServedBesideTheSite(t *testing.T) {
	rec := &memRecorder{}
	wh, err := NewWebhooks(rec, nil, &esp.Mailgun{SigningKey: mailgunKey})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(o *Options) { o.Webhooks = wh.Handler() })
	body := esptest.SignMailgun(t, mailgunKey, espPayload(t, "mailgun/complained.json"), time.Now(), strings.Repeat("w", 50))
	req, _ := http.NewRequest(http.MethodPost, e.base+"webhooks/mailgun", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	r := e.do(req)
	if r.status != http.StatusOK || rec.count() != 1 || r.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("webhook: %d %q, %d events, headers %v", r.status, r.body, rec.count(), r.header)
	}
	if r := e.get("/webhooks/mailgun", nil); r.status != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", r.status)
	}
	if r := e.postForm("/webhooks/sparkpost", url.Values{}, nil); r.status != http.StatusNotFound {
		t.Errorf("unknown provider: %d", r.status)
	}
	// Without webhooks the path is the site's: not found.
	plain := newEnv(t, nil)
	req, _ = http.NewRequest(http.MethodPost, plain.base+"webhooks/mailgun", bytes.NewReader(body))
	if r := plain.do(req); r.status == http.StatusOK {
		t.Errorf("webhooks served without being set up: %d", r.status)
	}
}
