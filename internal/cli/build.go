package cli

import (
	"context"
	"fmt"

	"publisher/internal/cycle"
)

func runBuild(ctx context.Context, e *env, args []string) int {
	fs := e.flags("build", "", "Render feed.xml, atom.xml, feed.json, per-topic feeds, feeds.opml and the\narchive pages from content.dir into output.dir. Records when each piece was\nfirst seen. Files whose bytes did not change are left alone.")
	if st := parse(fs, args); st >= 0 {
		return st
	}
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
