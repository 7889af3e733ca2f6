package mail

import (
	"bytes"
	"fmt"
	"io"
	"mime/quotedprintable"
	"strings"
	"testing"
)

// wholeQP is the reference: the body encoded in one go by the standard library.
func wholeQP(t testing.TB, body string) string {
	t.Helper()
	var b strings.Builder
	w := quotedprintable.NewWriter(&b)
	if _, err := io.WriteString(w, body); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func encodeWith(t testing.TB, e *bodyEncoder, body string) string {
	t.Helper()
	var b bytes.Buffer
	if err := e.encode(&b, body); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestBodyEncoderMatchesWholeEncoding(t *testing.T) {
	long := strings.Repeat("wörd = ", 40)
	bodies := []string{
		"",
		"one line, no newline",
		"trailing blank \nand a tab\t\nlast blank ",
		"crlf\r\nends\r\nhere\r\n",
		"lone \r carriage\rreturns\r",
		"\n\n\nblank lines\n\n",
		long + "\n" + long,
		strings.Repeat("=", 200) + "\n.\n..dots\n",
		"<a href=\"https://example.org/unsubscribe?token=abc\">Unsubscribe</a>\n",
		"ends with cr then lf split \r",
	}
	e := newBodyEncoder()
	for round := range 3 { // later rounds are served from the cache
		for i, body := range bodies {
			if got, want := encodeWith(t, e, body), wholeQP(t, body); got != want {
				t.Errorf("round %d body %d: line-wise encoding differs\n got %q\nwant %q", round, i, got, want)
			}
		}
	}
	if got, want := encodeWith(t, nil, bodies[6]), wholeQP(t, bodies[6]); got != want {
		t.Errorf("nil encoder: got %q, want %q", got, want)
	}
}

// A reader's own lines must age out while the lines every digest shares
// stay, so the cache stays bounded over a whole list.
func TestBodyEncoderStaysBounded(t *testing.T) {
	shared := strings.Repeat("A line every reader gets, with an = sign.\n", 100)
	e := newBodyEncoder()
	for i := range 20000 {
		body := fmt.Sprintf("Hello reader %d,\n%sYour link: https://example.org/u?t=%x\n", i, shared, i*7919)
		if got, want := encodeWith(t, e, body), wholeQP(t, body); got != want {
			t.Fatalf("message %d: got %q, want %q", i, got, want)
		}
		if e.recentBytes > generationBytes {
			t.Fatalf("message %d: recent generation holds %d bytes, limit %d", i, e.recentBytes, generationBytes)
		}
	}
	if n := len(e.recent) + len(e.older); n > 2*generationBytes/40 {
		t.Errorf("cache holds %d lines after 20,000 messages", n)
	}
	if _, ok := e.recent["A line every reader gets, with an = sign.\n"]; !ok {
		t.Error("the shared line is not in the recent generation")
	}
}

func FuzzBodyEncoder(f *testing.F) {
	f.Add("plain\n", "second body\r\nwith = and trailing space \n")
	f.Add(strings.Repeat("x", 100)+"\n", "\r")
	e := newBodyEncoder()
	f.Fuzz(func(t *testing.T, a, b string) {
		for _, body := range []string{a, b, a + b, a} {
			if got, want := encodeWith(t, e, body), wholeQP(t, body); got != want {
				t.Fatalf("body %q: got %q, want %q", body, got, want)
			}
		}
	})
}

// BenchmarkRenderReused renders messages the way a Sender does, buffer and
// encoder reused, with digest-like bodies: about 250 distinct lines, 22 KB
// in all, of which a greeting and the links differ for every message.
func BenchmarkRenderReused(b *testing.B) {
	base := sampleMessage(1)
	var text, html strings.Builder
	for i := range 140 {
		fmt.Fprintf(&text, "Paragraph line %d of the digest's plain text, wrapped at a reader's width.\n", i)
	}
	for i := range 110 {
		fmt.Fprintf(&html, "<p style=\"margin:0 0 12px;color:#222\">Paragraph %d of the digest, with <a href=\"https://example.org/p/%d\">a link</a>.</p>\n", i, i)
	}
	messages := make([]Message, 64)
	for i := range messages {
		m := *base
		m.Text = fmt.Sprintf("Hello reader %d,\n%s\nUnsubscribe: https://example.org/u?t=%d\n", i, text.String(), i)
		m.HTML = fmt.Sprintf("<p>Hello reader %d,</p>\n%s\n<a href=\"https://example.org/u?t=%d\">Unsubscribe</a>\n", i, html.String(), i)
		messages[i] = m
	}
	for _, bc := range []struct {
		name string
		enc  *bodyEncoder
	}{{"cached", newBodyEncoder()}, {"uncached", nil}} {
		b.Run(bc.name, func(b *testing.B) {
			var buf bytes.Buffer
			b.SetBytes(int64(len(messages[0].Text) + len(messages[0].HTML)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				buf.Reset()
				if _, err := renderInto(&buf, bc.enc, &messages[i%len(messages)], nil); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
