package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

func knownKind(kind string) bool {
	switch kind {
	case EventHardBounce, EventSoftBounce, EventRefused, EventDelayed, EventDelivered, EventComplaint, EventUnsubscribe:
		return true
	}
	return false
}

// RecordEvent records an event once and applies it (see Store).
func (s *DB) RecordEvent(ctx context.Context, e Event, bounceLimit int, now time.Time) (EventResult, error) {
	switch {
	case e.Source == "" || e.ID == "":
		return EventResult{}, errors.New("record event: no source or id")
	case !knownKind(e.Kind):
		return EventResult{}, fmt.Errorf("record event %s %s: unknown kind %q", e.Source, e.ID, e.Kind)
	case e.By != ByMailbox && e.By != ByWebhook:
		return EventResult{}, fmt.Errorf("record event %s %s: by %q, want %s or %s", e.Source, e.ID, e.By, ByMailbox, ByWebhook)
	}
	bounceLimit = max(bounceLimit, 1)
	recipient := normalizeEmail(e.Recipient)
	messageID := strings.Trim(strings.TrimSpace(e.MessageID), "<>")
	nowUS := toMicros(now)
	hash, err := s.erasureHasher(ctx)
	if err != nil {
		return EventResult{}, fmt.Errorf("record event %s %s: %w", e.Source, e.ID, err)
	}
	var res EventResult
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		res = EventResult{}
		if recipient != "" {
			// An erased address stays out of the store, even in an event
			// about it: the address is suppressed by its hash already.
			at, err := s.erasedAt(ctx, tx, hash(recipient))
			if err != nil || !at.IsZero() {
				res.Effect = EffectErased
				return err
			}
		}
		// The event is claimed before anything is applied: the same event again,
		// even from another process at the same moment, finds it and does nothing.
		var row int64
		err := tx.QueryRowContext(ctx, s.sql["insert-event"], e.Source, clip(e.ID), e.Kind, recipient, messageID,
			clip(e.Status), clip(e.Diagnostic), toMicros(e.At), nowUS).Scan(&row)
		if errNoRows(err) {
			return nil
		}
		if err != nil {
			return err
		}
		res.New = true
		from, err := s.matchEvent(ctx, tx, &res, recipient, messageID)
		if err != nil {
			return err
		}
		if res.Effect, err = s.applyEvent(ctx, tx, e, &res, from, bounceLimit, nowUS); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.sql["event-outcome"], res.DeliveryID, res.SubscriberID, res.Effect, row)
		return err
	})
	if err != nil {
		return EventResult{}, fmt.Errorf("record event %s %s: %w", e.Source, e.ID, err)
	}
	return res, nil
}

// matchEvent finds the delivery by our Message-ID, else the subscriber by
// address, and locks the subscriber; it returns the subscriber's status.
func (s *DB) matchEvent(ctx context.Context, tx *sql.Tx, res *EventResult, recipient, messageID string) (string, error) {
	if messageID != "" {
		err := tx.QueryRowContext(ctx, s.sql["delivery-by-message-id"], messageID).Scan(&res.DeliveryID, &res.SubscriberID)
		if err != nil && !errNoRows(err) {
			return "", fmt.Errorf("match message id: %w", err)
		}
	}
	var (
		from string
		err  error
	)
	switch {
	case res.SubscriberID != 0:
		err = tx.QueryRowContext(ctx, s.sql["subscriber-for-update"], res.SubscriberID).Scan(&from)
	case recipient != "":
		err = tx.QueryRowContext(ctx, s.sql["subscriber-status-for-update"], recipient).Scan(&res.SubscriberID, &from)
	default:
		return "", nil
	}
	if errNoRows(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("match subscriber: %w", err)
	}
	return from, nil
}

// applyEvent does what the event's kind asks of the matched subscriber (whose
// status is from) and returns the effect.
func (s *DB) applyEvent(ctx context.Context, tx *sql.Tx, e Event, res *EventResult, from string, limit int, nowUS int64) (string, error) {
	if res.SubscriberID == 0 {
		return EffectUnmatched, nil
	}
	why := Change{By: e.By, Reason: eventReason(e)}
	switch e.Kind {
	case EventHardBounce:
		if res.DeliveryID != 0 {
			// Several reports of one message (two servers on the way, a DSN
			// and the provider's webhook) are one bounce.
			var counted int
			if err := tx.QueryRowContext(ctx, s.sql["delivery-bounce-counted"], res.DeliveryID).Scan(&counted); err != nil {
				return "", err
			}
			if counted > 0 {
				return EffectRepeat, nil
			}
		}
		suppressed, err := s.countHardBounce(ctx, tx, res.SubscriberID, from, limit, why, nowUS)
		if suppressed {
			return EffectSuppressed, err
		}
		return EffectCounted, err
	case EventComplaint, EventUnsubscribe:
		if IsSuppressed(from) {
			return EffectRecorded, nil
		}
		to := StatusComplained
		if e.Kind == EventUnsubscribe {
			to = StatusUnsubscribed
		}
		return EffectSuppressed, s.setStatus(ctx, tx, res.SubscriberID, from, to, why, nowUS)
	}
	return EffectRecorded, nil
}

// eventReason is how the history names an event: its source and kind, and
// the server's words.
func eventReason(e Event) string {
	reason := e.Source + " " + e.Kind
	if detail := strings.TrimSpace(e.Status + " " + e.Diagnostic); detail != "" {
		reason += ": " + detail
	}
	return reason
}
