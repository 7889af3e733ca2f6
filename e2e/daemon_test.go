package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/quotedprintable"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"publisher/internal/smtptest"
)

// daemon is a publisher daemon subprocess.
type daemon struct {
	t    *testing.T
	cmd  *exec.Cmd
	out  *bytes.Buffer
	base string
	done chan struct{}
}

func daemonConfig(smtpPort, httpPort int, extra string) string {
	return fmt.Sprintf(`site:
  title: Daemon Desk
  base_url: http://127.0.0.1:%d/
  language: en
secret: daemon-secret-0123456789abcdef-0123456789
schedule: "@every 2s"
run_at_start: true
shutdown_grace: 20s
http:
  listen: 127.0.0.1:%d
  admin_listen: ""
  rate_limit: 50
mail:
  transport: smtp
  from: Daemon Desk <digest@desk.example.org>
  retry_base: 50ms
  smtp:
    host: 127.0.0.1
    port: %d
    tls: none
    connections: 4
digest:
  default_cadence: immediate
%s`, httpPort, httpPort, smtpPort, extra)
}

func (d *desk) startDaemon(t *testing.T, httpPort int) *daemon {
	t.Helper()
	cmd := d.command(context.Background(), "daemon")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	dm := &daemon{t: t, cmd: cmd, out: &out, base: fmt.Sprintf("http://127.0.0.1:%d/", httpPort), done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(dm.done) }()
	t.Cleanup(func() {
		select {
		case <-dm.done:
		default:
			_ = cmd.Process.Kill()
			<-dm.done
		}
	})
	waitFor(t, "the daemon's /healthz", func() bool {
		resp, err := http.Get(dm.base + "healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return dm
}

// stop sends SIGTERM and returns the exit status.
func (dm *daemon) stop() int {
	dm.t.Helper()
	if err := dm.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		dm.t.Fatal(err)
	}
	select {
	case <-dm.done:
	case <-time.After(time.Minute):
		dm.t.Fatalf("daemon did not stop after SIGTERM:\n%s", dm.out)
	}
	return dm.cmd.ProcessState.ExitCode()
}

// bodyOf decodes a received message's raw text enough to search it.
func bodyOf(m smtptest.Message) string {
	b, _ := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(m.Data)))
	return string(b)
}

// waitForMessage waits for a message to rcpt whose decoded text contains want.
func waitForMessage(t *testing.T, srv *smtptest.Server, rcpt, want string) smtptest.Message {
	t.Helper()
	var found smtptest.Message
	waitFor(t, fmt.Sprintf("a message to %s with %q", rcpt, want), func() bool {
		for _, m := range srv.Messages() {
			if len(m.To) == 1 && m.To[0] == rcpt && strings.Contains(bodyOf(m), want) {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

func TestDaemonPublishesAndRoundTripsASubscriber(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	httpPort := freePort(t)
	d := newDesk(t, daemonConfig(srv.Port, httpPort, ""))
	d.piece("first-piece", "First piece", "energy")
	d.write("subscribers/list.csv", "email,name\nalice@example.org,Alice\n")
	dm := d.startDaemon(t, httpPort)

	waitForMessage(t, srv, "alice@example.org", "First piece")

	// A piece dropped in while the daemon runs goes out without a restart,
	// and the feed it serves has it.
	d.piece("second-piece", "Second piece", "energy")
	waitForMessage(t, srv, "alice@example.org", "Second piece")
	resp, err := http.Get(dm.base + "feed.xml")
	if err != nil {
		t.Fatal(err)
	}
	feed, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), "application/rss+xml") || !strings.Contains(string(feed), "Second piece") {
		t.Fatalf("feed.xml: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), feed)
	}

	// Sign up on the form, confirm from the email, get a digest, leave in one click.
	form := url.Values{"email": {"bob@example.org"}, "name": {"Bob"}, "cadence": {"immediate"}}
	resp, err = http.PostForm(dm.base+"subscribe", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("subscribe: %d", resp.StatusCode)
	}
	confirmation := waitForMessage(t, srv, "bob@example.org", "confirm?token=")
	link := regexp.MustCompile(`http://127\.0\.0\.1:\d+/confirm\?token=[A-Za-z0-9._~%-]+`).FindString(bodyOf(confirmation))
	if link == "" {
		t.Fatalf("no confirmation link in:\n%s", bodyOf(confirmation))
	}
	resp, err = http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("confirm: %d", resp.StatusCode)
	}
	d.piece("third-piece", "Third piece", "energy")
	digest := waitForMessage(t, srv, "bob@example.org", "Third piece")
	unsub := regexp.MustCompile(`<(http://127\.0\.0\.1:\d+/unsubscribe\?token=[^>]+)>`).FindStringSubmatch(digest.Header().Get("List-Unsubscribe"))
	if unsub == nil {
		t.Fatalf("List-Unsubscribe = %q", digest.Header().Get("List-Unsubscribe"))
	}
	// RFC 8058: a POST of List-Unsubscribe=One-Click to the listed URL, no cookies.
	resp, err = http.Post(unsub[1], "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("one-click unsubscribe: %d", resp.StatusCode)
	}
	bobBefore := srv.PerRecipient()["bob@example.org"]
	d.piece("fourth-piece", "Fourth piece", "energy")
	waitForMessage(t, srv, "alice@example.org", "Fourth piece")
	if n := srv.PerRecipient()["bob@example.org"]; n != bobBefore {
		t.Fatalf("bob got %d more messages after unsubscribing", n-bobBefore)
	}

	if code := dm.stop(); code != 0 {
		t.Fatalf("daemon exit %d after SIGTERM:\n%s", code, dm.out)
	}
	if per := srv.PerRecipient(); per["alice@example.org"] != 4 {
		t.Fatalf("alice got %d digests, want 4 (one per piece)", per["alice@example.org"])
	}
}

func TestDaemonSIGTERMMidSendThenRestartFinishes(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Delay: time.Millisecond})
	httpPort := freePort(t)
	d := newDesk(t, daemonConfig(srv.Port, httpPort, ""))
	d.piece("grid-sync", "Grid synchronisation", "energy")
	crashList(d, crashSubscribers)

	dm := d.startDaemon(t, httpPort)
	waitFor(t, "300 messages", func() bool { return srv.Count() >= 300 })
	if code := dm.stop(); code != 0 {
		t.Fatalf("daemon exit %d after SIGTERM:\n%s", code, dm.out)
	}
	atStop := srv.Count()
	if atStop >= crashSubscribers {
		t.Fatalf("SIGTERM did not stop the send (all %d went out)", atStop)
	}
	dm = d.startDaemon(t, httpPort)
	waitFor(t, "every subscriber", func() bool { m, _ := tally(srv, crashSubscribers); return m == 0 })
	if code := dm.stop(); code != 0 {
		t.Fatalf("second daemon exit %d:\n%s", code, dm.out)
	}
	if missed, dup := tally(srv, crashSubscribers); missed != 0 || dup != 0 {
		t.Fatalf("after SIGTERM and restart: %d missed, %d duplicates", missed, dup)
	}
	t.Logf("stopped with %d of %d sent; the restart sent the rest with no duplicate", atStop, crashSubscribers)
}
