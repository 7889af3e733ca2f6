package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// tablesHolding lists every table with a row in which some column holds s.
func tablesHolding(t *testing.T, s *DB, needle string) []string {
	t.Helper()
	var tables []string
	q := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`
	if s.Engine() == "postgres" {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`
	}
	rows, err := s.db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	if len(tables) < 10 {
		t.Fatalf("only %d tables found: %v", len(tables), tables)
	}
	var holding []string
	for _, table := range tables {
		rows, err := s.db.Query(`SELECT * FROM ` + table)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		found := false
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				if b, ok := v.([]byte); ok {
					v = string(b)
				}
				if strings.Contains(strings.ToLower(fmt.Sprint(v)), needle) {
					found = true
				}
			}
		}
		rows.Close()
		if found {
			holding = append(holding, table)
		}
	}
	return holding
}

// Export gives all that is held about one person; Erase deletes all of it
// but a keyed hash, which keeps the list files and the sign-up form from
// adding the address again, while an operator may, saying so.
func TestExportEraseRoundTrip(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		list := []SubscriberInput{
			{Email: "keep@example.org", ConsentSource: "file list.csv:2"},
			{Email: "Ann@Example.org", Name: "Ann", ConsentSource: "file list.csv:3"},
		}
		if _, err := syncRows(s, ctx, list, t0); err != nil {
			t.Fatal(err)
		}
		ann, _ := s.SubscriberByEmail(ctx, "ann@example.org")
		keep, _ := s.SubscriberByEmail(ctx, "keep@example.org")
		sent := sentDelivery(t, s, ann, "digest-1-ann@desk.example.org")
		sentDelivery(t, s, keep, "digest-2-keep@desk.example.org")
		record(t, s, Event{Source: "dsn", ID: "r1/ann@example.org/delayed", Kind: EventDelayed, By: ByMailbox, MessageID: "digest-1-ann@desk.example.org", Diagnostic: "451 try later"}, 3)
		record(t, s, Event{Source: "arf", ID: "c1", Kind: EventComplaint, By: ByMailbox, Recipient: "ann@example.org"}, 3)
		record(t, s, Event{Source: "sendgrid", ID: "sg-keep", Kind: EventDelivered, By: ByWebhook, Recipient: "keep@example.org"}, 3)
		// An event about an address we hold nothing else about is the person's too.
		record(t, s, Event{Source: "dsn", ID: "r9", Kind: EventHardBounce, By: ByMailbox, Recipient: "ghost@example.org"}, 3)

		p, err := s.Export(ctx, "ANN@example.org")
		if err != nil {
			t.Fatal(err)
		}
		if p.Subscriber.ID != ann.ID || p.Subscriber.Status != StatusComplained || p.Subscriber.Name != "Ann" {
			t.Errorf("subscriber: %+v", p.Subscriber)
		}
		var hist []string
		for _, c := range p.History {
			hist = append(hist, c.From+">"+c.To+" "+c.By)
		}
		if want := []string{">active sync", "active>complained mailbox"}; !reflect.DeepEqual(hist, want) {
			t.Errorf("history %q, want %q", hist, want)
		}
		if len(p.Deliveries) != 1 || p.Deliveries[0].ID != sent || p.Deliveries[0].Status != DeliverySent ||
			p.Deliveries[0].MessageID != "digest-1-ann@desk.example.org" || !p.Deliveries[0].SentAt.Equal(t0) ||
			!reflect.DeepEqual(p.Deliveries[0].PieceIDs, []string{"p"}) || p.Deliveries[0].Attempts != 1 {
			t.Errorf("deliveries: %+v", p.Deliveries)
		}
		if len(p.Events) != 2 || p.Events[0].Kind != EventDelayed || p.Events[0].DeliveryID != sent || p.Events[0].Diagnostic != "451 try later" ||
			p.Events[1].Kind != EventComplaint || p.Events[1].Effect != EffectSuppressed || p.Events[1].ReceivedAt.IsZero() {
			t.Errorf("events: %+v", p.Events)
		}
		if ghost, err := s.Export(ctx, "ghost@example.org"); err != nil || ghost.Subscriber.ID != 0 || len(ghost.Events) != 1 {
			t.Errorf("only an event: %+v %v", ghost, err)
		}
		if _, err := s.Export(ctx, "nobody@example.org"); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrErased) {
			t.Errorf("unknown address: %v", err)
		}

		if held := tablesHolding(t, s, "ann@example.org"); !reflect.DeepEqual(slices.Sorted(slices.Values(held)), []string{"events", "subscribers"}) {
			t.Errorf("before erasure, the address is in %v", held)
		}
		// Erase: every row that names Ann goes, and nobody else's.
		t1 := t0.Add(24 * time.Hour)
		res, err := s.Erase(ctx, " ann@EXAMPLE.org", t1)
		if err != nil {
			t.Fatal(err)
		}
		if want := (Erasure{Subscriber: true, Deliveries: 1, History: 2, Events: 2}); res != want {
			t.Errorf("erased %+v, want %+v", res, want)
		}
		if held := tablesHolding(t, s, "ann@example.org"); len(held) != 0 {
			t.Errorf("tables still holding the address: %v", held)
		}
		if held := tablesHolding(t, s, "digest-1-ann"); len(held) != 0 {
			t.Errorf("tables still holding the delivery's Message-ID: %v", held)
		}
		if p, err := s.Export(ctx, "keep@example.org"); err != nil || len(p.Deliveries) != 1 || len(p.Events) != 1 || len(p.History) != 1 {
			t.Errorf("another subscriber's data: %+v %v", p, err)
		}
		_, err = s.Export(ctx, "ann@example.org")
		if !errors.Is(err, ErrNotFound) || !errors.Is(err, ErrErased) || !strings.Contains(err.Error(), t1.Format(time.DateOnly)) {
			t.Errorf("export after erasure: %v", err)
		}
		if _, err := s.Unsuppress(ctx, "ann@example.org", "asked", t1); !errors.Is(err, ErrErased) {
			t.Errorf("unsuppress after erasure: %v", err)
		}
		// The hash is keyed: not the plain SHA-256 that advertisers match on.
		var hash string
		if err := s.db.QueryRow(`SELECT email_hash FROM erasures`).Scan(&hash); err != nil {
			t.Fatal(err)
		}
		plain := sha256.Sum256([]byte("ann@example.org"))
		if hash == hex.EncodeToString(plain[:]) || len(hash) != 64 {
			t.Errorf("erasure hash %q", hash)
		}

		// The list file still gives her: she is not added again, and the sync
		// says where, without her address.
		sync, err := syncRows(s, ctx, list, t1)
		if err != nil {
			t.Fatal(err)
		}
		if sync.Added != 0 || sync.Erased != 1 || !reflect.DeepEqual(sync.ErasedOrigins, []string{"file list.csv:3"}) {
			t.Errorf("sync after erasure: %+v", sync)
		}
		if _, err := s.SubscriberByEmail(ctx, "ann@example.org"); !errors.Is(err, ErrNotFound) {
			t.Errorf("re-added by the list: %v", err)
		}
		// Nor by the sign-up form, nor by an operator who does not say so.
		for _, source := range []string{SourceWeb, SourceCLI} {
			if _, err := s.AddSubscriber(ctx, SubscriberInput{Email: "ann@example.org", Source: source}, t1); !errors.Is(err, ErrErased) {
				t.Errorf("%s add after erasure: %v", source, err)
			}
		}
		// An event about her is not kept.
		res2, err := s.RecordEvent(ctx, Event{Source: "arf", ID: "c2", Kind: EventComplaint, By: ByMailbox, Recipient: "ann@example.org"}, 3, t1)
		if err != nil || res2.New || res2.Effect != EffectErased {
			t.Errorf("event after erasure: %+v %v", res2, err)
		}
		if held := tablesHolding(t, s, "ann@example.org"); len(held) != 0 {
			t.Errorf("tables holding the address after the sync, sign-ups and event: %v", held)
		}

		// An operator adds her again, saying so: the erasure is forgotten.
		back, err := s.AddSubscriber(ctx, SubscriberInput{Email: "ann@example.org", Source: SourceCLI, ConsentSource: "cli", AfterErasure: true}, t1)
		if err != nil || back.Status != StatusActive {
			t.Fatalf("add after erasure, saying so: %+v %v", back, err)
		}
		if got := history(t, s, "ann@example.org"); len(got) != 1 || !strings.Contains(got[0], "added again after its erasure on "+t1.Format(time.DateOnly)) {
			t.Errorf("history: %q", got)
		}
		if n := rowCount(t, s, "erasures"); n != 0 {
			t.Errorf("%d erasures left", n)
		}
	})
}

func rowCount(t *testing.T, s *DB, table string) int {
	t.Helper()
	var n int
	if err := s.db.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Erasing an address never held still keeps it from being added; erasing
// one a live run is sending to waits for the run.
func TestEraseUnknownAndInFlight(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		res, err := s.Erase(ctx, "never@example.org", t0)
		if err != nil || res != (Erasure{}) {
			t.Fatalf("unknown: %+v %v", res, err)
		}
		if sync, err := syncRows(s, ctx, []SubscriberInput{{Email: "never@example.org", ConsentSource: "file a.csv:2"}}, t0); err != nil || sync.Added != 0 || sync.Erased != 1 {
			t.Fatalf("sync: %+v %v", sync, err)
		}
		// Erasing twice is fine.
		if _, err := s.Erase(ctx, "never@example.org", t0); err != nil {
			t.Fatal(err)
		}

		busy := mustAdd(t, s, "busy@example.org")
		tl := testLease(t, s)
		digest, _ := s.CreateDigest(ctx, t0)
		if err := s.PlanDeliveries(ctx, tl, digest, []PlannedDelivery{{SubscriberID: busy.ID, PieceIDs: []string{"p"}, Watermark: t0}}, t0); err != nil {
			t.Fatal(err)
		}
		// Planned but not claimed: erasable.
		if _, err := s.Erase(ctx, "busy@example.org", t0); err != nil {
			t.Fatalf("planned, not claimed: %v", err)
		}
		busy, err = s.AddSubscriber(ctx, SubscriberInput{Email: "busy@example.org", AfterErasure: true}, t0)
		if err != nil {
			t.Fatal(err)
		}
		digest, _ = s.CreateDigest(ctx, t0)
		if err := s.PlanDeliveries(ctx, tl, digest, []PlannedDelivery{{SubscriberID: busy.ID, PieceIDs: []string{"p"}, Watermark: t0}}, t0); err != nil {
			t.Fatal(err)
		}
		if ds, err := s.ClaimDeliveries(ctx, tl.Fence, 0, t0, 10); err != nil || len(ds) != 1 {
			t.Fatalf("claim: %v %v", ds, err)
		}
		if _, err := s.Erase(ctx, "busy@example.org", t0); !errors.Is(err, ErrInFlight) {
			t.Fatalf("held by a live sender: %v", err)
		}
		if _, err := s.SubscriberByEmail(ctx, "busy@example.org"); err != nil {
			t.Fatalf("a refused erasure deleted something: %v", err)
		}
		if err := s.ReleaseLease(ctx, tl); err != nil {
			t.Fatal(err)
		}
		if res, err := s.Erase(ctx, "busy@example.org", t0); err != nil || res.Deliveries != 1 {
			t.Fatalf("after the run: %+v %v", res, err)
		}
	})
}

// On SQLite an erased address leaves no copy in the database's files: not in
// free space, not in the write-ahead log.
func TestEraseLeavesNoCopyInTheSQLiteFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "publisher.db")
	s, err := OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	const email = "erase-me-completely@example.org"
	if _, err := syncRows(s, ctx, []SubscriberInput{{Email: email, Name: "Erase Me", ConsentSource: "file list.csv:2"}}, t0); err != nil {
		t.Fatal(err)
	}
	sub, _ := s.SubscriberByEmail(ctx, email)
	sentDelivery(t, s, sub, "digest-1-1@desk.example.org")
	record(t, s, Event{Source: "dsn", ID: "r/" + email + "/delayed", Kind: EventDelayed, By: ByMailbox, Recipient: email}, 3)
	for i := range 50 {
		mustAdd(t, s, fmt.Sprintf("other%d@example.org", i))
		// Rewritten, longer each time, so that the row moves and leaves old
		// copies behind in free space.
		if _, err := s.AddSubscriber(ctx, SubscriberInput{Email: email, Name: strings.Repeat("n", 10*i), Source: SourceFile}, t0); err != nil {
			t.Fatal(err)
		}
	}
	files := func() []byte {
		var all []byte
		for _, f := range []string{path, path + "-wal"} {
			b, err := os.ReadFile(f)
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			all = append(all, b...)
		}
		return all
	}
	if !bytes.Contains(files(), []byte(email)) {
		t.Fatal("the address is not in the files before erasure: the test proves nothing")
	}
	if _, err := s.Erase(ctx, email, t0); err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(files(), []byte(email)); n != 0 {
		t.Fatalf("the erased address is still in the database's files %d times", n)
	}
}
