package osfile

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Stat is what StatAll learns of one file: enough to tell whether it changed.
type Stat struct {
	Size    int64
	ModTime time.Time
	// Mode is the file's type and permission bits as the system gives them
	// (st_mode on Linux, fs.FileMode elsewhere): for comparing, not decoding.
	Mode uint32
}

// StatAll stats every name (slash-separated, relative to root) on every core,
// following a final symlink when follow is set: a walk of 10,000 stats on one
// core is most of a no-op run. stats[i] and errs[i] are names[i]'s; an error
// is an *fs.PathError.
func StatAll(root string, names []string, follow bool) (stats []Stat, errs []error) {
	stats, errs = make([]Stat, len(names)), make([]error, len(names))
	if len(names) == 0 {
		return stats, errs
	}
	st, err := newStatter(root, follow)
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
		return stats, errs
	}
	defer st.close()
	var next atomic.Int64
	var wg sync.WaitGroup
	// Small lists are not worth a goroutine each; system calls block their
	// thread, so twice the cores keeps the cores busy.
	for range min(2*runtime.GOMAXPROCS(0), len(names)/256+1) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(names) {
					return
				}
				stats[i], errs[i] = st.stat(names[i])
			}
		})
	}
	wg.Wait()
	return stats, errs
}
