package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"publisher/internal/pgtest"
	"publisher/internal/smtptest"
)

// proc is a publisher process started in the background.
type proc struct {
	cmd *exec.Cmd
	out *bytes.Buffer
	mu  *sync.Mutex
}

// start starts publisher with args in d, optionally inside a PID namespace of
// its own (unshare -pf --mount-proc: it is PID 1 there, as in a container).
func (d *desk) start(t *testing.T, namespace bool, args ...string) *proc {
	t.Helper()
	name, argv := binary, args
	if namespace {
		unshare, err := exec.LookPath("unshare")
		if err != nil {
			t.Fatal("unshare (util-linux) is needed for the PID-namespace tests: bash scripts/test.sh installs it")
		}
		name, argv = unshare, append([]string{"-pf", "--mount-proc", binary}, args...)
	}
	cmd := exec.Command(name, argv...)
	cmd.Dir = d.dir
	cmd.Env = append(cleanEnv(), d.env...)
	p := &proc{cmd: cmd, out: &bytes.Buffer{}, mu: &sync.Mutex{}}
	w := &lockedWriter{w: p.out, mu: p.mu}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return p
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// wait waits for the process (at most three minutes) and returns its exit code.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
		_ = p.cmd.Process.Kill()
		<-done
		t.Fatalf("publisher %v did not finish:\n%s", p.cmd.Args, p.output())
	}
	return p.cmd.ProcessState.ExitCode()
}

var (
	sentRe = regexp.MustCompile(`, sent (\d+),`)
	pidOne = regexp.MustCompile(`\bpid 1\b`)
)

// sent is the "sent N" of a run's summary line.
func (p *proc) sent(t *testing.T) int {
	t.Helper()
	m := sentRe.FindStringSubmatch(p.output())
	if m == nil {
		t.Fatalf("no summary line in:\n%s", p.output())
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// pgDesk is a desk (a host of its own: its own folders) whose store is the
// PostgreSQL database dsn.
func pgDesk(t *testing.T, port int, dsn string, extra string) *desk {
	cfg := strings.Replace(smtpConfig(port, extra), "store:\n", "store:\n  driver: postgres\n", 1)
	d := newDesk(t, cfg)
	d.env = append(d.env, "PUBLISHER_STORE_DSN="+dsn)
	return d
}

// TestRunsInSeparatePIDNamespacesNeverDoubleSend starts two runs on one data
// folder, each PID 1 in a PID namespace of its own, as two containers on one
// host are: same host name, same pid. Neither may take the other's lease for a
// dead process's, so nobody gets a digest twice, and nobody is missed.
func TestRunsInSeparatePIDNamespacesNeverDoubleSend(t *testing.T) {
	const n = 2000
	srv := smtptest.Start(t, smtptest.Options{Delay: 300 * time.Microsecond})
	d := newDesk(t, smtpConfig(srv.Port, ""))
	d.piece("grid-sync", "Grid synchronisation", "energy")
	crashList(d, n)

	a := d.start(t, true, "--log-level", "debug", "run")
	b := d.start(t, true, "--log-level", "debug", "run")
	ca, cb := a.wait(t), b.wait(t)
	if ca != 0 || cb != 0 {
		t.Fatalf("exit codes %d, %d\n--- a\n%s\n--- b\n%s", ca, cb, a.output(), b.output())
	}
	missed, dup := tally(srv, n)
	if missed != 0 || dup != 0 {
		t.Fatalf("two runs in two PID namespaces: %d missed, %d duplicates (want 0, 0)\n--- a\n%s\n--- b\n%s", missed, dup, a.output(), b.output())
	}
	// Both really were PID 1: the lease's holder label says so in both logs.
	for name, p := range map[string]*proc{"a": a, "b": b} {
		if !pidOne.MatchString(p.output()) {
			t.Errorf("run %s: no lease holder with pid 1 in its log (not in a PID namespace?)\n%s", name, p.output())
		}
	}
}

// TestRunsOnTwoHostsShareOnePostgresSend runs two desks, each with folders of
// its own as two machines would have, on one PostgreSQL database at the same
// time: one plans, both send, each claiming its own deliveries.
func TestRunsOnTwoHostsShareOnePostgresSend(t *testing.T) {
	const n = 4000
	srv := smtptest.Start(t, smtptest.Options{Delay: time.Millisecond, Discard: true})
	dsn := pgtest.DSN(t)
	var desks []*desk
	for range 2 {
		d := pgDesk(t, srv.Port, dsn, "")
		d.piece("grid-sync", "Grid synchronisation", "energy")
		crashList(d, n)
		desks = append(desks, d)
	}
	a := desks[0].start(t, true, "run")
	b := desks[1].start(t, true, "run")
	ca, cb := a.wait(t), b.wait(t)
	if ca != 0 || cb != 0 {
		t.Fatalf("exit codes %d, %d\n--- a\n%s\n--- b\n%s", ca, cb, a.output(), b.output())
	}
	missed, dup := tally(srv, n)
	if missed != 0 || dup != 0 {
		t.Fatalf("two hosts on PostgreSQL: %d missed, %d duplicates (want 0, 0)", missed, dup)
	}
	sa, sb := a.sent(t), b.sent(t)
	t.Logf("host a sent %d, host b sent %d", sa, sb)
	if sa+sb != n || sa == 0 || sb == 0 {
		t.Fatalf("sent %d + %d, want both sharing %d", sa, sb, n)
	}
}

// TestPausedHolderSendsNothingAfterItResumes pauses a sending run (SIGSTOP) at
// a moment when its connections wait on the server, past its lease's expiry;
// another run takes the work over and finishes it; then the paused run is
// resumed (SIGCONT). It must send nothing more: its time is up, so it drops
// the messages it had begun before their content goes out, and stops.
func TestPausedHolderSendsNothingAfterItResumes(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			const n = 2000
			var (
				holding atomic.Bool
				held    atomic.Int32
				gate    = make(chan struct{})
			)
			srv := smtptest.Start(t, smtptest.Options{Delay: 300 * time.Microsecond, Rcpt: func(string) *smtp.SMTPError {
				if holding.Load() {
					held.Add(1)
					<-gate
				}
				return nil
			}})
			newOne := func() *desk {
				if engine == "postgres" {
					return pgDesk(t, srv.Port, pgDSNOnce(t), "")
				}
				return newDesk(t, smtpConfig(srv.Port, ""))
			}
			a := newOne()
			a.piece("grid-sync", "Grid synchronisation", "energy")
			crashList(a, n)
			b := a // SQLite: the same data folder; PostgreSQL: another host
			if engine == "postgres" {
				b = newOne()
				b.piece("grid-sync", "Grid synchronisation", "energy")
				crashList(b, n)
			}

			pa := a.start(t, false, "run")
			waitFor(t, "300 messages", func() bool { return srv.Count() >= 300 })
			holding.Store(true)
			// Every one of a's four connections now waits for its RCPT answer:
			// nothing of theirs has reached the server's mailbox.
			waitFor(t, "a's connections to wait at RCPT", func() bool { return held.Load() >= crashConnections })
			if err := pa.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			// kill returns before every thread of the process has stopped: one
			// running on the other core goes on for a moment. Wait until all are.
			waitFor(t, "a to be stopped", func() bool { return allStopped(t, pa.cmd.Process.Pid) })
			stoppedAt := time.Now()
			holding.Store(false)
			close(gate) // the answers go to a's sockets; a is stopped and cannot read them

			pb := b.start(t, false, "run")
			if code := pb.wait(t); code != 0 {
				t.Fatalf("the run that took over: exit %d\n%s", code, pb.output())
			}
			atTakeover := srv.Count()
			if err := pa.cmd.Process.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			codeA := pa.wait(t)
			if got := srv.Count(); got != atTakeover {
				t.Errorf("the resumed run sent %d messages after its lease had gone", got-atTakeover)
			}
			if codeA == 0 || !strings.Contains(pa.output(), "lease") {
				t.Errorf("the resumed run: exit %d, want a failure that names the lost lease\n%s", codeA, pa.output())
			}
			missed, dup := tally(srv, n)
			t.Logf("%s: %d accepted when the run that took over finished; %d missed, %d duplicates", engine, atTakeover, missed, dup)
			if missed != 0 || dup != 0 {
				for _, m := range srv.Messages() {
					if srv.PerRecipient()[m.To[0]] > 1 {
						t.Logf("%s on session %d, %v after the pause", m.To[0], m.Session, m.At.Sub(stoppedAt))
					}
				}
				t.Fatalf("%d missed, %d duplicates (want 0, 0)\n--- a\n%s\n--- b\n%s", missed, dup, pa.output(), pb.output())
			}
		})
	}
}

// allStopped reports whether every thread of process pid is stopped (state T).
func allStopped(t *testing.T, pid int) bool {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("threads of %d: %v", pid, err)
	}
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			return false
		}
		// The state follows the command name, which is in parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) || b[i+2] != 'T' {
			return false
		}
	}
	return true
}

// pgDSNOnce gives the tests of one subtest the same new database schema.
func pgDSNOnce(t *testing.T) string {
	t.Helper()
	key := "pgdsn:" + t.Name()
	if v, ok := pgDSNs.Load(key); ok {
		return v.(string)
	}
	dsn := pgtest.DSN(t)
	pgDSNs.Store(key, dsn)
	return dsn
}

var pgDSNs sync.Map

// TestReplicaKilledMidSendOnPostgres runs three replicas on one PostgreSQL
// database sending 50,000 digests, and SIGKILLs one of them mid-send. The other
// two take over what it had claimed once its lease expires: nobody is missed,
// and the duplicates are at most the messages the killed replica had on the
// wire, one per connection.
func TestReplicaKilledMidSendOnPostgres(t *testing.T) {
	const n = 50000
	srv := smtptest.Start(t, smtptest.Options{Discard: true})
	dsn := pgtest.DSN(t)
	var replicas []*proc
	for range 3 {
		d := pgDesk(t, srv.Port, dsn, "")
		d.piece("grid-sync", "Grid synchronisation", "energy")
		crashList(d, n)
		replicas = append(replicas, d.start(t, false, "run"))
	}
	waitFor(t, "a third of the messages", func() bool { return srv.Count() >= n/3 })
	if err := replicas[1].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	replicas[1].wait(t)
	atKill := srv.Count()
	for i, p := range []*proc{replicas[0], replicas[2]} {
		if code := p.wait(t); code != 0 {
			t.Fatalf("surviving replica %d: exit %d\n%s", i, code, p.output())
		}
	}
	missed, dup := tally(srv, n)
	t.Logf("killed at %d accepted; survivors sent %d and %d; %d missed, %d duplicates",
		atKill, replicas[0].sent(t), replicas[2].sent(t), missed, dup)
	if missed != 0 {
		t.Errorf("%d subscribers missed", missed)
	}
	if dup > crashConnections {
		t.Errorf("%d duplicates, more than the killed replica's %d connections", dup, crashConnections)
	}
}
