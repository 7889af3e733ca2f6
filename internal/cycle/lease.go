package cycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"publisher/internal/store"
)

// Lease names. On an engine with one sender (SQLite) a run holds leaseSend
// while it plans and sends. With shared sending (PostgreSQL) a run holds
// leasePlan while it plans, then a lease of its own (leaseSenderPrefix and
// its token) under which it claims deliveries beside the other replicas.
const (
	leaseSend         = "send"
	leasePlan         = "plan"
	leaseSenderPrefix = "sender/"
)

// errHeldElsewhere: another live process holds the lease; this run leaves the
// work to it.
var errHeldElsewhere = errors.New("another live process holds the lease")

// heldLease is a lease this process holds: renewed by a heartbeat every third
// of its time to live, and trusted locally only until a deadline measured
// from before the last successful renewal was asked for, minus a margin. So
// the process stops acting on it before the store could give it to anyone
// else, even when it was paused (SIGSTOP) or cut off from the database: the
// deadline is read off the monotonic clock, which runs on while a process is
// stopped.
type heldLease struct {
	store store.Store
	log   *slog.Logger
	ttl   time.Duration

	mu       sync.Mutex
	lease    store.Lease
	deadline time.Time // local, monotonic

	// ctx ends when the lease is lost, given up, or the run's context ends;
	// context.Cause says which.
	ctx    context.Context
	cancel context.CancelCauseFunc
	done   chan struct{} // closed when the heartbeat has stopped
}

// localMargin is the part of a lease's time this process does not use: room
// for clocks that run at slightly different rates.
func localMargin(ttl time.Duration) time.Duration { return ttl / 10 }

// errLeaseGone is the cause of a heldLease's context when the store says the
// lease was lost, or its local time ran out.
var errLeaseGone = errors.New("lost the lease")

// acquireLease takes the named lease once; store.ErrLeaseHeld when another
// holds it. The heartbeat starts at once and stops with parent.
func acquireLease(parent context.Context, st store.Store, log *slog.Logger, name string, ttl time.Duration) (*heldLease, error) {
	asked := time.Now()
	l, err := st.AcquireLease(parent, name, leaseLabel(), ttl)
	if err != nil {
		return nil, err
	}
	h := &heldLease{store: st, log: log, ttl: ttl, lease: l, deadline: asked.Add(ttl - localMargin(ttl)), done: make(chan struct{})}
	h.ctx, h.cancel = context.WithCancelCause(parent)
	go h.heartbeat()
	log.Debug("lease taken", "lease", name, "holder", l.Label, "fence", l.Fence, "expires", l.Expires)
	return h, nil
}

// leaseLabel says who holds a lease, for people reading the store or the logs.
// Nothing decides by it: a container's host name and pid repeat.
func leaseLabel() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s pid %d", host, os.Getpid())
}

// waitForLease takes the named lease, waiting for it while another holds it.
// With leaveToLiveHolder, a holder seen renewing its lease is left the work:
// errHeldElsewhere. Otherwise it waits until the holder releases the lease or
// it expires. A holder that died is recognised only by its lease expiring,
// never by process ids or host names.
func waitForLease(ctx context.Context, st store.Store, log *slog.Logger, name string, ttl time.Duration, leaveToLiveHolder bool) (*heldLease, error) {
	poll := min(max(ttl/10, 50*time.Millisecond), time.Second)
	var first store.Lease
	logged := false
	for {
		h, err := acquireLease(ctx, st, log, name, ttl)
		if err == nil {
			return h, nil
		}
		if !errors.Is(err, store.ErrLeaseHeld) {
			return nil, err
		}
		held, _ := st.LeaseByName(ctx, name)
		switch {
		case first.Fence == 0:
			first = held
		case held.Fence == first.Fence && held.Expires.After(first.Expires) && leaveToLiveHolder:
			// Renewed since we first looked: its holder is alive.
			log.Info("the lease is held by a live process", "lease", name, "holder", held.Label, "fence", held.Fence)
			return nil, errHeldElsewhere
		case held.Fence != first.Fence:
			first = held // taken over or released and taken again; watch the new holder
		}
		if !logged {
			log.Info("waiting for the lease", "lease", name, "holder", held.Label, "fence", held.Fence, "expires", held.Expires)
			logged = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// Lease is the lease as last renewed.
func (h *heldLease) Lease() store.Lease {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lease
}

// Fence is the lease's fencing number.
func (h *heldLease) Fence() int64 { return h.Lease().Fence }

// Deadline is the moment after which this process must no longer act on the lease.
func (h *heldLease) Deadline() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.deadline
}

// Err says why the lease may not be acted on now, or nil.
func (h *heldLease) Err() error {
	if h.ctx.Err() != nil {
		return context.Cause(h.ctx)
	}
	if !time.Now().Before(h.Deadline()) {
		return fmt.Errorf("%w: its time ran out before it could be renewed", errLeaseGone)
	}
	return nil
}

// Lost reports whether the lease ended other than by the run stopping.
func (h *heldLease) Lost() bool {
	return errors.Is(context.Cause(h.ctx), errLeaseGone)
}

// lose ends the lease's context with a reason (idempotent).
func (h *heldLease) lose(why error) {
	h.cancel(fmt.Errorf("%w: %w", errLeaseGone, why))
}

// heartbeat renews the lease every third of its time to live until h.ctx ends.
// A renewal the store refuses loses the lease at once; one that fails (the
// database unreachable) is tried again on the next beat, until the local
// deadline passes.
func (h *heldLease) heartbeat() {
	defer close(h.done)
	defer func() {
		// A renewal that panics loses the lease: the run stops, the process lives.
		if v := recover(); v != nil {
			h.log.Error("renewing the lease panicked; stopping", "panic", v, "stack", string(debug.Stack()))
			h.lose(fmt.Errorf("renewing it %w: %v", ErrPanicked, v))
		}
	}()
	beat := time.NewTicker(h.ttl / 3)
	defer beat.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-beat.C:
		}
		if err := h.Err(); err != nil {
			h.lose(err)
			return
		}
		asked := time.Now()
		cur := h.Lease()
		ctx, cancel := context.WithDeadline(h.ctx, h.Deadline())
		renewed, err := h.store.RenewLease(ctx, cur, h.ttl)
		cancel()
		switch {
		case err == nil:
			h.mu.Lock()
			h.lease, h.deadline = renewed, asked.Add(h.ttl-localMargin(h.ttl))
			h.mu.Unlock()
		case errors.Is(err, store.ErrLeaseLost):
			h.log.Error("lease lost: another process took it over; stopping", "lease", cur.Name, "fence", cur.Fence)
			h.lose(err)
			return
		case h.ctx.Err() != nil:
			return
		default:
			h.log.Warn("renewing the lease failed; trying again", "lease", cur.Name, "err", err)
		}
	}
}

// release stops the heartbeat and gives the lease up (claims made under it
// become free at once). Safe to call more than once.
func (h *heldLease) release(ctx context.Context) {
	h.cancel(context.Canceled)
	<-h.done
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := h.store.ReleaseLease(rctx, h.Lease()); err != nil {
		h.log.Warn("releasing the lease", "lease", h.Lease().Name, "err", err)
	}
}

// messageContext is the context for sending one message under the lease: it
// ends when the lease is lost or the run stops, or timeout from now, and its
// Deadline is the lease's local deadline as it stands when asked (it moves with
// each renewal), or the timeout's when sooner. mail.Sender reads the deadline
// at the last moment before a message's content goes out: a message that has
// not reached the server when the lease's time is up is not sent at all, one
// already on the wire is finished. A message that waits long on a slow server
// while the lease is being renewed is not cut short.
// parent is a context derived from h.ctx.
func (h *heldLease) messageContext(parent context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(parent, timeout)
	return leaseContext{Context: ctx, h: h}, cancel
}

// leaseContext reports the lease's current local deadline as its own. Its Done
// closes when the lease is found lost (the heartbeat checks every third of the
// lease's time), so the deadline is what the last check before sending reads.
type leaseContext struct {
	context.Context
	h *heldLease
}

func (c leaseContext) Deadline() (time.Time, bool) {
	d := c.h.Deadline()
	if own, ok := c.Context.Deadline(); ok && own.Before(d) {
		return own, true
	}
	return d, true
}
