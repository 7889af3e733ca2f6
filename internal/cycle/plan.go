package cycle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"publisher/internal/content"
	"publisher/internal/digest"
	"publisher/internal/mail"
	"publisher/internal/store"
	"publisher/internal/subscriber"
)

// planBatch is how many subscribers' plans go into one transaction: big enough to
// keep commits few, small enough that a crash mid-plan loses little work (and the
// rest is simply planned by the next run).
const planBatch = 500

// plan streams the active subscribers, decides who is due and what each gets, and
// records the pending deliveries together with the advanced watermarks.
// Every batch is written only while lease is held.
func (r *Runner) plan(ctx context.Context, lease *heldLease, sum *Summary, pieces []content.Piece) error {
	now := r.now()
	byFirstSeen := piecesByFirstSeen(pieces)
	var digestID int64
	batch := make([]store.PlannedDelivery, 0, planBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := r.store.PlanDeliveries(ctx, lease.Lease(), digestID, batch, now); err != nil {
			return fmt.Errorf("plan deliveries: %w", err)
		}
		batch = batch[:0]
		return nil
	}
	// EachSubscriber reads each page before calling back, so writing here is safe,
	// and only one page of the list is ever held.
	err := r.store.EachSubscriber(ctx, []string{store.StatusActive}, func(s store.Subscriber) error {
		ds := digestSubscriber(s)
		if !r.policy.Due(ds, now) {
			return nil
		}
		items, watermark := digest.Select(ds, byFirstSeen, r.cfg.Digest.Lookback, now)
		pd := store.PlannedDelivery{SubscriberID: s.ID, Watermark: watermark}
		if len(items) > 0 {
			if digestID == 0 {
				var err error
				if digestID, err = r.store.CreateDigest(ctx, now); err != nil {
					return fmt.Errorf("create digest: %w", err)
				}
			}
			pd.PieceIDs = pieceIDs(items)
			sum.Planned++
		}
		batch = append(batch, pd)
		if len(batch) == planBatch {
			return flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := flush(); err != nil {
		return err
	}
	if err := r.store.PlanPassDone(ctx, lease.Lease(), sum.Planned); err != nil {
		return err
	}
	r.log.Info("planned digests", "deliveries", sum.Planned, "digest", digestID)
	return nil
}

// dryRun plans and renders without recording or sending: list-file rows not yet in
// the store count as subscribers joining now.
func (r *Runner) dryRun(ctx context.Context, sum *Summary, pieces []content.Piece) error {
	now := r.now()
	installation, err := r.installationID(ctx, false)
	if err != nil {
		return err
	}
	byFirstSeen := piecesByFirstSeen(pieces)
	consider := func(s store.Subscriber) error {
		ds := digestSubscriber(s)
		if !r.policy.Due(ds, now) {
			return nil
		}
		items, _ := digest.Select(ds, byFirstSeen, r.cfg.Digest.Lookback, now)
		if len(items) == 0 {
			return nil
		}
		msg, err := r.message(messageID(installation, 0, s.ID, now, r.domain), s.ID, s.Email, s.Name, items, now)
		if err != nil {
			return err
		}
		// Nothing renders it here, so nothing else would find it invalid.
		if err := msg.Validate(); err != nil {
			return fmt.Errorf("message for %s: %w", s.Email, err)
		}
		sum.WouldSend++
		r.log.Info("would send", "to", s.Email, "pieces", len(items))
		return nil
	}
	if err := r.store.EachSubscriber(ctx, []string{store.StatusActive}, consider); err != nil {
		return fmt.Errorf("list subscribers: %w", err)
	}
	problems, err := subscriber.ScanDir(r.cfg.Subscribers.Dir, r.cfg.Digest.DefaultCadence, func(row subscriber.Row) error {
		_, err := r.store.SubscriberByEmail(ctx, row.Email)
		if errors.Is(err, store.ErrNotFound) {
			return consider(newcomer(row, now))
		}
		return err
	})
	sum.ListProblems = problems
	for _, p := range problems {
		r.log.Warn("subscriber list", "problem", p.String())
	}
	if err != nil {
		return fmt.Errorf("subscribers.dir: %w", err)
	}
	return nil
}

// newcomer is a list-file row not yet in the store, as it will be once synced.
func newcomer(row subscriber.Row, now time.Time) store.Subscriber {
	return store.Subscriber{Email: row.Email, Name: row.Name, Topics: row.Topics, Cadence: row.Cadence, Status: store.StatusActive, JoinedAt: now}
}

// Preview writes the message email would get if a run happened now, recording nothing.
func (r *Runner) Preview(ctx context.Context, email string, w io.Writer) error {
	var sum Summary
	pieces, err := r.Pieces(ctx, &sum, false)
	if err != nil {
		return err
	}
	now := r.now()
	email = strings.ToLower(strings.TrimSpace(email))
	s, err := r.store.SubscriberByEmail(ctx, email)
	switch {
	case errors.Is(err, store.ErrNotFound):
		rows, _, lerr := subscriber.LoadDir(r.cfg.Subscribers.Dir, r.cfg.Digest.DefaultCadence)
		if lerr != nil {
			return fmt.Errorf("subscribers.dir: %w", lerr)
		}
		i := slices.IndexFunc(rows, func(row subscriber.Row) bool { return row.Email == email })
		if i < 0 {
			return fmt.Errorf("no subscriber %s in the store or the list files", email)
		}
		s = newcomer(rows[i], now)
	case err != nil:
		return fmt.Errorf("look up %s: %w", email, err)
	case s.Status != store.StatusActive:
		return fmt.Errorf("subscriber %s is %s: no digest would be sent", email, s.Status)
	}
	items, _ := digest.Select(digestSubscriber(s), piecesByFirstSeen(pieces), r.cfg.Digest.Lookback, now)
	if len(items) == 0 {
		return fmt.Errorf("nothing new for %s: no digest would be sent", email)
	}
	installation, err := r.installationID(ctx, false)
	if err != nil {
		return err
	}
	msg, err := r.message(messageID(installation, 0, s.ID, now, r.domain), s.ID, s.Email, s.Name, items, now)
	if err != nil {
		return err
	}
	_, err = mail.WriteTo(w, msg, nil)
	return err
}

func digestSubscriber(s store.Subscriber) digest.Subscriber {
	return digest.Subscriber{
		ID: s.ID, Email: s.Email, Name: s.Name, Topics: s.Topics, Cadence: s.Cadence,
		JoinedAt: s.JoinedAt, Watermark: s.Watermark, LastDigestAt: s.LastDigestAt,
	}
}

func pieceIDs(ps []content.Piece) []string {
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
	}
	return ids
}

// piecesByFirstSeen is pieces ordered newest first-seen first, the order digest.Select
// walks (it stops at the subscriber's watermark).
func piecesByFirstSeen(ps []content.Piece) []content.Piece {
	out := slices.Clone(ps)
	slices.SortStableFunc(out, func(a, b content.Piece) int {
		if c := b.FirstSeen.Compare(a.FirstSeen); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// piecesNeeded says what planning and sending need when the build was skipped:
// the pieces, when a delivery is pending or a due subscriber has not yet been
// told of the newest piece; a planning pass without pieces, when subscribers are
// due but nothing is new to any of them (it still marks them served, so a daily
// digest keeps its moment); or nothing at all.
// newest is the latest first-seen time, as the last build recorded it.
func (r *Runner) piecesNeeded(ctx context.Context, newest time.Time) (needPieces, anyDue bool, err error) {
	counts, err := r.store.CountDeliveries(ctx)
	if err != nil {
		return false, false, fmt.Errorf("count deliveries: %w", err)
	}
	if counts.Pending > 0 {
		return true, true, nil
	}
	now := r.now()
	err = r.store.EachSubscriber(ctx, []string{store.StatusActive}, func(s store.Subscriber) error {
		if !r.policy.Due(digestSubscriber(s), now) {
			return nil
		}
		anyDue = true
		// digest.Select's floor: nothing first seen at or before it is news to s.
		floor := s.JoinedAt.Add(-r.cfg.Digest.Lookback)
		if s.Watermark.After(floor) {
			floor = s.Watermark
		}
		if newest.After(floor) {
			return errFound
		}
		return nil
	})
	if errors.Is(err, errFound) {
		return true, true, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("list subscribers: %w", err)
	}
	return false, anyDue, nil
}

// errFound stops a walk over the subscribers at the first one that settles the answer.
var errFound = errors.New("found")
