package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// maxDuplicateExamples bounds how many repeated addresses a sync names.
const maxDuplicateExamples = 20

// syncRowsPerStatement rows go into the staging table per statement (seven
// parameters each).
const syncRowsPerStatement = 500

type rowScanner interface {
	Scan(dest ...any) error
}

func scanSubscriber(row rowScanner) (Subscriber, error) {
	var (
		sub                                                     Subscriber
		topics                                                  string
		joined, confirmed, watermark, lastDigest, updated, hard int64
	)
	err := row.Scan(&sub.ID, &sub.Email, &sub.Name, &topics, &sub.Cadence, &sub.Source, &sub.Status,
		&joined, &confirmed, &sub.ConsentIP, &sub.ConsentSource, &watermark, &lastDigest, &hard, &updated)
	if err != nil {
		return Subscriber{}, err
	}
	if sub.Topics, err = decodeList(topics); err != nil {
		return Subscriber{}, fmt.Errorf("subscriber %d: topics: %w", sub.ID, err)
	}
	sub.JoinedAt = fromMicros(joined)
	sub.ConfirmedAt = fromMicros(confirmed)
	sub.Watermark = fromMicros(watermark)
	sub.LastDigestAt = fromMicros(lastDigest)
	sub.UpdatedAt = fromMicros(updated)
	sub.HardBounces = int(hard)
	return sub, nil
}

// SyncSubscribers makes the file-sourced subscribers match the rows each hands to
// add. Rows are streamed into a staging table and merged with set-based SQL in the
// same transaction, so memory does not grow with the list. Rows whose address
// belongs to a web or CLI subscriber leave that subscriber to its owner: the file
// neither changes nor removes it. A gone address that returns starts afresh
// (joined now, no watermark), so it is not mailed everything it missed while away.
// An address listed twice: the later row wins, and the result names it. Syncs of
// several processes (replicas on PostgreSQL) run one after another.
func (s *DB) SyncSubscribers(ctx context.Context, each func(add func(SubscriberInput) error) error, now time.Time) (SyncResult, error) {
	nowUS := toMicros(now)
	hash, err := s.erasureHasher(ctx)
	if err != nil {
		return SyncResult{}, fmt.Errorf("sync subscribers: %w", err)
	}
	var res SyncResult
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		res = SyncResult{}
		if err := s.serialize(ctx, tx, lockSync); err != nil {
			return fmt.Errorf("sync subscribers: %w", err)
		}
		for _, q := range []string{"sync-staging-create", "sync-want-create", "sync-staging-clear", "sync-want-clear"} {
			if _, err := tx.ExecContext(ctx, s.sql[q]); err != nil {
				return fmt.Errorf("sync subscribers: staging: %w", err)
			}
		}
		if err := s.stageRows(ctx, tx, each, hash); err != nil {
			return fmt.Errorf("sync subscribers: %w", err)
		}
		if _, err := tx.ExecContext(ctx, s.sql["sync-want-fill"]); err != nil {
			return fmt.Errorf("sync subscribers: staging: %w", err)
		}
		if err := tx.QueryRowContext(ctx, s.sql["sync-duplicate-count"]).Scan(&res.Duplicates); err != nil {
			return fmt.Errorf("sync subscribers: duplicates: %w", err)
		}
		if res.Duplicates > 0 {
			var err error
			if res.DuplicateExamples, err = duplicateExamples(tx.QueryContext(ctx, s.sql["sync-duplicate-examples"], maxDuplicateExamples)); err != nil {
				return fmt.Errorf("sync subscribers: duplicates: %w", err)
			}
		}
		if err := tx.QueryRowContext(ctx, s.sql["sync-kept-suppressed"]).Scan(&res.KeptSuppressed); err != nil {
			return fmt.Errorf("sync subscribers: suppressed: %w", err)
		}
		var err error
		if res.Erased, res.ErasedOrigins, err = erasedOrigins(tx.QueryContext(ctx, s.sql["sync-erased"])); err != nil {
			return fmt.Errorf("sync subscribers: erased: %w", err)
		}
		var maxID int64
		if err := tx.QueryRowContext(ctx, s.sql["max-subscriber-id"]).Scan(&maxID); err != nil {
			return fmt.Errorf("sync subscribers: %w", err)
		}
		// Each status change is recorded in the history by the statement
		// before (or, for new rows, after) the one that makes it.
		steps := []struct {
			count *int
			name  string
			args  []any
		}{
			{nil, "sync-gone-history", []any{nowUS}},
			{&res.Gone, "sync-gone", []any{nowUS}},
			{nil, "sync-reactivate-history", []any{nowUS}},
			{&res.Reactivated, "sync-reactivate", []any{nowUS, nowUS}},
			{&res.Updated, "sync-update", []any{nowUS}},
			{&res.Added, "sync-add", []any{nowUS, nowUS}},
			{nil, "sync-add-history", []any{nowUS, maxID}},
		}
		for _, st := range steps {
			r, err := tx.ExecContext(ctx, s.sql[st.name], st.args...)
			if err == nil && st.count == nil {
				continue
			}
			if err != nil {
				return fmt.Errorf("sync subscribers: %s: %w", st.name, err)
			}
			n, err := r.RowsAffected()
			if err != nil {
				return fmt.Errorf("sync subscribers: %s: %w", st.name, err)
			}
			*st.count = int(n)
		}
		// Leave the staging tables empty: they live as long as the connection.
		for _, q := range []string{"sync-staging-clear", "sync-want-clear"} {
			if _, err := tx.ExecContext(ctx, s.sql[q]); err != nil {
				return fmt.Errorf("sync subscribers: staging: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return SyncResult{}, err
	}
	return res, nil
}

// stageRows streams the rows each hands over into sync_rows, many per statement.
func (s *DB) stageRows(ctx context.Context, tx *sql.Tx, each func(add func(SubscriberInput) error) error, hash func(string) string) error {
	const width = 7
	full, err := tx.PrepareContext(ctx, s.bind(strings.Replace(s.raw["sync-staging-insert"], "{{values}}", valuesList(syncRowsPerStatement, width), 1)))
	if err != nil {
		return fmt.Errorf("staging: %w", err)
	}
	defer full.Close()
	args := make([]any, 0, width*syncRowsPerStatement)
	flush := func() error {
		if len(args) == 0 {
			return nil
		}
		var err error
		if len(args) == cap(args) {
			_, err = full.ExecContext(ctx, args...)
		} else {
			q := strings.Replace(s.raw["sync-staging-insert"], "{{values}}", valuesList(len(args)/width, width), 1)
			_, err = tx.ExecContext(ctx, s.bind(q), args...)
		}
		args = args[:0]
		return err
	}
	n := 0
	err = each(func(in SubscriberInput) error {
		n++
		email := normalizeEmail(in.Email)
		if email == "" {
			return fmt.Errorf("row %d: empty email", n)
		}
		args = append(args, n, email, in.Name, encodeList(in.Topics), in.Cadence, in.ConsentSource, hash(email))
		if len(args) == cap(args) {
			return flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

// erasedOrigins counts the rows and keeps the first few.
func erasedOrigins(rows *sql.Rows, err error) (int, []string, error) {
	if err != nil {
		return 0, nil, err
	}
	defer rows.Close()
	var (
		n   int
		out []string
	)
	for rows.Next() {
		var origin string
		if err := rows.Scan(&origin); err != nil {
			return 0, nil, err
		}
		if n++; len(out) < maxDuplicateExamples {
			out = append(out, origin)
		}
	}
	return n, out, rows.Err()
}

func duplicateExamples(rows *sql.Rows, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var email, origins string
		if err := rows.Scan(&email, &origins); err != nil {
			return nil, err
		}
		out = append(out, email+" ("+origins+")")
	}
	return out, rows.Err()
}

// AddSubscriber inserts an address, or updates the name, topics and cadence of a
// known one. A gone address comes back with the input's source and status; a
// suppressed one stays suppressed; an active or pending one keeps its status.
func (s *DB) AddSubscriber(ctx context.Context, in SubscriberInput, now time.Time) (Subscriber, error) {
	email := normalizeEmail(in.Email)
	if email == "" {
		return Subscriber{}, errors.New("add subscriber: empty email")
	}
	source := in.Source
	if source == "" {
		source = SourceCLI
	}
	status := in.Status
	if status == "" {
		status = StatusActive
		if source == SourceWeb {
			status = StatusPending
		}
	}
	if !knownStatus(status) {
		return Subscriber{}, fmt.Errorf("add subscriber %s: unknown status %q", email, status)
	}
	nowUS := toMicros(now)
	topics := encodeList(in.Topics)
	hash, err := s.erasureHasher(ctx)
	if err != nil {
		return Subscriber{}, fmt.Errorf("add subscriber %s: %w", email, err)
	}
	var sub Subscriber
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var (
			id      int64
			current string
			err     error
		)
		why := Change{By: byOfSource(source), Reason: in.ConsentSource}
		// Twice at most: when two processes add a new address at once (replicas
		// on PostgreSQL), the insert of the second finds the first's row, which
		// it then reads, locked, and updates.
		for attempt := 0; attempt < 2; attempt++ {
			err = tx.QueryRowContext(ctx, s.sql["subscriber-status-for-update"], email).Scan(&id, &current)
			if !errNoRows(err) {
				break
			}
			if why.Reason, err = s.unlessErased(ctx, tx, hash(email), in, why.Reason); err != nil {
				return fmt.Errorf("add subscriber %s: %w", email, err)
			}
			confirmed := int64(0)
			if status == StatusActive {
				confirmed = nowUS
			}
			err = tx.QueryRowContext(ctx, s.sql["insert-subscriber"], email, in.Name, topics, in.Cadence, source, status,
				nowUS, confirmed, in.ConsentIP, in.ConsentSource, nowUS).Scan(&id)
			if !errNoRows(err) {
				current = ""
				break
			}
		}
		switch {
		case err != nil:
		case current == "":
			err = s.recordChange(ctx, tx, id, "", status, why, nowUS)
		case current == StatusGone:
			_, err = tx.ExecContext(ctx, s.sql["return-subscriber"], in.Name, topics, in.Cadence, source, status, nowUS, nowUS, id)
			if err == nil {
				err = s.recordChange(ctx, tx, id, current, status, why, nowUS)
			}
		default:
			_, err = tx.ExecContext(ctx, s.sql["update-subscriber"], in.Name, topics, in.Cadence, nowUS, id)
		}
		if err != nil {
			return fmt.Errorf("add subscriber %s: %w", email, err)
		}
		sub, err = scanSubscriber(tx.QueryRowContext(ctx, s.sql["subscriber-by-id"], id))
		if err != nil {
			return fmt.Errorf("add subscriber %s: read back: %w", email, err)
		}
		return nil
	})
	return sub, err
}

// unlessErased refuses to add an address erased on request, unless the
// input says it may; then the erasure is forgotten, and the history's
// reason says so.
func (s *DB) unlessErased(ctx context.Context, tx *sql.Tx, hash string, in SubscriberInput, reason string) (string, error) {
	at, err := s.erasedAt(ctx, tx, hash)
	if err != nil || at.IsZero() {
		return reason, err
	}
	if !in.AfterErasure {
		return reason, fmt.Errorf("%w on %s", ErrErased, at.Format(time.DateOnly))
	}
	if _, err := tx.ExecContext(ctx, s.sql["forget-erasure"], hash); err != nil {
		return reason, fmt.Errorf("erasures: %w", err)
	}
	return strings.TrimSpace(fmt.Sprintf("added again after its erasure on %s; %s", at.Format(time.DateOnly), reason)), nil
}

// SubscriberByEmail looks an address up, case-insensitively.
func (s *DB) SubscriberByEmail(ctx context.Context, email string) (Subscriber, error) {
	sub, err := scanSubscriber(s.db.QueryRowContext(ctx, s.sql["subscriber-by-email"], normalizeEmail(email)))
	if errNoRows(err) {
		return Subscriber{}, fmt.Errorf("subscriber %q: %w", email, ErrNotFound)
	}
	if err != nil {
		return Subscriber{}, fmt.Errorf("subscriber %q: %w", email, err)
	}
	return sub, nil
}

// SubscriberByID looks a subscriber up by id.
func (s *DB) SubscriberByID(ctx context.Context, id int64) (Subscriber, error) {
	sub, err := scanSubscriber(s.db.QueryRowContext(ctx, s.sql["subscriber-by-id"], id))
	if errNoRows(err) {
		return Subscriber{}, fmt.Errorf("subscriber %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Subscriber{}, fmt.Errorf("subscriber %d: %w", id, err)
	}
	return sub, nil
}

// EachSubscriber pages through subscribers by id. No connection is held while fn
// runs, so fn may call the store (even write to it).
func (s *DB) EachSubscriber(ctx context.Context, statuses []string, fn func(Subscriber) error) error {
	query := s.raw["subscribers-page"]
	args := []any{int64(0)}
	if len(statuses) > 0 {
		query += ` AND status IN (?` + strings.Repeat(`, ?`, len(statuses)-1) + `)`
		for _, st := range statuses {
			args = append(args, st)
		}
	}
	query = s.bind(query + ` ORDER BY id LIMIT ?`)
	args = append(args, subscriberPageSize)
	page := make([]Subscriber, 0, subscriberPageSize)
	for {
		page = page[:0]
		rows, err := s.db.QueryContext(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("each subscriber after id %d: %w", args[0], err)
		}
		for rows.Next() {
			sub, err := scanSubscriber(rows)
			if err != nil {
				_ = rows.Close()
				return fmt.Errorf("each subscriber: %w", err)
			}
			page = append(page, sub)
		}
		err = rows.Err()
		_ = rows.Close()
		if err != nil {
			return fmt.Errorf("each subscriber after id %d: %w", args[0], err)
		}
		for _, sub := range page {
			if err := fn(sub); err != nil {
				return err
			}
		}
		if len(page) < subscriberPageSize {
			return nil
		}
		args[0] = page[len(page)-1].ID
	}
}

// SetStatus changes a subscriber's status and records the change in its
// history. Setting active records the confirmation time when there was none
// and clears the hard-bounce count.
func (s *DB) SetStatus(ctx context.Context, id int64, status string, why Change, now time.Time) error {
	if !knownStatus(status) {
		return fmt.Errorf("set status of subscriber %d: unknown status %q", id, status)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var from string
		err := tx.QueryRowContext(ctx, s.sql["subscriber-for-update"], id).Scan(&from)
		if errNoRows(err) {
			return fmt.Errorf("set status of subscriber %d: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("set status of subscriber %d: %w", id, err)
		}
		return s.setStatus(ctx, tx, id, from, status, why, toMicros(now))
	})
}

// Unsuppress lifts a suppression (see Store).
func (s *DB) Unsuppress(ctx context.Context, email, reason string, now time.Time) (Subscriber, error) {
	email, reason = normalizeEmail(email), strings.TrimSpace(reason)
	if reason == "" {
		return Subscriber{}, fmt.Errorf("unsuppress %s: a reason is required", email)
	}
	nowUS := toMicros(now)
	var sub Subscriber
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var (
			id           int64
			from, source string
			confirmed    int64
		)
		err := tx.QueryRowContext(ctx, s.sql["unsuppress-subject"], email).Scan(&id, &from, &source, &confirmed)
		if errNoRows(err) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if !IsSuppressed(from) {
			return fmt.Errorf("it is %s: %w", from, ErrNotSuppressed)
		}
		// Someone who signed up on the web and never confirmed has not
		// consented yet: back to pending, not to active.
		to := StatusActive
		if source == SourceWeb && confirmed == 0 {
			to = StatusPending
		}
		if _, err := tx.ExecContext(ctx, s.sql["unsuppress"], to, nowUS, id); err != nil {
			return err
		}
		if err := s.recordChange(ctx, tx, id, from, to, Change{By: ByCLI, Reason: reason}, nowUS); err != nil {
			return err
		}
		sub, err = scanSubscriber(tx.QueryRowContext(ctx, s.sql["subscriber-by-id"], id))
		return err
	})
	if errors.Is(err, ErrNotFound) {
		err = s.erasedError(ctx, email)
	}
	if err != nil {
		return Subscriber{}, fmt.Errorf("unsuppress %s: %w", email, err)
	}
	return sub, nil
}

// SetPreferences changes a subscriber's topics and cadence.
func (s *DB) SetPreferences(ctx context.Context, id int64, topics []string, cadence string, now time.Time) error {
	res, err := s.exec(ctx, "set-preferences", encodeList(topics), cadence, toMicros(now), id)
	return affectedOne(res, err, fmt.Sprintf("set preferences of subscriber %d", id))
}

func knownStatus(status string) bool {
	switch status {
	case StatusPending, StatusActive, StatusGone:
		return true
	}
	return IsSuppressed(status)
}
