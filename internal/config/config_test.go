package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "publisher.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadFileAndDefaults(t *testing.T) {
	p := writeFile(t, `
site:
  title: The Desk
  base_url: https://desk.example.org
  language: en-GB
content:
  dir: pieces
feed:
  items: 20
  websub_hubs: [https://hub.example.org/]
digest:
  lookback: 3d
  timezone: Europe/Minsk
`)
	cfg, err := Load(p, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Site.Title != "The Desk" || cfg.Site.BaseURL != "https://desk.example.org/" || cfg.Site.Language != "en-GB" {
		t.Errorf("site = %+v", cfg.Site)
	}
	// Written in the file: relative to the file. Left at its default: relative to
	// the working directory.
	if cfg.Content.Dir != filepath.Join(filepath.Dir(p), "pieces") || cfg.Output.Dir != "public" || cfg.Feed.Items != 20 {
		t.Errorf("content/output/feed = %q %q %d", cfg.Content.Dir, cfg.Output.Dir, cfg.Feed.Items)
	}
	if len(cfg.Feed.WebSubHubs) != 1 || cfg.Feed.WebSubHubs[0] != "https://hub.example.org/" {
		t.Errorf("hubs = %v", cfg.Feed.WebSubHubs)
	}
	if cfg.Digest.Lookback != 72*time.Hour {
		t.Errorf("lookback = %v", cfg.Digest.Lookback)
	}
	if cfg.Digest.Location().String() != "Europe/Minsk" {
		t.Errorf("location = %v", cfg.Digest.Location())
	}
	if cfg.Mail.Transport != "file" || cfg.Mail.SMTP.Connections != 4 {
		t.Errorf("mail defaults = %+v", cfg.Mail)
	}
	// Retries span two days, an hour apart at most; sender-side refusals are
	// counted by the same max_attempts key existing files set.
	if cfg.Mail.RetryWindow != 48*time.Hour || cfg.Mail.RetryMax != time.Hour || cfg.Mail.RetryBase != time.Second || cfg.Mail.MaxAttempts != 8 {
		t.Errorf("retry defaults = window %v, max %v, base %v, attempts %d", cfg.Mail.RetryWindow, cfg.Mail.RetryMax, cfg.Mail.RetryBase, cfg.Mail.MaxAttempts)
	}
	if cfg.Site.PageSize != 20 || cfg.Digest.Body != "summary" || cfg.Feed.OPMLFormat != "rss" || cfg.Feed.IDAuthority != "" {
		t.Errorf("defaults: page size %d, digest body %q, OPML %q, id authority %q", cfg.Site.PageSize, cfg.Digest.Body, cfg.Feed.OPMLFormat, cfg.Feed.IDAuthority)
	}
}

func TestEnvironmentWins(t *testing.T) {
	p := writeFile(t, "site:\n  title: From File\n")
	env := []string{
		"PUBLISHER_SITE_TITLE=From Env",
		"PUBLISHER_CONTENT_DIR=/srv/pieces",
		"PUBLISHER_MAIL_SMTP_PORT=1025",
		"PUBLISHER_FEED_WEBSUB_HUBS=https://a.example/, https://b.example/",
		"PUBLISHER_RUN_AT_START=true",
		"PUBLISHER_SHUTDOWN_GRACE=45s",
		"HOME=/root",
	}
	cfg, err := Load(p, true, env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Site.Title != "From Env" || cfg.Content.Dir != "/srv/pieces" || cfg.Mail.SMTP.Port != 1025 {
		t.Errorf("env not applied: %q %q %d", cfg.Site.Title, cfg.Content.Dir, cfg.Mail.SMTP.Port)
	}
	if len(cfg.Feed.WebSubHubs) != 2 || cfg.Feed.WebSubHubs[1] != "https://b.example/" {
		t.Errorf("hubs = %v", cfg.Feed.WebSubHubs)
	}
	if !cfg.RunAtStart || cfg.Grace != 45*time.Second {
		t.Errorf("run_at_start/grace = %v %v", cfg.RunAtStart, cfg.Grace)
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	cases := []struct {
		name, file string
		env        []string
		want       []string
	}{
		{"unknown key with line", "site:\n  title: x\n  colour: blue\n", nil, []string{"publisher.yaml:3: site.colour: unknown key"}},
		{"unknown section", "mailer:\n  host: x\n", nil, []string{"publisher.yaml:1: mailer: unknown key"}},
		{"bad number", "feed:\n  items: lots\n", nil, []string{"publisher.yaml:2: feed.items: not a whole number"}},
		{"bad duration", "digest:\n  lookback: a week\n", nil, []string{"digest.lookback: not a duration"}},
		{"bad cadence", "digest:\n  default_cadence: hourly\n", nil, []string{"digest.default_cadence: must be immediate, daily or weekly"}},
		{"bad base url", "site:\n  base_url: desk.example.org\n", nil, []string{"site.base_url: must be an absolute http(s) URL"}},
		{"bad env value", "", []string{"PUBLISHER_MAIL_SMTP_PORT=abc"}, []string{"PUBLISHER_MAIL_SMTP_PORT: mail.smtp.port: not a whole number"}},
		{"unknown env", "", []string{"PUBLISHER_SITE_TITEL=x"}, []string{"PUBLISHER_SITE_TITEL: unknown environment variable"}},
		{"smtp needs secret", "mail:\n  transport: smtp\n  smtp:\n    host: smtp.example.org\n", nil, []string{"secret: set a long random secret"}},
		{"sample secret refused", "secret: " + SampleSecret + "\nmail:\n  transport: smtp\n  smtp:\n    host: smtp.example.org\n", nil, []string{"secret: set a long random secret"}},
		{"short secret refused", "secret: x\nmail:\n  transport: smtp\n  smtp:\n    host: smtp.example.org\n", nil, []string{"secret: is 1 bytes; use at least 32"}},
		{"kubernetes placeholder refused", "mail:\n  transport: smtp\n  smtp:\n    host: smtp.example.org\n", []string{"PUBLISHER_SECRET=replace-with-a-long-random-value"}, []string{"secret: set a long random secret"}},
		{"postgres without dsn", "store:\n  driver: postgres\n", nil, []string{"store.dsn: must be set with store.driver postgres"}},
		{"unknown driver", "store:\n  driver: mysql\n", nil, []string{"store.driver: must be sqlite or postgres"}},
		{"secret and its file", "", []string{"PUBLISHER_SECRET=a", "PUBLISHER_SECRET_FILE=/nonexistent"}, []string{"PUBLISHER_SECRET_FILE: secret: both PUBLISHER_SECRET and PUBLISHER_SECRET_FILE are set"}},
		{"secret file missing", "", []string{"PUBLISHER_SECRET_FILE=/nonexistent/secret"}, []string{"PUBLISHER_SECRET_FILE: secret: open /nonexistent/secret"}},
		{"no _FILE for a plain key", "", []string{"PUBLISHER_SITE_TITLE_FILE=/x"}, []string{"PUBLISHER_SITE_TITLE_FILE: unknown environment variable"}},
		{"a mistyped port is no service link", "", []string{"PUBLISHER_HTTP_PORT=8080"}, []string{"PUBLISHER_HTTP_PORT: unknown environment variable"}},
		{"admin on the public address", "http:\n  listen: 127.0.0.1:8080\n  admin_listen: 127.0.0.1:8080\n", nil, []string{"http.admin_listen: is the same address as http.listen"}},
		{"templates.dir missing", "templates:\n  dir: no-such-folder\n", nil, []string{"templates.dir: stat ", "no-such-folder"}},
		{"tls none off loopback", "secret: s3cr3t-long\nmail:\n  transport: smtp\n  smtp:\n    host: smtp.example.org\n    tls: none\n", nil, []string{"mail.smtp.tls: none is only allowed for a loopback host"}},
		{"several at once", "feed:\n  items: 0\ndigest:\n  send_at: 7am\n  timezone: Mars/Olympus\n", nil, []string{"feed.items", "digest.send_at", "digest.timezone"}},
		{"bad page size", "site:\n  page_size: 0\n", nil, []string{"site.page_size: must be 1-500"}},
		{"bad digest body", "digest:\n  body: excerpt\n", nil, []string{"digest.body: must be summary or full"}},
		{"bad opml format", "feed:\n  opml_format: rdf\n", nil, []string{"feed.opml_format: must be rss, atom or json"}},
		{"bad id authority", "feed:\n  id_authority: https://desk.example.org/\n", nil, []string{"feed.id_authority: must be a host name"}},
		{"bad asset limit", "content:\n  max_asset_bytes: 0\n", nil, []string{"content.max_asset_bytes: must be positive"}},
		{"not yaml", "site: [unclosed\n", nil, []string{"publisher.yaml"}},
		{"scalar where mapping", "site: hello\n", nil, []string{"site: expected a mapping"}},
		{"no retry window", "mail:\n  retry_window: 0s\n", nil, []string{"mail.retry_window: must be positive"}},
		{"no retry wait", "mail:\n  retry_max: 0s\n  retry_base: 0s\n", nil, []string{"mail.retry_max: must be positive", "mail.retry_base: must be positive"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeFile(t, c.file)
			_, err := Load(p, true, c.env)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestSMTPOnLoopbackWithSecret(t *testing.T) {
	env := []string{
		"PUBLISHER_MAIL_TRANSPORT=smtp", "PUBLISHER_MAIL_SMTP_HOST=127.0.0.1",
		"PUBLISHER_MAIL_SMTP_PORT=1025", "PUBLISHER_MAIL_SMTP_TLS=none", "PUBLISHER_SECRET=0123456789abcdef0123456789abcdef",
	}
	cfg, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), false, env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Mail.Transport != "smtp" || cfg.Mail.SMTP.TLS != "none" {
		t.Errorf("mail = %+v", cfg.Mail)
	}
}

func TestMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), true, nil)
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want not-exist", err)
	}
}

func TestKeysCoverEveryField(t *testing.T) {
	keys := Keys()
	seen := map[string]bool{}
	for _, k := range keys {
		if k.Doc == "" {
			t.Errorf("key %s has no doc", k.Path)
		}
		if k.Env != EnvName(k.Path) || !strings.HasPrefix(k.Env, "PUBLISHER_") {
			t.Errorf("key %s env %s", k.Path, k.Env)
		}
		seen[k.Path] = true
	}
	for _, want := range []string{"site.base_url", "content.dir", "mail.smtp.host", "digest.lookback", "http.listen", "tokens.confirm_ttl", "feed.websub_hubs", "secret", "schedule"} {
		if !seen[want] {
			t.Errorf("Keys() lacks %s", want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"7d": 168 * time.Hour, "36h": 36 * time.Hour, "90m": 90 * time.Minute, "0d": 0} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "d", "-1d", "7 days", "-5m"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) succeeded", in)
		}
	}
}

func TestSecretsFromFilesAndMasked(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	password := filepath.Join(dir, "password")
	dsn := filepath.Join(dir, "dsn")
	for p, body := range map[string]string{secret: "0123456789abcdef0123456789abcdef-from-file\n", password: "hunter2-from-file", dsn: "postgres://publisher:pw@db:5432/publisher\n"} {
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{
		"PUBLISHER_MAIL_TRANSPORT=smtp", "PUBLISHER_MAIL_SMTP_HOST=smtp.example.org",
		"PUBLISHER_SITE_BASE_URL=https://desk.example.org/",
		"PUBLISHER_SECRET_FILE=" + secret, "PUBLISHER_MAIL_SMTP_PASSWORD_FILE=" + password,
		"PUBLISHER_STORE_DRIVER=postgres", "PUBLISHER_STORE_DSN_FILE=" + dsn,
	}
	cfg, err := Load(filepath.Join(dir, "none.yaml"), false, env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Secret != "0123456789abcdef0123456789abcdef-from-file" || cfg.Mail.SMTP.Password != "hunter2-from-file" || cfg.Store.DSN != "postgres://publisher:pw@db:5432/publisher" {
		t.Fatalf("secrets = %q %q %q", cfg.Secret, cfg.Mail.SMTP.Password, cfg.Store.DSN)
	}
	if cfg.File() != "" {
		t.Errorf("File() = %q with no file", cfg.File())
	}
	seen := map[string]Setting{}
	for _, s := range cfg.Effective() {
		seen[s.Path] = s
		if s.Secret && (strings.Contains(s.Value, "from-file") || strings.Contains(s.Value, "pw@db")) {
			t.Errorf("%s printed unmasked: %q", s.Path, s.Value)
		}
	}
	if s := seen["secret"]; s.Value != "(set, 42 bytes)" || s.Source != "PUBLISHER_SECRET_FILE" {
		t.Errorf("secret = %+v", s)
	}
	if s := seen["mail.smtp.username"]; s.Value != "" || s.Source != "default" {
		t.Errorf("an unset secret-less key = %+v", s)
	}
	if s := seen["site.base_url"]; s.Value != "https://desk.example.org/" || s.Source != "PUBLISHER_SITE_BASE_URL" {
		t.Errorf("base_url = %+v", s)
	}
}

func TestEffectiveSourcesFromFile(t *testing.T) {
	p := writeFile(t, "site:\n  title: The Desk\nmail:\n  smtp:\n    password: in-the-file\n")
	cfg, err := Load(p, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range cfg.Effective() {
		switch s.Path {
		case "site.title":
			if s.Value != "The Desk" || s.Source != p+":2" {
				t.Errorf("site.title = %+v", s)
			}
		case "mail.smtp.password":
			if s.Value != "(set, 11 bytes)" || s.Source != p+":5" {
				t.Errorf("password = %+v", s)
			}
		}
	}
	if cfg.File() != p {
		t.Errorf("File() = %q", cfg.File())
	}
}

// TestKubernetesServiceLinksIgnored: a Service named publisher makes Kubernetes
// put these into every pod; they are warned about, not fatal.
func TestKubernetesServiceLinksIgnored(t *testing.T) {
	env := []string{
		"PUBLISHER_SERVICE_HOST=10.96.0.10",
		"PUBLISHER_SERVICE_PORT=80",
		"PUBLISHER_SERVICE_PORT_HTTP=80",
		"PUBLISHER_PORT=tcp://10.96.0.10:80",
		"PUBLISHER_PORT_80_TCP=tcp://10.96.0.10:80",
		"PUBLISHER_PORT_80_TCP_PROTO=tcp",
		"PUBLISHER_PORT_80_TCP_PORT=80",
		"PUBLISHER_PORT_80_TCP_ADDR=10.96.0.10",
		"PUBLISHER_ADMIN_SERVICE_HOST=10.96.0.11",
		"PUBLISHER_ADMIN_PORT_9090_TCP_ADDR=10.96.0.11",
	}
	cfg, err := Load(filepath.Join(t.TempDir(), "none.yaml"), false, env)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings()) != len(env) {
		t.Fatalf("warnings = %v", cfg.Warnings())
	}
	for _, w := range cfg.Warnings() {
		if !strings.Contains(w.Error(), "enableServiceLinks") {
			t.Errorf("warning %q does not say how to stop it", w)
		}
	}
	// The same names with values of another shape are not Kubernetes' doing.
	for _, kv := range []string{"PUBLISHER_SERVICE_HOST=desk", "PUBLISHER_PORT=8080", "PUBLISHER_PORT_80_TCP_PROTO=http"} {
		if _, err := Load(filepath.Join(t.TempDir(), "none.yaml"), false, []string{kv}); err == nil {
			t.Errorf("%s accepted", kv)
		}
	}
}

func TestDKIMAlignmentWarns(t *testing.T) {
	for _, c := range []struct {
		domain string
		warn   bool
	}{{"desk.example.org", false}, {"example.org", false}, {"news.example.org", false}, {"example.com", true}, {"desk.example.org.evil.example", true}} {
		env := []string{"PUBLISHER_MAIL_FROM=Desk <digest@desk.example.org>", "PUBLISHER_MAIL_DKIM_DOMAIN=" + c.domain, "PUBLISHER_MAIL_DKIM_SELECTOR=s1", "PUBLISHER_MAIL_DKIM_KEY_FILE=k.pem"}
		cfg, err := Load(filepath.Join(t.TempDir(), "none.yaml"), false, env)
		if err != nil {
			t.Fatal(err)
		}
		got := len(cfg.Warnings()) == 1 && strings.Contains(cfg.Warnings()[0].Error(), "mail.dkim.domain")
		if got != c.warn {
			t.Errorf("d=%s: warnings %v, want a warning: %v", c.domain, cfg.Warnings(), c.warn)
		}
	}
}

func TestShutdownWaitCoversAMessageOnTheWire(t *testing.T) {
	cfg := Defaults()
	if got := cfg.ShutdownWait(); got != 15*time.Second+60*time.Second+shutdownMargin {
		t.Errorf("default wait %v", got)
	}
	cfg.Grace = 10 * time.Minute
	if got := cfg.ShutdownWait(); got != 10*time.Minute {
		t.Errorf("a longer grace is kept: %v", got)
	}
}

func TestPostgresWithDSN(t *testing.T) {
	cfg, err := Load(filepath.Join(t.TempDir(), "none.yaml"), false, []string{"PUBLISHER_STORE_DRIVER=postgres", "PUBLISHER_STORE_DSN=postgres://db/publisher"})
	if err != nil || cfg.Store.Driver != "postgres" {
		t.Fatalf("%v %+v", err, cfg)
	}
}
