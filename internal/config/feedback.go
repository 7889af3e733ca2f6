package config

import (
	netmail "net/mail"
	"strings"

	"publisher/internal/valid"
)

// Bounces is the bounce mailbox: where the reports of mail that could not be
// delivered, and spam complaints, arrive after sending.
type Bounces struct {
	Address  string `yaml:"address" doc:"the bounce mailbox's address (optional); a return path on it of the form local+reader=domain@host names its reader (VERP)"`
	Schedule string `yaml:"schedule" doc:"daemon: cron spec for reading the bounce mailbox (publisher run reads it after sending)"`
	POP3     POP3   `yaml:"pop3"`
}

// POP3 is the bounce mailbox's server.
type POP3 struct {
	Host     string `yaml:"host" doc:"POP3 server of the bounce mailbox; empty: no mailbox is read. Every message in the mailbox is read and deleted: give it an address of its own"`
	Port     int    `yaml:"port" doc:"its port; 0: 995 for tls, 110 for starttls and none"`
	Username string `yaml:"username" doc:"POP3 user"`
	Password string `yaml:"password" secret:"true" doc:"POP3 password; set it in the environment or a file (PUBLISHER_BOUNCES_POP3_PASSWORD_FILE), not in publisher.yaml"`
	TLS      string `yaml:"tls" doc:"tls (implicit, port 995), starttls (STLS, refused when the server does not offer it), or none (loopback hosts only)"`
}

// Webhooks are the email service providers whose event webhooks the daemon
// takes on POST /webhooks/<provider>; each is on when its keys are set.
type Webhooks struct {
	SES      SESWebhook      `yaml:"ses"`
	Postmark PostmarkWebhook `yaml:"postmark"`
	Mailgun  MailgunWebhook  `yaml:"mailgun"`
	SendGrid SendGridWebhook `yaml:"sendgrid"`
}

type SESWebhook struct {
	TopicARNs []string `yaml:"topic_arns" doc:"Amazon SES through SNS: the ARNs of the SNS topics SES publishes bounces, complaints and deliveries to (comma-separated in the environment); messages of other topics are refused"`
}

type PostmarkWebhook struct {
	Username string `yaml:"username" doc:"Postmark: the user name written into the webhook's URL (https://user:password@host/webhooks/postmark)"`
	Password string `yaml:"password" secret:"true" doc:"Postmark: that URL's password"`
	Header   string `yaml:"header" doc:"Postmark: a custom header set on the webhook, as well as or instead of the credentials"`
	Secret   string `yaml:"secret" secret:"true" doc:"Postmark: that header's value"`
}

type MailgunWebhook struct {
	SigningKey string `yaml:"signing_key" secret:"true" doc:"Mailgun: the HTTP webhook signing key"`
}

type SendGridWebhook struct {
	VerificationKey string `yaml:"verification_key" doc:"SendGrid: the signed Event Webhook's verification key (base64, as SendGrid shows it)"`
}

// On reports whether any provider's webhook is set up.
func (w Webhooks) On() bool {
	return len(w.SES.TopicARNs) > 0 || w.Postmark.Username != "" || w.Postmark.Header != "" ||
		w.Mailgun.SigningKey != "" || w.SendGrid.VerificationKey != ""
}

// validateFeedback checks the bounce mailbox and the webhooks.
func (c *Config) validateFeedback(bad func(key, format string, args ...any)) {
	b := c.Bounces
	if b.Address != "" {
		if a, err := netmail.ParseAddress(b.Address); err != nil || a.Name != "" || !strings.Contains(a.Address, "@") {
			bad("bounces.address", "not a plain address such as bounces@desk.example.org: %q", b.Address)
		}
	}
	if strings.TrimSpace(b.Schedule) == "" {
		bad("bounces.schedule", "must not be empty")
	}
	p := b.POP3
	if p.Host == "" {
		for key, v := range map[string]string{"bounces.pop3.username": p.Username, "bounces.pop3.password": p.Password} {
			if v != "" {
				bad(key, "is set, but bounces.pop3.host is not: no mailbox would be read")
			}
		}
	} else {
		if p.Username == "" {
			bad("bounces.pop3.username", "must be set with bounces.pop3.host")
		}
		if p.Password == "" {
			bad("bounces.pop3.password", "must be set with bounces.pop3.host (PUBLISHER_BOUNCES_POP3_PASSWORD or PUBLISHER_BOUNCES_POP3_PASSWORD_FILE)")
		}
	}
	switch p.TLS {
	case "tls", "starttls":
	case "none":
		if p.Host != "" && !valid.LoopbackHost(p.Host) {
			bad("bounces.pop3.tls", "none is only allowed for a loopback host, not %q: the password would cross the network in clear", p.Host)
		}
	default:
		bad("bounces.pop3.tls", "must be tls, starttls or none, got %q", p.TLS)
	}
	if p.Port < 0 || p.Port > 65535 {
		bad("bounces.pop3.port", "must be 0-65535, got %d", p.Port)
	}

	w := c.Webhooks
	for _, arn := range w.SES.TopicARNs {
		// arn:partition:sns:region:account:topic
		if f := strings.Split(arn, ":"); len(f) != 6 || f[0] != "arn" || f[2] != "sns" || f[5] == "" {
			bad("webhooks.ses.topic_arns", "not an SNS topic ARN such as arn:aws:sns:eu-west-1:111122223333:ses-feedback: %q", arn)
		}
	}
	pm := w.Postmark
	if (pm.Username == "") != (pm.Password == "") {
		bad("webhooks.postmark.password", "webhooks.postmark.username and password go together")
	}
	if (pm.Header == "") != (pm.Secret == "") {
		bad("webhooks.postmark.secret", "webhooks.postmark.header and secret go together")
	}
	if w.On() && c.HTTP.Listen == "" {
		c.warn("webhooks", "webhooks are set up but http.listen is empty: the daemon serves none")
	}
}
