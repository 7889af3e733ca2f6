package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"publisher/internal/smtptest"
	"publisher/internal/store"
)

// The command line as an operator meets it: each case is the built binary, its
// exit status and what it says.

func TestCLIHelpGoesToStdout(t *testing.T) {
	d := newDesk(t, "")
	for _, args := range [][]string{{"--help"}, {"help"}, {"run", "--help"}, {"subscribers", "--help"}, {"subscribers", "add", "--help"}, {"subscribers", "remove", "--help"}} {
		r := d.run(args...)
		if r.code != 0 || !strings.Contains(r.stdout, "Usage: publisher") || r.stderr != "" {
			t.Errorf("%v: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
		}
	}
	if r := d.run("subscribers", "add", "--help"); !strings.Contains(r.stdout, "Usage: publisher subscribers add [flags] EMAIL") || strings.Contains(r.stdout+r.stderr, "not a valid address") {
		t.Errorf("subscribers add --help:\n%s%s", r.stdout, r.stderr)
	}
	// remove has its own help, not suppress's.
	if r := d.run("subscribers", "remove", "--help"); !strings.Contains(r.stdout, "Usage: publisher subscribers remove") || strings.Contains(r.stdout, "reason: unsubscribed") {
		t.Errorf("subscribers remove --help:\n%s", r.stdout)
	}
	// A mistake prints the usage on stderr, exit 2.
	if r := d.run("run", "--frobnicate"); r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, "Usage: publisher run") {
		t.Errorf("run --frobnicate: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
}

func TestCLIExtraArgumentsRefused(t *testing.T) {
	d := newDesk(t, "")
	d.piece("one", "One", "energy")
	for _, args := range [][]string{{"run", "extra-arg"}, {"build", "extra"}, {"check", "x"}, {"daemon", "x"}, {"version", "x"}, {"subscribers", "list", "x"}, {"subscribers", "add", "a@example.org", "b@example.org"}} {
		r := d.run(args...)
		if r.code != 2 || !strings.Contains(r.stderr, "unexpected argument") {
			t.Errorf("%v: exit %d\n%s", args, r.code, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(d.dir, "public")); !os.IsNotExist(err) {
		t.Fatalf("run extra-arg ran a cycle: public/ exists (%v)", err)
	}
}

func TestCLISubscribersAdd(t *testing.T) {
	d := newDesk(t, "")
	// Flags before the address, as the usage line puts them.
	if r := d.run("subscribers", "add", "--name", "Yana", "--topics", "energy;security", "y@example.org"); r.code != 0 || !strings.Contains(r.stdout, "y@example.org: active") {
		t.Fatalf("add with flags first: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// Changing the cadence keeps the name and topics.
	if r := d.run("subscribers", "add", "y@example.org", "--cadence", "weekly"); r.code != 0 {
		t.Fatalf("add --cadence: exit %d\n%s", r.code, r.stderr)
	}
	list := d.run("subscribers", "list")
	row := lineWith(list.stdout, "y@example.org")
	for _, want := range []string{"Yana", "energy;security", "weekly", "active"} {
		if !strings.Contains(row, want) {
			t.Errorf("after add --cadence, the row lacks %q: %q", want, row)
		}
	}
	// A suppressed address is not rewritten, and the exit says so.
	if r := d.run("subscribers", "suppress", "gone@example.org", "--as", "unsubscribed"); r.code != 0 {
		t.Fatalf("suppress: %d %s", r.code, r.stderr)
	}
	r := d.run("subscribers", "add", "gone@example.org", "--cadence", "weekly", "--name", "Back")
	if r.code != 1 || !strings.Contains(r.stderr, "gone@example.org is unsubscribed") {
		t.Fatalf("add of a suppressed address: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	row = lineWith(d.run("subscribers", "list").stdout, "gone@example.org")
	if !strings.Contains(row, "unsubscribed") || strings.Contains(row, "Back") || strings.Contains(row, "weekly") {
		t.Fatalf("the suppressed record was changed: %q", row)
	}
	if r := d.run("subscribers", "add", "not an address"); r.code != 1 || !strings.Contains(r.stderr, "not a valid address") {
		t.Fatalf("bad address: exit %d %s", r.code, r.stderr)
	}
}

func TestCLISubscribersListStatus(t *testing.T) {
	d := newDesk(t, "")
	r := d.run("subscribers", "list", "--status", "bogus")
	if r.code != 2 || !strings.Contains(r.stderr, `unknown status "bogus"`) || !strings.Contains(r.stderr, "unsubscribed, bounced") {
		t.Fatalf("--status bogus: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := d.run("subscribers", "list", "--help"); !strings.Contains(r.stdout, "Statuses: active") {
		t.Fatalf("the statuses are not documented:\n%s", r.stdout)
	}
}

func TestCLIBadConfigPathExitsTwo(t *testing.T) {
	d := newDesk(t, "")
	for _, args := range [][]string{{"check"}, {"run"}, {"build"}, {"subscribers", "list"}, {"config", "--effective"}} {
		r := d.run(append([]string{"--config", "missing.yaml"}, args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, "missing.yaml") {
			t.Errorf("%v with a missing --config: exit %d\n%s", args, r.code, r.stderr)
		}
	}
}

func TestCLISaysWhichConfigurationFile(t *testing.T) {
	d := newDesk(t, "")
	if err := os.Remove(filepath.Join(d.dir, "publisher.yaml")); err != nil {
		t.Fatal(err)
	}
	r := d.run("build")
	if r.code != 0 || strings.Count(r.stderr, "publisher.yaml not found") != 1 {
		t.Fatalf("without a file: exit %d\n%s", r.code, r.stderr)
	}
	d.write("publisher.yaml", "site:\n  title: Filed\n")
	r = d.run("build")
	abs, _ := filepath.EvalSymlinks(filepath.Join(d.dir, "publisher.yaml"))
	if r.code != 0 || strings.Count(r.stderr, "msg=configuration file=") != 1 || !strings.Contains(r.stderr, filepath.Base(filepath.Dir(abs))) {
		t.Fatalf("with a file: exit %d\n%s", r.code, r.stderr)
	}
}

// TestCLIPathsRelativeToTheConfigFile: content.dir in a file given by --config
// is found beside the file, not in the working folder.
func TestCLIPathsRelativeToTheConfigFile(t *testing.T) {
	d := newDesk(t, "")
	d.write("desk/publisher.yaml", "content:\n  dir: pieces\noutput:\n  dir: site\ndata:\n  dir: state\nsubscribers:\n  dir: lists\n")
	d.write("desk/pieces/one.md", "---\ntitle: Beside the file\n---\n\nBody.\n")
	r := d.run("--config", "desk/publisher.yaml", "build")
	if r.code != 0 || !strings.Contains(r.stdout, "built 1 pieces") {
		t.Fatalf("build: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(d.dir, "desk", "site", "feed.xml")); err != nil {
		t.Fatalf("output not beside the file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(d.dir, "desk", "state", "publisher.db")); err != nil {
		t.Fatalf("database not beside the file: %v", err)
	}
}

func TestCLIPreviewWritesNothingWhenNothingToSend(t *testing.T) {
	d := newDesk(t, "")
	out := filepath.Join(d.dir, "preview.eml")
	r := d.run("preview", "--subscriber", "nobody@example.org", "--out", out)
	if r.code != 1 || !strings.Contains(r.stderr, "nobody@example.org") {
		t.Fatalf("preview: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("preview left a file behind (%v)", err)
	}
}

// TestCLICheckExecutesTemplates: a template that parses but fails when it is
// executed makes check exit 1, naming the file and line.
func TestCLICheckExecutesTemplates(t *testing.T) {
	d := newDesk(t, "templates:\n  dir: overrides\n")
	d.piece("one", "One", "energy")
	d.write("overrides/site-piece.html.tmpl", "{{define \"site-main\"}}\n<h1>{{.Piece.Title}}</h1>\n<p>{{.Piece.Nonesuch}}</p>\n{{end}}\n")
	r := d.run("check")
	if r.code != 1 || !strings.Contains(r.stdout, filepath.Join("overrides", "site-piece.html.tmpl")+":3") || !strings.Contains(r.stdout, "Nonesuch") {
		t.Fatalf("check: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// A templates.dir that does not exist is a configuration error, not the
	// built-in templates in silence.
	d.write("publisher.yaml", "templates:\n  dir: overides\n")
	if r := d.run("check"); r.code != 2 || !strings.Contains(r.stderr, "templates.dir") {
		t.Fatalf("mistyped templates.dir: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestCLISettingsThatCannotWork(t *testing.T) {
	d := newDesk(t, "mail:\n  transport: smtp\n  smtp:\n    host: smtp.example.org\nsite:\n  base_url: https://desk.example.org/\n")
	for _, secret := range []string{"x", "replace-with-a-long-random-value"} {
		d.env = []string{"PUBLISHER_SECRET=" + secret}
		if r := d.run("check"); r.code != 2 || !strings.Contains(r.stderr, "secret:") {
			t.Errorf("secret %q: exit %d\n%s%s", secret, r.code, r.stdout, r.stderr)
		}
	}
	d.env = []string{"PUBLISHER_SECRET=0123456789abcdef0123456789abcdef", "PUBLISHER_SCHEDULE=0 0 30 2 *"}
	if r := d.run("check"); r.code != 2 || !strings.Contains(r.stderr, "never fires") {
		t.Errorf("schedule that never fires: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	d.env = []string{"PUBLISHER_SECRET=0123456789abcdef0123456789abcdef", "PUBLISHER_MAIL_DKIM_DOMAIN=other.example", "PUBLISHER_MAIL_DKIM_SELECTOR=s1", "PUBLISHER_MAIL_DKIM_KEY_FILE=key.pem"}
	if r := d.run("check"); !strings.Contains(r.stdout, "mail.dkim.domain") || !strings.Contains(r.stdout, "DMARC") {
		t.Errorf("unaligned DKIM domain: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestCLIKubernetesServiceLinks: a Service named publisher makes Kubernetes
// inject PUBLISHER_SERVICE_HOST and friends into every pod; publisher warns
// and runs.
func TestCLIKubernetesServiceLinks(t *testing.T) {
	d := newDesk(t, "")
	d.piece("one", "One", "energy")
	d.env = []string{"PUBLISHER_SERVICE_HOST=10.96.0.10", "PUBLISHER_PORT=tcp://10.96.0.10:80", "PUBLISHER_PORT_80_TCP_ADDR=10.96.0.10"}
	r := d.run("run")
	if r.code != 0 || !strings.Contains(r.stderr, "PUBLISHER_SERVICE_HOST") || !strings.Contains(r.stderr, "enableServiceLinks") {
		t.Fatalf("run with service links: exit %d\n%s", r.code, r.stderr)
	}
}

func TestCLISecretsFromFilesAndMasked(t *testing.T) {
	d := newDesk(t, "mail:\n  transport: smtp\n  smtp:\n    host: smtp.example.org\n    username: digest\nsite:\n  base_url: https://desk.example.org/\n")
	d.write("run/secrets/secret", "f00dfeedf00dfeedf00dfeedf00dfeed-from-a-file\n")
	d.write("run/secrets/password", "the-smtp-password\n")
	d.env = []string{"PUBLISHER_SECRET_FILE=run/secrets/secret", "PUBLISHER_MAIL_SMTP_PASSWORD_FILE=run/secrets/password"}
	if r := d.run("check"); r.code != 0 {
		t.Fatalf("check with secrets from files: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r := d.run("config", "--effective")
	if r.code != 0 || strings.Contains(r.stdout, "from-a-file") || strings.Contains(r.stdout, "the-smtp-password") {
		t.Fatalf("config --effective: exit %d\n%s", r.code, r.stdout)
	}
	for _, want := range []string{`secret = "(set, 44 bytes)"  # PUBLISHER_SECRET_FILE`, `mail.smtp.password = "(set, 17 bytes)"  # PUBLISHER_MAIL_SMTP_PASSWORD_FILE`, `mail.transport = "smtp"  # publisher.yaml:2`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("config --effective lacks %q:\n%s", want, r.stdout)
		}
	}
}

func lineWith(text, s string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// syncBuffer is an output buffer a test may read while the process writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// watched is a daemon whose output can be read while it runs.
type watched struct {
	t    *testing.T
	out  *syncBuffer
	proc *os.Process
	done chan int
}

func (d *desk) startWatched(t *testing.T) *watched {
	t.Helper()
	cmd := d.command(context.Background(), "daemon")
	w := &watched{t: t, out: &syncBuffer{}, done: make(chan int, 1)}
	cmd.Stdout, cmd.Stderr = w.out, w.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.proc = cmd.Process
	go func() { _ = cmd.Wait(); w.done <- cmd.ProcessState.ExitCode() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return w
}

// stop sends SIGTERM and returns the exit status and how long the exit took.
func (w *watched) stop(limit time.Duration) (int, time.Duration) {
	w.t.Helper()
	start := time.Now()
	if err := w.proc.Signal(syscall.SIGTERM); err != nil {
		w.t.Fatal(err)
	}
	select {
	case code := <-w.done:
		return code, time.Since(start)
	case <-time.After(limit):
		w.t.Fatalf("no exit within %v of SIGTERM:\n%s", limit, w.out)
	}
	return -1, 0
}

func get(t *testing.T, url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDaemonServesCurrentSettingsAtStart: started on output built for another
// base URL, or on an empty output folder, with an hourly schedule, the daemon
// serves the front page and the feed within 3 seconds, every link on its own
// base URL.
func TestDaemonServesCurrentSettingsAtStart(t *testing.T) {
	for _, previous := range []string{"another base URL", "empty output folder"} {
		t.Run(previous, func(t *testing.T) {
			httpPort := freePort(t)
			d := newDesk(t, daemonConfig(freePort(t), httpPort, ""))
			d.write("publisher.yaml", strings.Replace(strings.Replace(daemonConfig(freePort(t), httpPort, ""), `schedule: "@every 2s"`, `schedule: "@hourly"`, 1), "run_at_start: true", "run_at_start: false", 1))
			d.piece("grid-sync", "Grid synchronisation", "energy")
			if previous == "another base URL" {
				d.env = []string{"PUBLISHER_SITE_BASE_URL=https://old.example.org/"}
				if r := d.run("build"); r.code != 0 {
					t.Fatalf("build for the old base URL: %d %s", r.code, r.stderr)
				}
				d.env = nil
			} else if err := os.MkdirAll(filepath.Join(d.dir, "public"), 0o755); err != nil {
				t.Fatal(err)
			}
			base := fmt.Sprintf("http://127.0.0.1:%d/", httpPort)
			start := time.Now()
			w := d.startWatched(t)
			var front, feed string
			for {
				c1, b1 := get(t, base)
				c2, b2 := get(t, base+"feed.xml")
				if c1 == 200 && c2 == 200 {
					front, feed = b1, b2
					break
				}
				if time.Since(start) > 3*time.Second {
					t.Fatalf("after 3 s: / %d, /feed.xml %d\n%s", c1, c2, w.out)
				}
				time.Sleep(20 * time.Millisecond)
			}
			t.Logf("/ and /feed.xml served %v after start", time.Since(start).Round(time.Millisecond))
			links := regexp.MustCompile(`(?:href|action|src)="(https?://[^"]+)"|<link>(https?://[^<]+)</link>`)
			n := 0
			// Feed entry ids stay on the first base URL recorded, on purpose (a
			// reader's feed reader must not see every entry anew after a move):
			// they are identifiers, not links.
			ids := regexp.MustCompile(`<guid isPermaLink="false">[^<]*</guid>`)
			for _, page := range []string{front, feed} {
				if strings.Contains(ids.ReplaceAllString(page, ""), "old.example.org") {
					t.Fatalf("a page still links to the old base URL:\n%s", page)
				}
				for _, m := range links.FindAllStringSubmatch(page, -1) {
					u := m[1] + m[2]
					if strings.HasPrefix(u, "http://127.0.0.1") && !strings.HasPrefix(u, base) {
						t.Errorf("link %s is not on %s", u, base)
					}
					if strings.HasPrefix(u, base) {
						n++
					}
				}
			}
			if n == 0 || !strings.Contains(front, `action="`+base+`subscribe"`) {
				t.Fatalf("no link on the current base URL (%d), or the form posts elsewhere:\n%s", n, front)
			}
			if code, _ := w.stop(time.Minute); code != 0 {
				t.Fatalf("exit %d:\n%s", code, w.out)
			}
		})
	}
}

// TestReadyzThroughA550: one address refused for good fails the run's
// delivery; /readyz stays 200 (the feeds, the form and the unsubscribe links
// stay in service), and the metrics say what failed.
func TestReadyzThroughA550(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Rcpt: func(rcpt string) *smtp.SMTPError {
		if rcpt == "unknown@example.org" {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "user unknown"}
		}
		return nil
	}})
	httpPort := freePort(t)
	d := newDesk(t, daemonConfig(srv.Port, httpPort, ""))
	d.write("publisher.yaml", strings.Replace(daemonConfig(srv.Port, httpPort, ""), `schedule: "@every 2s"`, `schedule: "@hourly"`, 1))
	d.piece("grid-sync", "Grid synchronisation", "energy")
	d.write("subscribers/list.csv", "email\nreader@example.org\nunknown@example.org\n")
	w := d.startWatched(t)
	base := fmt.Sprintf("http://127.0.0.1:%d/", httpPort)
	waitFor(t, "the run with a 550", func() bool {
		return strings.Contains(w.out.String(), "run failed") || strings.Contains(w.out.String(), "run finished")
	})
	if !strings.Contains(w.out.String(), "run failed") {
		t.Fatalf("the run did not fail:\n%s", w.out)
	}
	if code, body := get(t, base+"readyz"); code != 200 {
		t.Fatalf("/readyz after a run with a 550: %d %s", code, body)
	}
	if _, body := get(t, base+"metrics"); !strings.Contains(body, "publisher_last_run_failed_deliveries 1") || !strings.Contains(body, "publisher_digests_failed_total 1") {
		t.Fatalf("/metrics does not show the failure:\n%s", body)
	}
	if code, _ := w.stop(time.Minute); code != 0 {
		t.Fatalf("exit %d:\n%s", code, w.out)
	}
}

// TestDaemonSIGTERMWaitsForASlowMessage: a message takes 40 s on a slow server;
// SIGTERM arrives while it is on the wire, with shutdown_grace at 5 s. The
// daemon waits for it (mail.smtp.send_timeout bounds the wait, not the grace),
// exits 0, the delivery is recorded sent, and a restart sends no duplicate.
func TestDaemonSIGTERMWaitsForASlowMessage(t *testing.T) {
	const delay = 40 * time.Second
	srv := smtptest.Start(t, smtptest.Options{Delay: delay})
	httpPort := freePort(t)
	cfg := strings.Replace(daemonConfig(srv.Port, httpPort, ""), "shutdown_grace: 20s", "shutdown_grace: 5s", 1)
	cfg = strings.Replace(cfg, `schedule: "@every 2s"`, `schedule: "@hourly"`, 1)
	d := newDesk(t, cfg)
	d.piece("grid-sync", "Grid synchronisation", "energy")
	d.write("subscribers/list.csv", "email\nreader@example.org\n")

	w := d.startWatched(t)
	waitFor(t, "the message on the wire", func() bool { return srv.DataStarted() == 1 })
	onWire := time.Now()
	time.Sleep(2 * time.Second)
	code, took := w.stop(2 * time.Minute)
	if code != 0 {
		t.Fatalf("exit %d after SIGTERM:\n%s", code, w.out)
	}
	if since := time.Since(onWire); since < delay {
		t.Fatalf("exited %v after the message went on the wire, before the server answered (%v)", since, delay)
	}
	if srv.Count() != 1 {
		t.Fatalf("the server accepted %d messages", srv.Count())
	}
	t.Logf("SIGTERM to exit: %v", took.Round(time.Millisecond))

	st, err := store.OpenSQLite(context.Background(), filepath.Join(d.dir, "data", "publisher.db"))
	if err != nil {
		t.Fatal(err)
	}
	counts, err := st.CountDeliveries(context.Background())
	st.Close()
	if err != nil || counts.Sent != 1 || counts.Pending != 0 {
		t.Fatalf("ledger after the stop: %+v (%v)", counts, err)
	}

	// A restart that runs at once has nothing to send again.
	srv.SetOptions(smtptest.Options{})
	w = d.startWatched(t)
	waitFor(t, "the restart's run", func() bool { return strings.Contains(w.out.String(), "run finished") })
	if code, _ := w.stop(time.Minute); code != 0 {
		t.Fatalf("restart exit %d:\n%s", code, w.out)
	}
	if n := srv.PerRecipient()["reader@example.org"]; n != 1 {
		t.Fatalf("reader@example.org got %d messages", n)
	}
}
