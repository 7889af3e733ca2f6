// Package browsertest runs Debian's headless Chromium for tests: the pages
// the program serves are checked in a real browser. The test script installs
// Chromium; a test fails, never skips, when it is missing.
package browsertest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"
)

// Path is the Chromium to run: $CHROMIUM, else chromium on the PATH.
func Path(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium not found: install Debian's chromium package (apt-get install -y chromium) or set CHROMIUM")
	return ""
}

// Run runs headless Chromium with a fresh profile and the flags given, and
// returns what it printed. A browser that crashes (it does, now and then, on a
// loaded machine) is run again, twice at most; one that fails otherwise fails
// the test.
func Run(t testing.TB, flags ...string) []byte {
	t.Helper()
	stdout, _ := RunLogged(t, flags...)
	return stdout
}

// RunLogged is Run, returning also what the browser logged on stderr (with
// --enable-logging=stderr: console messages, refusals under a page's CSP).
func RunLogged(t testing.TB, flags ...string) (stdout, stderr []byte) {
	t.Helper()
	bin := Path(t)
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		args := append([]string{
			"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--no-first-run", "--no-default-browser-check", "--user-data-dir=" + t.TempDir(),
		}, flags...)
		cmd := exec.CommandContext(ctx, bin, args...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		cancel()
		if err == nil {
			return out.Bytes(), errOut.Bytes()
		}
		var exit *exec.ExitError
		if crashed := errors.As(err, &exit) && !exit.Exited(); !crashed || attempt == 3 {
			t.Fatalf("chromium %v: %v\n%s", flags, err, errOut.String())
		}
		t.Logf("chromium crashed (%v); running it again", err)
	}
}
