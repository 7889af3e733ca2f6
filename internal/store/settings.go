package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Setting returns the value recorded under name, or ErrNotFound.
func (s *SQLite) Setting(ctx context.Context, name string) (string, error) {
	var value string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, name).Scan(&value)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("setting %q: %w", name, err)
	}
	return value, nil
}

// SetSetting records value under name and returns the value in force: value
// itself, or, with keep and a value already recorded, that one (so two
// processes recording a first value at once agree on one).
func (s *SQLite) SetSetting(ctx context.Context, name, value string, keep bool, now time.Time) (string, error) {
	query := `INSERT INTO settings (name, value, updated_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`
	if keep {
		query = `INSERT INTO settings (name, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING`
	}
	var inForce string
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, query, name, value, toMicros(now)); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, name).Scan(&inForce)
	})
	if err != nil {
		return "", fmt.Errorf("set setting %q: %w", name, err)
	}
	return inForce, nil
}
