package osfile

import (
	"io/fs"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
)

// StatAll stats every path (os.Lstat, or os.Stat with follow) on every core:
// a walk of 10,000 stats on one core is most of a no-op run. infos[i] and
// errs[i] are paths[i]'s.
func StatAll(paths []string, follow bool) (infos []fs.FileInfo, errs []error) {
	stat := os.Lstat
	if follow {
		stat = os.Stat
	}
	infos, errs = make([]fs.FileInfo, len(paths)), make([]error, len(paths))
	var next atomic.Int64
	var wg sync.WaitGroup
	// Small lists are not worth a goroutine each; system calls block their
	// thread, so twice the cores keeps the cores busy.
	for range min(2*runtime.GOMAXPROCS(0), len(paths)/256+1) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(paths) {
					return
				}
				infos[i], errs[i] = stat(paths[i])
			}
		})
	}
	wg.Wait()
	return infos, errs
}
