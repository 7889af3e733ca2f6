package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"os"
	"strings"
	"time"

	"publisher/internal/bounce"
	"publisher/internal/config"
	"publisher/internal/esp"
	"publisher/internal/mailbox"
	"publisher/internal/schedule"
	"publisher/internal/store"
	"publisher/internal/web"
)

// storeEvents records bounce, complaint and webhook events in the store: the
// web.EventRecorder of the webhooks, and the bounce mailbox's recorder.
type storeEvents struct {
	db          store.Store
	bounceLimit int
	by          string // store.ByWebhook or store.ByMailbox
}

var _ web.EventRecorder = storeEvents{}

// RecordEvent records e once and applies it; isNew is false for an event
// recorded before.
func (s storeEvents) RecordEvent(ctx context.Context, e bounce.Event) (bool, error) {
	res, err := s.record(ctx, e)
	return res.New, err
}

func (s storeEvents) record(ctx context.Context, e bounce.Event) (store.EventResult, error) {
	return s.db.RecordEvent(ctx, store.Event{
		Source: e.Source, ID: e.ID, Kind: string(e.Kind), Recipient: e.Recipient, MessageID: e.MessageID,
		Status: e.Status, Diagnostic: e.Diagnostic, At: e.At, By: s.by,
	}, s.bounceLimit, time.Now())
}

// webhookProviders are the providers whose webhooks the configuration sets
// up; an error names the key.
func webhookProviders(cfg *config.Config) ([]esp.Provider, error) {
	w := cfg.Webhooks
	var out []esp.Provider
	if len(w.SES.TopicARNs) > 0 {
		out = append(out, &esp.SES{TopicARNs: w.SES.TopicARNs})
	}
	if w.Postmark.Username != "" || w.Postmark.Header != "" {
		p := &esp.Postmark{Username: w.Postmark.Username, Password: w.Postmark.Password, Header: w.Postmark.Header, Secret: w.Postmark.Secret}
		if err := p.Check(); err != nil {
			return nil, fmt.Errorf("webhooks.postmark: %w", err)
		}
		out = append(out, p)
	}
	if w.Mailgun.SigningKey != "" {
		out = append(out, &esp.Mailgun{SigningKey: w.Mailgun.SigningKey})
	}
	if w.SendGrid.VerificationKey != "" {
		sg, err := esp.NewSendGrid(w.SendGrid.VerificationKey)
		if err != nil {
			return nil, fmt.Errorf("webhooks.sendgrid.verification_key: %w", err)
		}
		out = append(out, sg)
	}
	return out, nil
}

// Bounce mailbox reads: at most this many messages each (the rest wait for
// the next), under a lease of this name and length, so that two processes
// (replicas, a run beside the daemon) never read the mailbox at once: a POP3
// server refuses the second login while the first holds the mailbox.
const (
	bounceReadLimit = 500
	bounceLease     = "bounces"
	bounceLeaseTTL  = 10 * time.Minute
)

// bounceReader reads the bounce mailbox into the store.
type bounceReader struct {
	pop3   *mailbox.POP3
	verp   bounce.VERP
	events storeEvents
	log    *slog.Logger
}

// newBounceReader checks the bounce mailbox's settings; nil when none is set
// up. An error names the key.
func newBounceReader(cfg *config.Config, db store.Store, log *slog.Logger) (*bounceReader, error) {
	if _, err := schedule.Parse(cfg.Bounces.Schedule); err != nil {
		return nil, fmt.Errorf("bounces.schedule: %w", err)
	}
	var verp bounce.VERP
	if cfg.Bounces.Address != "" {
		var err error
		if verp, err = bounce.NewVERP(cfg.Bounces.Address); err != nil {
			return nil, fmt.Errorf("bounces.address: %w", err)
		}
	}
	p := cfg.Bounces.POP3
	if p.Host == "" {
		return nil, nil
	}
	pop3, err := mailbox.NewPOP3(mailbox.POP3Config{Host: p.Host, Port: p.Port, Username: p.Username, Password: p.Password,
		TLS: p.TLS, Limit: bounceReadLimit})
	if err != nil {
		return nil, fmt.Errorf("bounces.pop3: %w", err)
	}
	return &bounceReader{pop3: pop3, verp: verp, events: storeEvents{db: db, bounceLimit: cfg.Mail.BounceLimit, by: store.ByMailbox}, log: log}, nil
}

// bounceStats counts what one read of the mailbox did.
type bounceStats struct {
	mailbox.Stats
	Reports, NotReports, Events, New int
}

// read reads the mailbox once, unless another process is reading it. Every
// message is deleted once handled: reports once their events are recorded,
// anything else at once (the bounce address is for machines), with a log line.
func (b *bounceReader) read(ctx context.Context) error {
	host, _ := os.Hostname()
	lease, err := b.events.db.AcquireLease(ctx, bounceLease, fmt.Sprintf("%s pid %d", host, os.Getpid()), bounceLeaseTTL)
	if errors.Is(err, store.ErrLeaseHeld) {
		b.log.Info("bounce mailbox: another process is reading it", "holder", lease.Label)
		return nil
	}
	if err != nil {
		return fmt.Errorf("bounce mailbox: lease: %w", err)
	}
	defer func() {
		if err := b.events.db.ReleaseLease(context.WithoutCancel(ctx), lease); err != nil {
			b.log.Warn("bounce mailbox: releasing the lease", "err", err)
		}
	}()
	var st bounceStats
	st.Stats, err = b.pop3.Read(ctx, func(ctx context.Context, m mailbox.Message) (bool, error) {
		return b.handle(ctx, m, &st)
	})
	b.log.Info("bounce mailbox read", "messages", st.Messages, "reports", st.Reports, "events", st.Events, "new", st.New,
		"not_reports", st.NotReports, "deleted", st.Deleted, "too_big", st.TooBig, "left", st.Messages-st.Read-st.TooBig)
	if err != nil {
		return fmt.Errorf("bounces.pop3: %w", err)
	}
	return nil
}

// handle records one message's events. A store error keeps the message (and
// stops the read) for the next one to try again.
func (b *bounceReader) handle(ctx context.Context, m mailbox.Message, st *bounceStats) (bool, error) {
	events, err := bounce.Parse(m.Raw, b.verp)
	if err != nil {
		// Not a report (an auto-reply, a person writing to the bounce address),
		// or a report none of whose parts can be read: said, and deleted.
		st.NotReports++
		from, subject := "", ""
		if msg, perr := mail.ReadMessage(bytes.NewReader(m.Raw)); perr == nil {
			from, subject = msg.Header.Get("From"), msg.Header.Get("Subject")
		}
		b.log.Warn("bounce mailbox: not a delivery report or complaint; deleted", "uid", m.UID, "from", from, "subject", short(subject), "why", err)
		return true, nil
	}
	st.Reports++
	for _, e := range events {
		res, err := b.events.record(ctx, e)
		if err != nil {
			return false, err
		}
		st.Events++
		if res.New {
			st.New++
			b.log.Info("bounce mailbox event", "source", e.Source, "kind", e.Kind, "recipient", e.Recipient, "effect", res.Effect, "subscriber", res.SubscriberID)
		}
	}
	return true, nil
}

// short cuts a header for a log line.
func short(s string) string {
	if len(s) <= 100 {
		return s
	}
	return strings.ToValidUTF8(s[:100], "") + "…"
}
