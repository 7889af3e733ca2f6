package cli

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// TestJSONLogDurationsInSeconds: a log processor compares and sums numbers, so
// a duration in a JSON log is seconds, not slog's default nanoseconds.
func TestJSONLogDurationsInSeconds(t *testing.T) {
	var buf bytes.Buffer
	e := &env{stderr: &buf, logJSON: true}
	e.logger().Info("run finished", "duration", 1500*time.Millisecond)
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	if d, ok := line["duration"].(float64); !ok || d != 1.5 {
		t.Fatalf("duration = %v (%T), want 1.5 seconds", line["duration"], line["duration"])
	}
	buf.Reset()
	(&env{stderr: &buf}).logger().Info("run finished", "duration", 1500*time.Millisecond)
	if !bytes.Contains(buf.Bytes(), []byte("duration=1.5s")) {
		t.Fatalf("text log: %s", buf.String())
	}
}

// TestNoProgressBarWithJSONLogs: the bar is for a person at a terminal; a JSON
// log is read by a program, even when stderr is a terminal.
func TestNoProgressBarWithJSONLogs(t *testing.T) {
	var buf bytes.Buffer
	if (&env{stderr: &buf, terminal: true}).progress() == nil {
		t.Fatal("no bar on a terminal")
	}
	if (&env{stderr: &buf, terminal: true, logJSON: true}).progress() != nil {
		t.Fatal("a bar with --log-json")
	}
	if (&env{stderr: &buf}).progress() != nil {
		t.Fatal("a bar without a terminal")
	}
}
