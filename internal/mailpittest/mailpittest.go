// Package mailpittest starts a real Mailpit (SMTP, its HTTP API and,
// optionally, its POP3 server) on loopback ports for tests. scripts/test.sh
// installs Mailpit; a test that needs it fails, never skips, when it is missing.
package mailpittest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Server is one running Mailpit.
type Server struct {
	SMTPAddr string // 127.0.0.1:SMTPPort
	SMTPPort int
	POP3Port int    // 0 when POP3 is off
	API      string // base URL of the API, ending in "/api/v1/"
}

// Options choose what Mailpit serves.
type Options struct {
	// POP3User and POP3Password turn the POP3 server on.
	POP3User, POP3Password string
	// POP3CertFile and POP3KeyFile make it implicit TLS.
	POP3CertFile, POP3KeyFile string
}

// Start runs Mailpit until the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin, err := exec.LookPath("mailpit")
	if err != nil {
		gopath, _ := exec.Command("go", "env", "GOPATH").Output()
		bin = filepath.Join(strings.TrimSpace(string(gopath)), "bin", "mailpit")
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("mailpit is not installed (scripts/test.sh installs it: go install github.com/axllent/mailpit@v1.33.1)")
		}
	}
	dir := t.TempDir()
	s := &Server{SMTPPort: freePort(t)}
	s.SMTPAddr = fmt.Sprintf("127.0.0.1:%d", s.SMTPPort)
	httpPort := freePort(t)
	s.API = fmt.Sprintf("http://127.0.0.1:%d/api/v1/", httpPort)
	args := []string{"--smtp", s.SMTPAddr, "--listen", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"--disable-version-check", "--smtp-disable-rdns", "--database", filepath.Join(dir, "mailpit.db")}
	if opts.POP3User != "" {
		s.POP3Port = freePort(t)
		auth := filepath.Join(dir, "pop3-auth")
		if err := os.WriteFile(auth, []byte(opts.POP3User+":"+opts.POP3Password+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--pop3", fmt.Sprintf("127.0.0.1:%d", s.POP3Port), "--pop3-auth-file", auth)
		if opts.POP3CertFile != "" {
			args = append(args, "--pop3-tls-cert", opts.POP3CertFile, "--pop3-tls-key", opts.POP3KeyFile)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for !s.ready() {
		if time.Now().After(deadline) {
			t.Fatalf("Mailpit did not come up in 30 s:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s
}

func (s *Server) ready() bool {
	resp, err := http.Get(s.API + "messages")
	if err != nil {
		return false
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	if s.POP3Port != 0 {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.POP3Port), time.Second)
		if err != nil {
			return false
		}
		c.Close()
	}
	return true
}

// Deliver hands raw to Mailpit over SMTP, from the null return path, as a
// mail server returning a bounce would.
func (s *Server) Deliver(t testing.TB, to string, raw []byte) {
	t.Helper()
	c, err := smtp.Dial(s.SMTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	steps := []func() error{
		func() error { return c.Hello("mx.example.net") },
		func() error { return c.Mail("") },
		func() error { return c.Rcpt(to) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("deliver to %s: %v", to, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		t.Fatalf("deliver to %s: %v", to, err)
	}
	if _, err := w.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("deliver to %s: %v", to, err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
}

// Count is the number of messages Mailpit holds.
func (s *Server) Count(t testing.TB) int {
	t.Helper()
	resp, err := http.Get(s.API + "messages")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct{ Total int }
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	return list.Total
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
