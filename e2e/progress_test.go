package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestProgressBarOnlyOnATerminal runs publisher under a pseudo-terminal (util-linux
// script) and plainly: the bar is drawn in the first case only.
func TestProgressBarOnlyOnATerminal(t *testing.T) {
	d := newDesk(t, "mail:\n  transport: file\n  outbox_dir: outbox\ndigest:\n  default_cadence: immediate\n")
	d.piece("one", "One", "energy")
	var csv strings.Builder
	csv.WriteString("email\n")
	for i := range 400 {
		fmt.Fprintf(&csv, "r%03d@example.org\n", i)
	}
	d.write("subscribers/list.csv", csv.String())

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "script", "-qec", binary+" run", "/dev/null")
	cmd.Dir = d.dir
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("under a terminal: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "sending") || !strings.Contains(string(out), "/400") || !strings.Contains(string(out), "sent 400") {
		t.Fatalf("no progress bar under a terminal:\n%s", out)
	}

	d.piece("two", "Two", "energy")
	r := d.run("run")
	if r.code != 0 || strings.Contains(r.stderr, "/400") || !strings.Contains(r.stdout, "sent 400") {
		t.Fatalf("without a terminal: exit %d, a bar was drawn or the summary is missing:\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}
