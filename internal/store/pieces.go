package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// piecesPerStatement keeps a statement's parameters (four per piece) well under
// both engines' limits (SQLite 32,766; PostgreSQL 65,535).
const piecesPerStatement = 500

// RecordPieces stores first-seen times for new ids and returns them for all ids.
func (s *DB) RecordPieces(ctx context.Context, pieces []PieceSeen, now time.Time) (map[string]time.Time, error) {
	seen := make(map[string]time.Time, len(pieces))
	nowUS := toMicros(now)
	for _, p := range pieces {
		if p.ID == "" {
			return nil, errors.New("record pieces: a piece has an empty id")
		}
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		// Many rows per statement: one statement per piece cost 9 µs a row, most
		// of it the statement's round trip rather than the database's work.
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
				q := strings.Replace(s.raw["record-pieces"], "{{values}}", valuesList(len(batch), 4), 1)
				if stmt, err = tx.PrepareContext(ctx, s.bind(q)); err != nil {
					return fmt.Errorf("record pieces: %w", err)
				}
				stmts[len(batch)] = stmt
			}
			args = args[:0]
			for _, p := range batch {
				args = append(args, p.ID, nowUS, p.Hash, nowUS)
			}
			if err := scanFirstSeen(stmt.QueryContext(ctx, args...))(seen); err != nil {
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

// FirstSeen returns the first-seen time of every piece the store knows.
func (s *DB) FirstSeen(ctx context.Context) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	if err := scanFirstSeen(s.db.QueryContext(ctx, s.sql["first-seen"]))(out); err != nil {
		return nil, fmt.Errorf("first seen: %w", err)
	}
	return out, nil
}

// PiecesSummary returns how many pieces the store knows and the latest of
// their first-seen times.
func (s *DB) PiecesSummary(ctx context.Context) (PiecesSummary, error) {
	var (
		sum    PiecesSummary
		newest int64
	)
	if err := s.db.QueryRowContext(ctx, s.sql["pieces-summary"]).Scan(&sum.Count, &newest); err != nil {
		return PiecesSummary{}, fmt.Errorf("pieces summary: %w", err)
	}
	if sum.Count > 0 {
		sum.Newest = fromMicros(newest)
	}
	return sum, nil
}

// scanFirstSeen reads (id, first_seen) rows into a map.
func scanFirstSeen(rows *sql.Rows, err error) func(into map[string]time.Time) error {
	return func(into map[string]time.Time) error {
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				id string
				us int64
			)
			if err := rows.Scan(&id, &us); err != nil {
				return err
			}
			into[id] = fromMicros(us)
		}
		return rows.Err()
	}
}
