package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
)

func runPreview(ctx context.Context, e *env, args []string) int {
	fs := e.flags("preview", "--subscriber EMAIL", `Render the digest the subscriber would get if a run happened now, as a whole
MIME message (.eml), without sending or recording anything. A subscriber who is
only in the list files so far is previewed as if joining now. Nothing is written
when there is nothing to preview.`)
	email := fs.String("subscriber", "", "the subscriber's address (required)")
	out := fs.String("out", "", "write the message to this file instead of standard output")
	if _, st := fs.parse(args, 0, 0); st >= 0 {
		return st
	}
	if *email == "" {
		return fs.fail("--subscriber is required")
	}
	o, st := e.open(ctx, "preview")
	if o == nil {
		return st
	}
	defer o.store.Close()
	// The whole message first: a preview that fails leaves no file behind, not
	// an empty or half-written one.
	var msg bytes.Buffer
	if err := o.runner.Preview(ctx, *email, &msg); err != nil {
		fmt.Fprintf(e.stderr, "publisher preview: %v\n", err)
		return ExitFailures
	}
	if *out == "" {
		_, _ = e.stdout.Write(msg.Bytes())
		return ExitOK
	}
	if err := os.WriteFile(*out, msg.Bytes(), 0o644); err != nil {
		fmt.Fprintf(e.stderr, "publisher preview: --out: %v\n", err)
		return ExitFailures
	}
	return ExitOK
}
