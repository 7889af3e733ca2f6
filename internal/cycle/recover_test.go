package cycle

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"publisher/internal/mail"
	"publisher/internal/store"
	"publisher/templates"
)

// panicking is the real store with a switch that makes one of its calls panic,
// as a bug in it would.
type panicking struct {
	*store.DB
	claim, record atomic.Bool
}

func (p *panicking) ClaimDeliveries(ctx context.Context, fence, afterID int64, due time.Time, limit int) ([]store.Delivery, error) {
	if p.claim.Load() {
		panic("claim: index out of range")
	}
	return p.DB.ClaimDeliveries(ctx, fence, afterID, due, limit)
}

func (p *panicking) RecordOutcomes(ctx context.Context, fence int64, outcomes []store.Outcome, bounceLimit int) (store.OutcomeResult, error) {
	if p.record.Load() {
		panic("record: nil map")
	}
	return p.DB.RecordOutcomes(ctx, fence, outcomes, bounceLimit)
}

// panickyTransport is the real SMTP transport whose senders panic on a message
// to one address, while armed.
type panickyTransport struct {
	mail.Transport
	at    string
	armed *atomic.Bool
}

func (t panickyTransport) NewSender(ctx context.Context) (mail.Sender, error) {
	s, err := t.Transport.NewSender(ctx)
	if err != nil {
		return nil, err
	}
	return panickySender{Sender: s, t: t}, nil
}

type panickySender struct {
	mail.Sender
	t panickyTransport
}

func (s panickySender) Send(ctx context.Context, m *mail.Message) error {
	if s.t.armed.Load() && m.To.Email == s.t.at {
		panic("sender: nil pointer dereference")
	}
	return s.Sender.Send(ctx, m)
}

// A panic in the producer, a sender or the ledger fails that run with an error
// naming it, and the process goes on: the next run sends what was left, each
// message once (a ledger that panicked after the server accepted may repeat at
// most what was on the wire, one per connection).
func TestPanicInAWorkerFailsOnlyThatRun(t *testing.T) {
	for _, c := range []struct {
		name, who string
		arm       func(p *panicking, sender *atomic.Bool)
		maxDup    int
	}{
		{"producer", "the producer", func(p *panicking, _ *atomic.Bool) { p.claim.Store(true) }, 0},
		{"sender", "a sender", func(_ *panicking, s *atomic.Bool) { s.Store(true) }, 0},
		{"ledger", "the ledger", func(p *panicking, _ *atomic.Bool) { p.record.Store(true) }, 4},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := newBench(t, vilnius(t, "2026-12-03 09:00"))
			b.cfg.Mail.Transport = "smtp" // four senders
			b.piece("one", "One", "")
			const n = 12
			b.listOf(n)
			st := &panicking{DB: b.store}
			var armed atomic.Bool
			tr, err := mail.NewSMTPTransport(mail.SMTPConfig{Host: "127.0.0.1", Port: b.srv.Port, TLS: "none", ConnectTimeout: 5 * time.Second, SendTimeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			r, err := New(Deps{Config: b.cfg, Store: st, Transport: panickyTransport{Transport: tr, at: reader(5), armed: &armed},
				Templates: templates.Embedded(), Now: func() time.Time { return b.now }})
			if err != nil {
				t.Fatal(err)
			}
			c.arm(st, &armed)
			_, err = r.Run(context.Background(), Options{})
			if !errors.Is(err, ErrPanicked) || !strings.Contains(err.Error(), c.who+" panicked") {
				t.Fatalf("run with a panicking %s: err = %v", c.name, err)
			}
			st.claim.Store(false)
			st.record.Store(false)
			armed.Store(false)
			b.now = b.now.Add(time.Hour)
			sum, err := r.Run(context.Background(), Options{})
			if err != nil || sum.Pending != 0 {
				t.Fatalf("the next run: %v, %v", sum, err)
			}
			dup := 0
			for i := range n {
				got := b.srv.PerRecipient()[reader(i)]
				if got == 0 || got > 1+c.maxDup {
					t.Errorf("%s got %d copies", reader(i), got)
				}
				dup += got - 1
			}
			t.Logf("a panicking %s: the next run left %d duplicates", c.name, dup)
			if dup > c.maxDup {
				t.Errorf("%d duplicates, want at most %d", dup, c.maxDup)
			}
		})
	}
}

// The bar's clock starts when it is made, so its first rate is the messages
// sent over the time since: not one message over the microseconds since the
// first render, which showed a first rate of hundreds of thousands a second.
func TestSendBarFirstRateIsNotASpike(t *testing.T) {
	var out bytes.Buffer
	bar := newSendBar(&out, 400)
	const waited = 150 * time.Millisecond
	time.Sleep(waited)
	if err := bar.Add(1); err != nil {
		t.Fatal(err)
	}
	rates := regexp.MustCompile(`, (\d+) msg/(s|min|hr)\)`).FindAllStringSubmatch(out.String(), -1)
	if len(rates) < 2 {
		t.Fatalf("bar drawn %d times, want the blank state and the first message: %q", len(rates), out.String())
	}
	last := rates[len(rates)-1]
	rate, _ := strconv.ParseFloat(last[1], 64)
	perSecond := map[string]float64{"s": 1, "min": 1.0 / 60, "hr": 1.0 / 3600}[last[2]] * rate
	// One message in at least `waited`, rounded to a whole number.
	if limit := 1/waited.Seconds() + 1; perSecond > limit {
		t.Errorf("first rate %v msg/s (%q), want at most %.0f", perSecond, out.String(), limit)
	}
}
