package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"publisher/internal/smtptest"
)

// exported is the part of subscribers export EMAIL the tests read.
type exported struct {
	Email      string
	Subscriber *struct {
		Email, Name, Status, Source string
		ConsentSource               string     `json:"consent_source"`
		JoinedAt                    *time.Time `json:"joined_at"`
	}
	History []struct {
		From, To, By, Reason string
		At                   time.Time
	} `json:"status_history"`
	Deliveries []struct {
		Status    string
		Pieces    []string
		MessageID string     `json:"message_id"`
		SentAt    *time.Time `json:"sent_at"`
	}
	Events []struct{ Source, Kind, Effect string }
}

// A person's data round trip through the binary: export shows all of it,
// erase deletes all of it (and says so), the database's file holds no copy,
// and the list file that still lists the address does not bring it back.
func TestExportEraseRoundTrip(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	d := newDesk(t, smtpConfig(srv.Port, ""))
	d.piece("one", "One", "energy")
	d.write("subscribers/list.csv", "email,name\nann.erased@example.org,Ann\nbob@example.org,Bob\n")
	if r := d.run("run"); r.code != 0 {
		t.Fatalf("run: %d\n%s", r.code, r.stderr)
	}

	r := d.run("subscribers", "export", "Ann.Erased@example.org")
	if r.code != 0 {
		t.Fatalf("export: %d\n%s", r.code, r.stderr)
	}
	var p exported
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
		t.Fatalf("export is not JSON: %v\n%s", err, r.stdout)
	}
	if p.Email != "ann.erased@example.org" || p.Subscriber == nil || p.Subscriber.Name != "Ann" || p.Subscriber.Status != "active" ||
		p.Subscriber.Source != "file" || !strings.HasSuffix(p.Subscriber.ConsentSource, "list.csv:2") || p.Subscriber.JoinedAt == nil {
		t.Errorf("export: subscriber %+v", p.Subscriber)
	}
	if len(p.History) != 1 || p.History[0].To != "active" || p.History[0].By != "sync" {
		t.Errorf("export: history %+v", p.History)
	}
	if len(p.Deliveries) != 1 || p.Deliveries[0].Status != "sent" || p.Deliveries[0].MessageID == "" || p.Deliveries[0].SentAt == nil ||
		strings.Join(p.Deliveries[0].Pieces, ",") != "one" {
		t.Errorf("export: deliveries %+v", p.Deliveries)
	}
	if err := os.WriteFile(filepath.Join(d.dir, "export.json"), []byte(r.stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	// --out writes the same, readable by its owner only.
	if r := d.run("subscribers", "export", "ann.erased@example.org", "--out", "ann.json"); r.code != 0 {
		t.Fatalf("export --out: %d %s", r.code, r.stderr)
	}
	if fi, err := os.Stat(filepath.Join(d.dir, "ann.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("export --out: %v %v", fi, err)
	}
	if r := d.run("subscribers", "export", "ann.erased@example.org", "--status", "active"); r.code != 2 {
		t.Errorf("export EMAIL --status: exit %d", r.code)
	}

	r = d.run("subscribers", "erase", "ann.erased@example.org")
	if r.code != 0 || !strings.Contains(r.stdout, "ann.erased@example.org: erased the subscriber, 1 status change, 1 delivery, 0 events") {
		t.Fatalf("erase: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, f := range []string{"data/publisher.db", "data/publisher.db-wal"} {
		b, err := os.ReadFile(filepath.Join(d.dir, f))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("ann.erased@example.org")) {
			t.Errorf("%s still holds the erased address", f)
		}
	}
	if r := d.run("subscribers", "export", "ann.erased@example.org"); r.code != 1 || !strings.Contains(r.stderr, "erased on request") {
		t.Errorf("export after erasure: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := d.run("subscribers", "history", "ann.erased@example.org"); r.code != 1 || !strings.Contains(r.stderr, "erased on request") {
		t.Errorf("history after erasure: %d\n%s", r.code, r.stderr)
	}

	// The list file still lists her: the next run does not add her back, and
	// says which row to remove.
	before := srv.PerRecipient()
	d.piece("two", "Two", "energy")
	r = d.run("run")
	if r.code != 0 {
		t.Fatalf("run after erasure: %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "an address erased on request is listed") || !strings.Contains(r.stderr, "list.csv:2") || strings.Contains(r.stderr, "ann.erased@") {
		t.Errorf("the run does not say where the erased address is listed, or names it:\n%s", r.stderr)
	}
	after := srv.PerRecipient()
	if after["ann.erased@example.org"] != before["ann.erased@example.org"] || after["bob@example.org"] != before["bob@example.org"]+1 {
		t.Errorf("digests before %v, after %v", before, after)
	}
	if list := d.run("subscribers", "list"); strings.Contains(list.stdout, "ann.erased@") {
		t.Errorf("re-added by the list file:\n%s", list.stdout)
	}
	// Nor by hand, unless the operator says so.
	if r := d.run("subscribers", "add", "ann.erased@example.org"); r.code != 1 || !strings.Contains(r.stderr, "--after-erasure") {
		t.Errorf("add after erasure: %d\n%s", r.code, r.stderr)
	}
	d.write("import.csv", "email\nann.erased@example.org\ncarl@example.org\n")
	if r := d.run("subscribers", "import", "import.csv"); r.code != 1 || !strings.Contains(r.stderr, "import.csv:2") || !strings.Contains(r.stdout, "imported 1 subscribers, 1 problems") {
		t.Errorf("import after erasure: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := d.run("subscribers", "add", "ann.erased@example.org", "--after-erasure"); r.code != 0 || !strings.Contains(r.stdout, "ann.erased@example.org: active") {
		t.Errorf("add --after-erasure: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := d.run("subscribers", "history", "ann.erased@example.org"); r.code != 0 || !strings.Contains(r.stdout, "added again after its erasure") {
		t.Errorf("history after coming back: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// An address never held: erased all the same, so that no list adds it.
	if r := d.run("subscribers", "erase", "never@example.org"); r.code != 0 || !strings.Contains(r.stdout, "nothing was held") {
		t.Errorf("erase of an unknown address: %d\n%s", r.code, r.stdout)
	}
	if r := d.run("subscribers", "erase"); r.code != 2 {
		t.Errorf("erase without an address: exit %d", r.code)
	}
}

// An operator lifts a suppression: the reason is required, recorded, and the
// address is mailed again.
func TestUnsuppressRecordsTheReason(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	d := newDesk(t, smtpConfig(srv.Port, ""))
	d.piece("one", "One", "energy")
	d.write("subscribers/list.csv", "email\ncora@example.org\n")
	if r := d.run("run"); r.code != 0 {
		t.Fatalf("run: %d\n%s", r.code, r.stderr)
	}
	if r := d.run("subscribers", "suppress", "cora@example.org", "--as", "bounced"); r.code != 0 {
		t.Fatalf("suppress: %d %s", r.code, r.stderr)
	}
	if r := d.run("subscribers", "unsuppress", "cora@example.org"); r.code != 2 || !strings.Contains(r.stderr, "--reason is required") {
		t.Errorf("without a reason: %d\n%s", r.code, r.stderr)
	}
	r := d.run("subscribers", "unsuppress", "cora@example.org", "--reason", "relay misconfigured on 2 May, not her address")
	if r.code != 0 || !strings.Contains(r.stdout, "cora@example.org: bounced -> active") {
		t.Fatalf("unsuppress: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := d.run("subscribers", "unsuppress", "cora@example.org", "--reason", "again"); r.code != 1 || !strings.Contains(r.stderr, "not suppressed") {
		t.Errorf("unsuppress of an active address: %d\n%s", r.code, r.stderr)
	}
	if r := d.run("subscribers", "unsuppress", "nobody@example.org", "--reason", "x"); r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Errorf("unsuppress of an unknown address: %d\n%s", r.code, r.stderr)
	}
	h := d.run("subscribers", "history", "cora@example.org")
	lines := strings.Split(strings.TrimSpace(h.stdout), "\n")
	if h.code != 0 || len(lines) != 4 || !strings.HasPrefix(lines[0], "AT") ||
		!strings.Contains(lines[1], "(new)") || !strings.Contains(lines[1], "sync") ||
		!strings.Contains(lines[2], "bounced") || !strings.Contains(lines[2], "subscribers suppress --as bounced") ||
		!strings.Contains(lines[3], "active") || !strings.Contains(lines[3], "cli") || !strings.Contains(lines[3], "relay misconfigured on 2 May, not her address") {
		t.Fatalf("history: %d\n%s%s", h.code, h.stdout, h.stderr)
	}
	before := srv.PerRecipient()["cora@example.org"]
	d.piece("two", "Two", "energy")
	if r := d.run("run"); r.code != 0 {
		t.Fatalf("run: %d\n%s", r.code, r.stderr)
	}
	if srv.PerRecipient()["cora@example.org"] != before+1 {
		t.Errorf("not mailed after the suppression was lifted")
	}
	for _, sub := range []string{"unsuppress", "history", "erase", "export"} {
		if r := d.run("subscribers", sub, "--help"); r.code != 0 || !strings.Contains(r.stdout, "Usage: publisher subscribers "+sub) {
			t.Errorf("subscribers %s --help: %d\n%s", sub, r.code, r.stdout)
		}
	}
}
