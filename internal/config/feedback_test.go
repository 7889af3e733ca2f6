package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The bounce mailbox and the webhooks from the file and the environment, the
// secrets from files and masked when printed.
func TestBouncesAndWebhooks(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{"pop3": "pop3-password\n", "mailgun": "key-mailgun-from-file", "postmark": "postmark-secret-from-file"}
	env := []string{"PUBLISHER_BOUNCES_POP3_HOST=pop.example.org", "PUBLISHER_WEBHOOKS_SES_TOPIC_ARNS=arn:aws:sns:eu-west-1:111122223333:a, arn:aws:sns:us-east-1:111122223333:b"}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		env = append(env, map[string]string{"pop3": "PUBLISHER_BOUNCES_POP3_PASSWORD_FILE=", "mailgun": "PUBLISHER_WEBHOOKS_MAILGUN_SIGNING_KEY_FILE=",
			"postmark": "PUBLISHER_WEBHOOKS_POSTMARK_PASSWORD_FILE="}[name]+p)
	}
	p := writeFile(t, `
bounces:
  address: bounces@desk.example.org
  schedule: "@every 5m"
  pop3:
    port: 995
    username: bounces@desk.example.org
webhooks:
  postmark:
    username: postmark
  sendgrid:
    verification_key: MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE
store:
  delivery_retention: 90d
`)
	cfg, err := Load(p, true, env)
	if err != nil {
		t.Fatal(err)
	}
	b, w := cfg.Bounces, cfg.Webhooks
	if b.Address != "bounces@desk.example.org" || b.Schedule != "@every 5m" ||
		b.POP3 != (POP3{Host: "pop.example.org", Port: 995, Username: "bounces@desk.example.org", Password: "pop3-password", TLS: "tls"}) {
		t.Errorf("bounces = %+v", b)
	}
	if !reflect.DeepEqual(w.SES.TopicARNs, []string{"arn:aws:sns:eu-west-1:111122223333:a", "arn:aws:sns:us-east-1:111122223333:b"}) ||
		w.Postmark != (PostmarkWebhook{Username: "postmark", Password: "postmark-secret-from-file"}) ||
		w.Mailgun.SigningKey != "key-mailgun-from-file" || w.SendGrid.VerificationKey == "" || !w.On() {
		t.Errorf("webhooks = %+v", w)
	}
	if cfg.Store.DeliveryRetention != 90*24*time.Hour {
		t.Errorf("retention = %s", cfg.Store.DeliveryRetention)
	}
	for _, s := range cfg.Effective() {
		if s.Secret && (strings.Contains(s.Value, "password") || strings.Contains(s.Value, "from-file")) {
			t.Errorf("%s printed unmasked: %q", s.Path, s.Value)
		}
		if s.Path == "bounces.pop3.password" && (s.Value != "(set, 13 bytes)" || s.Source != "PUBLISHER_BOUNCES_POP3_PASSWORD_FILE") {
			t.Errorf("bounces.pop3.password = %+v", s)
		}
	}

	// The defaults: no mailbox, no webhook, deliveries kept 400 days.
	d, err := Load(filepath.Join(dir, "none.yaml"), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Bounces.POP3.Host != "" || d.Webhooks.On() || d.Store.DeliveryRetention != 400*24*time.Hour || d.Bounces.Schedule == "" {
		t.Errorf("defaults: %+v %+v %s", d.Bounces, d.Webhooks, d.Store.DeliveryRetention)
	}
}

func TestBouncesAndWebhooksErrorsNameTheKey(t *testing.T) {
	cases := []struct {
		name, file string
		env        []string
		want       string
	}{
		{"mailbox without user", "bounces:\n  pop3:\n    host: pop.example.org\n", []string{"PUBLISHER_BOUNCES_POP3_PASSWORD=x"}, "bounces.pop3.username: must be set with bounces.pop3.host"},
		{"mailbox without password", "bounces:\n  pop3:\n    host: pop.example.org\n    username: b\n", nil, "bounces.pop3.password: must be set with bounces.pop3.host"},
		{"user without mailbox", "bounces:\n  pop3:\n    username: b\n", nil, "bounces.pop3.username: is set, but bounces.pop3.host is not"},
		{"plain text off loopback", "bounces:\n  pop3:\n    host: pop.example.org\n    username: b\n    tls: none\n", []string{"PUBLISHER_BOUNCES_POP3_PASSWORD=x"}, "bounces.pop3.tls: none is only allowed for a loopback host"},
		{"unknown tls", "bounces:\n  pop3:\n    tls: ssl\n", nil, "bounces.pop3.tls: must be tls, starttls or none"},
		{"port", "bounces:\n  pop3:\n    port: 70000\n", nil, "bounces.pop3.port: must be 0-65535"},
		{"address", "bounces:\n  address: not an address\n", nil, "bounces.address: not a plain address"},
		{"empty schedule", "bounces:\n  schedule: \"\"\n", nil, "bounces.schedule: must not be empty"},
		{"topic arn", "", []string{"PUBLISHER_WEBHOOKS_SES_TOPIC_ARNS=desk-feedback"}, "webhooks.ses.topic_arns: not an SNS topic ARN"},
		{"postmark user alone", "webhooks:\n  postmark:\n    username: pm\n", nil, "webhooks.postmark.password: webhooks.postmark.username and password go together"},
		{"postmark header alone", "webhooks:\n  postmark:\n    header: X-Token\n", nil, "webhooks.postmark.secret: webhooks.postmark.header and secret go together"},
		{"retention under a day", "store:\n  delivery_retention: 12h\n", nil, "store.delivery_retention: must be at least 1d"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(writeFile(t, c.file), true, c.env)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want %q", err, c.want)
			}
		})
	}
	// Keeping deliveries for ever is a choice, not a mistake.
	if _, err := Load(writeFile(t, "store:\n  delivery_retention: 0s\n"), true, nil); err != nil {
		t.Errorf("retention 0: %v", err)
	}
	cfg, err := Load(writeFile(t, "http:\n  listen: \"\"\nwebhooks:\n  mailgun:\n    signing_key: k\n"), true, nil)
	if err != nil || len(cfg.Warnings()) != 1 || !strings.Contains(cfg.Warnings()[0].Error(), "http.listen is empty") {
		t.Errorf("webhooks without a listener: %v %v", cfg.Warnings(), err)
	}
}
