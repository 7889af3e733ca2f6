// Package smtptest runs a real SMTP server (emersion/go-smtp) on a loopback port for
// tests, recording what it accepts and answering as the test asks: a 4xx or 5xx per
// recipient, a connection dropped in the middle of DATA, a slow or silent server.
package smtptest

import (
	"bytes"
	"errors"
	"io"
	"log"
	"net"
	"net/mail"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Message is one message the server accepted.
type Message struct {
	From string
	To   []string
	Data []byte
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
	// Delay is waited before each DATA is accepted (a slow server).
	Delay time.Duration
}

// Server is a running test server.
type Server struct {
	Addr string
	Port int

	opts     Options
	mu       sync.Mutex
	messages []Message
	sessions int
	inData   int // DATA commands begun
	srv      *smtp.Server
}

// Start serves on a free 127.0.0.1 port until the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	return StartAt(t, "127.0.0.1:0", opts)
}

// StartAt serves on addr (a server coming back on the port a client knows).
func StartAt(t testing.TB, addr string, opts Options) *Server {
	t.Helper()
	s := &Server{opts: opts}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		s.mu.Lock()
		s.sessions++
		s.mu.Unlock()
		return &session{s: s, conn: c}, nil
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
	go func() { _ = s.srv.Serve(ln) }()
	t.Cleanup(func() { _ = s.srv.Close() })
	return s
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
	from string
	to   []string
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
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
	ss.s.mu.Lock()
	ss.s.messages = append(ss.s.messages, Message{From: ss.from, To: append([]string(nil), ss.to...), Data: data})
	ss.s.mu.Unlock()
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
