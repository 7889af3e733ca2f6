package esp

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"publisher/internal/bounce"
	"publisher/internal/esp/esptest"
)

func payload(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// brief is what the tests compare of an event.
type brief struct {
	Kind      bounce.Kind
	Recipient string
	MessageID string
	Status    string
}

func briefs(events []bounce.Event) []brief {
	var out []brief
	for _, e := range events {
		out = append(out, brief{e.Kind, e.Recipient, e.MessageID, e.Status})
	}
	return out
}

func checkIDs(t *testing.T, events []bounce.Event, source string) {
	t.Helper()
	seen := map[string]bool{}
	for _, e := range events {
		if e.Source != source || e.ID == "" || seen[e.ID] || e.At.IsZero() {
			t.Errorf("event %+v: want source %s, a unique id and a time", e, source)
		}
		seen[e.ID] = true
	}
}

const topic = "arn:aws:sns:eu-west-1:111122223333:desk-ses-feedback"

func newSES(sns *esptest.SNS) *SES {
	return &SES{TopicARNs: []string{topic}, Client: sns.Client()}
}

func TestSESNotifications(t *testing.T) {
	sns := esptest.NewSNS(t)
	ses := newSES(sns)
	for _, c := range []struct {
		file string
		want []brief
	}{
		{"ses/bounce-permanent.json", []brief{
			{bounce.HardBounce, "ana.petrova@example.org", "digest-12-5@desk.example.org", "5.1.1"},
			{bounce.Refused, "sam@example.edu", "digest-12-5@desk.example.org", "5.7.1"}}},
		{"ses/bounce-mailbox-full.json", []brief{{bounce.SoftBounce, "tomas@example.com", "digest-13-21@desk.example.org", "5.2.2"}}},
		{"ses/complaint.json", []brief{{bounce.Complaint, "priya@mailbox.example", "digest-13-60@desk.example.org", ""}}},
		{"ses/delivery.json", []brief{{bounce.Delivered, "lena.k@example.com", "digest-12-14@desk.example.org", ""}}},
	} {
		m := sns.Notification(t, topic, "msg-"+filepath.Base(c.file), string(payload(t, c.file)))
		events, err := ses.Events(context.Background(), nil, m.JSON(t))
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if got := briefs(events); !slices.Equal(got, c.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.file, got, c.want)
		}
		checkIDs(t, events, "ses")
	}
	if sns.Fetched() != 1 {
		t.Errorf("certificate fetched %d times, want once", sns.Fetched())
	}
}

func TestSESSignatureVersionsAndSubject(t *testing.T) {
	sns := esptest.NewSNS(t)
	ses := newSES(sns)
	body := string(payload(t, "ses/delivery.json"))
	subject := "Amazon SES Email Event Notification"
	m := sns.Notification(t, topic, "with-subject", body)
	m.Subject, m.SignatureVersion = &subject, "1"
	sns.Sign(t, &m)
	if _, err := ses.Events(context.Background(), nil, m.JSON(t)); err != nil {
		t.Fatalf("version 1 with a subject: %v", err)
	}
	other := "Another subject"
	m.Subject = &other // changed after signing
	if _, err := ses.Events(context.Background(), nil, m.JSON(t)); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("altered subject: %v", err)
	}
}

func TestSESRefusesForgeries(t *testing.T) {
	sns := esptest.NewSNS(t)
	ses := newSES(sns)
	good := sns.Notification(t, topic, "good", string(payload(t, "ses/bounce-permanent.json")))
	if _, err := ses.Events(context.Background(), nil, good.JSON(t)); err != nil {
		t.Fatal(err)
	}
	fetched := sns.Fetched()
	forge := func(change func(*esptest.Message), resign bool) esptest.Message {
		m := good
		change(&m)
		if resign {
			sns.Sign(t, &m)
		}
		return m
	}
	for name, m := range map[string]esptest.Message{
		"message changed after signing": forge(func(m *esptest.Message) {
			m.Message = strings.Replace(m.Message, "Permanent", "Transient", 1)
		}, false),
		"signature of another message": forge(func(m *esptest.Message) { m.Signature = sns.Notification(t, topic, "x", "{}").Signature }, false),
		"signature not base64":         forge(func(m *esptest.Message) { m.Signature = "!!" }, false),
		"unknown signature version":    forge(func(m *esptest.Message) { m.SignatureVersion = "3" }, true),
		"topic of somebody else":       forge(func(m *esptest.Message) { m.TopicArn = "arn:aws:sns:eu-west-1:999999999999:theirs" }, true),
		"certificate over http":        forge(func(m *esptest.Message) { m.SigningCertURL = strings.Replace(m.SigningCertURL, "https:", "http:", 1) }, true),
		"certificate on another host": forge(func(m *esptest.Message) {
			m.SigningCertURL = "https://attacker.example/SimpleNotificationService-1.pem"
		}, true),
		"host that only starts right": forge(func(m *esptest.Message) {
			m.SigningCertURL = "https://sns.eu-west-1.amazonaws.com.attacker.example/c.pem"
		}, true),
		"host in the path": forge(func(m *esptest.Message) {
			m.SigningCertURL = "https://attacker.example/sns.eu-west-1.amazonaws.com/c.pem"
		}, true),
		"user info before the host": forge(func(m *esptest.Message) {
			m.SigningCertURL = "https://sns.eu-west-1.amazonaws.com@attacker.example/c.pem"
		}, true),
		"another port":           forge(func(m *esptest.Message) { m.SigningCertURL = "https://sns.eu-west-1.amazonaws.com:8443/c.pem" }, true),
		"not a certificate file": forge(func(m *esptest.Message) { m.SigningCertURL = "https://sns.eu-west-1.amazonaws.com/confirm" }, true),
	} {
		_, err := ses.Events(context.Background(), nil, m.JSON(t))
		if !errors.Is(err, ErrUnauthorized) {
			t.Errorf("%s: %v, want ErrUnauthorized", name, err)
		}
	}
	if sns.Fetched() != fetched {
		t.Errorf("a refused URL was fetched (%d fetches, %d before)", sns.Fetched(), fetched)
	}
	if _, err := ses.Events(context.Background(), nil, []byte("{not json")); !errors.Is(err, ErrBadRequest) {
		t.Errorf("bad JSON: %v", err)
	}
}

func TestSESConfirmsSubscriptions(t *testing.T) {
	sns := esptest.NewSNS(t)
	ses := newSES(sns)
	m := sns.SubscriptionConfirmation(t, topic)
	events, err := ses.Events(context.Background(), nil, m.JSON(t))
	if err != nil || len(events) != 0 || sns.Confirmed() != 1 {
		t.Fatalf("confirmation: %v, %v, confirmed %d", events, err, sns.Confirmed())
	}
	// A confirmation for a topic that is not ours is never visited.
	other := sns.SubscriptionConfirmation(t, "arn:aws:sns:eu-west-1:999999999999:theirs")
	if _, err := ses.Events(context.Background(), nil, other.JSON(t)); !errors.Is(err, ErrUnauthorized) || sns.Confirmed() != 1 {
		t.Errorf("foreign topic: %v, confirmed %d", err, sns.Confirmed())
	}
	// Nor is a SubscribeURL off SNS, even when signed.
	m.SubscribeURL = "https://attacker.example/confirm"
	sns.Sign(t, &m)
	if _, err := ses.Events(context.Background(), nil, m.JSON(t)); !errors.Is(err, ErrUnauthorized) || sns.Confirmed() != 1 {
		t.Errorf("SubscribeURL off SNS: %v, confirmed %d", err, sns.Confirmed())
	}
}

func basicAuth(user, pass string) http.Header {
	r, _ := http.NewRequest(http.MethodPost, "/", nil)
	r.SetBasicAuth(user, pass)
	return r.Header
}

func TestPostmark(t *testing.T) {
	p := &Postmark{Username: "postmark", Password: "a-long-random-password"}
	h := basicAuth("postmark", "a-long-random-password")
	for _, c := range []struct {
		file string
		want []brief
	}{
		{"postmark/bounce-hard.json", []brief{{bounce.HardBounce, "ana.petrova@example.org", "", ""}}},
		{"postmark/bounce-blocked.json", []brief{{bounce.Refused, "sam@example.edu", "", ""}}},
		{"postmark/spam-complaint.json", []brief{{bounce.Complaint, "priya@mailbox.example", "", ""}}},
		{"postmark/delivery.json", []brief{{bounce.Delivered, "lena.k@example.com", "", ""}}},
		{"postmark/subscription-change.json", []brief{{bounce.Unsubscribe, "jorg@example.net", "", ""}}},
	} {
		events, err := p.Events(context.Background(), h, payload(t, c.file))
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if got := briefs(events); !slices.Equal(got, c.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.file, got, c.want)
		}
		checkIDs(t, events, "postmark")
	}
	body := payload(t, "postmark/bounce-hard.json")
	for name, h := range map[string]http.Header{
		"no credentials": {},
		"wrong password": basicAuth("postmark", "guess"),
		"wrong user":     basicAuth("someone", "a-long-random-password"),
	} {
		if _, err := p.Events(context.Background(), h, body); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A secret header, alone or beside basic auth: every one set is needed.
	both := &Postmark{Username: "postmark", Password: "a-long-random-password", Header: "X-Desk-Secret", Secret: "s3cret-value"}
	h2 := basicAuth("postmark", "a-long-random-password")
	if _, err := both.Events(context.Background(), h2, body); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("basic auth without the header: %v", err)
	}
	h2.Set("X-Desk-Secret", "s3cret-value")
	if _, err := both.Events(context.Background(), h2, body); err != nil {
		t.Errorf("both given: %v", err)
	}
	if _, err := (&Postmark{}).Events(context.Background(), h2, body); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("a Postmark with no credentials set must refuse everything: %v", err)
	}
	if err := (&Postmark{Username: "u"}).Check(); err == nil {
		t.Error("a user without a password passed Check")
	}
}

const mailgunKey = "key-0123456789abcdef0123456789abcdef"

func TestMailgun(t *testing.T) {
	now := time.Now()
	m := &Mailgun{SigningKey: mailgunKey, Now: func() time.Time { return now }}
	for i, c := range []struct {
		file string
		want []brief
	}{
		{"mailgun/failed-permanent.json", []brief{{bounce.HardBounce, "ana.petrova@example.org", "digest-12-5@desk.example.org", "5.1.1"}}},
		{"mailgun/failed-policy.json", []brief{{bounce.Refused, "sam@example.edu", "digest-12-41@desk.example.org", "5.7.1"}}},
		{"mailgun/failed-temporary.json", []brief{{bounce.Delayed, "ines@example.org", "digest-12-52@desk.example.org", ""}}},
		{"mailgun/complained.json", []brief{{bounce.Complaint, "priya@mailbox.example", "digest-13-60@desk.example.org", ""}}},
		{"mailgun/unsubscribed.json", []brief{{bounce.Unsubscribe, "jorg@example.net", "digest-13-9@desk.example.org", ""}}},
	} {
		body := esptest.SignMailgun(t, mailgunKey, payload(t, c.file), now, strings.Repeat(string(rune('a'+i)), 50))
		events, err := m.Events(context.Background(), nil, body)
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if got := briefs(events); !slices.Equal(got, c.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.file, got, c.want)
		}
		checkIDs(t, events, "mailgun")
	}

	raw := payload(t, "mailgun/failed-permanent.json")
	token := strings.Repeat("z", 50)
	good := esptest.SignMailgun(t, mailgunKey, raw, now, token)
	for name, body := range map[string][]byte{
		"another key":           esptest.SignMailgun(t, "key-of-somebody-else", raw, now, token),
		"two hours old":         esptest.SignMailgun(t, mailgunKey, raw, now.Add(-2*time.Hour), token),
		"two hours ahead":       esptest.SignMailgun(t, mailgunKey, raw, now.Add(2*time.Hour), token),
		"no signature at all":   raw,
		"token swapped":         []byte(strings.Replace(string(good), token, strings.Repeat("y", 50), 1)),
		"event swapped, signed": []byte(strings.Replace(string(good), "ana.petrova@example.org", "someone.else@example.org", -1)),
	} {
		_, err := m.Events(context.Background(), nil, body)
		if name == "event swapped, signed" {
			// The signature covers only timestamp and token: why a used
			// token is refused (below) and timestamps must be fresh.
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		if !errors.Is(err, ErrUnauthorized) {
			t.Errorf("%s: %v, want ErrUnauthorized", name, err)
		}
	}
	// A token is spent once its events are recorded; until then a retry passes.
	if _, err := m.Events(context.Background(), nil, good); err != nil {
		t.Fatal(err)
	}
	m.Done(good)
	for _, body := range [][]byte{good, []byte(strings.Replace(string(good), "ana.petrova@example.org", "someone.else@example.org", -1))} {
		if _, err := m.Events(context.Background(), nil, body); !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "replay") {
			t.Errorf("replayed token: %v", err)
		}
	}
	// Once past MaxAge a token is forgotten: its timestamp is refused anyway.
	now = now.Add(2 * time.Hour)
	m.Done(esptest.SignMailgun(t, mailgunKey, raw, now, strings.Repeat("w", 50)))
	if len(m.tokens) != 1 {
		t.Errorf("%d tokens remembered, want the one within MaxAge", len(m.tokens))
	}
}

func TestSendGrid(t *testing.T) {
	key, verification := esptest.SendGridKey(t)
	now := time.Now()
	s, err := NewSendGrid(verification)
	if err != nil {
		t.Fatal(err)
	}
	s.Now = func() time.Time { return now }
	body := payload(t, "sendgrid/events.json")
	ts, sig := esptest.SignSendGrid(t, key, now, body)
	h := http.Header{}
	h.Set(SendGridTimestampHeader, ts)
	h.Set(SendGridSignatureHeader, sig)
	events, err := s.Events(context.Background(), h, body)
	if err != nil {
		t.Fatal(err)
	}
	want := []brief{
		{bounce.HardBounce, "ana.petrova@example.org", "digest-12-5@desk.example.org", "5.1.1"},
		{bounce.Refused, "sam@example.edu", "digest-12-41@desk.example.org", "5.7.1"},
		{bounce.HardBounce, "old.reader@example.org", "digest-12-77@desk.example.org", "5.0.0"},
		{bounce.Delayed, "ines@example.org", "digest-12-52@desk.example.org", ""},
		{bounce.Complaint, "priya@mailbox.example", "digest-13-60@desk.example.org", ""},
		{bounce.Unsubscribe, "jorg@example.net", "digest-13-9@desk.example.org", ""},
		{bounce.Delivered, "lena.k@example.com", "digest-12-14@desk.example.org", ""},
	}
	if got := briefs(events); !slices.Equal(got, want) {
		t.Errorf("\n got %+v\nwant %+v", got, want)
	}
	checkIDs(t, events, "sendgrid")

	other, _ := esptest.SendGridKey(t)
	forged := func(change func(http.Header, []byte) []byte) (http.Header, []byte) {
		h2, b := h.Clone(), append([]byte(nil), body...)
		return h2, change(h2, b)
	}
	for name, c := range map[string]func(http.Header, []byte) []byte{
		"body changed": func(h http.Header, b []byte) []byte {
			return []byte(strings.Replace(string(b), `"type": "blocked"`, `"type": "bounce"`, 1))
		},
		"another key": func(h http.Header, b []byte) []byte {
			ts, sig := esptest.SignSendGrid(t, other, now, b)
			h.Set(SendGridTimestampHeader, ts)
			h.Set(SendGridSignatureHeader, sig)
			return b
		},
		"timestamp changed": func(h http.Header, b []byte) []byte { h.Set(SendGridTimestampHeader, "1"+ts); return b },
		"stale": func(h http.Header, b []byte) []byte {
			ts, sig := esptest.SignSendGrid(t, key, now.Add(-3*time.Hour), b)
			h.Set(SendGridTimestampHeader, ts)
			h.Set(SendGridSignatureHeader, sig)
			return b
		},
		"no signature": func(h http.Header, b []byte) []byte { h.Del(SendGridSignatureHeader); return b },
	} {
		h2, b := forged(c)
		if _, err := s.Events(context.Background(), h2, b); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("%s: %v, want ErrUnauthorized", name, err)
		}
	}
	if _, err := NewSendGrid("not base64!"); err == nil {
		t.Error("a bad verification key was accepted")
	}
}
