package cycle

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"publisher/internal/store"
	"publisher/internal/subscriber"
)

// syncSubscribers streams the list files into the store. A desk that publishes
// feeds only has no list folder: that is a warning, and the store is left as it
// is (syncing nothing would mark every listed subscriber gone).
func (r *Runner) syncSubscribers(ctx context.Context, sum *Summary, now time.Time) error {
	if _, err := os.Stat(r.cfg.Subscribers.Dir); errors.Is(err, fs.ErrNotExist) {
		sum.ListProblems = append(sum.ListProblems, subscriber.Problem{File: r.cfg.Subscribers.Dir, Severity: subscriber.Warning,
			Message: "subscribers.dir: no such folder; the list files are not synced (subscribers added on the web or by hand still get digests)"})
		r.log.Warn("subscriber list", "problem", sum.ListProblems[0].String())
		return nil
	}
	var err error
	sum.Sync, err = r.store.SyncSubscribers(ctx, func(add func(store.SubscriberInput) error) error {
		problems, err := subscriber.ScanDir(r.cfg.Subscribers.Dir, r.cfg.Digest.DefaultCadence, func(row subscriber.Row) error {
			return add(toInput(row))
		})
		sum.ListProblems = problems
		return err
	}, now)
	for _, p := range sum.ListProblems {
		r.log.Warn("subscriber list", "problem", p.String())
	}
	if err != nil {
		return fmt.Errorf("subscribers.dir: %w", err)
	}
	for _, d := range sum.Sync.DuplicateExamples {
		r.log.Warn("subscriber list: address listed more than once; the later row wins", "address", d)
	}
	for _, where := range sum.Sync.ErasedOrigins {
		r.log.Warn("subscriber list: an address erased on request is listed; it is not added (remove it from the file)", "row", where)
	}
	s := sum.Sync
	r.log.Info("synced subscriber lists", "added", s.Added, "updated", s.Updated, "reactivated", s.Reactivated, "gone", s.Gone, "kept_suppressed", s.KeptSuppressed,
		"erased", s.Erased, "duplicates", s.Duplicates)
	return nil
}

func toInput(row subscriber.Row) store.SubscriberInput {
	return store.SubscriberInput{
		Email: row.Email, Name: row.Name, Topics: row.Topics, Cadence: row.Cadence,
		Source: store.SourceFile, Status: store.StatusActive, ConsentSource: fmt.Sprintf("file %s:%d", row.File, row.Line),
	}
}
