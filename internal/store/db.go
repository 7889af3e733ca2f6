package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Storage choices, the same for both engines:
//   - times are BIGINT unix microseconds in UTC, 0 meaning "never" (zero time.Time);
//     integers compare and index the same in both engines and need no time parsing;
//   - lists (topics, a delivery's piece ids) are JSON arrays in TEXT columns: a
//     delivery's pieces are written once and read whole with its row, so a child
//     table would multiply the ledger's inserts and need a second query per page;
//   - the statements are written once (queries/*.sql) and the engine puts in
//     what differs: placeholders, row locks, the clock, serialising writers.

const (
	subscriberPageSize = 500
	defaultPendingPage = 500
	maxErrorText       = 1000
)

// DB is the Store on a SQL database: SQLite (one file on one machine) or
// PostgreSQL (one server, several replicas). Open it with OpenSQLite,
// OpenPostgres or Open.
type DB struct {
	db  *sql.DB
	eng engine
	// sql holds every statement ready to run on this engine; raw the same with
	// "?" placeholders, for statements completed at run time.
	sql, raw queries
	// writeMu queues this process's writers in Go when the engine takes one
	// writer at a time (SQLite), rather than in its busy handler, which polls.
	writeMu sync.Mutex
	// prepared holds the statements of the send path, prepared once.
	prepared map[string]*sql.Stmt
	// erasureKey keys the hashes of erased addresses, read (or made) once.
	keyMu      sync.Mutex
	erasureKey []byte
}

var _ Store = (*DB)(nil)

// engine is what differs between the two databases.
type engine struct {
	name string
	// words fill the engine words of queries/*.sql.
	words map[string]string
	// numbered: placeholders are $1, $2, ... (PostgreSQL), not "?".
	numbered bool
	// oneWriter: the database lets one writer in at a time (SQLite).
	oneWriter bool
	// sharedSend: several processes may send at once, each claiming rows.
	sharedSend bool
	// clock reads the time that leases are judged by.
	clock func(ctx context.Context, q queryer) (int64, error)
	// batchSent: write a run of sent outcomes in one statement. A round trip to
	// PostgreSQL costs more than the statement; SQLite, in the process, runs
	// its prepared one-row statement faster than it parses a long one (64
	// outcomes: 0.6 ms one by one, 0.9 ms in one statement).
	batchSent bool
	// analyze refreshes the query planner's statistics of the ledger ("" when
	// the engine needs no help).
	analyze string
	// serialize, inside a write transaction, waits until no other transaction
	// holding the same key is running (PostgreSQL's advisory locks); nil when
	// writers are serialised anyway.
	serialize func(ctx context.Context, tx *sql.Tx, key int64) error
	// scrub, when set, runs an erasure so that what it deletes leaves no copy
	// in the database's files; nil runs it as any other transaction.
	scrub func(ctx context.Context, s *DB, fn func(tx *sql.Tx) error) error
}

// Keys for engine.serialize.
const (
	lockMigrations int64 = 7_301_001
	lockSync       int64 = 7_301_002
)

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// hotStatements are prepared once at open: the send path runs them per message.
var hotStatements = []string{
	"outcome-sent", "outcome-retry", "outcome-failed", "outcome-skipped",
	"claim-deliveries",
}

// open finishes opening db for eng: loads the statements, migrates, prepares.
func open(ctx context.Context, db *sql.DB, eng engine, migrationDir string) (*DB, error) {
	s := &DB{db: db, eng: eng, prepared: map[string]*sql.Stmt{}}
	raw, err := loadQueries(queryFiles, eng.words)
	if err != nil {
		return nil, err
	}
	s.raw = raw
	s.sql = queries{}
	for name, q := range raw {
		s.sql[name] = s.bind(q)
	}
	migrations, err := loadMigrations(migrationFiles, migrationDir)
	if err != nil {
		return nil, err
	}
	if err := s.migrate(ctx, migrations); err != nil {
		return nil, err
	}
	for _, name := range hotStatements {
		stmt, err := db.PrepareContext(ctx, s.sql[name])
		if err != nil {
			return nil, fmt.Errorf("prepare %s: %w", name, err)
		}
		s.prepared[name] = stmt
	}
	return s, nil
}

// bind numbers q's placeholders when the engine wants it.
func (s *DB) bind(q string) string {
	if s.eng.numbered {
		return numberPlaceholders(q)
	}
	return q
}

// Engine names the database engine.
func (s *DB) Engine() string { return s.eng.name }

// SharedSend reports whether several processes may send at once.
func (s *DB) SharedSend() bool { return s.eng.sharedSend }

// Close releases the prepared statements and the connections.
func (s *DB) Close() error {
	for _, stmt := range s.prepared {
		_ = stmt.Close()
	}
	return s.db.Close()
}

// Ping checks that the database answers.
func (s *DB) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s: %w", s.eng.name, err)
	}
	return nil
}

// inTx runs fn in one write transaction, committed when fn returns nil.
func (s *DB) inTx(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	return s.inTxOn(ctx, s.db, fn)
}

// beginner is the pool, or one connection taken from it.
type beginner interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

// inTxOn is inTx on a given connection.
func (s *DB) inTxOn(ctx context.Context, on beginner, fn func(tx *sql.Tx) error) (err error) {
	if s.eng.oneWriter {
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
	}
	tx, err := on.BeginTx(ctx, nil)
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

// exec runs one named write statement outside an explicit transaction.
func (s *DB) exec(ctx context.Context, name string, args ...any) (sql.Result, error) {
	if s.eng.oneWriter {
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
	}
	return s.db.ExecContext(ctx, s.sql[name], args...)
}

// insertID runs a named INSERT ... RETURNING id in a write transaction.
func (s *DB) insertID(ctx context.Context, name string, args ...any) (int64, error) {
	var id int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, s.sql[name], args...).Scan(&id)
	})
	return id, err
}

// stmt binds a prepared statement to tx.
func (s *DB) stmt(ctx context.Context, tx *sql.Tx, name string) *sql.Stmt {
	return tx.StmtContext(ctx, s.prepared[name])
}

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

// errNoRows tells sql.ErrNoRows apart.
func errNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
