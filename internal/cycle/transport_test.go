package cycle

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"publisher/internal/config"
	"publisher/internal/mail"
	"publisher/internal/smtptest"
	"publisher/templates"
)

func TestNewTransportBuildsAPoolForSeveralRelays(t *testing.T) {
	cfg := config.Defaults()
	cfg.Mail.Transport = "smtp"
	cfg.Mail.SMTP.Host = "127.0.0.1"
	one, err := NewTransport(&cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, isPool := one.(*mail.Pool); isPool {
		t.Error("one relay got a pool")
	}

	cfg.Mail.SMTP.Host = ""
	cfg.Mail.SMTP.Relays = []config.Relay{
		{Host: "127.0.0.1", Port: 2525, TLS: "none", Connections: 3},
		{Host: "smtp.example.org", Port: 587, TLS: "starttls", Connections: 5, Rate: 2},
	}
	several, err := NewTransport(&cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	pool, isPool := several.(*mail.Pool)
	if !isPool || pool.Connections() != 8 || cfg.Mail.SMTP.TotalConnections() != 8 {
		t.Fatalf("two relays: %T with %d connections, want a pool with 8", several, cfg.Mail.SMTP.TotalConnections())
	}
	if st := pool.Status(); st[0].Name != "127.0.0.1:2525" || st[1].Name != "smtp.example.org:587" {
		t.Errorf("relay names %q, %q", st[0].Name, st[1].Name)
	}

	cfg.Mail.SMTP.Relays[1].TLS = "none" // not a loopback host
	if _, err := NewTransport(&cfg, nil); err == nil || !strings.Contains(err.Error(), "mail.smtp.relays[1]") {
		t.Errorf("bad second relay: %v, want an error naming mail.smtp.relays[1]", err)
	}
}

func TestRunOverTwoRelaysOneRefusing(t *testing.T) {
	b := newBench(t, vilnius(t, "2026-11-02 09:00"))
	good := b.srv
	b.cfg.Mail.Transport = "smtp"
	b.cfg.Mail.SMTP.ConnectTimeout = 5 * time.Second
	b.cfg.Mail.SMTP.SendTimeout = 10 * time.Second
	b.cfg.Mail.SMTP.Relays = []config.Relay{
		{Host: "127.0.0.1", Port: smtptest.RefusedPort(t), TLS: "none", Connections: 2},
		{Host: "127.0.0.1", Port: good.Port, TLS: "none", Connections: 2},
	}
	b.piece("grid-sync", "Grid synchronisation", "2026-11-02", "energy")
	var list strings.Builder
	list.WriteString("email,name,cadence\n")
	const n = 30
	for i := range n {
		fmt.Fprintf(&list, "reader%02d@example.org,Reader %d,immediate\n", i, i)
	}
	b.write("subscribers/list.csv", list.String())

	r, err := New(Deps{Config: b.cfg, Store: b.store, Templates: templates.Embedded(), Now: func() time.Time { return b.now }})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := r.Run(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The refused relay's turns went to the other at once: nothing to retry.
	if sum.Sent != n || sum.Retried != 0 || sum.Pending != 0 {
		t.Errorf("summary %s, want all %d sent with no retry", sum, n)
	}
	per := good.PerRecipient()
	for i := range n {
		if c := per[fmt.Sprintf("reader%02d@example.org", i)]; c != 1 {
			t.Errorf("reader%02d got %d copies", i, c)
		}
	}
	if good.MaxOpen() > 2 {
		t.Errorf("%d connections open at once to a relay allowed 2", good.MaxOpen())
	}
}

// Every relay refusing to relay: each message is offered to both, both
// refuse, and the breaker stops the run naming the refusal; nobody is charged.
func TestRunOverRelaysThatAllRefuse(t *testing.T) {
	b := newBench(t, vilnius(t, "2026-11-02 09:00"))
	b.cfg.Mail.Transport = "smtp"
	b.cfg.Mail.BounceLimit, b.cfg.Mail.MaxAttempts = 1, 1
	b.cfg.Mail.RetryBase = time.Hour
	denied := smtptest.Options{Rcpt: func(string) *smtpError {
		return &smtpError{Code: 554, EnhancedCode: [3]int{5, 7, 1}, Message: "relay access denied"}
	}}
	var relays []*smtptest.Server
	for range 2 {
		srv := smtptest.Start(t, denied)
		relays = append(relays, srv)
		b.cfg.Mail.SMTP.Relays = append(b.cfg.Mail.SMTP.Relays, config.Relay{Host: "127.0.0.1", Port: srv.Port, TLS: "none", Connections: 2})
	}
	b.piece("grid-sync", "Grid synchronisation", "2026-11-02", "energy")
	b.listOf(30)
	r, err := New(Deps{Config: b.cfg, Store: b.store, Templates: templates.Embedded(), Now: func() time.Time { return b.now }})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := r.Run(context.Background(), Options{})
	if !errors.Is(err, ErrSendingStopped) || !strings.Contains(err.Error(), "every relay refused every message") || !strings.Contains(err.Error(), "554 5.7.1 relay access denied") {
		t.Fatalf("err = %v", err)
	}
	if sum.Failed != 0 || sum.Suppressed != 0 || sum.Pending != 30 || relays[0].Count()+relays[1].Count() != 0 {
		t.Fatalf("summary %s", sum)
	}
}
