package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"publisher/internal/smtptest"
)

// relaysConfig is a publisher.yaml sending over two loopback relays with two
// connections each.
func relaysConfig(portA, portB int) string {
	return fmt.Sprintf(`site:
  title: Test Desk
  base_url: https://desk.example.org/
  language: en
secret: e2e-secret-0123456789abcdef0123456789abcdef
mail:
  transport: smtp
  from: Test Desk <digest@desk.example.org>
  retry_base: 50ms
  smtp:
    connect_timeout: 5s
    send_timeout: 10s
    relays:
      - host: 127.0.0.1
        port: %d
        tls: none
        connections: 2
      - smtp://127.0.0.1:%d?tls=none&connections=2
digest:
  default_cadence: immediate
`, portA, portB)
}

// TestRelayDownMidSendHandsItsShareToTheOther stops one of two relays (listener
// closed, connections dropped) while a run sends 2,000 digests over both: the
// run must finish through the other relay with nobody missed, and duplicates
// only among the messages that were on the wire to the stopped relay.
func TestRelayDownMidSendHandsItsShareToTheOther(t *testing.T) {
	const n, connsA = crashSubscribers, 2
	// Once it has taken 300, the next recipient the first relay is given stops
	// it: the listener closed, every connection dropped, in the middle of the send.
	a := smtptest.Start(t, smtptest.Options{Delay: 500 * time.Microsecond, StopAfter: 300})
	b := smtptest.Start(t, smtptest.Options{Delay: 500 * time.Microsecond})
	d := newDesk(t, relaysConfig(a.Port, b.Port))
	d.piece("grid-sync", "Grid synchronisation", "energy")
	crashList(d, n)

	out, wait, _ := d.startRun(t)
	code := wait()
	atStop, stopped := a.StoppedAt()
	if !stopped {
		t.Fatalf("the run ended before the first relay took 300 (it took %d):\n%s", a.Count(), out)
	}
	if code != 0 {
		t.Fatalf("run exit %d, want 0:\n%s", code, out)
	}

	missed, dup := tallyOver(n, a, b)
	summary := ""
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.Contains(line, "planned ") {
			summary = line
		}
	}
	t.Logf("relay stopped at %d accepted; it holds %d, the other %d; %d missed, %d duplicates; %s",
		atStop, a.Count(), b.Count(), missed, dup, summary)
	if missed != 0 {
		t.Errorf("%d subscribers missed", missed)
	}
	if dup > connsA {
		t.Errorf("%d duplicates, more than the %d connections that were on the wire to the stopped relay", dup, connsA)
	}
	if b.Count() < n-atStop {
		t.Errorf("the other relay carried %d, want at least the %d left when the first stopped", b.Count(), n-atStop)
	}
	if b.MaxOpen() > 2 {
		t.Errorf("%d connections open at once to a relay allowed 2", b.MaxOpen())
	}
	log := out.String()
	if !strings.Contains(log, "relay out of service") || !strings.Contains(log, fmt.Sprintf("127.0.0.1:%d", a.Port)) {
		t.Errorf("the take-out of the stopped relay is not logged:\n%s", log)
	}
	if !strings.Contains(log, fmt.Sprintf("sent %d,", n)) {
		t.Errorf("summary does not say all %d were sent:\n%s", n, log)
	}
}
