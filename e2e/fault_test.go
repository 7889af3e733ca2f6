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
