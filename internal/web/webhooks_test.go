package web

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"publisher/internal/bounce"
	"publisher/internal/esp"
	"publisher/internal/esp/esptest"
)

// memRecorder keeps events in memory, each (Source, ID) once, as the store
// does (the daemon records them in the store: e2e/feedback_test.go).
type memRecorder struct {
	mu     sync.Mutex
	events map[string]bounce.Event
	order  []string
	fail   error
}

func (m *memRecorder) RecordEvent(ctx context.Context, e bounce.Event) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return false, m.fail
	}
	if m.events == nil {
		m.events = map[string]bounce.Event{}
	}
	key := e.Source + "\x00" + e.ID
	if _, ok := m.events[key]; ok {
		return false, nil
	}
	m.events[key] = e
	m.order = append(m.order, key)
	return true, nil
}

func (m *memRecorder) kinds() map[string]bounce.Kind {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]bounce.Kind{}
	for _, e := range m.events {
		out[e.Source+" "+e.Recipient] = e.Kind
	}
	return out
}

func (m *memRecorder) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.events)
}

func espPayload(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "esp", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const (
	sesTopic   = "arn:aws:sns:eu-west-1:111122223333:desk-ses-feedback"
	mailgunKey = "key-0123456789abcdef0123456789abcdef"
)

type webhookEnv struct {
	ts       *httptest.Server
	rec      *memRecorder
	sns      *esptest.SNS
	sendgrid func(at time.Time, body []byte) http.Header
}

func newWebhookEnv(t *testing.T) *webhookEnv {
	t.Helper()
	env := &webhookEnv{rec: &memRecorder{}, sns: esptest.NewSNS(t)}
	sgKey, verification := esptest.SendGridKey(t)
	sg, err := esp.NewSendGrid(verification)
	if err != nil {
		t.Fatal(err)
	}
	env.sendgrid = func(at time.Time, body []byte) http.Header {
		ts, sig := esptest.SignSendGrid(t, sgKey, at, body)
		h := http.Header{}
		h.Set(esp.SendGridTimestampHeader, ts)
		h.Set(esp.SendGridSignatureHeader, sig)
		return h
	}
	w, err := NewWebhooks(env.rec, nil,
		&esp.SES{TopicARNs: []string{sesTopic}, Client: env.sns.Client()},
		&esp.Postmark{Username: "postmark", Password: "a-long-random-password"},
		&esp.Mailgun{SigningKey: mailgunKey},
		sg)
	if err != nil {
		t.Fatal(err)
	}
	env.ts = httptest.NewServer(w.Handler())
	t.Cleanup(env.ts.Close)
	return env
}

func (env *webhookEnv) post(t *testing.T, provider string, body []byte, h http.Header) (int, string) {
	t.Helper()
	return esptest.Post(t, env.ts.URL+"/webhooks/"+provider, body, h)
}

// Each provider's recorded bodies, over HTTP: the valid one is recorded, the
// same again changes nothing, a forged one is refused and records nothing.
func TestWebhooksValidForgedReplayed(t *testing.T) {
	env := newWebhookEnv(t)
	r, _ := http.NewRequest(http.MethodPost, "/", nil)
	r.SetBasicAuth("postmark", "a-long-random-password")
	postmarkAuth := r.Header
	now := time.Now()
	sesValid := env.sns.Notification(t, sesTopic, "3f1c5a2e-7b9d-4e8f-a0b1-c2d3e4f5a6b7", string(espPayload(t, "ses/bounce-permanent.json")))
	sesForged := sesValid
	sesForged.Message = strings.Replace(sesForged.Message, "sam@example.edu", "victim@example.edu", 1)
	sesForged.Message = strings.Replace(sesForged.Message, "Sam@Example.EDU", "victim@example.edu", 1)
	mailgunValid := esptest.SignMailgun(t, mailgunKey, espPayload(t, "mailgun/complained.json"), now, strings.Repeat("k", 50))
	sgBody := espPayload(t, "sendgrid/events.json")

	cases := []struct {
		provider          string
		valid, forged     []byte
		validH, forgedH   http.Header
		newEvents         int
		replayStatus      int
		replayWantsRefuse bool
	}{
		{"ses", sesValid.JSON(t), sesForged.JSON(t), nil, nil, 2, http.StatusOK, false},
		{"postmark", espPayload(t, "postmark/bounce-hard.json"), espPayload(t, "postmark/bounce-hard.json"),
			postmarkAuth, http.Header{"Authorization": {"Basic cG9zdG1hcms6Z3Vlc3M="}}, 1, http.StatusOK, false},
		{"mailgun", mailgunValid, esptest.SignMailgun(t, "key-forged", espPayload(t, "mailgun/complained.json"), now, strings.Repeat("f", 50)),
			nil, nil, 1, http.StatusUnauthorized, true},
		{"sendgrid", sgBody, []byte(strings.Replace(string(sgBody), "Bounced Address", "Invalid SMTPAPI header", 1)),
			env.sendgrid(now, sgBody), env.sendgrid(now, sgBody), 7, http.StatusOK, false},
	}
	for _, c := range cases {
		before := env.rec.count()
		if code, body := env.post(t, c.provider, c.forged, c.forgedH); code != http.StatusUnauthorized || env.rec.count() != before {
			t.Errorf("%s forged: %d %q, %d events recorded", c.provider, code, body, env.rec.count()-before)
		}
		code, body := env.post(t, c.provider, c.valid, c.validH)
		if code != http.StatusOK || env.rec.count()-before != c.newEvents {
			t.Errorf("%s valid: %d %q, %d new events, want %d", c.provider, code, body, env.rec.count()-before, c.newEvents)
		}
		code, body = env.post(t, c.provider, c.valid, c.validH)
		if code != c.replayStatus || env.rec.count()-before != c.newEvents {
			t.Errorf("%s replayed: %d %q, %d events in all", c.provider, code, body, env.rec.count()-before)
		}
		if !c.replayWantsRefuse && !strings.Contains(body, " 0 new") {
			t.Errorf("%s replayed: %q, want it counted as nothing new", c.provider, body)
		}
	}
	want := map[string]bounce.Kind{
		"ses ana.petrova@example.org": bounce.HardBounce, "ses sam@example.edu": bounce.Refused,
		"postmark ana.petrova@example.org": bounce.HardBounce,
		"mailgun priya@mailbox.example":    bounce.Complaint,
		"sendgrid ana.petrova@example.org": bounce.HardBounce, "sendgrid sam@example.edu": bounce.Refused,
		"sendgrid old.reader@example.org": bounce.HardBounce, "sendgrid ines@example.org": bounce.Delayed,
		"sendgrid priya@mailbox.example": bounce.Complaint, "sendgrid jorg@example.net": bounce.Unsubscribe,
		"sendgrid lena.k@example.com": bounce.Delivered,
	}
	got := env.rec.kinds()
	if len(got) != len(want) {
		t.Errorf("recorded %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	// A SendGrid body replayed hours later is refused outright.
	if code, _ := env.post(t, "sendgrid", sgBody, env.sendgrid(now.Add(-3*time.Hour), sgBody)); code != http.StatusUnauthorized {
		t.Errorf("stale SendGrid replay: %d", code)
	}
}

// When the store cannot take the events the provider is told to retry, and
// the retry (same token, for Mailgun) goes through.
func TestWebhooksRecorderDownThenRetry(t *testing.T) {
	env := newWebhookEnv(t)
	body := esptest.SignMailgun(t, mailgunKey, espPayload(t, "mailgun/failed-permanent.json"), time.Now(), strings.Repeat("r", 50))
	env.rec.mu.Lock()
	env.rec.fail = errors.New("database is locked")
	env.rec.mu.Unlock()
	if code, _ := env.post(t, "mailgun", body, nil); code != http.StatusServiceUnavailable {
		t.Fatalf("recorder down: %d, want 503", code)
	}
	env.rec.mu.Lock()
	env.rec.fail = nil
	env.rec.mu.Unlock()
	if code, text := env.post(t, "mailgun", body, nil); code != http.StatusOK || !strings.Contains(text, "1 new") {
		t.Fatalf("retry: %d %q", code, text)
	}
}

func TestWebhooksConfirmSESSubscription(t *testing.T) {
	env := newWebhookEnv(t)
	m := env.sns.SubscriptionConfirmation(t, sesTopic)
	if code, body := env.post(t, "ses", m.JSON(t), nil); code != http.StatusOK || env.sns.Confirmed() != 1 || env.rec.count() != 0 {
		t.Errorf("confirmation: %d %q, confirmed %d, %d events", code, body, env.sns.Confirmed(), env.rec.count())
	}
}

func TestWebhooksRouting(t *testing.T) {
	env := newWebhookEnv(t)
	if code, _ := env.post(t, "sparkpost", []byte("{}"), nil); code != http.StatusNotFound {
		t.Errorf("unknown provider: %d", code)
	}
	resp, err := http.Get(env.ts.URL + "/webhooks/ses")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", resp.StatusCode)
	}
	big := bytes.Repeat([]byte("x"), maxWebhookBody+1)
	if code, _ := env.post(t, "ses", big, nil); code != http.StatusRequestEntityTooLarge {
		t.Errorf("too large: %d", code)
	}
	auth := http.Header{"Authorization": {"Basic cG9zdG1hcms6YS1sb25nLXJhbmRvbS1wYXNzd29yZA=="}}
	if code, _ := env.post(t, "postmark", []byte("{not json"), auth); code != http.StatusBadRequest {
		t.Errorf("unreadable: %d", code)
	}
	if _, err := NewWebhooks(nil, nil); err == nil {
		t.Error("no recorder accepted")
	}
	if _, err := NewWebhooks(env.rec, nil, &esp.Mailgun{}, &esp.Mailgun{}); err == nil {
		t.Error("a provider given twice was accepted")
	}
}
