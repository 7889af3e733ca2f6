package store

import (
	"context"
	"database/sql"
	"fmt"
)

// recordChange writes one entry of a subscriber's history inside tx, the
// transaction that makes the change.
func (s *DB) recordChange(ctx context.Context, tx *sql.Tx, id int64, from, to string, why Change, nowUS int64) error {
	if _, err := tx.ExecContext(ctx, s.sql["record-status-change"], id, from, to, why.By, clip(why.Reason), nowUS); err != nil {
		return fmt.Errorf("history of subscriber %d: %w", id, err)
	}
	return nil
}

// setStatus changes a locked subscriber's status inside tx and records the
// change when there is one.
func (s *DB) setStatus(ctx context.Context, tx *sql.Tx, id int64, from, to string, why Change, nowUS int64) error {
	if _, err := tx.ExecContext(ctx, s.sql["set-status"], to, nowUS, to, nowUS, to, id); err != nil {
		return fmt.Errorf("set status of subscriber %d: %w", id, err)
	}
	if from == to {
		return nil
	}
	return s.recordChange(ctx, tx, id, from, to, why, nowUS)
}

// countHardBounce adds a hard bounce to a subscriber locked inside tx (whose
// status is from) and suppresses it as bounced when the count reaches limit,
// recording that in its history. It reports whether this bounce suppressed it.
func (s *DB) countHardBounce(ctx context.Context, tx *sql.Tx, id int64, from string, limit int, why Change, nowUS int64) (bool, error) {
	var (
		status  string
		bounces int64
	)
	if err := tx.QueryRowContext(ctx, s.sql["count-hard-bounce"], limit, nowUS, id).Scan(&status, &bounces); err != nil {
		return false, fmt.Errorf("count hard bounce of subscriber %d: %w", id, err)
	}
	// Reaching the limit exactly is the moment of suppression.
	if status != StatusBounced || status == from || bounces != int64(limit) {
		return false, nil
	}
	why.Reason = fmt.Sprintf("hard bounce %d of %d: %s", bounces, limit, why.Reason)
	return true, s.recordChange(ctx, tx, id, from, status, why, nowUS)
}

// StatusHistory lists a subscriber's status changes, oldest first.
func (s *DB) StatusHistory(ctx context.Context, id int64) ([]StatusChange, error) {
	rows, err := s.db.QueryContext(ctx, s.sql["status-history"], id)
	if err != nil {
		return nil, fmt.Errorf("history of subscriber %d: %w", id, err)
	}
	defer rows.Close()
	var out []StatusChange
	for rows.Next() {
		var (
			c  StatusChange
			at int64
		)
		if err := rows.Scan(&c.SubscriberID, &c.From, &c.To, &c.By, &c.Reason, &at); err != nil {
			return nil, fmt.Errorf("history of subscriber %d: %w", id, err)
		}
		c.At = fromMicros(at)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history of subscriber %d: %w", id, err)
	}
	return out, nil
}

// byOfSource is who a subscriber added from source is changed by.
func byOfSource(source string) string {
	if source == SourceFile {
		return BySync
	}
	return source
}
