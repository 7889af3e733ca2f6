package cycle

import (
	"context"
	"time"
)

// purgeBatch is how many rows one retention statement deletes: small enough
// that the senders' ledger writes never wait long behind it.
const purgeBatch = 1000

// purge deletes what store.delivery_retention no longer keeps. A failure is
// logged, not the run's: nothing it keeps is lost, and the next run tries again.
func (r *Runner) purge(ctx context.Context) {
	keep := r.cfg.Store.DeliveryRetention
	if keep <= 0 || ctx.Err() != nil {
		return
	}
	before := r.now().Add(-keep)
	res, err := r.store.Purge(ctx, before, purgeBatch)
	if err != nil {
		r.log.Error("deleting deliveries past store.delivery_retention", "before", before.Format(time.DateOnly), "err", err)
		return
	}
	if res.Deliveries+res.Events+res.Digests > 0 {
		r.log.Info("deleted deliveries past store.delivery_retention", "before", before.Format(time.DateOnly),
			"deliveries", res.Deliveries, "digests", res.Digests, "events", res.Events)
	}
}
