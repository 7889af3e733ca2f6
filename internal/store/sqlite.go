package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"modernc.org/sqlite" // registers the pure-Go "sqlite" driver
)

// sqliteEngine: one file on one machine. Several processes may open it: SQLite
// lets one write at a time, every write transaction begins IMMEDIATE (taking the
// write lock up front, so two writers never deadlock upgrading a read lock), and
// busy_timeout makes the others wait their turn. Leases are judged by this
// machine's clock, which every process sharing the file reads.
func sqliteEngine() engine {
	return engine{
		name:      "sqlite",
		words:     map[string]string{"skip_locked": "", "for_share": "", "for_update": ""},
		oneWriter: true,
		clock: func(context.Context, queryer) (int64, error) {
			return time.Now().UnixMicro(), nil
		},
		scrub: scrubSQLite,
	}
}

// scrubSQLite runs fn (an erasure) on a connection of its own with
// secure_delete on, so that SQLite overwrites what it deletes instead of
// leaving it in free space, then checkpoints the write-ahead log into the
// file and truncates it, so that no old copy of a page stays there either.
// The checkpoint is best effort: a reader holding an old snapshot defers it
// to a later checkpoint.
func scrubSQLite(ctx context.Context, s *DB, fn func(tx *sql.Tx) error) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA secure_delete = ON`); err != nil {
		return fmt.Errorf("secure_delete: %w", err)
	}
	// The connection goes back to the pool: leave the pragma as the others have it.
	defer func() { _, _ = conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA secure_delete = FAST`) }()
	if err := s.inTxOn(ctx, conn, fn); err != nil {
		return err
	}
	var busy, frames, done int
	_ = conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &frames, &done)
	return nil
}

// sqliteDSN builds the connection string; pragmas go in it so that every
// connection of the pool gets them, not only the first.
func sqliteDSN(path string) string {
	// SQLite parses the name as a URI: escape what would end the path early.
	escaped := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	return "file:" + escaped +
		"?_pragma=busy_timeout(10000)" +
		"&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(NORMAL)" +
		"&_pragma=foreign_keys(1)" +
		// Deleted content is zeroed where that costs no extra I/O, so what an
		// update or delete leaves behind does not linger in the file's free
		// space (an erasure turns it fully on: scrubSQLite).
		"&_pragma=secure_delete(FAST)" +
		"&_txlock=immediate"
}

// OpenSQLite opens (creating if needed) the database at path, with its parent
// directory, and brings its schema up to date.
func OpenSQLite(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("open sqlite: empty path")
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("open sqlite %s: create directory: %w", path, err)
		}
	}
	db, err := sql.Open("sqlite", sqliteDSN(path))
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// A small pool: readers run side by side under WAL, writers queue on writeMu.
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	// A brand-new file is switched to WAL by the first connection, which needs an
	// exclusive lock; SQLite answers BUSY without waiting when two processes (or
	// pools) do that at the same instant. It happens once per file, so retry.
	var s *DB
	err = retryBusy(ctx, func() error {
		if err := db.PingContext(ctx); err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		var err error
		s, err = open(ctx, db, sqliteEngine(), "migrations/sqlite")
		return err
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return s, nil
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
