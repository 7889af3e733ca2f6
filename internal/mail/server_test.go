package mail

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// received is one message the test server accepted.
type received struct {
	From string
	To   []string
	Data []byte
	TLS  bool
	Auth string // user name, when the session authenticated
}

// testServer is a real SMTP server (go-smtp) on a loopback port whose
// behaviour per recipient the test chooses.
type testServer struct {
	Addr string
	Port int

	mu       sync.Mutex
	sessions int // TCP connections accepted
	messages []received
	// rcptReply answers RCPT TO for a recipient with this error.
	rcptReply map[string]*smtp.SMTPError
	// dropInData closes the connection halfway through DATA.
	dropInData map[string]bool
	// stallInData blocks DATA, before reading the content, until the test ends.
	stallInData map[string]bool
	// holdRcpt blocks RCPT TO until the test ends.
	holdRcpt map[string]bool
	// slowAfterData waits this long after reading a message's content before
	// accepting it.
	slowAfterData time.Duration
	release       chan struct{}
	stalled       chan string // receives the recipient of each stalled DATA
	users         map[string]string
}

type serverOptions struct {
	tls   *tls.Config // offers STARTTLS when set
	users map[string]string
}

func startServer(t testing.TB, opts serverOptions) *testServer {
	t.Helper()
	ts := &testServer{
		rcptReply:   map[string]*smtp.SMTPError{},
		dropInData:  map[string]bool{},
		stallInData: map[string]bool{},
		holdRcpt:    map[string]bool{},
		release:     make(chan struct{}),
		stalled:     make(chan string, 16),
		users:       opts.users,
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &testSession{ts: ts, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.TLSConfig = opts.tls
	// Loopback only: lets the plain-text AUTH test run.
	srv.AllowInsecureAuth = opts.tls == nil
	srv.ErrorLog = log.New(io.Discard, "", 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.Addr = ln.Addr().String()
	ts.Port = ln.Addr().(*net.TCPAddr).Port
	go func() { _ = srv.Serve(&countingListener{Listener: ln, ts: ts}) }()
	t.Cleanup(func() {
		close(ts.release)
		_ = srv.Close()
	})
	return ts
}

// countingListener counts connections: go-smtp starts a new Session after
// STARTTLS, so sessions are not connections.
type countingListener struct {
	net.Listener
	ts *testServer
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.ts.mu.Lock()
		l.ts.sessions++
		l.ts.mu.Unlock()
	}
	return c, err
}

func (ts *testServer) Sessions() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.sessions
}

func (ts *testServer) Messages() []received {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]received(nil), ts.messages...)
}

type testSession struct {
	ts   *testServer
	conn *smtp.Conn
	from string
	to   []string
	user string
}

func (s *testSession) AuthMechanisms() []string {
	if s.ts.users == nil {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *testSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if want, ok := s.ts.users[username]; !ok || want != password {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
		}
		s.user = username
		return nil
	}), nil
}

func (s *testSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.ts.users != nil && s.user == "" {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "authentication required"}
	}
	s.from = from
	return nil
}

func (s *testSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.ts.mu.Lock()
	reply, hold := s.ts.rcptReply[to], s.ts.holdRcpt[to]
	s.ts.mu.Unlock()
	if hold {
		s.ts.stalled <- to
		<-s.ts.release
		return &smtp.SMTPError{Code: 421, Message: "shutting down"}
	}
	if reply != nil {
		return reply
	}
	s.to = append(s.to, to)
	return nil
}

func (s *testSession) Data(r io.Reader) error {
	s.ts.mu.Lock()
	drop, stall := false, false
	for _, to := range s.to {
		drop = drop || s.ts.dropInData[to]
		stall = stall || s.ts.stallInData[to]
	}
	s.ts.mu.Unlock()
	if drop {
		_, _ = io.CopyN(io.Discard, r, 100)
		_ = s.conn.Conn().Close()
		return errors.New("dropped")
	}
	if stall {
		select {
		case s.ts.stalled <- s.to[0]:
		default:
		}
		<-s.ts.release
		return errors.New("stalled")
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if s.ts.slowAfterData > 0 {
		select {
		case s.ts.stalled <- s.to[0]:
		default:
		}
		time.Sleep(s.ts.slowAfterData)
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.ts.mu.Lock()
	s.ts.messages = append(s.ts.messages, received{From: s.from, To: s.to, Data: data, TLS: isTLS, Auth: s.user})
	s.ts.mu.Unlock()
	return nil
}

func (s *testSession) Reset() {
	s.from = ""
	s.to = nil
}

func (s *testSession) Logout() error { return nil }

// selfSigned makes a certificate for 127.0.0.1 and localhost, and a client
// config that trusts only it.
func selfSigned(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}}
	client = &tls.Config{RootCAs: pool}
	return server, client
}

func tlsListen(cfg *tls.Config) (net.Listener, error) {
	return tls.Listen("tcp", "127.0.0.1:0", cfg)
}
