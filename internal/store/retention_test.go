package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Purge deletes finished deliveries of old digests in batches, and old
// events; it keeps what is pending, what is recent and the status history.
func TestPurgeOldDeliveriesAndEvents(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		tl := testLease(t, s)
		old, recent := t0, t0.Add(30*24*time.Hour)
		var subs []Subscriber
		for i := range 7 {
			subs = append(subs, mustAdd(t, s, fmt.Sprintf("r%d@example.org", i)))
		}
		plan := func(at time.Time) int64 {
			digest, err := s.CreateDigest(ctx, at)
			if err != nil {
				t.Fatal(err)
			}
			var p []PlannedDelivery
			for _, sub := range subs {
				p = append(p, PlannedDelivery{SubscriberID: sub.ID, PieceIDs: []string{"p"}, Watermark: at})
			}
			if err := s.PlanDeliveries(ctx, tl, digest, p, at); err != nil {
				t.Fatal(err)
			}
			ds, err := s.ClaimDeliveries(ctx, tl.Fence, 0, at.Add(time.Hour), 100)
			if err != nil {
				t.Fatal(err)
			}
			// All of this digest's finished but the last, which stays pending.
			var mine []Delivery
			for _, d := range ds {
				if d.DigestID == digest {
					mine = append(mine, d)
				}
			}
			var outs []Outcome
			for i, d := range mine[:len(mine)-1] {
				kind := []string{OutcomeSent, OutcomePermanent, OutcomeSkipped}[i%3]
				outs = append(outs, Outcome{DeliveryID: d.ID, Kind: kind, MessageID: fmt.Sprintf("m-%d", d.ID), At: at})
			}
			if _, err := s.RecordOutcomes(ctx, tl.Fence, outs, 100); err != nil {
				t.Fatal(err)
			}
			return digest
		}
		oldDigest := plan(old)
		emptied := plan(old)
		// The second old digest's pending delivery finishes too: the digest empties.
		ds, _ := s.ClaimDeliveries(ctx, tl.Fence, 0, recent, 100)
		for _, d := range ds {
			if d.DigestID == emptied {
				if _, err := s.RecordOutcomes(ctx, tl.Fence, []Outcome{{DeliveryID: d.ID, Kind: OutcomeSent, At: old}}, 100); err != nil {
					t.Fatal(err)
				}
			}
		}
		plan(recent)
		for i, at := range []time.Time{old, old, old, recent} {
			record(t, s, Event{Source: "ses", ID: fmt.Sprint(i), Kind: EventDelivered, By: ByWebhook, Recipient: "r0@example.org"}, 3)
			if _, err := s.db.Exec(s.bind(`UPDATE events SET received_at = ? WHERE event_id = ?`), at.UnixMicro(), fmt.Sprint(i)); err != nil {
				t.Fatal(err)
			}
		}
		histBefore := rowCount(t, s, "status_changes")

		res, err := s.Purge(ctx, recent.Add(-time.Hour), 2)
		if err != nil {
			t.Fatal(err)
		}
		// Old: 2 × 7 deliveries, of which the first digest's pending one stays.
		if want := (Purged{Deliveries: 13, Digests: 1, Events: 3}); res != want {
			t.Errorf("purged %+v, want %+v", res, want)
		}
		var left []string
		rows, err := s.db.Query(`SELECT d.digest_id, d.status FROM deliveries d ORDER BY d.id`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var (
				digest int64
				st     string
			)
			if err := rows.Scan(&digest, &st); err != nil {
				t.Fatal(err)
			}
			if digest == emptied || (digest == oldDigest && st != DeliveryPending) {
				t.Errorf("left: delivery of digest %d, %s", digest, st)
			}
			left = append(left, st)
		}
		rows.Close()
		if len(left) != 8 {
			t.Errorf("%d deliveries left, want 8 (the old pending one and the recent digest's 7)", len(left))
		}
		if n := rowCount(t, s, "digests"); n != 2 {
			t.Errorf("%d digests left, want 2", n)
		}
		if n := rowCount(t, s, "events"); n != 1 {
			t.Errorf("%d events left, want 1", n)
		}
		if n := rowCount(t, s, "status_changes"); n != histBefore {
			t.Errorf("history: %d rows, was %d", n, histBefore)
		}
		// Again: nothing more to do.
		if res, err := s.Purge(ctx, recent.Add(-time.Hour), 2); err != nil || res != (Purged{}) {
			t.Errorf("second purge: %+v %v", res, err)
		}
	})
}
