package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"publisher/internal/smtptest"
)

// crashList writes n subscribers to the desk's list.
func crashList(d *desk, n int) {
	var b strings.Builder
	b.WriteString("email,name\n")
	for i := range n {
		fmt.Fprintf(&b, "reader%05d@example.org,Reader %d\n", i, i)
	}
	d.write("subscribers/list.csv", b.String())
}

// tally says how many of n subscribers were missed and how many extra copies went out.
func tally(srv *smtptest.Server, n int) (missed, duplicates int) {
	return tallyOver(n, srv)
}

// tallyOver is tally over what several servers received together.
func tallyOver(n int, servers ...*smtptest.Server) (missed, duplicates int) {
	per := map[string]int{}
	for _, s := range servers {
		for r, c := range s.PerRecipient() {
			per[r] += c
		}
	}
	for i := range n {
		c := per[fmt.Sprintf("reader%05d@example.org", i)]
		if c == 0 {
			missed++
		}
		if c > 1 {
			duplicates += c - 1
		}
	}
	return missed, duplicates
}

// startRun starts publisher run in the background.
func (d *desk) startRun(t *testing.T) (*bytes.Buffer, func() int, *os.Process) {
	t.Helper()
	cmd := d.command(context.Background(), "run")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	wait := func() int {
		_ = cmd.Wait()
		return cmd.ProcessState.ExitCode()
	}
	return &out, wait, cmd.Process
}

// waitFor polls until cond holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

const (
	crashSubscribers = 2000
	crashConnections = 4
)

// TestCrashResumesWithoutLossOrExtraDuplicates kills publisher run with SIGKILL at
// many points of a send (during planning, early, midway, near the end), runs it
// again each time, and checks that nobody is missed and that duplicates never
// exceed the connections in flight.
func TestCrashResumesWithoutLossOrExtraDuplicates(t *testing.T) {
	type point struct {
		name    string
		afterMs int // kill this long after start, or
		atCount int // once the server has accepted this many messages
	}
	points := []point{
		{name: "at-start", afterMs: 5},
		{name: "while-planning", afterMs: 60},
		{name: "first-messages", atCount: 1},
		{name: "early", atCount: 150},
		{name: "at-50", atCount: 50},
		{name: "at-500", atCount: 500},
		{name: "at-800", atCount: 800},
		{name: "midway", atCount: crashSubscribers / 2},
		{name: "at-1300", atCount: 1300},
		{name: "at-1600", atCount: 1600},
		{name: "late", atCount: crashSubscribers * 9 / 10},
		{name: "last-message", atCount: crashSubscribers - 2},
	}
	var totalDup int
	for _, p := range points {
		t.Run(p.name, func(t *testing.T) {
			srv := smtptest.Start(t, smtptest.Options{Delay: 500 * time.Microsecond})
			d := newDesk(t, smtpConfig(srv.Port, ""))
			d.piece("grid-sync", "Grid synchronisation", "energy")
			crashList(d, crashSubscribers)

			_, wait, proc := d.startRun(t)
			if p.afterMs > 0 {
				time.Sleep(time.Duration(p.afterMs) * time.Millisecond)
			} else {
				waitFor(t, fmt.Sprintf("%d messages", p.atCount), func() bool { return srv.Count() >= p.atCount })
			}
			if err := proc.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			wait()
			atKill := srv.Count()

			r := d.run("run")
			if r.code != 0 {
				t.Fatalf("rerun exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
			}
			missed, dup := tally(srv, crashSubscribers)
			t.Logf("kill %s: %d accepted at the kill, %d missed, %d duplicates", p.name, atKill, missed, dup)
			if missed != 0 {
				t.Errorf("%d subscribers missed after the rerun", missed)
			}
			if dup > crashConnections {
				t.Errorf("%d duplicates, more than the %d connections in flight", dup, crashConnections)
			}
			totalDup += dup
		})
	}
	t.Logf("crash suite: %d kill points, %d duplicates in all", len(points), totalDup)
}

// TestSIGTERMFinishesWhatIsOnTheWire stops a run with SIGTERM: it must exit with
// the rest pending, and the next run must finish with no duplicate at all.
func TestSIGTERMFinishesWhatIsOnTheWire(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Delay: 500 * time.Microsecond})
	d := newDesk(t, smtpConfig(srv.Port, ""))
	d.piece("grid-sync", "Grid synchronisation", "energy")
	crashList(d, crashSubscribers)

	out, wait, proc := d.startRun(t)
	waitFor(t, "300 messages", func() bool { return srv.Count() >= 300 })
	if err := proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code := wait()
	if code != 0 || !strings.Contains(out.String(), "pending") {
		t.Fatalf("stopped run exit %d, want 0 with deliveries pending:\n%s", code, out.String())
	}
	if srv.Count() >= crashSubscribers {
		t.Fatalf("SIGTERM did not stop the send (all %d went out)", srv.Count())
	}
	r := d.run("run")
	if r.code != 0 {
		t.Fatalf("rerun exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	missed, dup := tally(srv, crashSubscribers)
	if missed != 0 || dup != 0 {
		t.Fatalf("after SIGTERM and rerun: %d missed, %d duplicates (want 0, 0)", missed, dup)
	}
}

// TestConcurrentRunsNeverDoubleSend starts two runs at once on one database.
func TestConcurrentRunsNeverDoubleSend(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Delay: 200 * time.Microsecond})
	d := newDesk(t, smtpConfig(srv.Port, ""))
	d.piece("grid-sync", "Grid synchronisation", "energy")
	crashList(d, 600)

	out1, wait1, _ := d.startRun(t)
	out2, wait2, _ := d.startRun(t)
	c1, c2 := wait1(), wait2()
	if c1 != 0 || c2 != 0 {
		t.Fatalf("exit codes %d, %d\n%s\n%s", c1, c2, out1, out2)
	}
	missed, dup := tally(srv, 600)
	if dup != 0 {
		t.Fatalf("two concurrent runs sent %d duplicates", dup)
	}
	if missed != 0 {
		// The run that lost the lease leaves sending to the other; nobody is left out.
		t.Fatalf("%d subscribers missed", missed)
	}
}
