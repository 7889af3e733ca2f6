package cycle

import (
	"context"
	"testing"
	"time"
)

// Each run deletes the finished deliveries of digests older than
// store.delivery_retention; 0 keeps them.
func TestRunsDeleteDeliveriesPastRetention(t *testing.T) {
	for _, keep := range []time.Duration{30 * 24 * time.Hour, 0} {
		t.Run(keep.String(), func(t *testing.T) {
			start := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
			b := newBench(t, start)
			b.cfg.Store.DeliveryRetention = keep
			b.cfg.Digest.DefaultCadence = "immediate"
			b.write("subscribers/list.csv", "email\nann@example.org\n")
			b.piece("first", "First", "")
			if sum, _ := b.run(); sum.Sent != 1 {
				t.Fatalf("first run: %s", sum)
			}
			b.now = start.Add(31 * 24 * time.Hour)
			b.piece("second", "Second", "")
			if sum, _ := b.run(); sum.Sent != 1 {
				t.Fatalf("second run: %s", sum)
			}
			p, err := b.store.Export(context.Background(), "ann@example.org")
			if err != nil {
				t.Fatal(err)
			}
			want := 2
			if keep > 0 {
				want = 1 // the first digest is past the retention
			}
			if len(p.Deliveries) != want || !p.Deliveries[len(p.Deliveries)-1].SentAt.Equal(b.now) {
				t.Fatalf("retention %s: deliveries %+v, want %d", keep, p.Deliveries, want)
			}
		})
	}
}
