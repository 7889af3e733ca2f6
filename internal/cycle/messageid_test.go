package cycle

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"publisher/internal/smtptest"
	"publisher/internal/store"
)

var messageIDShape = regexp.MustCompile(`^<digest\.[a-z2-7]{32}@desk\.example\.org>$`)

// received maps each recipient to the Message-IDs of what it received.
func (b *bench) received() map[string][]string {
	out := map[string][]string{}
	for _, m := range b.srv.Messages() {
		out[m.To[0]] = append(out[m.To[0]], m.Header().Get("Message-ID"))
	}
	return out
}

// A delivery keeps its Message-ID from its first attempt to the one that goes
// through (the ledger has it from the first), and no other message ever gets
// it: not the same digest planned again from a restored backup, not another
// installation with the same list.
func TestMessageIDsStableAcrossRetriesAndNeverReused(t *testing.T) {
	start := vilnius(t, "2026-12-03 09:00")
	b := newBench(t, start)
	b.cfg.Mail.RetryBase = time.Hour
	b.piece("one", "One", "")
	b.listOf(2)
	var tries atomic.Int32
	b.srv.SetOptions(smtptest.Options{Rcpt: func(rcpt string) *smtpError {
		if rcpt == reader(0) && tries.Add(1) == 1 {
			return tempFail
		}
		return nil
	}})
	if sum, _ := b.run(); sum.Sent != 1 || sum.Pending != 1 {
		t.Fatalf("first run: %s", sum)
	}
	first := b.delivery(reader(0)).messageID
	b.now = b.now.Add(2 * time.Hour)
	if sum, _ := b.run(); sum.Sent != 1 {
		t.Fatalf("retry: %s", sum)
	}
	got := b.received()
	if id := got[reader(0)][0]; id != "<"+first+">" || !messageIDShape.MatchString(id) {
		t.Fatalf("the retried message went out as %s; its first attempt was recorded as %s", id, first)
	}

	// A backup of the database now; the next digest; then the backup restored
	// and the next digest planned again, under the same digest id.
	backup := filepath.Join(t.TempDir(), "backup.db")
	db, err := sql.Open("sqlite", b.cfg.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("VACUUM INTO ?", backup); err != nil {
		t.Fatal(err)
	}
	db.Close()
	b.piece("two", "Two", "")
	b.now = b.now.Add(time.Hour)
	b.run()
	before := b.delivery(reader(1))
	b.store.Close()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		_ = os.Remove(b.cfg.DBPath() + suffix)
	}
	data, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b.cfg.DBPath(), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if b.store, err = store.OpenSQLite(context.Background(), b.cfg.DBPath()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.store.Close() })
	b.now = b.now.Add(time.Hour)
	b.run()
	after := b.delivery(reader(1))
	if after.digestID != before.digestID || after.messageID == before.messageID {
		t.Fatalf("restored backup: digest %d gave %s, digest %d again gives %s", before.digestID, before.messageID, after.digestID, after.messageID)
	}

	// Another installation, same list, same moment: ids of its own.
	other := newBench(t, start)
	other.cfg.Mail.RetryBase = time.Hour
	other.piece("one", "One", "")
	other.listOf(2)
	other.run()
	seen := map[string]bool{}
	for _, srv := range []map[string][]string{b.received(), other.received()} {
		for _, ids := range srv {
			for _, id := range ids {
				if seen[id] || !messageIDShape.MatchString(id) {
					t.Errorf("Message-ID %s reused or malformed", id)
				}
				seen[id] = true
			}
		}
	}
	if len(seen) != 8 {
		t.Errorf("%d distinct Message-IDs, want 8 (two digests of two, the second again after the restore, and two elsewhere)", len(seen))
	}
}
