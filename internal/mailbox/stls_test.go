package mailbox

import (
	"context"
	"crypto/tls"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"
)

// stlsServer is a minimal POP3 server with STLS, which Mailpit lacks: it
// records each command with whether it came over TLS.
type stlsServer struct {
	port     int
	mu       sync.Mutex
	commands []string
}

func startSTLSServer(t *testing.T, cert tls.Certificate, offerSTLS bool) *stlsServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &stlsServer{port: ln.Addr().(*net.TCPAddr).Port}
	done := make(chan struct{})
	t.Cleanup(func() { _ = ln.Close(); <-done })
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		text, secure := textproto.NewConn(conn), false
		_ = text.PrintfLine("+OK ready")
		for {
			line, err := text.ReadLine()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.commands = append(s.commands, map[bool]string{true: "tls ", false: "plain "}[secure]+line)
			s.mu.Unlock()
			switch verb, _, _ := strings.Cut(line, " "); verb {
			case "CAPA":
				_ = text.PrintfLine("+OK capabilities")
				if offerSTLS {
					_ = text.PrintfLine("STLS")
				}
				_ = text.PrintfLine("USER")
				_ = text.PrintfLine(".")
			case "STLS":
				_ = text.PrintfLine("+OK begin TLS")
				tlsConn := tls.Server(conn, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
				if err := tlsConn.Handshake(); err != nil {
					return
				}
				conn, text, secure = tlsConn, textproto.NewConn(tlsConn), true
			case "USER", "PASS":
				_ = text.PrintfLine("+OK")
			case "STAT":
				_ = text.PrintfLine("+OK 0 0")
			case "QUIT":
				_ = text.PrintfLine("+OK bye")
				return
			default:
				_ = text.PrintfLine("-ERR unknown")
			}
		}
	}()
	return s
}

func TestPOP3STLSUpgradesBeforeLogin(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, offer := range []bool{true, false} {
		srv := startSTLSServer(t, cert, offer)
		p, err := NewPOP3(POP3Config{Host: "127.0.0.1", Port: srv.port, Username: "u", Password: "p", TLS: TLSStartTLS,
			Timeout: 5 * time.Second, TLSConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}})
		if err != nil {
			t.Fatal(err)
		}
		st, err := p.Read(context.Background(), func(context.Context, Message) (bool, error) { return true, nil })
		srv.mu.Lock()
		cmds := strings.Join(srv.commands, "|")
		srv.mu.Unlock()
		if offer {
			if err != nil || st.Messages != 0 || cmds != "plain CAPA|plain STLS|tls USER u|tls PASS p|tls STAT|tls QUIT" {
				t.Errorf("with STLS: %v, %+v; commands %s", err, st, cmds)
			}
		} else if err == nil || !strings.Contains(err.Error(), "does not offer STLS") || strings.Contains(cmds, "PASS") {
			t.Errorf("without STLS: %v; commands %s", err, cmds)
		}
	}
}
