package cycle

import (
	"testing"
	"time"

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
