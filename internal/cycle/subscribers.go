package cycle

import (
	"context"
	"fmt"
	"time"

	"publisher/internal/store"
	"publisher/internal/subscriber"
)

// syncSubscribers streams the list files into the store.
func (r *Runner) syncSubscribers(ctx context.Context, sum *Summary, now time.Time) error {
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
	s := sum.Sync
	r.log.Info("synced subscriber lists", "added", s.Added, "updated", s.Updated, "reactivated", s.Reactivated, "gone", s.Gone, "kept_suppressed", s.KeptSuppressed, "duplicates", s.Duplicates)
	return nil
}

func toInput(row subscriber.Row) store.SubscriberInput {
	return store.SubscriberInput{
		Email: row.Email, Name: row.Name, Topics: row.Topics, Cadence: row.Cadence,
		Source: store.SourceFile, Status: store.StatusActive, ConsentSource: fmt.Sprintf("file %s:%d", row.File, row.Line),
	}
}
