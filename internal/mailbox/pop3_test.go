package mailbox

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"publisher/internal/bounce"
	"publisher/internal/mailpittest"
)

const (
	popUser     = "bounces@desk.example.org"
	popPassword = "pop3-test-password" // Mailpit splits its password file at spaces
)

func startMailpit(t *testing.T, opts mailpittest.Options) *mailpittest.Server {
	t.Helper()
	opts.POP3User, opts.POP3Password = popUser, popPassword
	return mailpittest.Start(t, opts)
}

func reader(t *testing.T, mp *mailpittest.Server, change func(*POP3Config)) *POP3 {
	t.Helper()
	cfg := POP3Config{Host: "127.0.0.1", Port: mp.POP3Port, Username: popUser, Password: popPassword,
		TLS: TLSNone, Timeout: 10 * time.Second}
	if change != nil {
		change(&cfg)
	}
	p, err := NewPOP3(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// waitCount waits for Mailpit to hold n messages: it deletes after it has
// answered QUIT.
func waitCount(t *testing.T, mp *mailpittest.Server, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for mp.Count(t) != n {
		if time.Now().After(deadline) {
			t.Fatalf("Mailpit holds %d messages, want %d", mp.Count(t), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func bounceFixtures(t *testing.T) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "bounce", "testdata", "*.eml"))
	if err != nil || len(files) < 8 {
		t.Fatalf("bounce fixtures: %v %v", files, err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = raw
	}
	return out
}

const outOfOffice = "From: Reader <reader@example.org>\r\nTo: bounces@desk.example.org\r\nSubject: Out of office\r\n" +
	"Message-ID: <ooo-1@example.org>\r\n\r\nI am away until Monday.\r\n.A line that starts with a dot.\r\n"

// The whole way a bounce takes: DSNs from Postfix, Exim, Gmail and Exchange and
// a complaint report are delivered into Mailpit over SMTP, read back over POP3,
// parsed, and deleted; the auto-reply that is no report stays.
func TestPOP3ReadsBouncesAndComplaintsFromMailpit(t *testing.T) {
	mp := startMailpit(t, mailpittest.Options{})
	fixtures := bounceFixtures(t)
	for _, raw := range fixtures {
		mp.Deliver(t, popUser, raw)
	}
	mp.Deliver(t, popUser, []byte(outOfOffice))
	waitCount(t, mp, len(fixtures)+1)

	verp, err := bounce.NewVERP(popUser)
	if err != nil {
		t.Fatal(err)
	}
	var events []bounce.Event
	var kept []Message
	st, err := reader(t, mp, nil).Read(context.Background(), func(ctx context.Context, m Message) (bool, error) {
		evs, err := bounce.Parse(m.Raw, verp)
		if errors.Is(err, bounce.ErrNotReport) {
			kept = append(kept, m)
			return false, nil
		}
		if err != nil {
			return false, err
		}
		events = append(events, evs...)
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{Messages: len(fixtures) + 1, Read: len(fixtures) + 1, Deleted: len(fixtures), Kept: 1}
	if st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
	got := map[string]bounce.Kind{}
	for _, e := range events {
		if e.MessageID == "" || e.ID == "" {
			t.Errorf("event without its ids: %+v", e)
		}
		got[e.Recipient] = e.Kind
	}
	wantKinds := map[string]bounce.Kind{
		"ana.petrova@example.org": bounce.HardBounce, "jorg@example.net": bounce.HardBounce,
		"lena.k@example.com": bounce.HardBounce, "m.ilves@agency.example": bounce.HardBounce,
		"tomas@example.com": bounce.SoftBounce, "sam@example.edu": bounce.Refused,
		"ines@example.org": bounce.Delayed, "priya@mailbox.example": bounce.Complaint,
	}
	if len(events) != len(wantKinds) || !mapsEqual(got, wantKinds) {
		t.Errorf("events by reader:\n got %v\nwant %v", got, wantKinds)
	}
	if len(kept) != 1 || kept[0].UID == "" || !strings.Contains(string(kept[0].Raw), "\n.A line that starts with a dot.\n") {
		t.Fatalf("kept %+v: want the auto-reply, with its UID and its dot line unstuffed", kept)
	}
	waitCount(t, mp, 1)

	// The next read sees only what was kept, under the same UID.
	st, err = reader(t, mp, nil).Read(context.Background(), func(ctx context.Context, m Message) (bool, error) {
		if m.UID != kept[0].UID {
			t.Errorf("UID %q, was %q", m.UID, kept[0].UID)
		}
		return false, nil
	})
	if err != nil || st != (Stats{Messages: 1, Read: 1, Kept: 1}) {
		t.Errorf("second read: %+v, %v", st, err)
	}
}

func mapsEqual(a, b map[string]bounce.Kind) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func deliverNumbered(t *testing.T, mp *mailpittest.Server, n int) {
	t.Helper()
	for i := range n {
		mp.Deliver(t, popUser, []byte("Subject: message "+string(rune('1'+i))+"\r\n\r\nbody\r\n"))
	}
	waitCount(t, mp, n)
}

func subject(m Message) string {
	for line := range strings.SplitSeq(string(m.Raw), "\n") {
		if s, ok := strings.CutPrefix(line, "Subject: "); ok {
			return s
		}
	}
	return ""
}

// A handler that fails (the store is down, say) stops the read; what it
// accepted before is deleted, the rest stays for the next read.
func TestPOP3HandlerErrorDeletesOnlyWhatWasAccepted(t *testing.T) {
	mp := startMailpit(t, mailpittest.Options{})
	deliverNumbered(t, mp, 3)
	var seen []string
	st, err := reader(t, mp, nil).Read(context.Background(), func(ctx context.Context, m Message) (bool, error) {
		seen = append(seen, subject(m))
		if len(seen) == 2 {
			return false, errors.New("store unreachable")
		}
		return true, nil
	})
	if err == nil || !strings.Contains(err.Error(), "store unreachable") || !strings.Contains(err.Error(), "message 2") {
		t.Fatalf("err = %v, want the handler's error naming message 2", err)
	}
	if st.Read != 2 || st.Deleted != 1 || len(seen) != 2 {
		t.Errorf("stats %+v, seen %q", st, seen)
	}
	waitCount(t, mp, 2)
}

// A read that is cut off before QUIT deletes nothing, even what was accepted:
// the handler records idempotently, so reading it again is harmless.
func TestPOP3CutOffDeletesNothing(t *testing.T) {
	mp := startMailpit(t, mailpittest.Options{})
	deliverNumbered(t, mp, 3)
	ctx, cancel := context.WithCancel(context.Background())
	_, err := reader(t, mp, nil).Read(ctx, func(ctx context.Context, m Message) (bool, error) {
		if subject(m) == "message 2" {
			cancel()
		}
		return true, nil
	})
	if !errors.Is(err, context.Canceled) && (err == nil || !strings.Contains(err.Error(), "closed")) {
		t.Fatalf("err = %v, want the read cut off", err)
	}
	time.Sleep(200 * time.Millisecond) // give Mailpit the time it would take to delete
	waitCount(t, mp, 3)
}

func TestPOP3LimitAndSize(t *testing.T) {
	mp := startMailpit(t, mailpittest.Options{})
	deliverNumbered(t, mp, 3)
	mp.Deliver(t, popUser, []byte("Subject: big\r\n\r\n"+strings.Repeat("x", 4000)+"\r\n"))
	waitCount(t, mp, 4)
	accept := func(ctx context.Context, m Message) (bool, error) { return true, nil }
	st, err := reader(t, mp, func(c *POP3Config) { c.MaxMessageBytes = 2000 }).Read(context.Background(), accept)
	if err != nil || st != (Stats{Messages: 4, Read: 3, Deleted: 3, TooBig: 1}) {
		t.Fatalf("size limit: %+v, %v", st, err)
	}
	waitCount(t, mp, 1)
	deliverNumbered2 := func() {
		for range 3 {
			mp.Deliver(t, popUser, []byte("Subject: more\r\n\r\nbody\r\n"))
		}
		waitCount(t, mp, 4)
	}
	deliverNumbered2()
	st, err = reader(t, mp, func(c *POP3Config) { c.Limit = 2 }).Read(context.Background(), accept)
	if err != nil || st.Read != 2 || st.Deleted != 2 {
		t.Fatalf("limit 2: %+v, %v", st, err)
	}
	waitCount(t, mp, 2)
}

func TestPOP3RefusedLogin(t *testing.T) {
	mp := startMailpit(t, mailpittest.Options{})
	_, err := reader(t, mp, func(c *POP3Config) { c.Password = "wrong" }).Read(context.Background(),
		func(context.Context, Message) (bool, error) { return true, nil })
	if err == nil || !strings.Contains(err.Error(), "PASS") || !strings.Contains(err.Error(), "-ERR") {
		t.Errorf("err = %v, want the refused PASS", err)
	}
}

// Mailpit offers no STLS: a reader told to use it refuses to log in in clear.
func TestPOP3StartTLSRefusesAServerWithoutIt(t *testing.T) {
	mp := startMailpit(t, mailpittest.Options{})
	_, err := reader(t, mp, func(c *POP3Config) { c.TLS = TLSStartTLS }).Read(context.Background(),
		func(context.Context, Message) (bool, error) { return true, nil })
	if err == nil || !strings.Contains(err.Error(), "does not offer STLS") {
		t.Errorf("err = %v", err)
	}
}

func TestPOP3ImplicitTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	mp := startMailpit(t, mailpittest.Options{POP3CertFile: certFile, POP3KeyFile: keyFile})
	deliverNumbered(t, mp, 1)
	accept := func(ctx context.Context, m Message) (bool, error) { return true, nil }
	// Without the test's CA the certificate is not trusted.
	_, err := reader(t, mp, func(c *POP3Config) { c.TLS = TLSImplicit }).Read(context.Background(), accept)
	if err == nil || !strings.Contains(err.Error(), "TLS") {
		t.Fatalf("untrusted certificate accepted: %v", err)
	}
	st, err := reader(t, mp, func(c *POP3Config) {
		c.TLS, c.TLSConfig = TLSImplicit, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}).Read(context.Background(), accept)
	if err != nil || st.Deleted != 1 {
		t.Fatalf("over TLS: %+v, %v", st, err)
	}
	waitCount(t, mp, 0)
}

func TestNewPOP3Checks(t *testing.T) {
	for _, c := range []struct {
		cfg  POP3Config
		want string
	}{
		{POP3Config{Username: "u"}, "host is not set"},
		{POP3Config{Host: "pop.example.org"}, "username is not set"},
		{POP3Config{Host: "pop.example.org", Username: "u", TLS: TLSNone}, "only allowed for a loopback host"},
		{POP3Config{Host: "pop.example.org", Username: "u", TLS: "ssl"}, `tls "ssl"`},
		{POP3Config{Host: "pop.example.org", Username: "u", Port: 70000}, "port 70000"},
		{POP3Config{Host: "pop.example.org", Username: "u\r\nDELE 1"}, "line break"},
	} {
		if _, err := NewPOP3(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
	}
	p, err := NewPOP3(POP3Config{Host: "pop.example.org", Username: "u"})
	if err != nil || p.cfg.Port != 995 || p.cfg.TLS != TLSImplicit {
		t.Errorf("defaults: %+v, %v", p, err)
	}
	p, _ = NewPOP3(POP3Config{Host: "pop.example.org", Username: "u", TLS: TLSStartTLS})
	if p.cfg.Port != 110 {
		t.Errorf("STLS port %d", p.cfg.Port)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and localhost, and returns the
// pool that trusts it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
