package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"publisher/internal/smtptest"
)

func TestSubscribersCommands(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	d := newDesk(t, smtpConfig(srv.Port, ""))
	d.piece("one", "One", "energy")
	d.write("subscribers/list.csv", "email,name\nfile@example.org,From File\n")

	if r := d.run("subscribers", "add", "Hand@Example.org", "--name", "By Hand", "--topics", "energy;security", "--cadence", "weekly"); r.code != 0 || !strings.Contains(r.stdout, "hand@example.org: active") {
		t.Fatalf("add: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := d.run("subscribers", "add", "not an address"); r.code != 1 {
		t.Fatalf("add of a bad address: exit %d", r.code)
	}
	d.write("import.csv", "email,name,topics,cadence\nimported@example.org,Imported,,immediate\nbroken,Broken,,\n")
	if r := d.run("subscribers", "import", "import.csv"); r.code != 1 || !strings.Contains(r.stdout, "imported 1 subscribers, 1 problems") || !strings.Contains(r.stderr, "import.csv:3") {
		t.Fatalf("import: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// The first run syncs the list file, then sends to the immediate ones.
	if r := d.run("run"); r.code != 0 {
		t.Fatalf("run: %d %s", r.code, r.stderr)
	}
	list := d.run("subscribers", "list")
	for _, want := range []string{"file@example.org", "hand@example.org", "imported@example.org", "energy;security", "weekly", "file", "cli"} {
		if !strings.Contains(list.stdout, want) {
			t.Errorf("list lacks %q:\n%s", want, list.stdout)
		}
	}
	// Suppress one still in the list file, remove another: neither gets mail again.
	if r := d.run("subscribers", "suppress", "file@example.org", "--as", "complained"); r.code != 0 {
		t.Fatalf("suppress: %d %s", r.code, r.stderr)
	}
	if r := d.run("subscribers", "remove", "imported@example.org"); r.code != 0 {
		t.Fatalf("remove: %d %s", r.code, r.stderr)
	}
	if r := d.run("subscribers", "suppress", "x@example.org", "--as", "sleepy"); r.code != 2 {
		t.Fatalf("suppress with an unknown reason: exit %d", r.code)
	}
	before := srv.PerRecipient()
	d.piece("two", "Two", "energy")
	if r := d.run("run"); r.code != 0 {
		t.Fatalf("run: %d %s", r.code, r.stderr)
	}
	after := srv.PerRecipient()
	for _, gone := range []string{"file@example.org", "imported@example.org"} {
		if after[gone] != before[gone] {
			t.Errorf("%s was mailed after being suppressed", gone)
		}
	}
	export := d.run("subscribers", "export", "--status", "")
	if !strings.HasPrefix(export.stdout, "email,name,topics,cadence\n") || strings.Count(export.stdout, "\n") != 4 {
		t.Fatalf("export:\n%s", export.stdout)
	}
	status := d.run("subscribers", "list", "--status", "complained,removed")
	if !strings.Contains(status.stdout, "complained") || !strings.Contains(status.stdout, "removed") || strings.Contains(status.stdout, "hand@example.org") {
		t.Fatalf("list by status:\n%s", status.stdout)
	}
}

func TestPreviewAndDryRunRecordNothing(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	d := newDesk(t, smtpConfig(srv.Port, ""))
	d.piece("one", "Preview piece", "energy")
	d.write("subscribers/list.csv", "email,name\nreader@example.org,Reader\n")

	out := filepath.Join(d.dir, "preview.eml")
	if r := d.run("preview", "--subscriber", "reader@example.org", "--out", out); r.code != 0 {
		t.Fatalf("preview: %d %s", r.code, r.stderr)
	}
	m, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	p := parseMessage(t, m)
	if !strings.Contains(p.html, "Preview piece") || !strings.Contains(p.header.Get("To"), "reader@example.org") {
		t.Fatalf("preview message:\n%s", m)
	}
	if r := d.run("preview", "--subscriber", "nobody@example.org"); r.code != 1 || !strings.Contains(r.stderr, "nobody@example.org") {
		t.Fatalf("preview of an unknown address: %d %s", r.code, r.stderr)
	}
	dry := d.run("run", "--dry-run")
	if dry.code != 0 || !strings.Contains(dry.stdout, "1 messages would be sent") {
		t.Fatalf("dry run: %d\n%s\n%s", dry.code, dry.stdout, dry.stderr)
	}
	if srv.Count() != 0 {
		t.Fatalf("preview or dry run sent %d messages", srv.Count())
	}
	if _, err := os.Stat(filepath.Join(d.dir, "public")); !os.IsNotExist(err) {
		t.Fatalf("dry run wrote the output folder (%v)", err)
	}
	// Nothing was recorded: the real run still finds the piece new and sends it.
	r := d.run("run")
	if r.code != 0 || !strings.Contains(r.stdout, "1 new") || srv.Count() != 1 {
		t.Fatalf("run after preview and dry run: %d, %d sent\n%s", r.code, srv.Count(), r.stdout)
	}
}

func TestConfigurationErrorsExitTwo(t *testing.T) {
	d := newDesk(t, "feed:\n  items: lots\n")
	for _, args := range [][]string{{"run"}, {"build"}, {"preview", "--subscriber", "a@example.org"}} {
		r := d.run(args...)
		if r.code != 2 || !strings.Contains(r.stderr, "feed.items") {
			t.Errorf("%v: exit %d\n%s", args, r.code, r.stderr)
		}
	}
	d.write("publisher.yaml", "feed:\n  items: 5\n")
	d.env = []string{"PUBLISHER_MAIL_SMTP_PORT=seventy"}
	if r := d.run("run"); r.code != 2 || !strings.Contains(r.stderr, "PUBLISHER_MAIL_SMTP_PORT: mail.smtp.port") {
		t.Errorf("a bad environment value: exit %d\n%s", r.code, r.stderr)
	}
}

func TestRunSignsWithDKIMAndPingsWebSubHubs(t *testing.T) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var pings []url.Values
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		v, _ := url.ParseQuery(string(b))
		mu.Lock()
		pings = append(pings, v)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hub.Close()

	srv := smtptest.Start(t, smtptest.Options{})
	d := newDesk(t, smtpConfig(srv.Port, "")+"feed:\n  websub_hubs: ["+hub.URL+"]\n")
	d.write("dkim.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	d.env = []string{"PUBLISHER_MAIL_DKIM_DOMAIN=desk.example.org", "PUBLISHER_MAIL_DKIM_SELECTOR=s2026", "PUBLISHER_MAIL_DKIM_KEY_FILE=dkim.pem"}
	d.piece("one", "Signed piece", "energy")
	d.write("subscribers/list.csv", "email,name\nreader@example.org,Reader\n")
	if r := d.run("run"); r.code != 0 {
		t.Fatalf("run: %d\n%s", r.code, r.stderr)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	sig := msgs[0].Header().Get("DKIM-Signature")
	h := strings.ToLower(strings.Join(strings.Fields(sig), ""))
	for _, want := range []string{"d=desk.example.org", "s=s2026", "a=ed25519-sha256", "list-unsubscribe:", "list-unsubscribe-post"} {
		if !strings.Contains(h, want) {
			t.Errorf("DKIM-Signature lacks %q: %s", want, sig)
		}
	}
	// Every feed that changed is pinged: the site's and the piece's topic's.
	pinged := func() []string {
		mu.Lock()
		defer mu.Unlock()
		var urls []string
		for _, p := range pings {
			if p.Get("hub.mode") != "publish" {
				t.Errorf("ping %v", p)
			}
			urls = append(urls, strings.TrimPrefix(p.Get("hub.url"), "https://desk.example.org/"))
		}
		pings = nil
		slices.Sort(urls)
		return urls
	}
	if got, want := pinged(), []string{"atom.xml", "feed.json", "feed.xml", "topics/energy/atom.xml", "topics/energy/feed.json", "topics/energy/feed.xml"}; !slices.Equal(got, want) {
		t.Fatalf("hub pings %q, want %q", got, want)
	}
	// A run that changes nothing pings nobody.
	if r := d.run("run"); r.code != 0 {
		t.Fatalf("second run: %d", r.code)
	}
	if got := pinged(); len(got) != 0 {
		t.Fatalf("a run with nothing new pinged the hub: %q", got)
	}
	// A piece on another topic: the site's feeds and that topic's, not energy's.
	d.piece("two", "Second piece", "security")
	if r := d.run("run"); r.code != 0 {
		t.Fatalf("third run: %d", r.code)
	}
	if got, want := pinged(), []string{"atom.xml", "feed.json", "feed.xml", "topics/security/atom.xml", "topics/security/feed.json", "topics/security/feed.xml"}; !slices.Equal(got, want) {
		t.Fatalf("hub pings after a security piece %q, want %q", got, want)
	}
}
