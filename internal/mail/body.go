package mail

import (
	"bytes"
	"io"
	"mime/multipart"
	"mime/quotedprintable"
	"net/textproto"
	"strings"
	"unsafe"
)

// bodyEncoder writes message bodies quoted-printable and keeps the encoding
// of what a digest's messages share. A digest differs from one reader to the
// next in a handful of values (name, links) cut into text that is otherwise
// the same; Message.TextParts and HTMLParts say where. The whole lines
// inside a shared part are encoded once and remembered; only the lines that
// hold a reader's values are encoded for each message. Encoding was a
// fifth of the send path's CPU.
//
// Encoding lines apart gives the very bytes of encoding the whole body:
// mime/quotedprintable's writer starts each line afresh, and a body is only
// cut just after a '\n'. A body with a '\r' in it is encoded whole: the
// writer's state after a lone CR can reach past the next '\n'.
//
// Shared parts are known by identity (where their bytes live, and how many),
// not by content, so finding one costs nothing like hashing it. Strings are
// immutable and the key's pointer keeps their memory alive, so the same key
// always means the same bytes. Entries live in two generations: one found in
// the older moves to the newer, and when the newer outgrows generationBytes
// the older is dropped, so parts no message uses any more age out.
// Not safe for concurrent use: one per Sender.
type bodyEncoder struct {
	recent, older map[partKey]string
	recentBytes   int
	line          []byte // a line being put together from parts
}

type partKey struct {
	data *byte
	len  int
}

// generationBytes bounds the encoded bytes one generation holds: a few
// digests' worth, small enough for one encoder per connection.
const generationBytes = 64 << 10

func newBodyEncoder() *bodyEncoder {
	return &bodyEncoder{recent: map[partKey]string{}, older: map[partKey]string{}}
}

// encode writes body to w quoted-printable, with CRLF line ends. parts, when
// not nil, is body cut into shared and personal pieces (see
// Message.TextParts); with a nil encoder, no parts, or parts that do not
// join into body, the body is encoded whole.
func (e *bodyEncoder) encode(w *bytes.Buffer, body string, parts []string) error {
	if e == nil || len(parts) == 0 || strings.IndexByte(body, '\r') >= 0 || !joinsTo(parts, body) {
		return encodeQP(w, body)
	}
	e.line = e.line[:0]
	for i, part := range parts {
		first := strings.IndexByte(part, '\n')
		if i%2 == 1 || first < 0 {
			e.line = append(e.line, part...)
			continue
		}
		e.line = append(e.line, part[:first+1]...)
		if err := encodeQP(w, e.line); err != nil {
			return err
		}
		last := strings.LastIndexByte(part, '\n')
		if last > first {
			w.WriteString(e.cached(part[first+1 : last+1]))
		}
		e.line = append(e.line[:0], part[last+1:]...)
	}
	return encodeQP(w, e.line)
}

func (e *bodyEncoder) cached(lines string) string {
	key := partKey{unsafe.StringData(lines), len(lines)}
	if enc, ok := e.recent[key]; ok {
		return enc
	}
	enc, ok := e.older[key]
	if !ok {
		var b bytes.Buffer
		_ = encodeQP(&b, lines) // writes to a bytes.Buffer cannot fail
		enc = b.String()
	}
	if e.recentBytes+len(enc) > generationBytes {
		e.older, e.recent = e.recent, make(map[partKey]string, len(e.recent))
		e.recentBytes = 0
	}
	e.recent[key] = enc
	e.recentBytes += len(enc)
	return enc
}

func encodeQP[T string | []byte](w io.Writer, s T) error {
	if len(s) == 0 {
		return nil
	}
	qp := quotedprintable.NewWriter(w)
	if _, err := qp.Write([]byte(s)); err != nil {
		return err
	}
	return qp.Close()
}

// joinsTo reports whether parts joined are exactly body.
func joinsTo(parts []string, body string) bool {
	for _, p := range parts {
		if !strings.HasPrefix(body, p) {
			return false
		}
		body = body[len(p):]
	}
	return body == ""
}

// writeBody writes the Content-Type header, the blank line and the body:
// the text part alone, or multipart/alternative with the text part first so
// that clients showing the last alternative they understand pick the HTML.
func writeBody(buf *bytes.Buffer, enc *bodyEncoder, m *Message) error {
	const qpHeader = "Content-Transfer-Encoding: quoted-printable\r\n"
	if m.HTML == "" {
		buf.WriteString(qpHeader + "Content-Type: text/plain; charset=UTF-8\r\n\r\n")
		return enc.encode(buf, m.Text, m.TextParts)
	}
	mw := multipart.NewWriter(buf)
	buf.WriteString("Content-Type: multipart/alternative;\r\n boundary=" + mw.Boundary() + "\r\n\r\n")
	for _, p := range [...]struct {
		contentType, body string
		parts             []string
	}{
		{"text/plain; charset=UTF-8", m.Text, m.TextParts},
		{"text/html; charset=UTF-8", m.HTML, m.HTMLParts},
	} {
		// The part's writer only passes bytes on to buf; writing to buf
		// itself spares a []byte copy of every cached piece.
		_, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Transfer-Encoding": {"quoted-printable"},
			"Content-Type":              {p.contentType},
		})
		if err != nil {
			return err
		}
		if err := enc.encode(buf, p.body, p.parts); err != nil {
			return err
		}
	}
	return mw.Close()
}
