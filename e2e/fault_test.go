package e2e

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"publisher/internal/smtptest"
)

// faultDesk is a desk with one piece and n subscribers sending to port, with fast
// retries and the given extra mail settings.
func faultDesk(t *testing.T, port, n int, mailExtra string) *desk {
	t.Helper()
	d := newDesk(t, smtpConfigWith(port, mailExtra))
	d.piece("grid-sync", "Grid synchronisation", "energy")
	crashList(d, n)
	return d
}

// attemptCounter counts attempts per recipient, safely across sessions.
type attemptCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (a *attemptCounter) next(rcpt string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n == nil {
		a.n = map[string]int{}
	}
	a.n[rcpt]++
	return a.n[rcpt]
}

func TestFaultTemporaryFailuresAtAHighRate(t *testing.T) {
	var attempts attemptCounter
	srv := smtptest.Start(t, smtptest.Options{})
	srv.SetOptions(smtptest.Options{Rcpt: func(rcpt string) *smtp.SMTPError {
		// Every recipient is refused on its first two attempts, and every third
		// one on its third: most of the traffic is 451s.
		n := attempts.next(rcpt)
		var i int
		fmt.Sscanf(rcpt, "reader%05d@", &i)
		if n <= 2 || (n == 3 && i%3 == 0) {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "greylisted"}
		}
		return nil
	}})
	const n = 60
	d := faultDesk(t, srv.Port, n, "  retry_base: 20ms\n  max_attempts: 6\n")
	r := d.run("run")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	missed, dup := tally(srv, n)
	if missed != 0 || dup != 0 {
		t.Fatalf("%d missed, %d duplicates", missed, dup)
	}
	if !strings.Contains(r.stdout, fmt.Sprintf("sent %d, retried %d, failed 0", n, 2*n+n/3)) {
		t.Fatalf("summary: %s", r.stdout)
	}
}

func TestFaultConnectionDroppedMidData(t *testing.T) {
	var attempts attemptCounter
	srv := smtptest.Start(t, smtptest.Options{})
	srv.SetOptions(smtptest.Options{DropInData: func(rcpt string) bool {
		return attempts.next(rcpt) == 1 // every first attempt loses its connection
	}})
	const n = 20
	d := faultDesk(t, srv.Port, n, "  retry_base: 20ms\n")
	r := d.run("run")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	missed, dup := tally(srv, n)
	if missed != 0 || dup != 0 {
		t.Fatalf("%d missed, %d duplicates", missed, dup)
	}
	if !strings.Contains(r.stdout, fmt.Sprintf("sent %d, retried %d", n, n)) {
		t.Fatalf("summary: %s", r.stdout)
	}
}

// freePort returns a loopback port nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

func TestFaultServerDownAtStart(t *testing.T) {
	port := freePort(t)
	const n = 10
	// A retry an hour away: this run must end, leaving the deliveries pending.
	d := faultDesk(t, port, n, "  retry_base: 1h\n")
	r := d.run("run")
	// Pending is not a failure: a later run retries (exit 0, and a note on stderr).
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("retried %d, failed 0, suppressed 0, skipped 0, pending %d", n, n)) || !strings.Contains(r.stderr, "deliveries pending") {
		t.Fatalf("with the server down: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// Nothing is due yet: a plain rerun sends nothing and says so.
	if r := d.run("run"); r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("pending %d", n)) {
		t.Fatalf("rerun before the retry is due: exit %d\n%s", r.code, r.stdout)
	}
	srv := smtptest.StartAt(t, fmt.Sprintf("127.0.0.1:%d", port), smtptest.Options{})
	r = d.run("run", "--retry-now")
	if r.code != 0 {
		t.Fatalf("after the server came back: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if missed, dup := tally(srv, n); missed != 0 || dup != 0 {
		t.Fatalf("%d missed, %d duplicates", missed, dup)
	}
}

func TestFaultServerStopsAnswering(t *testing.T) {
	addr, stop := smtptest.Silent(t)
	_, portText, _ := net.SplitHostPort(addr)
	var port int
	fmt.Sscan(portText, &port)
	const n = 6
	cfg := "  retry_base: 1h\n"
	d := faultDesk(t, port, n, cfg)
	d.write("publisher.yaml", strings.NewReplacer("connect_timeout: 5s", "connect_timeout: 500ms", "send_timeout: 10s", "send_timeout: 1s").Replace(smtpConfigWith(port, cfg)))
	start := time.Now()
	r := d.run("run")
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("pending %d", n)) {
		t.Fatalf("against a silent server: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("a run against a silent server ended after %v", time.Since(start).Round(time.Millisecond))
	stop()
	srv := smtptest.StartAt(t, addr, smtptest.Options{})
	if r := d.run("run", "--retry-now"); r.code != 0 {
		t.Fatalf("after the server answered again: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if missed, dup := tally(srv, n); missed != 0 || dup != 0 {
		t.Fatalf("%d missed, %d duplicates", missed, dup)
	}
}

// smtpConfigWith is smtpConfig with the retry settings replaced.
func smtpConfigWith(port int, mailExtra string) string {
	return strings.Replace(smtpConfig(port, ""), "  retry_base: 50ms\n", mailExtra, 1)
}

// listed is the addresses `subscribers list --status status` prints.
func (d *desk) listed(t *testing.T, status string) []string {
	t.Helper()
	r := d.run("subscribers", "list", "--status", status)
	if r.code != 0 {
		t.Fatalf("subscribers list: exit %d\n%s", r.code, r.stderr)
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n")[1:] {
		if f := strings.Fields(line); len(f) > 0 {
			out = append(out, f[0])
		}
	}
	return out
}

// stopLine is the run's last line on stderr that says why it stopped sending.
func stopLine(r result) string {
	line := ""
	for _, l := range strings.Split(r.stderr, "\n") {
		if strings.HasPrefix(l, "publisher run: sending stopped: ") {
			line = l
		}
	}
	return line
}

// The case: a relay answering "554 5.7.1 relay access denied" to every
// recipient, over three runs. Each run stops at once and says so in one line,
// exits 1, and suppresses nobody; the deliveries stay pending, and once the
// relay is fixed the next run delivers the digest to every subscriber.
func TestFaultRelayRefusingEveryRecipientSuppressesNobody(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Rcpt: func(string) *smtp.SMTPError {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "relay access denied"}
	}})
	const n = 20
	d := faultDesk(t, srv.Port, n, "  retry_base: 50ms\n")
	for run := 1; run <= 3; run++ {
		r := d.run("run")
		line := stopLine(r)
		t.Logf("run %d: exit %d; %s; %s", run, r.code, strings.TrimSpace(r.stdout), line)
		if r.code != 1 || !strings.Contains(line, "the relay refused every message") || !strings.Contains(line, "554 5.7.1 relay access denied") || !strings.Contains(line, "nobody was suppressed") {
			t.Fatalf("run %d against a relay refusing everyone: exit %d, want 1 and the reason in one line\n%s\n%s", run, r.code, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stdout, fmt.Sprintf("failed 0, suppressed 0, skipped 0, pending %d", n)) {
			t.Fatalf("run %d: summary %s", run, r.stdout)
		}
	}
	if srv.Count() != 0 {
		t.Fatalf("the refusing relay accepted %d messages", srv.Count())
	}
	if got := len(d.listed(t, "bounced,complained,unsubscribed,removed")); got != 0 {
		t.Fatalf("%d subscribers suppressed by a relay that refused the desk", got)
	}
	srv.SetOptions(smtptest.Options{})
	r := d.run("run")
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("sent %d,", n)) {
		t.Fatalf("the relay fixed: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if missed, dup := tally(srv, n); missed != 0 || dup != 0 {
		t.Fatalf("%d missed, %d duplicates", missed, dup)
	}
	if got := len(d.listed(t, "active")); got != n {
		t.Fatalf("%d of %d subscribers active", got, n)
	}
}

// "550 5.1.1 user unknown" for one address: it alone is bounced, when it
// reaches mail.bounce_limit (3: the third digest it could not take).
func TestFaultUnknownAddressAloneBounced(t *testing.T) {
	const dead = "reader00007@example.org"
	srv := smtptest.Start(t, smtptest.Options{Rcpt: func(rcpt string) *smtp.SMTPError {
		if rcpt == dead {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "user unknown"}
		}
		return nil
	}})
	const n = 20
	d := faultDesk(t, srv.Port, n, "  retry_base: 50ms\n")
	for digest := 1; digest <= 4; digest++ {
		if digest > 1 {
			d.piece(fmt.Sprintf("piece-%d", digest), fmt.Sprintf("Piece %d", digest), "energy")
		}
		r := d.run("run")
		bounced := d.listed(t, "bounced")
		t.Logf("digest %d: exit %d; %s; bounced %v", digest, r.code, strings.TrimSpace(r.stdout), bounced)
		wantCode, wantBounced, wantSent := 1, 0, n-1
		switch {
		case digest == 3:
			wantBounced = 1
		case digest == 4:
			wantCode, wantBounced = 0, 1 // suppressed: no longer planned
		}
		if r.code != wantCode || len(bounced) != wantBounced || (wantBounced == 1 && bounced[0] != dead) || !strings.Contains(r.stdout, fmt.Sprintf("sent %d,", wantSent)) {
			t.Fatalf("digest %d: exit %d, bounced %v\n%s\n%s", digest, r.code, bounced, r.stdout, r.stderr)
		}
	}
	per := srv.PerRecipient()
	for i := range n {
		rcpt := fmt.Sprintf("reader%05d@example.org", i)
		if want := 4; rcpt != dead && per[rcpt] != want {
			t.Errorf("%s got %d digests, want %d", rcpt, per[rcpt], want)
		}
	}
	if got := len(d.listed(t, "active")); got != n-1 {
		t.Errorf("%d active, want %d", got, n-1)
	}
}

// SMTP down (nothing listening on the port), then up. While it is down each
// run stops within seconds, fails nothing and suppresses nobody, though the
// outage lasts longer than mail.retry_window (1s here) and each delivery is
// tried more often than mail.max_attempts (1): time and attempts in which the
// relay delivered nothing to anyone spend no delivery's retries. The first run
// after it comes back delivers to everyone. (An outage of five minutes or five
// days is the same case: what counts is that nothing was accepted meanwhile,
// not how long it lasted; TestOutageSpendsNoRetries in internal/cycle moves a
// clock over three days of it.)
func TestFaultSMTPDownThenUp(t *testing.T) {
	port := freePort(t)
	const n = 10
	d := faultDesk(t, port, n, "  retry_base: 10ms\n  retry_max: 100ms\n  retry_window: 1s\n  max_attempts: 1\n")
	down := time.Now()
	retried := 0
	for run := 1; run <= 2; run++ {
		start := time.Now()
		r := d.run("run")
		line := stopLine(r)
		t.Logf("run %d while down: exit %d after %v; %s; %s", run, r.code, time.Since(start).Round(100*time.Millisecond), strings.TrimSpace(r.stdout), line)
		if r.code != 1 || !strings.Contains(line, "the relay could not be reached") || !strings.Contains(line, "connection refused") {
			t.Fatalf("run %d with SMTP down: exit %d, want 1 and the reason in one line\n%s\n%s", run, r.code, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stdout, fmt.Sprintf("failed 0, suppressed 0, skipped 0, pending %d", n)) {
			t.Fatalf("run %d: summary %s", run, r.stdout)
		}
		var got int
		fmt.Sscanf(r.stdout[strings.Index(r.stdout, "retried "):], "retried %d", &got)
		retried += got
	}
	if retried <= n {
		t.Errorf("%d attempts in all while down, want more than one per delivery (max_attempts is 1)", retried)
	}
	srv := smtptest.StartAt(t, fmt.Sprintf("127.0.0.1:%d", port), smtptest.Options{})
	t.Logf("down for %v; %d failed attempts", time.Since(down).Round(100*time.Millisecond), retried)
	r := d.run("run")
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("sent %d, retried 0, failed 0", n)) {
		t.Fatalf("SMTP back: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if missed, dup := tally(srv, n); missed != 0 || dup != 0 {
		t.Fatalf("%d missed, %d duplicates", missed, dup)
	}
	if got := len(d.listed(t, "bounced")); got != 0 {
		t.Fatalf("%d bounced", got)
	}
}
