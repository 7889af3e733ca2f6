package mail

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// dkimSig is a DKIM-Signature taken apart.
type dkimSig struct {
	Tags    map[string]string
	Headers []string // h=, lower-cased
}

// verifyDKIM checks a relaxed/relaxed DKIM signature (RFC 6376 3.4, 3.7)
// against pub. It is written from the RFC, independently of go-mail, so it
// catches a signer that signs the wrong bytes.
func verifyDKIM(raw []byte, pub crypto.PublicKey) (dkimSig, error) {
	head, body, ok := bytes.Cut(raw, []byte("\r\n\r\n"))
	if !ok {
		return dkimSig{}, errors.New("no header/body separator")
	}
	// Header fields with their folding kept.
	var fields []string
	for _, line := range strings.Split(string(head), "\r\n") {
		if (strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")) && len(fields) > 0 {
			fields[len(fields)-1] += "\r\n" + line
			continue
		}
		fields = append(fields, line)
	}
	nameOf := func(f string) string { n, _, _ := strings.Cut(f, ":"); return strings.ToLower(strings.TrimSpace(n)) }
	var sigField string
	var sigIndex int
	for i, f := range fields {
		if nameOf(f) == "dkim-signature" {
			sigField, sigIndex = f, i
			break
		}
	}
	if sigField == "" {
		return dkimSig{}, errors.New("no DKIM-Signature")
	}
	_, sigValue, _ := strings.Cut(sigField, ":")
	sig := dkimSig{Tags: map[string]string{}}
	wsp := regexp.MustCompile(`[ \t\r\n]+`)
	for _, tag := range strings.Split(sigValue, ";") {
		k, v, ok := strings.Cut(tag, "=")
		if !ok {
			continue
		}
		sig.Tags[strings.TrimSpace(k)] = wsp.ReplaceAllString(v, "")
	}
	for _, h := range strings.Split(sig.Tags["h"], ":") {
		sig.Headers = append(sig.Headers, strings.ToLower(h))
	}
	if sig.Tags["c"] != "relaxed/relaxed" {
		return sig, fmt.Errorf("c=%s, this verifier only knows relaxed/relaxed", sig.Tags["c"])
	}

	// Body hash.
	lines := strings.Split(string(body), "\r\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(regexp.MustCompile(`[ \t]+`).ReplaceAllString(l, " "), " ")
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	canonBody := ""
	if len(lines) > 0 {
		canonBody = strings.Join(lines, "\r\n") + "\r\n"
	}
	bh := sha256.Sum256([]byte(canonBody))
	if got := base64.StdEncoding.EncodeToString(bh[:]); got != sig.Tags["bh"] {
		return sig, fmt.Errorf("body hash %s, signature says %s", got, sig.Tags["bh"])
	}

	relaxed := func(f string) string {
		name, value, _ := strings.Cut(f, ":")
		value = strings.NewReplacer("\r\n", "").Replace(value)
		value = strings.TrimSpace(regexp.MustCompile(`[ \t]+`).ReplaceAllString(value, " "))
		return strings.ToLower(strings.TrimSpace(name)) + ":" + value
	}
	// Each name in h= takes the last not yet used instance (RFC 6376 5.4.2).
	used := map[int]bool{sigIndex: true}
	var in strings.Builder
	for _, name := range sig.Headers {
		for i := len(fields) - 1; i >= 0; i-- {
			if !used[i] && nameOf(fields[i]) == name {
				used[i] = true
				in.WriteString(relaxed(fields[i]) + "\r\n")
				break
			}
		}
	}
	emptied := regexp.MustCompile(`(^|;)([ \t\r\n]*b[ \t\r\n]*=)[^;]*`).ReplaceAllString(sigField[strings.Index(sigField, ":"):], "$1$2")
	in.WriteString(relaxed("dkim-signature" + emptied))
	hash := sha256.Sum256([]byte(in.String()))

	signature, err := base64.StdEncoding.DecodeString(sig.Tags["b"])
	if err != nil {
		return sig, fmt.Errorf("b=: %w", err)
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if sig.Tags["a"] != "rsa-sha256" {
			return sig, fmt.Errorf("a=%s for an RSA key", sig.Tags["a"])
		}
		err = rsa.VerifyPKCS1v15(k, crypto.SHA256, hash[:], signature)
	case ed25519.PublicKey:
		if sig.Tags["a"] != "ed25519-sha256" {
			return sig, fmt.Errorf("a=%s for an Ed25519 key", sig.Tags["a"])
		}
		// RFC 8463: Ed25519 signs the SHA-256 hash.
		if !ed25519.Verify(k, hash[:], signature) {
			err = errors.New("ed25519 signature does not verify")
		}
	default:
		return sig, fmt.Errorf("key type %T", pub)
	}
	return sig, err
}

// writeKey stores key as PEM in a temp file and returns its path.
func writeKey(t testing.TB, blockType string, der []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dkim.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func testKeys(t testing.TB) map[string]struct {
	file string
	pub  crypto.PublicKey
} {
	t.Helper()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8RSA, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	edPub, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8Ed, err := x509.MarshalPKCS8PrivateKey(edKey)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]struct {
		file string
		pub  crypto.PublicKey
	}{
		"rsa-pkcs1":     {writeKey(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), &rsaKey.PublicKey},
		"rsa-pkcs8":     {writeKey(t, "PRIVATE KEY", pkcs8RSA), &rsaKey.PublicKey},
		"ed25519-pkcs8": {writeKey(t, "PRIVATE KEY", pkcs8Ed), edPub},
	}
}

func TestDKIMSignsListUnsubscribeAndVerifies(t *testing.T) {
	for name, key := range testKeys(t) {
		t.Run(name, func(t *testing.T) {
			dkim, err := LoadDKIM("example.org", "desk2026", key.file)
			if err != nil {
				t.Fatal(err)
			}
			m := sampleMessage(3)
			var buf bytes.Buffer
			if _, err := WriteTo(&buf, m, dkim); err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(buf.Bytes(), []byte("DKIM-Signature: ")) {
				t.Fatalf("message does not start with a DKIM-Signature:\n%s", buf.Bytes())
			}
			assertMessage(t, buf.Bytes(), m)
			sig, err := verifyDKIM(buf.Bytes(), key.pub)
			if err != nil {
				t.Fatalf("signature does not verify: %v\n%s", err, buf.Bytes())
			}
			if sig.Tags["d"] != "example.org" || sig.Tags["s"] != "desk2026" || sig.Tags["b"] == "" {
				t.Errorf("tags %v", sig.Tags)
			}
			for _, want := range []string{"from", "to", "subject", "date", "message-id", "list-id", "reply-to",
				"list-unsubscribe", "list-unsubscribe-post", "mime-version", "content-type"} {
				found := false
				for _, h := range sig.Headers {
					found = found || h == want
				}
				if !found {
					t.Errorf("h= %v lacks %s", sig.Headers, want)
				}
			}

			// Changing a signed header must break the signature: proof that
			// List-Unsubscribe is really covered, not only named in h=.
			tampered := bytes.Replace(buf.Bytes(), []byte("<https://example.org/unsubscribe"), []byte("<https://evil.example/unsubscribe"), 1)
			if _, err := verifyDKIM(tampered, key.pub); err == nil {
				t.Error("signature still verifies after List-Unsubscribe was changed")
			}
			// So must adding a second one-click header (oversigning).
			added := bytes.Replace(buf.Bytes(), []byte("\r\nFrom: "), []byte("\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\nFrom: "), 1)
			if _, err := verifyDKIM(added, key.pub); err == nil {
				t.Error("signature still verifies after a List-Unsubscribe-Post was added")
			}
		})
	}
}

func TestLoadDKIMErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Go refuses to make keys this small unless told to.
	t.Setenv("GODEBUG", "rsa1024min=0")
	small, err := rsa.GenerateKey(rand.Reader, 512)
	if err != nil {
		t.Fatal(err)
	}
	smallFile := writeKey(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(small))
	missing := filepath.Join(dir, "missing.pem")
	for _, file := range []string{garbage, smallFile, missing} {
		_, err := LoadDKIM("example.org", "s1", file)
		if err == nil || !strings.Contains(err.Error(), file) {
			t.Errorf("LoadDKIM(%s) = %v, want an error naming the file", file, err)
		}
	}
	good := testKeys(t)["ed25519-pkcs8"].file
	for _, c := range [][2]string{{"", "s1"}, {"example.org", ""}, {"example.org\r\nX: y", "s1"}, {"example.org", "s 1"}} {
		if _, err := LoadDKIM(c[0], c[1], good); err == nil {
			t.Errorf("LoadDKIM(%q, %q) accepted", c[0], c[1])
		}
	}
}
