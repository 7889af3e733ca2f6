package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"publisher/internal/mailpittest"
)

// mailpit is a Mailpit server (installed by scripts/test.sh) on loopback ports.
type mailpit struct {
	smtpPort int
	api      string
}

func startMailpit(t *testing.T) *mailpit {
	t.Helper()
	s := mailpittest.Start(t, mailpittest.Options{})
	return &mailpit{smtpPort: s.SMTPPort, api: s.API}
}

func (m *mailpit) get(t *testing.T, path string, v any) {
	t.Helper()
	resp, err := http.Get(m.api + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// TestDigestsThroughMailpit sends the sample content to Mailpit, a stricter SMTP
// server than the in-process one, and asks it what mail clients will make of the
// result: the List-Unsubscribe headers parsed without error, one-click offered,
// and the HTML's support across clients (Mailpit's caniemail-based check).
func TestDigestsThroughMailpit(t *testing.T) {
	mp := startMailpit(t)
	d := &desk{t: t, dir: t.TempDir()}
	root := repoRoot(t)
	for _, sub := range []string{"content", "subscribers"} {
		copyTree(t, filepath.Join(root, sub), filepath.Join(d.dir, sub))
	}
	yaml, err := os.ReadFile(filepath.Join(root, "publisher.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	d.write("publisher.yaml", string(yaml))
	d.env = []string{
		"PUBLISHER_MAIL_TRANSPORT=smtp", "PUBLISHER_MAIL_SMTP_HOST=127.0.0.1",
		fmt.Sprintf("PUBLISHER_MAIL_SMTP_PORT=%d", mp.smtpPort), "PUBLISHER_MAIL_SMTP_TLS=none",
		"PUBLISHER_SECRET=mailpit-test-secret-0123456789-0123456789", "PUBLISHER_SITE_BASE_URL=https://desk.example.org/",
	}
	r := d.run("run")
	if r.code != 0 {
		t.Fatalf("run exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	var list struct {
		Total    int
		Messages []struct {
			ID string
			To []struct{ Address string }
		}
	}
	mp.get(t, "messages", &list)
	if list.Total != 5 {
		t.Fatalf("Mailpit holds %d messages, want one per sample subscriber (5)", list.Total)
	}
	for _, msg := range list.Messages {
		var full struct {
			Subject         string
			Text, HTML      string
			ListUnsubscribe struct {
				Header, Errors, HeaderPost string
				Links                      []string
			}
		}
		mp.get(t, "message/"+msg.ID, &full)
		lu := full.ListUnsubscribe
		if lu.Errors != "" || lu.HeaderPost != "List-Unsubscribe=One-Click" || len(lu.Links) != 2 ||
			!strings.HasPrefix(lu.Links[0], "https://desk.example.org/unsubscribe?token=") || !strings.HasPrefix(lu.Links[1], "mailto:") {
			t.Errorf("%s: List-Unsubscribe as Mailpit reads it: %+v", msg.To[0].Address, lu)
		}
		if full.Subject == "" || full.Text == "" || full.HTML == "" {
			t.Errorf("%s: subject, text or HTML missing", msg.To[0].Address)
		}
		var check struct {
			Total struct{ Supported, Unsupported float64 }
		}
		mp.get(t, "message/"+msg.ID+"/html-check", &check)
		t.Logf("%s: HTML supported by %.1f%% of client tests, unsupported %.1f%%", msg.To[0].Address, check.Total.Supported, check.Total.Unsupported)
		if check.Total.Supported < 85 || check.Total.Unsupported > 5 {
			t.Errorf("%s: HTML compatibility %.1f%% supported, %.1f%% unsupported", msg.To[0].Address, check.Total.Supported, check.Total.Unsupported)
		}
	}
}
