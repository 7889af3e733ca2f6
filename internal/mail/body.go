package mail

import (
	"bytes"
	"io"
	"mime/multipart"
	"mime/quotedprintable"
	"net/textproto"
	"strings"
)

// bodyEncoder writes message bodies quoted-printable, one line at a time,
// and remembers the encoded lines it met lately. A digest's bodies differ
// from one reader to the next in a handful of lines (the greeting, the
// links), so almost all of the encoding is done once per digest rather than
// once per message; it was a fifth of the send path's CPU.
//
// Encoding line by line gives the very bytes of encoding the whole body:
// mime/quotedprintable's writer starts each line afresh, and a body is only
// cut just after a '\n'. A body with a '\r' in it is encoded whole: the
// writer's state after a lone CR can reach past the next '\n'.
//
// Lines are kept in two generations: a line found in the older one moves to
// the newer, and when the newer outgrows generationBytes the older is
// dropped. Lines every message shares stay; a reader's own lines age out.
// Not safe for concurrent use: one per Sender.
type bodyEncoder struct {
	recent, older map[string]string
	recentBytes   int
}

// generationBytes bounds one generation (lines plus their encodings): room
// for the bodies of a few digests, small enough for one encoder per
// connection.
const generationBytes = 96 << 10

func newBodyEncoder() *bodyEncoder {
	return &bodyEncoder{recent: map[string]string{}, older: map[string]string{}}
}

// encode writes body to w quoted-printable, with CRLF line ends. A nil
// encoder encodes without remembering anything.
func (e *bodyEncoder) encode(w io.Writer, body string) error {
	if e == nil || strings.IndexByte(body, '\r') >= 0 {
		qp := quotedprintable.NewWriter(w)
		if _, err := io.WriteString(qp, body); err != nil {
			return err
		}
		return qp.Close()
	}
	for len(body) > 0 {
		line := body
		if i := strings.IndexByte(body, '\n'); i >= 0 {
			line = body[:i+1]
		}
		body = body[len(line):]
		if _, err := io.WriteString(w, e.encodeLine(line)); err != nil {
			return err
		}
	}
	return nil
}

func (e *bodyEncoder) encodeLine(line string) string {
	if enc, ok := e.recent[line]; ok {
		return enc
	}
	enc, ok := e.older[line]
	if !ok {
		var b strings.Builder
		b.Grow(len(line) + len(line)/8 + 3)
		qp := quotedprintable.NewWriter(&b)
		// Writes to a strings.Builder cannot fail. Close matters only for a
		// last line without '\n' (trailing blanks get encoded); after a '\n'
		// the writer has nothing left to flush.
		_, _ = io.WriteString(qp, line)
		_ = qp.Close()
		enc = b.String()
	}
	// The key must not pin the whole body it was cut from.
	line = strings.Clone(line)
	if e.recentBytes+len(line)+len(enc) > generationBytes {
		e.older, e.recent = e.recent, make(map[string]string, len(e.recent))
		e.recentBytes = 0
	}
	e.recent[line] = enc
	e.recentBytes += len(line) + len(enc)
	return enc
}

// writeBody writes the Content-Type header, the blank line and the body:
// the text part alone, or multipart/alternative with the text part first so
// that clients showing the last alternative they understand pick the HTML.
func writeBody(buf *bytes.Buffer, enc *bodyEncoder, m *Message) error {
	const qpHeader = "Content-Transfer-Encoding: quoted-printable\r\n"
	if m.HTML == "" {
		buf.WriteString(qpHeader + "Content-Type: text/plain; charset=UTF-8\r\n\r\n")
		return enc.encode(buf, m.Text)
	}
	mw := multipart.NewWriter(buf)
	buf.WriteString("Content-Type: multipart/alternative;\r\n boundary=" + mw.Boundary() + "\r\n\r\n")
	for _, p := range [...]struct{ contentType, body string }{
		{"text/plain; charset=UTF-8", m.Text},
		{"text/html; charset=UTF-8", m.HTML},
	} {
		// The part's writer only passes bytes on to buf; writing to buf
		// itself spares a []byte copy of every cached line.
		_, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Transfer-Encoding": {"quoted-printable"},
			"Content-Type":              {p.contentType},
		})
		if err != nil {
			return err
		}
		if err := enc.encode(buf, p.body); err != nil {
			return err
		}
	}
	return mw.Close()
}
