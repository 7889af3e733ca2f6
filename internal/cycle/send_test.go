package cycle

import (
	"database/sql"
	"strings"
	"testing"
	"time"

	"publisher/internal/smtptest"

	"publisher/internal/store"
)

func outcomes(ids ...int64) []recorded {
	var rs []recorded
	for _, id := range ids {
		rs = append(rs, recorded{out: store.Outcome{DeliveryID: id}})
	}
	return rs
}

func ids(batch []recorded) []int64 {
	var out []int64
	for _, r := range batch {
		out = append(out, r.out.DeliveryID)
	}
	return out
}

// gatherSoon runs gather and fails the test if it does not return: a gather
// that waits when it should not would hang the ledger.
func gatherSoon(t *testing.T, results chan recorded, target int, wait time.Duration) []int64 {
	t.Helper()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	done := make(chan []recorded, 1)
	go func() { done <- gather(results, append(make([]recorded, 0, 4), outcomes(1)...), target, timer, wait) }()
	select {
	case b := <-done:
		return ids(b)
	case <-time.After(10 * time.Second):
		t.Fatal("gather did not return")
		return nil
	}
}

func TestGatherTakesWhatIsWaitingUpToCap(t *testing.T) {
	results := make(chan recorded, 8)
	for _, r := range outcomes(2, 3, 4, 5, 6) {
		results <- r
	}
	// Target reached at once: no waiting, and never more than cap (4).
	if got := gatherSoon(t, results, 1, time.Hour); len(got) != 4 || got[3] != 4 {
		t.Errorf("got %v, want [1 2 3 4]", got)
	}
	if len(results) != 2 {
		t.Errorf("%d outcomes left, want 2", len(results))
	}
}

func TestGatherWithOneConnectionNeverWaits(t *testing.T) {
	results := make(chan recorded)
	// An hour-long wait would hang here if gather waited below target 1.
	if got := gatherSoon(t, results, 1, time.Hour); len(got) != 1 {
		t.Errorf("got %v, want [1]", got)
	}
}

func TestGatherWaitsForMoreUntilTarget(t *testing.T) {
	results := make(chan recorded)
	go func() {
		for _, r := range outcomes(2, 3) {
			time.Sleep(time.Millisecond)
			results <- r
		}
	}()
	if got := gatherSoon(t, results, 3, time.Hour); len(got) != 3 || got[2] != 3 {
		t.Errorf("got %v, want [1 2 3]", got)
	}
}

func TestGatherStopsWaitingAtTheDeadlineOrClose(t *testing.T) {
	results := make(chan recorded)
	if got := gatherSoon(t, results, 3, time.Millisecond); len(got) != 1 {
		t.Errorf("after the wait: got %v, want [1]", got)
	}
	close(results)
	if got := gatherSoon(t, results, 3, time.Hour); len(got) != 1 {
		t.Errorf("closed: got %v, want [1]", got)
	}
}

// A message that cannot be built (a control character in a name that reached
// the store around the importer) is given up alone; the rest are sent.
func TestUnbuildableMessageIsGivenUpAlone(t *testing.T) {
	b := newBench(t, vilnius(t, "2026-11-26 12:00"))
	b.piece("one", "One", "")
	b.write("subscribers/list.csv", "email,name,cadence\ngood@example.org,Good,immediate\nbad@example.org,Bad,immediate\n")
	// First run: the server refuses, so both deliveries stay pending.
	b.srv.SetOptions(smtptest.Options{Rcpt: func(string) *smtpError { return tempFail }})
	b.cfg.Mail.MaxAttempts = 10
	b.cfg.Mail.RetryBase = time.Hour
	if sum, _ := b.run(); sum.Pending != 2 {
		t.Fatalf("while refused: %+v", sum)
	}
	db, err := sql.Open("sqlite", b.cfg.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Signed up on the web now, so the list file no longer speaks for it.
	if _, err := db.Exec("UPDATE subscribers SET name = ?, source = 'web' WHERE email = ?", "Bad\r\nBcc: x@example.net", "bad@example.org"); err != nil {
		t.Fatal(err)
	}
	b.write("subscribers/list.csv", "email,name,cadence\ngood@example.org,Good,immediate\n")
	b.srv.SetOptions(smtptest.Options{})
	b.now = b.now.Add(2 * time.Hour)
	sum, got := b.run()
	if sum.Sent != 1 || sum.Failed != 1 || sum.Pending != 0 || len(got["good@example.org"]) != 1 || len(got["bad@example.org"]) != 0 || len(got["x@example.net"]) != 0 {
		t.Fatalf("after the name went bad: %+v %v", sum, got)
	}
	var status, lastError string
	if err := db.QueryRow("SELECT d.status, d.last_error FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id WHERE s.email = ?", "bad@example.org").Scan(&status, &lastError); err != nil {
		t.Fatal(err)
	}
	if status != "failed" || !strings.Contains(lastError, "invalid message") {
		t.Errorf("bad delivery: status %q, error %q", status, lastError)
	}
}
