package cycle

import (
	"errors"
	"fmt"
	"runtime/debug"
)

// ErrPanicked marks a run that stopped because one of its goroutines panicked.
var ErrPanicked = errors.New("panicked")

// recovered, deferred in a goroutine of a run, turns a panic there into an
// error for that run in *errp, logged with its stack: a bug met by one run
// (in a sender, the ledger, the producer, a renderer) fails that run, never
// the daemon whose next run may well not meet it. Recovering in the goroutine
// itself is the only way: a panic no goroutine recovers ends the process.
func (r *Runner) recovered(who string, errp *error) {
	v := recover()
	if v == nil {
		return
	}
	r.log.Error(who+" panicked; this run stops, and what it had not recorded stays pending", "panic", v, "stack", string(debug.Stack()))
	*errp = fmt.Errorf("%s %w: %v", who, ErrPanicked, v)
}
