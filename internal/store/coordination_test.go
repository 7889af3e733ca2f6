package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"
)

// plannedStore makes n active subscribers and one pending delivery each, planned
// under a lease of its own (released afterwards).
func plannedStore(t testing.TB, s *DB, n int) {
	t.Helper()
	ctx := context.Background()
	rows := make([]SubscriberInput, n)
	for i := range rows {
		rows[i] = SubscriberInput{Email: fmt.Sprintf("c%05d@example.org", i)}
	}
	if _, err := syncRows(s, ctx, rows, t0); err != nil {
		t.Fatal(err)
	}
	planner, err := s.AcquireLease(ctx, "plan", "planner", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := s.CreateDigest(ctx, t0)
	plan := make([]PlannedDelivery, n)
	for i := range plan {
		plan[i] = PlannedDelivery{SubscriberID: int64(i + 1), PieceIDs: []string{"p"}, Watermark: t0}
	}
	if err := s.PlanDeliveries(ctx, planner, digest, plan, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseLease(ctx, planner); err != nil {
		t.Fatal(err)
	}
}

func ids(ds []Delivery) []int64 {
	out := make([]int64, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

func TestLeaseAcquireRenewRelease(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		a, err := s.AcquireLease(ctx, "send", "host-a/1", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if a.Holder == "" || a.Fence <= 0 || a.Label != "host-a/1" || time.Until(a.Expires) < 50*time.Second {
			t.Fatalf("acquired %+v", a)
		}
		// Held: another acquirer learns who holds it, and gets nothing.
		held, err := s.AcquireLease(ctx, "send", "host-b/1", time.Minute)
		if !errors.Is(err, ErrLeaseHeld) || held.Holder != a.Holder || held.Fence != a.Fence || held.Label != "host-a/1" {
			t.Fatalf("second acquire: %+v %v", held, err)
		}
		// The same label (a restarted container with the same host name and pid)
		// is nobody: only the token and fence count.
		if _, err := s.AcquireLease(ctx, "send", "host-a/1", time.Minute); !errors.Is(err, ErrLeaseHeld) {
			t.Fatalf("same label took a held lease: %v", err)
		}
		renewed, err := s.RenewLease(ctx, a, 2*time.Minute)
		if err != nil || !renewed.Expires.After(a.Expires) || renewed.Fence != a.Fence {
			t.Fatalf("renew: %+v %v", renewed, err)
		}
		// Names are independent, and every acquisition draws a new, larger fence.
		other, err := s.AcquireLease(ctx, "plan", "", time.Minute)
		if err != nil || other.Fence <= a.Fence {
			t.Fatalf("other lease: %+v %v", other, err)
		}
		if err := s.ReleaseLease(ctx, a); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RenewLease(ctx, a, time.Minute); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("renewed a released lease: %v", err)
		}
		b, err := s.AcquireLease(ctx, "send", "host-b/1", time.Minute)
		if err != nil || b.Fence <= other.Fence || b.Holder == a.Holder {
			t.Fatalf("after release: %+v %v", b, err)
		}
		// Releasing a lease one no longer holds leaves the new holder's alone.
		if err := s.ReleaseLease(ctx, a); err != nil {
			t.Fatal(err)
		}
		if got, err := s.LeaseByName(ctx, "send"); err != nil || got.Fence != b.Fence {
			t.Fatalf("stale release touched the new lease: %+v %v", got, err)
		}
		if _, err := s.LeaseByName(ctx, "none"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing lease: %v", err)
		}
		if _, err := s.AcquireLease(ctx, "send", "", 0); err == nil {
			t.Error("zero ttl accepted")
		}
		if _, err := s.AcquireLease(ctx, "", "", time.Minute); err == nil {
			t.Error("empty name accepted")
		}
	})
}

// An expired lease is free to take, and its old holder can never renew it, even
// when nobody took it in between: once expired it may have been acted on.
func TestExpiredLeaseIsTakenAndNeverRenewed(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		a, err := s.AcquireLease(ctx, "send", "a", 100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		if _, err := s.RenewLease(ctx, a, time.Minute); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("expired lease renewed: %v", err)
		}
		b, err := s.AcquireLease(ctx, "send", "b", time.Minute)
		if err != nil || b.Fence <= a.Fence {
			t.Fatalf("expired lease not taken: %+v %v", b, err)
		}
		if _, err := s.RenewLease(ctx, a, time.Minute); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("old holder renewed the new holder's lease: %v", err)
		}
	})
}

// TestLeaseRaceAcrossHandles races two handles (two pools, as two processes
// would have) on one database: each round, exactly one acquirer wins.
func TestLeaseRaceAcrossHandles(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			s1, reopen := openEngine(t, eng)
			s2 := reopen()
			ctx := context.Background()
			const rounds, perHandle = 10, 8
			for round := range rounds {
				var (
					wg      sync.WaitGroup
					mu      sync.Mutex
					winners []Lease
					errs    []error
				)
				for h, s := range []*DB{s1, s2} {
					for g := range perHandle {
						wg.Go(func() {
							l, err := s.AcquireLease(ctx, "send", fmt.Sprintf("h%d-g%d", h, g), time.Minute)
							mu.Lock()
							defer mu.Unlock()
							switch {
							case err == nil:
								winners = append(winners, l)
							case !errors.Is(err, ErrLeaseHeld):
								errs = append(errs, err)
							}
						})
					}
				}
				wg.Wait()
				if len(errs) > 0 {
					t.Fatalf("round %d: %v", round, errs)
				}
				if len(winners) != 1 {
					t.Fatalf("round %d: %d winners", round, len(winners))
				}
				got, err := s2.LeaseByName(ctx, "send")
				if err != nil || got.Holder != winners[0].Holder || got.Fence != winners[0].Fence {
					t.Fatalf("round %d: stored %+v, winner %+v (%v)", round, got, winners[0], err)
				}
				if err := s1.ReleaseLease(ctx, winners[0]); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// Planning writes nothing under a lease that is no longer held.
func TestPlanNeedsALiveLease(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		sub := mustAdd(t, s, "p@example.org")
		l, err := s.AcquireLease(ctx, "plan", "", 100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		digest, _ := s.CreateDigest(ctx, t0)
		time.Sleep(300 * time.Millisecond)
		plan := []PlannedDelivery{{SubscriberID: sub.ID, PieceIDs: []string{"p"}, Watermark: t0}}
		if err := s.PlanDeliveries(ctx, l, digest, plan, t0); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("planned under an expired lease: %v", err)
		}
		if c, _ := s.CountDeliveries(ctx); c.Pending != 0 {
			t.Fatalf("plan written under an expired lease: %+v", c)
		}
		if got, _ := s.SubscriberByID(ctx, sub.ID); !got.Watermark.IsZero() {
			t.Fatalf("watermark moved under an expired lease: %v", got.Watermark)
		}
	})
}

// Two live senders claim disjoint rows; together they claim every row once.
func TestClaimsSplitBetweenSenders(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		plannedStore(t, s, 50)
		a := testLease(t, s)
		b, err := s.AcquireLease(ctx, "sender/b", "", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		got := map[int64]string{}
		afterA, afterB := int64(0), int64(0)
		for range 10 {
			da, err := s.ClaimDeliveries(ctx, a.Fence, afterA, t0, 4)
			if err != nil {
				t.Fatal(err)
			}
			db, err := s.ClaimDeliveries(ctx, b.Fence, afterB, t0, 3)
			if err != nil {
				t.Fatal(err)
			}
			for who, page := range map[string][]Delivery{"a": da, "b": db} {
				for _, d := range page {
					if prev, ok := got[d.ID]; ok {
						t.Fatalf("delivery %d claimed by %s and %s", d.ID, prev, who)
					}
					got[d.ID] = who
				}
			}
			if len(da) > 0 {
				afterA = da[len(da)-1].ID
			}
			if len(db) > 0 {
				afterB = db[len(db)-1].ID
			}
		}
		if len(got) != 50 {
			t.Fatalf("%d of 50 claimed", len(got))
		}
		// Each sees the other's claims as elsewhere, its own as open.
		st, err := s.PendingState(ctx, a.Fence)
		if err != nil {
			t.Fatal(err)
		}
		nb := 0
		for _, who := range got {
			if who == "b" {
				nb++
			}
		}
		if st.Open != int64(50-nb) || st.Elsewhere != int64(nb) || st.ElsewhereUntil.IsZero() {
			t.Fatalf("state for a: %+v (b holds %d)", st, nb)
		}
	})
}

// A sender whose lease expired loses its claims to the next sender, writes no
// outcome over them (fenced), and can claim nothing more.
func TestClaimsOfAnExpiredLeaseAreTakenOverAndFenced(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		plannedStore(t, s, 10)
		a, err := s.AcquireLease(ctx, "sender/a", "", 200*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		mine, err := s.ClaimDeliveries(ctx, a.Fence, 0, t0, 100)
		if err != nil || len(mine) != 10 {
			t.Fatalf("a claimed %d: %v", len(mine), err)
		}
		b, err := s.AcquireLease(ctx, "sender/b", "", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := s.ClaimDeliveries(ctx, b.Fence, 0, t0, 100); err != nil || len(got) != 0 {
			t.Fatalf("b claimed %v of a live lease's rows (%v)", ids(got), err)
		}
		// a records two outcomes while live.
		res, err := s.RecordOutcomes(ctx, a.Fence, []Outcome{
			{DeliveryID: mine[0].ID, Kind: OutcomeSent, MessageID: "m0", At: t0},
			{DeliveryID: mine[1].ID, Kind: OutcomeRetry, Error: "451", At: t0, NextAttempt: t0},
		}, 3)
		if err != nil || len(res.Fenced) != 0 {
			t.Fatalf("live outcomes: %+v %v", res, err)
		}
		time.Sleep(400 * time.Millisecond) // a's lease expires (a paused or partitioned sender)
		taken, err := s.ClaimDeliveries(ctx, b.Fence, 0, t0, 100)
		if err != nil || len(taken) != 9 {
			t.Fatalf("b took %v after a expired (%v)", ids(taken), err)
		}
		if _, err := s.ClaimDeliveries(ctx, a.Fence, 0, t0, 100); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("expired sender claimed: %v", err)
		}
		// a wakes up and tries to record what it thinks it sent: fenced, not written.
		res, err = s.RecordOutcomes(ctx, a.Fence, []Outcome{
			{DeliveryID: mine[2].ID, Kind: OutcomeSent, MessageID: "late", At: t0},
			{DeliveryID: mine[4].ID, Kind: OutcomeSent, MessageID: "late", At: t0},
			{DeliveryID: mine[5].ID, Kind: OutcomeSent, MessageID: "late", At: t0},
			{DeliveryID: mine[3].ID, Kind: OutcomePermanent, Error: "550", At: t0},
		}, 1)
		if err != nil || !slices.Equal(res.Fenced, []int64{mine[2].ID, mine[4].ID, mine[5].ID, mine[3].ID}) || len(res.Suppressed) != 0 {
			t.Fatalf("fenced outcomes: %+v %v", res, err)
		}
		if sub, _ := s.SubscriberByID(ctx, mine[3].SubscriberID); sub.HardBounces != 0 {
			t.Fatalf("a fenced failure counted a bounce: %+v", sub)
		}
		var outs []Outcome
		for _, d := range taken {
			outs = append(outs, Outcome{DeliveryID: d.ID, Kind: OutcomeSent, MessageID: "b", At: t0})
		}
		if res, err := s.RecordOutcomes(ctx, b.Fence, outs, 3); err != nil || len(res.Fenced) != 0 {
			t.Fatalf("b's outcomes: %+v %v", res, err)
		}
		if c, _ := s.CountDeliveries(ctx); c != (DeliveryCounts{Sent: 10, LastSent: t0}) {
			t.Fatalf("counts %+v", c)
		}
		var mid string
		if err := s.db.QueryRow(s.bind(`SELECT message_id FROM deliveries WHERE id = ?`), mine[2].ID).Scan(&mid); err != nil || mid != "b" {
			t.Fatalf("delivery %d recorded as %q (%v), want b's", mine[2].ID, mid, err)
		}
	})
}

// Releasing a lease, or its claims, frees the rows at once.
func TestReleaseFreesClaims(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		plannedStore(t, s, 6)
		a, _ := s.AcquireLease(ctx, "sender/a", "", time.Hour)
		b, _ := s.AcquireLease(ctx, "sender/b", "", time.Hour)
		if got, _ := s.ClaimDeliveries(ctx, a.Fence, 0, t0, 3); len(got) != 3 {
			t.Fatalf("a claimed %d", len(got))
		}
		if err := s.ReleaseClaims(ctx, a.Fence); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.ClaimDeliveries(ctx, b.Fence, 0, t0, 100); len(got) != 6 {
			t.Fatalf("after release of claims b claimed %d, want 6", len(got))
		}
		c, _ := s.AcquireLease(ctx, "sender/c", "", time.Hour)
		if got, _ := s.ClaimDeliveries(ctx, c.Fence, 0, t0, 100); len(got) != 0 {
			t.Fatalf("c claimed %d of b's", len(got))
		}
		if err := s.ReleaseLease(ctx, b); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.ClaimDeliveries(ctx, c.Fence, 0, t0, 100); len(got) != 6 {
			t.Fatalf("after b's lease ended c claimed %d, want 6", len(got))
		}
		st, _ := s.PendingState(ctx, c.Fence)
		if st.Open != 6 || st.Elsewhere != 0 || !st.NextOpen.Equal(time.UnixMicro(0).UTC()) {
			t.Fatalf("state %+v", st)
		}
	})
}

// TestConcurrentSendersRecordEachRowOnce runs three senders on each of two handles
// at once, claiming and recording as a send would: every row is sent by exactly
// one of them, none is fenced, and none is left.
func TestConcurrentSendersRecordEachRowOnce(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			s1, reopen := openEngine(t, eng)
			s2 := reopen()
			const n = 600
			plannedStore(t, s1, n)
			ctx := context.Background()
			var (
				wg    sync.WaitGroup
				mu    sync.Mutex
				sent  = map[int64]int{}
				fails []error
			)
			for h, s := range []*DB{s1, s2} {
				for g := range 3 {
					wg.Go(func() {
						l, err := s.AcquireLease(ctx, fmt.Sprintf("sender/%d-%d", h, g), "", time.Hour)
						if err != nil {
							mu.Lock()
							fails = append(fails, err)
							mu.Unlock()
							return
						}
						after := int64(0)
						for {
							page, err := s.ClaimDeliveries(ctx, l.Fence, after, t0, 16)
							if err == nil && len(page) == 0 {
								return
							}
							var res OutcomeResult
							if err == nil {
								outs := make([]Outcome, len(page))
								for i, d := range page {
									outs[i] = Outcome{DeliveryID: d.ID, Kind: OutcomeSent, MessageID: "m", At: t0}
								}
								res, err = s.RecordOutcomes(ctx, l.Fence, outs, 1)
							}
							mu.Lock()
							if err != nil || len(res.Fenced) > 0 {
								fails = append(fails, fmt.Errorf("sender %d-%d: %v, fenced %v", h, g, err, res.Fenced))
								mu.Unlock()
								return
							}
							for _, d := range page {
								sent[d.ID]++
							}
							mu.Unlock()
							after = page[len(page)-1].ID
						}
					})
				}
			}
			wg.Wait()
			if len(fails) > 0 {
				t.Fatal(fails)
			}
			for id, k := range sent {
				if k != 1 {
					t.Errorf("delivery %d sent %d times", id, k)
				}
			}
			if c, _ := s1.CountDeliveries(ctx); len(sent) != n || c != (DeliveryCounts{Sent: n, LastSent: t0}) {
				t.Fatalf("%d sent, counts %+v", len(sent), c)
			}
		})
	}
}

func TestMigrationsReopenIdempotent(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			s, reopen := openEngine(t, eng)
			ctx := context.Background()
			mustAdd(t, s, "keep@example.org")
			migrations, err := loadMigrations(migrationFiles, "migrations/"+eng)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 2; i++ {
				s2 := reopen()
				var n, maxVersion int
				if err := s2.db.QueryRow(`SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&n, &maxVersion); err != nil {
					t.Fatal(err)
				}
				if n != len(migrations) || maxVersion != migrations[len(migrations)-1].version {
					t.Errorf("reopen %d: %d migrations recorded (max %d), want %d", i, n, maxVersion, len(migrations))
				}
				if _, err := s2.SubscriberByEmail(ctx, "keep@example.org"); err != nil {
					t.Errorf("reopen %d: data lost: %v", i, err)
				}
			}
		})
	}
}

// Several processes opening a new database at once apply each migration once.
func TestConcurrentOpenOfNewDatabase(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			target := t.TempDir() + "/race.db"
			if eng == "postgres" {
				target = pgDSN(t)
			}
			var wg sync.WaitGroup
			errs := make(chan error, 6)
			for range 6 {
				wg.Go(func() {
					s, err := Open(context.Background(), eng, target)
					if err != nil {
						errs <- err
						return
					}
					errs <- s.Close()
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Errorf("open: %v", err)
				}
			}
		})
	}
}

func TestLoadMigrations(t *testing.T) {
	for name, files := range map[string]fstest.MapFS{
		"no number":      {"m/init.sql": {Data: []byte("SELECT 1;")}},
		"zero":           {"m/0000_init.sql": {Data: []byte("SELECT 1;")}},
		"same version":   {"m/0001_a.sql": {Data: []byte("SELECT 1;")}, "m/001_b.sql": {Data: []byte("SELECT 1;")}},
		"not a number":   {"m/x1_init.sql": {Data: []byte("SELECT 1;")}},
		"missing folder": {"other/0001_a.sql": {Data: []byte("SELECT 1;")}},
	} {
		if _, err := loadMigrations(files, "m"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	ordered, err := loadMigrations(fstest.MapFS{
		"m/0010_c.sql": {Data: []byte("c")},
		"m/0002_b.sql": {Data: []byte("b")},
		"m/0001_a.sql": {Data: []byte("a")},
		"m/README.md":  {Data: []byte("not sql")},
	}, "m")
	if err != nil || len(ordered) != 3 || ordered[0].sql != "a" || ordered[1].sql != "b" || ordered[2].version != 10 {
		t.Fatalf("ordered: %+v %v", ordered, err)
	}
	// Both engines carry the same migrations, by number and name: the same
	// changes in intent, each in its engine's terms.
	names := map[string][]string{}
	for _, eng := range engines {
		ms, err := loadMigrations(migrationFiles, "migrations/"+eng)
		if err != nil || len(ms) == 0 || ms[0].version != 1 {
			t.Fatalf("%s migrations: %v %v", eng, ms, err)
		}
		for _, m := range ms {
			names[eng] = append(names[eng], m.name)
		}
	}
	if !slices.Equal(names["sqlite"], names["postgres"]) {
		t.Fatalf("the engines' migrations differ: %v and %v", names["sqlite"], names["postgres"])
	}
}

func TestQueriesLoadForEveryEngine(t *testing.T) {
	for _, eng := range []engine{sqliteEngine(), postgresEngine()} {
		q, err := loadQueries(queryFiles, eng.words)
		if err != nil {
			t.Fatalf("%s: %v", eng.name, err)
		}
		for _, name := range append(hotStatements, "claimed-deliveries", "pending-state", "acquire-lease") {
			if q[name] == "" {
				t.Errorf("%s: statement %s missing", eng.name, name)
			}
		}
		if eng.name == "postgres" && !strings.Contains(q["claim-deliveries"], "SKIP LOCKED") {
			t.Errorf("postgres claim has no SKIP LOCKED: %s", q["claim-deliveries"])
		}
	}
	for name, body := range map[string]string{
		"unknown word": "-- name: a\nSELECT {{nope}}\n",
		"twice":        "-- name: a\nSELECT 1\n-- name: a\nSELECT 2\n",
		"empty":        "-- name: a\n-- only a comment\n",
	} {
		if err := parseQueries("x.sql", body, nil, queries{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if got := numberPlaceholders("a = ? AND b IN (?, ?)"); got != "a = $1 AND b IN ($2, $3)" {
		t.Errorf("numbered: %s", got)
	}
}

// TestProcessesShareDatabase runs this test binary as several child processes on
// one database, as several "publisher run"s would: they all write the ledger at
// once without an error, and of all their tries at one lease exactly one wins.
func TestProcessesShareDatabase(t *testing.T) {
	if target := os.Getenv("STORE_TEST_CHILD_TARGET"); target != "" {
		childProcess(t, os.Getenv("STORE_TEST_CHILD_ENGINE"), target, os.Getenv("STORE_TEST_CHILD_NAME"))
		return
	}
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			target := t.TempDir() + "/shared.db"
			if eng == "postgres" {
				target = pgDSN(t)
			}
			s, err := Open(context.Background(), eng, target)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			var rows []SubscriberInput
			for i := 0; i < 300; i++ {
				rows = append(rows, SubscriberInput{Email: fmt.Sprintf("p%d@example.org", i)})
			}
			if _, err := syncRows(s, ctx, rows, t0); err != nil {
				t.Fatal(err)
			}
			const children = 3
			cmds := make([]*exec.Cmd, children)
			outs := make([]*strings.Builder, children)
			for i := range cmds {
				cmd := exec.Command(os.Args[0], "-test.run=^TestProcessesShareDatabase$", "-test.count=1")
				cmd.Env = append(os.Environ(), "STORE_TEST_CHILD_TARGET="+target, "STORE_TEST_CHILD_ENGINE="+eng,
					fmt.Sprintf("STORE_TEST_CHILD_NAME=%d", i))
				outs[i] = &strings.Builder{}
				cmd.Stdout, cmd.Stderr = outs[i], outs[i]
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				cmds[i] = cmd
			}
			wins := 0
			for i, cmd := range cmds {
				if err := cmd.Wait(); err != nil {
					t.Fatalf("child %d: %v\n%s", i, err, outs[i])
				}
				wins += strings.Count(outs[i].String(), "LEASE-WON")
			}
			if wins != 1 {
				t.Fatalf("%d processes won the lease", wins)
			}
			c, err := s.CountDeliveries(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if c.Sent != children*100 || c.Pending != 0 {
				t.Fatalf("counts %+v, want %d sent", c, children*100)
			}
		})
	}
}

func childProcess(t *testing.T, eng, target, name string) {
	ctx := context.Background()
	s, err := Open(ctx, eng, target)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n, err := strconv.Atoi(name)
	if err != nil {
		t.Fatal(err)
	}
	mine, err := s.AcquireLease(ctx, "sender/"+name, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	won := false
	for k := 0; k < 100; k++ {
		// Everyone tries the same lease again and again: only one may ever get it.
		if _, err := s.AcquireLease(ctx, "send", "proc-"+name, time.Hour); err == nil && !won {
			won = true
			fmt.Println("LEASE-WON")
		} else if err != nil && !errors.Is(err, ErrLeaseHeld) {
			t.Fatal(err)
		}
		digest, err := s.CreateDigest(ctx, t0)
		if err != nil {
			t.Fatal(err)
		}
		id := int64(n*100 + k + 1)
		if err := s.PlanDeliveries(ctx, mine, digest, []PlannedDelivery{{SubscriberID: id, PieceIDs: []string{"p"}, Watermark: t0}}, t0); err != nil {
			t.Fatal(err)
		}
		var did int64
		if err := s.db.QueryRowContext(ctx, s.bind(`SELECT id FROM deliveries WHERE digest_id = ?`), digest).Scan(&did); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ClaimDeliveries(ctx, mine.Fence, did-1, t0, 1); err != nil {
			t.Fatal(err)
		}
		res, err := s.RecordOutcomes(ctx, mine.Fence, []Outcome{{DeliveryID: did, Kind: OutcomeSent, MessageID: "m", At: t0}}, 1)
		if err != nil || len(res.Fenced) > 0 {
			t.Fatalf("record: %+v %v", res, err)
		}
	}
}

// A planning pass is counted only under a live lease.
func TestPlanPassesCountedUnderALiveLease(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		if n, err := s.PlanPasses(ctx); err != nil || n != 0 {
			t.Fatalf("new store: %d passes (%v)", n, err)
		}
		l, err := s.AcquireLease(ctx, "plan", "", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := s.PlanPassDone(ctx, l, 5000); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.ReleaseLease(ctx, l); err != nil {
			t.Fatal(err)
		}
		if err := s.PlanPassDone(ctx, l, 0); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("pass counted under a released lease: %v", err)
		}
		if n, _ := s.PlanPasses(ctx); n != 2 {
			t.Fatalf("%d passes, want 2", n)
		}
	})
}
