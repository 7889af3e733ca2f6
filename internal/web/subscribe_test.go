package web

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	nethtml "golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"publisher/internal/store"
	"publisher/internal/token"
)

func signupForm(email string) url.Values {
	return url.Values{"email": {email}, "name": {"Ala Reader"}, "topics": {"economy", "Energy"}, "cadence": {"weekly"}}
}

func TestSubscribeConfirmRoundTrip(t *testing.T) {
	e := newEnv(t, nil)
	r := e.postForm("/subscribe", signupForm("Ala@Example.org"), nil)
	if r.status != http.StatusOK || !strings.Contains(r.body, "Check your inbox") {
		t.Fatalf("subscribe: %d %s", r.status, r.body)
	}
	sub := e.subscriber("ala@example.org")
	if sub.Status != store.StatusPending || sub.Source != store.SourceWeb || sub.ConsentSource != store.SourceWeb {
		t.Fatalf("after sign-up: status %q source %q consent %q", sub.Status, sub.Source, sub.ConsentSource)
	}
	if sub.ConsentIP != "127.0.0.1" || sub.JoinedAt.IsZero() {
		t.Fatalf("consent not recorded: ip %q joined %s", sub.ConsentIP, sub.JoinedAt)
	}
	if sub.Cadence != "weekly" || strings.Join(sub.Topics, ",") != "Economy,Energy" {
		t.Fatalf("preferences: %q %q", sub.Cadence, sub.Topics)
	}

	header, text, htmlPart := mailParts(t, e.smtp.waitMessage(t, 1))
	if to := header.Get("To"); !strings.Contains(to, "ala@example.org") {
		t.Fatalf("To: %q", to)
	}
	if subj := header.Get("Subject"); !strings.Contains(subj, "Confirm your subscription") {
		t.Fatalf("Subject: %q", subj)
	}
	if header.Get("Message-Id") == "" || !strings.Contains(header.Get("Message-Id"), "@desk.example.org>") {
		t.Fatalf("Message-Id: %q", header.Get("Message-Id"))
	}
	link := confirmLink.FindString(text)
	if link == "" || !strings.HasPrefix(link, e.base+"confirm?token=") {
		t.Fatalf("no confirmation link on BaseURL in the text part:\n%s", text)
	}
	if !strings.Contains(htmlPart, html.EscapeString(link)) && !strings.Contains(htmlPart, link) {
		t.Fatalf("HTML part lacks the link")
	}
	// "the The Eastern Desk digest" read badly: the site is named as itself.
	if !strings.Contains(strings.Join(strings.Fields(text), " "), "asked to receive digests from Desk Notes at this address") || !strings.Contains(htmlPart, "asked to receive digests from Desk Notes at this address") {
		t.Fatalf("the confirmation does not name the site as itself:\n%s", text)
	}
	if !strings.Contains(text, "Ala Reader") || !strings.Contains(text, "2 days") {
		t.Fatalf("text part not personalised:\n%s", text)
	}

	u, _ := url.Parse(link)
	r = e.get(u.RequestURI(), nil)
	if r.status != http.StatusOK || !strings.Contains(r.body, "subscribed") {
		t.Fatalf("confirm: %d %s", r.status, r.body)
	}
	if r.header.Get("Referrer-Policy") != "no-referrer" || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("token page headers: %q %q", r.header.Get("Referrer-Policy"), r.header.Get("Cache-Control"))
	}
	sub = e.subscriber("ala@example.org")
	if sub.Status != store.StatusActive || sub.ConfirmedAt.IsZero() {
		t.Fatalf("after confirm: %q, confirmed %s", sub.Status, sub.ConfirmedAt)
	}
	// A second click changes nothing and still says yes.
	if r := e.get(u.RequestURI(), nil); r.status != http.StatusOK {
		t.Fatalf("second confirm: %d", r.status)
	}
}

func TestConfirmDoesNotLiftSuppression(t *testing.T) {
	e := newEnv(t, nil)
	sub := e.addSubscriber("gone@example.org", store.StatusUnsubscribed)
	tok := e.signer.Sign(PurposeConfirm, sub.ID, time.Now().Add(time.Hour))
	if r := e.get("/confirm?token="+tok, nil); r.status != http.StatusBadRequest {
		t.Fatalf("confirm for a suppressed address: %d", r.status)
	}
	if got := e.subscriber("gone@example.org").Status; got != store.StatusUnsubscribed {
		t.Fatalf("status %q", got)
	}
}

// TestNoEnumeration: new, pending, active and suppressed addresses get the same
// answer; only the first two get a confirmation email.
func TestNoEnumeration(t *testing.T) {
	e := newEnv(t, nil)
	e.addSubscriber("active@example.org", store.StatusActive)
	e.addSubscriber("left@example.org", store.StatusUnsubscribed)
	e.addSubscriber("bounced@example.org", store.StatusBounced)
	if r := e.postForm("/subscribe", signupForm("pending@example.org"), nil); r.status != 200 {
		t.Fatalf("first sign-up: %d", r.status)
	}
	e.smtp.waitMessage(t, 1)

	var first response
	for i, email := range []string{"new@example.org", "pending@example.org", "active@example.org", "left@example.org", "bounced@example.org"} {
		r := e.postForm("/subscribe", signupForm(email), nil)
		if i == 0 {
			first = r
			continue
		}
		if r.status != first.status || r.body != first.body {
			t.Errorf("%s: answer differs from a new address's: %d vs %d\n%s\n---\n%s", email, r.status, first.status, r.body, first.body)
		}
		for _, h := range []string{"Content-Type", "Content-Length", "Cache-Control", "Set-Cookie"} {
			if r.header.Get(h) != first.header.Get(h) {
				t.Errorf("%s: header %s differs: %q vs %q", email, h, r.header.Get(h), first.header.Get(h))
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var to []string
	for _, raw := range e.smtp.messages() {
		h, _, _ := mailParts(t, raw)
		to = append(to, h.Get("To"))
	}
	if len(to) != 3 || !strings.Contains(to[0], "pending@") {
		t.Fatalf("emails went to %q; want pending, then new and pending again", to)
	}
	joined := strings.Join(to, " ")
	for _, quiet := range []string{"active@", "left@", "bounced@"} {
		if strings.Contains(joined, quiet) {
			t.Errorf("a confirmation went to %s", quiet)
		}
	}
	// The sign-up did not touch the known addresses' state or preferences.
	if s := e.subscriber("left@example.org"); s.Status != store.StatusUnsubscribed || s.Cadence != "daily" {
		t.Fatalf("suppressed address changed: %q %q", s.Status, s.Cadence)
	}
	if s := e.subscriber("active@example.org"); s.Cadence != "daily" || len(s.Topics) != 0 {
		t.Fatalf("active address's preferences changed by a stranger: %q %q", s.Cadence, s.Topics)
	}
}

func TestSubscribeValidation(t *testing.T) {
	e := newEnv(t, nil)
	cases := map[string]url.Values{
		"no email":       {"email": {""}},
		"not an address": {"email": {"not-an-address"}},
		"display name":   {"email": {"Eve <eve@example.org>"}},
		"CRLF in email":  {"email": {"eve@example.org\r\nBcc: victim@example.org"}},
		"CRLF in name":   {"email": {"eve@example.org"}, "name": {"Eve\r\nBcc: victim@example.org"}},
		"LF in name":     {"email": {"eve@example.org"}, "name": {"Eve\nX"}},
		"long name":      {"email": {"eve@example.org"}, "name": {strings.Repeat("n", 101)}},
		"unknown topic":  {"email": {"eve@example.org"}, "topics": {"Astrology"}},
		"bad cadence":    {"email": {"eve@example.org"}, "cadence": {"hourly"}},
	}
	for name, form := range cases {
		r := e.postForm("/subscribe", form, nil)
		if r.status != http.StatusBadRequest {
			t.Errorf("%s: status %d", name, r.status)
		}
	}
	if _, err := e.st.SubscriberByEmail(context.Background(), "eve@example.org"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an invalid sign-up was stored: %v", err)
	}
	// An internationalised domain is a real address.
	if r := e.postForm("/subscribe", url.Values{"email": {"reader@пример.бел"}}, nil); r.status != http.StatusOK {
		t.Fatalf("IDN address: %d %s", r.status, r.body)
	}
	if got := e.subscriber("reader@пример.бел").Cadence; got != "daily" {
		t.Fatalf("default cadence: %q", got)
	}
}

func TestNothingEchoedUnescaped(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Topics = nil }) // any topic name accepted
	payloads := []string{`<script>alert(1)</script>`, `"><img src=x onerror=alert(1)>`, `<svg/onload=alert(1)>`}
	for _, p := range payloads {
		for _, form := range []url.Values{
			{"email": {p + "@example.org"}},
			{"email": {"x@example.org"}, "topics": {p}, "cadence": {p}},
			{"email": {p}, "name": {p + "\r\n"}},
		} {
			r := e.postForm("/subscribe", form, nil)
			if strings.Contains(r.body, p) {
				t.Errorf("payload %q echoed raw (status %d)", p, r.status)
			}
		}
		// Token pages carry the token back into a hidden field: it must be escaped.
		for _, path := range []string{"/confirm", "/unsubscribe", "/preferences"} {
			r := e.get(path+"?token="+url.QueryEscape(p), nil)
			if r.status != http.StatusBadRequest || strings.Contains(r.body, p) {
				t.Errorf("%s with token %q: %d, echoed %v", path, p, r.status, strings.Contains(r.body, p))
			}
		}
	}
	// A stored topic with markup comes back escaped on the preferences page.
	sub := e.addSubscriber("topics@example.org", store.StatusActive)
	if err := e.st.SetPreferences(context.Background(), sub.ID, []string{payloads[0]}, "daily", time.Now()); err != nil {
		t.Fatal(err)
	}
	r := e.get("/preferences?token="+e.signer.Sign(PurposePreferences, sub.ID, time.Time{}), nil)
	if r.status != 200 || strings.Contains(r.body, payloads[0]) || !strings.Contains(r.body, "&lt;script&gt;") {
		t.Fatalf("preferences page with a markup topic: %d\n%s", r.status, r.body)
	}
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.RateLimit = 3 })
	for i := range 3 {
		if r := e.postForm("/subscribe", signupForm("rate@example.org"), nil); r.status != http.StatusOK {
			t.Fatalf("request %d: %d", i+1, r.status)
		}
	}
	r := e.postForm("/subscribe", signupForm("other@example.org"), nil)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("4th request: %d, Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
	if _, err := e.st.SubscriberByEmail(context.Background(), "other@example.org"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a rate-limited sign-up was stored: %v", err)
	}
	// Other endpoints are not limited.
	if r := e.get("/healthz", nil); r.status != 200 {
		t.Fatalf("healthz after the limit: %d", r.status)
	}
}

func TestKeyedLimiterForgetsIdleKeys(t *testing.T) {
	k := newKeyedLimiter(2, time.Minute)
	now := time.Now()
	var got []bool
	for range 3 {
		got = append(got, k.Allow("a", now))
	}
	if !got[0] || !got[1] || got[2] {
		t.Fatalf("allowed %v, want two events then a refusal", got)
	}
	for i := range 100 {
		k.Allow(string(rune('b'+i)), now)
	}
	later := now.Add(2 * time.Minute)
	if !k.Allow("a", later) {
		t.Fatal("the bucket did not refill")
	}
	if n := k.size(); n != 1 {
		t.Fatalf("%d buckets kept after the idle period, want 1", n)
	}
}

func TestClientIPBehindTrustedProxy(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.RateLimit = 1
		o.TrustedProxies = trusted(t, "127.0.0.0/8")
	})
	for _, client := range []string{"203.0.113.7", "203.0.113.8"} {
		r := e.postForm("/subscribe", signupForm("p@example.org"), map[string]string{"X-Forwarded-For": "198.51.100.1, " + client})
		if r.status != http.StatusOK {
			t.Fatalf("client %s: %d", client, r.status)
		}
	}
	if r := e.postForm("/subscribe", signupForm("p@example.org"), map[string]string{"X-Forwarded-For": "203.0.113.7"}); r.status != http.StatusTooManyRequests {
		t.Fatalf("second request of one client: %d", r.status)
	}
	if got := e.subscriber("p@example.org").ConsentIP; got != "203.0.113.7" {
		t.Fatalf("consent IP %q", got)
	}
}

func TestOneClickUnsubscribe(t *testing.T) {
	e := newEnv(t, nil)
	sub := e.addSubscriber("reader@example.org", store.StatusActive)
	tok := e.signer.Sign(PurposeUnsubscribe, sub.ID, time.Time{})
	// Exactly what a mail provider sends (RFC 8058): POST to the
	// List-Unsubscribe URL, this body, no cookies, no Origin, no Sec-Fetch-*.
	req, err := http.NewRequest(http.MethodPost, e.base+"unsubscribe?token="+tok, strings.NewReader("List-Unsubscribe=One-Click"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r := e.do(req)
	if r.status != http.StatusOK {
		t.Fatalf("one-click: %d %s", r.status, r.body)
	}
	if r.header.Get("Location") != "" || r.header.Get("Set-Cookie") != "" {
		t.Fatalf("one-click answered with a redirect or cookie: %q %q", r.header.Get("Location"), r.header.Get("Set-Cookie"))
	}
	if got := e.subscriber("reader@example.org").Status; got != store.StatusUnsubscribed {
		t.Fatalf("status %q, want unsubscribed", got)
	}
	// Repeating it is harmless, and a bounced address stays bounced.
	bounced := e.addSubscriber("bounced@example.org", store.StatusBounced)
	req, _ = http.NewRequest(http.MethodPost, e.base+"unsubscribe?token="+e.signer.Sign(PurposeUnsubscribe, bounced.ID, time.Time{}), strings.NewReader("List-Unsubscribe=One-Click"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if r := e.do(req); r.status != 200 || e.subscriber("bounced@example.org").Status != store.StatusBounced {
		t.Fatalf("one-click on a bounced address: %d %q", r.status, e.subscriber("bounced@example.org").Status)
	}
}

// formsOf parses a page and returns its forms as (method, action, inputs, buttons).
type form struct {
	method, action string
	inputs         map[string]string
	buttons        int
}

func formsOf(t *testing.T, page string) (forms []form, scripts int) {
	t.Helper()
	doc, err := nethtml.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var cur *form
	var walk func(n *nethtml.Node)
	walk = func(n *nethtml.Node) {
		if n.Type == nethtml.ElementNode {
			attr := func(k string) string {
				for _, a := range n.Attr {
					if a.Key == k {
						return a.Val
					}
				}
				return ""
			}
			switch n.DataAtom {
			case atom.Script:
				scripts++
			case atom.Form:
				forms = append(forms, form{method: strings.ToLower(attr("method")), action: attr("action"), inputs: map[string]string{}})
				cur = &forms[len(forms)-1]
				for c := n.FirstChild; c != nil; c = c.NextSibling {
					walk(c)
				}
				cur = nil
				return
			case atom.Input, atom.Select:
				if cur != nil {
					if attr("type") == "submit" {
						cur.buttons++
					} else if name := attr("name"); name != "" {
						cur.inputs[name] = attr("value")
					}
				}
			case atom.Button:
				if cur != nil && attr("type") != "button" {
					cur.buttons++
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return forms, scripts
}

func TestUnsubscribePageHasOneButton(t *testing.T) {
	e := newEnv(t, nil)
	sub := e.addSubscriber("page@example.org", store.StatusActive)
	tok := e.signer.Sign(PurposeUnsubscribe, sub.ID, time.Time{})
	r := e.get("/unsubscribe?token="+tok, nil)
	if r.status != 200 {
		t.Fatalf("GET: %d", r.status)
	}
	if r.header.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("Referrer-Policy %q", r.header.Get("Referrer-Policy"))
	}
	csp := r.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "form-action 'self'") {
		t.Fatalf("CSP %q", csp)
	}
	forms, scripts := formsOf(t, r.body)
	if len(forms) != 1 || scripts != 0 {
		t.Fatalf("%d forms, %d scripts", len(forms), scripts)
	}
	f := forms[0]
	if f.method != "post" || f.buttons != 1 || f.inputs["token"] != tok || len(f.inputs) != 1 {
		t.Fatalf("form: %+v", f)
	}
	resolved, _ := url.Parse(e.base + "unsubscribe?token=" + tok)
	action, _ := resolved.Parse(f.action)
	if action.Path != "/unsubscribe" {
		t.Fatalf("form posts to %q", action)
	}
	// The GET changed nothing; pressing the button does.
	if got := e.subscriber("page@example.org").Status; got != store.StatusActive {
		t.Fatalf("GET unsubscribed the reader: %q", got)
	}
	r = e.postForm(action.Path, url.Values{"token": {tok}}, nil)
	if r.status != 200 || !strings.Contains(r.body, "unsubscribed") {
		t.Fatalf("POST: %d", r.status)
	}
	if got := e.subscriber("page@example.org").Status; got != store.StatusUnsubscribed {
		t.Fatalf("status %q", got)
	}
}

func TestBadTokensRefused(t *testing.T) {
	e := newEnv(t, nil)
	sub := e.addSubscriber("target@example.org", store.StatusPending)
	other, _ := token.New("another secret")
	good := e.signer.Sign(PurposeUnsubscribe, sub.ID, time.Time{})
	altered := []byte(good)
	altered[len(altered)-2] ^= 1
	forgedID := e.signer.Sign(PurposeUnsubscribe, sub.ID+1, time.Time{})
	forgedID = strings.SplitN(good, ".", 2)[0] + "." + strings.SplitN(forgedID, ".", 2)[1]

	cases := map[string]string{
		"forged (other secret)":     other.Sign(PurposeUnsubscribe, sub.ID, time.Time{}),
		"altered signature":         string(altered),
		"spliced id":                forgedID,
		"wrong purpose":             e.signer.Sign(PurposeConfirm, sub.ID, time.Now().Add(time.Hour)),
		"empty":                     "",
		"garbage":                   "a.b.c",
		"expired confirm as unsubs": e.signer.Sign(PurposeConfirm, sub.ID, time.Now().Add(-time.Minute)),
	}
	var body string
	for name, tok := range cases {
		for _, try := range []func() response{
			func() response { return e.get("/unsubscribe?token="+url.QueryEscape(tok), nil) },
			func() response { return e.postForm("/unsubscribe", url.Values{"token": {tok}}, nil) },
			func() response { return e.get("/preferences?token="+url.QueryEscape(tok), nil) },
		} {
			r := try()
			if r.status != http.StatusBadRequest {
				t.Errorf("%s: status %d", name, r.status)
			}
			if body == "" {
				body = r.body
			} else if r.body != body {
				t.Errorf("%s: the refusal tells one failure from another", name)
			}
		}
	}
	expired := e.signer.Sign(PurposeConfirm, sub.ID, time.Now().Add(-time.Second))
	if r := e.get("/confirm?token="+expired, nil); r.status != http.StatusBadRequest || !strings.Contains(r.body, "not valid") {
		t.Fatalf("expired confirm: %d", r.status)
	}
	if r := e.get("/confirm?token="+other.Sign(PurposeConfirm, sub.ID, time.Now().Add(time.Hour)), nil); r.status != http.StatusBadRequest {
		t.Fatalf("forged confirm: %d", r.status)
	}
	missing := e.signer.Sign(PurposeUnsubscribe, 999999, time.Time{})
	if r := e.get("/unsubscribe?token="+missing, nil); r.status != http.StatusBadRequest {
		t.Fatalf("token for a subscriber that does not exist: %d", r.status)
	}
	if got := e.subscriber("target@example.org").Status; got != store.StatusPending {
		t.Fatalf("status changed by a bad token: %q", got)
	}
}

func TestPreferences(t *testing.T) {
	e := newEnv(t, nil)
	sub := e.addSubscriber("prefs@example.org", store.StatusActive)
	tok := e.signer.Sign(PurposePreferences, sub.ID, time.Time{})
	r := e.get("/preferences?token="+tok, nil)
	if r.status != 200 || r.header.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("GET: %d %q", r.status, r.header.Get("Referrer-Policy"))
	}
	forms, _ := formsOf(t, r.body)
	if len(forms) != 1 || forms[0].inputs["token"] != tok || forms[0].method != "post" {
		t.Fatalf("forms: %+v", forms)
	}
	for _, topic := range []string{"Economy", "Energy", "Belarus"} {
		if !strings.Contains(r.body, `value="`+topic+`"`) {
			t.Errorf("no checkbox for %s", topic)
		}
	}
	r = e.postForm("/preferences", url.Values{"token": {tok}, "topics": {"belarus", "Energy"}, "cadence": {"immediate"}}, nil)
	if r.status != 200 || !strings.Contains(r.body, "Saved") {
		t.Fatalf("POST: %d %s", r.status, r.body)
	}
	got := e.subscriber("prefs@example.org")
	if got.Cadence != "immediate" || strings.Join(got.Topics, ",") != "Belarus,Energy" {
		t.Fatalf("stored %q %q", got.Cadence, got.Topics)
	}
	if !strings.Contains(r.body, `value="Belarus" checked`) {
		t.Fatal("saved page does not show the new choice")
	}
	if r := e.postForm("/preferences", url.Values{"token": {tok}, "cadence": {"hourly"}}, nil); r.status != http.StatusBadRequest {
		t.Fatalf("bad cadence: %d", r.status)
	}
	if got := e.subscriber("prefs@example.org").Cadence; got != "immediate" {
		t.Fatalf("a refused form changed the cadence to %q", got)
	}
}

func TestCrossOriginPostsRefused(t *testing.T) {
	e := newEnv(t, nil)
	sub := e.addSubscriber("csrf@example.org", store.StatusActive)
	prefTok := e.signer.Sign(PurposePreferences, sub.ID, time.Time{})
	crossSite := map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}

	r := e.postForm("/preferences", url.Values{"token": {prefTok}, "cadence": {"weekly"}}, crossSite)
	if r.status != http.StatusForbidden {
		t.Fatalf("cross-site preferences POST: %d", r.status)
	}
	if got := e.subscriber("csrf@example.org").Cadence; got != "daily" {
		t.Fatalf("cross-site POST changed the cadence to %q", got)
	}
	if r := e.postForm("/subscribe", signupForm("victim@example.org"), crossSite); r.status != http.StatusForbidden {
		t.Fatalf("cross-site subscribe: %d", r.status)
	}
	// An old browser: no Sec-Fetch-Site, an Origin that is not ours.
	if r := e.postForm("/preferences", url.Values{"token": {prefTok}, "cadence": {"weekly"}}, map[string]string{"Sec-Fetch-Site": "", "Origin": "https://evil.example"}); r.status != http.StatusForbidden {
		t.Fatalf("foreign Origin: %d", r.status)
	}
	unsubTok := e.signer.Sign(PurposeUnsubscribe, sub.ID, time.Time{})
	if r := e.postForm("/unsubscribe", url.Values{"token": {unsubTok}}, crossSite); r.status != http.StatusForbidden {
		t.Fatalf("cross-site unsubscribe form: %d", r.status)
	}
	// The RFC 8058 one-click POST still works, whatever headers come with it.
	r = e.postForm("/unsubscribe?token="+unsubTok, url.Values{"List-Unsubscribe": {"One-Click"}}, crossSite)
	if r.status != http.StatusOK || e.subscriber("csrf@example.org").Status != store.StatusUnsubscribed {
		t.Fatalf("one-click with browser headers: %d %q", r.status, e.subscriber("csrf@example.org").Status)
	}
	// Same-origin posts go through.
	if r := e.postForm("/preferences", url.Values{"token": {prefTok}, "cadence": {"weekly"}}, nil); r.status != http.StatusOK {
		t.Fatalf("same-origin preferences: %d", r.status)
	}
}

func TestMetricsAndHealth(t *testing.T) {
	e := newEnv(t, nil)
	m := e.srv.Metrics()
	m.ObserveRun(RunStats{Start: time.Now().Add(-3 * time.Second), Duration: 3 * time.Second, OK: true, Published: 2, Sent: 5, Failed: 1, Retried: 2, Suppressed: 1, Pending: 3})
	m.SetNextRun(time.Unix(1_900_000_000, 0))
	r := e.get("/metrics", nil)
	if r.status != 200 {
		t.Fatalf("/metrics: %d", r.status)
	}
	for _, want := range []string{
		"publisher_pieces_published_total 2",
		"publisher_digests_sent_total 5",
		"publisher_digests_failed_total 1",
		"publisher_digests_retried_total 2",
		"publisher_suppressions_total 1",
		"publisher_run_duration_seconds_count 1",
		`publisher_runs_total{result="ok"} 1`,
		"publisher_last_success_timestamp_seconds ",
		"publisher_next_run_timestamp_seconds 1.9e+09",
		"publisher_deliveries_pending 3",
		"publisher_last_run_failed_deliveries 1",
		"go_goroutines",
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	if r := e.get("/healthz", nil); r.status != 200 {
		t.Fatalf("/healthz: %d", r.status)
	}
	if r := e.get("/readyz", nil); r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, "nothing built") {
		t.Fatalf("/readyz with nothing built: %d %s", r.status, r.body)
	}
	e.writeOut("index.html", "<p>the front page</p>")
	if r := e.get("/readyz", nil); r.status != 200 {
		t.Fatalf("/readyz on a fresh store: %d %s", r.status, r.body)
	}
	ctx := context.Background()
	if err := HealthCheck(ctx, e.ts.URL+"/healthz"); err != nil {
		t.Fatalf("HealthCheck: %v", err)
	}
	// A run that failed (a refused address, a greylisted retry) is for the
	// metrics: the endpoints stay in service.
	id, err := e.st.StartRun(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.FinishRun(ctx, id, false, "2 deliveries failed", time.Now()); err != nil {
		t.Fatal(err)
	}
	if r := e.get("/readyz", nil); r.status != 200 {
		t.Fatalf("/readyz after a failed run: %d %s", r.status, r.body)
	}
	e.st.Close()
	if r := e.get("/readyz", nil); r.status != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with the store closed: %d", r.status)
	}
	if err := HealthCheck(ctx, e.ts.URL+"/readyz"); err == nil {
		t.Fatal("HealthCheck passed on a 503")
	}
	if r := e.get("/healthz", nil); r.status != 200 {
		t.Fatalf("/healthz with the store closed: %d", r.status)
	}
	// The scrape reads no table: it answers the same with the store closed.
	if r := e.get("/metrics", nil); !strings.Contains(r.body, "publisher_digests_sent_total 5") {
		t.Fatalf("/metrics with the store closed: %d", r.status)
	}
	e.ts.Close()
	if err := HealthCheck(ctx, e.ts.URL+"/healthz"); err == nil {
		t.Fatal("HealthCheck passed with the server gone")
	}
}

// TestAdminSeparate: with http.admin_listen, /metrics and /readyz are not on
// the public listener but on the admin handler.
func TestAdminSeparate(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.AdminSeparate = true })
	e.writeOut("index.html", "<p>front</p>")
	for _, path := range []string{"/metrics", "/readyz"} {
		if r := e.get(path, nil); r.status != http.StatusNotFound {
			t.Errorf("public %s: %d", path, r.status)
		}
	}
	admin := httptest.NewServer(e.srv.AdminHandler())
	defer admin.Close()
	for _, path := range []string{"/metrics", "/readyz", "/healthz"} {
		resp, err := http.Get(admin.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("admin %s: %d", path, resp.StatusCode)
		}
	}
	if r := e.get("/healthz", nil); r.status != 200 {
		t.Errorf("public /healthz: %d", r.status)
	}
}

func TestReadyCheckOption(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Ready = func(context.Context) error { return errors.New("outbox not writable") }
	})
	e.writeOut("index.html", "<p>front</p>")
	if r := e.get("/readyz", nil); r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, "outbox not writable") {
		t.Fatalf("/readyz: %d %s", r.status, r.body)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	_, err := New(Options{BaseURL: "desk.example.org", ConfirmTTL: -1, DefaultCadence: "hourly"})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"OutputDir", "BaseURL", "Templates", "Store", "Signer", "Mailer", "ConfirmTTL", "DefaultCadence"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
}

func trusted(t *testing.T, prefixes ...string) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for _, p := range prefixes {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}

// TestSignupTimingTellsNothing: the answer to POST /subscribe takes as long for
// an address never seen as for one already subscribed (before the answer was
// given ahead of the address's work, a new address cost a SQLite write and
// took three times as long). The two kinds are interleaved, so whatever else
// the machine does slows both alike, and the medians of 50 of each are compared.
func TestSignupTimingTellsNothing(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.RateLimit = 10000 })
	const n = 50
	for i := range n {
		e.addSubscriber(fmt.Sprintf("known%02d@example.org", i), store.StatusActive)
	}
	timed := func(email string) time.Duration {
		start := time.Now()
		if r := e.postForm("/subscribe", signupForm(email), nil); r.status != http.StatusOK {
			t.Fatalf("%s: %d", email, r.status)
		}
		d := time.Since(start)
		// The queued work is not what is timed: let it finish, and what it
		// leaves behind (a closing SMTP session, the collector) settle, before
		// the next answer is timed.
		e.srv.signups.wait()
		time.Sleep(15 * time.Millisecond)
		return d
	}
	// Warm up connections and caches.
	timed("warm@example.org")
	e.srv.signups.wait()
	var fresh, known []time.Duration
	for i := range n {
		known = append(known, timed(fmt.Sprintf("known%02d@example.org", i)))
		fresh = append(fresh, timed(fmt.Sprintf("new%02d@example.org", i)))
	}
	e.srv.signups.wait()
	median := func(d []time.Duration) time.Duration {
		slices.Sort(d)
		return d[len(d)/2]
	}
	mf, mk := median(fresh), median(known)
	t.Logf("median answer: new address %v, subscribed address %v", mf, mk)
	// Within noise: a third of a millisecond, or a third of the smaller median.
	diff := mf - mk
	if diff < 0 {
		diff = -diff
	}
	if diff > 300*time.Microsecond && diff > min(mf, mk)/3 {
		t.Fatalf("medians differ by %v (new %v, subscribed %v): the timing tells members from strangers", diff, mf, mk)
	}
	// And the work was still done after the answers.
	if s := e.subscriber("new07@example.org"); s.Status != store.StatusPending {
		t.Fatalf("new07 after the queue: %q", s.Status)
	}
}

// The daemon's pages wear the archive's frame: each shows the site's header
// (from the layout's "site-header") once, naming the site and linking its
// home and archive.
func TestPagesShowTheSiteHeader(t *testing.T) {
	e := newEnv(t, nil)
	sub := e.addSubscriber("header@example.org", store.StatusActive)
	pages := map[string]response{
		"subscribed":  e.postForm("/subscribe", signupForm("header-new@example.org"), nil),
		"bad token":   e.get("/confirm?token=nonsense", nil),
		"preferences": e.get("/preferences?token="+e.signer.Sign(PurposePreferences, sub.ID, time.Time{}), nil),
		"unsubscribe": e.get("/unsubscribe?token="+e.signer.Sign(PurposeUnsubscribe, sub.ID, time.Time{}), nil),
	}
	for name, r := range pages {
		doc, err := nethtml.Parse(strings.NewReader(r.body))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var headers []*nethtml.Node
		for n := range doc.Descendants() {
			if n.DataAtom == atom.Header {
				headers = append(headers, n)
			}
		}
		if len(headers) != 1 {
			t.Errorf("%s (%d): %d headers", name, r.status, len(headers))
			continue
		}
		var links []string
		for n := range headers[0].Descendants() {
			if n.DataAtom == atom.A {
				for _, a := range n.Attr {
					if a.Key == "href" {
						links = append(links, a.Val+" "+n.FirstChild.Data)
					}
				}
			}
		}
		want := []string{e.base + " Desk Notes", e.base + " Latest", e.base + "archive/ Archive"}
		if !slices.Equal(links, want) {
			t.Errorf("%s: header links %q, want %q", name, links, want)
		}
	}
}
