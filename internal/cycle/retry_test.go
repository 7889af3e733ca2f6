package cycle

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"publisher/internal/smtptest"
	"publisher/internal/store"
)

// reader is the address of the i-th subscriber listOf writes: the list is
// spread over three domains, as a real one is.
func reader(i int) string {
	return fmt.Sprintf("reader%02d@%s", i, []string{"example.org", "example.net", "example.com"}[i%3])
}

// listOf writes n immediate subscribers reader(0)...; extra addresses follow them.
func (b *bench) listOf(n int, extra ...string) {
	var csv strings.Builder
	csv.WriteString("email,name,cadence\n")
	for i := range n {
		fmt.Fprintf(&csv, "%s,Reader %d,immediate\n", reader(i), i)
	}
	for _, e := range extra {
		fmt.Fprintf(&csv, "%s,Extra,immediate\n", e)
	}
	b.write("subscribers/list.csv", csv.String())
}

// refuse makes the server answer code and text to the recipients for which
// who is true (every one when who is nil).
func (b *bench) refuse(who func(string) bool, code int, enhanced [3]int, text string) {
	b.srv.SetOptions(smtptest.Options{Rcpt: func(rcpt string) *smtpError {
		if who == nil || who(rcpt) {
			return &smtpError{Code: code, EnhancedCode: enhanced, Message: text}
		}
		return nil
	}})
}

// ledgerRow is the ledger row of one address's latest delivery.
type ledgerRow struct {
	status, lastError, messageID string
	digestID                     int64
	attempts, refusals           int
	failingSince, nextAttempt    int64
}

func (b *bench) delivery(email string) ledgerRow {
	b.t.Helper()
	db, err := sql.Open("sqlite", b.cfg.DBPath())
	if err != nil {
		b.t.Fatal(err)
	}
	defer db.Close()
	var r ledgerRow
	err = db.QueryRow(`SELECT d.status, d.last_error, d.message_id, d.digest_id, d.attempts, d.refusals, d.failing_since, d.next_attempt
		FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id WHERE s.email = ? ORDER BY d.id DESC LIMIT 1`, email).
		Scan(&r.status, &r.lastError, &r.messageID, &r.digestID, &r.attempts, &r.refusals, &r.failingSince, &r.nextAttempt)
	if err != nil {
		b.t.Fatalf("delivery of %s: %v", email, err)
	}
	return r
}

// statuses counts subscribers by status, and their hard bounces.
func (b *bench) statuses() (map[string]int, int) {
	b.t.Helper()
	out, bounces := map[string]int{}, 0
	err := b.store.EachSubscriber(context.Background(), nil, func(s store.Subscriber) error {
		out[s.Status]++
		bounces += s.HardBounces
		return nil
	})
	if err != nil {
		b.t.Fatal(err)
	}
	return out, bounces
}

// A relay that refuses to relay, over three runs: each run stops with one line
// saying so, nobody is suppressed or charged anything (bounce limit 1 and one
// attempt allowed would show any charge), and once the relay is fixed the
// next run delivers the digest to everyone.
func TestRelayRefusingEveryMessageChargesNobody(t *testing.T) {
	b := newBench(t, vilnius(t, "2026-12-03 09:00"))
	b.cfg.Mail.BounceLimit, b.cfg.Mail.MaxAttempts = 1, 1
	b.cfg.Mail.RetryBase = time.Hour // nothing is due again within a run
	b.piece("one", "One", "")
	const n = 20
	b.listOf(n)
	b.refuse(nil, 554, [3]int{5, 7, 1}, "relay access denied")
	for run := range 3 {
		sum, got, err := b.runErr()
		if !errors.Is(err, ErrSendingStopped) || !strings.Contains(err.Error(), "the relay refused every message") || !strings.Contains(err.Error(), "554 5.7.1 relay access denied") {
			t.Fatalf("run %d: err = %v, want the breaker's line", run, err)
		}
		if len(got) != 0 || sum.Failed != 0 || sum.Suppressed != 0 || sum.Pending != n {
			t.Fatalf("run %d: %s; received %v", run, sum, got)
		}
		if sum.Retried < breakerSample || sum.Retried > breakerSample+4 {
			t.Errorf("run %d: %d refused before the stop, want %d and at most the 4 on the wire", run, sum.Retried, breakerSample)
		}
		b.now = b.now.Add(2 * time.Hour)
	}
	st, bounces := b.statuses()
	if st[store.StatusActive] != n || bounces != 0 {
		t.Fatalf("after three refusing runs: %v, %d hard bounces", st, bounces)
	}
	for i := range n {
		if r := b.delivery(reader(i)); r.status != store.DeliveryPending || r.refusals != 0 {
			t.Fatalf("%s: %+v", reader(i), r)
		}
	}
	b.srv.SetOptions(smtptest.Options{})
	sum, got := b.run()
	if sum.Sent != n || sum.Pending != 0 || len(got) != n {
		t.Fatalf("healthy relay: %s, %d received", sum, len(got))
	}
}

// "550 5.1.1 user unknown" for one address: it alone bounces, and is suppressed
// when it reaches the bounce limit; the others are untouched.
func TestUnknownAddressAloneBounces(t *testing.T) {
	b := newBench(t, vilnius(t, "2026-12-03 09:00"))
	b.cfg.Mail.BounceLimit = 2
	const n = 12
	b.listOf(n, "gone@example.org")
	b.refuse(func(rcpt string) bool { return rcpt == "gone@example.org" }, 550, [3]int{5, 1, 1}, "user unknown")
	for i, want := range []struct{ failed, suppressed int }{{1, 0}, {1, 1}, {0, 0}} {
		b.piece(fmt.Sprintf("p%d", i), fmt.Sprintf("Piece %d", i), "")
		sum, err := b.runOnce()
		if err != nil || sum.Sent != n || sum.Failed != want.failed || sum.Suppressed != want.suppressed {
			t.Fatalf("run %d: %s (%v), want %d sent, %d failed, %d suppressed", i, sum, err, n, want.failed, want.suppressed)
		}
		b.now = b.now.Add(time.Hour)
	}
	st, bounces := b.statuses()
	if st[store.StatusBounced] != 1 || st[store.StatusActive] != n || bounces != 2 {
		t.Fatalf("statuses %v, %d bounces", st, bounces)
	}
	if s, _ := b.store.SubscriberByEmail(context.Background(), "gone@example.org"); s.Status != store.StatusBounced {
		t.Fatalf("gone@: %s", s.Status)
	}
}

// runOnce runs one cycle and moves nothing.
func (b *bench) runOnce() (*Summary, error) {
	sum, _, err := b.runErr()
	return sum, err
}

// A refusal of one message on the sender's side ("552 5.3.4 message too big")
// while the rest go out: retried by later runs, counted, and given up after
// max_attempts refusals, the reader untouched.
func TestRefusalOfOneMessageCountsTowardMaxAttempts(t *testing.T) {
	b := newBench(t, vilnius(t, "2026-12-03 09:00"))
	b.cfg.Mail.MaxAttempts = 3
	b.cfg.Mail.RetryBase, b.cfg.Mail.RetryMax = time.Minute, time.Hour
	b.piece("one", "One", "")
	const n = 9
	b.listOf(n, "big@example.org")
	b.refuse(func(rcpt string) bool { return rcpt == "big@example.org" }, 552, [3]int{5, 3, 4}, "message size exceeds fixed limit")
	start := b.now
	for run, want := range []struct{ sent, failed, refusals int }{{n, 0, 1}, {0, 0, 2}, {0, 1, 3}} {
		sum, err := b.runOnce()
		if err != nil || sum.Sent != want.sent || sum.Failed != want.failed {
			t.Fatalf("run %d: %s (%v)", run, sum, err)
		}
		r := b.delivery("big@example.org")
		if r.refusals != want.refusals || !strings.Contains(r.lastError, "552") {
			t.Fatalf("run %d: %+v, want %d refusals", run, r, want.refusals)
		}
		if want.failed == 0 && (r.status != store.DeliveryPending || time.UnixMicro(r.nextAttempt).Sub(b.now) != time.Hour || r.failingSince != start.UnixMicro()) {
			t.Fatalf("run %d: %+v, want pending, tried again in an hour, failing since the first run", run, r)
		}
		b.now = b.now.Add(2 * time.Hour)
	}
	if r := b.delivery("big@example.org"); r.status != store.DeliveryFailed {
		t.Fatalf("after three refusals: %+v", r)
	}
	if st, bounces := b.statuses(); st[store.StatusActive] != n+1 || bounces != 0 {
		t.Fatalf("the reader was charged: %v, %d bounces", st, bounces)
	}
}

// A full mailbox is retried across runs until mail.retry_window has passed
// since its first failure, then given up; it is never a bounce.
func TestMailboxFullRetriedForTheWindow(t *testing.T) {
	b := newBench(t, vilnius(t, "2026-12-03 09:00"))
	b.cfg.Mail.RetryBase, b.cfg.Mail.RetryWindow = time.Hour, 6*time.Hour
	b.cfg.Mail.MaxAttempts = 1 // counts refusals on the sender's side only
	b.piece("one", "One", "")
	b.listOf(5, "full@example.org")
	b.refuse(func(rcpt string) bool { return rcpt == "full@example.org" }, 552, [3]int{5, 2, 2}, "mailbox full")
	for _, step := range []struct {
		after  time.Duration
		status string
	}{{0, store.DeliveryPending}, {2 * time.Hour, store.DeliveryPending}, {5 * time.Hour, store.DeliveryPending}, {7 * time.Hour, store.DeliveryFailed}} {
		b.now = vilnius(t, "2026-12-03 09:00").Add(step.after)
		if _, err := b.runOnce(); err != nil {
			t.Fatal(err)
		}
		if r := b.delivery("full@example.org"); r.status != step.status || r.refusals != 0 {
			t.Fatalf("after %v: %+v, want %s", step.after, r, step.status)
		}
	}
	if s, _ := b.store.SubscriberByEmail(context.Background(), "full@example.org"); s.Status != store.StatusActive || s.HardBounces != 0 {
		t.Fatalf("a full mailbox counted as a bounce: %+v", s)
	}
}

// An outage longer than the retry window, with far more attempts than
// max_attempts, fails nothing: the relay delivered nothing to anyone meanwhile.
// Once it is back the next run delivers everyone.
func TestOutageSpendsNoRetries(t *testing.T) {
	b := newBench(t, vilnius(t, "2026-12-01 09:00"))
	b.cfg.Mail.RetryBase, b.cfg.Mail.RetryMax, b.cfg.Mail.RetryWindow = time.Hour, time.Hour, 6*time.Hour
	b.cfg.Mail.MaxAttempts = 1
	b.piece("first", "First", "")
	const n = 4
	b.listOf(n)
	if sum, _ := b.run(); sum.Sent != n {
		t.Fatalf("before the outage: %s", sum)
	}
	b.piece("second", "Second", "")
	addr := b.srv.Addr
	b.srv.Stop() // connections refused from now on
	// Three days, a run a day: each far past the window, each an attempt
	// beyond max_attempts.
	for day := 1; day <= 3; day++ {
		b.now = vilnius(t, "2026-12-01 09:00").Add(time.Duration(day) * 24 * time.Hour)
		sum, err := b.runOnce()
		if err != nil || sum.Failed != 0 || sum.Pending != n {
			t.Fatalf("day %d of the outage: %s (%v)", day, sum, err)
		}
	}
	if r := b.delivery(reader(0)); r.attempts != 3 || r.status != store.DeliveryPending {
		t.Fatalf("after the outage: %+v, want three attempts, still pending", r)
	}
	b.srv = smtptest.StartAt(t, addr, smtptest.Options{})
	b.now = b.now.Add(time.Hour)
	if sum, got := b.run(); sum.Sent != n || sum.Failed != 0 || len(got) != n {
		t.Fatalf("relay back: %s", sum)
	}
}

// The first readers of the list all at a domain whose policy refuses the desk
// (the relay answers 554 5.7.1 for them): one domain, so no stop, and every
// reader after them gets the digest; they stay pending, charged nothing while
// nothing had been accepted yet.
func TestABlockOfRefusalsForOneDomainDoesNotStopTheRun(t *testing.T) {
	b := newBench(t, vilnius(t, "2026-12-03 09:00"))
	b.cfg.Mail.RetryBase = time.Hour
	b.piece("one", "One", "")
	var blocked []string
	for i := range 2 * breakerSample {
		blocked = append(blocked, fmt.Sprintf("staff%02d@blocked.example", i))
	}
	var csv strings.Builder
	csv.WriteString("email,name,cadence\n")
	for _, e := range blocked {
		fmt.Fprintf(&csv, "%s,Staff,immediate\n", e)
	}
	const n = 15
	for i := range n {
		fmt.Fprintf(&csv, "%s,Reader,immediate\n", reader(i))
	}
	b.write("subscribers/list.csv", csv.String())
	b.refuse(func(rcpt string) bool { return strings.HasSuffix(rcpt, "@blocked.example") }, 554, [3]int{5, 7, 1}, "recipient domain refuses this sender")
	sum, got, err := b.runErr()
	if err != nil || sum.Sent != n || sum.Pending != len(blocked) || len(got) != n {
		t.Fatalf("%s (%v)", sum, err)
	}
	if st, bounces := b.statuses(); st[store.StatusActive] != n+len(blocked) || bounces != 0 {
		t.Fatalf("statuses %v, %d bounces", st, bounces)
	}
}
