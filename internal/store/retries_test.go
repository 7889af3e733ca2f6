package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// planAndClaim plans one digest for n new subscribers (prefix0@example.org,
// ...) at t0 and claims the deliveries under a test lease.
func planAndClaim(t *testing.T, s *DB, prefix string, n int) (Lease, []Delivery) {
	t.Helper()
	ctx := context.Background()
	tl := testLease(t, s)
	digest, _ := s.CreateDigest(ctx, t0)
	plan := make([]PlannedDelivery, n)
	for i := range plan {
		sub := mustAdd(t, s, fmt.Sprintf("%s%d@example.org", prefix, i))
		plan[i] = PlannedDelivery{SubscriberID: sub.ID, PieceIDs: []string{"p"}, Watermark: t0}
	}
	if err := s.PlanDeliveries(ctx, tl, digest, plan, t0); err != nil {
		t.Fatal(err)
	}
	ds, err := s.ClaimDeliveries(ctx, tl.Fence, 0, t0, n)
	if err != nil || len(ds) != n {
		t.Fatalf("claim: %v %v", ds, err)
	}
	return tl, ds
}

// A retry records the delivery's first failure once, counts refusals only
// when told to, and keeps the message id; the claim hands both back.
func TestRetriesRecordFirstFailureRefusalsAndMessageID(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		tl, ds := planAndClaim(t, s, "retry", 3)
		for _, d := range ds {
			if !d.FailingSince.IsZero() || d.Refusals != 0 {
				t.Fatalf("a new delivery: %+v", d)
			}
		}
		first, second := t0.Add(time.Minute), t0.Add(time.Hour)
		record := func(at time.Time, outs ...Outcome) {
			t.Helper()
			for i := range outs {
				outs[i].At, outs[i].NextAttempt = at, at
			}
			if _, err := s.RecordOutcomes(ctx, tl.Fence, outs, 3); err != nil {
				t.Fatal(err)
			}
		}
		record(first,
			Outcome{DeliveryID: ds[0].ID, Kind: OutcomeRetry, Error: "451", MessageID: "a@example.org"},
			Outcome{DeliveryID: ds[1].ID, Kind: OutcomeRetry, Error: "554 5.7.1", MessageID: "b@example.org", Refused: true})
		record(second,
			Outcome{DeliveryID: ds[0].ID, Kind: OutcomeRetry, Error: "451", MessageID: "a@example.org"},
			Outcome{DeliveryID: ds[1].ID, Kind: OutcomeRetry, Error: "554 5.7.1", MessageID: "b@example.org", Refused: true},
			Outcome{DeliveryID: ds[2].ID, Kind: OutcomeGaveUp, Error: "given up", MessageID: "c@example.org"})
		again, err := s.ClaimDeliveries(ctx, tl.Fence, 0, second, 10)
		if err != nil || len(again) != 2 {
			t.Fatalf("claim again: %v %v", again, err)
		}
		want := []struct {
			refusals int
		}{{0}, {2}}
		for i, d := range again {
			if !d.FailingSince.Equal(first) || d.Refusals != want[i].refusals || d.Attempts != 2 {
				t.Errorf("delivery %d: failing since %v, refusals %d, attempts %d; want %v, %d, 2", i, d.FailingSince, d.Refusals, d.Attempts, first, want[i].refusals)
			}
		}
		for i, id := range []string{"a@example.org", "b@example.org", "c@example.org"} {
			var got string
			if err := s.db.QueryRow(s.bind(`SELECT message_id FROM deliveries WHERE id = ?`), ds[i].ID).Scan(&got); err != nil || got != id {
				t.Errorf("delivery %d: message id %q (%v), want %q", i, got, err, id)
			}
		}
	})
}

// CountDeliveries says when a message was last accepted.
func TestCountDeliveriesLastSent(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		if c, err := s.CountDeliveries(ctx); err != nil || !c.LastSent.IsZero() {
			t.Fatalf("empty ledger: %+v %v", c, err)
		}
		tl, ds := planAndClaim(t, s, "last", 3)
		latest := t0.Add(2 * time.Hour)
		_, err := s.RecordOutcomes(ctx, tl.Fence, []Outcome{
			{DeliveryID: ds[0].ID, Kind: OutcomeSent, At: latest},
			{DeliveryID: ds[1].ID, Kind: OutcomeSent, At: t0.Add(time.Hour)},
			{DeliveryID: ds[2].ID, Kind: OutcomeRetry, At: t0.Add(3 * time.Hour), NextAttempt: t0.Add(4 * time.Hour)},
		}, 3)
		if err != nil {
			t.Fatal(err)
		}
		if c, err := s.CountDeliveries(ctx); err != nil || !c.LastSent.Equal(latest) || c.Sent != 2 || c.Pending != 1 {
			t.Fatalf("counts %+v %v, want 2 sent, last at %v", c, err, latest)
		}
	})
}
