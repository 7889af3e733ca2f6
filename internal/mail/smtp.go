package mail

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"

	"publisher/internal/valid"
)

// TLS policies for SMTPConfig.TLS.
const (
	TLSStartTLS = "starttls" // STARTTLS, refusing servers that do not offer it
	TLSImplicit = "tls"      // TLS from the first byte (port 465)
	TLSNone     = "none"     // plain text; loopback servers only
)

// SMTPConfig describes one SMTP server.
type SMTPConfig struct {
	Host     string
	Port     int // 0: 587 for starttls, 465 for tls, 25 for none
	Username string
	Password string
	TLS      string // TLSStartTLS (default), TLSImplicit or TLSNone
	HELO     string // name to greet with; empty: the machine's host name
	// ConnectTimeout bounds dialling; SendTimeout bounds the greeting,
	// STARTTLS and AUTH, and then each message on its own.
	ConnectTimeout time.Duration
	SendTimeout    time.Duration
	DKIM           *DKIM
	// TLSConfig overrides the TLS settings (tests pass their RootCAs here).
	// ServerName defaults to Host.
	TLSConfig *tls.Config
}

// ErrUnknownOutcome marks a send that failed after the whole message was written
// and before the server's reply to it was read (a dropped connection, a timeout):
// the server may have accepted it, so sending it again, anywhere, may deliver it
// twice. The error is Temporary all the same: a delivery is never given up on a
// guess.
var ErrUnknownOutcome = errors.New("the server's reply to the message was lost")

// SMTPTransport hands out Senders that each keep one connection open.
type SMTPTransport struct {
	cfg SMTPConfig
}

// NewSMTPTransport checks cfg; it does not connect.
func NewSMTPTransport(cfg SMTPConfig) (*SMTPTransport, error) {
	if cfg.Host == "" {
		return nil, errors.New("smtp: host is not set")
	}
	if cfg.TLS == "" {
		cfg.TLS = TLSStartTLS
	}
	switch cfg.TLS {
	case TLSStartTLS, TLSImplicit:
	case TLSNone:
		if !valid.LoopbackHost(cfg.Host) {
			return nil, fmt.Errorf("smtp: tls %q is only allowed for a loopback host, not %q", TLSNone, cfg.Host)
		}
	default:
		return nil, fmt.Errorf("smtp: tls %q: want %q, %q or %q", cfg.TLS, TLSStartTLS, TLSImplicit, TLSNone)
	}
	if cfg.Port == 0 {
		cfg.Port = map[string]int{TLSStartTLS: 587, TLSImplicit: 465, TLSNone: 25}[cfg.TLS]
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return nil, fmt.Errorf("smtp: port %d out of range", cfg.Port)
	}
	if cfg.Password != "" && cfg.Username == "" {
		return nil, errors.New("smtp: password given without a username")
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 15 * time.Second
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = 60 * time.Second
	}
	if err := headerSafe(cfg.HELO); err != nil || strings.ContainsAny(cfg.HELO, " ") {
		return nil, fmt.Errorf("smtp: helo %q is not a host name", cfg.HELO)
	}
	if cfg.DKIM != nil {
		if err := cfg.DKIM.check(); err != nil {
			return nil, fmt.Errorf("smtp: dkim: %w", err)
		}
	}
	return &SMTPTransport{cfg: cfg}, nil
}

// NewSender connects to the server. Each Sender owns its go-mail client:
// the client's AUTH selection mutates it, so it must not be shared.
func (t *SMTPTransport) NewSender(ctx context.Context) (Sender, error) {
	s := &smtpSender{t: t, encoder: newBodyEncoder()}
	client, err := t.newClient(s.dialConn)
	if err != nil {
		return nil, err
	}
	s.client = client
	if err := s.dial(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (t *SMTPTransport) tlsConfig() *tls.Config {
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.cfg.TLSConfig != nil {
		tlsConfig = t.cfg.TLSConfig.Clone()
	}
	if tlsConfig.ServerName == "" {
		tlsConfig.ServerName = strings.Trim(t.cfg.Host, "[]")
	}
	return tlsConfig
}

func (t *SMTPTransport) newClient(dial gomail.DialContextFunc) (*gomail.Client, error) {
	cfg := t.cfg
	tlsConfig := t.tlsConfig()
	opts := []gomail.Option{
		// Our own dial function keeps hold of the net.Conn: closing it is
		// the only way to interrupt go-mail's smtp.Client, whose Close
		// waits for the lock a blocked read holds.
		gomail.WithDialContextFunc(dial),
		gomail.WithPort(cfg.Port),
		// go-mail uses one timeout for the dial and for every later
		// exchange; the dial is further bounded by ConnectTimeout below.
		gomail.WithTimeout(cfg.SendTimeout),
		gomail.WithTLSConfig(tlsConfig),
		// The next MAIL FROM shows whether the connection is alive; a NOOP
		// before every message would cost a round trip each.
		gomail.WithoutNoop(),
	}
	switch cfg.TLS {
	case TLSStartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case TLSImplicit, TLSNone:
		// Implicit TLS is done by dialConn; go-mail must not add STARTTLS.
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if cfg.HELO != "" {
		opts = append(opts, gomail.WithHELO(cfg.HELO))
	}
	if cfg.Username != "" {
		opts = append(opts, gomail.WithUsername(cfg.Username), gomail.WithPassword(cfg.Password))
		if cfg.TLS != TLSStartTLS {
			// go-mail cannot see that a connection from a custom dial
			// function is TLS, so name the mechanisms: this is either
			// implicit TLS or a loopback host (checked in NewSMTPTransport),
			// where the password never leaves the machine.
			opts = append(opts, gomail.WithOpportunisticSMTPAuth(
				gomail.SMTPAuthSCRAMSHA256, gomail.SMTPAuthSCRAMSHA1, gomail.SMTPAuthCramMD5,
				gomail.SMTPAuthPlainNoEnc, gomail.SMTPAuthLoginNoEnc))
		} else {
			// Over TLS: the strongest mechanism the server offers, PLAIN
			// and LOGIN included.
			opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover))
		}
	}
	client, err := gomail.NewClient(cfg.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("smtp %s:%d: %w", cfg.Host, cfg.Port, err)
	}
	return client, nil
}

type smtpSender struct {
	t       *SMTPTransport
	client  *gomail.Client
	conn    *smtp.Client // nil until dialled and after a failure
	netConn net.Conn     // the connection under conn
	// rendered and data are reused from message to message: the rendered
	// message, and the same dot-stuffed for DATA.
	rendered bytes.Buffer
	data     []byte
	encoder  *bodyEncoder
}

// dialConn opens the TCP connection, with the TLS handshake for implicit
// TLS, and remembers it.
func (s *smtpSender) dialConn(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if s.t.cfg.TLS == TLSImplicit {
		tlsConn := tls.Client(conn, s.t.tlsConfig())
		if err := tlsConn.HandshakeContext(ctx); err != nil {
			_ = conn.Close()
			return nil, err
		}
		conn = tlsConn // smtp.Client recognises *tls.Conn as encrypted
	}
	s.netConn = conn
	return conn, nil
}

func (s *smtpSender) dial(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.t.cfg.ConnectTimeout)
	defer cancel()
	conn, err := s.client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		if s.netConn != nil {
			_ = s.netConn.Close()
			s.netConn = nil
		}
		// Temporary whatever the server said (a 535 to AUTH, say): it is
		// not about any recipient, and must never count as a bounce.
		e := &Error{Stage: StageDial, Class: Temporary, Code: Code(err), Enhanced: enhancedCode(err),
			Err: fmt.Errorf("smtp %s:%d: %w", s.t.cfg.Host, s.t.cfg.Port, err)}
		e.Cause = errorCause(e) // a 5xx here (AUTH refused, say) is the sender's problem
		return e
	}
	s.conn = conn
	return nil
}

// drop abandons the connection without QUIT: after a failure mid-command
// the server's state is unknown, and the next Send dials afresh.
func (s *smtpSender) drop() {
	if s.netConn != nil {
		_ = s.netConn.Close()
	}
	s.conn, s.netConn = nil, nil
}

// Send delivers m. It drives the SMTP transaction itself on the connection
// go-mail dialled, rather than through Client.SendWithSMTPClient, because it
// must write the exact bytes Render signed (go-mail's own DKIM output does
// not verify, see refoldSignature) and needs to know at which command a
// failure happened. A connection found dead at MAIL FROM, before anything
// was accepted (the server closed an idle connection), is redialled once at
// once; after any other failure the next Send redials if needed.
func (s *smtpSender) Send(ctx context.Context, m *Message) error {
	fail := func(stage Stage, err error) error {
		e := &Error{Recipient: m.To.Email, MessageID: m.MessageID, Stage: stage,
			Class: classify(err), Code: Code(err), Enhanced: enhancedCode(err), Err: err}
		var dialErr *Error
		if errors.As(err, &dialErr) {
			e.Class, e.Code, e.Enhanced, e.Err = dialErr.Class, dialErr.Code, dialErr.Enhanced, dialErr.Err
		}
		e.Cause = errorCause(e)
		return e
	}
	// Both buffers live as long as the sender: a message's bytes are built
	// and stuffed once, not allocated afresh for every message.
	s.rendered.Reset()
	raw, err := renderInto(&s.rendered, s.encoder, m, s.t.cfg.DKIM)
	if err != nil {
		return fail(StageBuild, err)
	}
	s.data = appendDotStuffed(s.data[:0], raw)
	from, to, err := m.envelope()
	if err != nil {
		return fail(StageBuild, err)
	}
	for attempt := 0; ; attempt++ {
		if err := sendable(ctx); err != nil {
			return fail(StageDial, err)
		}
		if s.conn == nil {
			if err := s.dial(ctx); err != nil {
				return fail(StageDial, err)
			}
		}
		stage, err := s.transaction(ctx, from, to, s.data)
		if err == nil {
			return nil
		}
		var sent *afterContent
		if ctx.Err() != nil && !errors.As(err, &sent) {
			// Stopped before the content went out: the server accepted nothing.
			s.drop()
			return fail(stage, fmt.Errorf("%w: %w (%w)", ErrNotSent, ctx.Err(), err))
		}
		if errors.Is(err, ErrNotSent) {
			return fail(stage, err)
		}
		code := Code(err)
		if stage == StageMail && attempt == 0 && (code == 0 || code == 421) {
			// Nothing was accepted yet, so a fresh connection is safe to try.
			s.drop()
			continue
		}
		return fail(stage, fmt.Errorf("smtp %s:%d: %w", s.t.cfg.Host, s.t.cfg.Port, err))
	}
}

// transaction runs MAIL, RCPT, DATA for one message; data is the message
// already dot-stuffed and terminated (see appendDotStuffed). It leaves
// s.conn ready for the next message, or nil when the connection cannot be
// trusted.
//
// The dialogue is written on the client's textproto.Conn directly, not
// through smtp.Client.Mail/Rcpt/Data: when the server offers PIPELINING
// (RFC 2920) the three commands go out in one write, and the message goes
// out in one write instead of 4 KB pieces stuffed byte by byte.
func (s *smtpSender) transaction(ctx context.Context, from, to string, data []byte) (Stage, error) {
	conn, netConn := s.conn, s.netConn
	// smtp.Client takes no context: closing the connection is the only way
	// to interrupt it. Only until the content is written: after that the
	// server's answer is awaited, bounded by the connection's deadline.
	stop := context.AfterFunc(ctx, func() { _ = netConn.Close() })
	defer stop()
	if err := conn.UpdateDeadline(s.t.cfg.SendTimeout); err != nil {
		s.drop()
		return StageMail, err
	}
	// afterReply decides what a failed command leaves behind: a reply
	// other than 421 means the server is still in step, and RSET starts the
	// next transaction cleanly; anything else loses the connection.
	afterReply := func(err error, reset bool) {
		if !inStep(err) {
			s.drop()
			return
		}
		if reset {
			if rerr := conn.Reset(); rerr != nil {
				s.drop()
			}
		}
	}
	text := conn.Text
	// Paths go in angle brackets: lenient servers take a bare address; Mailpit
	// and others refuse it. The parameters are those go-mail's Client.Mail adds.
	mailCmd := "MAIL FROM:<" + from + ">" + mailParams(conn)
	rcptCmd := "RCPT TO:<" + to + ">"
	if strings.ContainsAny(mailCmd+rcptCmd, "\r\n") {
		// Validate refuses these already; never let one split a command.
		return StageBuild, fmt.Errorf("%w: an address holds CR or LF", ErrInvalidMessage)
	}
	var errMail, errRcpt, errData error
	if pipelining, _ := conn.Extension("PIPELINING"); pipelining {
		if err := writeFlush(text, mailCmd+"\r\n"+rcptCmd+"\r\nDATA\r\n"); err != nil {
			s.drop()
			return StageMail, fmt.Errorf("MAIL FROM:<%s>: %w", from, err)
		}
		// The replies come in order. Read all three while the server stays in
		// step, so the connection is clean for RSET or the next message.
		_, _, errMail = text.ReadResponse(250)
		if inStep(errMail) {
			_, _, errRcpt = text.ReadResponse(25)
			if inStep(errRcpt) {
				_, _, errData = text.ReadResponse(354)
			}
		}
		if (errMail != nil || errRcpt != nil) && errData == nil && inStep(errRcpt) && inStep(errMail) {
			// A server that answers 354 although no recipient was accepted gets an
			// empty message (RFC 2920, 3.1); its reply does not matter, only that
			// the connection stays in step.
			if err := writeFlush(text, ".\r\n"); err != nil {
				s.drop()
			} else if _, _, err := text.ReadResponse(250); !inStep(err) {
				s.drop()
			}
		}
	} else {
		if errMail = command(text, mailCmd, 250); errMail == nil {
			if errRcpt = command(text, rcptCmd, 25); errRcpt == nil {
				errData = command(text, "DATA", 354)
			}
		}
	}
	switch {
	case errMail != nil:
		if s.conn != nil {
			afterReply(firstLost(errMail, errRcpt, errData), true)
		}
		return StageMail, fmt.Errorf("MAIL FROM:<%s>: %w", from, errMail)
	case errRcpt != nil:
		if s.conn != nil {
			afterReply(firstLost(errRcpt, errData), true)
		}
		return StageRcpt, fmt.Errorf("RCPT TO:<%s>: %w", to, errRcpt)
	case errData != nil:
		afterReply(errData, true)
		return StageData, fmt.Errorf("DATA: %w", errData)
	}
	// The last moment to stop: once the content is written the server may
	// accept it. A context that ended, or whose deadline passed (a lease
	// whose time is up), stops here; the connection is dropped mid-DATA, so
	// the server discards the transaction.
	if err := sendable(ctx); err != nil {
		s.drop()
		return StageData, err
	}
	if !stop() {
		// The context ended just now and the connection is being closed.
		s.drop()
		return StageData, fmt.Errorf("%w: %w", ErrNotSent, context.Cause(ctx))
	}
	// After the flush above the buffer is empty, so bufio hands data to
	// the connection in one write.
	if _, err := text.W.Write(data); err != nil {
		s.drop()
		return StageData, &afterContent{fmt.Errorf("DATA: %w", err)}
	}
	if err := text.W.Flush(); err != nil {
		s.drop()
		return StageData, &afterContent{fmt.Errorf("DATA: %w", err)}
	}
	if _, _, err := text.ReadResponse(250); err != nil {
		// The final reply ends the transaction either way; no RSET needed.
		afterReply(err, false)
		if Code(err) == 0 {
			// No reply: the server may have taken the message all the same.
			err = fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
		}
		return StageData, &afterContent{fmt.Errorf("end of DATA: %w", err)}
	}
	return StageData, nil
}

// afterContent marks a failure after the message's content was written: the
// server may have accepted it, so it is never reported as ErrNotSent.
type afterContent struct{ err error }

func (e *afterContent) Error() string { return e.err.Error() }
func (e *afterContent) Unwrap() error { return e.err }

// inStep reports whether the server is still in step after err: it sent a
// reply, and not 421 (closing the connection).
func inStep(err error) bool {
	if err == nil {
		return true
	}
	code := Code(err)
	return code != 0 && code != 421
}

// firstLost returns the first of errs after which the connection is lost, or
// errs[0] when the server stayed in step throughout.
func firstLost(errs ...error) error {
	for _, err := range errs {
		if !inStep(err) {
			return err
		}
	}
	return errs[0]
}

// mailParams are the MAIL FROM parameters go-mail's Client.Mail adds for
// what the server offers.
func mailParams(conn *smtp.Client) string {
	var p string
	if ok, _ := conn.Extension("8BITMIME"); ok {
		p += " BODY=8BITMIME"
	}
	if ok, _ := conn.Extension("SMTPUTF8"); ok {
		p += " SMTPUTF8"
	}
	return p
}

// writeFlush writes lines (each ending in CRLF) in one write.
func writeFlush(text *textproto.Conn, lines string) error {
	if _, err := text.W.WriteString(lines); err != nil {
		return err
	}
	return text.W.Flush()
}

// command sends one command and reads its reply, for servers without
// PIPELINING.
func command(text *textproto.Conn, line string, expect int) error {
	if err := writeFlush(text, line+"\r\n"); err != nil {
		return err
	}
	_, _, err := text.ReadResponse(expect)
	return err
}

// appendDotStuffed appends raw to dst as the content of DATA (RFC 5321,
// 4.5.2): a "." that starts a line doubled, then the terminating
// CRLF "." CRLF. For a message whose every CR and LF pair up as CRLF (what
// go-mail renders) that is a bulk copy; anything else goes through
// textproto's DotWriter, which also mends bare line ends.
func appendDotStuffed(dst, raw []byte) []byte {
	start := len(dst)
	// Equal counts, and a CR before every LF, mean every CR and LF pair up. One
	// pass over the LFs checks that and finds the lines starting with ".".
	crlfOnly := bytes.Count(raw, []byte("\r")) == bytes.Count(raw, []byte("\n"))
	if crlfOnly && len(raw) > 0 && raw[0] == '.' {
		dst = append(dst, '.')
	}
	copied := 0 // raw[:copied] is in dst
	for from := 0; crlfOnly; {
		i := bytes.IndexByte(raw[from:], '\n')
		if i < 0 {
			break
		}
		i += from
		if i == 0 || raw[i-1] != '\r' {
			crlfOnly = false
			break
		}
		if i+1 < len(raw) && raw[i+1] == '.' {
			dst = append(dst, raw[copied:i+1]...)
			dst = append(dst, '.')
			copied = i + 1
		}
		from = i + 1
	}
	if !crlfOnly {
		var b bytes.Buffer
		bw := bufio.NewWriter(&b)
		w := textproto.NewWriter(bw).DotWriter()
		// Writes to a bytes.Buffer cannot fail.
		_, _ = w.Write(raw)
		_ = w.Close()
		_ = bw.Flush()
		return append(dst[:start], b.Bytes()...)
	}
	dst = append(dst, raw[copied:]...)
	if !bytes.HasSuffix(raw, []byte("\r\n")) {
		dst = append(dst, "\r\n"...)
	}
	return append(dst, ".\r\n"...)
}

// enhancedCode finds the RFC 3463 status code in the server reply err
// carries (see EnhancedCode).
func enhancedCode(err error) string {
	return EnhancedCode(replyText(err))
}

// Close says QUIT when the connection is still up.
func (s *smtpSender) Close() error {
	if s.conn == nil {
		return nil
	}
	conn, netConn := s.conn, s.netConn
	s.conn, s.netConn = nil, nil
	_ = conn.UpdateDeadline(s.t.cfg.SendTimeout)
	if err := s.client.CloseWithSMTPClient(conn); err != nil {
		_ = netConn.Close()
		return fmt.Errorf("smtp %s:%d: quit: %w", s.t.cfg.Host, s.t.cfg.Port, err)
	}
	return nil
}
