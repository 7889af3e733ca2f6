package mail

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"os"
	"strings"

	gomail "github.com/wneessen/go-mail"
)

// DKIMSignedHeaders are the header fields every signature covers. go-mail's
// default list leaves out List-Unsubscribe and List-Unsubscribe-Post, but
// RFC 8058 (section 4) wants both signed so one-click cannot be forged.
var dkimSignedHeaders = []string{
	"From", "To", "Reply-To", "Subject", "Date", "Message-ID", "List-Id",
	"List-Unsubscribe", "List-Unsubscribe-Post", "MIME-Version", "Content-Type",
}

// dkimOversignedHeaders are listed once more in h= so that a copy of the
// header added later in transit breaks the signature (RFC 6376 8.15).
var dkimOversignedHeaders = []string{"From", "Subject", "List-Unsubscribe", "List-Unsubscribe-Post"}

// DKIM holds what signing needs: d=, s= and the private key (RSA or Ed25519).
type DKIM struct {
	Domain   string
	Selector string
	Key      crypto.Signer
}

// LoadDKIM reads a PEM private key (PKCS#1 RSA or PKCS#8 RSA/Ed25519).
func LoadDKIM(domain, selector, keyFile string) (*DKIM, error) {
	pemBytes, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("dkim key %s: %w", keyFile, err)
	}
	key, err := gomail.PrivKeyFromPEM(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("dkim key %s: %w", keyFile, err)
	}
	d := &DKIM{Domain: domain, Selector: selector, Key: key}
	if err := d.check(); err != nil {
		return nil, fmt.Errorf("dkim key %s: %w", keyFile, err)
	}
	return d, nil
}

func (d *DKIM) check() error {
	if err := headerSafe(d.Domain); err != nil || d.Domain == "" || !isDotAtom(d.Domain) {
		return fmt.Errorf("domain %q is not a domain name", d.Domain)
	}
	if err := headerSafe(d.Selector); err != nil || d.Selector == "" || !isDotAtom(d.Selector) {
		return fmt.Errorf("selector %q is not a DNS label", d.Selector)
	}
	switch k := d.Key.(type) {
	case *rsa.PrivateKey:
		// Receivers ignore signatures from keys under 1024 bits (RFC 8301).
		if k.N.BitLen() < 1024 {
			return fmt.Errorf("RSA key has %d bits, want at least 1024", k.N.BitLen())
		}
	case ed25519.PrivateKey:
	case nil:
		return errors.New("no private key")
	default:
		return fmt.Errorf("unsupported key type %T (want RSA or Ed25519)", d.Key)
	}
	return nil
}

// signer makes a fresh go-mail signer per message: go-mail's signer records
// the algorithm on first use, so sharing one between goroutines would race.
func (d *DKIM) signer() (*gomail.DKIMSigner, error) {
	if err := d.check(); err != nil {
		return nil, fmt.Errorf("dkim: %w", err)
	}
	s := gomail.NewDKIMSigner(d.Domain, d.Selector, d.Key)
	s.SignHeaders(dkimSignedHeaders...)
	s.OversignHeaders(dkimOversignedHeaders...)
	s.HeaderCanonicalization(gomail.CanonicalizationRelaxed)
	s.BodyCanonicalization(gomail.CanonicalizationRelaxed)
	return s, nil
}

// sign prepends a DKIM-Signature to a rendered message.
func (d *DKIM) sign(raw []byte) ([]byte, error) {
	signer, err := d.signer()
	if err != nil {
		return nil, err
	}
	end := bytes.Index(raw, []byte("\r\n\r\n"))
	if end < 0 {
		return nil, errors.New("dkim: message has no body")
	}
	sig, err := signer.Sign(raw[:end+2], raw[end+4:])
	if err != nil {
		return nil, fmt.Errorf("dkim: %w", err)
	}
	sig = refoldSignature(sig)
	out := make([]byte, 0, len(sig)+len(raw))
	out = append(out, sig...)
	return append(out, raw...), nil
}

// refoldSignature re-folds go-mail's DKIM-Signature. v0.8.1 folds inside
// tag values (a long h= comes out as "List-Un<CRLF> subscribe-Post"), and
// relaxed canonicalization turns such a fold into a space that was not
// there when the header was signed, so every verifier rejects it. Folding
// only between tags, and inside b= (which verifiers blank out before
// hashing), keeps the signed and the sent header equal.
func refoldSignature(sig string) string {
	const maxLine = 76
	value := strings.TrimSuffix(strings.TrimPrefix(sig, "DKIM-Signature: "), "\r\n")
	value = strings.ReplaceAll(value, "\r\n ", "")
	tags := strings.Split(value, "; ")

	var b strings.Builder
	b.Grow(len(sig) + 32)
	b.WriteString("DKIM-Signature:")
	col := len("DKIM-Signature:")
	for i, tag := range tags {
		if i < len(tags)-1 {
			tag += ";"
		}
		if data, isB := strings.CutPrefix(tag, "b="); isB {
			if col+3 > maxLine {
				b.WriteString("\r\n b=")
				col = 3
			} else {
				b.WriteString(" b=")
				col += 3
			}
			for len(data) > 0 {
				if col >= maxLine {
					b.WriteString("\r\n ")
					col = 1
				}
				n := min(maxLine-col, len(data))
				b.WriteString(data[:n])
				col += n
				data = data[n:]
			}
			continue
		}
		if col+1+len(tag) > maxLine && col > 1 {
			b.WriteString("\r\n ")
			col = 1
		} else {
			b.WriteByte(' ')
			col++
		}
		b.WriteString(tag)
		col += len(tag)
	}
	b.WriteString("\r\n")
	return b.String()
}
