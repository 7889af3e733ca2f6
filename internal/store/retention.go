package store

import (
	"context"
	"fmt"
	"time"
)

// Purge deletes old finished deliveries, empty digests and old events (see
// Store), each statement taking at most batch rows, so that no transaction
// holds the ledger for long.
func (s *DB) Purge(ctx context.Context, before time.Time, batch int) (Purged, error) {
	if batch <= 0 {
		batch = 1000
	}
	var res Purged
	for _, step := range []struct {
		n    *int64
		name string
	}{
		{&res.Deliveries, "purge-deliveries"},
		{&res.Digests, "purge-digests"},
		{&res.Events, "purge-events"},
	} {
		for {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			r, err := s.exec(ctx, step.name, toMicros(before), batch)
			if err != nil {
				return res, fmt.Errorf("%s before %s: %w", step.name, before.Format(time.DateOnly), err)
			}
			n, err := r.RowsAffected()
			if err != nil {
				return res, fmt.Errorf("%s: %w", step.name, err)
			}
			*step.n += n
			if n < int64(batch) {
				break
			}
		}
	}
	return res, nil
}
