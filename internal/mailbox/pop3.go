// Package mailbox reads the bounce mailbox: it fetches each message, hands it
// to a callback, and deletes only the messages the callback accepted, so a
// message whose outcome was not recorded stays for the next read.
//
// It speaks POP3 (RFC 1939, with CAPA from RFC 2449 and STLS from RFC 2595)
// on net/textproto: no POP3 client that is kept up is served by the Go module
// proxy, and the client side of the protocol is a handful of commands.
package mailbox

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"publisher/internal/valid"
	"strconv"
	"strings"
	"time"
)

// TLS modes for POP3Config.TLS.
const (
	TLSImplicit = "tls"      // TLS from the first byte (port 995); the default
	TLSStartTLS = "starttls" // STLS after the greeting, refusing servers without it
	TLSNone     = "none"     // plain text; loopback servers only
)

// POP3Config describes one POP3 mailbox.
type POP3Config struct {
	Host     string
	Port     int // 0: 995 for tls, 110 otherwise
	Username string
	Password string
	TLS      string
	// Timeout bounds the dial and each command's reply; 0 means 30 s.
	Timeout time.Duration
	// MaxMessageBytes: larger messages are left in the mailbox unread (no
	// report is that big); 0 means 10 MiB.
	MaxMessageBytes int64
	// Limit is the most messages one Read takes; 0 means all.
	Limit int
	// TLSConfig overrides the TLS settings (tests pass their RootCAs here).
	// ServerName defaults to Host.
	TLSConfig *tls.Config
}

// Message is one message of the mailbox.
type Message struct {
	// UID is the server's unique id for it (UIDL), stable across sessions;
	// empty when the server has no UIDL.
	UID  string
	Size int64
	// Raw is the message as stored, with LF line ends.
	Raw []byte
}

// Handler decides about one message: accept true deletes it from the
// mailbox. An error stops the read; the messages accepted before it are
// still deleted.
type Handler func(ctx context.Context, m Message) (accept bool, err error)

// Stats counts what one Read did.
type Stats struct {
	Messages int // in the mailbox when the read began
	Read     int // handed to the handler
	Deleted  int // accepted, and deleted when the session ended
	Kept     int // refused by the handler
	TooBig   int // over MaxMessageBytes, left unread
}

// POP3 reads one mailbox.
type POP3 struct {
	cfg POP3Config
}

// NewPOP3 checks cfg; it does not connect.
func NewPOP3(cfg POP3Config) (*POP3, error) {
	if cfg.Host == "" {
		return nil, errors.New("pop3: host is not set")
	}
	if cfg.Username == "" {
		return nil, errors.New("pop3: username is not set")
	}
	if cfg.TLS == "" {
		cfg.TLS = TLSImplicit
	}
	switch cfg.TLS {
	case TLSImplicit, TLSStartTLS:
	case TLSNone:
		if !valid.LoopbackHost(cfg.Host) {
			return nil, fmt.Errorf("pop3: tls %q is only allowed for a loopback host, not %q", TLSNone, cfg.Host)
		}
	default:
		return nil, fmt.Errorf("pop3: tls %q: want %q, %q or %q", cfg.TLS, TLSImplicit, TLSStartTLS, TLSNone)
	}
	if cfg.Port == 0 {
		cfg.Port = 110
		if cfg.TLS == TLSImplicit {
			cfg.Port = 995
		}
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return nil, fmt.Errorf("pop3: port %d out of range", cfg.Port)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = 10 << 20
	}
	if cfg.Limit < 0 {
		return nil, fmt.Errorf("pop3: limit %d must not be negative", cfg.Limit)
	}
	if strings.ContainsAny(cfg.Username+cfg.Password, "\r\n") {
		return nil, errors.New("pop3: username or password holds a line break")
	}
	return &POP3{cfg: cfg}, nil
}

func (p *POP3) addr() string {
	return net.JoinHostPort(strings.Trim(p.cfg.Host, "[]"), strconv.Itoa(p.cfg.Port))
}

// Read fetches the mailbox's messages (up to Limit) one at a time, hands each
// to handle, and deletes those it accepted. Deletions take effect when the
// session ends cleanly (POP3's UPDATE state): if the connection is lost
// first, nothing is deleted and the next Read sees the same messages again,
// so handle must record each outcome idempotently (by the message's own ids).
func (p *POP3) Read(ctx context.Context, handle Handler) (Stats, error) {
	var st Stats
	s, err := p.open(ctx)
	if err != nil {
		return st, err
	}
	defer s.close()
	count, err := s.stat()
	if err != nil {
		return st, err
	}
	st.Messages = count
	if count == 0 {
		return st, s.quit()
	}
	sizes, err := s.list()
	if err != nil {
		return st, err
	}
	uids := s.uidl() // optional: nil when the server has no UIDL

	var handleErr error
	for n := 1; n <= count && handleErr == nil; n++ {
		if p.cfg.Limit > 0 && st.Read >= p.cfg.Limit {
			break
		}
		size, ok := sizes[n]
		if !ok {
			continue // deleted by another session meanwhile
		}
		if size > p.cfg.MaxMessageBytes {
			st.TooBig++
			continue
		}
		if err := ctx.Err(); err != nil {
			handleErr = err
			break
		}
		raw, err := s.retr(n, p.cfg.MaxMessageBytes)
		if err != nil {
			return st, err // the connection cannot be trusted: delete nothing
		}
		st.Read++
		accept, err := handle(ctx, Message{UID: uids[n], Size: size, Raw: raw})
		if err != nil {
			handleErr = fmt.Errorf("pop3 %s: message %d (%s): %w", p.addr(), n, uids[n], err)
			break
		}
		if !accept {
			st.Kept++
			continue
		}
		if err := s.dele(n); err != nil {
			return st, err
		}
		st.Deleted++
	}
	// QUIT commits the deletions of the messages accepted so far, even when
	// the handler failed on a later one.
	if err := s.quit(); err != nil {
		st.Deleted = 0
		return st, errors.Join(handleErr, err)
	}
	return st, handleErr
}

// session is one POP3 connection.
type session struct {
	p    *POP3
	conn net.Conn
	text *textproto.Conn
	stop func() bool
}

func (p *POP3) open(ctx context.Context) (*session, error) {
	fail := func(step string, err error) error {
		return fmt.Errorf("pop3 %s: %s: %w", p.addr(), step, err)
	}
	d := net.Dialer{Timeout: p.cfg.Timeout}
	conn, err := d.DialContext(ctx, "tcp", p.addr())
	if err != nil {
		return nil, fail("connect", err)
	}
	s := &session{p: p}
	s.setConn(ctx, conn)
	if p.cfg.TLS == TLSImplicit {
		if err := s.startTLS(ctx); err != nil {
			s.close()
			return nil, fail("TLS", err)
		}
	}
	if _, err := s.reply(); err != nil {
		s.close()
		return nil, fail("greeting", err)
	}
	if p.cfg.TLS == TLSStartTLS {
		if err := s.stls(ctx); err != nil {
			s.close()
			return nil, fail("STLS", err)
		}
	}
	if _, err := s.cmd("USER %s", p.cfg.Username); err != nil {
		s.close()
		return nil, fail("USER", err)
	}
	if _, err := s.cmd("PASS %s", p.cfg.Password); err != nil {
		s.close()
		return nil, fail("PASS (login refused)", err)
	}
	return s, nil
}

// setConn makes conn the session's connection; ctx ending closes it, the only
// way to interrupt a blocked read.
func (s *session) setConn(ctx context.Context, conn net.Conn) {
	if s.stop != nil {
		s.stop()
	}
	s.conn = conn
	s.text = textproto.NewConn(conn)
	s.stop = context.AfterFunc(ctx, func() { _ = conn.Close() })
}

func (s *session) startTLS(ctx context.Context) error {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.p.cfg.TLSConfig != nil {
		cfg = s.p.cfg.TLSConfig.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = strings.Trim(s.p.cfg.Host, "[]")
	}
	tlsConn := tls.Client(s.conn, cfg)
	hctx, cancel := context.WithTimeout(ctx, s.p.cfg.Timeout)
	defer cancel()
	if err := tlsConn.HandshakeContext(hctx); err != nil {
		return err
	}
	s.setConn(ctx, tlsConn)
	return nil
}

// stls upgrades the connection, refusing a server that does not offer it:
// the password must not cross the network in clear.
func (s *session) stls(ctx context.Context) error {
	capa, err := s.capabilities()
	if err != nil {
		return fmt.Errorf("CAPA: %w", err)
	}
	if !capa["STLS"] {
		return errors.New("the server does not offer STLS")
	}
	if _, err := s.cmd("STLS"); err != nil {
		return err
	}
	return s.startTLS(ctx)
}

func (s *session) capabilities() (map[string]bool, error) {
	lines, err := s.multi("CAPA")
	if err != nil {
		return nil, err
	}
	capa := map[string]bool{}
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 0 {
			capa[strings.ToUpper(f[0])] = true
		}
	}
	return capa, nil
}

// reply reads one status line: "+OK text" gives the text, "-ERR text" an
// error carrying it.
func (s *session) reply() (string, error) {
	if err := s.conn.SetReadDeadline(time.Now().Add(s.p.cfg.Timeout)); err != nil {
		return "", err
	}
	line, err := s.text.ReadLine()
	if err != nil {
		return "", err
	}
	switch {
	case line == "+OK" || strings.HasPrefix(line, "+OK "):
		return strings.TrimPrefix(strings.TrimPrefix(line, "+OK"), " "), nil
	case strings.HasPrefix(line, "-ERR"):
		return "", fmt.Errorf("server said %q", line)
	}
	return "", fmt.Errorf("not a POP3 reply: %q", truncate(line))
}

// cmd sends one command and reads its status line.
func (s *session) cmd(format string, args ...any) (string, error) {
	if err := s.conn.SetWriteDeadline(time.Now().Add(s.p.cfg.Timeout)); err != nil {
		return "", err
	}
	if err := s.text.PrintfLine(format, args...); err != nil {
		return "", err
	}
	return s.reply()
}

// multi sends a command whose answer is a dot-terminated list of lines.
func (s *session) multi(command string) ([]string, error) {
	if _, err := s.cmd("%s", command); err != nil {
		return nil, err
	}
	return s.text.ReadDotLines()
}

func (s *session) stat() (int, error) {
	text, err := s.cmd("STAT")
	if err != nil {
		return 0, fmt.Errorf("pop3 %s: STAT: %w", s.p.addr(), err)
	}
	f := strings.Fields(text)
	if len(f) < 1 {
		return 0, fmt.Errorf("pop3 %s: STAT: reply %q", s.p.addr(), text)
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n < 0 {
		return 0, fmt.Errorf("pop3 %s: STAT: reply %q", s.p.addr(), text)
	}
	return n, nil
}

// list returns every message's size by its number.
func (s *session) list() (map[int]int64, error) {
	lines, err := s.multi("LIST")
	if err != nil {
		return nil, fmt.Errorf("pop3 %s: LIST: %w", s.p.addr(), err)
	}
	sizes := make(map[int]int64, len(lines))
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		n, err1 := strconv.Atoi(f[0])
		size, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 == nil && err2 == nil && n > 0 && size >= 0 {
			sizes[n] = size
		}
	}
	return sizes, nil
}

// uidl returns every message's unique id by its number, or nil when the
// server does not keep them.
func (s *session) uidl() map[int]string {
	lines, err := s.multi("UIDL")
	if err != nil {
		return nil
	}
	uids := make(map[int]string, len(lines))
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		if n, err := strconv.Atoi(f[0]); err == nil {
			uids[n] = f[1]
		}
	}
	return uids
}

// retr fetches message n whole, unstuffed, with LF line ends. Its size was
// checked against max from LIST; a server sending more is cut off.
func (s *session) retr(n int, max int64) ([]byte, error) {
	if _, err := s.cmd("RETR %d", n); err != nil {
		return nil, fmt.Errorf("pop3 %s: RETR %d: %w", s.p.addr(), n, err)
	}
	// LIST sizes count CRLF; the slack allows for a server that counts LF.
	limit := max + max/8 + 1024
	if err := s.conn.SetReadDeadline(time.Now().Add(s.p.cfg.Timeout)); err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(io.LimitReader(s.text.DotReader(), limit+1))
	if err != nil {
		return nil, fmt.Errorf("pop3 %s: RETR %d: %w", s.p.addr(), n, err)
	}
	if int64(len(raw)) > limit {
		return nil, fmt.Errorf("pop3 %s: RETR %d: longer than LIST said", s.p.addr(), n)
	}
	return raw, nil
}

func (s *session) dele(n int) error {
	if _, err := s.cmd("DELE %d", n); err != nil {
		return fmt.Errorf("pop3 %s: DELE %d: %w", s.p.addr(), n, err)
	}
	return nil
}

func (s *session) quit() error {
	if _, err := s.cmd("QUIT"); err != nil {
		return fmt.Errorf("pop3 %s: QUIT (deletions not confirmed): %w", s.p.addr(), err)
	}
	return nil
}

func (s *session) close() {
	if s.stop != nil {
		s.stop()
	}
	_ = s.conn.Close()
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
