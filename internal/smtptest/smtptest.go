// Package smtptest runs a real SMTP server (emersion/go-smtp) on a loopback port for
// tests, recording what it accepts and answering as the test asks: a 4xx or 5xx per
// recipient, a connection dropped in the middle of DATA or after it, a slow or silent
// server, a server stopped mid-send, a port that refuses connections.
package smtptest

import (
	"bytes"
	"errors"
	"io"
	"log"
	"net"
	"net/mail"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Message is one message the server accepted.
type Message struct {
	From string
	To   []string
	Data []byte
	// Session numbers the SMTP session (connection) it came on, from 1; At is
	// when it was accepted.
	Session int
	At      time.Time
}

// Header parses the message's header.
func (m Message) Header() mail.Header {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		return mail.Header{}
	}
	return msg.Header
}

// Options shape the server's behaviour. Every func may be nil.
type Options struct {
	// Rcpt answers RCPT TO; a non-nil *smtp.SMTPError refuses that recipient.
	Rcpt func(rcpt string) *smtp.SMTPError
	// DropInData closes the connection halfway through DATA for these recipients.
	DropInData func(rcpt string) bool
	// HangUpAfterData accepts the whole message for these recipients, records it,
	// and closes the connection instead of answering: the client cannot know that
	// the message arrived.
	HangUpAfterData func(rcpt string) bool
	// Delay is waited before each DATA is accepted (a slow server).
	Delay time.Duration
	// Discard keeps each message's envelope but not its content, for tests
	// that send tens of thousands and only count them.
	Discard bool
	// StopAfter, when positive, stops the server (see Stop) at the first
	// recipient it is given once it has accepted this many messages: a relay
	// going down in the middle of a send.
	StopAfter int
}

// Server is a running test server.
type Server struct {
	Addr string
	Port int

	opts     Options
	mu       sync.Mutex
	messages []Message
	sessions int
	open     int // connections open now
	maxOpen  int // the most open at once
	inData   int // DATA commands begun
	srv      *smtp.Server

	stopping  sync.Once
	stopBegun atomic.Bool
	stopped   chan struct{} // closed once Stop has finished
	stoppedAt int           // messages accepted when it had
}

// Start serves on a free 127.0.0.1 port until the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	return StartAt(t, "127.0.0.1:0", opts)
}

// StartAt serves on addr (a server coming back on the port a client knows).
func StartAt(t testing.TB, addr string, opts Options) *Server {
	t.Helper()
	s := &Server{opts: opts, stopped: make(chan struct{})}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		s.mu.Lock()
		s.sessions++
		id := s.sessions
		s.mu.Unlock()
		return &session{s: s, conn: c, id: id}, nil
	}))
	s.srv.Domain = "localhost"
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	s.srv.MaxRecipients = 100
	// Longer than any Delay a test asks for.
	s.srv.ReadTimeout = 2 * time.Minute
	s.srv.WriteTimeout = 2 * time.Minute
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	s.Port = ln.Addr().(*net.TCPAddr).Port
	go func() { _ = s.srv.Serve(&countingListener{Listener: ln, s: s}) }()
	t.Cleanup(func() { _ = s.srv.Close() })
	return s
}

// Stop closes the listener and drops every open connection at once, as a relay
// that crashes does; from then on the port refuses connections. What was accepted
// stays readable. StartAt on s.Addr brings a server back.
func (s *Server) Stop() {
	s.stopping.Do(func() {
		s.stopBegun.Store(true)
		_ = s.srv.Close()
		s.mu.Lock()
		s.stoppedAt = len(s.messages)
		s.mu.Unlock()
		close(s.stopped)
	})
}

// StoppedAt says whether Stop has run (waiting for it to finish when it has
// begun) and how many messages had been accepted when it had.
func (s *Server) StoppedAt() (accepted int, ok bool) {
	if !s.stopBegun.Load() {
		return 0, false
	}
	<-s.stopped
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stoppedAt, true
}

// Open is how many connections are open now, as the server sees them: a
// client's QUIT is counted once the server has closed its side.
func (s *Server) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open
}

// MaxOpen is the most connections that were open at once.
func (s *Server) MaxOpen() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxOpen
}

// countingListener counts the connections open at once.
type countingListener struct {
	net.Listener
	s *Server
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.s.mu.Lock()
	l.s.open++
	l.s.maxOpen = max(l.s.maxOpen, l.s.open)
	l.s.mu.Unlock()
	return &countedConn{Conn: c, s: l.s}, nil
}

type countedConn struct {
	net.Conn
	s    *Server
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.s.mu.Lock()
		c.s.open--
		c.s.mu.Unlock()
	})
	return c.Conn.Close()
}

// RefusedPort returns a loopback port nothing listens on: dialling it is refused.
func RefusedPort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	return port
}

// Messages returns a copy of what was accepted so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Count is how many messages were accepted.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.messages)
}

// Sessions is how many SMTP sessions were opened.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions
}

// DataStarted is how many messages have begun their DATA: with Delay, a
// message is on the wire from then until it is accepted.
func (s *Server) DataStarted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inData
}

// PerRecipient counts accepted messages by recipient address.
func (s *Server) PerRecipient() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, m := range s.messages {
		for _, r := range m.To {
			out[r]++
		}
	}
	return out
}

// SetOptions changes the behaviour for the sessions that follow.
func (s *Server) SetOptions(o Options) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts = o
}

func (s *Server) options() Options {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opts
}

type session struct {
	s    *Server
	conn *smtp.Conn
	id   int
	from string
	to   []string
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if o := ss.s.options(); o.StopAfter > 0 && ss.s.Count() >= o.StopAfter {
		// Stop waits for this very session to close: not from inside it.
		go ss.s.Stop()
	}
	if o := ss.s.options(); o.Rcpt != nil {
		if err := o.Rcpt(to); err != nil {
			return err
		}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	ss.s.mu.Lock()
	ss.s.inData++
	ss.s.mu.Unlock()
	o := ss.s.options()
	for _, rcpt := range ss.to {
		if o.DropInData != nil && o.DropInData(rcpt) {
			// Read a little, then hang up without answering.
			_, _ = io.CopyN(io.Discard, r, 64)
			_ = ss.conn.Conn().Close()
			return errors.New("dropped")
		}
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if o.Delay > 0 {
		time.Sleep(o.Delay)
	}
	if o.Discard {
		data = nil
	}
	ss.s.mu.Lock()
	ss.s.messages = append(ss.s.messages, Message{From: ss.from, To: append([]string(nil), ss.to...), Data: data, Session: ss.id, At: time.Now()})
	ss.s.mu.Unlock()
	for _, rcpt := range ss.to {
		if o.HangUpAfterData != nil && o.HangUpAfterData(rcpt) {
			_ = ss.conn.Conn().Close()
			return errors.New("hung up")
		}
	}
	return nil
}

func (ss *session) Reset() {
	ss.from = ""
	ss.to = nil
}

func (ss *session) Logout() error { return nil }

// Silent accepts connections on a free 127.0.0.1 port and never says a word: a
// server that has stopped answering. It returns the address; the listener closes
// when the test ends or when stop is called.
func Silent(t testing.TB) (addr string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = ln.Close()
			mu.Lock()
			defer mu.Unlock()
			for _, c := range conns {
				_ = c.Close()
			}
		})
	}
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}
