package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Setting returns the value recorded under name, or ErrNotFound.
func (s *DB) Setting(ctx context.Context, name string) (string, error) {
	var value string
	err := s.db.QueryRowContext(ctx, s.sql["setting"], name).Scan(&value)
	if errNoRows(err) {
		return "", fmt.Errorf("setting %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("setting %q: %w", name, err)
	}
	return value, nil
}

// SetSetting records value under name and returns the value in force: value
// itself, or, with keep and a value already recorded, that one.
func (s *DB) SetSetting(ctx context.Context, name, value string, keep bool, now time.Time) (string, error) {
	query := "set-setting"
	if keep {
		query = "keep-setting"
	}
	var inForce string
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.sql[query], name, value, toMicros(now)); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, s.sql["setting"], name).Scan(&inForce)
	})
	if err != nil {
		return "", fmt.Errorf("set setting %q: %w", name, err)
	}
	return inForce, nil
}
