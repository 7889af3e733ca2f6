package cli

import (
	"math"
	"runtime/debug"
	"testing"
)

// A build collects when its soft limit is near, not every time the heap
// doubles, and leaves the operator's settings alone.
func TestLimitHeapDefersCollectionToTheLimit(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))

	restore := limitHeap(160<<20, []string{"PATH=/bin", "GOGC="})
	limit, percent := debug.SetMemoryLimit(-1), debug.SetGCPercent(-1)
	restore()
	if limit != 160<<20 || percent != -1 {
		t.Errorf("during a build: limit %d, GOGC %d; want 160 MiB and off", limit, percent)
	}
	if limit, percent := debug.SetMemoryLimit(-1), debug.SetGCPercent(100); limit != math.MaxInt64 || percent != 100 {
		t.Errorf("after it: limit %d, GOGC %d; want none and 100 again", limit, percent)
	}

	// GOGC set: the collector paces as told, under the limit.
	debug.SetGCPercent(50) // as the runtime read it from the environment
	restore = limitHeap(160<<20, []string{"GOGC=50"})
	limit, percent = debug.SetMemoryLimit(-1), debug.SetGCPercent(50)
	restore()
	if limit != 160<<20 || percent != 50 {
		t.Errorf("with GOGC=50: limit %d, GOGC %d; want 160 MiB and 50", limit, percent)
	}

	// GOMEMLIMIT set: nothing changes.
	debug.SetMemoryLimit(1 << 30)
	debug.SetGCPercent(100)
	restore = limitHeap(160<<20, nil)
	limit, percent = debug.SetMemoryLimit(-1), debug.SetGCPercent(100)
	restore()
	if limit != 1<<30 || percent != 100 {
		t.Errorf("with GOMEMLIMIT=1GiB: limit %d, GOGC %d; want 1 GiB and 100", limit, percent)
	}
}
