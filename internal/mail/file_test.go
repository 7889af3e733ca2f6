package mail

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFileTransportWritesParseableMessagesAndOverwrites(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox", "nested")
	ctx := context.Background()
	tr := &FileTransport{Dir: dir}
	s, err := tr.NewSender(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	for i := range 3 {
		if err := s.Send(ctx, sampleMessage(i)); err != nil {
			t.Fatal(err)
		}
	}
	// A resend of message 1 with a changed subject replaces the file.
	again := sampleMessage(1)
	again.Subject = "Second attempt"
	if err := s.Send(ctx, again); err != nil {
		t.Fatal(err)
	}

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 3 {
		t.Fatalf("outbox holds %v, want 3 .eml files and nothing else", names)
	}
	for i := range 3 {
		m := sampleMessage(i)
		if i == 1 {
			m = again
		}
		path := filepath.Join(dir, m.MessageID+".eml")
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("message %d: %v (outbox: %v)", i, err, names)
		}
		assertMessage(t, raw, m)
	}
}

func TestFileTransportRefusesInvalidMessages(t *testing.T) {
	dir := t.TempDir()
	s, err := (&FileTransport{Dir: dir}).NewSender(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := sampleMessage(1)
	m.Subject = "x\r\nBcc: a@example.com"
	err = s.Send(context.Background(), m)
	if Classify(err) != Permanent || !strings.Contains(err.Error(), m.To.Email) {
		t.Fatalf("Send = %v (%v), want a permanent error naming the recipient", err, Classify(err))
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("outbox holds %d files after a refused message", len(entries))
	}
}

func TestFileTransportNeedsADirectory(t *testing.T) {
	if _, err := (&FileTransport{}).NewSender(context.Background()); err == nil {
		t.Error("empty Dir accepted")
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (&FileTransport{Dir: filepath.Join(file, "sub")}).NewSender(context.Background()); err == nil {
		t.Error("a Dir under a regular file accepted")
	}
}

func TestFileName(t *testing.T) {
	cases := map[string]string{
		"d12.s34@example.org": "d12.s34@example.org.eml",
	}
	for id, want := range cases {
		if got := FileName(id); got != want {
			t.Errorf("FileName(%q) = %q, want %q", id, got, want)
		}
	}
	// Unsafe characters are replaced, and ids that clean up alike still
	// get different names.
	a, b := FileName("a/b@x"), FileName("a_b@x")
	if strings.ContainsAny(a, "/\\") || a == b {
		t.Errorf("FileName: %q and %q", a, b)
	}
	if long := FileName(strings.Repeat("x", 300) + "@example.org"); len(long) > 160 {
		t.Errorf("FileName of a long id is %d bytes", len(long))
	}
	if n := FileName("../../etc@x"); strings.HasPrefix(n, ".") || strings.Contains(n, "/") {
		t.Errorf("FileName = %q", n)
	}
}
