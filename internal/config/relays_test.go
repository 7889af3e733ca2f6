package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const relaysBase = "secret: 0123456789abcdef0123456789abcdef\nsite:\n  base_url: https://desk.example.org/\nmail:\n  transport: smtp\n  smtp:\n"

func sameRelays(t *testing.T, got, want []Relay) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("relays = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("relay %d = %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func TestRelaysFromTheFile(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "relay-b")
	if err := os.WriteFile(pwFile, []byte("b-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := writeFile(t, relaysBase+`    helo: out.desk.example.org
    relays:
      - host: smtp-a.example.org
        username: desk
        connections: 6
        rate: 12.5
      - host: smtp-b.example.org
        port: 2525
        username: desk-b
        password_file: `+pwFile+`
        helo: b.desk.example.org
        connections: 2
      - smtps://desk-c@smtp-c.example.org?connections=3
`)
	cfg, err := Load(p, true, []string{"PUBLISHER_MAIL_SMTP_RELAYS_0_PASSWORD=a-secret"})
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Mail.SMTP.RelayList()
	want := []Relay{
		{Host: "smtp-a.example.org", Port: 587, Username: "desk", Password: "a-secret", TLS: "starttls", HELO: "out.desk.example.org", Connections: 6, Rate: 12.5},
		{Host: "smtp-b.example.org", Port: 2525, Username: "desk-b", Password: "b-secret", PasswordFile: pwFile, TLS: "starttls", HELO: "b.desk.example.org", Connections: 2},
		{Host: "smtp-c.example.org", Port: 465, Username: "desk-c", TLS: "tls", HELO: "out.desk.example.org", Connections: 3},
	}
	sameRelays(t, got, want)
	if n := cfg.Mail.SMTP.TotalConnections(); n != 11 {
		t.Errorf("TotalConnections = %d, want 11", n)
	}
}

func TestRelaysFromTheEnvironment(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("from-file"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The environment's list replaces the file's; numbered variables give the
	// passwords, change a key, or add the next relay.
	p := writeFile(t, relaysBase+"    relays:\n      - host: from-file.example.org\n")
	env := []string{
		"PUBLISHER_MAIL_SMTP_RELAYS=smtp://desk%40example.org@smtp-a.example.org:587?connections=4&rate=10,\n smtp://127.0.0.1:2525?tls=none&connections=1&password_file=" + pwFile,
		"PUBLISHER_MAIL_SMTP_RELAYS_0_PASSWORD=a-secret",
		"PUBLISHER_MAIL_SMTP_RELAYS_1_USERNAME=local",
		"PUBLISHER_MAIL_SMTP_RELAYS_2_HOST=smtp-c.example.org",
		"PUBLISHER_MAIL_SMTP_RELAYS_2_CONNECTIONS=8",
	}
	cfg, err := Load(p, true, env)
	if err != nil {
		t.Fatal(err)
	}
	want := []Relay{
		{Host: "smtp-a.example.org", Port: 587, Username: "desk@example.org", Password: "a-secret", TLS: "starttls", Connections: 4, Rate: 10},
		{Host: "127.0.0.1", Port: 2525, Username: "local", Password: "from-file", PasswordFile: pwFile, TLS: "none", Connections: 1},
		{Host: "smtp-c.example.org", Port: 587, TLS: "starttls", Connections: 8},
	}
	got := cfg.Mail.SMTP.RelayList()
	sameRelays(t, got, want)
}

func TestOneRelayIsTheSingleRelayKeys(t *testing.T) {
	cfg, err := Load(writeFile(t, relaysBase+"    host: smtp.example.org\n    username: desk\n    connections: 7\n    rate: 3\n"), true,
		[]string{"PUBLISHER_MAIL_SMTP_PASSWORD=pw"})
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Mail.SMTP.RelayList()
	want := Relay{Host: "smtp.example.org", Port: 587, Username: "desk", Password: "pw", TLS: "starttls", Connections: 7, Rate: 3}
	if len(got) != 1 || got[0] != want {
		t.Errorf("RelayList = %+v, want [%+v]", got, want)
	}
	if cfg.Mail.SMTP.TotalConnections() != 7 {
		t.Errorf("TotalConnections = %d", cfg.Mail.SMTP.TotalConnections())
	}
}

func TestRelayErrorsNameTheRelayAndTheLine(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-file")
	cases := []struct {
		name, file string
		env        []string
		want       []string
	}{
		{"bad port", "    relays:\n      - host: a.example.org\n      - host: b.example.org\n        port: 70000\n", nil,
			[]string{"publisher.yaml:10: mail.smtp.relays[1].port: must be 1-65535"}},
		{"not a number", "    relays:\n      - host: a.example.org\n        connections: many\n", nil,
			[]string{"publisher.yaml:9: mail.smtp.relays[0].connections: not a whole number"}},
		{"unknown key", "    relays:\n      - host: a.example.org\n        hots: b\n", nil,
			[]string{"publisher.yaml:9: mail.smtp.relays[0].hots: unknown key"}},
		{"no host", "    relays:\n      - connections: 2\n", nil,
			[]string{"publisher.yaml:8: mail.smtp.relays[0].host: must be a host name"}},
		{"too many connections", "    relays:\n      - host: a.example.org\n        connections: 201\n", nil,
			[]string{"publisher.yaml:9: mail.smtp.relays[0].connections: must be 1-200"}},
		{"tls none off loopback", "    relays:\n      - host: 127.0.0.1\n        tls: none\n      - host: b.example.org\n        tls: none\n", nil,
			[]string{"publisher.yaml:11: mail.smtp.relays[1].tls: none is only allowed for a loopback host"}},
		{"negative rate", "    relays:\n      - host: a.example.org\n        rate: -1\n", nil,
			[]string{"mail.smtp.relays[0].rate: must not be negative"}},
		{"not a list", "    relays: smtp://a.example.org\n", nil,
			[]string{"publisher.yaml:7: mail.smtp.relays: expected a list"}},
		{"bad URL item", "    relays:\n      - ftp://a.example.org\n", nil,
			[]string{"publisher.yaml:8: mail.smtp.relays[0]: scheme \"ftp\""}},
		{"password without user", "    relays:\n      - host: a.example.org\n", []string{"PUBLISHER_MAIL_SMTP_RELAYS_0_PASSWORD=x"},
			[]string{"publisher.yaml:8: mail.smtp.relays[0].username: must be set with a password"}},
		{"password file missing", "    relays:\n      - host: a.example.org\n        username: u\n        password_file: " + missing + "\n", nil,
			[]string{"publisher.yaml:10: mail.smtp.relays[0].password_file:", "no such file"}},
		{"password and file", "    relays:\n      - host: a.example.org\n        username: u\n        password: p\n        password_file: " + missing + "\n", nil,
			[]string{"mail.smtp.relays[0].password_file: give password or password_file, not both"}},
		{"same relay twice", "    relays:\n      - host: a.example.org\n      - host: A.example.org\n", nil,
			[]string{"publisher.yaml:9: mail.smtp.relays[1].host: the same relay and user as mail.smtp.relays[0]"}},
		{"single keys beside relays", "    host: smtp.example.org\n    connections: 8\n    relays:\n      - host: a.example.org\n", nil,
			[]string{"publisher.yaml:7: mail.smtp.host: is for a single relay", "publisher.yaml:8: mail.smtp.connections: is for a single relay"}},
		{"password in the URL", "", []string{"PUBLISHER_MAIL_SMTP_RELAYS=smtp://u:hunter2@a.example.org"},
			[]string{"PUBLISHER_MAIL_SMTP_RELAYS: mail.smtp.relays[0]: holds a password"}},
		{"unknown URL parameter", "", []string{"PUBLISHER_MAIL_SMTP_RELAYS=smtp://a.example.org,smtp://b.example.org?conections=2"},
			[]string{"PUBLISHER_MAIL_SMTP_RELAYS: mail.smtp.relays[1]: unknown parameter \"conections\""}},
		{"bad env relay value", "", []string{"PUBLISHER_MAIL_SMTP_RELAYS=smtp://a.example.org:99999"},
			[]string{"PUBLISHER_MAIL_SMTP_RELAYS: mail.smtp.relays[0].port: must be 1-65535"}},
		{"numbered variable with a gap", "", []string{"PUBLISHER_MAIL_SMTP_RELAYS_1_HOST=b.example.org"},
			[]string{"PUBLISHER_MAIL_SMTP_RELAYS_1_HOST: mail.smtp.relays[1].host: mail.smtp.relays has 0 elements"}},
		{"numbered variable of no key", "    relays:\n      - host: a.example.org\n", []string{"PUBLISHER_MAIL_SMTP_RELAYS_0_HOSTNAME=x"},
			[]string{"PUBLISHER_MAIL_SMTP_RELAYS_0_HOSTNAME: unknown environment variable"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(writeFile(t, relaysBase+c.file), true, c.env)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

func TestValidationErrorsNameTheLine(t *testing.T) {
	_, err := Load(writeFile(t, "digest:\n  default_cadence: hourly\n"), true, []string{"PUBLISHER_FEED_ITEMS=0"})
	for _, w := range []string{"publisher.yaml:2: digest.default_cadence: must be", "PUBLISHER_FEED_ITEMS: feed.items: must be positive"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not contain %q", err, w)
		}
	}
}

func TestKeysDescribeRelayKeys(t *testing.T) {
	byPath := map[string]Key{}
	for _, k := range Keys() {
		byPath[k.Path] = k
	}
	for path, env := range map[string]string{
		"mail.smtp.relays":                  "PUBLISHER_MAIL_SMTP_RELAYS",
		"mail.smtp.relays[N].host":          "PUBLISHER_MAIL_SMTP_RELAYS_N_HOST",
		"mail.smtp.relays[N].password":      "PUBLISHER_MAIL_SMTP_RELAYS_N_PASSWORD",
		"mail.smtp.relays[N].connections":   "PUBLISHER_MAIL_SMTP_RELAYS_N_CONNECTIONS",
		"mail.smtp.relays[N].rate":          "PUBLISHER_MAIL_SMTP_RELAYS_N_RATE",
		"mail.smtp.relays[N].password_file": "PUBLISHER_MAIL_SMTP_RELAYS_N_PASSWORD_FILE",
	} {
		if k, ok := byPath[path]; !ok || k.Env != env || k.Doc == "" {
			t.Errorf("%s: %+v, want env %s and a description", path, k, env)
		}
	}
	if k := byPath["mail.smtp.relays[N].connections"]; k.Default != "4" {
		t.Errorf("relay connections default %q, want 4", k.Default)
	}
	if k := byPath["mail.smtp.relays"]; k.Default != "" {
		t.Errorf("relays default %q, want none", k.Default)
	}
}
