// Package e2e drives the real publisher binary as a subprocess against real parts:
// a SQLite file, an SMTP server on loopback, the file outbox. Crash tests kill it
// with SIGKILL.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"publisher/internal/pgtest"
)

// binary is the publisher built once for the whole package.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "publisher-e2e-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "publisher")
	// Built without -race even under go test -race: the crash tests need a binary
	// that sends at a realistic pace; the packages' own tests run with the detector.
	build := exec.Command("go", "build", "-o", binary, "../cmd/publisher")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building publisher:", err)
		os.Exit(1)
	}
	// Tests of replicas on PostgreSQL share one private cluster (pgtest).
	code := pgtest.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// repoRoot is the repository's top folder.
func repoRoot(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// desk is a working folder with a configuration, pieces and subscriber lists.
type desk struct {
	t   testing.TB
	dir string
	env []string
}

func newDesk(t testing.TB, yaml string) *desk {
	t.Helper()
	d := &desk{t: t, dir: t.TempDir()}
	for _, sub := range []string{"content", "subscribers"} {
		if err := os.MkdirAll(filepath.Join(d.dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	d.write("publisher.yaml", yaml)
	return d
}

func (d *desk) write(name, body string) {
	d.t.Helper()
	p := filepath.Join(d.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		d.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		d.t.Fatal(err)
	}
}

// result is what one publisher invocation did.
type result struct {
	stdout, stderr string
	code           int
}

// run runs publisher to completion (or until a minute passes).
func (d *desk) run(args ...string) result {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := d.command(ctx, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		d.t.Fatalf("publisher %v: %v", args, err)
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

func (d *desk) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = d.dir
	cmd.Env = append(cleanEnv(), d.env...)
	return cmd
}

// cleanEnv is the test's environment without any PUBLISHER_ variable a developer
// may have exported.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PUBLISHER_") {
			out = append(out, kv)
		}
	}
	return out
}

// smtpConfig is a publisher.yaml sending to a loopback SMTP server.
func smtpConfig(port int, extra string) string {
	return fmt.Sprintf(`site:
  title: Test Desk
  base_url: https://desk.example.org/
  language: en
  description: Test pieces.
secret: e2e-secret-0123456789abcdef-0123456789
mail:
  transport: smtp
  from: Test Desk <digest@desk.example.org>
  reply_to: Editors <editors@desk.example.org>
  retry_base: 50ms
  smtp:
    host: 127.0.0.1
    port: %d
    tls: none
    connections: 4
    connect_timeout: 5s
    send_timeout: 10s
digest:
  default_cadence: immediate
store:
  # Short, so that a rerun after a kill takes over within seconds.
  lease_ttl: 3s
%s`, port, extra)
}

// piece writes a Markdown piece with the given topics.
func (d *desk) piece(slug, title string, topics ...string) {
	d.t.Helper()
	tl := ""
	if len(topics) > 0 {
		tl = "topics: [" + strings.Join(topics, ", ") + "]\n"
	}
	d.write("content/"+slug+".md", fmt.Sprintf("---\ntitle: %q\nauthors:\n  - name: Ona Petraitė\n    role: Senior fellow\nsummary: What %s means for the region.\n%s---\n\nThe first paragraph of %s sets out the argument.\n\nA second paragraph follows with [a link](../other/).\n", title, title, tl, title))
}
