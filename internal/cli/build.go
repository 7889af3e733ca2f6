package cli

import (
	"context"
	"fmt"
	"math"
	"runtime/debug"
	"slices"
	"strings"

	"publisher/internal/cycle"
	"publisher/internal/hugepages"
)

func runBuild(ctx context.Context, e *env, args []string) int {
	fs := e.flags("build", "", "Render feed.xml, atom.xml, feed.json, per-topic feeds, feeds.opml and the\narchive pages from content.dir into output.dir. Records when each piece was\nfirst seen. Files whose bytes did not change are left alone.")
	if _, st := fs.parse(args, 0, 0); st >= 0 {
		return st
	}
	defer limitHeap(buildHeapLimit, e.environ)()
	hugepages.ForHeap(freshHeapHugePages)
	o, st := e.open(ctx, "build")
	if o == nil {
		return st
	}
	defer o.store.Close()
	sum, err := o.runner.Run(ctx, cycle.Options{BuildOnly: true})
	if err != nil {
		fmt.Fprintf(e.stderr, "publisher build: %v\n", err)
		return ExitFailures
	}
	fmt.Fprintf(e.stdout, "built %d pieces (%d new) into %s: %d files written, %d unchanged, %d removed; %d content errors\n",
		sum.Pieces, sum.NewPieces, o.cfg.Output.Dir, sum.Output.Written, sum.Output.Unchanged, sum.Output.Removed, sum.ContentErrors())
	return ExitOK
}

// buildHeapLimit is the soft heap limit of a build on its own. Every piece is held
// while the pages are rendered (about 9 KB each without its plain text), and the
// Go collector lets the heap grow to twice what is held before it collects; with
// 10,000 pieces that is about 180 MB of heap and 235 MB of RSS. A soft limit makes
// it collect sooner, for a little more CPU; a larger archive simply goes over it
// (the limit is soft: the runtime caps the collector at about half the CPU
// rather than thrash to keep it).
const buildHeapLimit = 160 << 20

// freshHeapHugePages is how much of the heap a one-shot command (build, run)
// has backed by huge pages: about what an incremental build of a 10,000-piece
// archive touches (50 MB), which took it some 12,000 page faults of 3-17 µs
// each on a virtual machine. The daemon asks for none: its heap is touched once
// and kept, and it would only hold more memory.
const freshHeapHugePages = 64 << 20

// limitHeap sets a soft memory limit unless the operator set one (GOMEMLIMIT),
// and returns the function that puts the previous settings back. Under that
// limit the collector waits for it (unless the operator set GOGC): a build is
// over in seconds, an incremental one allocates some 50 MB in all, and
// collecting every time the heap doubled from 4 MB cost it a tenth of its CPU
// (0.42 against 0.36 s, medians of 10); the limit still bounds the heap.
func limitHeap(limit int64, environ []string) (restore func()) {
	previous := debug.SetMemoryLimit(-1)
	if previous != math.MaxInt64 {
		return func() {}
	}
	debug.SetMemoryLimit(limit)
	percent := -1
	if !setIn(environ, "GOGC") {
		percent = debug.SetGCPercent(-1)
	}
	return func() {
		if percent != -1 {
			debug.SetGCPercent(percent)
		}
		debug.SetMemoryLimit(previous)
	}
}

// setIn reports whether environ gives name a value.
func setIn(environ []string, name string) bool {
	return slices.ContainsFunc(environ, func(kv string) bool {
		v, ok := strings.CutPrefix(kv, name+"=")
		return ok && v != ""
	})
}
