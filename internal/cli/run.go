package cli

import (
	"context"
	"errors"
	"fmt"

	"publisher/internal/cycle"
	"publisher/internal/hugepages"
)

func runRun(ctx context.Context, e *env, args []string) int {
	fs := e.flags("run", "", `One whole publishing cycle, as a cron job calls it: load the pieces, record
the new ones, build feeds and archive, sync subscribers/*.csv into the store,
plan a digest for every subscriber who is due and has something new, and send
the pending deliveries through the ledger. A run that is killed resumes where it
stopped when run again. SIGTERM or SIGINT stops taking new messages, finishes
those on the wire and leaves the rest pending. Then, when bounces.pop3.host is
set, it reads the bounce mailbox: delivery reports and complaints are recorded
(hard bounces toward mail.bounce_limit, complaints suppress at once), and every
message is deleted once read. Finished deliveries older than
store.delivery_retention are deleted.

Temporary failures (4xx, no answer, a full mailbox) and refusals on the
sender's side (554 5.7.1 relay access denied, say) leave the delivery pending
for later runs, over mail.retry_window; only a hard bounce (550 5.1.1) counts
against the reader. A run in which the relay refuses every message, or cannot
be reached, stops sending and says why in one line; nobody is suppressed.

Exit status: 0 when nothing failed (deliveries left pending, for a retry that is
not yet due or because the run was stopped, are sent by a later run), 1 when
some deliveries failed for good, the run stopped sending because the relay
refused or could not be reached, or the run itself failed, 2 for configuration
errors.`)
	dry := fs.Bool("dry-run", false, "do everything but write, record and send; report what would be sent")
	retryNow := fs.Bool("retry-now", false, "send pending deliveries now, even those whose retry is not yet due (after fixing the relay)")
	if _, st := fs.parse(args, 0, 0); st >= 0 {
		return st
	}
	hugepages.ForHeap(freshHeapHugePages)
	o, st := e.open(ctx, "run")
	if o == nil {
		return st
	}
	defer o.store.Close()
	bounces, err := newBounceReader(o.cfg, o.store, o.log)
	if err != nil {
		fmt.Fprintf(e.stderr, "publisher run: %v\n", err)
		return ExitConfig
	}
	code := finishRun(ctx, e, o.runner, cycle.Options{DryRun: *dry, RetryNow: *retryNow})
	if bounces == nil || *dry || ctx.Err() != nil {
		return code
	}
	if err := bounces.read(ctx); err != nil {
		fmt.Fprintf(e.stderr, "publisher run: %v\n", err)
		return ExitFailures
	}
	return code
}

// finishRun runs one cycle and prints its summary. The exit status says whether
// anything failed: deliveries still pending are not a failure of this run (a
// greylisting server, a full mailbox: the next run retries them, over
// mail.retry_window), so a CronJob does not mark the Job failed and start a pod
// that has nothing to do. A run the circuit breaker stopped (a relay refusing
// every message, or down) is a failure: someone has to look.
func finishRun(ctx context.Context, e *env, r *cycle.Runner, opts cycle.Options) int {
	sum, err := r.Run(ctx, opts)
	fmt.Fprintln(e.stdout, sum.String())
	if err != nil && errors.Is(err, context.Canceled) && ctx.Err() != nil {
		// SIGTERM or SIGINT: what was on the wire is recorded, the rest waits.
		fmt.Fprintln(e.stderr, "publisher run: stopped by a signal; what was not sent stays pending for the next run")
		return ExitOK
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "publisher run: %v\n", err)
		return ExitFailures
	}
	if sum.Failed > 0 {
		return ExitFailures
	}
	if sum.Pending > 0 {
		fmt.Fprintf(e.stderr, "publisher run: %d deliveries pending; a later run retries them\n", sum.Pending)
	}
	return ExitOK
}
