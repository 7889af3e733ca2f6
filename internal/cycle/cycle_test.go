package cycle

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	gomail "net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"publisher/internal/config"
	"publisher/internal/mail"
	"publisher/internal/smtptest"
	"publisher/internal/store"
	"publisher/templates"
)

// bench is a working folder, a real SQLite store, a real SMTP server and a clock
// the test moves.
type bench struct {
	t     *testing.T
	dir   string
	cfg   *config.Config
	store *store.DB
	srv   *smtptest.Server
	now   time.Time
	log   *slog.Logger // nil: the runner's default
}

func newBench(t *testing.T, now time.Time) *bench {
	t.Helper()
	dir := t.TempDir()
	b := &bench{t: t, dir: dir, now: now, srv: smtptest.Start(t, smtptest.Options{})}
	cfg := config.Defaults()
	cfg.Site.Title = "Cycle Desk"
	cfg.Site.BaseURL = "https://desk.example.org/"
	cfg.Content.Dir = filepath.Join(dir, "content")
	cfg.Output.Dir = filepath.Join(dir, "public")
	cfg.Data.Dir = filepath.Join(dir, "data")
	cfg.Subscribers.Dir = filepath.Join(dir, "subscribers")
	cfg.Mail.From = "Cycle Desk <digest@desk.example.org>"
	cfg.Mail.RetryBase = 20 * time.Millisecond
	cfg.Digest.Timezone = "Europe/Vilnius"
	cfg.Digest.SendAt = "07:00"
	cfg.Digest.SendDay = "monday"
	cfg.Secret = "cycle-test-secret"
	b.cfg = &cfg
	for _, d := range []string{cfg.Content.Dir, cfg.Subscribers.Dir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	st, err := store.OpenSQLite(context.Background(), cfg.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b.store = st
	return b
}

func (b *bench) write(rel, body string) {
	b.t.Helper()
	p := filepath.Join(b.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// piece writes a Markdown piece; an empty date leaves it undated.
func (b *bench) piece(slug, title, date string, topics ...string) {
	fm := fmt.Sprintf("---\ntitle: %q\n", title)
	if date != "" {
		fm += "date: " + date + "\n"
	}
	if len(topics) > 0 {
		fm += "topics: [" + strings.Join(topics, ", ") + "]\n"
	}
	b.write("content/"+slug+".md", fm+"---\n\nThe body of "+title+".\n")
}

// run performs one cycle at the bench's clock and returns the subjects received
// per recipient during it.
func (b *bench) run() (*Summary, map[string][]string) {
	b.t.Helper()
	sum, got, err := b.runErr()
	if err != nil {
		b.t.Fatalf("run at %v: %v", b.now, err)
	}
	return sum, got
}

// runErr is run for a cycle that may fail.
func (b *bench) runErr() (*Summary, map[string][]string, error) {
	b.t.Helper()
	before := b.srv.Count()
	tr, err := mail.NewSMTPTransport(mail.SMTPConfig{Host: "127.0.0.1", Port: b.srv.Port, TLS: "none", ConnectTimeout: 5 * time.Second, SendTimeout: 10 * time.Second})
	if err != nil {
		b.t.Fatal(err)
	}
	r, err := New(Deps{Config: b.cfg, Store: b.store, Transport: tr, Templates: templates.Embedded(), Now: func() time.Time { return b.now }, Logger: b.log})
	if err != nil {
		b.t.Fatal(err)
	}
	sum, err := r.Run(context.Background(), Options{})
	got := map[string][]string{}
	for _, m := range b.srv.Messages()[before:] {
		subject := m.Header().Get("Subject")
		for _, to := range m.To {
			got[to] = append(got[to], subject)
		}
	}
	return sum, got, err
}

// lastBody is the raw text of the latest message to rcpt.
func (b *bench) lastBody(rcpt string) string {
	msgs := b.srv.Messages()
	for i := len(msgs) - 1; i >= 0; i-- {
		if slices.Contains(msgs[i].To, rcpt) {
			return string(msgs[i].Data)
		}
	}
	return ""
}

type smtpError = smtp.SMTPError

var tempFail = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "busy"}

func vilnius(t *testing.T, s string) time.Time {
	loc, err := time.LoadLocation("Europe/Vilnius")
	if err != nil {
		t.Fatal(err)
	}
	at, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

func TestFirstRunOverAnArchiveSendsOnlyRecentPieces(t *testing.T) {
	b := newBench(t, vilnius(t, "2026-11-26 12:00"))
	b.piece("ancient", "An ancient piece", "2026-09-01")
	b.piece("last-month", "Last month's piece", "2026-10-20")
	b.piece("this-week", "This week's piece", "2026-11-23")
	b.piece("undated", "An undated piece", "")
	b.write("subscribers/list.csv", "email,name,cadence\nnew@example.org,New Reader,immediate\n")

	sum, got := b.run()
	if sum.Sent != 1 || len(got["new@example.org"]) != 1 {
		t.Fatalf("sent %d: %v", sum.Sent, got)
	}
	body := b.lastBody("new@example.org")
	for _, want := range []string{"This week", "An undated piece"} {
		if !strings.Contains(body, want) {
			t.Errorf("first digest lacks %q", want)
		}
	}
	for _, not := range []string{"An ancient piece", "Last month"} {
		if strings.Contains(body, not) {
			t.Errorf("first digest mailed the archive: has %q", not)
		}
	}

	// A back-dated piece that appears later is still announced, once, to a reader
	// who joined before its date.
	b.now = b.now.Add(time.Hour)
	b.piece("filed-late", "Filed late", "2026-11-25")
	if _, got := b.run(); len(got["new@example.org"]) != 1 || !strings.Contains(got["new@example.org"][0], "Filed late") {
		t.Fatalf("back-dated piece: %v", got)
	}
	b.now = b.now.Add(time.Hour)
	if sum, _ := b.run(); sum.Sent != 0 || sum.Planned != 0 {
		t.Fatalf("nothing new, yet sent %d planned %d", sum.Sent, sum.Planned)
	}
}

func TestDailyAndWeeklyCadences(t *testing.T) {
	// Sunday 2026-11-22, 10:00 in Vilnius: both readers join.
	b := newBench(t, vilnius(t, "2026-11-22 10:00"))
	b.piece("first", "First piece", "")
	b.write("subscribers/list.csv", "email,name,cadence\ndaily@example.org,Daily,daily\nweekly@example.org,Weekly,weekly\nnow@example.org,Now,immediate\n")

	step := func(at string, wantDaily, wantWeekly int) {
		t.Helper()
		b.now = vilnius(t, at)
		_, got := b.run()
		if len(got["daily@example.org"]) != wantDaily || len(got["weekly@example.org"]) != wantWeekly {
			t.Fatalf("at %s: daily %d weekly %d, want %d %d (%v)", at, len(got["daily@example.org"]), len(got["weekly@example.org"]), wantDaily, wantWeekly, got)
		}
	}
	step("2026-11-22 10:00", 0, 0) // joined after today's 07:00: wait for tomorrow
	step("2026-11-23 06:59", 0, 0) // not yet
	step("2026-11-23 07:05", 1, 1) // Monday 07:00 passed: both due
	b.piece("second", "Second piece", "")
	step("2026-11-23 09:00", 0, 0) // served at 07:05; the next moment is tomorrow
	step("2026-11-24 07:00", 1, 0) // daily gets the second piece; weekly waits for Monday
	if body := b.lastBody("daily@example.org"); !strings.Contains(body, "Second piece") || strings.Contains(body, "First piece") {
		t.Errorf("the second daily digest should carry only the second piece")
	}
	step("2026-11-25 07:30", 0, 0) // nothing new: nothing sent
	step("2026-11-30 08:00", 0, 1) // next Monday: weekly gets the second piece
}

func TestSuppressedBeforeSendIsSkipped(t *testing.T) {
	b := newBench(t, vilnius(t, "2026-11-26 12:00"))
	b.piece("one", "One", "")
	b.write("subscribers/list.csv", "email,name,cadence\nstay@example.org,Stay,immediate\nleave@example.org,Leave,immediate\n")
	// The server refuses everything for a while: the deliveries stay pending.
	b.srv.SetOptions(smtptest.Options{Rcpt: func(string) *smtpError { return tempFail }})
	b.cfg.Mail.MaxAttempts = 10
	b.cfg.Mail.RetryBase = time.Hour // not due again within this run
	sum, _ := b.run()
	if sum.Pending != 2 || sum.Sent != 0 {
		t.Fatalf("while refused: %+v", sum)
	}
	leave, err := b.store.SubscriberByEmail(context.Background(), "leave@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.store.SetStatus(context.Background(), leave.ID, store.StatusUnsubscribed, store.Change{By: store.ByWeb, Reason: "test"}, b.now); err != nil {
		t.Fatal(err)
	}
	b.srv.SetOptions(smtptest.Options{})
	b.now = b.now.Add(2 * time.Hour)
	sum, got := b.run()
	if sum.Sent != 1 || sum.Skipped != 1 || len(got["leave@example.org"]) != 0 || len(got["stay@example.org"]) != 1 {
		t.Fatalf("after the unsubscribe: %+v %v", sum, got)
	}
}

// A piece's relative link points at its page's folder everywhere it goes: the
// archive page, the feed and both parts of the email, the plain text included.
func TestRelativeLinksAreAbsoluteEverywhere(t *testing.T) {
	b := newBench(t, vilnius(t, "2026-11-26 12:00"))
	b.cfg.Digest.Body = "full" // the body, with its links, in the email
	b.write("content/gauge.md", "---\ntitle: Gauge\ndate: 2026-11-25\n---\n\nRead [the note](notes/gauge.html) first.\n")
	b.write("subscribers/list.csv", "email,name,cadence\nreader@example.org,Reader,immediate\n")
	if sum, _ := b.run(); sum.Sent != 1 {
		t.Fatalf("sent %d", sum.Sent)
	}
	const abs = "https://desk.example.org/pieces/gauge/notes/gauge.html"
	page, _ := b.output("pieces/gauge/index.html")
	feedXML, _ := b.output("feed.xml")
	if !strings.Contains(page, `href="`+abs+`"`) || !strings.Contains(feedXML, abs) {
		t.Errorf("archive page or feed lacks %s", abs)
	}
	msg, err := gomail.ReadMessage(strings.NewReader(b.lastBody("reader@example.org")))
	if err != nil {
		t.Fatal(err)
	}
	_, params, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	parts := multipart.NewReader(msg.Body, params["boundary"])
	seen := 0
	for {
		part, err := parts.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(part) // quoted-printable is decoded by the reader
		ct, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
		switch ct {
		case "text/plain":
			seen++
			if !strings.Contains(string(data), "the note ( "+abs+" )") {
				t.Errorf("text part lacks the absolute link:\n%s", data)
			}
		case "text/html":
			seen++
			if !strings.Contains(string(data), `href="`+abs+`"`) {
				t.Errorf("HTML part lacks the absolute link")
			}
		}
	}
	if seen != 2 {
		t.Errorf("%d text parts checked, want 2", seen)
	}
}
