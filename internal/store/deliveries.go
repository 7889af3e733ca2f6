package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// CreateDigest records a new digest and returns its id.
func (s *DB) CreateDigest(ctx context.Context, now time.Time) (int64, error) {
	id, err := s.insertID(ctx, "create-digest", toMicros(now))
	if err != nil {
		return 0, fmt.Errorf("create digest: %w", err)
	}
	return id, nil
}

// planRowsPerStatement bounds the rows of one planning statement (four or two
// parameters each).
const planRowsPerStatement = 500

// PlanDeliveries records the pending deliveries of a digest and advances
// watermarks, all in one transaction, while lease is held. Rows go in many to
// a statement: one statement per subscriber made a 50,000-subscriber plan take
// 50,000 round trips to PostgreSQL.
func (s *DB) PlanDeliveries(ctx context.Context, lease Lease, digestID int64, planned []PlannedDelivery, now time.Time) error {
	nowUS := toMicros(now)
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.checkLease(ctx, tx, lease); err != nil {
			return fmt.Errorf("plan digest %d: %w", digestID, err)
		}
		// Subscribers with pieces are advanced only when their delivery is new
		// in this digest; those with nothing new were still served at this
		// moment (due, nothing to send), so a daily subscriber is not due again
		// until the next send time.
		var withPieces []PlannedDelivery
		advance := make([]PlannedDelivery, 0, len(planned))
		for _, p := range planned {
			if len(p.PieceIDs) > 0 {
				withPieces = append(withPieces, p)
			} else {
				advance = append(advance, p)
			}
		}
		inserted := map[int64]bool{}
		args := make([]any, 0, 4*planRowsPerStatement)
		for start := 0; start < len(withPieces); start += planRowsPerStatement {
			batch := withPieces[start:min(start+planRowsPerStatement, len(withPieces))]
			args = args[:0]
			for _, p := range batch {
				args = append(args, digestID, p.SubscriberID, encodeList(p.PieceIDs), nowUS)
			}
			q := strings.Replace(s.raw["plan-deliveries"], "{{values}}", valuesOf(len(batch), "(?, ?, 'pending', ?, 0, 0, ?)"), 1)
			ids, err := scanIDs(tx.QueryContext(ctx, s.bind(q), args...))
			if err != nil {
				return fmt.Errorf("plan digest %d: subscribers %d…: %w", digestID, batch[0].SubscriberID, err)
			}
			for _, id := range ids {
				inserted[id] = true
			}
		}
		for _, p := range withPieces {
			if inserted[p.SubscriberID] {
				advance = append(advance, p)
			}
		}
		for start := 0; start < len(advance); start += planRowsPerStatement {
			batch := advance[start:min(start+planRowsPerStatement, len(advance))]
			args = append(args[:0], nowUS, nowUS)
			for _, p := range batch {
				args = append(args, p.SubscriberID, toMicros(p.Watermark))
			}
			q := strings.Replace(s.raw["advance-watermarks"], "{{values}}", valuesOf(len(batch), "(CAST(? AS BIGINT), CAST(? AS BIGINT))"), 1)
			if _, err := tx.ExecContext(ctx, s.bind(q), args...); err != nil {
				return fmt.Errorf("plan digest %d: watermarks of subscribers %d…: %w", digestID, batch[0].SubscriberID, err)
			}
		}
		return nil
	})
}

// ClaimDeliveries claims the next due, unclaimed pending deliveries after
// afterID under fence, and returns them with what sending them needs.
func (s *DB) ClaimDeliveries(ctx context.Context, fence, afterID int64, due time.Time, limit int) ([]Delivery, error) {
	if limit <= 0 {
		limit = defaultPendingPage
	}
	var out []Delivery
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		now, err := s.eng.clock(ctx, tx)
		if err != nil {
			return err
		}
		if err := s.checkFence(ctx, tx, fence, now); err != nil {
			return err
		}
		ids, err := scanIDs(s.stmt(ctx, tx, "claim-deliveries").QueryContext(ctx, fence, afterID, toMicros(due), fence, now, limit))
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			out = nil
			return nil
		}
		args := make([]any, 0, len(ids)+1)
		args = append(args, fence)
		for _, id := range ids {
			args = append(args, id)
		}
		q := s.bind(s.raw["claimed-deliveries"] + ` (?` + strings.Repeat(`, ?`, len(ids)-1) + `) ORDER BY d.id`)
		rows, err := tx.QueryContext(ctx, q, args...)
		out, err = scanDeliveries(rows, err, len(ids))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim deliveries after %d (fence %d): %w", afterID, fence, err)
	}
	return out, nil
}

func scanIDs(rows *sql.Rows, err error) ([]int64, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

func scanDeliveries(rows *sql.Rows, err error, size int) ([]Delivery, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]Delivery, 0, size)
	for rows.Next() {
		var (
			d            Delivery
			pieces       string
			attempts     int64
			failingSince int64
			refusals     int64
			createdAt    int64
		)
		if err := rows.Scan(&d.ID, &d.DigestID, &d.SubscriberID, &d.Email, &d.Name, &d.SubscriberStatus,
			&pieces, &attempts, &failingSince, &refusals, &createdAt); err != nil {
			return nil, err
		}
		if d.PieceIDs, err = decodeList(pieces); err != nil {
			return nil, fmt.Errorf("delivery %d: piece ids: %w", d.ID, err)
		}
		d.Attempts = int(attempts)
		d.FailingSince = fromMicros(failingSince)
		d.Refusals = int(refusals)
		d.CreatedAt = fromMicros(createdAt)
		out = append(out, d)
	}
	return out, rows.Err()
}

// RecordOutcomes applies a batch of outcomes in one transaction. An outcome for a
// row no longer pending, or no longer claimed under fence, changes nothing (and
// adds no bounce) and is reported as fenced. An outcome of an unknown kind is
// reported in the error, and the others are still recorded: what the server
// accepted must reach the ledger.
func (s *DB) RecordOutcomes(ctx context.Context, fence int64, outcomes []Outcome, bounceLimit int) (OutcomeResult, error) {
	if bounceLimit < 1 {
		bounceLimit = 1
	}
	var (
		bad []error
		res OutcomeResult
	)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		bad, res = bad[:0], OutcomeResult{}
		bound := map[string]*sql.Stmt{}
		stmt := func(name string) *sql.Stmt {
			if st, ok := bound[name]; ok {
				return st
			}
			st := s.stmt(ctx, tx, name)
			bound[name] = st
			return st
		}
		for i := 0; i < len(outcomes); i++ {
			// A run of messages accepted, the usual batch, goes in one statement:
			// one round trip per outcome cost PostgreSQL more than the rest of a
			// send.
			if s.eng.batchSent {
				if n := sentRun(outcomes[i:]); n >= 2 {
					fenced, err := s.recordSent(ctx, tx, fence, outcomes[i:i+n])
					if err != nil {
						return err
					}
					res.Fenced = append(res.Fenced, fenced...)
					i += n - 1
					continue
				}
			}
			o := outcomes[i]
			atUS := toMicros(o.at())
			var (
				r   sql.Result
				err error
			)
			switch o.Kind {
			case OutcomeSent:
				r, err = stmt("outcome-sent").ExecContext(ctx, o.MessageID, atUS, o.DeliveryID, fence)
			case OutcomeRetry:
				r, err = stmt("outcome-retry").ExecContext(ctx, clip(o.Error), toMicros(o.NextAttempt), o.MessageID, atUS, o.refusals(), o.DeliveryID, fence)
			case OutcomePermanent, OutcomeGaveUp:
				r, err = stmt("outcome-failed").ExecContext(ctx, clip(o.Error), o.MessageID, o.refusals(), o.DeliveryID, fence)
			case OutcomeSkipped:
				r, err = stmt("outcome-skipped").ExecContext(ctx, clip(o.Error), o.DeliveryID, fence)
			default:
				bad = append(bad, fmt.Errorf("delivery %d: unknown outcome kind %q", o.DeliveryID, o.Kind))
				continue
			}
			if err != nil {
				return fmt.Errorf("record outcome %s of delivery %d: %w", o.Kind, o.DeliveryID, err)
			}
			n, err := r.RowsAffected()
			if err != nil {
				return fmt.Errorf("record outcome %s of delivery %d: %w", o.Kind, o.DeliveryID, err)
			}
			if n == 0 {
				res.Fenced = append(res.Fenced, o.DeliveryID)
				continue
			}
			if o.Kind == OutcomePermanent {
				var (
					id   int64
					from string
				)
				if err := tx.QueryRowContext(ctx, s.sql["delivery-subscriber-for-update"], o.DeliveryID).Scan(&id, &from); err != nil {
					return fmt.Errorf("count bounce of delivery %d: %w", o.DeliveryID, err)
				}
				suppressed, err := s.countHardBounce(ctx, tx, id, from, bounceLimit, Change{By: BySend, Reason: clip(o.Error)}, atUS)
				if err != nil {
					return fmt.Errorf("delivery %d: %w", o.DeliveryID, err)
				}
				if suppressed {
					res.Suppressed = append(res.Suppressed, id)
				}
			}
		}
		return nil
	})
	if err != nil {
		return OutcomeResult{}, err
	}
	if len(bad) > 0 {
		return res, fmt.Errorf("record outcomes: %w", errors.Join(bad...))
	}
	return res, nil
}

// refusals is what o adds to its delivery's refusals.
func (o Outcome) refusals() int {
	if o.Refused {
		return 1
	}
	return 0
}

// at is when o happened: its At, or now when the caller left it unset.
func (o Outcome) at() time.Time {
	if o.At.IsZero() {
		return time.Now()
	}
	return o.At
}

// sentRun is how many outcomes at the start of outs are sent outcomes of
// distinct deliveries (a delivery named twice keeps the one-by-one order: the
// first outcome for a row wins).
func sentRun(outs []Outcome) int {
	seen := map[int64]bool{}
	n := 0
	for _, o := range outs {
		if o.Kind != OutcomeSent || seen[o.DeliveryID] || n == planRowsPerStatement {
			break
		}
		seen[o.DeliveryID] = true
		n++
	}
	return n
}

// recordSent writes sent outcomes of distinct deliveries in one statement, and
// returns those it could not write (no longer pending, or claimed by another
// fence), in their order.
func (s *DB) recordSent(ctx context.Context, tx *sql.Tx, fence int64, outs []Outcome) (fenced []int64, err error) {
	args := make([]any, 0, 5*len(outs)+1)
	for _, o := range outs {
		args = append(args, o.DeliveryID, o.MessageID)
	}
	for _, o := range outs {
		args = append(args, o.DeliveryID, toMicros(o.at()))
	}
	for _, o := range outs {
		args = append(args, o.DeliveryID)
	}
	args = append(args, fence)
	q := strings.NewReplacer(
		"{{message_ids}}", strings.Repeat("WHEN ? THEN ? ", len(outs)),
		"{{sent_ats}}", strings.Repeat("WHEN ? THEN CAST(? AS BIGINT) ", len(outs)),
		"{{ids}}", strings.TrimSuffix(strings.Repeat("?, ", len(outs)), ", "),
	).Replace(s.raw["outcomes-sent"])
	ids, err := scanIDs(tx.QueryContext(ctx, s.bind(q), args...))
	if err != nil {
		return nil, fmt.Errorf("record %d sent outcomes from delivery %d: %w", len(outs), outs[0].DeliveryID, err)
	}
	written := make(map[int64]bool, len(ids))
	for _, id := range ids {
		written[id] = true
	}
	for _, o := range outs {
		if !written[o.DeliveryID] {
			fenced = append(fenced, o.DeliveryID)
		}
	}
	return fenced, nil
}

// ReleaseClaims gives up fence's claims on deliveries still pending.
func (s *DB) ReleaseClaims(ctx context.Context, fence int64) error {
	if _, err := s.exec(ctx, "release-claims", fence); err != nil {
		return fmt.Errorf("release claims of fence %d: %w", fence, err)
	}
	return nil
}

// CountDeliveries counts the ledger's rows by status.
func (s *DB) CountDeliveries(ctx context.Context) (DeliveryCounts, error) {
	rows, err := s.db.QueryContext(ctx, s.sql["count-deliveries"])
	if err != nil {
		return DeliveryCounts{}, fmt.Errorf("count deliveries: %w", err)
	}
	defer rows.Close()
	var c DeliveryCounts
	for rows.Next() {
		var (
			status   string
			n        int64
			lastSent sql.NullInt64
		)
		if err := rows.Scan(&status, &n, &lastSent); err != nil {
			return DeliveryCounts{}, fmt.Errorf("count deliveries: %w", err)
		}
		switch status {
		case DeliveryPending:
			c.Pending = n
		case DeliverySent:
			c.Sent = n
			c.LastSent = fromMicros(lastSent.Int64)
		case DeliveryFailed:
			c.Failed = n
		case DeliverySkipped:
			c.Skipped = n
		}
	}
	if err := rows.Err(); err != nil {
		return DeliveryCounts{}, fmt.Errorf("count deliveries: %w", err)
	}
	return c, nil
}

// PendingState says what is left for fence's sender and what other live
// senders hold.
func (s *DB) PendingState(ctx context.Context, fence int64) (PendingState, error) {
	now, err := s.eng.clock(ctx, s.db)
	if err != nil {
		return PendingState{}, fmt.Errorf("pending deliveries: %w", err)
	}
	var (
		st                 PendingState
		nextOpen, elseTill int64
	)
	err = s.db.QueryRowContext(ctx, s.sql["pending-state"], fence, now).Scan(&st.Open, &nextOpen, &st.Elsewhere, &elseTill)
	if err != nil {
		return PendingState{}, fmt.Errorf("pending deliveries: %w", err)
	}
	if st.Open > 0 {
		// next_attempt 0 means "at once"; keep it a real time for the caller.
		st.NextOpen = time.UnixMicro(nextOpen).UTC()
	}
	if st.Elsewhere > 0 {
		st.ElsewhereUntil = fromMicros(elseTill)
	}
	return st, nil
}
