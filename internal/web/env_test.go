package web

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	netmail "net/mail"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"publisher/internal/mail"
	"publisher/internal/store"
	"publisher/internal/token"
	"publisher/templates"
)

// smtpSink is a real SMTP server (go-smtp) on a loopback port that keeps
// every message it accepts.
type smtpSink struct {
	port int
	mu   sync.Mutex
	msgs [][]byte
	got  chan struct{}
}

func startSMTP(t *testing.T) *smtpSink {
	t.Helper()
	sink := &smtpSink{got: make(chan struct{}, 100)}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &sinkSession{sink: sink}, nil
	}))
	srv.Domain = "localhost"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sink.port = ln.Addr().(*net.TCPAddr).Port
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return sink
}

func (s *smtpSink) messages() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.msgs...)
}

// waitMessage waits for the n-th message (1-based) to arrive.
func (s *smtpSink) waitMessage(t *testing.T, n int) []byte {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		if msgs := s.messages(); len(msgs) >= n {
			return msgs[n-1]
		}
		select {
		case <-s.got:
		case <-deadline:
			t.Fatalf("message %d never arrived at the SMTP server", n)
		}
	}
}

type sinkSession struct {
	sink *smtpSink
}

func (s *sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *sinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.sink.mu.Lock()
	s.sink.msgs = append(s.sink.msgs, b)
	s.sink.mu.Unlock()
	s.sink.got <- struct{}{}
	return nil
}
func (s *sinkSession) Reset()        {}
func (s *sinkSession) Logout() error { return nil }

// env is one daemon HTTP side over real parts: an httptest server, a SQLite
// store in a temp dir, the real SMTP transport to an in-process SMTP server.
type env struct {
	t      *testing.T
	srv    *Server
	ts     *httptest.Server
	st     *store.DB
	smtp   *smtpSink
	signer *token.Signer
	out    string
	base   string
	client *http.Client
}

const testSecret = "test secret, not the sample one"

func newEnv(t *testing.T, modify func(*Options)) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "publisher.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	signer, err := token.New(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	sink := startSMTP(t)
	transport, err := mail.NewSMTPTransport(mail.SMTPConfig{Host: "127.0.0.1", Port: sink.port, TLS: mail.TLSNone, HELO: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "public")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(nil)
	base := "http://" + ts.Listener.Addr().String() + "/"
	opts := Options{
		OutputDir:      out,
		BaseURL:        base,
		SiteTitle:      "Desk Notes",
		Templates:      templates.Embedded(),
		Store:          st,
		Signer:         signer,
		ConfirmTTL:     48 * time.Hour,
		RateLimit:      100,
		Mailer:         TransportMailer{Transport: transport},
		From:           mail.Address{Name: "Desk Notes", Email: "digest@desk.example.org"},
		ListID:         "Desk Notes <notes.desk.example.org>",
		Topics:         func() []string { return []string{"Economy", "Energy", "Belarus"} },
		DefaultCadence: "daily",
	}
	if modify != nil {
		modify(&opts)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv.Handler()
	ts.Start()
	t.Cleanup(ts.Close)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = srv.Close(ctx)
	})
	client := &http.Client{
		Transport: &http.Transport{DisableCompression: true},
		// Every redirect is something a test wants to see, not follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &env{t: t, srv: srv, ts: ts, st: st, smtp: sink, signer: signer, out: out, base: base, client: client}
}

// writeOut puts a file into the served output folder.
func (e *env) writeOut(rel, body string) string {
	e.t.Helper()
	p := filepath.Join(e.out, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return p
}

type response struct {
	status int
	header http.Header
	body   string
}

func (e *env) do(req *http.Request) response {
	e.t.Helper()
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func (e *env) get(path string, header map[string]string) response {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.ts.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return e.do(req)
}

// postForm posts a form the way a browser on our own page does, unless header
// says otherwise.
func (e *env) postForm(path string, form url.Values, header map[string]string) response {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.ts.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Origin", strings.TrimSuffix(e.base, "/"))
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	return e.do(req)
}

// addSubscriber puts an address straight into the store with a status.
func (e *env) addSubscriber(email, status string) store.Subscriber {
	e.t.Helper()
	ctx := context.Background()
	sub, err := e.st.AddSubscriber(ctx, store.SubscriberInput{Email: email, Name: "Reader", Cadence: "daily", Source: store.SourceCLI, Status: store.StatusActive}, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	if status != store.StatusActive {
		if err := e.st.SetStatus(ctx, sub.ID, status, store.Change{By: store.ByCLI, Reason: "test"}, time.Now()); err != nil {
			e.t.Fatal(err)
		}
	}
	return e.subscriber(email)
}

func (e *env) subscriber(email string) store.Subscriber {
	e.t.Helper()
	e.srv.signups.wait() // sign-ups are recorded after the answer
	sub, err := e.st.SubscriberByEmail(context.Background(), email)
	if err != nil {
		e.t.Fatalf("subscriber %s: %v", email, err)
	}
	return sub
}

// mailParts parses a received message and returns its headers and its text
// and HTML parts, decoded.
func mailParts(t *testing.T, raw []byte) (netmail.Header, string, string) {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var text, html string
	var walk func(ctype string, enc string, r io.Reader)
	walk = func(ctype, enc string, r io.Reader) {
		mt, params, err := mime.ParseMediaType(ctype)
		if err != nil {
			t.Fatalf("content type %q: %v", ctype, err)
		}
		if strings.HasPrefix(mt, "multipart/") {
			mr := multipart.NewReader(r, params["boundary"])
			for {
				p, err := mr.NextRawPart()
				if errors.Is(err, io.EOF) {
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				walk(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p)
			}
		}
		switch strings.ToLower(enc) {
		case "quoted-printable":
			r = quotedprintable.NewReader(r)
		case "base64":
			r = base64.NewDecoder(base64.StdEncoding, r)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		switch mt {
		case "text/plain":
			text = string(b)
		case "text/html":
			html = string(b)
		}
	}
	walk(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
	return msg.Header, text, html
}

var confirmLink = regexp.MustCompile(`https?://[^\s"<>]+/confirm\?token=[A-Za-z0-9._\-]+`)
