package hugepages

import (
	"os"
	"runtime"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

const hugePage = 2 << 20

// ForHeap has the next n bytes of heap advised for huge pages, and reports
// how many were (0 when the kernel's mode is "never" or its file is
// missing, with GODEBUG=disablethp=1, or when the advice is refused).
//
// It allocates n bytes as one object, which the runtime maps without touching,
// advises it, and collects it at once: the
// runtime's page allocator hands out the lowest free addresses first, so the
// objects allocated next reuse that range, whose pages the kernel then backs
// with 2 MB pages as they are first touched. Memory beyond it, and memory the
// runtime returns to the kernel, is as before.
func ForHeap(n int) int {
	lo, hi, ok := advise(n)
	if !ok {
		return 0
	}
	return int(hi - lo)
}

// advise is ForHeap, returning the advised range.
func advise(n int) (lo, hi uintptr, ok bool) {
	if n < 2*hugePage || disabled(os.Getenv("GODEBUG")) || !available() {
		return 0, 0, false
	}
	lo, hi, err := adviseObject(n)
	runtime.GC() // frees the object: its range is free for what comes next
	return lo, hi, err == nil
}

func adviseObject(n int) (lo, hi uintptr, err error) {
	b := make([]byte, n)
	lo = uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	// The whole object: the kernel gives huge pages to the aligned 2 MB
	// stretches within it, and small ones to its ends.
	return lo, lo + uintptr(n), unix.Madvise(b, unix.MADV_HUGEPAGE)
}

// available reports whether the kernel gives huge pages to advised memory:
// its mode is "always" or "madvise".
func available() bool {
	mode, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	return err == nil && !strings.Contains(string(mode), "[never]")
}

// disabled reports whether GODEBUG holds disablethp=1, the Go runtime's own
// switch for "no transparent huge pages on the heap", honoured here too.
func disabled(godebug string) bool {
	on := false
	for _, kv := range strings.Split(godebug, ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(kv), "disablethp="); ok {
			on = v == "1" // the last setting wins, as in the runtime
		}
	}
	return on
}
