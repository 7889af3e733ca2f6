package cli

import (
	"context"
	"fmt"
	"io"
	"os"
)

func runPreview(ctx context.Context, e *env, args []string) int {
	fs := e.flags("preview", "--subscriber EMAIL", `Render the digest the subscriber would get if a run happened now, as a whole
MIME message (.eml), without sending or recording anything. A subscriber who is
only in the list files so far is previewed as if joining now.`)
	email := fs.String("subscriber", "", "the subscriber's address (required)")
	out := fs.String("out", "", "write the message to this file instead of standard output")
	if st := parse(fs, args); st >= 0 {
		return st
	}
	if *email == "" {
		fs.Usage()
		return ExitConfig
	}
	o, st := e.open(ctx, "preview")
	if o == nil {
		return st
	}
	defer o.store.Close()
	var w io.Writer = e.stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintf(e.stderr, "publisher preview: %v\n", err)
			return ExitFailures
		}
		defer f.Close()
		w = f
	}
	if err := o.runner.Preview(ctx, *email, w); err != nil {
		fmt.Fprintf(e.stderr, "publisher preview: %v\n", err)
		return ExitFailures
	}
	return ExitOK
}
