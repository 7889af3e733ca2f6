package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"publisher/internal/esp"
	"publisher/internal/esp/esptest"
	"publisher/internal/mailpittest"
	"publisher/internal/smtptest"
)

// bounceFixture is a report from internal/bounce/testdata with its names
// replaced (addresses, Message-IDs).
func bounceFixture(t *testing.T, name string, replace ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "internal", "bounce", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer(replace...).Replace(string(b))
	for i := 0; i < len(replace); i += 2 {
		if !strings.Contains(s, replace[i+1]) {
			t.Fatalf("%s: %q is not in the fixture", name, replace[i])
		}
	}
	return []byte(s)
}

// messageIDs are the Message-IDs of the digests each recipient got, without
// angle brackets, in the order they came.
func messageIDs(srv *smtptest.Server) map[string][]string {
	out := map[string][]string{}
	for _, m := range srv.Messages() {
		id := strings.Trim(m.Header().Get("Message-Id"), "<>")
		for _, to := range m.To {
			out[to] = append(out[to], id)
		}
	}
	return out
}

// statuses reads subscribers list: status by address.
func (d *desk) statuses() map[string]string {
	d.t.Helper()
	r := d.run("subscribers", "list")
	if r.code != 0 {
		d.t.Fatalf("subscribers list: %d %s", r.code, r.stderr)
	}
	out := map[string]string{}
	for _, line := range strings.Split(r.stdout, "\n")[1:] {
		if f := strings.Fields(line); len(f) >= 2 {
			for _, w := range f[1:] {
				switch w {
				case "active", "pending", "gone", "unsubscribed", "bounced", "complained", "removed":
					out[f[0]] = w
				}
			}
		}
	}
	return out
}

// events reads subscribers export EMAIL: the kinds and effects of its events.
func (d *desk) events(email string) []string {
	d.t.Helper()
	r := d.run("subscribers", "export", email)
	if r.code != 0 {
		d.t.Fatalf("export %s: %d %s", email, r.code, r.stderr)
	}
	var p exported
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
		d.t.Fatal(err)
	}
	var out []string
	for _, e := range p.Events {
		out = append(out, e.Source+" "+e.Kind+" "+e.Effect)
	}
	return out
}

// DSNs and a complaint report delivered into Mailpit, read over POP3 by
// publisher run after it has sent: the right subscribers are bounced or
// complained, the others are untouched, each report counts once, and what is
// no report is deleted with a line in the log.
func TestBounceMailboxReadByRun(t *testing.T) {
	const bounceAddr = "bounces@desk.example.org"
	mp := mailpittest.Start(t, mailpittest.Options{POP3User: bounceAddr, POP3Password: "pop3-e2e-password"})
	srv := smtptest.Start(t, smtptest.Options{})
	d := newDesk(t, smtpConfig(srv.Port, fmt.Sprintf(`bounces:
  address: %s
  pop3:
    host: 127.0.0.1
    port: %d
    username: %s
    tls: none
`, bounceAddr, mp.POP3Port, bounceAddr)))
	d.write("pop3-password", "pop3-e2e-password\n")
	d.env = []string{"PUBLISHER_BOUNCES_POP3_PASSWORD_FILE=" + filepath.Join(d.dir, "pop3-password"), "PUBLISHER_MAIL_BOUNCE_LIMIT=1"}
	d.piece("one", "One", "energy")
	d.write("subscribers/list.csv", "email\nhard@example.org\nverp@example.org\ncomplains@example.org\nfull@example.org\nslow@example.org\n")
	// The mailbox is empty: the run reads it and finds nothing.
	if r := d.run("run"); r.code != 0 || !strings.Contains(r.stderr, "bounce mailbox read") {
		t.Fatalf("first run: %d\n%s", r.code, r.stderr)
	}
	ids := messageIDs(srv)
	for _, to := range []string{"hard@example.org", "verp@example.org", "complains@example.org", "full@example.org", "slow@example.org"} {
		if len(ids[to]) != 1 || ids[to][0] == "" {
			t.Fatalf("digest to %s: Message-IDs %v", to, ids[to])
		}
	}

	userUnknown := bounceFixture(t, "postfix-user-unknown.eml", "ana.petrova=example.org", "hard=example.org",
		"ana.petrova@example.org", "hard@example.org", "digest-12-5@desk.example.org", ids["hard@example.org"][0])
	for _, raw := range [][]byte{
		userUnknown,
		userUnknown, // the same report again (a server that sent it twice): one bounce
		// No Message-ID we know: the VERP return path names the reader.
		bounceFixture(t, "postfix-user-unknown.eml", "ana.petrova=example.org", "verp=example.org",
			"ana.petrova@example.org", "someone.else@example.org", "digest-12-5@desk.example.org", "not-ours@elsewhere.example",
			"4XyZ1b2C3d@relay", "5ZzZ9y8X7w@relay"),
		bounceFixture(t, "arf-abuse.eml", "priya=mailbox.example", "complains=example.org", "priya@mailbox.example", "complains@example.org",
			"digest-13-60@desk.example.org", ids["complains@example.org"][0]),
		bounceFixture(t, "gmail-over-quota.eml", "tomas=example.com", "full=example.org", "tomas@example.com", "full@example.org",
			"digest-13-21@desk.example.org", ids["full@example.org"][0]),
		bounceFixture(t, "postfix-delayed.eml", "ines=example.org", "slow=example.org", "ines@example.org", "slow@example.org",
			"digest-12-52@desk.example.org", ids["slow@example.org"][0]),
		[]byte("From: A Reader <reader@example.net>\r\nTo: " + bounceAddr + "\r\nSubject: Re: your digest\r\nMessage-ID: <human-1@example.net>\r\n\r\nThanks, very useful.\r\n"),
	} {
		mp.Deliver(t, bounceAddr, raw)
	}
	waitFor(t, "Mailpit to hold the 7 messages", func() bool { return mp.Count(t) == 7 })

	d.piece("two", "Two", "energy")
	r := d.run("run")
	if r.code != 0 {
		t.Fatalf("second run: %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "not a delivery report or complaint; deleted") || !strings.Contains(r.stderr, "reader@example.net") {
		t.Errorf("the message that is no report is not logged:\n%s", r.stderr)
	}
	if !strings.Contains(r.stderr, "messages=7 reports=6") || !strings.Contains(r.stderr, "not_reports=1 deleted=7") {
		t.Errorf("the read's summary:\n%s", r.stderr)
	}
	waitFor(t, "Mailpit to be emptied", func() bool { return mp.Count(t) == 0 })

	want := map[string]string{"hard@example.org": "bounced", "verp@example.org": "bounced", "complains@example.org": "complained",
		"full@example.org": "active", "slow@example.org": "active"}
	if got := d.statuses(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("statuses %v\nwant %v", got, want)
	}
	if got := d.events("hard@example.org"); strings.Join(got, ",") != "dsn hard_bounce suppressed" {
		t.Errorf("hard@ events: %q", got)
	}
	if got := d.events("full@example.org"); strings.Join(got, ",") != "dsn soft_bounce recorded" {
		t.Errorf("full@ events: %q", got)
	}
	if h := d.run("subscribers", "history", "complains@example.org"); !strings.Contains(h.stdout, "complained") || !strings.Contains(h.stdout, "mailbox") {
		t.Errorf("complains@ history:\n%s", h.stdout)
	}
	// The second run sent before it read the mailbox; the third sends the next
	// piece to those still active only.
	before := srv.PerRecipient()
	d.piece("three", "Three", "energy")
	if r := d.run("run"); r.code != 0 {
		t.Fatalf("third run: %d\n%s", r.code, r.stderr)
	}
	after := srv.PerRecipient()
	for to, st := range want {
		if got, wantN := after[to]-before[to], map[bool]int{true: 1, false: 0}[st == "active"]; got != wantN {
			t.Errorf("%s (%s) got %d digests in the third run, want %d", to, st, got, wantN)
		}
	}

	// A mailbox that refuses the login fails the run, naming the key.
	d.write("pop3-password", "wrong-password\n")
	d.piece("four", "Four", "energy")
	if r := d.run("run"); r.code != 1 || !strings.Contains(r.stderr, "bounces.pop3:") || !strings.Contains(r.stderr, "PASS") {
		t.Errorf("wrong password: %d\n%s", r.code, r.stderr)
	}
}

// Settings of the bounce mailbox and the webhooks that cannot work stop the
// commands that read them, naming the key.
func TestBounceSettingsNameTheKey(t *testing.T) {
	for _, c := range []struct {
		yaml, want string
		cmds       []string
	}{
		{"bounces:\n  address: bounces+x@desk.example.org\n", "bounces.address", []string{"run", "check", "daemon"}},
		{"bounces:\n  schedule: \"@every nothing\"\n", "bounces.schedule", []string{"run", "check", "daemon"}},
		// Only the daemon takes webhooks.
		{"webhooks:\n  sendgrid:\n    verification_key: not-a-key\n", "webhooks.sendgrid.verification_key", []string{"check", "daemon"}},
	} {
		d := newDesk(t, smtpConfig(freePort(t), c.yaml))
		for _, cmd := range c.cmds {
			if r := d.run(cmd); r.code != 2 || !strings.Contains(r.stderr, c.want) {
				t.Errorf("%s with %q: exit %d\n%s", cmd, c.yaml, r.code, r.stderr)
			}
		}
	}
}

// snsProxy is an HTTP CONNECT proxy that takes the daemon's requests for
// SNS's host to the test's SNS server: the daemon finds it through
// HTTPS_PROXY and trusts its certificate through SSL_CERT_FILE, the way Go
// programs are pointed at a proxy and a private CA in production. Nothing
// else is let through.
func snsProxy(t *testing.T, sns *esptest.SNS) string {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect || r.Host != esptest.SNSHost+":443" {
			http.Error(w, "only CONNECT to "+esptest.SNSHost, http.StatusForbidden)
			return
		}
		up, err := net.Dial("tcp", sns.Addr())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			up.Close()
			return
		}
		_, _ = conn.Write([]byte("HTTP/1.1 200 Connection Established\r\n\r\n"))
		go func() { _, _ = io.Copy(up, buf); up.Close() }()
		_, _ = io.Copy(conn, up)
		conn.Close()
	}))
	t.Cleanup(ts.Close)
	return ts.URL
}

// Recorded webhook bodies of each provider posted to the real daemon: the
// valid ones change the right subscribers in its store, forged ones are
// refused and change nothing, replayed ones are recorded once, even after a
// restart has emptied the daemon's memory of Mailgun's tokens.
func TestWebhooksToTheDaemon(t *testing.T) {
	const topic = "arn:aws:sns:eu-west-1:111122223333:desk-ses-feedback"
	const mailgunKey = "key-e2e-0123456789abcdef0123456789ab"
	sns := esptest.NewSNS(t)
	sgKey, sgVerification := esptest.SendGridKey(t)
	srv := smtptest.Start(t, smtptest.Options{})
	httpPort := freePort(t)
	d := newDesk(t, daemonConfig(srv.Port, httpPort, fmt.Sprintf(`webhooks:
  ses:
    topic_arns: [%s]
  postmark:
    username: postmark
  sendgrid:
    verification_key: %s
`, topic, sgVerification)))
	d.write("mailgun-key", mailgunKey+"\n")
	d.write("sns-ca.pem", string(sns.CAPEM()))
	d.env = []string{
		"PUBLISHER_WEBHOOKS_POSTMARK_PASSWORD=a-long-random-password", "PUBLISHER_WEBHOOKS_MAILGUN_SIGNING_KEY_FILE=" + filepath.Join(d.dir, "mailgun-key"),
		"PUBLISHER_MAIL_BOUNCE_LIMIT=2",
		"HTTPS_PROXY=" + snsProxy(t, sns), "NO_PROXY=", "SSL_CERT_FILE=" + filepath.Join(d.dir, "sns-ca.pem"),
	}
	d.piece("one", "One", "energy")
	readers := []string{"ana.petrova@example.org", "sam@example.edu", "old.reader@example.org", "ines@example.org",
		"priya@mailbox.example", "jorg@example.net", "lena.k@example.com"}
	d.write("subscribers/list.csv", "email\n"+strings.Join(readers, "\n")+"\n")
	dm := d.startDaemon(t, httpPort)
	waitForMessage(t, srv, "lena.k@example.com", "One")

	payload := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(repoRoot(t), "internal", "esp", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	now := time.Now()
	sesValid := sns.Notification(t, topic, "3f1c5a2e-7b9d-4e8f-a0b1-c2d3e4f5a6b7", string(payload("ses/bounce-permanent.json")))
	sesForged := sesValid
	sesForged.Message = strings.ReplaceAll(sesForged.Message, "ana.petrova@example.org", "lena.k@example.com")
	basic := func(user, pass string) http.Header {
		r, _ := http.NewRequest(http.MethodPost, "/", nil)
		r.SetBasicAuth(user, pass)
		return r.Header
	}
	sgBody := payload("sendgrid/events.json")
	sgForged := []byte(strings.Replace(string(sgBody), "ines@example.org", "lena.k@example.com", 1))
	sgHeader := func(body []byte) http.Header {
		ts, sig := esptest.SignSendGrid(t, sgKey, now, body)
		return http.Header{esp.SendGridTimestampHeader: {ts}, esp.SendGridSignatureHeader: {sig}}
	}
	mailgunValid := esptest.SignMailgun(t, mailgunKey, payload("mailgun/complained.json"), now, strings.Repeat("t", 50))
	cases := []struct {
		provider        string
		valid, forged   []byte
		validH, forgedH http.Header
		events          int
		replay          int // the replay's status
	}{
		{"ses", sesValid.JSON(t), sesForged.JSON(t), nil, nil, 2, http.StatusOK},
		{"postmark", payload("postmark/bounce-hard.json"), payload("postmark/bounce-hard.json"), basic("postmark", "a-long-random-password"), basic("postmark", "guess"), 1, http.StatusOK},
		{"mailgun", mailgunValid, esptest.SignMailgun(t, "key-forged", payload("mailgun/complained.json"), now, strings.Repeat("f", 50)), nil, nil, 1, http.StatusUnauthorized},
		{"sendgrid", sgBody, sgForged, sgHeader(sgBody), sgHeader(sgBody), 7, http.StatusOK},
	}
	url := dm.base + "webhooks/"
	for _, c := range cases {
		if code, body := esptest.Post(t, url+c.provider, c.forged, c.forgedH); code != http.StatusUnauthorized {
			t.Errorf("%s forged: %d %q", c.provider, code, body)
		}
		if code, body := esptest.Post(t, url+c.provider, c.valid, c.validH); code != http.StatusOK || !strings.Contains(body, fmt.Sprintf("%d new", c.events)) {
			t.Errorf("%s valid: %d %q, want %d new", c.provider, code, body, c.events)
		}
		if code, body := esptest.Post(t, url+c.provider, c.valid, c.validH); code != c.replay || (code == http.StatusOK && !strings.Contains(body, " 0 new")) {
			t.Errorf("%s replayed: %d %q", c.provider, code, body)
		}
	}
	if sns.Fetched() == 0 {
		t.Error("the daemon never fetched SNS's signing certificate")
	}
	if code := dm.stop(); code != 0 {
		t.Fatalf("daemon exit %d:\n%s", code, dm.out)
	}

	want := map[string]string{
		"ana.petrova@example.org": "bounced",    // hard bounces from SES, Postmark and SendGrid; the limit is 2
		"sam@example.edu":         "active",     // refused for the sender's reasons, twice
		"old.reader@example.org":  "active",     // one hard bounce, under the limit
		"ines@example.org":        "active",     // delayed
		"priya@mailbox.example":   "complained", // Mailgun and SendGrid complaints
		"jorg@example.net":        "unsubscribed",
		"lena.k@example.com":      "active", // delivered; the forged bodies named her
	}
	if got := d.statuses(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("statuses %v\nwant %v", got, want)
	}
	for email, events := range map[string]string{
		"ana.petrova@example.org": "ses hard_bounce counted,postmark hard_bounce suppressed,sendgrid hard_bounce counted",
		"priya@mailbox.example":   "mailgun complaint suppressed,sendgrid complaint recorded",
		"lena.k@example.com":      "sendgrid delivered recorded",
	} {
		if got := strings.Join(d.events(email), ","); got != events {
			t.Errorf("%s events: %s\nwant %s", email, got, events)
		}
	}
	if h := d.run("subscribers", "history", "jorg@example.net"); !strings.Contains(h.stdout, "webhook") || !strings.Contains(h.stdout, "sendgrid unsubscribe") {
		t.Errorf("jorg's history:\n%s", h.stdout)
	}

	// A new daemon has forgotten Mailgun's tokens: the replay passes the
	// signature check, and the store still records its event once.
	dm = d.startDaemon(t, httpPort)
	if code, body := esptest.Post(t, url+"mailgun", mailgunValid, nil); code != http.StatusOK || !strings.Contains(body, "1 events, 0 new") {
		t.Errorf("mailgun replayed after a restart: %d %q", code, body)
	}
	if code := dm.stop(); code != 0 {
		t.Fatalf("daemon exit %d:\n%s", code, dm.out)
	}
	if got := strings.Join(d.events("priya@mailbox.example"), ","); got != "mailgun complaint suppressed,sendgrid complaint recorded" {
		t.Errorf("priya's events after the replay: %s", got)
	}
}

// The daemon reads the bounce mailbox on its own schedule, between runs.
func TestDaemonReadsTheBounceMailboxOnItsSchedule(t *testing.T) {
	const bounceAddr = "bounces@desk.example.org"
	mp := mailpittest.Start(t, mailpittest.Options{POP3User: bounceAddr, POP3Password: "pop3-daemon-password"})
	srv := smtptest.Start(t, smtptest.Options{})
	httpPort := freePort(t)
	d := newDesk(t, strings.Replace(daemonConfig(srv.Port, httpPort, fmt.Sprintf(`bounces:
  schedule: "@every 1s"
  pop3:
    host: 127.0.0.1
    port: %d
    username: %s
    tls: none
`, mp.POP3Port, bounceAddr)), `schedule: "@every 2s"`, `schedule: "@every 1h"`, 1))
	d.env = []string{"PUBLISHER_BOUNCES_POP3_PASSWORD=pop3-daemon-password"}
	d.piece("one", "One", "energy")
	d.write("subscribers/list.csv", "email\npriya@mailbox.example\nstays@example.org\n")
	dm := d.startDaemon(t, httpPort)
	waitForMessage(t, srv, "priya@mailbox.example", "One")
	id := messageIDs(srv)["priya@mailbox.example"][0]
	mp.Deliver(t, bounceAddr, bounceFixture(t, "arf-abuse.eml", "digest-13-60@desk.example.org", id))
	waitFor(t, "the complaint to be read", func() bool { return d.statuses()["priya@mailbox.example"] == "complained" })
	waitFor(t, "Mailpit to be emptied", func() bool { return mp.Count(t) == 0 })
	if code := dm.stop(); code != 0 {
		t.Fatalf("daemon exit %d:\n%s", code, dm.out)
	}
	if got := d.statuses(); got["stays@example.org"] != "active" {
		t.Errorf("statuses %v", got)
	}
	if !strings.Contains(dm.out.String(), "job=\"bounce mailbox\"") {
		t.Errorf("the bounce mailbox's schedule is not logged as its own:\n%s", dm.out)
	}
}
