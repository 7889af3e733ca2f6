package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"publisher/internal/browsertest"
	"publisher/internal/smtptest"
)

// layoutCheck measures pages framed at a phone's width, each in an iframe:
// every element that sticks out of its frame (and is not inside a box that
// scrolls or clips sideways), the page's own scroll width, and the sign-up
// form. Chromium runs its script once every frame has loaded, and prints the
// result with --dump-dom.
const layoutCheck = `<script>
window.addEventListener("load", function () {
  var out = {};
  document.querySelectorAll("iframe").forEach(function (f) {
    var d = f.contentDocument, vw = d.documentElement.clientWidth, wide = [];
    d.body.querySelectorAll("*").forEach(function (el) {
      var r = el.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) return;
      for (var p = el.parentElement; p && p !== d.body; p = p.parentElement) {
        var o = getComputedStyle(p).overflowX;
        if (o === "auto" || o === "scroll" || o === "hidden") return;
      }
      if (r.right > vw + 0.5 || r.left < -0.5) {
        wide.push(el.tagName.toLowerCase() + (el.className ? "." + el.className : "") + " " + Math.round(r.left) + ".." + Math.round(r.right));
      }
    });
    var email = d.querySelector("form[method=post] input[type=email][name=email]");
    var form = email && email.form, button = form && form.querySelector("button[type=submit]");
    out[f.name] = {
      viewport: vw, scrollWidth: d.documentElement.scrollWidth, wide: wide,
      signup: !!(email && button && email.getBoundingClientRect().width > 0 && /subscribe$/.test(form.action)),
      styled: getComputedStyle(d.documentElement).getPropertyValue("--rule").trim() !== ""
    };
  });
  document.getElementById("result").textContent = JSON.stringify(out);
});
</script><pre id="result">pending</pre>`

// layout is what layoutCheck found.
type layout struct {
	Viewport    int      `json:"viewport"`
	ScrollWidth int      `json:"scrollWidth"`
	Wide        []string `json:"wide"`
	Signup      bool     `json:"signup"`
	// Styled: the site's stylesheet applies (its colours are defined).
	Styled bool `json:"styled"`
}

// framer is an HTTP server in front of the daemon, so that the check page
// and the page it frames share an origin: it serves the check page, pages
// kept as the daemon answered a form (/kept/NAME), and everything else from
// the daemon, without the headers that forbid framing (which change nothing
// of the layout). The site's base URL is the framer's, so the pages' own
// images and links are on that origin too.
type framer struct {
	mu   sync.Mutex
	kept map[string][]byte
}

func (f *framer) handler(daemon *url.URL) http.Handler {
	proxy := httputil.NewSingleHostReverseProxy(daemon)
	proxy.ErrorLog = nil
	proxy.ModifyResponse = func(resp *http.Response) error {
		resp.Header.Del("X-Frame-Options")
		csp := resp.Header.Get("Content-Security-Policy")
		resp.Header.Set("Content-Security-Policy", regexp.MustCompile(`;?\s*frame-ancestors[^;]*`).ReplaceAllString(csp, ""))
		return nil
	}
	mux := http.NewServeMux()
	// /grid?w=390&h=844&u=PATH&u=PATH... frames the pages side by side, w by
	// h each, in rows of cols; with check=1 it measures them (layoutCheck).
	mux.HandleFunc("GET /grid", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		fw, fh, cols := atoi(q.Get("w")), atoi(q.Get("h")), atoi(q.Get("cols"))
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!DOCTYPE html><html><body style="margin:0">`)
		for i, u := range q["u"] {
			fmt.Fprintf(w, `<iframe name="%d" src="%s" style="position:absolute;left:%dpx;top:%dpx;width:%dpx;height:%dpx;border:0"></iframe>`,
				i, htmlAttr(u), i%cols*fw, i/cols*fh, fw, fh)
		}
		if q.Get("check") == "1" {
			fmt.Fprint(w, layoutCheck)
		}
		fmt.Fprint(w, `</body></html>`)
	})
	mux.HandleFunc("GET /kept/{name}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		page, ok := f.kept[r.PathValue("name")]
		f.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(page)
	})
	mux.Handle("/", proxy)
	return mux
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func htmlAttr(s string) string {
	return strings.NewReplacer("&", "&amp;", `"`, "&quot;", "<", "&lt;").Replace(s)
}

func (f *framer) keep(name string, page []byte) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.kept[name] = page
	return "/kept/" + name
}

// TestPagesInABrowser renders every kind of page the program makes (the
// archive's, the daemon's forms, a digest's page) in headless Chromium: at a
// phone's width nothing may stick out of the screen, every archive page must
// offer the sign-up form, and each page is photographed, on a desktop and a
// phone, light and dark, into docs/screenshots/ (rewritten only when the
// picture changed).
func TestPagesInABrowser(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	httpPort := freePort(t)
	daemonURL, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d/", httpPort))
	f := &framer{kept: map[string][]byte{}}
	front := httptest.NewServer(f.handler(daemonURL))
	defer front.Close()
	d := newDesk(t, fmt.Sprintf(`site:
  title: The Eastern Desk
  base_url: %s/
  description: Analysis of energy, security and the economy, as the desk publishes it.
  page_size: 3
secret: pages-secret-0123456789abcdef-0123456789
schedule: "@every 1h"
run_at_start: true
http:
  listen: 127.0.0.1:%d
  admin_listen: ""
  rate_limit: 50
mail:
  transport: smtp
  from: The Eastern Desk <digest@desk.example.org>
  smtp:
    host: 127.0.0.1
    port: %d
    tls: none
digest:
  default_cadence: daily
  lookback: 3650d
`, front.URL, httpPort, srv.Port))
	root := repoRoot(t)
	copyTree(t, filepath.Join(root, "content"), filepath.Join(d.dir, "content"))
	// The sample pieces without a date would show the day the test runs:
	// dated here, the pictures stay the same from run to run.
	for name, date := range map[string]string{
		"arctic-shipping-lanes": "2026-11-21", "central-bank-reserves": "2026-10-28", "sanctions-outlook-2027": "2026-11-12",
		"black-sea-grain-insurance": "2026-10-14", "baltic-cable-security": "2026-11-06",
	} {
		sidecar := filepath.Join(d.dir, "content", name+".yaml")
		old, _ := os.ReadFile(sidecar)
		d.write("content/"+name+".yaml", string(old)+"date: "+date+"\n")
	}
	d.write("subscribers/list.csv", "email,name,cadence\nreader@example.org,Rita Reader,immediate\n")
	dm := d.startDaemon(t, httpPort)
	defer dm.stop()

	// The digest the first run sends gives the digest's page and the reader's links.
	digest := bodyOf(waitForMessage(t, srv, "reader@example.org", "View in your browser"))
	link := func(re string) string {
		m := regexp.MustCompile(re).FindString(digest)
		if m == "" {
			t.Fatalf("no %s in the digest:\n%s", re, digest)
		}
		u, err := url.Parse(m)
		if err != nil {
			t.Fatal(err)
		}
		return u.RequestURI()
	}
	view := link(`http://127\.0\.0\.1:\d+/digests/[0-9a-f]+/`)
	prefs := link(`http://127\.0\.0\.1:\d+/preferences\?token=[\w.~%-]+`)
	unsub := link(`http://127\.0\.0\.1:\d+/unsubscribe\?token=[\w.~%-]+`)

	// The pages that answer a form are kept as the daemon answered them.
	post := func(path string, form url.Values) []byte {
		resp, err := http.PostForm(dm.base+strings.TrimPrefix(path, "/"), form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST %s: %d\n%s", path, resp.StatusCode, body)
		}
		return body
	}
	get := func(path string) []byte {
		resp, err := http.Get(dm.base + strings.TrimPrefix(path, "/"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return body
	}
	subscribed := f.keep("subscribed", post("/subscribe", url.Values{"email": {"new.reader@example.org"}, "name": {"Nora New"}, "cadence": {"weekly"}}))
	confirm := regexp.MustCompile(`http://127\.0\.0\.1:\d+/confirm\?token=[\w.~%-]+`).FindString(bodyOf(waitForMessage(t, srv, "new.reader@example.org", "confirm")))
	if confirm == "" {
		t.Fatal("no confirmation link")
	}
	confirmURL, _ := url.Parse(confirm)
	confirmed := f.keep("confirmed", get(confirmURL.RequestURI()))
	unsubscribePage := get(unsub)
	token := regexp.MustCompile(`name="token" value="([^"]+)"`).FindSubmatch(unsubscribePage)
	if token == nil {
		t.Fatalf("no token in the unsubscribe page:\n%s", unsubscribePage)
	}
	prefsPage := f.keep("preferences", get(prefs)) // kept before the reader leaves
	unsubscribed := f.keep("unsubscribed", post("/unsubscribe", url.Values{"token": {string(token[1])}}))

	pages := []struct {
		name, path string
		archive    bool // an archive page: it must offer the sign-up form
	}{
		{"front", "/", true},
		{"piece", "/pieces/lng-contracts-europe/", true},
		{"topic", "/topics/energy/", true},
		{"archive", "/archive/", true},
		{"archive-month", "/archive/2026/11/2/", true},
		{"digest", view, false},
		{"subscribed", subscribed, false},
		{"confirmed", confirmed, false},
		{"preferences", prefsPage, false},
		{"unsubscribe", unsub, false},
		{"unsubscribed", unsubscribed, false},
		{"not-found", "/no-such-page/", false},
	}
	shots := filepath.Join(root, "docs", "screenshots")
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	// One run of Chromium measures every page; one per kind of screen takes
	// every page's picture, framed side by side, cut apart here.
	// A page made too wide, without a form: the check must catch both.
	control := f.keep("control", []byte(`<!DOCTYPE html><html><body><p>Fits.</p><div style="width:600px">Too wide.</div><pre style="overflow-x:auto"><span style="display:inline-block;width:900px">scrolls in its box</span></pre></body></html>`))
	grid := func(w, h, cols int, check bool) string {
		q := url.Values{"w": {strconv.Itoa(w)}, "h": {strconv.Itoa(h)}, "cols": {strconv.Itoa(cols)}}
		for _, p := range pages {
			q.Add("u", p.path)
		}
		if check {
			q.Set("check", "1")
			q.Add("u", control)
		}
		return front.URL + "/grid?" + q.Encode()
	}
	dom := browsertest.Run(t, "--virtual-time-budget=15000", "--dump-dom", grid(390, 844, 4, true))
	m := regexp.MustCompile(`<pre id="result">([^<]*)</pre>`).FindSubmatch(dom)
	if m == nil {
		t.Fatalf("the check did not run:\n%s", dom)
	}
	var measured map[string]layout
	if err := json.Unmarshal([]byte(html.UnescapeString(string(m[1]))), &measured); err != nil {
		t.Fatalf("the check's result %q: %v", m[1], err)
	}
	if c := measured[strconv.Itoa(len(pages))]; c.Signup || c.Styled || len(c.Wide) != 1 || !strings.HasPrefix(c.Wide[0], "div ") {
		t.Fatalf("the check missed the control page's faults: %+v", c)
	}
	for i, p := range pages {
		got, ok := measured[strconv.Itoa(i)]
		switch {
		case !ok || got.Viewport == 0 || got.Viewport > 390:
			t.Errorf("%s: framed at %d px, want at most 390 (%v)", p.name, got.Viewport, ok)
		case got.ScrollWidth > got.Viewport || len(got.Wide) > 0:
			t.Errorf("%s: wider than a %d px phone: scroll width %d, elements %q", p.name, got.Viewport, got.ScrollWidth, got.Wide)
		}
		if p.archive && !got.Signup {
			t.Errorf("%s: no visible sign-up form", p.name)
		}
		// Every page but the digest's (the email's own styles) is in the
		// site's stylesheet.
		if p.name != "digest" && !got.Styled {
			t.Errorf("%s: the site's stylesheet does not apply", p.name)
		}
	}

	for _, v := range []struct {
		name       string
		w, h, cols int
		dark       bool
	}{{"desktop-light", 1280, 1000, 3, false}, {"desktop-dark", 1280, 1000, 3, true}, {"phone-light", 390, 844, 6, false}, {"phone-dark", 390, 844, 6, true}} {
		rows := (len(pages) + v.cols - 1) / v.cols
		file := filepath.Join(t.TempDir(), "shot.png")
		flags := []string{"--virtual-time-budget=15000", fmt.Sprintf("--window-size=%d,%d", v.cols*v.w, rows*v.h), "--screenshot=" + file}
		if v.dark {
			flags = append(flags, "--force-dark-mode")
		}
		browsertest.Run(t, append(flags, grid(v.w, v.h, v.cols, false))...)
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		shot, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: the screenshot: %v", v.name, err)
		}
		for i, p := range pages {
			at := image.Rect(i%v.cols*v.w, i/v.cols*v.h, i%v.cols*v.w+v.w, i/v.cols*v.h+v.h)
			if !at.In(shot.Bounds()) {
				t.Fatalf("%s: the screenshot is %v, too small for %v", v.name, shot.Bounds(), at)
			}
			var b bytes.Buffer
			if err := png.Encode(&b, shot.(interface {
				SubImage(image.Rectangle) image.Image
			}).SubImage(at)); err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(shots, p.name+"-"+v.name+".png")
			if old, err := os.ReadFile(dst); err != nil || !bytes.Equal(old, b.Bytes()) {
				if err := os.WriteFile(dst, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}
