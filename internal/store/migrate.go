package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// migrationFiles holds the schema of each engine as numbered SQL files
// (migrations/<engine>/0001_init.sql, ...), applied in order; a file, once
// released, is never edited: changes go into a new number, for both engines.
//
//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the embedded files and orders them by their number.
func loadMigrations(files fs.FS, dir string) ([]migration, error) {
	entries, err := fs.ReadDir(files, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var out []migration
	seen := map[int]string{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		number, _, ok := strings.Cut(name, "_")
		version, err := strconv.Atoi(number)
		if !ok || err != nil || version <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive number and '_'", name)
		}
		if prev, dup := seen[version]; dup {
			return nil, fmt.Errorf("migration %s: version %d already used by %s", name, version, prev)
		}
		seen[version] = name
		body, err := fs.ReadFile(files, path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", name, err)
		}
		out = append(out, migration{version: version, name: name, sql: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// migrate applies every migration not yet recorded in schema_migrations, each in its
// own write transaction. The applied check is repeated inside the transaction, under
// the write lock (SQLite) or an advisory lock (PostgreSQL), so two processes opening
// the same new database apply each version once.
func (s *DB) migrate(ctx context.Context, migrations []migration) error {
	// On every start but the first after an upgrade there is nothing to apply:
	// one read tells, where the write transactions below take a lock each.
	if s.allApplied(ctx, migrations) {
		return nil
	}
	// In a write transaction (BEGIN IMMEDIATE on SQLite), not autocommit: an
	// autocommit CREATE would read the schema first and then fail to upgrade to a
	// writer, without waiting, if another process wrote in between.
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.serialize(ctx, tx, lockMigrations); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.sql["migrations-create"])
		return err
	})
	if err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	for _, m := range migrations {
		if err := s.applyMigration(ctx, m, time.Now()); err != nil {
			return err
		}
	}
	return nil
}

// allApplied reports whether schema_migrations lists every migration; false
// when it cannot tell (no such table yet).
func (s *DB) allApplied(ctx context.Context, migrations []migration) bool {
	rows, err := s.db.QueryContext(ctx, s.sql["migrations-applied"])
	if err != nil {
		return false
	}
	defer rows.Close()
	applied := map[int]bool{}
	for rows.Next() {
		var v int
		if rows.Scan(&v) != nil {
			return false
		}
		applied[v] = true
	}
	if rows.Err() != nil {
		return false
	}
	for _, m := range migrations {
		if !applied[m.version] {
			return false
		}
	}
	return true
}

func (s *DB) applyMigration(ctx context.Context, m migration, now time.Time) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.serialize(ctx, tx, lockMigrations); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		var applied int
		if err := tx.QueryRowContext(ctx, s.sql["migration-applied"], m.version).Scan(&applied); err != nil {
			return fmt.Errorf("migration %s: check: %w", m.name, err)
		}
		if applied > 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, s.sql["migration-record"], m.version, toMicros(now)); err != nil {
			return fmt.Errorf("migration %s: record: %w", m.name, err)
		}
		return nil
	})
}

// serialize waits, inside tx, for other transactions holding key to end, on an
// engine that lets writers run side by side.
func (s *DB) serialize(ctx context.Context, tx *sql.Tx, key int64) error {
	if s.eng.serialize == nil {
		return nil
	}
	return s.eng.serialize(ctx, tx, key)
}
