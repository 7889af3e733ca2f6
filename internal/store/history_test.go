package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// byHand is the change the tests make by hand.
var byHand = Change{By: ByCLI, Reason: "test"}

// history is a subscriber's history as "from>to by reason" strings.
func history(t *testing.T, s *DB, email string) []string {
	t.Helper()
	sub, err := s.SubscriberByEmail(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	changes, err := s.StatusHistory(context.Background(), sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range changes {
		if c.SubscriberID != sub.ID || c.At.IsZero() {
			t.Errorf("%s: change %+v", email, c)
		}
		out = append(out, fmt.Sprintf("%s>%s %s %s", c.From, c.To, c.By, c.Reason))
	}
	return out
}

func wantHistory(t *testing.T, s *DB, email string, want ...string) {
	t.Helper()
	if got := history(t, s, email); !reflect.DeepEqual(got, want) {
		t.Errorf("%s: history\n%s\nwant\n%s", email, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Every way a status changes today leaves one entry, with who made it and why;
// a change to the status in force leaves none.
func TestStatusHistoryOfEveryPath(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		t1, t2 := t0.Add(time.Hour), t0.Add(2*time.Hour)

		// The web: a sign-up, its confirmation, an unsubscribe link.
		web, err := s.AddSubscriber(ctx, SubscriberInput{Email: "web@example.org", Source: SourceWeb, ConsentSource: "web"}, t0)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range []string{StatusActive, StatusActive, StatusUnsubscribed} {
			if err := s.SetStatus(ctx, web.ID, st, Change{By: ByWeb, Reason: "link"}, t1); err != nil {
				t.Fatal(err)
			}
		}
		wantHistory(t, s, "web@example.org", ">pending web web", "pending>active web link", "active>unsubscribed web link")

		// The list files: added, gone, back again.
		if _, err := syncRows(s, ctx, []SubscriberInput{{Email: "file@example.org", ConsentSource: "file list.csv:2"}}, t0); err != nil {
			t.Fatal(err)
		}
		if _, err := syncRows(s, ctx, nil, t1); err != nil {
			t.Fatal(err)
		}
		if _, err := syncRows(s, ctx, []SubscriberInput{{Email: "file@example.org", ConsentSource: "file list.csv:7"}}, t2); err != nil {
			t.Fatal(err)
		}
		wantHistory(t, s, "file@example.org", ">active sync file list.csv:2", "active>gone sync no longer in the list files",
			"gone>active sync back in the list files: file list.csv:7")

		// By hand: added, then a gone file subscriber taken over by the CLI.
		if _, err := syncRows(s, ctx, nil, t2); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AddSubscriber(ctx, SubscriberInput{Email: "file@example.org", Source: SourceCLI, ConsentSource: "cli"}, t2); err != nil {
			t.Fatal(err)
		}
		if got := history(t, s, "file@example.org"); len(got) != 5 || got[4] != "gone>active cli cli" {
			t.Errorf("taken over by hand: %q", got)
		}
		// An update of a known address changes no status, and records nothing.
		if _, err := s.AddSubscriber(ctx, SubscriberInput{Email: "file@example.org", Name: "F", Source: SourceCLI}, t2); err != nil {
			t.Fatal(err)
		}
		if got := history(t, s, "file@example.org"); len(got) != 5 {
			t.Errorf("an update recorded a change: %q", got)
		}

		// The SMTP server's answers: the bounce limit.
		tl := testLease(t, s)
		hard := mustAdd(t, s, "hard@example.org")
		for round := 1; round <= 2; round++ {
			digest, _ := s.CreateDigest(ctx, t0)
			if err := s.PlanDeliveries(ctx, tl, digest, []PlannedDelivery{{SubscriberID: hard.ID, PieceIDs: []string{"p"}, Watermark: t0}}, t0); err != nil {
				t.Fatal(err)
			}
			ds, _ := s.ClaimDeliveries(ctx, tl.Fence, 0, t0, 10)
			if _, err := s.RecordOutcomes(ctx, tl.Fence, []Outcome{{DeliveryID: ds[0].ID, Kind: OutcomePermanent, Error: "550 5.1.1 user unknown", At: t1}}, 2); err != nil {
				t.Fatal(err)
			}
		}
		wantHistory(t, s, "hard@example.org", ">active cli ", "active>bounced send hard bounce 2 of 2: 550 5.1.1 user unknown")
	})
}

// Subscribers from before the history began get one entry with the status
// they had, when the migration that brings the history runs.
func TestStatusHistoryMigrationStartsFromTheStatusInForce(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			s, reopen := openEngine(t, eng)
			var version int
			if err := s.db.QueryRow(`SELECT version FROM schema_migrations WHERE version = 4`).Scan(&version); err != nil {
				t.Fatalf("migration 4 not recorded: %v", err)
			}
			// As if the history had not begun yet, with a subscriber.
			for _, q := range []string{`DROP TABLE status_changes`, `DELETE FROM schema_migrations WHERE version = 4`} {
				if _, err := s.db.Exec(q); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.db.Exec(s.bind(`INSERT INTO subscribers (email, source, status, joined_at, updated_at) VALUES (?, 'file', 'bounced', ?, ?)`),
				"old@example.org", t0.UnixMicro(), t0.UnixMicro()); err != nil {
				t.Fatal(err)
			}
			s2 := reopen()
			wantHistory(t, s2, "old@example.org", ">bounced migration the status when the history began")
		})
	}
}

// An operator lifts a suppression with a reason: the history records it, the
// hard-bounce count starts afresh, and one who never confirmed goes back to
// pending, not active.
func TestUnsuppress(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		t1 := t0.Add(time.Hour)
		bounced := mustAdd(t, s, "bounced@example.org")
		for i := range 3 {
			if _, err := s.RecordEvent(ctx, Event{Source: "dsn", ID: fmt.Sprint("report-", i), Kind: EventHardBounce, By: ByMailbox,
				Recipient: "bounced@example.org", Status: "5.1.1"}, 3, t0); err != nil {
				t.Fatal(err)
			}
		}
		if st, n := status(t, s, bounced.ID); st != StatusBounced || n != 3 {
			t.Fatalf("before: %s %d", st, n)
		}
		sub, err := s.Unsuppress(ctx, " Bounced@Example.org ", "  the relay refused us, not the reader  ", t1)
		if err != nil {
			t.Fatal(err)
		}
		if sub.Status != StatusActive || sub.HardBounces != 0 || !sub.UpdatedAt.Equal(t1) {
			t.Fatalf("after: %+v", sub)
		}
		got := history(t, s, "bounced@example.org")
		if len(got) != 3 || got[2] != "bounced>active cli the relay refused us, not the reader" {
			t.Fatalf("history: %q", got)
		}

		web, err := s.AddSubscriber(ctx, SubscriberInput{Email: "web@example.org", Source: SourceWeb}, t0)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SetStatus(ctx, web.ID, StatusComplained, byHand, t0); err != nil {
			t.Fatal(err)
		}
		if sub, err := s.Unsuppress(ctx, "web@example.org", "complaint was a mistake", t1); err != nil || sub.Status != StatusPending || !sub.ConfirmedAt.IsZero() {
			t.Fatalf("never confirmed: %+v %v", sub, err)
		}

		if _, err := s.Unsuppress(ctx, "bounced@example.org", "again", t1); !errors.Is(err, ErrNotSuppressed) {
			t.Errorf("active address: %v", err)
		}
		if _, err := s.Unsuppress(ctx, "nobody@example.org", "why", t1); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown address: %v", err)
		}
		if _, err := s.Unsuppress(ctx, "web@example.org", " ", t1); err == nil {
			t.Error("no reason accepted")
		}
	})
}
