// Package esptest signs webhook requests the way each provider does, with
// keys made for the test, and serves an SNS signing certificate from a real
// local TLS server under SNS's own host name.
package esptest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" // SNS signature version 1
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// SNSHost is the host the test's signing certificate is served from.
const SNSHost = "sns.eu-west-1.amazonaws.com"

// SNS signs messages as Amazon SNS does and serves the certificate to check
// them with.
type SNS struct {
	CertURL   string
	key       *rsa.PrivateKey
	server    *httptest.Server
	roots     *x509.CertPool
	caPEM     []byte
	confirmed atomic.Int32
	fetched   atomic.Int32
}

// NewSNS makes a signing key and certificate, and a TLS server for SNSHost
// (with a certificate from a CA of its own) that serves the certificate at
// CertURL and counts subscription confirmations.
func NewSNS(t testing.TB) *SNS {
	t.Helper()
	s := &SNS{CertURL: "https://" + SNSHost + "/SimpleNotificationService-0123456789abcdef.pem"}
	var err error
	if s.key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	signing := selfSigned(t, "sns.amazonaws.com", &s.key.PublicKey, s.key)
	signingPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: signing.Raw})

	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := selfSigned(t, "esptest CA", &caKey.PublicKey, caKey)
	serverKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: SNSHost},
		DNSNames: []string{SNSHost}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &serverKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	s.roots = x509.NewCertPool()
	s.roots.AddCert(ca)
	s.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})

	mux := http.NewServeMux()
	mux.HandleFunc("GET /SimpleNotificationService-0123456789abcdef.pem", func(w http.ResponseWriter, r *http.Request) {
		s.fetched.Add(1)
		_, _ = w.Write(signingPEM)
	})
	mux.HandleFunc("GET /confirm", func(w http.ResponseWriter, r *http.Request) {
		s.confirmed.Add(1)
		_, _ = w.Write([]byte("<ConfirmSubscriptionResponse/>"))
	})
	s.server = httptest.NewUnstartedServer(mux)
	s.server.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: serverKey}}, MinVersion: tls.VersionTLS12}
	s.server.StartTLS()
	t.Cleanup(s.server.Close)
	return s
}

// Client reaches the test's TLS server whatever host a URL names, and
// trusts only its CA: the URL's host is still checked by TLS against the
// server's certificate, as in production.
func (s *SNS) Client() *http.Client {
	addr := s.server.Listener.Addr().String()
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{RootCAs: s.roots, MinVersion: tls.VersionTLS12},
	}}
}

// Addr is the TLS server's address, for a proxy that takes requests for
// SNSHost to it (a subprocess cannot be given Client).
func (s *SNS) Addr() string { return s.server.Listener.Addr().String() }

// CAPEM is the certificate of the CA the TLS server's certificate is signed
// by, as PEM: what a subprocess trusts through SSL_CERT_FILE.
func (s *SNS) CAPEM() []byte { return s.caPEM }

// Confirmed counts the subscription confirmations received; Fetched the
// certificate downloads.
func (s *SNS) Confirmed() int { return int(s.confirmed.Load()) }
func (s *SNS) Fetched() int   { return int(s.fetched.Load()) }

// Message is an SNS envelope.
type Message struct {
	Type             string
	MessageID        string `json:"MessageId"`
	Token            string `json:",omitempty"`
	TopicArn         string
	Subject          *string `json:",omitempty"`
	Message          string
	Timestamp        string
	SignatureVersion string
	Signature        string
	SigningCertURL   string
	SubscribeURL     string `json:",omitempty"`
	UnsubscribeURL   string `json:",omitempty"`
}

// Notification makes a signed Notification carrying message.
func (s *SNS) Notification(t testing.TB, topicArn, id, message string) Message {
	t.Helper()
	m := Message{Type: "Notification", MessageID: id, TopicArn: topicArn, Message: message,
		Timestamp: time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), SignatureVersion: "2", SigningCertURL: s.CertURL,
		UnsubscribeURL: "https://" + SNSHost + "/?Action=Unsubscribe"}
	s.Sign(t, &m)
	return m
}

// SubscriptionConfirmation makes a signed confirmation request whose
// SubscribeURL is served by the test's server.
func (s *SNS) SubscriptionConfirmation(t testing.TB, topicArn string) Message {
	t.Helper()
	m := Message{Type: "SubscriptionConfirmation", MessageID: "c0ffee00-0000-4000-8000-000000000001", Token: "2336412f37fb687f5d51e6e2425c464d",
		TopicArn: topicArn, Message: "You have chosen to subscribe to the topic " + topicArn + ".",
		SubscribeURL: "https://" + SNSHost + "/confirm?Action=ConfirmSubscription&Token=2336412f37fb687f5d51e6e2425c464d",
		Timestamp:    time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), SignatureVersion: "2", SigningCertURL: s.CertURL}
	s.Sign(t, &m)
	return m
}

// Sign (re)computes m's signature with the version m names. The string to
// sign is written out here again, not taken from package esp, so that a
// mistake there is not copied into what it is checked against.
func (s *SNS) Sign(t testing.TB, m *Message) {
	t.Helper()
	var b []byte
	add := func(k, v string) { b = append(b, k+"\n"+v+"\n"...) }
	add("Message", m.Message)
	add("MessageId", m.MessageID)
	if m.Type == "Notification" {
		if m.Subject != nil {
			add("Subject", *m.Subject)
		}
	} else {
		add("SubscribeURL", m.SubscribeURL)
	}
	add("Timestamp", m.Timestamp)
	if m.Type != "Notification" {
		add("Token", m.Token)
	}
	add("TopicArn", m.TopicArn)
	add("Type", m.Type)
	var sig []byte
	var err error
	if m.SignatureVersion == "1" {
		sum := sha1.Sum(b)
		sig, err = rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA1, sum[:])
	} else {
		sum := sha256.Sum256(b)
		sig, err = rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, sum[:])
	}
	if err != nil {
		t.Fatal(err)
	}
	m.Signature = base64.StdEncoding.EncodeToString(sig)
}

// JSON is m as SNS posts it.
func (m Message) JSON(t testing.TB) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// SignMailgun fills in the signature object of a Mailgun payload.
func SignMailgun(t testing.TB, signingKey string, payload []byte, at time.Time, token string) []byte {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal(payload, &p); err != nil {
		t.Fatal(err)
	}
	ts := strconv.FormatInt(at.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(signingKey))
	mac.Write([]byte(ts + token))
	p["signature"] = map[string]string{"timestamp": ts, "token": token, "signature": hex.EncodeToString(mac.Sum(nil))}
	out, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// SendGridKey makes a key pair and returns the verification key as SendGrid
// shows it (base64 DER).
func SendGridKey(t testing.TB) (*ecdsa.PrivateKey, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return key, base64.StdEncoding.EncodeToString(der)
}

// SignSendGrid returns the signature header for body sent at at.
func SignSendGrid(t testing.TB, key *ecdsa.PrivateKey, at time.Time, body []byte) (timestamp, signature string) {
	t.Helper()
	timestamp = strconv.FormatInt(at.Unix(), 10)
	sum := sha256.Sum256(append([]byte(timestamp), body...))
	sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return timestamp, base64.StdEncoding.EncodeToString(sig)
}

// Post posts a webhook's body as a provider does (JSON, with header) and
// returns the answer's status and body.
func Post(t testing.TB, url string, body []byte, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func selfSigned(t testing.TB, name string, pub, priv any) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}
