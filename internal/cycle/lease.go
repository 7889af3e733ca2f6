package cycle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"publisher/internal/store"
)

// acquireLease takes the send lease. When another holder has it, and that holder
// was a process on this host that is no longer alive (killed mid-send, say), the
// lease is taken over at once instead of waiting for it to expire: a cron rerun
// right after a crash resumes immediately.
func (r *Runner) acquireLease(ctx context.Context, now time.Time) (bool, error) {
	ok, err := r.store.AcquireLease(ctx, LeaseName, r.holder, leaseTTL, now)
	if err != nil || ok {
		return ok, err
	}
	holder, _, err := r.store.LeaseHolder(ctx, LeaseName)
	if errors.Is(err, store.ErrNotFound) {
		// Released between the two calls: try once more.
		return r.store.AcquireLease(ctx, LeaseName, r.holder, leaseTTL, now)
	}
	if err != nil {
		return false, err
	}
	if !r.holderDead(holder) {
		return false, nil
	}
	r.log.Warn("taking over the send lease from a process that died", "holder", holder)
	return r.store.TakeLease(ctx, LeaseName, holder, r.holder, leaseTTL, now)
}

// newHolder names this process as a lease holder: host, pid and a random part (a
// restarted container has the same host name and pid).
func newHolder(random string) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), random)
}

// holderDead reports whether holder was a process on this host that is gone.
func (r *Runner) holderDead(holder string) bool {
	parts := strings.Split(holder, "/")
	if len(parts) != 3 {
		return false
	}
	mine := strings.Split(r.holder, "/")
	if parts[0] != mine[0] {
		return false // another host: only expiry tells
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil || pid <= 0 {
		return false
	}
	if strconv.Itoa(pid) == mine[1] {
		return true // our own pid with another random part: an earlier life of this process slot
	}
	err = syscall.Kill(pid, 0)
	return errors.Is(err, syscall.ESRCH)
}

// keepLease renews the lease until ctx ends; losing it stops the send.
func (r *Runner) keepLease(ctx context.Context, stop context.CancelCauseFunc, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(leaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			ok, err := r.store.AcquireLease(ctx, LeaseName, r.holder, leaseTTL, r.now())
			if ctx.Err() != nil {
				return
			}
			if err != nil || !ok {
				stop(fmt.Errorf("lost the send lease (err: %v)", err))
				return
			}
		}
	}
}
