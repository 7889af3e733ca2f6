package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

// postgresEngine: one server, any number of publisher processes. Writers run
// side by side under row locks; senders claim deliveries with SKIP LOCKED;
// leases are judged by the server's clock, so replicas whose clocks disagree
// still agree on when a lease has expired.
func postgresEngine() engine {
	return engine{
		name:       "postgres",
		words:      map[string]string{"skip_locked": "FOR UPDATE SKIP LOCKED", "for_share": "FOR SHARE", "for_update": "FOR UPDATE"},
		numbered:   true,
		sharedSend: true,
		analyze:    "ANALYZE deliveries",
		batchSent:  true,
		clock: func(ctx context.Context, q queryer) (int64, error) {
			var us int64
			err := q.QueryRowContext(ctx, `SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT`).Scan(&us)
			if err != nil {
				return 0, fmt.Errorf("read the server's clock: %w", err)
			}
			return us, nil
		},
		serialize: func(ctx context.Context, tx *sql.Tx, key int64) error {
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, key); err != nil {
				return fmt.Errorf("advisory lock %d: %w", key, err)
			}
			return nil
		},
	}
}

// OpenPostgres connects to the PostgreSQL server dsn names (a postgres:// URL or
// key=value string, as libpq takes) and brings the schema up to date.
func OpenPostgres(ctx context.Context, dsn string) (*DB, error) {
	if dsn == "" {
		return nil, errors.New("open postgres: empty dsn")
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres %s: %w", redactDSN(dsn), err)
	}
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open postgres %s: %w", redactDSN(dsn), err)
	}
	s, err := open(ctx, db, postgresEngine(), "migrations/postgres")
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open postgres %s: %w", redactDSN(dsn), err)
	}
	return s, nil
}

// redactDSN hides a password in a URL-form connection string, for messages.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return "(connection string)"
	}
	return u.Redacted()
}

// Open opens the store the driver names: "sqlite" with target the database
// file's path, or "postgres" with target the connection string.
func Open(ctx context.Context, driver, target string) (*DB, error) {
	switch driver {
	case "sqlite":
		return OpenSQLite(ctx, target)
	case "postgres":
		return OpenPostgres(ctx, target)
	}
	return nil, fmt.Errorf("store: unknown driver %q (want sqlite or postgres)", driver)
}
