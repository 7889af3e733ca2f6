package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite" // registers the pure-Go "sqlite" driver
)

// Storage choices, kept the same for the PostgreSQL implementation to come:
//   - times are BIGINT unix microseconds in UTC, 0 meaning "never" (zero time.Time);
//     integers compare and index the same in both engines and need no time parsing;
//   - lists (topics, a delivery's piece ids) are JSON arrays in TEXT columns: a
//     delivery's pieces are written once and read whole with its row, so a child
//     table would multiply the ledger's inserts and need a second query per page;
//   - queries use "?" placeholders; postgres.go will carry its own SQL text with
//     $1-style placeholders (the statements here are plain SQL, ON CONFLICT and
//     RETURNING included, which PostgreSQL accepts as they are).

const (
	subscriberPageSize = 500
	defaultPendingPage = 500
	maxErrorText       = 1000
)

// SQLite is the Store on one SQLite file. Several processes may open the same file:
// SQLite lets one write at a time, every write transaction begins IMMEDIATE (taking
// the write lock up front, so two writers never deadlock upgrading a read lock), and
// busy_timeout makes the others wait their turn.
type SQLite struct {
	db *sql.DB
	// writeMu queues this process's writers in Go rather than in SQLite's busy
	// handler, which polls with sleeps; other processes still meet busy_timeout.
	writeMu sync.Mutex

	pendingStmt     *sql.Stmt
	sentStmt        *sql.Stmt
	retryStmt       *sql.Stmt
	failStmt        *sql.Stmt
	skipStmt        *sql.Stmt
	bounceStmt      *sql.Stmt
	planInsertStmt  *sql.Stmt
	planAdvanceStmt *sql.Stmt
}

var _ Store = (*SQLite)(nil)

// dsn builds the connection string; pragmas go in it so that every connection of
// the pool gets them, not only the first.
func dsn(path string) string {
	// SQLite parses the name as a URI: escape what would end the path early.
	escaped := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	return "file:" + escaped +
		"?_pragma=busy_timeout(10000)" +
		"&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(NORMAL)" +
		"&_pragma=foreign_keys(1)" +
		"&_txlock=immediate"
}

// OpenSQLite opens (creating if needed) the database at path, with its parent
// directory, and brings its schema up to date.
func OpenSQLite(ctx context.Context, path string) (*SQLite, error) {
	if path == "" {
		return nil, errors.New("open sqlite: empty path")
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("open sqlite %s: create directory: %w", path, err)
		}
	}
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// A small pool: readers run side by side under WAL, writers queue on writeMu.
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	s := &SQLite{db: db}
	if err := s.init(ctx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return s, nil
}

func (s *SQLite) init(ctx context.Context) error {
	migrations, err := loadMigrations(migrationFiles, "migrations")
	if err != nil {
		return err
	}
	// A brand-new file is switched to WAL by the first connection, which needs an
	// exclusive lock; SQLite answers BUSY without waiting when two processes (or
	// pools) do that at the same instant. It happens once per file, so retry.
	err = retryBusy(ctx, func() error {
		if err := s.db.PingContext(ctx); err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
		return migrate(ctx, s.db, migrations, time.Now)
	})
	if err != nil {
		return err
	}
	prepare := []struct {
		stmt  **sql.Stmt
		query string
	}{
		{&s.pendingStmt, `SELECT d.id, d.digest_id, d.subscriber_id, s.email, s.name, s.status,
       d.piece_ids, d.attempts, d.created_at
  FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
 WHERE d.status = 'pending' AND d.id > ? AND d.next_attempt <= ?
 ORDER BY d.id
 LIMIT ?`},
		// Every outcome update is guarded by status = 'pending': a row that was sent
		// (or failed) never goes back, and a replayed outcome changes nothing.
		{&s.sentStmt, `UPDATE deliveries SET status = 'sent', message_id = ?, sent_at = ?,
       attempts = attempts + 1, last_error = ''
 WHERE id = ? AND status = 'pending'`},
		{&s.retryStmt, `UPDATE deliveries SET attempts = attempts + 1, last_error = ?, next_attempt = ?
 WHERE id = ? AND status = 'pending'`},
		{&s.failStmt, `UPDATE deliveries SET status = 'failed', attempts = attempts + 1, last_error = ?
 WHERE id = ? AND status = 'pending'`},
		{&s.skipStmt, `UPDATE deliveries SET status = 'skipped', last_error = ?
 WHERE id = ? AND status = 'pending'`},
		// The subscriber is taken from the delivery row, not from the caller. All
		// right-hand sides see the old row, so hard_bounces + 1 is the new count.
		{&s.bounceStmt, `UPDATE subscribers SET hard_bounces = hard_bounces + 1,
       status = CASE WHEN hard_bounces + 1 >= ? AND status IN ('active', 'pending', 'gone')
                     THEN 'bounced' ELSE status END,
       updated_at = ?
 WHERE id = (SELECT subscriber_id FROM deliveries WHERE id = ?)
RETURNING id, status, hard_bounces`},
		{&s.planInsertStmt, `INSERT INTO deliveries (digest_id, subscriber_id, status, piece_ids, attempts, next_attempt, created_at)
VALUES (?, ?, 'pending', ?, 0, 0, ?)
ON CONFLICT (digest_id, subscriber_id) DO NOTHING`},
		{&s.planAdvanceStmt, `UPDATE subscribers SET watermark = CASE WHEN watermark < ? THEN ? ELSE watermark END,
       last_digest_at = ?, updated_at = ?
 WHERE id = ?`},
	}
	for _, p := range prepare {
		stmt, err := s.db.PrepareContext(ctx, p.query)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", firstLine(p.query), err)
		}
		*p.stmt = stmt
	}
	return nil
}

// Close releases the prepared statements and the connections.
func (s *SQLite) Close() error {
	for _, stmt := range []*sql.Stmt{s.pendingStmt, s.sentStmt, s.retryStmt, s.failStmt, s.skipStmt,
		s.bounceStmt, s.planInsertStmt, s.planAdvanceStmt} {
		if stmt != nil {
			_ = stmt.Close()
		}
	}
	return s.db.Close()
}

// Ping checks that the database answers.
func (s *SQLite) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("ping sqlite: %w", err)
	}
	return nil
}

// inTx runs fn in one write transaction, committed when fn returns nil.
func (s *SQLite) inTx(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// exec runs one write statement outside an explicit transaction.
func (s *SQLite) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return s.db.ExecContext(ctx, query, args...)
}

// RecordPieces stores first-seen times for new ids and returns them for all ids.
func (s *SQLite) RecordPieces(ctx context.Context, pieces []PieceSeen, now time.Time) (map[string]time.Time, error) {
	seen := make(map[string]time.Time, len(pieces))
	nowUS := toMicros(now)
	for _, p := range pieces {
		if p.ID == "" {
			return nil, errors.New("record pieces: a piece has an empty id")
		}
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		// Many rows per statement: one statement per piece cost 9 µs a row, most
		// of it the statement's round trip rather than SQLite's work.
		stmts := map[int]*sql.Stmt{}
		defer func() {
			for _, st := range stmts {
				_ = st.Close()
			}
		}()
		args := make([]any, 0, 4*piecesPerStatement)
		for start := 0; start < len(pieces); start += piecesPerStatement {
			batch := pieces[start:min(start+piecesPerStatement, len(pieces))]
			stmt, ok := stmts[len(batch)]
			if !ok {
				var err error
				if stmt, err = tx.PrepareContext(ctx, recordPiecesQuery(len(batch))); err != nil {
					return fmt.Errorf("record pieces: %w", err)
				}
				stmts[len(batch)] = stmt
			}
			args = args[:0]
			for _, p := range batch {
				args = append(args, p.ID, nowUS, p.Hash, nowUS)
			}
			rows, err := stmt.QueryContext(ctx, args...)
			if err != nil {
				return fmt.Errorf("record pieces %q…: %w", batch[0].ID, err)
			}
			for rows.Next() {
				var id string
				var first int64
				if err := rows.Scan(&id, &first); err != nil {
					_ = rows.Close()
					return fmt.Errorf("record pieces: %w", err)
				}
				seen[id] = fromMicros(first)
			}
			if err := rows.Close(); err != nil {
				return fmt.Errorf("record pieces %q…: %w", batch[0].ID, err)
			}
			if err := rows.Err(); err != nil {
				return fmt.Errorf("record pieces %q…: %w", batch[0].ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return seen, nil
}

// piecesPerStatement keeps a statement's parameters (four per piece) well
// under SQLite's limit of 32,766.
const piecesPerStatement = 500

// recordPiecesQuery upserts n pieces. It always updates (so RETURNING yields
// every row), but first_seen is never in the SET list: it is written once, by
// the INSERT.
func recordPiecesQuery(n int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO pieces (id, first_seen, hash, updated_at) VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?)")
	}
	b.WriteString(`
ON CONFLICT (id) DO UPDATE SET
       updated_at = CASE WHEN pieces.hash <> excluded.hash THEN excluded.updated_at ELSE pieces.updated_at END,
       hash = excluded.hash
RETURNING id, first_seen`)
	return b.String()
}

const subscriberColumns = `id, email, name, topics, cadence, source, status, joined_at, confirmed_at,
       consent_ip, consent_source, watermark, last_digest_at, hard_bounces, updated_at`

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
// An address listed twice: the later row wins, and the result names it.
func (s *SQLite) SyncSubscribers(ctx context.Context, each func(add func(SubscriberInput) error) error, now time.Time) (SyncResult, error) {
	nowUS := toMicros(now)
	var res SyncResult
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res = SyncResult{}
		for _, q := range []string{
			`CREATE TEMP TABLE IF NOT EXISTS sync_rows (seq INTEGER PRIMARY KEY, email TEXT NOT NULL, name TEXT NOT NULL, topics TEXT NOT NULL, cadence TEXT NOT NULL, origin TEXT NOT NULL)`,
			`DELETE FROM sync_rows`,
		} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("sync subscribers: staging: %w", err)
			}
		}
		insert, err := tx.PrepareContext(ctx, `INSERT INTO sync_rows (email, name, topics, cadence, origin) VALUES (?, ?, ?, ?, ?)`)
		if err != nil {
			return fmt.Errorf("sync subscribers: staging: %w", err)
		}
		defer insert.Close()
		n := 0
		err = each(func(in SubscriberInput) error {
			n++
			email := normalizeEmail(in.Email)
			if email == "" {
				return fmt.Errorf("row %d: empty email", n)
			}
			_, err := insert.ExecContext(ctx, email, in.Name, encodeList(in.Topics), in.Cadence, in.ConsentSource)
			return err
		})
		if err != nil {
			return fmt.Errorf("sync subscribers: %w", err)
		}

		// The winning row per address, indexed for the joins below.
		for _, q := range []string{
			`CREATE TEMP TABLE IF NOT EXISTS sync_want (email TEXT PRIMARY KEY, name TEXT NOT NULL, topics TEXT NOT NULL, cadence TEXT NOT NULL, origin TEXT NOT NULL, seq INTEGER NOT NULL)`,
			`DELETE FROM sync_want`,
			`INSERT INTO sync_want (email, name, topics, cadence, origin, seq)
SELECT email, name, topics, cadence, origin, seq FROM sync_rows
 WHERE seq IN (SELECT MAX(seq) FROM sync_rows GROUP BY email)`,
		} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("sync subscribers: staging: %w", err)
			}
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) - COUNT(DISTINCT email) FROM sync_rows`).Scan(&res.Duplicates); err != nil {
			return fmt.Errorf("sync subscribers: duplicates: %w", err)
		}
		if res.Duplicates > 0 {
			rs, err := tx.QueryContext(ctx, `SELECT email, GROUP_CONCAT(origin, ', ') FROM sync_rows
 GROUP BY email HAVING COUNT(*) > 1 ORDER BY MIN(seq) LIMIT ?`, maxDuplicateExamples)
			if err != nil {
				return fmt.Errorf("sync subscribers: duplicates: %w", err)
			}
			for rs.Next() {
				var email, origins string
				if err := rs.Scan(&email, &origins); err != nil {
					_ = rs.Close()
					return fmt.Errorf("sync subscribers: duplicates: %w", err)
				}
				res.DuplicateExamples = append(res.DuplicateExamples, email+" ("+origins+")")
			}
			if err := rs.Close(); err != nil {
				return fmt.Errorf("sync subscribers: duplicates: %w", err)
			}
		}

		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM subscribers s JOIN sync_want w ON w.email = s.email
 WHERE s.status IN ('unsubscribed', 'bounced', 'complained', 'removed')`).Scan(&res.KeptSuppressed); err != nil {
			return fmt.Errorf("sync subscribers: suppressed: %w", err)
		}
		steps := []struct {
			count *int
			query string
			args  []any
		}{
			{&res.Gone, `UPDATE subscribers SET status = 'gone', updated_at = ?
 WHERE source = 'file' AND status IN ('active', 'pending')
   AND NOT EXISTS (SELECT 1 FROM sync_want w WHERE w.email = subscribers.email)`, []any{nowUS}},
			{&res.Reactivated, `UPDATE subscribers SET name = w.name, topics = w.topics, cadence = w.cadence, updated_at = ?,
       status = 'active', joined_at = ?, watermark = 0
  FROM sync_want w
 WHERE w.email = subscribers.email AND subscribers.source = 'file' AND subscribers.status = 'gone'`, []any{nowUS, nowUS}},
			{&res.Updated, `UPDATE subscribers SET name = w.name, topics = w.topics, cadence = w.cadence, updated_at = ?
  FROM sync_want w
 WHERE w.email = subscribers.email AND subscribers.source = 'file' AND subscribers.status IN ('active', 'pending')
   AND (subscribers.name <> w.name OR subscribers.topics <> w.topics OR subscribers.cadence <> w.cadence)`, []any{nowUS}},
			// In the files' order, so ids follow the list.
			{&res.Added, `INSERT INTO subscribers
       (email, name, topics, cadence, source, status, joined_at, consent_ip, consent_source, updated_at)
SELECT w.email, w.name, w.topics, w.cadence, 'file', 'active', ?, '', w.origin, ?
  FROM sync_want w
 WHERE NOT EXISTS (SELECT 1 FROM subscribers s WHERE s.email = w.email)
 ORDER BY w.seq`, []any{nowUS, nowUS}},
		}
		for _, st := range steps {
			r, err := tx.ExecContext(ctx, st.query, st.args...)
			if err != nil {
				return fmt.Errorf("sync subscribers: %w", err)
			}
			n, err := r.RowsAffected()
			if err != nil {
				return fmt.Errorf("sync subscribers: %w", err)
			}
			*st.count = int(n)
		}
		// Leave the staging tables empty: they live as long as the connection.
		for _, q := range []string{`DELETE FROM sync_rows`, `DELETE FROM sync_want`} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
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

// maxDuplicateExamples bounds how many repeated addresses a sync names.
const maxDuplicateExamples = 20

// AddSubscriber inserts an address, or updates the name, topics and cadence of a
// known one. A gone address comes back with the input's source and status; a
// suppressed one stays suppressed; an active or pending one keeps its status.
func (s *SQLite) AddSubscriber(ctx context.Context, in SubscriberInput, now time.Time) (Subscriber, error) {
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
	var sub Subscriber
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var (
			id      int64
			current string
		)
		err := tx.QueryRowContext(ctx, `SELECT id, status FROM subscribers WHERE email = ?`, email).Scan(&id, &current)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			confirmed := int64(0)
			if status == StatusActive {
				confirmed = nowUS
			}
			err = tx.QueryRowContext(ctx, `INSERT INTO subscribers
       (email, name, topics, cadence, source, status, joined_at, confirmed_at, consent_ip, consent_source, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
RETURNING id`, email, in.Name, topics, in.Cadence, source, status, nowUS, confirmed, in.ConsentIP, in.ConsentSource, nowUS).Scan(&id)
		case err != nil:
		case current == StatusGone:
			_, err = tx.ExecContext(ctx, `UPDATE subscribers SET name = ?, topics = ?, cadence = ?, source = ?, status = ?,
       joined_at = ?, watermark = 0, updated_at = ?
 WHERE id = ?`, in.Name, topics, in.Cadence, source, status, nowUS, nowUS, id)
		default:
			_, err = tx.ExecContext(ctx, `UPDATE subscribers SET name = ?, topics = ?, cadence = ?, updated_at = ?
 WHERE id = ?`, in.Name, topics, in.Cadence, nowUS, id)
		}
		if err != nil {
			return fmt.Errorf("add subscriber %s: %w", email, err)
		}
		sub, err = scanSubscriber(tx.QueryRowContext(ctx, `SELECT `+subscriberColumns+` FROM subscribers WHERE id = ?`, id))
		if err != nil {
			return fmt.Errorf("add subscriber %s: read back: %w", email, err)
		}
		return nil
	})
	return sub, err
}

// SubscriberByEmail looks an address up, case-insensitively.
func (s *SQLite) SubscriberByEmail(ctx context.Context, email string) (Subscriber, error) {
	sub, err := scanSubscriber(s.db.QueryRowContext(ctx, `SELECT `+subscriberColumns+` FROM subscribers WHERE email = ?`, normalizeEmail(email)))
	if errors.Is(err, sql.ErrNoRows) {
		return Subscriber{}, fmt.Errorf("subscriber %q: %w", email, ErrNotFound)
	}
	if err != nil {
		return Subscriber{}, fmt.Errorf("subscriber %q: %w", email, err)
	}
	return sub, nil
}

// SubscriberByID looks a subscriber up by id.
func (s *SQLite) SubscriberByID(ctx context.Context, id int64) (Subscriber, error) {
	sub, err := scanSubscriber(s.db.QueryRowContext(ctx, `SELECT `+subscriberColumns+` FROM subscribers WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Subscriber{}, fmt.Errorf("subscriber %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Subscriber{}, fmt.Errorf("subscriber %d: %w", id, err)
	}
	return sub, nil
}

// EachSubscriber pages through subscribers by id. No connection is held while fn
// runs, so fn may call the store (even write to it).
func (s *SQLite) EachSubscriber(ctx context.Context, statuses []string, fn func(Subscriber) error) error {
	query := `SELECT ` + subscriberColumns + ` FROM subscribers WHERE id > ?`
	args := []any{int64(0)}
	if len(statuses) > 0 {
		query += ` AND status IN (?` + strings.Repeat(`, ?`, len(statuses)-1) + `)`
		for _, st := range statuses {
			args = append(args, st)
		}
	}
	query += ` ORDER BY id LIMIT ?`
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

// SetStatus changes a subscriber's status. Setting active records the confirmation
// time when there was none and clears the hard-bounce count, since a person lifting
// a bounce suppression means to give the address a fresh start.
func (s *SQLite) SetStatus(ctx context.Context, id int64, status string, now time.Time) error {
	if !knownStatus(status) {
		return fmt.Errorf("set status of subscriber %d: unknown status %q", id, status)
	}
	nowUS := toMicros(now)
	res, err := s.exec(ctx, `UPDATE subscribers SET status = ?, updated_at = ?,
       confirmed_at = CASE WHEN ? = 'active' AND confirmed_at = 0 THEN ? ELSE confirmed_at END,
       hard_bounces = CASE WHEN ? = 'active' THEN 0 ELSE hard_bounces END
 WHERE id = ?`, status, nowUS, status, nowUS, status, id)
	return affectedOne(res, err, fmt.Sprintf("set status of subscriber %d", id))
}

// SetPreferences changes a subscriber's topics and cadence.
func (s *SQLite) SetPreferences(ctx context.Context, id int64, topics []string, cadence string, now time.Time) error {
	res, err := s.exec(ctx, `UPDATE subscribers SET topics = ?, cadence = ?, updated_at = ? WHERE id = ?`,
		encodeList(topics), cadence, toMicros(now), id)
	return affectedOne(res, err, fmt.Sprintf("set preferences of subscriber %d", id))
}

// CreateDigest records a new digest and returns its id.
func (s *SQLite) CreateDigest(ctx context.Context, now time.Time) (int64, error) {
	var id int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO digests (created_at) VALUES (?) RETURNING id`, toMicros(now)).Scan(&id)
	})
	if err != nil {
		return 0, fmt.Errorf("create digest: %w", err)
	}
	return id, nil
}

// PlanDeliveries records the pending deliveries of a digest and advances watermarks,
// all in one transaction. Watermarks only move forward.
func (s *SQLite) PlanDeliveries(ctx context.Context, digestID int64, planned []PlannedDelivery, now time.Time) error {
	nowUS := toMicros(now)
	return s.inTx(ctx, func(tx *sql.Tx) error {
		insert := tx.StmtContext(ctx, s.planInsertStmt)
		advance := tx.StmtContext(ctx, s.planAdvanceStmt)
		for _, p := range planned {
			mark := toMicros(p.Watermark)
			if len(p.PieceIDs) == 0 {
				// Due but nothing new: the subscriber was still served at this moment,
				// so a daily subscriber is not due again until the next send time.
				if _, err := advance.ExecContext(ctx, mark, mark, nowUS, nowUS, p.SubscriberID); err != nil {
					return fmt.Errorf("plan digest %d: subscriber %d: watermark: %w", digestID, p.SubscriberID, err)
				}
				continue
			}
			res, err := insert.ExecContext(ctx, digestID, p.SubscriberID, encodeList(p.PieceIDs), nowUS)
			if err != nil {
				return fmt.Errorf("plan digest %d: subscriber %d: %w", digestID, p.SubscriberID, err)
			}
			if n, err := res.RowsAffected(); err != nil || n == 0 {
				continue // already planned in this digest: leave it alone
			}
			if _, err := advance.ExecContext(ctx, mark, mark, nowUS, nowUS, p.SubscriberID); err != nil {
				return fmt.Errorf("plan digest %d: subscriber %d: watermark: %w", digestID, p.SubscriberID, err)
			}
		}
		return nil
	})
}

// PendingDeliveries returns the next due pending deliveries after afterID.
func (s *SQLite) PendingDeliveries(ctx context.Context, afterID int64, now time.Time, limit int) ([]Delivery, error) {
	if limit <= 0 {
		limit = defaultPendingPage
	}
	rows, err := s.pendingStmt.QueryContext(ctx, afterID, toMicros(now), limit)
	if err != nil {
		return nil, fmt.Errorf("pending deliveries after %d: %w", afterID, err)
	}
	defer rows.Close()
	out := make([]Delivery, 0, min(limit, 1024))
	for rows.Next() {
		var (
			d         Delivery
			pieces    string
			attempts  int64
			createdAt int64
		)
		if err := rows.Scan(&d.ID, &d.DigestID, &d.SubscriberID, &d.Email, &d.Name, &d.SubscriberStatus,
			&pieces, &attempts, &createdAt); err != nil {
			return nil, fmt.Errorf("pending deliveries after %d: %w", afterID, err)
		}
		if d.PieceIDs, err = decodeList(pieces); err != nil {
			return nil, fmt.Errorf("delivery %d: piece ids: %w", d.ID, err)
		}
		d.Attempts = int(attempts)
		d.CreatedAt = fromMicros(createdAt)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pending deliveries after %d: %w", afterID, err)
	}
	return out, nil
}

// RecordOutcomes applies a batch of outcomes in one transaction. Outcomes for rows
// no longer pending change nothing (and add no bounce). An outcome of an unknown
// kind is reported in the error, and the others are still recorded: what the server
// accepted must reach the ledger.
func (s *SQLite) RecordOutcomes(ctx context.Context, outcomes []Outcome, bounceLimit int) ([]int64, error) {
	if bounceLimit < 1 {
		bounceLimit = 1
	}
	var (
		bad        []error
		suppressed []int64
	)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		bad = bad[:0]
		suppressed = suppressed[:0]
		var (
			sent, retry, fail, skip, bounce *sql.Stmt
		)
		for _, o := range outcomes {
			at := o.At
			if at.IsZero() {
				at = time.Now()
			}
			atUS := toMicros(at)
			var (
				res sql.Result
				err error
			)
			switch o.Kind {
			case OutcomeSent:
				sent = stmtOnce(ctx, tx, sent, s.sentStmt)
				_, err = sent.ExecContext(ctx, o.MessageID, atUS, o.DeliveryID)
			case OutcomeRetry:
				retry = stmtOnce(ctx, tx, retry, s.retryStmt)
				_, err = retry.ExecContext(ctx, clip(o.Error), toMicros(o.NextAttempt), o.DeliveryID)
			case OutcomePermanent:
				fail = stmtOnce(ctx, tx, fail, s.failStmt)
				if res, err = fail.ExecContext(ctx, clip(o.Error), o.DeliveryID); err == nil {
					if n, _ := res.RowsAffected(); n == 1 {
						bounce = stmtOnce(ctx, tx, bounce, s.bounceStmt)
						var (
							id, bounces int64
							status      string
						)
						err = bounce.QueryRowContext(ctx, bounceLimit, atUS, o.DeliveryID).Scan(&id, &status, &bounces)
						// Reaching the limit exactly is the moment of suppression.
						if err == nil && status == StatusBounced && bounces == int64(bounceLimit) {
							suppressed = append(suppressed, id)
						}
					}
				}
			case OutcomeGaveUp:
				fail = stmtOnce(ctx, tx, fail, s.failStmt)
				_, err = fail.ExecContext(ctx, clip(o.Error), o.DeliveryID)
			case OutcomeSkipped:
				skip = stmtOnce(ctx, tx, skip, s.skipStmt)
				_, err = skip.ExecContext(ctx, clip(o.Error), o.DeliveryID)
			default:
				bad = append(bad, fmt.Errorf("delivery %d: unknown outcome kind %q", o.DeliveryID, o.Kind))
				continue
			}
			if err != nil {
				return fmt.Errorf("record outcome %s of delivery %d: %w", o.Kind, o.DeliveryID, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(bad) > 0 {
		return suppressed, fmt.Errorf("record outcomes: %w", errors.Join(bad...))
	}
	return suppressed, nil
}

// stmtOnce binds a prepared statement to tx the first time a batch needs it.
func stmtOnce(ctx context.Context, tx *sql.Tx, bound, stmt *sql.Stmt) *sql.Stmt {
	if bound != nil {
		return bound
	}
	return tx.StmtContext(ctx, stmt)
}

// CountDeliveries counts the ledger's rows by status.
func (s *SQLite) CountDeliveries(ctx context.Context) (DeliveryCounts, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT status, COUNT(*) FROM deliveries GROUP BY status`)
	if err != nil {
		return DeliveryCounts{}, fmt.Errorf("count deliveries: %w", err)
	}
	defer rows.Close()
	var c DeliveryCounts
	for rows.Next() {
		var (
			status string
			n      int64
		)
		if err := rows.Scan(&status, &n); err != nil {
			return DeliveryCounts{}, fmt.Errorf("count deliveries: %w", err)
		}
		switch status {
		case DeliveryPending:
			c.Pending = n
		case DeliverySent:
			c.Sent = n
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

// AcquireLease takes the lease if it is free, expired, or already holder's, in one
// statement, so racing processes cannot both win: the loser's upsert finds the
// winner's row and its WHERE leaves it unchanged.
func (s *SQLite) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, error) {
	if name == "" || holder == "" {
		return false, fmt.Errorf("acquire lease %q for %q: empty name or holder", name, holder)
	}
	if ttl <= 0 {
		return false, fmt.Errorf("acquire lease %q: ttl %v must be positive", name, ttl)
	}
	nowUS := toMicros(now)
	res, err := s.exec(ctx, `INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
 WHERE leases.holder = excluded.holder OR leases.expires_at <= ?`, name, holder, toMicros(now.Add(ttl)), nowUS)
	if err != nil {
		return false, fmt.Errorf("acquire lease %q for %q: %w", name, holder, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("acquire lease %q for %q: %w", name, holder, err)
	}
	return n == 1, nil
}

// EarliestPending returns when the next pending delivery comes due, or ErrNotFound.
func (s *SQLite) EarliestPending(ctx context.Context) (time.Time, error) {
	var next sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MIN(next_attempt) FROM deliveries WHERE status = 'pending'`).Scan(&next); err != nil {
		return time.Time{}, fmt.Errorf("earliest pending delivery: %w", err)
	}
	if !next.Valid {
		return time.Time{}, ErrNotFound
	}
	return fromMicros(next.Int64), nil
}

// LeaseHolder says who holds the named lease and until when, or ErrNotFound.
func (s *SQLite) LeaseHolder(ctx context.Context, name string) (string, time.Time, error) {
	var (
		holder string
		exp    int64
	)
	err := s.db.QueryRowContext(ctx, `SELECT holder, expires_at FROM leases WHERE name = ?`, name).Scan(&holder, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return "", time.Time{}, ErrNotFound
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("lease %q: %w", name, err)
	}
	return holder, fromMicros(exp), nil
}

// TakeLease moves the lease from a holder known to be dead to holder, only if from
// still holds it: compare-and-swap, so two processes cannot both take it over.
func (s *SQLite) TakeLease(ctx context.Context, name, from, holder string, ttl time.Duration, now time.Time) (bool, error) {
	res, err := s.exec(ctx, `UPDATE leases SET holder = ?, expires_at = ? WHERE name = ? AND holder = ?`,
		holder, toMicros(now.Add(ttl)), name, from)
	if err != nil {
		return false, fmt.Errorf("take lease %q from %q: %w", name, from, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("take lease %q from %q: %w", name, from, err)
	}
	return n == 1, nil
}

// FirstSeen returns the first-seen time of every piece the store knows.
func (s *SQLite) FirstSeen(ctx context.Context) (map[string]time.Time, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, first_seen FROM pieces`)
	if err != nil {
		return nil, fmt.Errorf("first seen: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var (
			id string
			us int64
		)
		if err := rows.Scan(&id, &us); err != nil {
			return nil, fmt.Errorf("first seen: %w", err)
		}
		out[id] = fromMicros(us)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("first seen: %w", err)
	}
	return out, nil
}

// ReleaseLease gives the lease up if holder has it; otherwise it does nothing.
func (s *SQLite) ReleaseLease(ctx context.Context, name, holder string) error {
	if _, err := s.exec(ctx, `DELETE FROM leases WHERE name = ? AND holder = ?`, name, holder); err != nil {
		return fmt.Errorf("release lease %q for %q: %w", name, holder, err)
	}
	return nil
}

// StartRun records the start of a publishing cycle.
func (s *SQLite) StartRun(ctx context.Context, now time.Time) (int64, error) {
	var id int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO runs (started_at) VALUES (?) RETURNING id`, toMicros(now)).Scan(&id)
	})
	if err != nil {
		return 0, fmt.Errorf("start run: %w", err)
	}
	return id, nil
}

// FinishRun records the end and outcome of a publishing cycle.
func (s *SQLite) FinishRun(ctx context.Context, id int64, ok bool, summary string, now time.Time) error {
	okInt := 0
	if ok {
		okInt = 1
	}
	res, err := s.exec(ctx, `UPDATE runs SET finished_at = ?, ok = ?, summary = ? WHERE id = ?`,
		toMicros(now), okInt, summary, id)
	return affectedOne(res, err, fmt.Sprintf("finish run %d", id))
}

// LastRun returns the most recently finished run.
func (s *SQLite) LastRun(ctx context.Context) (Run, error) {
	var (
		r                 Run
		started, finished int64
		ok                int64
	)
	err := s.db.QueryRowContext(ctx, `SELECT id, started_at, finished_at, ok, summary FROM runs
 WHERE finished_at <> 0 ORDER BY finished_at DESC, id DESC LIMIT 1`).Scan(&r.ID, &started, &finished, &ok, &r.Summary)
	if errors.Is(err, sql.ErrNoRows) {
		return Run{}, fmt.Errorf("last run: %w", ErrNotFound)
	}
	if err != nil {
		return Run{}, fmt.Errorf("last run: %w", err)
	}
	r.StartedAt = fromMicros(started)
	r.FinishedAt = fromMicros(finished)
	r.OK = ok != 0
	return r, nil
}

// retryBusy runs fn until it stops failing with SQLITE_BUSY, for up to about as
// long as busy_timeout would have waited.
func retryBusy(ctx context.Context, fn func() error) error {
	deadline := time.Now().Add(10 * time.Second)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		err := fn()
		var se *sqlite.Error
		if err == nil || !errors.As(err, &se) || se.Code()&0xff != sqliteBusy || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (after %w)", ctx.Err(), err)
		case <-time.After(wait):
		}
	}
}

// sqliteBusy is SQLite's primary result code SQLITE_BUSY.
const sqliteBusy = 5

func affectedOne(res sql.Result, err error, what string) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}

func knownStatus(status string) bool {
	switch status {
	case StatusPending, StatusActive, StatusGone:
		return true
	}
	return IsSuppressed(status)
}

func normalizeEmail(email string) string {
	return strings.ToLower(strings.TrimSpace(email))
}

// toMicros stores a time as UTC unix microseconds; the zero time is 0.
func toMicros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

func encodeList(list []string) string {
	if len(list) == 0 {
		return "[]"
	}
	b, err := json.Marshal(list)
	if err != nil { // cannot happen for []string
		return "[]"
	}
	return string(b)
}

func decodeList(s string) ([]string, error) {
	if s == "" || s == "[]" {
		return nil, nil
	}
	// Fast path for the usual slugs and topic names: with no backslash there is no
	// escaped quote, so `","` can only be a separator. It saves most of the
	// allocations of reading a page of the ledger.
	if len(s) >= 4 && strings.HasPrefix(s, `["`) && strings.HasSuffix(s, `"]`) && !strings.ContainsRune(s, '\\') {
		return strings.Split(s[2:len(s)-2], `","`), nil
	}
	var list []string
	if err := json.Unmarshal([]byte(s), &list); err != nil {
		return nil, err
	}
	return list, nil
}

func clip(s string) string {
	if len(s) <= maxErrorText {
		return s
	}
	// Cut on a rune boundary so the stored text stays valid UTF-8.
	cut := maxErrorText
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut]
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
