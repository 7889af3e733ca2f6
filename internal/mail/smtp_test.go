package mail

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

func plainTransport(t testing.TB, ts *testServer, change func(*SMTPConfig)) *SMTPTransport {
	t.Helper()
	cfg := SMTPConfig{Host: "127.0.0.1", Port: ts.Port, TLS: TLSNone, HELO: "publisher.test",
		ConnectTimeout: 5 * time.Second, SendTimeout: 5 * time.Second}
	if change != nil {
		change(&cfg)
	}
	tr, err := NewSMTPTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func newSender(t testing.TB, tr Transport) Sender {
	t.Helper()
	s, err := tr.NewSender(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestSMTPDeliversManyMessagesOverOneConnection(t *testing.T) {
	ts := startServer(t, serverOptions{})
	s := newSender(t, plainTransport(t, ts, nil))
	const n = 25
	for i := range n {
		if err := s.Send(context.Background(), sampleMessage(i)); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if got := ts.Sessions(); got != 1 {
		t.Errorf("%d SMTP sessions for %d messages, want 1", got, n)
	}
	msgs := ts.Messages()
	if len(msgs) != n {
		t.Fatalf("server received %d messages, want %d", len(msgs), n)
	}
	for i, got := range msgs {
		m := sampleMessage(i)
		if got.From != m.From.Email || len(got.To) != 1 || got.To[0] != m.To.Email {
			t.Errorf("message %d: envelope %s -> %v", i, got.From, got.To)
		}
		assertMessage(t, got.Data, m)
	}
}

func TestSMTPInternationalisedDomainInEnvelope(t *testing.T) {
	ts := startServer(t, serverOptions{})
	s := newSender(t, plainTransport(t, ts, nil))
	m := sampleMessage(1)
	m.To.Email = "leser@bücher.example"
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if got := ts.Messages()[0].To; len(got) != 1 || got[0] != "leser@xn--bcher-kva.example" {
		t.Errorf("RCPT TO %v, want the A-label domain", got)
	}
}

func TestSMTPClassifiesFailures(t *testing.T) {
	ts := startServer(t, serverOptions{})
	ts.rcptReply["busy@example.net"] = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "try again later"}
	ts.rcptReply["gone@example.net"] = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	ts.dropInData["drop@example.net"] = true
	ts.stallInData["stall@example.net"] = true
	s := newSender(t, plainTransport(t, ts, func(c *SMTPConfig) { c.SendTimeout = time.Second }))
	ctx := context.Background()

	send := func(email string) error {
		m := sampleMessage(1)
		m.To.Email = email
		m.MessageID = "id-" + strings.ReplaceAll(email, "@", ".") + "@example.org"
		return s.Send(ctx, m)
	}
	deliver := func(email string) {
		t.Helper()
		if err := send(email); err != nil {
			t.Fatalf("send to %s after a failure: %v", email, err)
		}
	}

	cases := []struct {
		email    string
		class    Class
		code     int
		enhanced string
		stage    Stage
		sessions int // sessions after the next good message
	}{
		{"busy@example.net", Temporary, 451, "4.7.1", StageRcpt, 1},
		{"gone@example.net", Permanent, 550, "5.1.1", StageRcpt, 1},
		{"drop@example.net", Temporary, 0, "", StageData, 2},
		{"stall@example.net", Temporary, 0, "", StageData, 3},
	}
	for i, c := range cases {
		err := send(c.email)
		if err == nil {
			t.Fatalf("%s: no error", c.email)
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("%s: %T %v, want *Error", c.email, err, err)
		}
		if Classify(err) != c.class || Code(err) != c.code || e.Enhanced != c.enhanced || e.Stage != c.stage {
			t.Errorf("%s: class %v code %d enhanced %q stage %s, want %v %d %q %s (%v)",
				c.email, Classify(err), Code(err), e.Enhanced, e.Stage, c.class, c.code, c.enhanced, c.stage, err)
		}
		if !strings.Contains(err.Error(), c.email) {
			t.Errorf("error %q does not name the recipient", err)
		}
		// The same Sender carries on; a rejected recipient keeps the
		// connection, a broken one is redialled.
		deliver(fmt.Sprintf("ok%d@example.net", i))
		if got := ts.Sessions(); got != c.sessions {
			t.Errorf("after %s: %d sessions, want %d", c.email, got, c.sessions)
		}
	}
	if got := len(ts.Messages()); got != len(cases) {
		t.Errorf("server stored %d messages, want %d (only the good ones)", got, len(cases))
	}
}

func TestSMTPTemporaryFailureSucceedsOnRetry(t *testing.T) {
	ts := startServer(t, serverOptions{})
	ts.rcptReply["later@example.net"] = &smtp.SMTPError{Code: 452, Message: "mailbox full for now"}
	s := newSender(t, plainTransport(t, ts, nil))
	m := sampleMessage(1)
	m.To.Email = "later@example.net"
	if err := s.Send(context.Background(), m); Classify(err) != Temporary {
		t.Fatalf("first attempt: %v", err)
	}
	ts.mu.Lock()
	delete(ts.rcptReply, "later@example.net")
	ts.mu.Unlock()
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if got := ts.Messages(); len(got) != 1 || got[0].To[0] != "later@example.net" {
		t.Errorf("received %v", got)
	}
}

// A context that ends before the content was written stops the send: the
// server accepted nothing, and the error says so (mail.NotSent).
func TestSMTPCancelBeforeContentSendsNothing(t *testing.T) {
	ts := startServer(t, serverOptions{})
	ts.holdRcpt["held@example.net"] = true
	// SendTimeout far beyond the test's patience: only the cancellation
	// can end this Send.
	s := newSender(t, plainTransport(t, ts, func(c *SMTPConfig) { c.SendTimeout = time.Hour }))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-ts.stalled
		cancel()
	}()
	m := sampleMessage(1)
	m.To.Email = "held@example.net"
	err := s.Send(ctx, m)
	if !errors.Is(err, context.Canceled) || !NotSent(err) || Classify(err) != Temporary {
		t.Fatalf("Send = %v (not sent %v, %v), want a temporary, not-sent context.Canceled", err, NotSent(err), Classify(err))
	}
	if got := ts.Messages(); len(got) != 0 {
		t.Fatalf("server accepted %d messages", len(got))
	}
	if err := s.Send(context.Background(), sampleMessage(2)); err != nil {
		t.Fatalf("send after a cancelled one: %v", err)
	}
}

// pastDeadline is a context whose deadline has passed but whose timer has not
// fired yet: what a process resumed after SIGSTOP sees for an instant.
type pastDeadline struct{ context.Context }

func (pastDeadline) Deadline() (time.Time, bool) { return time.Now().Add(-time.Second), true }

func TestSMTPDeadlinePassedSendsNothing(t *testing.T) {
	ts := startServer(t, serverOptions{})
	s := newSender(t, plainTransport(t, ts, nil))
	err := s.Send(pastDeadline{context.Background()}, sampleMessage(1))
	if !NotSent(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send = %v, want not sent, deadline exceeded", err)
	}
	if got := ts.Messages(); len(got) != 0 {
		t.Fatalf("server accepted %d messages", len(got))
	}
}

// A context that ends after the content was written does not interrupt the
// send: the server's answer is awaited, and the send reports what it said.
func TestSMTPCancelAfterContentWaitsForTheAnswer(t *testing.T) {
	ts := startServer(t, serverOptions{})
	ts.slowAfterData = 300 * time.Millisecond
	s := newSender(t, plainTransport(t, ts, nil))
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-ts.stalled
		cancel()
	}()
	if err := s.Send(ctx, sampleMessage(1)); err != nil {
		t.Fatalf("Send = %v, want the server's acceptance", err)
	}
	if got := ts.Messages(); len(got) != 1 {
		t.Fatalf("server accepted %d messages, want 1", len(got))
	}
}

func TestSMTPRedialsAfterServerClosedIdleConnection(t *testing.T) {
	ts := startServer(t, serverOptions{})
	tr := plainTransport(t, ts, nil)
	s := newSender(t, tr)
	if err := s.Send(context.Background(), sampleMessage(1)); err != nil {
		t.Fatal(err)
	}
	// Simulate the server timing the idle connection out.
	s.(*smtpSender).conn.Close()
	if err := s.Send(context.Background(), sampleMessage(2)); err != nil {
		t.Fatalf("send on a connection the server closed: %v", err)
	}
	if got := len(ts.Messages()); got != 2 {
		t.Errorf("%d messages received, want 2", got)
	}
	if got := ts.Sessions(); got != 2 {
		t.Errorf("%d sessions, want 2", got)
	}
}

func TestSMTPRefusedDialIsTemporary(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	tr, err := NewSMTPTransport(SMTPConfig{Host: "127.0.0.1", Port: port, TLS: TLSNone})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tr.NewSender(context.Background())
	if err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
	if Classify(err) != Temporary || Code(err) != 0 {
		t.Errorf("Classify = %v, Code = %d, want temporary, 0 (%v)", Classify(err), Code(err), err)
	}
	if !strings.Contains(err.Error(), fmt.Sprint(port)) {
		t.Errorf("error %q does not name the server", err)
	}
}

func TestSMTPStartTLSWithAuth(t *testing.T) {
	serverTLS, clientTLS := selfSigned(t)
	ts := startServer(t, serverOptions{tls: serverTLS, users: map[string]string{"desk": "s3cret"}})
	tr, err := NewSMTPTransport(SMTPConfig{Host: "127.0.0.1", Port: ts.Port, TLS: TLSStartTLS,
		Username: "desk", Password: "s3cret", TLSConfig: clientTLS})
	if err != nil {
		t.Fatal(err)
	}
	s := newSender(t, tr)
	for i := range 3 {
		if err := s.Send(context.Background(), sampleMessage(i)); err != nil {
			t.Fatal(err)
		}
	}
	msgs := ts.Messages()
	if len(msgs) != 3 {
		t.Fatalf("%d messages", len(msgs))
	}
	for _, m := range msgs {
		if !m.TLS || m.Auth != "desk" {
			t.Errorf("message over TLS=%v as %q, want TLS as desk", m.TLS, m.Auth)
		}
	}
	if ts.Sessions() != 1 {
		t.Errorf("%d sessions, want 1", ts.Sessions())
	}

	// Wrong password: refused while connecting, and not a recipient's fault.
	bad, err := NewSMTPTransport(SMTPConfig{Host: "127.0.0.1", Port: ts.Port, Username: "desk",
		Password: "wrong", TLSConfig: clientTLS})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.NewSender(context.Background())
	if err == nil || Classify(err) != Temporary || Code(err) != 535 {
		t.Errorf("wrong password: %v (%v, code %d), want temporary with code 535", err, Classify(err), Code(err))
	}
}

func TestSMTPStartTLSRefusesUntrustedCertificate(t *testing.T) {
	serverTLS, _ := selfSigned(t)
	ts := startServer(t, serverOptions{tls: serverTLS})
	tr, err := NewSMTPTransport(SMTPConfig{Host: "127.0.0.1", Port: ts.Port}) // system roots
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.NewSender(context.Background()); err == nil {
		t.Fatal("connected despite a certificate nobody vouches for")
	}
}

func TestSMTPStartTLSIsMandatory(t *testing.T) {
	ts := startServer(t, serverOptions{}) // offers no STARTTLS
	tr, err := NewSMTPTransport(SMTPConfig{Host: "127.0.0.1", Port: ts.Port, TLS: TLSStartTLS})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tr.NewSender(context.Background())
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("NewSender = %v, want a STARTTLS error", err)
	}
	if len(ts.Messages()) != 0 {
		t.Error("a message went out in clear text")
	}
}

func TestSMTPImplicitTLS(t *testing.T) {
	serverTLS, clientTLS := selfSigned(t)
	// go-smtp serves TLS from the first byte on a TLS listener.
	ts := &testServer{rcptReply: map[string]*smtp.SMTPError{}, dropInData: map[string]bool{},
		stallInData: map[string]bool{}, holdRcpt: map[string]bool{}, release: make(chan struct{}), stalled: make(chan string, 1),
		users: map[string]string{"desk": "pw"}}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &testSession{ts: ts, conn: c}, nil
	}))
	srv.Domain = "localhost"
	ln, err := tlsListen(serverTLS)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(&countingListener{Listener: ln, ts: ts}) }()
	t.Cleanup(func() { close(ts.release); _ = srv.Close() })

	tr, err := NewSMTPTransport(SMTPConfig{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port,
		TLS: TLSImplicit, TLSConfig: clientTLS, Username: "desk", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	s := newSender(t, tr)
	if err := s.Send(context.Background(), sampleMessage(1)); err != nil {
		t.Fatal(err)
	}
	if msgs := ts.Messages(); len(msgs) != 1 || !msgs[0].TLS || msgs[0].Auth != "desk" || ts.Sessions() != 1 {
		t.Errorf("received %+v over %d connections, want one message over TLS", msgs, ts.Sessions())
	}
}

func TestSMTPConfigChecks(t *testing.T) {
	for _, c := range []struct {
		cfg  SMTPConfig
		want string
	}{
		{SMTPConfig{Host: "mail.example.org", TLS: TLSNone}, "loopback"},
		{SMTPConfig{Host: "10.0.0.1", TLS: TLSNone}, "loopback"},
		{SMTPConfig{Host: "mail.example.org", TLS: "ssl"}, "ssl"},
		{SMTPConfig{TLS: TLSStartTLS}, "host"},
		{SMTPConfig{Host: "mail.example.org", Port: 70000}, "port"},
		{SMTPConfig{Host: "mail.example.org", Password: "x"}, "username"},
		{SMTPConfig{Host: "mail.example.org", HELO: "a\r\nMAIL FROM:<x>"}, "helo"},
	} {
		_, err := NewSMTPTransport(c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error about %s", c.cfg, err, c.want)
		}
	}
	for _, host := range []string{"127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"} {
		if _, err := NewSMTPTransport(SMTPConfig{Host: host, TLS: TLSNone}); err != nil {
			t.Errorf("%s: %v", host, err)
		}
	}
}

func TestSMTPAuthOverPlainLoopback(t *testing.T) {
	ts := startServer(t, serverOptions{users: map[string]string{"desk": "pw"}})
	s := newSender(t, plainTransport(t, ts, func(c *SMTPConfig) { c.Username, c.Password = "desk", "pw" }))
	if err := s.Send(context.Background(), sampleMessage(1)); err != nil {
		t.Fatal(err)
	}
	if msgs := ts.Messages(); len(msgs) != 1 || msgs[0].Auth != "desk" {
		t.Errorf("received %+v", msgs)
	}
}

func TestSMTPInvalidMessageIsPermanentAndKeepsConnection(t *testing.T) {
	ts := startServer(t, serverOptions{})
	s := newSender(t, plainTransport(t, ts, nil))
	m := sampleMessage(1)
	m.To.Name = "Eve\r\nBcc: everyone@example.com"
	err := s.Send(context.Background(), m)
	var e *Error
	if !errors.As(err, &e) || e.Stage != StageBuild || Classify(err) != Permanent || !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("Send = %v, want a permanent build error", err)
	}
	if err := s.Send(context.Background(), sampleMessage(2)); err != nil {
		t.Fatal(err)
	}
	if ts.Sessions() != 1 || len(ts.Messages()) != 1 {
		t.Errorf("%d sessions, %d messages", ts.Sessions(), len(ts.Messages()))
	}
}

func TestSMTPDKIMSignatureSurvivesTheWire(t *testing.T) {
	key := testKeys(t)["rsa-pkcs8"]
	dkim, err := LoadDKIM("example.org", "desk", key.file)
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, serverOptions{})
	s := newSender(t, plainTransport(t, ts, func(c *SMTPConfig) { c.DKIM = dkim }))
	if err := s.Send(context.Background(), sampleMessage(4)); err != nil {
		t.Fatal(err)
	}
	raw := ts.Messages()[0].Data
	if _, err := verifyDKIM(raw, key.pub); err != nil {
		t.Fatalf("received message's signature: %v", err)
	}
	assertMessage(t, raw, sampleMessage(4))
}

func TestSMTPParallelSenders(t *testing.T) {
	ts := startServer(t, serverOptions{})
	tr := Limited(plainTransport(t, ts, nil), 10000, 50)
	const senders, each = 4, 30
	var wg sync.WaitGroup
	errs := make(chan error, senders*each)
	for g := range senders {
		s := newSender(t, tr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := s.Send(context.Background(), sampleMessage(g*each+i)); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := len(ts.Messages()); got != senders*each {
		t.Errorf("%d messages, want %d", got, senders*each)
	}
	if got := ts.Sessions(); got != senders {
		t.Errorf("%d sessions, want %d", got, senders)
	}
}

func TestLimitedSharesOneBucket(t *testing.T) {
	dir := t.TempDir()
	var base Transport = &FileTransport{Dir: dir}
	if Limited(base, 0, 5) != base {
		t.Error("a zero rate should leave the transport unwrapped")
	}
	// One token, refilled once in about three hours: the second Send,
	// from another Sender, must find the bucket empty.
	tr := Limited(base, 1.0/10000, 1)
	a, b := newSender(t, tr), newSender(t, tr)
	if err := a.Send(context.Background(), sampleMessage(1)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	err := b.Send(ctx, sampleMessage(2))
	if err == nil {
		t.Fatal("second sender was not limited")
	}
	if Classify(err) != Temporary || !strings.Contains(err.Error(), "rate") {
		t.Errorf("limited Send = %v (%v)", err, Classify(err))
	}
}

func TestClassifyPlainErrors(t *testing.T) {
	for _, c := range []struct {
		err  error
		want Class
	}{
		{nil, NoError},
		{context.DeadlineExceeded, Temporary},
		{fmt.Errorf("wrapped: %w", &net.OpError{Op: "dial", Err: errors.New("refused")}), Temporary},
		{fmt.Errorf("x: %w", ErrInvalidMessage), Permanent},
	} {
		if got := Classify(c.err); got != c.want {
			t.Errorf("Classify(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
