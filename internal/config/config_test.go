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
	if cfg.Content.Dir != "pieces" || cfg.Output.Dir != "public" || cfg.Feed.Items != 20 {
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
		{"tls none off loopback", "secret: s3cr3t-long\nmail:\n  transport: smtp\n  smtp:\n    host: smtp.example.org\n    tls: none\n", nil, []string{"mail.smtp.tls: none is only allowed for a loopback host"}},
		{"several at once", "feed:\n  items: 0\ndigest:\n  send_at: 7am\n  timezone: Mars/Olympus\n", nil, []string{"feed.items", "digest.send_at", "digest.timezone"}},
		{"bad page size", "site:\n  page_size: 0\n", nil, []string{"site.page_size: must be 1-500"}},
		{"bad digest body", "digest:\n  body: excerpt\n", nil, []string{"digest.body: must be summary or full"}},
		{"bad opml format", "feed:\n  opml_format: rdf\n", nil, []string{"feed.opml_format: must be rss, atom or json"}},
		{"bad id authority", "feed:\n  id_authority: https://desk.example.org/\n", nil, []string{"feed.id_authority: must be a host name"}},
		{"bad asset limit", "content:\n  max_asset_bytes: 0\n", nil, []string{"content.max_asset_bytes: must be positive"}},
		{"not yaml", "site: [unclosed\n", nil, []string{"publisher.yaml"}},
		{"scalar where mapping", "site: hello\n", nil, []string{"site: expected a mapping"}},
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
		"PUBLISHER_MAIL_SMTP_PORT=1025", "PUBLISHER_MAIL_SMTP_TLS=none", "PUBLISHER_SECRET=0123456789abcdef",
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
