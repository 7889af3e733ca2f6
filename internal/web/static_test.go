package web

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const sampleRSS = `<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Desk Notes</title><link>https://desk.example.org/</link>
<description>Notes from the desk, padded so that the file is worth compressing: ` +
	`Lorem ipsum is not used here; instead a sentence about grain prices and another about rail freight repeated. ` +
	`Grain prices rose. Rail freight fell. Grain prices rose. Rail freight fell. Grain prices rose. Rail freight fell.</description>
</channel></rss>
`

func TestStaticContentTypes(t *testing.T) {
	e := newEnv(t, nil)
	files := map[string]string{
		"feed.xml":                "application/rss+xml; charset=utf-8",
		"atom.xml":                "application/atom+xml; charset=utf-8",
		"feed.json":               "application/feed+json; charset=utf-8",
		"feeds.opml":              "text/x-opml; charset=utf-8",
		"topics/economy/feed.xml": "application/rss+xml; charset=utf-8",
		"topics/economy/atom.xml": "application/atom+xml; charset=utf-8",
		"index.html":              "text/html; charset=utf-8",
		"style.css":               "text/css; charset=utf-8",
		"sitemap.xml":             "application/xml; charset=utf-8",
	}
	for name := range files {
		e.writeOut(name, "x")
	}
	for name, want := range files {
		r := e.get("/"+name, nil)
		if r.status != http.StatusOK {
			t.Errorf("%s: status %d", name, r.status)
			continue
		}
		if got := r.header.Get("Content-Type"); got != want {
			t.Errorf("%s: Content-Type %q, want %q", name, got, want)
		}
		if r.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", name)
		}
	}
	// A folder serves its index.html, and the root does too.
	e.writeOut("pieces/grain/index.html", "<p>grain</p>")
	if r := e.get("/pieces/grain/", nil); r.status != 200 || r.body != "<p>grain</p>" {
		t.Fatalf("folder index: %d %q", r.status, r.body)
	}
	if r := e.get("/pieces/grain", nil); r.status != http.StatusMovedPermanently || r.header.Get("Location") != "/pieces/grain/" {
		t.Fatalf("folder without slash: %d %q", r.status, r.header.Get("Location"))
	}
	if r := e.get("/", nil); r.status != 200 || r.body != "x" {
		t.Fatalf("root index: %d %q", r.status, r.body)
	}
	if r := e.get("/index.html", nil); !strings.Contains(r.header.Get("Content-Security-Policy"), "script-src 'none'") {
		t.Fatalf("archive page CSP = %q", r.header.Get("Content-Security-Policy"))
	}
}

func TestConditionalGet(t *testing.T) {
	e := newEnv(t, nil)
	path := e.writeOut("feed.xml", sampleRSS)
	identity := map[string]string{"Accept-Encoding": "identity"}
	first := e.get("/feed.xml", identity)
	etag, lastMod := first.header.Get("ETag"), first.header.Get("Last-Modified")
	if first.status != 200 || first.body != sampleRSS {
		t.Fatalf("first GET: %d", first.status)
	}
	if !strings.HasPrefix(etag, `"`) || strings.HasPrefix(etag, "W/") || lastMod == "" {
		t.Fatalf("want a strong ETag and Last-Modified, got %q %q", etag, lastMod)
	}
	if r := e.get("/feed.xml", identity); r.header.Get("ETag") != etag {
		t.Fatalf("ETag changed without a change: %q then %q", etag, r.header.Get("ETag"))
	}

	r := e.get("/feed.xml", map[string]string{"Accept-Encoding": "identity", "If-None-Match": etag})
	if r.status != http.StatusNotModified || r.body != "" {
		t.Fatalf("If-None-Match: %d, %d bytes", r.status, len(r.body))
	}
	r = e.get("/feed.xml", map[string]string{"Accept-Encoding": "identity", "If-Modified-Since": lastMod})
	if r.status != http.StatusNotModified {
		t.Fatalf("If-Modified-Since: %d", r.status)
	}
	r = e.get("/feed.xml", map[string]string{"Accept-Encoding": "identity", "If-None-Match": `"something-else"`})
	if r.status != http.StatusOK {
		t.Fatalf("non-matching If-None-Match: %d", r.status)
	}

	// A rebuilt feed gets a new ETag, and the old one no longer matches.
	changed := rewriteLater(t, path)
	r = e.get("/feed.xml", map[string]string{"Accept-Encoding": "identity", "If-None-Match": etag})
	if r.status != http.StatusOK || r.body != changed || r.header.Get("ETag") == etag {
		t.Fatalf("after a change: %d, ETag %q (old %q)", r.status, r.header.Get("ETag"), etag)
	}
}

func TestGzip(t *testing.T) {
	e := newEnv(t, nil)
	e.writeOut("feed.xml", sampleRSS)
	r := e.get("/feed.xml", map[string]string{"Accept-Encoding": "br, gzip;q=0.8"})
	if r.header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q", r.header.Get("Content-Encoding"))
	}
	if !strings.Contains(r.header.Get("Vary"), "Accept-Encoding") {
		t.Fatalf("Vary %q", r.header.Get("Vary"))
	}
	zr, err := gzip.NewReader(strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil || string(plain) != sampleRSS {
		t.Fatalf("gunzipped body differs (err %v)", err)
	}
	gzETag := r.header.Get("ETag")
	identity := e.get("/feed.xml", map[string]string{"Accept-Encoding": "identity"})
	if gzETag == identity.header.Get("ETag") {
		t.Fatal("the gzip and identity representations share an ETag")
	}
	if r := e.get("/feed.xml", map[string]string{"Accept-Encoding": "gzip", "If-None-Match": gzETag}); r.status != http.StatusNotModified {
		t.Fatalf("conditional gzip GET: %d", r.status)
	}
	for _, ae := range []string{"gzip;q=0", "", "identity"} {
		if r := e.get("/feed.xml", map[string]string{"Accept-Encoding": ae}); r.header.Get("Content-Encoding") != "" || r.body != sampleRSS {
			t.Errorf("Accept-Encoding %q: got encoding %q", ae, r.header.Get("Content-Encoding"))
		}
	}
}

// rawGet sends a request line exactly as written, bypassing the client's own
// path cleaning.
func rawGet(t *testing.T, addr, target string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET "+target+" HTTP/1.1\r\nHost: "+addr+"\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestNoPathEscapeNoListing(t *testing.T) {
	e := newEnv(t, nil)
	const secret = "TOP-SECRET-DATABASE-CONTENT"
	outside := filepath.Join(filepath.Dir(e.out), "secret.txt")
	if err := os.WriteFile(outside, []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(e.out, "link.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Dir(e.out), filepath.Join(e.out, "up")); err != nil {
		t.Fatal(err)
	}
	e.writeOut(".tmp-feed.xml", secret)
	e.writeOut("topics/economy/feed.xml", "feed")

	addr := e.ts.Listener.Addr().String()
	for _, target := range []string{
		"/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt", "/topics/../../secret.txt",
		"/link.txt", "/up/secret.txt", "/.tmp-feed.xml", "/..\\secret.txt", "/%2e%2e%5csecret.txt",
	} {
		status, body := rawGet(t, addr, target)
		if status == http.StatusOK || strings.Contains(body, secret) {
			t.Errorf("%s: status %d, body leaks: %v", target, status, strings.Contains(body, secret))
		}
	}
	// A folder without index.html is not listed.
	r := e.get("/topics/economy/", nil)
	if r.status != http.StatusNotFound || strings.Contains(r.body, "feed.xml") {
		t.Fatalf("folder listing: %d %q", r.status, r.body)
	}
	req, _ := http.NewRequest(http.MethodPut, e.ts.URL+"/feed.xml", strings.NewReader("x"))
	if r := e.do(req); r.status != http.StatusMethodNotAllowed {
		t.Fatalf("PUT: %d", r.status)
	}
}

func TestHeadAndNotBuilt(t *testing.T) {
	e := newEnv(t, nil)
	e.writeOut("feed.json", `{"version":"https://jsonfeed.org/version/1.1"}`)
	req, _ := http.NewRequest(http.MethodHead, e.ts.URL+"/feed.json", nil)
	if r := e.do(req); r.status != 200 || r.body != "" || r.header.Get("ETag") == "" {
		t.Fatalf("HEAD: %d %q", r.status, r.body)
	}
	if err := os.RemoveAll(e.out); err != nil {
		t.Fatal(err)
	}
	if r := e.get("/feed.json", nil); r.status != http.StatusNotFound {
		t.Fatalf("output not built: %d", r.status)
	}
}

// TestGzipOncePerFileVersion: a feed polled by every reader is compressed once
// per version of the file, not once per request.
func TestGzipOncePerFileVersion(t *testing.T) {
	e := newEnv(t, nil)
	path := e.writeOut("feed.xml", sampleRSS)
	gz := map[string]string{"Accept-Encoding": "gzip"}
	first := e.get("/feed.xml", gz)
	cached := e.srv.files.items["feed.xml"].gz
	if len(cached) == 0 || first.body != string(cached) {
		t.Fatalf("the compressed copy is not kept (%d bytes)", len(cached))
	}
	for range 3 {
		if r := e.get("/feed.xml", gz); r.body != first.body {
			t.Fatal("a later answer differs")
		}
	}
	if again := e.srv.files.items["feed.xml"].gz; &again[0] != &cached[0] {
		t.Fatal("compressed again for an unchanged file")
	}
	changed := rewriteLater(t, path)
	r := e.get("/feed.xml", gz)
	zr, err := gzip.NewReader(strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if plain, _ := io.ReadAll(zr); string(plain) != changed {
		t.Fatal("the new version was served from the old compressed copy")
	}
}

// TestOutputPendingUntilBuilt: a daemon whose output folder may hold a build for
// other settings serves none of it, and is not ready, until its own build is done.
func TestOutputPendingUntilBuilt(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.OutputPending = true })
	e.writeOut("index.html", "<p>built for another base URL</p>")
	r := e.get("/", nil)
	if r.status != http.StatusServiceUnavailable || strings.Contains(r.body, "another base URL") || r.header.Get("Retry-After") == "" {
		t.Fatalf("before the build: %d %q", r.status, r.body)
	}
	if r := e.get("/readyz", nil); r.status != http.StatusServiceUnavailable {
		t.Fatalf("/readyz before the build: %d", r.status)
	}
	if r := e.get("/healthz", nil); r.status != http.StatusOK {
		t.Fatalf("/healthz before the build: %d", r.status)
	}
	e.srv.OutputBuilt()
	if r := e.get("/", nil); r.status != http.StatusOK {
		t.Fatalf("after the build: %d", r.status)
	}
	if r := e.get("/readyz", nil); r.status != http.StatusOK {
		t.Fatalf("/readyz after the build: %d %s", r.status, r.body)
	}
}

func TestAcceptsGzip(t *testing.T) {
	for header, want := range map[string]bool{
		"gzip": true, "gzip, deflate, br": true, "GZIP;q=0.5": true, "*": true,
		"": false, "identity": false, "gzip;q=0": false, "*;q=0": false, "br, *;q=0.1": true,
		"gzip;q=0, *": false, "x-gzip": true,
	} {
		if got := acceptsGzip(header); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", header, got, want)
		}
	}
}

func BenchmarkStaticFeed(b *testing.B) {
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "feed.xml"), bytes.Repeat([]byte(sampleRSS), 50), 0o644); err != nil {
		b.Fatal(err)
	}
	s := &Server{opts: Options{OutputDir: dir}, files: newFileCache()}
	s.built.Store(true)
	req, _ := http.NewRequest(http.MethodGet, "/feed.xml", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	b.ResetTimer()
	for b.Loop() {
		w := &discardWriter{h: http.Header{}}
		s.static(w, req)
	}
}

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

// rewriteLater changes the sample feed at path, with a later modification time.
func rewriteLater(t *testing.T, path string) string {
	t.Helper()
	changed := strings.Replace(sampleRSS, "Grain prices rose", "Grain prices fell", 1)
	if err := os.WriteFile(path, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(2 * time.Second)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	return changed
}
