package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func mustAdd(t testing.TB, s *DB, email string) Subscriber {
	t.Helper()
	sub, err := s.AddSubscriber(context.Background(), SubscriberInput{Email: email, Source: SourceCLI}, t0)
	if err != nil {
		t.Fatalf("add %s: %v", email, err)
	}
	return sub
}

func TestRecordPiecesKeepsFirstSeen(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		got, err := s.RecordPieces(ctx, []PieceSeen{{ID: "a", Hash: "h1"}, {ID: "b", Hash: "h1"}}, t0)
		if err != nil {
			t.Fatal(err)
		}
		if !got["a"].Equal(t0) || !got["b"].Equal(t0) {
			t.Fatalf("first run: %v", got)
		}
		later := t0.Add(48 * time.Hour)
		got, err = s.RecordPieces(ctx, []PieceSeen{{ID: "a", Hash: "h2"}, {ID: "b", Hash: "h1"}, {ID: "c", Hash: "x"}}, later)
		if err != nil {
			t.Fatal(err)
		}
		if !got["a"].Equal(t0) || !got["b"].Equal(t0) || !got["c"].Equal(later) || len(got) != 3 {
			t.Fatalf("second run: %v", got)
		}
		var hashA string
		var updA, updB int64
		if err := s.db.QueryRow(s.bind(`SELECT hash, updated_at FROM pieces WHERE id = 'a'`)).Scan(&hashA, &updA); err != nil {
			t.Fatal(err)
		}
		if err := s.db.QueryRow(s.bind(`SELECT updated_at FROM pieces WHERE id = 'b'`)).Scan(&updB); err != nil {
			t.Fatal(err)
		}
		if hashA != "h2" || updA != later.UnixMicro() || updB != t0.UnixMicro() {
			t.Errorf("hash a=%s updated a=%d b=%d", hashA, updA, updB)
		}
		if _, err := s.RecordPieces(ctx, []PieceSeen{{ID: ""}}, later); err == nil {
			t.Error("empty id accepted")
		}
	})
}

// The summary of the pieces follows what is recorded: the count of ids and
// the latest first-seen time, which a piece recorded again does not move.
func TestPiecesSummaryFollowsTheRecordedPieces(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		summary := func() PiecesSummary {
			t.Helper()
			sum, err := s.PiecesSummary(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return sum
		}
		if got := summary(); got != (PiecesSummary{}) {
			t.Fatalf("empty store: %+v", got)
		}
		if _, err := s.RecordPieces(ctx, []PieceSeen{{ID: "a", Hash: "h1"}, {ID: "b", Hash: "h1"}}, t0); err != nil {
			t.Fatal(err)
		}
		if got := summary(); got.Count != 2 || !got.Newest.Equal(t0) {
			t.Fatalf("after a and b: %+v", got)
		}
		later := t0.Add(time.Hour)
		if _, err := s.RecordPieces(ctx, []PieceSeen{{ID: "a", Hash: "h2"}}, later); err != nil {
			t.Fatal(err)
		}
		if got := summary(); got.Count != 2 || !got.Newest.Equal(t0) {
			t.Fatalf("after a was recorded again: %+v", got)
		}
		if _, err := s.RecordPieces(ctx, []PieceSeen{{ID: "c", Hash: "h1"}}, later); err != nil {
			t.Fatal(err)
		}
		if got := summary(); got.Count != 3 || !got.Newest.Equal(later) {
			t.Fatalf("after c: %+v", got)
		}
	})
}

// An archive larger than one statement's worth of rows: every piece gets its
// time, the known ones keep theirs, whichever statement they fall in.
func TestRecordPiecesManyStatements(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		var first []PieceSeen
		for i := range piecesPerStatement + 3 {
			first = append(first, PieceSeen{ID: fmt.Sprintf("p%05d", i), Hash: "h"})
		}
		if _, err := s.RecordPieces(ctx, first, t0); err != nil {
			t.Fatal(err)
		}
		later := t0.Add(time.Hour)
		var all []PieceSeen
		for i := range 2*piecesPerStatement + 7 {
			all = append(all, PieceSeen{ID: fmt.Sprintf("p%05d", i), Hash: "h"})
		}
		got, err := s.RecordPieces(ctx, all, later)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(all) {
			t.Fatalf("%d times for %d pieces", len(got), len(all))
		}
		for i, p := range all {
			want := later
			if i < len(first) {
				want = t0
			}
			if !got[p.ID].Equal(want) {
				t.Fatalf("%s first seen %v, want %v", p.ID, got[p.ID], want)
			}
		}
	})
}

func TestSyncSubscribers(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *DB) {
		ctx := context.Background()

		res, err := syncRows(s, ctx, []SubscriberInput{
			{Email: "Ann@Example.org", Name: "Ann", Topics: []string{"energy"}, Cadence: "daily", ConsentSource: "file:list.csv"},
			{Email: "bob@example.org", Name: "Bob"},
			{Email: "cy@example.org", Name: "Cy"},
			{Email: "dee@example.org", Name: "Dee"},
		}, t0)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(res, SyncResult{Added: 4}) {
			t.Fatalf("first sync: %+v", res)
		}
		ann, err := s.SubscriberByEmail(ctx, "ANN@example.ORG")
		if err != nil {
			t.Fatal(err)
		}
		if ann.Email != "ann@example.org" || ann.Status != StatusActive || ann.Source != SourceFile ||
			!ann.JoinedAt.Equal(t0) || ann.Cadence != "daily" || !reflect.DeepEqual(ann.Topics, []string{"energy"}) ||
			ann.ConsentSource != "file:list.csv" {
			t.Fatalf("ann: %+v", ann)
		}

		// A web subscriber and a CLI one exist outside the files; Cy unsubscribes.
		web, err := s.AddSubscriber(ctx, SubscriberInput{Email: "web@example.org", Source: SourceWeb}, t0)
		if err != nil {
			t.Fatal(err)
		}
		cli := mustAdd(t, s, "cli@example.org")
		cy, _ := s.SubscriberByEmail(ctx, "cy@example.org")
		if err := s.SetStatus(ctx, cy.ID, StatusUnsubscribed, byHand, t0); err != nil {
			t.Fatal(err)
		}

		t1 := t0.Add(time.Hour)
		res, err = syncRows(s, ctx, []SubscriberInput{
			{Email: "ann@example.org", Name: "Ann B", Topics: []string{"energy"}, Cadence: "daily"}, // renamed
			{Email: "cy@example.org", Name: "Cy"},                                                   // suppressed: stays so
			{Email: "dee@example.org", Name: "Dee"},                                                 // unchanged
			{Email: "eve@example.org", Name: "Eve"},                                                 // new
			{Email: "cli@example.org", Name: "Renamed"},                                             // owned by the CLI: left alone
		}, t1)
		if err != nil {
			t.Fatal(err)
		}
		if want := (SyncResult{Added: 1, Updated: 1, Gone: 1, KeptSuppressed: 1}); !reflect.DeepEqual(res, want) {
			t.Fatalf("second sync: %+v, want %+v", res, want)
		}
		check := func(email, status, name string) Subscriber {
			t.Helper()
			sub, err := s.SubscriberByEmail(ctx, email)
			if err != nil {
				t.Fatal(err)
			}
			if sub.Status != status || sub.Name != name {
				t.Errorf("%s: status %s name %q, want %s %q", email, sub.Status, sub.Name, status, name)
			}
			return sub
		}
		check("ann@example.org", StatusActive, "Ann B")
		check("bob@example.org", StatusGone, "Bob")
		check("cy@example.org", StatusUnsubscribed, "Cy")
		check("eve@example.org", StatusActive, "Eve")
		check("web@example.org", StatusPending, "")
		check("cli@example.org", StatusActive, "")
		if w, _ := s.SubscriberByID(ctx, web.ID); w.Status != StatusPending {
			t.Errorf("web subscriber changed: %+v", w)
		}
		if c, _ := s.SubscriberByID(ctx, cli.ID); c.Status != StatusActive {
			t.Errorf("cli subscriber changed: %+v", c)
		}

		// Bob had been planned before leaving; when he comes back he starts afresh.
		bob := check("bob@example.org", StatusGone, "Bob")
		if _, err := s.db.Exec(s.bind(`UPDATE subscribers SET watermark = ? WHERE id = ?`), t0.UnixMicro(), bob.ID); err != nil {
			t.Fatal(err)
		}
		t2 := t1.Add(24 * time.Hour)
		res, err = syncRows(s, ctx, []SubscriberInput{
			{Email: "ann@example.org", Name: "Ann B", Topics: []string{"energy"}, Cadence: "daily"},
			{Email: "BOB@example.org", Name: "Bobby"},
			{Email: "cy@example.org", Name: "Cy"},
			{Email: "dee@example.org", Name: "Dee"},
			{Email: "eve@example.org", Name: "Eve"},
		}, t2)
		if err != nil {
			t.Fatal(err)
		}
		if want := (SyncResult{Reactivated: 1, KeptSuppressed: 1}); !reflect.DeepEqual(res, want) {
			t.Fatalf("third sync: %+v, want %+v", res, want)
		}
		bob = check("bob@example.org", StatusActive, "Bobby")
		if !bob.JoinedAt.Equal(t2) || !bob.Watermark.IsZero() {
			t.Errorf("reactivated bob: joined %v watermark %v", bob.JoinedAt, bob.Watermark)
		}

		// An empty list makes every file subscriber gone, but touches no suppression.
		res, err = syncRows(s, ctx, nil, t2)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(res, SyncResult{Gone: 4}) {
			t.Fatalf("empty sync: %+v", res)
		}
		check("cy@example.org", StatusUnsubscribed, "Cy")
		check("cli@example.org", StatusActive, "")

		if _, err := syncRows(s, ctx, []SubscriberInput{{Email: " "}}, t2); err == nil {
			t.Error("empty email accepted")
		}
	})
}

func TestSyncKeepsEverySuppressedStatus(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		var rows []SubscriberInput
		suppressed := []string{StatusUnsubscribed, StatusBounced, StatusComplained, StatusRemoved}
		for _, st := range suppressed {
			rows = append(rows, SubscriberInput{Email: st + "@example.org", Name: st})
		}
		if _, err := syncRows(s, ctx, rows, t0); err != nil {
			t.Fatal(err)
		}
		for _, st := range suppressed {
			sub, _ := s.SubscriberByEmail(ctx, st+"@example.org")
			if err := s.SetStatus(ctx, sub.ID, st, byHand, t0); err != nil {
				t.Fatal(err)
			}
		}
		for i := range rows {
			rows[i].Name = "changed"
		}
		res, err := syncRows(s, ctx, rows, t0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(res, SyncResult{KeptSuppressed: 4}) {
			t.Fatalf("%+v", res)
		}
		// Absent from the files: still suppressed, not gone.
		if res, err = syncRows(s, ctx, nil, t0.Add(2*time.Hour)); err != nil || res.Gone != 0 {
			t.Fatalf("%+v %v", res, err)
		}
		for _, st := range suppressed {
			sub, _ := s.SubscriberByEmail(ctx, st+"@example.org")
			if sub.Status != st || sub.Name != st {
				t.Errorf("%s became %+v", st, sub)
			}
		}
	})
}

func TestAddSubscriber(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		web, err := s.AddSubscriber(ctx, SubscriberInput{Email: " New@Example.org ", Name: "N", Source: SourceWeb,
			ConsentIP: "192.0.2.1", ConsentSource: "form"}, t0)
		if err != nil {
			t.Fatal(err)
		}
		if web.Email != "new@example.org" || web.Status != StatusPending || web.Source != SourceWeb ||
			web.ConsentIP != "192.0.2.1" || !web.ConfirmedAt.IsZero() || !web.JoinedAt.Equal(t0) {
			t.Fatalf("web: %+v", web)
		}
		cli, err := s.AddSubscriber(ctx, SubscriberInput{Email: "c@example.org", Source: SourceCLI, Topics: []string{"a", "b"}}, t0)
		if err != nil {
			t.Fatal(err)
		}
		if cli.Status != StatusActive || !cli.ConfirmedAt.Equal(t0) || !reflect.DeepEqual(cli.Topics, []string{"a", "b"}) {
			t.Fatalf("cli: %+v", cli)
		}
		// Update keeps id and status.
		again, err := s.AddSubscriber(ctx, SubscriberInput{Email: "C@example.org", Name: "See", Cadence: "weekly", Source: SourceCLI}, t0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if again.ID != cli.ID || again.Name != "See" || again.Cadence != "weekly" || again.Topics != nil || again.Status != StatusActive {
			t.Fatalf("update: %+v", again)
		}
		// Never lifts a suppression.
		if err := s.SetStatus(ctx, cli.ID, StatusComplained, byHand, t0); err != nil {
			t.Fatal(err)
		}
		still, err := s.AddSubscriber(ctx, SubscriberInput{Email: "c@example.org", Status: StatusActive, Source: SourceCLI}, t0)
		if err != nil {
			t.Fatal(err)
		}
		if still.Status != StatusComplained {
			t.Fatalf("suppression lifted: %+v", still)
		}
		// A gone file subscriber added by hand comes back active, owned by the CLI.
		if _, err := syncRows(s, ctx, []SubscriberInput{{Email: "f@example.org"}}, t0); err != nil {
			t.Fatal(err)
		}
		if _, err := syncRows(s, ctx, nil, t0); err != nil {
			t.Fatal(err)
		}
		back, err := s.AddSubscriber(ctx, SubscriberInput{Email: "f@example.org", Source: SourceCLI}, t0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if back.Status != StatusActive || back.Source != SourceCLI || !back.JoinedAt.Equal(t0.Add(time.Hour)) {
			t.Fatalf("back: %+v", back)
		}
		// Adding a suppression for an unknown address records it.
		sup, err := s.AddSubscriber(ctx, SubscriberInput{Email: "x@example.org", Status: StatusRemoved, Source: SourceCLI}, t0)
		if err != nil || sup.Status != StatusRemoved {
			t.Fatalf("suppress new: %+v %v", sup, err)
		}
		if _, err := s.AddSubscriber(ctx, SubscriberInput{Email: "y@example.org", Status: "bogus"}, t0); err == nil {
			t.Error("unknown status accepted")
		}
		if _, err := s.AddSubscriber(ctx, SubscriberInput{Email: ""}, t0); err == nil {
			t.Error("empty email accepted")
		}
	})
}

func TestLookupsNotFound(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		if _, err := s.SubscriberByEmail(ctx, "none@example.org"); !errors.Is(err, ErrNotFound) {
			t.Errorf("by email: %v", err)
		}
		if _, err := s.SubscriberByID(ctx, 42); !errors.Is(err, ErrNotFound) {
			t.Errorf("by id: %v", err)
		}
		if err := s.SetStatus(ctx, 42, StatusActive, byHand, t0); !errors.Is(err, ErrNotFound) {
			t.Errorf("set status: %v", err)
		}
		if err := s.SetPreferences(ctx, 42, nil, "daily", t0); !errors.Is(err, ErrNotFound) {
			t.Errorf("set preferences: %v", err)
		}
		if err := s.FinishRun(ctx, 42, true, "", t0); !errors.Is(err, ErrNotFound) {
			t.Errorf("finish run: %v", err)
		}
	})
}

func TestSetStatusAndPreferences(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		sub, err := s.AddSubscriber(ctx, SubscriberInput{Email: "p@example.org", Source: SourceWeb}, t0)
		if err != nil {
			t.Fatal(err)
		}
		t1 := t0.Add(time.Minute)
		if err := s.SetStatus(ctx, sub.ID, StatusActive, byHand, t1); err != nil {
			t.Fatal(err)
		}
		got, _ := s.SubscriberByID(ctx, sub.ID)
		if got.Status != StatusActive || !got.ConfirmedAt.Equal(t1) || !got.UpdatedAt.Equal(t1) {
			t.Fatalf("confirm: %+v", got)
		}
		// A second confirmation keeps the first time.
		if err := s.SetStatus(ctx, sub.ID, StatusActive, byHand, t1.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if got, _ = s.SubscriberByID(ctx, sub.ID); !got.ConfirmedAt.Equal(t1) {
			t.Fatalf("reconfirm moved ConfirmedAt: %v", got.ConfirmedAt)
		}
		if err := s.SetStatus(ctx, sub.ID, "nonsense", byHand, t1); err == nil {
			t.Error("unknown status accepted")
		}
		if err := s.SetPreferences(ctx, sub.ID, []string{"x", "y z"}, "weekly", t1); err != nil {
			t.Fatal(err)
		}
		if got, _ = s.SubscriberByID(ctx, sub.ID); !reflect.DeepEqual(got.Topics, []string{"x", "y z"}) || got.Cadence != "weekly" {
			t.Fatalf("preferences: %+v", got)
		}
		if err := s.SetPreferences(ctx, sub.ID, nil, "", t1); err != nil {
			t.Fatal(err)
		}
		if got, _ = s.SubscriberByID(ctx, sub.ID); got.Topics != nil || got.Cadence != "" {
			t.Fatalf("cleared preferences: %+v", got)
		}
	})
}

func TestEachSubscriberPagesInOrder(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		const n = 5000
		rows := make([]SubscriberInput, n)
		for i := range rows {
			rows[i] = SubscriberInput{Email: fmt.Sprintf("s%05d@example.org", i)}
		}
		if res, err := syncRows(s, ctx, rows, t0); err != nil || res.Added != n {
			t.Fatalf("%+v %v", res, err)
		}
		// Every seventh one unsubscribes.
		unsub := 0
		for id := int64(7); id <= n; id += 7 {
			if err := s.SetStatus(ctx, id, StatusUnsubscribed, byHand, t0); err != nil {
				t.Fatal(err)
			}
			unsub++
		}
		var ids []int64
		err := s.EachSubscriber(ctx, nil, func(sub Subscriber) error {
			ids = append(ids, sub.ID)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != n || !slices.IsSorted(ids) || ids[0] != 1 || ids[n-1] != n {
			t.Fatalf("all: %d ids, sorted %v", len(ids), slices.IsSorted(ids))
		}
		// A filtered walk that writes through the store as it goes (no held connection).
		var active []int64
		err = s.EachSubscriber(ctx, []string{StatusActive, StatusPending}, func(sub Subscriber) error {
			if sub.Status != StatusActive {
				return fmt.Errorf("status %s", sub.Status)
			}
			active = append(active, sub.ID)
			return s.SetPreferences(ctx, sub.ID, []string{"seen"}, "", t0)
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(active) != n-unsub || !slices.IsSorted(active) {
			t.Fatalf("active: %d, want %d", len(active), n-unsub)
		}
		stop := errors.New("stop")
		count := 0
		err = s.EachSubscriber(ctx, []string{StatusUnsubscribed}, func(Subscriber) error {
			count++
			if count == 3 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || count != 3 {
			t.Fatalf("stop: %v after %d", err, count)
		}
	})
}

// planFixture makes three active subscribers and a digest.
func planFixture(t *testing.T, s *DB) (ids []int64, digest int64) {
	t.Helper()
	for _, e := range []string{"a@example.org", "b@example.org", "c@example.org"} {
		ids = append(ids, mustAdd(t, s, e).ID)
	}
	digest, err := s.CreateDigest(context.Background(), t0)
	if err != nil {
		t.Fatal(err)
	}
	return ids, digest
}

func TestPlanDeliveries(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		tl := testLease(t, s)
		ids, digest := planFixture(t, s)
		mark := t0.Add(-time.Minute)
		plan := []PlannedDelivery{
			{SubscriberID: ids[0], PieceIDs: []string{"p2", "p1"}, Watermark: mark},
			{SubscriberID: ids[1], PieceIDs: []string{"p1"}, Watermark: mark},
			{SubscriberID: ids[2], Watermark: mark}, // nothing new: watermark only
		}
		if err := s.PlanDeliveries(ctx, tl, digest, plan, t0); err != nil {
			t.Fatal(err)
		}
		counts, _ := s.CountDeliveries(ctx)
		if counts != (DeliveryCounts{Pending: 2}) {
			t.Fatalf("counts %+v", counts)
		}
		for i, id := range ids {
			sub, _ := s.SubscriberByID(ctx, id)
			if !sub.Watermark.Equal(mark) {
				t.Errorf("subscriber %d watermark %v", id, sub.Watermark)
			}
			// Due subscribers were served at t0 whether or not they got pieces.
			if !sub.LastDigestAt.Equal(t0) {
				t.Errorf("subscriber %d (entry %d) last digest %v", id, i, sub.LastDigestAt)
			}
		}
		// Planning the same digest again changes nothing, even with other pieces and marks.
		again := []PlannedDelivery{
			{SubscriberID: ids[0], PieceIDs: []string{"p9"}, Watermark: mark.Add(time.Hour)},
			{SubscriberID: ids[1], PieceIDs: []string{"p9"}, Watermark: mark.Add(time.Hour)},
		}
		if err := s.PlanDeliveries(ctx, tl, digest, again, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if counts, _ = s.CountDeliveries(ctx); counts != (DeliveryCounts{Pending: 2}) {
			t.Fatalf("replan counts %+v", counts)
		}
		pending, err := s.ClaimDeliveries(ctx, tl.Fence, 0, t0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(pending) != 2 || !reflect.DeepEqual(pending[0].PieceIDs, []string{"p2", "p1"}) {
			t.Fatalf("pending %+v", pending)
		}
		if sub, _ := s.SubscriberByID(ctx, ids[0]); !sub.Watermark.Equal(mark) || !sub.LastDigestAt.Equal(t0) {
			t.Errorf("replan moved subscriber: %+v", sub)
		}
		// Watermarks never move back.
		if err := s.PlanDeliveries(ctx, tl, digest, []PlannedDelivery{{SubscriberID: ids[2], Watermark: mark.Add(-time.Hour)}}, t0); err != nil {
			t.Fatal(err)
		}
		if sub, _ := s.SubscriberByID(ctx, ids[2]); !sub.Watermark.Equal(mark) {
			t.Errorf("watermark went back: %v", sub.Watermark)
		}
		// A later digest for the same subscriber is a new delivery.
		digest2, _ := s.CreateDigest(ctx, t0.Add(24*time.Hour))
		if digest2 == digest {
			t.Fatal("digest ids repeat")
		}
		mark2 := t0.Add(23 * time.Hour)
		if err := s.PlanDeliveries(ctx, tl, digest2, []PlannedDelivery{{SubscriberID: ids[0], PieceIDs: []string{"p3"}, Watermark: mark2}}, t0.Add(24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if counts, _ = s.CountDeliveries(ctx); counts.Pending != 3 {
			t.Fatalf("counts %+v", counts)
		}
		if sub, _ := s.SubscriberByID(ctx, ids[0]); !sub.Watermark.Equal(mark2) {
			t.Errorf("watermark %v, want %v", sub.Watermark, mark2)
		}
		// An unknown digest or subscriber fails the whole plan.
		if err := s.PlanDeliveries(ctx, tl, 999, []PlannedDelivery{{SubscriberID: ids[1], PieceIDs: []string{"p"}}}, t0); err == nil {
			t.Error("unknown digest accepted")
		}
		bad := []PlannedDelivery{
			{SubscriberID: ids[2], PieceIDs: []string{"p"}, Watermark: mark2},
			{SubscriberID: 999, PieceIDs: []string{"p"}},
		}
		if err := s.PlanDeliveries(ctx, tl, digest2, bad, t0); err == nil {
			t.Error("unknown subscriber accepted")
		}
		if sub, _ := s.SubscriberByID(ctx, ids[2]); !sub.Watermark.Equal(mark) {
			t.Errorf("failed plan was partly applied: watermark %v", sub.Watermark)
		}
	})
}

func TestPendingDeliveriesPagingAndNextAttempt(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		tl := testLease(t, s)
		digest, _ := s.CreateDigest(ctx, t0)
		var plan []PlannedDelivery
		for i := 0; i < 25; i++ {
			sub, err := s.AddSubscriber(ctx, SubscriberInput{Email: fmt.Sprintf("r%02d@example.org", i), Name: fmt.Sprintf("R %d", i)}, t0)
			if err != nil {
				t.Fatal(err)
			}
			plan = append(plan, PlannedDelivery{SubscriberID: sub.ID, PieceIDs: []string{fmt.Sprintf("piece-%d", i)}, Watermark: t0})
		}
		if err := s.PlanDeliveries(ctx, tl, digest, plan, t0); err != nil {
			t.Fatal(err)
		}
		var all []Delivery
		after := int64(0)
		for {
			page, err := s.ClaimDeliveries(ctx, tl.Fence, after, t0, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > 10 {
				t.Fatalf("page of %d", len(page))
			}
			if len(page) == 0 {
				break
			}
			all = append(all, page...)
			after = page[len(page)-1].ID
		}
		if len(all) != 25 {
			t.Fatalf("%d deliveries", len(all))
		}
		for i, d := range all {
			if i > 0 && d.ID <= all[i-1].ID {
				t.Fatalf("out of order at %d", i)
			}
			if d.Email != fmt.Sprintf("r%02d@example.org", i) || d.Name != fmt.Sprintf("R %d", i) ||
				d.SubscriberStatus != StatusActive || d.DigestID != digest || d.Attempts != 0 ||
				!reflect.DeepEqual(d.PieceIDs, []string{fmt.Sprintf("piece-%d", i)}) || !d.CreatedAt.Equal(t0) {
				t.Fatalf("delivery %d: %+v", i, d)
			}
		}
		// Two retries scheduled for later drop out until their time.
		retryAt := t0.Add(10 * time.Minute)
		_, err := s.RecordOutcomes(ctx, tl.Fence, []Outcome{
			{DeliveryID: all[3].ID, Kind: OutcomeRetry, Error: "451 try later", At: t0, NextAttempt: retryAt},
			{DeliveryID: all[4].ID, Kind: OutcomeRetry, Error: "dial", At: t0, NextAttempt: retryAt},
		}, 3)
		if err != nil {
			t.Fatal(err)
		}
		due, _ := s.ClaimDeliveries(ctx, tl.Fence, 0, t0.Add(time.Minute), 100)
		if len(due) != 23 || slices.ContainsFunc(due, func(d Delivery) bool { return d.ID == all[3].ID }) {
			t.Fatalf("before retry time: %d due", len(due))
		}
		due, _ = s.ClaimDeliveries(ctx, tl.Fence, 0, retryAt, 100)
		if len(due) != 25 || due[3].Attempts != 1 {
			t.Fatalf("at retry time: %d due, attempts %d", len(due), due[3].Attempts)
		}
		// A suppressed subscriber still shows, with its status, for the sender to skip.
		if err := s.SetStatus(ctx, all[0].SubscriberID, StatusUnsubscribed, byHand, t0); err != nil {
			t.Fatal(err)
		}
		due, _ = s.ClaimDeliveries(ctx, tl.Fence, 0, retryAt, 1)
		if len(due) != 1 || due[0].SubscriberStatus != StatusUnsubscribed {
			t.Fatalf("suppressed: %+v", due)
		}
	})
}

func TestRecordOutcomes(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		tl := testLease(t, s)
		digest, _ := s.CreateDigest(ctx, t0)
		var subs []Subscriber
		var plan []PlannedDelivery
		for i := 0; i < 6; i++ {
			sub := mustAdd(t, s, fmt.Sprintf("o%d@example.org", i))
			subs = append(subs, sub)
			plan = append(plan, PlannedDelivery{SubscriberID: sub.ID, PieceIDs: []string{"p"}, Watermark: t0})
		}
		if err := s.PlanDeliveries(ctx, tl, digest, plan, t0); err != nil {
			t.Fatal(err)
		}
		ds, _ := s.ClaimDeliveries(ctx, tl.Fence, 0, t0, 100)
		at := t0.Add(time.Minute)
		outcomes := []Outcome{
			{DeliveryID: ds[0].ID, SubscriberID: subs[0].ID, Kind: OutcomeSent, MessageID: "<m0@example.org>", At: at},
			{DeliveryID: ds[1].ID, SubscriberID: subs[1].ID, Kind: OutcomeRetry, Error: "451", At: at, NextAttempt: at.Add(time.Minute)},
			{DeliveryID: ds[2].ID, SubscriberID: subs[2].ID, Kind: OutcomePermanent, Error: "550 no such user", At: at},
			{DeliveryID: ds[3].ID, SubscriberID: subs[3].ID, Kind: OutcomeGaveUp, Error: "451 again", At: at},
			{DeliveryID: ds[4].ID, SubscriberID: subs[4].ID, Kind: OutcomeSkipped, Error: "unsubscribed", At: at},
		}
		if _, err := s.RecordOutcomes(ctx, tl.Fence, outcomes, 2); err != nil {
			t.Fatal(err)
		}
		type row struct {
			status, lastError, messageID string
			attempts                     int
			nextAttempt, sentAt          int64
		}
		read := func(id int64) row {
			var r row
			if err := s.db.QueryRow(s.bind(`SELECT status, last_error, message_id, attempts, next_attempt, sent_at FROM deliveries WHERE id = ?`), id).
				Scan(&r.status, &r.lastError, &r.messageID, &r.attempts, &r.nextAttempt, &r.sentAt); err != nil {
				t.Fatal(err)
			}
			return r
		}
		want := []row{
			{status: "sent", messageID: "<m0@example.org>", attempts: 1, sentAt: at.UnixMicro()},
			{status: "pending", lastError: "451", attempts: 1, nextAttempt: at.Add(time.Minute).UnixMicro()},
			{status: "failed", lastError: "550 no such user", attempts: 1},
			{status: "failed", lastError: "451 again", attempts: 1},
			{status: "skipped", lastError: "unsubscribed", attempts: 0},
			{status: "pending"},
		}
		for i, w := range want {
			if got := read(ds[i].ID); got != w {
				t.Errorf("delivery %d: %+v, want %+v", i, got, w)
			}
		}
		if c, _ := s.CountDeliveries(ctx); c != (DeliveryCounts{Pending: 2, Sent: 1, Failed: 2, Skipped: 1, LastSent: at}) {
			t.Errorf("counts %+v", c)
		}
		// One permanent failure, limit 2: counted, not yet suppressed.
		if sub, _ := s.SubscriberByID(ctx, subs[2].ID); sub.HardBounces != 1 || sub.Status != StatusActive {
			t.Errorf("after one bounce: %+v", sub)
		}
		// Only the permanent outcome counts: gave_up does not.
		if sub, _ := s.SubscriberByID(ctx, subs[3].ID); sub.HardBounces != 0 {
			t.Errorf("gave_up counted as bounce: %+v", sub)
		}

		// Nothing finished goes back: every kind replayed on the finished rows is ignored,
		// and the replayed permanent failure adds no second bounce.
		var replay []Outcome
		for _, kind := range []string{OutcomeRetry, OutcomePermanent, OutcomeSent, OutcomeGaveUp, OutcomeSkipped} {
			for i := 0; i < 5; i++ {
				if i == 1 {
					continue // still pending
				}
				replay = append(replay, Outcome{DeliveryID: ds[i].ID, Kind: kind, MessageID: "<other>", Error: "x", At: at.Add(time.Hour), NextAttempt: at})
			}
		}
		if _, err := s.RecordOutcomes(ctx, tl.Fence, replay, 2); err != nil {
			t.Fatal(err)
		}
		for i, w := range want {
			if got := read(ds[i].ID); got != w {
				t.Errorf("after replay, delivery %d: %+v, want %+v", i, got, w)
			}
		}
		if sub, _ := s.SubscriberByID(ctx, subs[2].ID); sub.HardBounces != 1 {
			t.Errorf("replay counted a bounce: %+v", sub)
		}
		if due, _ := s.ClaimDeliveries(ctx, tl.Fence, 0, at.Add(time.Hour), 100); len(due) != 2 {
			t.Errorf("%d due after replay", len(due))
		}

		// An unknown kind is reported; the rest of the batch is still recorded.
		_, err := s.RecordOutcomes(ctx, tl.Fence, []Outcome{
			{DeliveryID: ds[5].ID, Kind: "bogus"},
			{DeliveryID: ds[1].ID, Kind: OutcomeSent, MessageID: "<m1>", At: at},
		}, 2)
		if err == nil {
			t.Error("unknown kind accepted")
		}
		if got := read(ds[1].ID); got.status != "sent" || got.attempts != 2 || got.messageID != "<m1>" || got.lastError != "" {
			t.Errorf("retry then sent: %+v", got)
		}
		if got := read(ds[5].ID); got.status != "pending" {
			t.Errorf("bogus outcome changed row: %+v", got)
		}
		if _, err := s.RecordOutcomes(ctx, tl.Fence, nil, 2); err != nil {
			t.Errorf("empty batch: %v", err)
		}
	})
}

func TestBounceLimitSuppresses(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		tl := testLease(t, s)
		active := mustAdd(t, s, "hard@example.org")
		unsub := mustAdd(t, s, "left@example.org")
		if err := s.SetStatus(ctx, unsub.ID, StatusUnsubscribed, byHand, t0); err != nil {
			t.Fatal(err)
		}
		const limit = 3
		for round := 1; round <= limit+1; round++ {
			digest, _ := s.CreateDigest(ctx, t0)
			plan := []PlannedDelivery{
				{SubscriberID: active.ID, PieceIDs: []string{"p"}, Watermark: t0},
				{SubscriberID: unsub.ID, PieceIDs: []string{"p"}, Watermark: t0},
			}
			if err := s.PlanDeliveries(ctx, tl, digest, plan, t0); err != nil {
				t.Fatal(err)
			}
			ds, _ := s.ClaimDeliveries(ctx, tl.Fence, 0, t0, 10)
			if len(ds) != 2 {
				t.Fatalf("round %d: %d pending", round, len(ds))
			}
			var outs []Outcome
			for _, d := range ds {
				// The caller's SubscriberID is wrong on purpose: the delivery row decides.
				outs = append(outs, Outcome{DeliveryID: d.ID, SubscriberID: 999, Kind: OutcomePermanent, Error: "550", At: t0})
			}
			res, err := s.RecordOutcomes(ctx, tl.Fence, outs, limit)
			suppressed := res.Suppressed
			if err != nil {
				t.Fatal(err)
			}
			if wantNow := round == limit; wantNow != (len(suppressed) == 1 && suppressed[0] == active.ID) || len(suppressed) > 1 {
				t.Errorf("round %d: RecordOutcomes reported suppressed %v", round, suppressed)
			}
			sub, _ := s.SubscriberByID(ctx, active.ID)
			wantStatus := StatusActive
			if round >= limit {
				wantStatus = StatusBounced
			}
			if sub.HardBounces != round || sub.Status != wantStatus {
				t.Errorf("round %d: bounces %d status %s, want %d %s", round, sub.HardBounces, sub.Status, round, wantStatus)
			}
			// A suppression already in force is not replaced by bounced.
			if u, _ := s.SubscriberByID(ctx, unsub.ID); u.Status != StatusUnsubscribed || u.HardBounces != round {
				t.Errorf("round %d: unsubscribed became %s (%d bounces)", round, u.Status, u.HardBounces)
			}
		}
		// Lifting the suppression by hand gives a fresh count.
		if err := s.SetStatus(ctx, active.ID, StatusActive, byHand, t0); err != nil {
			t.Fatal(err)
		}
		if sub, _ := s.SubscriberByID(ctx, active.ID); sub.HardBounces != 0 || sub.Status != StatusActive {
			t.Errorf("lifted: %+v", sub)
		}
	})
}

func TestRuns(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		if _, err := s.LastRun(ctx); !errors.Is(err, ErrNotFound) {
			t.Fatalf("empty: %v", err)
		}
		first, err := s.StartRun(ctx, t0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.LastRun(ctx); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unfinished run returned: %v", err)
		}
		if err := s.FinishRun(ctx, first, true, "sent 3", t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		second, _ := s.StartRun(ctx, t0.Add(time.Hour))
		if second == first {
			t.Fatal("run ids repeat")
		}
		last, err := s.LastRun(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := Run{ID: first, StartedAt: t0, FinishedAt: t0.Add(time.Minute), OK: true, Summary: "sent 3"}
		if last != want {
			t.Fatalf("last %+v, want %+v", last, want)
		}
		if err := s.FinishRun(ctx, second, false, "failed 1", t0.Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if last, _ = s.LastRun(ctx); last.ID != second || last.OK || last.Summary != "failed 1" {
			t.Fatalf("last %+v", last)
		}
	})
}

func TestTimesRoundTripInUTC(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		zone := time.FixedZone("X", 5*3600+1800)
		local := time.Date(2026, 5, 1, 12, 30, 15, 123456789, zone)
		sub, err := s.AddSubscriber(ctx, SubscriberInput{Email: "tz@example.org"}, local)
		if err != nil {
			t.Fatal(err)
		}
		if sub.JoinedAt.Location() != time.UTC || !sub.JoinedAt.Equal(local.Truncate(time.Microsecond)) {
			t.Fatalf("joined %v, want %v", sub.JoinedAt, local)
		}
		if !sub.Watermark.IsZero() || !sub.LastDigestAt.IsZero() {
			t.Fatalf("zero times not zero: %+v", sub)
		}
	})
}

func TestListEncodingRoundTrip(t *testing.T) {
	for _, list := range [][]string{
		nil,
		{"one"},
		{"a", "b", "c"},
		{""},
		{"", ""},
		{`a","b`, `c\d`, "<&>", "é ü", `"`, "x,y", "[", "]"},
		{`","`},
	} {
		enc := encodeList(list)
		got, err := decodeList(enc)
		if err != nil {
			t.Fatalf("%q: %v", enc, err)
		}
		if !reflect.DeepEqual(got, list) {
			t.Errorf("%q decoded to %q, want %q", enc, got, list)
		}
	}
	if _, err := decodeList(`["unterminated`); err == nil {
		t.Error("bad JSON accepted")
	}
}

func BenchmarkRecordOutcomes(b *testing.B) {
	forEachEngineB(b, func(b *testing.B, s *DB) {
		ctx := context.Background()
		tl := testLease(b, s)
		const batch = 64
		total := b.N * batch
		rows := make([]SubscriberInput, total)
		for i := range rows {
			rows[i] = SubscriberInput{Email: fmt.Sprintf("b%d@example.org", i)}
		}
		if _, err := syncRows(s, ctx, rows, t0); err != nil {
			b.Fatal(err)
		}
		digest, _ := s.CreateDigest(ctx, t0)
		plan := make([]PlannedDelivery, total)
		for i := range plan {
			plan[i] = PlannedDelivery{SubscriberID: int64(i + 1), PieceIDs: []string{"p1", "p2"}, Watermark: t0}
		}
		if err := s.PlanDeliveries(ctx, tl, digest, plan, t0); err != nil {
			b.Fatal(err)
		}
		// Outcomes are written only over claims.
		for after := int64(0); ; {
			ds, err := s.ClaimDeliveries(ctx, tl.Fence, after, t0, 500)
			if err != nil {
				b.Fatal(err)
			}
			if len(ds) == 0 {
				break
			}
			after = ds[len(ds)-1].ID
		}
		outs := make([]Outcome, batch)
		b.ReportAllocs()
		b.ResetTimer()
		for n := 0; n < b.N; n++ {
			for i := range outs {
				outs[i] = Outcome{DeliveryID: int64(n*batch + i + 1), Kind: OutcomeSent, MessageID: "<m@example.org>", At: t0}
			}
			if _, err := s.RecordOutcomes(ctx, tl.Fence, outs, 3); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if c, _ := s.CountDeliveries(ctx); c.Sent != int64(total) {
			b.Fatalf("sent %d, want %d", c.Sent, total)
		}
	})
}

func BenchmarkClaimDeliveries(b *testing.B) {
	forEachEngineB(b, func(b *testing.B, s *DB) {
		ctx := context.Background()
		tl := testLease(b, s)
		const total, page = 10000, 64
		rows := make([]SubscriberInput, total)
		for i := range rows {
			rows[i] = SubscriberInput{Email: fmt.Sprintf("b%d@example.org", i), Name: "Reader"}
		}
		if _, err := syncRows(s, ctx, rows, t0); err != nil {
			b.Fatal(err)
		}
		digest, _ := s.CreateDigest(ctx, t0)
		plan := make([]PlannedDelivery, total)
		for i := range plan {
			plan[i] = PlannedDelivery{SubscriberID: int64(i + 1), PieceIDs: []string{"piece-one", "piece-two", "piece-three"}, Watermark: t0}
		}
		if err := s.PlanDeliveries(ctx, tl, digest, plan, t0); err != nil {
			b.Fatal(err)
		}
		// As a run ends its planning pass (PostgreSQL refreshes its statistics).
		if err := s.PlanPassDone(ctx, tl, total); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		after := int64(0)
		for n := 0; n < b.N; n++ {
			ds, err := s.ClaimDeliveries(ctx, tl.Fence, after, t0, page)
			if err != nil {
				b.Fatal(err)
			}
			if len(ds) < page {
				after = 0 // wrap around
				continue
			}
			after = ds[len(ds)-1].ID
		}
	})
}

// BenchmarkPlanDeliveries plans 1,000 deliveries per op (one transaction each).
func BenchmarkPlanDeliveries(b *testing.B) {
	forEachEngineB(b, func(b *testing.B, s *DB) {
		ctx := context.Background()
		tl := testLease(b, s)
		const per = 1000
		rows := make([]SubscriberInput, per)
		for i := range rows {
			rows[i] = SubscriberInput{Email: fmt.Sprintf("b%d@example.org", i)}
		}
		if _, err := syncRows(s, ctx, rows, t0); err != nil {
			b.Fatal(err)
		}
		plan := make([]PlannedDelivery, per)
		b.ReportAllocs()
		b.ResetTimer()
		for n := 0; n < b.N; n++ {
			digest, err := s.CreateDigest(ctx, t0)
			if err != nil {
				b.Fatal(err)
			}
			mark := t0.Add(time.Duration(n) * time.Second)
			for i := range plan {
				plan[i] = PlannedDelivery{SubscriberID: int64(i + 1), PieceIDs: []string{"piece-one", "piece-two"}, Watermark: mark}
			}
			if err := s.PlanDeliveries(ctx, tl, digest, plan, t0); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// syncRows feeds a slice to SyncSubscribers as the list files would, row by row.
func syncRows(s *DB, ctx context.Context, rows []SubscriberInput, now time.Time) (SyncResult, error) {
	return s.SyncSubscribers(ctx, func(add func(SubscriberInput) error) error {
		for _, r := range rows {
			if err := add(r); err != nil {
				return err
			}
		}
		return nil
	}, now)
}

func TestSyncNamesDuplicatesLaterRowWins(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		t0 := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
		res, err := syncRows(s, ctx, []SubscriberInput{
			{Email: "a@example.org", Name: "First", Cadence: "daily", ConsentSource: "file a.csv:2"},
			{Email: "b@example.org", Name: "B", Cadence: "daily", ConsentSource: "file a.csv:3"},
			{Email: "A@example.org", Name: "Second", Cadence: "weekly", ConsentSource: "file b.csv:2"},
		}, t0)
		if err != nil {
			t.Fatal(err)
		}
		if res.Added != 2 || res.Duplicates != 1 || len(res.DuplicateExamples) != 1 ||
			res.DuplicateExamples[0] != "a@example.org (file a.csv:2, file b.csv:2)" {
			t.Fatalf("result %+v", res)
		}
		a, err := s.SubscriberByEmail(ctx, "a@example.org")
		if err != nil || a.Name != "Second" || a.Cadence != "weekly" {
			t.Fatalf("a = %+v, %v; want the later row", a, err)
		}
		// A failing row source rolls the whole sync back.
		_, err = s.SyncSubscribers(ctx, func(add func(SubscriberInput) error) error {
			if err := add(SubscriberInput{Email: "c@example.org"}); err != nil {
				return err
			}
			return errors.New("disk went away")
		}, t0)
		if err == nil {
			t.Fatal("sync succeeded despite the failing source")
		}
		if _, err := s.SubscriberByEmail(ctx, "c@example.org"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a row from the failed sync was kept: %v", err)
		}
		if b, _ := s.SubscriberByEmail(ctx, "b@example.org"); b.Status != StatusActive {
			t.Fatalf("failed sync marked b %s", b.Status)
		}
	})
}

func TestRecordOutcomesSentMarksOnlyPendingRowsInOrder(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		tl := testLease(t, s)
		digest, _ := s.CreateDigest(ctx, t0)
		var plan []PlannedDelivery
		for i := 0; i < 12; i++ {
			sub := mustAdd(t, s, fmt.Sprintf("run%d@example.org", i))
			plan = append(plan, PlannedDelivery{SubscriberID: sub.ID, PieceIDs: []string{"p"}, Watermark: t0})
		}
		if err := s.PlanDeliveries(ctx, tl, digest, plan, t0); err != nil {
			t.Fatal(err)
		}
		ds, _ := s.ClaimDeliveries(ctx, tl.Fence, 0, t0, 100)
		if len(ds) != 12 {
			t.Fatalf("%d deliveries planned", len(ds))
		}
		at := t0.Add(time.Minute)
		// Rows 0-1 finished earlier (failed, skipped); row 2 was sent earlier.
		if _, err := s.RecordOutcomes(ctx, tl.Fence, []Outcome{
			{DeliveryID: ds[0].ID, Kind: OutcomeGaveUp, Error: "gave up", At: at},
			{DeliveryID: ds[1].ID, Kind: OutcomeSkipped, Error: "unsubscribed", At: at},
			{DeliveryID: ds[2].ID, Kind: OutcomeSent, MessageID: "first@example.org", At: at},
		}, 2); err != nil {
			t.Fatal(err)
		}
		later := at.Add(time.Minute)
		sent := func(i int, id string) Outcome {
			return Outcome{DeliveryID: ds[i].ID, Kind: OutcomeSent, MessageID: id, At: later.Add(time.Duration(i) * time.Second)}
		}
		batch := []Outcome{
			sent(0, "late0@example.org"), sent(1, "late1@example.org"), sent(2, "late2@example.org"),
			sent(3, "m3@example.org"), sent(4, "m4@example.org"),
			sent(4, "duplicate4@example.org"), // the first outcome for a row wins
			// Outcomes apply in order: a retry after row 5 was sent changes
			// nothing; before row 6 is sent it counts an attempt.
			sent(5, "m5@example.org"),
			{DeliveryID: ds[5].ID, Kind: OutcomeRetry, Error: "451", At: later, NextAttempt: later.Add(time.Hour)},
			{DeliveryID: ds[6].ID, Kind: OutcomeRetry, Error: "451", At: later, NextAttempt: later.Add(time.Hour)},
			sent(6, "m6@example.org"), sent(7, "m7@example.org"),
			{DeliveryID: ds[8].ID, Kind: OutcomePermanent, Error: "550", At: later},
			sent(9, "m9@example.org"),
		}
		if _, err := s.RecordOutcomes(ctx, tl.Fence, batch, 2); err != nil {
			t.Fatal(err)
		}
		type row struct {
			status, messageID, lastError string
			attempts                     int
			sentAt                       int64
		}
		want := []row{
			{"failed", "", "gave up", 1, 0},
			{"skipped", "", "unsubscribed", 0, 0},
			{"sent", "first@example.org", "", 1, at.UnixMicro()},
			{"sent", "m3@example.org", "", 1, later.Add(3 * time.Second).UnixMicro()},
			{"sent", "m4@example.org", "", 1, later.Add(4 * time.Second).UnixMicro()},
			{"sent", "m5@example.org", "", 1, later.Add(5 * time.Second).UnixMicro()},
			{"sent", "m6@example.org", "", 2, later.Add(6 * time.Second).UnixMicro()},
			{"sent", "m7@example.org", "", 1, later.Add(7 * time.Second).UnixMicro()},
			{"failed", "", "550", 1, 0},
			{"sent", "m9@example.org", "", 1, later.Add(9 * time.Second).UnixMicro()},
			{"pending", "", "", 0, 0},
			{"pending", "", "", 0, 0},
		}
		for i, w := range want {
			var r row
			if err := s.db.QueryRow(s.bind(`SELECT status, message_id, last_error, attempts, sent_at FROM deliveries WHERE id = ?`), ds[i].ID).
				Scan(&r.status, &r.messageID, &r.lastError, &r.attempts, &r.sentAt); err != nil {
				t.Fatal(err)
			}
			if r != w {
				t.Errorf("delivery %d: %+v, want %+v", i, r, w)
			}
		}
		if c, _ := s.CountDeliveries(ctx); c != (DeliveryCounts{Pending: 2, Sent: 7, Failed: 2, Skipped: 1, LastSent: later.Add(9 * time.Second)}) {
			t.Errorf("counts %+v", c)
		}
	})
}

// forEachEngineB runs a benchmark per engine, each on a new, empty store.
func forEachEngineB(b *testing.B, fn func(b *testing.B, s *DB)) {
	for _, eng := range engines {
		b.Run(eng, func(b *testing.B) {
			s, _ := openEngine(b, eng)
			fn(b, s)
		})
	}
}
