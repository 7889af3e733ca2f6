package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// sentDelivery plans, claims and records as sent one digest to sub, with
// messageID, and returns the delivery's id.
func sentDelivery(t *testing.T, s *DB, sub Subscriber, messageID string) int64 {
	t.Helper()
	ctx := context.Background()
	tl := testLease(t, s)
	digest, err := s.CreateDigest(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PlanDeliveries(ctx, tl, digest, []PlannedDelivery{{SubscriberID: sub.ID, PieceIDs: []string{"p"}, Watermark: t0}}, t0); err != nil {
		t.Fatal(err)
	}
	ds, err := s.ClaimDeliveries(ctx, tl.Fence, 0, t0, 100)
	if err != nil || len(ds) != 1 {
		t.Fatalf("claimed %v, %v", ds, err)
	}
	if _, err := s.RecordOutcomes(ctx, tl.Fence, []Outcome{{DeliveryID: ds[0].ID, Kind: OutcomeSent, MessageID: messageID, At: t0}}, 3); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseLease(ctx, tl); err != nil {
		t.Fatal(err)
	}
	return ds[0].ID
}

func record(t *testing.T, s *DB, e Event, limit int) EventResult {
	t.Helper()
	res, err := s.RecordEvent(context.Background(), e, limit, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func status(t *testing.T, s *DB, id int64) (string, int) {
	t.Helper()
	sub, err := s.SubscriberByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return sub.Status, sub.HardBounces
}

// A hard bounce matched by our Message-ID counts once per delivery, whoever
// reports it and however often, and suppresses at the limit.
func TestRecordEventHardBounceByMessageID(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *DB) {
		ann := mustAdd(t, s, "ann@example.org")
		first := sentDelivery(t, s, ann, "digest-1-1@desk.example.org")
		// The report names the forwarding address, not ours: the Message-ID decides.
		dsn := Event{Source: "dsn", ID: "<r1@mx.example.net>/ann@forward.example/failed", Kind: EventHardBounce, By: ByMailbox,
			Recipient: "ann@forward.example", MessageID: "<digest-1-1@desk.example.org>", Status: "5.1.1", Diagnostic: "550 5.1.1 user unknown"}
		res := record(t, s, dsn, 2)
		if want := (EventResult{New: true, DeliveryID: first, SubscriberID: ann.ID, Effect: EffectCounted}); res != want {
			t.Fatalf("first report: %+v, want %+v", res, want)
		}
		// The same report again (a mailbox read again after a crash): nothing.
		if res := record(t, s, dsn, 2); res.New || res.Effect != "" {
			t.Fatalf("replayed: %+v", res)
		}
		// Another report of the same message (the provider's webhook): one bounce.
		hook := Event{Source: "sendgrid", ID: "sg-1", Kind: EventHardBounce, By: ByWebhook, Recipient: "ann@example.org", MessageID: "digest-1-1@desk.example.org"}
		if res := record(t, s, hook, 2); !res.New || res.Effect != EffectRepeat {
			t.Fatalf("second report of one delivery: %+v", res)
		}
		if st, n := status(t, s, ann.ID); st != StatusActive || n != 1 {
			t.Fatalf("after one delivery's bounces: %s, %d", st, n)
		}
		// A bounce of the next digest reaches the limit.
		second := sentDelivery(t, s, ann, "digest-2-1@desk.example.org")
		res = record(t, s, Event{Source: "dsn", ID: "r2", Kind: EventHardBounce, By: ByMailbox, MessageID: "digest-2-1@desk.example.org", Status: "5.1.1"}, 2)
		if want := (EventResult{New: true, DeliveryID: second, SubscriberID: ann.ID, Effect: EffectSuppressed}); res != want {
			t.Fatalf("at the limit: %+v, want %+v", res, want)
		}
		if st, n := status(t, s, ann.ID); st != StatusBounced || n != 2 {
			t.Fatalf("at the limit: %s, %d", st, n)
		}
		wantHistory(t, s, "ann@example.org", ">active cli ", "active>bounced mailbox hard bounce 2 of 2: dsn hard_bounce: 5.1.1")
	})
}

// Without a Message-ID the address decides; complaints and unsubscribes
// suppress at once; the other kinds are only recorded; nothing replaces a
// suppression in force; what matches nobody is kept as unmatched.
func TestRecordEventByAddressAndKind(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *DB) {
		subs := map[string]Subscriber{}
		for _, name := range []string{"complains", "leaves", "soft", "left"} {
			subs[name] = mustAdd(t, s, name+"@example.org")
		}
		if err := s.SetStatus(context.Background(), subs["left"].ID, StatusUnsubscribed, byHand, t0); err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			e                 Event
			effect, status    string
			subscriber, limit int64
		}{
			{Event{Source: "arf", ID: "a1", Kind: EventComplaint, By: ByMailbox, Recipient: "Complains@Example.org", Diagnostic: "feedback-type abuse"},
				EffectSuppressed, StatusComplained, subs["complains"].ID, 3},
			{Event{Source: "mailgun", ID: "m1", Kind: EventUnsubscribe, By: ByWebhook, Recipient: "leaves@example.org"},
				EffectSuppressed, StatusUnsubscribed, subs["leaves"].ID, 3},
			{Event{Source: "ses", ID: "s1", Kind: EventSoftBounce, By: ByWebhook, Recipient: "soft@example.org", Status: "5.2.2"},
				EffectRecorded, StatusActive, subs["soft"].ID, 1},
			{Event{Source: "ses", ID: "s2", Kind: EventDelayed, By: ByWebhook, Recipient: "soft@example.org"},
				EffectRecorded, StatusActive, subs["soft"].ID, 1},
			{Event{Source: "ses", ID: "s3", Kind: EventDelivered, By: ByWebhook, Recipient: "soft@example.org"},
				EffectRecorded, StatusActive, subs["soft"].ID, 1},
			{Event{Source: "ses", ID: "s4", Kind: EventRefused, By: ByWebhook, Recipient: "soft@example.org", Status: "5.7.1"},
				EffectRecorded, StatusActive, subs["soft"].ID, 1},
			{Event{Source: "arf", ID: "a2", Kind: EventComplaint, By: ByMailbox, Recipient: "left@example.org"},
				EffectRecorded, StatusUnsubscribed, subs["left"].ID, 3},
			{Event{Source: "dsn", ID: "d1", Kind: EventHardBounce, By: ByMailbox, Recipient: "stranger@example.org", MessageID: "not-ours@elsewhere"},
				EffectUnmatched, "", 0, 1},
			{Event{Source: "arf", ID: "a3", Kind: EventComplaint, By: ByMailbox},
				EffectUnmatched, "", 0, 1},
		}
		for _, c := range cases {
			res := record(t, s, c.e, int(c.limit))
			if res.Effect != c.effect || res.SubscriberID != c.subscriber || !res.New || res.DeliveryID != 0 {
				t.Errorf("%s %s: %+v, want effect %s for subscriber %d", c.e.Source, c.e.Kind, res, c.effect, c.subscriber)
			}
			if c.subscriber != 0 {
				if st, _ := status(t, s, c.subscriber); st != c.status {
					t.Errorf("%s %s: status %s, want %s", c.e.Source, c.e.Kind, st, c.status)
				}
			}
		}
		wantHistory(t, s, "complains@example.org", ">active cli ", "active>complained mailbox arf complaint: feedback-type abuse")
		wantHistory(t, s, "leaves@example.org", ">active cli ", "active>unsubscribed webhook mailgun unsubscribe")
		wantHistory(t, s, "soft@example.org", ">active cli ")

		ctx := context.Background()
		for name, e := range map[string]Event{
			"no source":    {ID: "x", Kind: EventComplaint, By: ByMailbox},
			"no id":        {Source: "arf", Kind: EventComplaint, By: ByMailbox},
			"unknown kind": {Source: "arf", ID: "x", Kind: "opened", By: ByMailbox},
			"unknown way":  {Source: "arf", ID: "x", Kind: EventComplaint, By: ByCLI},
		} {
			if _, err := s.RecordEvent(ctx, e, 1, t0); err == nil {
				t.Errorf("%s: accepted", name)
			}
		}
	})
}

// One event posted to several processes at once (a provider retrying while
// the first request is still being answered, two replicas) is new to one.
func TestRecordEventOnceAcrossHandles(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			s1, reopen := openEngine(t, eng)
			s2 := reopen()
			sub := mustAdd(t, s1, "race@example.org")
			for round := range 5 {
				var (
					wg  sync.WaitGroup
					mu  sync.Mutex
					new int
				)
				for i := range 8 {
					h := []*DB{s1, s2}[i%2]
					wg.Go(func() {
						res, err := h.RecordEvent(context.Background(), Event{Source: "sendgrid", ID: fmt.Sprintf("round-%d", round),
							Kind: EventHardBounce, By: ByWebhook, Recipient: "race@example.org"}, 100, t0)
						if err != nil {
							t.Error(err)
						}
						mu.Lock()
						if res.New {
							new++
						}
						mu.Unlock()
					})
				}
				wg.Wait()
				if new != 1 {
					t.Fatalf("round %d: new to %d callers", round, new)
				}
			}
			if _, n := status(t, s1, sub.ID); n != 5 {
				t.Fatalf("%d hard bounces counted for 5 events", n)
			}
		})
	}
}
