package mail

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
)

func TestAppendDotStuffedMatchesTextprotoDotWriter(t *testing.T) {
	inputs := []string{
		"",
		".",
		"..\r\n",
		".leading dot\r\nplain\r\n",
		"a\r\n.\r\nb\r\n",
		"a\r\n..b\r\n.\r\n",
		"no line end",
		"ends mid line\r\n.",
		"bare LF\n.dot\nend",
		"bare CR\r.dot\r\n",
		"double CR\r\r\n.x\r\n",
		"\r\n\r\n.\r\n\r\n",
		"LF then CR\n\r.x\r\n", // as many CRs as LFs, not paired
		".\n\r.\r\n\n\r",
		"\n.",
	}
	for _, in := range inputs {
		checkDotStuffed(t, in)
	}
}

func checkDotStuffed(t *testing.T, in string) {
	t.Helper()
	var want bytes.Buffer
	bw := bufio.NewWriter(&want)
	w := textproto.NewWriter(bw).DotWriter()
	if _, err := w.Write([]byte(in)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	got := appendDotStuffed([]byte("kept"), []byte(in))
	if !bytes.Equal(got, append([]byte("kept"), want.Bytes()...)) {
		t.Errorf("%q: got %q, want %q", in, got, want.Bytes())
	}
}

func FuzzAppendDotStuffed(f *testing.F) {
	for _, seed := range []string{"a\r\n.b\r\n", "\n\r.", ".\r\n..\r\n", "x\r"} {
		f.Add(seed)
	}
	f.Fuzz(checkDotStuffed)
}

func TestSMTPLinesStartingWithDotArriveIntact(t *testing.T) {
	ts := startServer(t, serverOptions{})
	s := newSender(t, plainTransport(t, ts, nil))
	m := sampleMessage(3)
	m.Text = ".hidden line\n.\n..two dots\nmiddle\n.\nlast line .\n"
	m.HTML = "<p>one</p>\n.<p>two</p>\n.\n"
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	// The sender keeps the bytes it rendered for the message it just sent.
	sent := s.(*smtpSender).rendered.Bytes()
	if !bytes.Contains(sent, []byte("\r\n.")) {
		t.Fatalf("the rendered message has no line starting with a dot; the test proves nothing:\n%s", sent)
	}
	msgs := ts.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages received", len(msgs))
	}
	if !bytes.Equal(msgs[0].Data, sent) {
		t.Errorf("received message differs from the one sent:\n got %q\nwant %q", msgs[0].Data, sent)
	}
}

// scriptServer is a minimal SMTP server on loopback with the behaviour go-smtp
// will not show: no PIPELINING, or a 354 to DATA after every recipient was
// refused. It accepts one connection and records every command and message.
type scriptServer struct {
	port       int
	pipelining bool
	refuse     map[string]string // RCPT or MAIL argument -> reply
	dataReply  map[string]string // RCPT argument -> final reply to its message
	dataAnyway bool              // 354 to DATA even with no recipient

	mu       sync.Mutex
	commands []string
	messages []string
	done     chan struct{}
}

func startScriptServer(t *testing.T, s *scriptServer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.port = ln.Addr().(*net.TCPAddr).Port
	s.done = make(chan struct{})
	t.Cleanup(func() { _ = ln.Close(); <-s.done })
	go func() {
		defer close(s.done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		s.serve(textproto.NewConn(c))
	}()
}

func (s *scriptServer) serve(tc *textproto.Conn) {
	reply := func(line string) { _ = tc.PrintfLine("%s", line) }
	reply("220 script ready")
	rcpts, mailOK, lastRcpt := 0, false, ""
	for {
		line, err := tc.ReadLine()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.commands = append(s.commands, line)
		s.mu.Unlock()
		verb, arg, _ := strings.Cut(line, ":")
		verb = strings.ToUpper(strings.Fields(verb + " ")[0])
		switch {
		case verb == "EHLO":
			if s.pipelining {
				reply("250-script")
				reply("250 PIPELINING")
			} else {
				reply("250 script")
			}
		case verb == "RCPT" && !mailOK:
			reply("503 5.5.1 need MAIL first")
		case verb == "MAIL" || verb == "RCPT":
			if r, ok := s.refuse[strings.Fields(arg)[0]]; ok {
				reply(r)
				continue
			}
			if verb == "RCPT" {
				rcpts++
				lastRcpt = strings.Fields(arg)[0]
			} else {
				mailOK = true
			}
			reply("250 ok")
		case verb == "DATA":
			if rcpts == 0 && !s.dataAnyway {
				reply("554 5.5.1 no valid recipients")
				continue
			}
			reply("354 go on")
			body, err := tc.ReadDotBytes()
			if err != nil {
				return
			}
			s.mu.Lock()
			if rcpts > 0 {
				s.messages = append(s.messages, string(body))
			}
			s.mu.Unlock()
			rcpts, mailOK = 0, false
			if r, ok := s.dataReply[lastRcpt]; ok {
				reply(r)
			} else if len(body) == 0 {
				reply("554 5.6.0 empty message")
			} else {
				reply("250 queued")
			}
		case verb == "RSET":
			rcpts, mailOK = 0, false
			reply("250 reset")
		case verb == "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 unknown command")
		}
	}
}

func (s *scriptServer) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.commands...)
}

func (s *scriptServer) Messages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.messages...)
}

func scriptTransport(t *testing.T, port int) *SMTPTransport {
	t.Helper()
	return plainTransport(t, &testServer{Port: port}, nil)
}

func TestSMTPRefusalsKeepTheConnectionInStep(t *testing.T) {
	for _, c := range []struct {
		name       string
		pipelining bool
		dataAnyway bool
	}{
		{"without PIPELINING", false, false},
		{"with PIPELINING", true, false},
		{"with PIPELINING, 354 after a refused recipient", true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ss := &scriptServer{pipelining: c.pipelining, dataAnyway: c.dataAnyway, refuse: map[string]string{
				"<gone@example.net>": "550 5.1.1 no such user",
				"<busy@example.net>": "451 4.3.0 try later",
			}}
			startScriptServer(t, ss)
			s := newSender(t, scriptTransport(t, ss.port))
			ctx := context.Background()
			send := func(to string) error {
				m := sampleMessage(1)
				m.To.Email = to
				m.Text = ".dot line\nrest\n"
				return s.Send(ctx, m)
			}
			for _, refused := range []struct {
				to    string
				class Class
				code  int
				cause Cause
			}{{"gone@example.net", Permanent, 550, CauseHardBounce}, {"busy@example.net", Temporary, 451, CauseTemporary}} {
				err := send(refused.to)
				var e *Error
				if !errors.As(err, &e) || e.Stage != StageRcpt || e.Class != refused.class || e.Code != refused.code {
					t.Fatalf("%s: %v, want a %v RCPT error %d", refused.to, err, refused.class, refused.code)
				}
				if CauseOf(err) != refused.cause {
					t.Errorf("%s: cause %v, want %v", refused.to, CauseOf(err), refused.cause)
				}
				if err := send("ok@example.net"); err != nil {
					t.Fatalf("good message after refusing %s: %v", refused.to, err)
				}
			}
			if err := s.Close(); err != nil {
				t.Errorf("quit: %v", err)
			}
			<-ss.done
			if got := len(ss.Messages()); got != 2 {
				t.Errorf("server stored %d messages, want 2", got)
			}
			for _, msg := range ss.Messages() {
				if !strings.Contains(msg, "\n.dot line") && !strings.Contains(msg, "\n=2Edot line") {
					t.Errorf("message lost its dot line:\n%s", msg)
				}
			}
			// Every refused transaction ends with RSET before the next MAIL.
			cmds := strings.Join(ss.Commands(), "|")
			for _, to := range []string{"gone", "busy"} {
				if !strings.Contains(cmds, "RCPT TO:<"+to+"@example.net>|DATA|RSET|MAIL") &&
					!strings.Contains(cmds, "RCPT TO:<"+to+"@example.net>|RSET|MAIL") {
					t.Errorf("no RSET after refusing %s: %s", to, cmds)
				}
			}
			if pipelined := strings.Contains(cmds, "RCPT TO:<gone@example.net>|DATA"); pipelined != c.pipelining {
				t.Errorf("DATA sent after a refused RCPT: %v, want %v (%s)", pipelined, c.pipelining, cmds)
			}
		})
	}
}

func TestSMTPPipelinedRefusedSenderIsAMailStageError(t *testing.T) {
	ss := &scriptServer{pipelining: true, refuse: map[string]string{"<desk@example.org>": "553 5.7.1 sender not allowed"}}
	startScriptServer(t, ss)
	s := newSender(t, scriptTransport(t, ss.port))
	err := s.Send(context.Background(), sampleMessage(1))
	var e *Error
	if !errors.As(err, &e) || e.Stage != StageMail || e.Code != 553 || e.Class != Permanent || CauseOf(err) != CauseSender {
		t.Fatalf("%v: want a permanent MAIL error 553 that is not the recipient's", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("quit after a refused sender: %v", err)
	}
	<-ss.done
	if cmds := strings.Join(ss.Commands(), "|"); !strings.HasSuffix(cmds, "DATA|RSET|QUIT") {
		t.Errorf("commands %s: want the pipelined group, RSET, QUIT", cmds)
	}
}
