package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// forgetLeasesAfter is how long after expiring a lease row is deleted (each
// sender on PostgreSQL has one of its own, named after its token).
const forgetLeasesAfter = 24 * time.Hour

// AcquireLease takes the named lease when it is free or expired.
func (s *DB) AcquireLease(ctx context.Context, name, label string, ttl time.Duration) (Lease, error) {
	if name == "" {
		return Lease{}, errors.New("acquire lease: empty name")
	}
	if ttl <= 0 {
		return Lease{}, fmt.Errorf("acquire lease %q: ttl %v must be positive", name, ttl)
	}
	var token [16]byte
	if _, err := rand.Read(token[:]); err != nil {
		return Lease{}, fmt.Errorf("acquire lease %q: %w", name, err)
	}
	l := Lease{Name: name, Holder: hex.EncodeToString(token[:]), Label: label}
	won := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		now, err := s.eng.clock(ctx, tx)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.sql["forget-old-leases"], now-forgetLeasesAfter.Microseconds()); err != nil {
			return err
		}
		// A fence is drawn even when the lease turns out to be held: numbers
		// only need to be unique and increasing, not dense.
		if err := tx.QueryRowContext(ctx, s.sql["next-fence"]).Scan(&l.Fence); err != nil {
			return fmt.Errorf("next fence: %w", err)
		}
		expires := now + ttl.Microseconds()
		res, err := tx.ExecContext(ctx, s.sql["acquire-lease"], l.Name, l.Holder, l.Label, l.Fence, expires, now)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		won = n == 1
		l.Expires = fromMicros(expires)
		return nil
	})
	if err != nil {
		return Lease{}, fmt.Errorf("acquire lease %q: %w", name, err)
	}
	if !won {
		held, err := s.LeaseByName(ctx, name)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return Lease{}, err
		}
		return held, fmt.Errorf("acquire lease %q: %w", name, ErrLeaseHeld)
	}
	return l, nil
}

// RenewLease extends a live lease; an expired one is lost for good.
func (s *DB) RenewLease(ctx context.Context, l Lease, ttl time.Duration) (Lease, error) {
	var renewed bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		now, err := s.eng.clock(ctx, tx)
		if err != nil {
			return err
		}
		expires := now + ttl.Microseconds()
		res, err := tx.ExecContext(ctx, s.sql["renew-lease"], expires, l.Name, l.Holder, l.Fence, now)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if renewed = n == 1; renewed {
			l.Expires = fromMicros(expires)
		}
		return nil
	})
	if err != nil {
		return l, fmt.Errorf("renew lease %q (fence %d): %w", l.Name, l.Fence, err)
	}
	if !renewed {
		return l, fmt.Errorf("renew lease %q (fence %d): %w", l.Name, l.Fence, ErrLeaseLost)
	}
	return l, nil
}

// ReleaseLease gives the lease up if l still holds it; otherwise it does nothing.
func (s *DB) ReleaseLease(ctx context.Context, l Lease) error {
	if _, err := s.exec(ctx, "release-lease", l.Name, l.Holder, l.Fence); err != nil {
		return fmt.Errorf("release lease %q (fence %d): %w", l.Name, l.Fence, err)
	}
	return nil
}

// LeaseByName returns the named lease as it stands, or ErrNotFound.
func (s *DB) LeaseByName(ctx context.Context, name string) (Lease, error) {
	var (
		l   Lease
		exp int64
	)
	err := s.db.QueryRowContext(ctx, s.sql["lease-by-name"], name).Scan(&l.Name, &l.Holder, &l.Label, &l.Fence, &exp)
	if errNoRows(err) {
		return Lease{}, fmt.Errorf("lease %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return Lease{}, fmt.Errorf("lease %q: %w", name, err)
	}
	l.Expires = fromMicros(exp)
	return l, nil
}

// checkLease, inside a write transaction, makes sure l is still live, and on
// PostgreSQL keeps it from being taken over until the transaction ends.
func (s *DB) checkLease(ctx context.Context, tx *sql.Tx, l Lease) error {
	now, err := s.eng.clock(ctx, tx)
	if err != nil {
		return err
	}
	var one int
	err = tx.QueryRowContext(ctx, s.sql["check-lease"], l.Name, l.Fence, now).Scan(&one)
	if errNoRows(err) {
		return fmt.Errorf("lease %q (fence %d): %w", l.Name, l.Fence, ErrLeaseLost)
	}
	return err
}

// checkFence is checkLease for a sender that knows only its fence.
func (s *DB) checkFence(ctx context.Context, tx *sql.Tx, fence int64, now int64) error {
	var one int
	err := tx.QueryRowContext(ctx, s.sql["check-fence"], fence, now).Scan(&one)
	if errNoRows(err) {
		return fmt.Errorf("fence %d: %w", fence, ErrLeaseLost)
	}
	return err
}

// PlanPasses counts the planning passes completed so far.
func (s *DB) PlanPasses(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, s.sql["plan-passes"]).Scan(&n); err != nil {
		return 0, fmt.Errorf("plan passes: %w", err)
	}
	return n, nil
}

// PlanPassDone counts a completed planning pass, while lease is still held.
// After a pass that planned many deliveries, PostgreSQL's statistics of the
// ledger are refreshed at once (autovacuum would do it a minute or more later):
// with the old ones it took the new pending rows for a handful, and answered
// each page of claims with a scan of all of them.
func (s *DB) PlanPassDone(ctx context.Context, lease Lease, planned int) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.checkLease(ctx, tx, lease); err != nil {
			return fmt.Errorf("plan pass: %w", err)
		}
		if _, err := tx.ExecContext(ctx, s.sql["count-plan-pass"]); err != nil {
			return fmt.Errorf("plan pass: %w", err)
		}
		return nil
	})
	if err != nil || planned < analyzeAfter || s.eng.analyze == "" {
		return err
	}
	if _, err := s.db.ExecContext(ctx, s.eng.analyze); err != nil {
		return fmt.Errorf("plan pass: refresh the ledger's statistics: %w", err)
	}
	return nil
}

// analyzeAfter is how many deliveries a planning pass adds before the ledger's
// statistics are refreshed.
const analyzeAfter = 1000
