package web

import (
	"bytes"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"publisher/internal/browsertest"
	"publisher/internal/content"
	"publisher/internal/site"
	"publisher/internal/store"
)

// render loads url in headless Chromium and returns the DOM after parsing and
// what the browser logged (console messages, CSP refusals). It also takes a
// screenshot, which must come out as a PNG. Chromium is Debian's, which the
// project's test script installs; the test fails, never skips, when it is
// missing, and a browser that crashes is run again (browsertest).
func render(t *testing.T, url string) (dom, log string) {
	t.Helper()
	shot := filepath.Join(t.TempDir(), "page.png")
	stdout, stderr := browsertest.RunLogged(t, "--enable-logging=stderr", "--v=0", "--window-size=800,1200", "--dump-dom", url)
	browsertest.Run(t, "--window-size=800,1200", "--screenshot="+shot, url)
	png, err := os.ReadFile(shot)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 1000 {
		t.Fatalf("no usable screenshot of %s (err %v, %d bytes)", url, err, len(png))
	}
	return string(stdout), string(stderr)
}

func assertNoCSPRefusal(t *testing.T, page, log string) {
	t.Helper()
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "Content Security Policy") {
			t.Errorf("%s: the browser refused something under our CSP: %s", page, line)
		}
	}
}

func TestBrowserRendersArchiveSignUpForm(t *testing.T) {
	e := newEnv(t, nil)
	s, err := site.New(site.Options{
		Title: "Desk Notes", Description: "Notes from the desk", BaseURL: e.base,
		SubscribeAction: e.base + "subscribe", DefaultCadence: "daily",
	})
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	files, err := s.Render([]content.Piece{{
		ID: "grain-corridor", Slug: "grain-corridor", File: "grain-corridor.md",
		Title: "The grain corridor after the winter", Date: day, FirstSeen: day,
		Authors: []content.Author{{Name: "Ira Analyst", Role: "Fellow"}},
		Summary: "Freight rates, insurance and the ports.", Topics: []string{"Economy"},
		HTML: "<p>Freight rates eased in February.</p>",
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		e.writeOut(f.Path, string(f.Data))
	}

	dom, log := render(t, e.base)
	assertNoCSPRefusal(t, "archive index", log)
	forms, scripts := formsOf(t, dom)
	if scripts != 0 {
		t.Errorf("archive page has %d scripts", scripts)
	}
	var signup *form
	for i := range forms {
		if _, ok := forms[i].inputs["email"]; ok {
			signup = &forms[i]
		}
	}
	if signup == nil {
		t.Fatalf("no sign-up form in the rendered archive page:\n%s", dom)
	}
	action, err := url.Parse(e.base)
	if err == nil {
		action, err = action.Parse(signup.action)
	}
	if err != nil || action.Path != "/subscribe" || signup.method != "post" || signup.buttons == 0 {
		t.Fatalf("sign-up form: method %q action %q (%v), %d buttons", signup.method, signup.action, err, signup.buttons)
	}
	// Post what the browser would send from this form: the server takes it.
	form := url.Values{}
	for name, value := range signup.inputs {
		form.Set(name, value)
	}
	form.Set("email", "browser@example.org")
	if r := e.postForm(action.Path, form, nil); r.status != 200 {
		t.Fatalf("posting the archive's form: %d %s", r.status, r.body)
	}
	if got := e.subscriber("browser@example.org").Status; got != store.StatusPending {
		t.Fatalf("status after the archive form: %q", got)
	}
}

func TestBrowserRendersUnsubscribePage(t *testing.T) {
	e := newEnv(t, nil)
	sub := e.addSubscriber("chrome@example.org", store.StatusActive)
	tok := e.signer.Sign(PurposeUnsubscribe, sub.ID, time.Time{})
	dom, log := render(t, e.base+"unsubscribe?token="+tok)
	assertNoCSPRefusal(t, "unsubscribe page", log)
	forms, scripts := formsOf(t, dom)
	if len(forms) != 1 || scripts != 0 {
		t.Fatalf("%d forms and %d scripts in the rendered page:\n%s", len(forms), scripts, dom)
	}
	f := forms[0]
	if f.method != "post" || f.buttons != 1 || f.inputs["token"] != tok {
		t.Fatalf("rendered form: %+v", f)
	}
	action, _ := url.Parse(e.base + "unsubscribe?token=" + tok)
	action, _ = action.Parse(f.action)
	if action.Path != "/unsubscribe" {
		t.Fatalf("form posts to %s", action)
	}
	if !strings.Contains(dom, "chrome@example.org") {
		t.Fatal("the page does not say which address it unsubscribes")
	}
	// Rendering the page (as a link scanner would) unsubscribed nobody.
	if got := e.subscriber("chrome@example.org").Status; got != store.StatusActive {
		t.Fatalf("status after rendering: %q", got)
	}
}
