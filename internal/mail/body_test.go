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

func encodeWith(t testing.TB, e *bodyEncoder, parts []string) string {
	t.Helper()
	var b bytes.Buffer
	if err := e.encode(&b, strings.Join(parts, ""), parts); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestBodyEncoderMatchesWholeEncoding(t *testing.T) {
	long := strings.Repeat("wörd = ", 40)
	cases := [][]string{
		{"one line, ", "Ana", ", no newline"},
		{"Hello ", "Ana Petrova", ",\nshared line one\nshared = two \n<a href=\"", "https://example.org/u?t=1", "\">Unsubscribe</a>\n"},
		{"", "value first\n", "then shared\n"},
		{"shared first\n", "", "empty value\n", "", ""},
		{"trailing blank ", " ", "\nmore\t", "\t", ""},
		{long + "\n" + long, "=\n=", long + "\n"},
		{"\n\n", "x", "\n\n.\n..dots\n"},
		{"two values ", "a", " on one ", "b", " line\nand the rest\n"},
		{"ends without newline\nlast line with a blank ", "v", " "},
	}
	e := newBodyEncoder()
	for round := range 3 { // later rounds take the shared lines from the cache
		for i, parts := range cases {
			body := strings.Join(parts, "")
			if got, want := encodeWith(t, e, parts), wholeQP(t, body); got != want {
				t.Errorf("round %d case %d: got %q\nwant %q", round, i, got, want)
			}
		}
	}
	if len(e.recent) == 0 {
		t.Error("nothing was cached")
	}
	var b bytes.Buffer
	body := strings.Join(cases[1], "")
	for _, parts := range [][]string{nil, {"not the body"}, {body[:5], body[6:]}} {
		b.Reset()
		if err := e.encode(&b, body, parts); err != nil {
			t.Fatal(err)
		}
		if b.String() != wholeQP(t, body) {
			t.Errorf("parts %q that do not make the body: got %q", parts, b.String())
		}
	}
	crBody := []string{"crlf\r\nends\r\n", "v", "\rlone\r\xd0\nx\n"}
	if got, want := encodeWith(t, e, crBody), wholeQP(t, strings.Join(crBody, "")); got != want {
		t.Errorf("body with CRs: got %q, want %q", got, want)
	}
}

// Parts no message uses any more must age out, so a Sender's cache stays
// bounded over a long send with many different digests.
func TestBodyEncoderStaysBounded(t *testing.T) {
	e := newBodyEncoder()
	var shared [2]string
	for i := range 20000 {
		if i%50 == 0 { // a new digest: new shared strings
			shared[0] = fmt.Sprintf("Digest %d\n%s", i, strings.Repeat("A shared line, with an = sign.\n", 60))
			shared[1] = "\n" + strings.Repeat("The shared rest of it.\n", 40)
		}
		parts := []string{shared[0] + "Hello ", fmt.Sprint("reader ", i), shared[1]}
		if got, want := encodeWith(t, e, parts), wholeQP(t, strings.Join(parts, "")); got != want {
			t.Fatalf("message %d: got %q, want %q", i, got, want)
		}
		if e.recentBytes > generationBytes {
			t.Fatalf("message %d: recent generation holds %d bytes, limit %d", i, e.recentBytes, generationBytes)
		}
	}
	if n := len(e.recent) + len(e.older); n > 2*generationBytes/1000 {
		t.Errorf("cache holds %d entries after 400 digests", n)
	}
}

func FuzzBodyEncoder(f *testing.F) {
	f.Add("Hello ", "Ana", ",\nshared = line \nend")
	f.Add(strings.Repeat("x", 100)+"\n", "\r", "")
	f.Add("000\r", "\xd0\n", "\xb9 ")
	e := newBodyEncoder()
	f.Fuzz(func(t *testing.T, shared1, personal, shared2 string) {
		for _, parts := range [][]string{{shared1, personal, shared2}, {shared2, personal, shared1}, {shared1, personal, shared2}} {
			if got, want := encodeWith(t, e, parts), wholeQP(t, strings.Join(parts, "")); got != want {
				t.Fatalf("parts %q: got %q, want %q", parts, got, want)
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
	textShared := []string{"Hello ", ",\n" + text.String() + "\nUnsubscribe: ", "\n"}
	htmlShared := []string{"<p>Hello ", ",</p>\n" + html.String() + "\n<a href=\"", "\">Unsubscribe</a>\n"}
	messages := make([]Message, 64)
	for i := range messages {
		m := *base
		name, link := fmt.Sprint("reader ", i), fmt.Sprint("https://example.org/u?t=", i)
		m.TextParts = []string{textShared[0], name, textShared[1], link, textShared[2]}
		m.HTMLParts = []string{htmlShared[0], name, htmlShared[1], link, htmlShared[2]}
		m.Text, m.HTML = strings.Join(m.TextParts, ""), strings.Join(m.HTMLParts, "")
		messages[i] = m
	}
	for _, bc := range []struct {
		name string
		enc  *bodyEncoder
	}{{"cached", newBodyEncoder()}, {"whole", nil}} {
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
