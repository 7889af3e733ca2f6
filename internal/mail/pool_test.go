package mail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"publisher/internal/smtptest"
)

// relayTo is a Relay sending to a loopback port in clear text.
func relayTo(t testing.TB, port, conns int, perSecond float64) Relay {
	t.Helper()
	tr, err := NewSMTPTransport(SMTPConfig{Host: "127.0.0.1", Port: port, TLS: TLSNone, HELO: "publisher.test",
		ConnectTimeout: 5 * time.Second, SendTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return Relay{Name: fmt.Sprintf("127.0.0.1:%d", port), Transport: tr, Connections: conns, Rate: perSecond}
}

// logBuffer collects a pool's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

func newPool(t testing.TB, cfg PoolConfig, relays ...Relay) (*Pool, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	cfg.Relays = relays
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	p, err := NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p, logs
}

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) add(d time.Duration) { c.ns.Add(int64(d)) }

// delivery is what deliverAll saw.
type delivery struct {
	errs    []error // every error a Send returned
	unknown int     // of them, sends whose outcome was lost (ErrUnknownOutcome)
}

// deliverAll sends messages first..first+n-1 through tr as the cycle does: each of
// `senders` goroutines keeps one Sender for many messages and, after a temporary
// error, closes it and opens a new one; the failed message goes back in the queue
// (the ledger's retry), up to 10 times.
func deliverAll(t *testing.T, tr Transport, senders, first, n int) delivery {
	t.Helper()
	queue := make(chan int, n)
	for i := range n {
		queue <- first + i
	}
	var left atomic.Int64
	left.Store(int64(n))
	var mu sync.Mutex
	var d delivery
	attempts := map[int]int{}
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			s, _ := tr.NewSender(context.Background())
			defer func() { _ = s.Close() }()
			for i := range queue {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				err := s.Send(ctx, sampleMessage(i))
				cancel()
				done := err == nil
				if err != nil {
					mu.Lock()
					d.errs = append(d.errs, err)
					if errors.Is(err, ErrUnknownOutcome) {
						d.unknown++
					}
					attempts[i]++
					if attempts[i] >= 10 || Classify(err) != Temporary {
						t.Errorf("message %d given up: %v", i, err)
						done = true
					}
					mu.Unlock()
					_ = s.Close()
					s, _ = tr.NewSender(context.Background())
				}
				if !done {
					queue <- i
					continue
				}
				if left.Add(-1) == 0 {
					close(queue)
				}
			}
		})
	}
	wg.Wait()
	return d
}

// copies counts the copies of messages first..first+n-1 over servers: how many
// were missed and how many arrived more than once.
func copies(first, n int, servers ...*smtptest.Server) (missed, duplicates int) {
	per := map[string]int{}
	for _, s := range servers {
		for r, c := range s.PerRecipient() {
			per[r] += c
		}
	}
	for i := first; i < first+n; i++ {
		switch c := per[fmt.Sprintf("reader%d@example.net", i)]; {
		case c == 0:
			missed++
		case c > 1:
			duplicates += c - 1
		}
	}
	return missed, duplicates
}

func TestPoolSpreadsInProportionToConnections(t *testing.T) {
	a := smtptest.Start(t, smtptest.Options{})
	b := smtptest.Start(t, smtptest.Options{})
	p, _ := newPool(t, PoolConfig{}, relayTo(t, a.Port, 1, 0), relayTo(t, b.Port, 3, 0))
	if p.Connections() != 4 {
		t.Fatalf("Connections = %d, want 4", p.Connections())
	}

	// One sender at a time: every relay always has a free connection, and the
	// weighted round robin gives each exactly its share.
	if d := deliverAll(t, p, 1, 0, 40); len(d.errs) != 0 {
		t.Fatalf("errors: %v", d.errs)
	}
	if a.Count() != 10 || b.Count() != 30 {
		t.Errorf("one sender: relays got %d and %d of 40, want 10 and 30", a.Count(), b.Count())
	}
	if a.Sessions() != 1 || b.Sessions() != 1 {
		t.Errorf("one sender opened %d and %d connections, want one each, kept open", a.Sessions(), b.Sessions())
	}

	// As many senders as connections, on slower servers: every connection stays
	// busy, none beyond each relay's limit. First let the servers close the
	// connections the first senders quit, so that they are not counted twice.
	for deadline := time.Now().Add(10 * time.Second); a.Open()+b.Open() > 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("servers still hold %d and %d connections", a.Open(), b.Open())
		}
	}
	a.SetOptions(smtptest.Options{Delay: time.Millisecond})
	b.SetOptions(smtptest.Options{Delay: time.Millisecond})
	if d := deliverAll(t, p, p.Connections(), 100, 400); len(d.errs) != 0 {
		t.Fatalf("errors: %v", d.errs)
	}
	gotA := a.Count() - 10
	if gotA < 60 || gotA > 140 {
		t.Errorf("four senders: the 1-connection relay got %d of 400, want about 100", gotA)
	}
	if a.MaxOpen() > 1 || b.MaxOpen() > 3 {
		t.Errorf("connections open at once: %d and %d, limits 1 and 3", a.MaxOpen(), b.MaxOpen())
	}
	if missed, dup := copies(0, 40, a, b); missed != 0 || dup != 0 {
		t.Errorf("first batch: %d missed, %d duplicates", missed, dup)
	}
	if missed, dup := copies(100, 400, a, b); missed != 0 || dup != 0 {
		t.Errorf("second batch: %d missed, %d duplicates", missed, dup)
	}
}

func TestPoolRelayRefusingConnectionsGetsNothing(t *testing.T) {
	refused := smtptest.RefusedPort(t)
	b := smtptest.Start(t, smtptest.Options{})
	p, logs := newPool(t, PoolConfig{}, relayTo(t, refused, 2, 0), relayTo(t, b.Port, 2, 0))

	d := deliverAll(t, p, p.Connections(), 0, 100)
	// The message that met the refusal went through the other relay at once: no
	// Send failed, so nothing waits for a retry.
	if len(d.errs) != 0 {
		t.Errorf("%d sends failed, want none: %v", len(d.errs), d.errs)
	}
	if missed, dup := copies(0, 100, b); missed != 0 || dup != 0 {
		t.Errorf("%d missed, %d duplicates", missed, dup)
	}
	if b.MaxOpen() > 2 {
		t.Errorf("%d connections open at once to the working relay, limit 2", b.MaxOpen())
	}
	st := p.Status()
	if st[0].InService || st[0].LastError == nil || !st[1].InService {
		t.Errorf("status %+v: want the refusing relay out of service, the other in", st)
	}
	if n := logs.count("relay out of service"); n != 1 {
		t.Errorf("logged %d take-outs, want 1 (its cool-down outlasts the test)", n)
	}
}

func TestPoolRelayStoppedMidSendHandsItsShareOver(t *testing.T) {
	// Slow enough that messages are on the wire when the relay goes: once it
	// has taken 50, the next recipient the first relay is given stops it (the
	// listener closed, every connection dropped) while the send is in full flow.
	a := smtptest.Start(t, smtptest.Options{Delay: 2 * time.Millisecond, StopAfter: 50})
	b := smtptest.Start(t, smtptest.Options{Delay: 2 * time.Millisecond})
	const aConns, bConns, n = 2, 2, 400
	p, logs := newPool(t, PoolConfig{}, relayTo(t, a.Port, aConns, 0), relayTo(t, b.Port, bConns, 0))
	d := deliverAll(t, p, p.Connections(), 0, n)
	atStop, ok := a.StoppedAt()
	if !ok {
		t.Fatalf("the relay never stopped (it took %d)", a.Count())
	}

	missed, dup := copies(0, n, a, b)
	t.Logf("relay stopped after %d; it holds %d, the other %d; %d sends ended without a reply, %d duplicates",
		atStop, a.Count(), b.Count(), d.unknown, dup)
	if missed != 0 {
		t.Errorf("%d messages missed", missed)
	}
	// Only a message whose reply was lost may arrive twice, and only the
	// connections to the stopped relay can have been waiting for one.
	if dup > d.unknown || d.unknown > aConns {
		t.Errorf("%d duplicates, %d sends without a reply: want duplicates <= those <= %d connections", dup, d.unknown, aConns)
	}
	// Every other failure was sent on through the other relay at once.
	for _, err := range d.errs {
		if !errors.Is(err, ErrUnknownOutcome) {
			t.Errorf("a send failed although it could have gone elsewhere: %v", err)
		}
	}
	if a.Count() > atStop+aConns {
		t.Errorf("the stopped relay recorded %d messages after it stopped, more than were on the wire", a.Count()-atStop)
	}
	if b.Count() < n-atStop {
		t.Errorf("the other relay carried %d, want at least the %d left", b.Count(), n-atStop)
	}
	if b.MaxOpen() > bConns {
		t.Errorf("%d connections open at once to the other relay, limit %d", b.MaxOpen(), bConns)
	}
	if st := p.Status(); st[0].InService {
		t.Errorf("the stopped relay is still in service: %+v", st[0])
	}
	if logs.count("relay out of service") != 1 {
		t.Errorf("take-outs logged: %d, want 1", logs.count("relay out of service"))
	}
}

func TestPoolRelayAnswering4xxIsTakenOutAndComesBack(t *testing.T) {
	always451 := smtptest.Options{Rcpt: func(string) *smtp.SMTPError {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "queue trouble"}
	}}
	a := smtptest.Start(t, always451)
	b := smtptest.Start(t, smtptest.Options{})
	clock := newFakeClock()
	p, logs := newPool(t, PoolConfig{Cooldown: time.Minute, FailAfter: 3, Now: clock.now},
		relayTo(t, a.Port, 1, 0), relayTo(t, b.Port, 1, 0))

	// Turns alternate; the relay's first two 451s go back to the caller like any
	// 4xx, the third takes it out and that message goes through the other at once.
	d := deliverAll(t, p, 1, 0, 20)
	if len(d.errs) != 2 {
		t.Errorf("%d sends failed, want 2 (the 4xx replies before the take-out): %v", len(d.errs), d.errs)
	}
	if missed, dup := copies(0, 20, b); missed != 0 || dup != 0 || a.Count() != 0 {
		t.Errorf("%d missed, %d duplicates, %d through the failing relay", missed, dup, a.Count())
	}
	st := p.Status()
	if st[0].InService || !st[0].Until.Equal(clock.now().Add(time.Minute)) || Code(st[0].LastError) != 451 {
		t.Fatalf("after three 451s: %+v, want out of service for a minute after a 451", st[0])
	}

	// Within its cool-down it is not tried at all.
	sessions := a.Sessions()
	clock.add(59 * time.Second)
	if d := deliverAll(t, p, 1, 100, 10); len(d.errs) != 0 {
		t.Fatalf("errors: %v", d.errs)
	}
	if a.Sessions() != sessions {
		t.Errorf("the relay was tried %d times during its cool-down", a.Sessions()-sessions)
	}

	// After it, one message tries it; still 451: out again, for twice as long,
	// and that message goes through the other relay.
	clock.add(2 * time.Second)
	if d := deliverAll(t, p, 1, 200, 1); len(d.errs) != 0 {
		t.Fatalf("the failed trial's message did not go elsewhere: %v", d.errs)
	}
	if st := p.Status(); st[0].InService || !st[0].Until.Equal(clock.now().Add(2*time.Minute)) {
		t.Fatalf("after a failed trial: %+v, want out for two minutes", st[0])
	}
	if logs.count("relay on trial") != 1 || logs.count("relay out of service") != 2 {
		t.Errorf("log: %d trials, %d take-outs; want 1 and 2", logs.count("relay on trial"), logs.count("relay out of service"))
	}

	// Healthy again, and its cool-down over: the next message brings it back,
	// and it takes its share again.
	a.SetOptions(smtptest.Options{})
	clock.add(2*time.Minute + time.Second)
	if d := deliverAll(t, p, 1, 300, 10); len(d.errs) != 0 {
		t.Fatalf("errors: %v", d.errs)
	}
	if !p.Status()[0].InService || logs.count("relay back in service") != 1 {
		t.Errorf("not back in service: %+v", p.Status()[0])
	}
	if a.Count() < 4 {
		t.Errorf("the relay back in service got %d of 10, want about half", a.Count())
	}
	if missed, dup := copies(100, 10, a, b); missed != 0 || dup != 0 {
		t.Errorf("%d missed, %d duplicates", missed, dup)
	}
	if missed, dup := copies(300, 10, a, b); missed != 0 || dup != 0 {
		t.Errorf("%d missed, %d duplicates", missed, dup)
	}
}

// A relay that refuses to relay ("554 5.7.1 relay access denied" at RCPT):
// each message it refuses goes through the other at once, so nothing fails,
// and after FailAfter refusals in a row it is out of service. A message that
// every relay refuses (too large for all of them) comes back refused, the
// sender's problem, and takes no relay out.
func TestPoolRelayRefusingTheDeskHandsItsShareOver(t *testing.T) {
	a := smtptest.Start(t, smtptest.Options{Rcpt: func(string) *smtp.SMTPError {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "relay access denied"}
	}})
	b := smtptest.Start(t, smtptest.Options{})
	p, logs := newPool(t, PoolConfig{FailAfter: 3}, relayTo(t, a.Port, 1, 0), relayTo(t, b.Port, 1, 0))
	// Enough messages that the refusing relay is surely offered three, however
	// the two senders happen to be scheduled.
	if d := deliverAll(t, p, 2, 0, 60); len(d.errs) != 0 {
		t.Fatalf("%d sends failed: %v", len(d.errs), d.errs)
	}
	if missed, dup := copies(0, 60, b); missed != 0 || dup != 0 || a.Count() != 0 {
		t.Fatalf("%d missed, %d duplicates, %d through the refusing relay", missed, dup, a.Count())
	}
	if st := p.Status(); st[0].InService || Code(st[0].LastError) != 554 || logs.count("relay out of service") != 1 {
		t.Fatalf("after three refusals: %+v, %d take-outs", st[0], logs.count("relay out of service"))
	}

	tooBig := func(rcpt string) *smtp.SMTPError {
		if rcpt == "reader999@example.net" {
			return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "message too big for system"}
		}
		return nil
	}
	c := smtptest.Start(t, smtptest.Options{Rcpt: tooBig})
	d := smtptest.Start(t, smtptest.Options{Rcpt: tooBig})
	p, _ = newPool(t, PoolConfig{FailAfter: 3}, relayTo(t, c.Port, 1, 0), relayTo(t, d.Port, 1, 0))
	s, _ := p.NewSender(context.Background())
	defer s.Close()
	for i := range 3 {
		err := s.Send(context.Background(), sampleMessage(999))
		if CauseOf(err) != CauseSender || Code(err) != 552 {
			t.Fatalf("refused by every relay (%d): %v, want the 552 back as the sender's problem", i, err)
		}
		// Mail that goes out between its attempts keeps both relays in service.
		for j := range 2 {
			if err := s.Send(context.Background(), sampleMessage(2*i+j)); err != nil {
				t.Fatalf("the next message: %v", err)
			}
		}
	}
	for _, st := range p.Status() {
		if !st.InService {
			t.Errorf("%s taken out by one message's refusals", st.Name)
		}
	}
}

func TestPoolRateLimitIsPerRelay(t *testing.T) {
	a := smtptest.Start(t, smtptest.Options{})
	b := smtptest.Start(t, smtptest.Options{})
	// One message an hour through a: its bucket holds one token, and the
	// test never waits for another.
	p, _ := newPool(t, PoolConfig{}, relayTo(t, a.Port, 1, 1.0/3600), relayTo(t, b.Port, 1, 0))
	if d := deliverAll(t, p, 1, 0, 20); len(d.errs) != 0 {
		t.Fatalf("errors: %v", d.errs)
	}
	// The limited relay's turns went to the other instead of waiting.
	if a.Count() != 1 || b.Count() != 19 {
		t.Errorf("relays got %d and %d of 20, want 1 (its one token) and 19", a.Count(), b.Count())
	}

	// With the other relay gone, the limit still holds: the message waits for
	// a token, and fails when its deadline comes first.
	b.Stop()
	s, _ := p.NewSender(context.Background())
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.Send(ctx, sampleMessage(99))
	var e *Error
	if !errors.As(err, &e) || e.Stage != StageQueue || Classify(err) != Temporary {
		t.Errorf("Send = %v, want a temporary rate-limit error", err)
	}
	if a.Count() != 1 {
		t.Errorf("the limited relay took %d messages, want still 1", a.Count())
	}
}

func TestPoolNeverResendsAMessageWhoseReplyWasLost(t *testing.T) {
	a := smtptest.Start(t, smtptest.Options{HangUpAfterData: func(rcpt string) bool { return rcpt == "reader0@example.net" }})
	b := smtptest.Start(t, smtptest.Options{})
	p, _ := newPool(t, PoolConfig{}, relayTo(t, a.Port, 1, 0), relayTo(t, b.Port, 1, 0))
	s, _ := p.NewSender(context.Background())
	defer s.Close()

	err := s.Send(context.Background(), sampleMessage(0)) // the first turn is the first relay's
	if !errors.Is(err, ErrUnknownOutcome) || Classify(err) != Temporary {
		t.Fatalf("Send = %v, want a temporary error with the outcome unknown", err)
	}
	if a.Count() != 1 || b.Count() != 0 {
		t.Fatalf("relays hold %d and %d copies: the message must not be sent on at once", a.Count(), b.Count())
	}
	// The relay that hung up is out of service; the next message goes elsewhere.
	if err := s.Send(context.Background(), sampleMessage(1)); err != nil {
		t.Fatal(err)
	}
	if b.Count() != 1 || p.Status()[0].InService {
		t.Errorf("after the lost reply: %d through the other relay, status %+v", b.Count(), p.Status()[0])
	}
}

func TestSMTPOutcomeUnknownOnlyWhenTheReplyToAWholeMessageIsLost(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{
		HangUpAfterData: func(rcpt string) bool { return rcpt == "lost@example.net" },
		Rcpt: func(rcpt string) *smtp.SMTPError {
			if rcpt == "busy@example.net" {
				return &smtp.SMTPError{Code: 451, Message: "later"}
			}
			return nil
		},
	})
	s := newSender(t, relayTo(t, srv.Port, 1, 0).Transport)
	for _, c := range []struct {
		rcpt    string
		unknown bool
	}{{"lost@example.net", true}, {"busy@example.net", false}, {"fine@example.net", false}} {
		m := sampleMessage(1)
		m.To.Email = c.rcpt
		err := s.Send(context.Background(), m)
		if errors.Is(err, ErrUnknownOutcome) != c.unknown || (c.rcpt != "fine@example.net") != (err != nil) {
			t.Errorf("%s: Send = %v, want outcome unknown: %v", c.rcpt, err, c.unknown)
		}
		if err != nil && Classify(err) != Temporary {
			t.Errorf("%s: %v is not temporary", c.rcpt, err)
		}
	}
}

func TestPoolEveryRelayDown(t *testing.T) {
	p, _ := newPool(t, PoolConfig{}, relayTo(t, smtptest.RefusedPort(t), 2, 0), relayTo(t, smtptest.RefusedPort(t), 2, 0))
	s, _ := p.NewSender(context.Background())
	defer s.Close()
	for i := range 3 {
		// Each message tries each relay once (an early trial when all are out),
		// then fails as it would with one relay down.
		err := s.Send(context.Background(), sampleMessage(i))
		var e *Error
		if !errors.As(err, &e) || Classify(err) != Temporary || e.Stage != StageDial || e.Recipient != sampleMessage(i).To.Email {
			t.Fatalf("message %d: Send = %v, want a temporary connect error naming the recipient", i, err)
		}
	}
	for _, st := range p.Status() {
		if st.InService {
			t.Errorf("%s in service", st.Name)
		}
	}
}

func TestPoolWaitsForAFreeConnectionRatherThanOpenOneMore(t *testing.T) {
	a, b := startServer(t, serverOptions{}), startServer(t, serverOptions{})
	for _, ts := range []*testServer{a, b} {
		ts.stallInData["stall@example.net"] = true
	}
	p, _ := newPool(t, PoolConfig{}, relayTo(t, a.Port, 1, 0), relayTo(t, b.Port, 1, 0))
	stall := sampleMessage(1)
	stall.To.Email = "stall@example.net"
	// Two senders hold the two relays' one connection each.
	for _, ts := range []*testServer{a, b} {
		s := newSender(t, p)
		go func() { _ = s.Send(context.Background(), stall) }()
		<-ts.stalled
	}
	third := newSender(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := third.Send(ctx, sampleMessage(3))
	var e *Error
	if !errors.As(err, &e) || e.Stage != StageQueue || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Send with every connection busy = %v, want to wait until the deadline", err)
	}
	if a.Sessions() != 1 || b.Sessions() != 1 {
		t.Errorf("%d and %d connections, limits 1 and 1", a.Sessions(), b.Sessions())
	}
	if p.Status()[0].InService != true || p.Status()[1].InService != true {
		t.Errorf("a busy relay was taken out: %+v", p.Status())
	}
}
