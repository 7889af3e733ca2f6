package store

import (
	"context"
	"fmt"
	"time"
)

// StartRun records the start of a publishing cycle.
func (s *DB) StartRun(ctx context.Context, now time.Time) (int64, error) {
	id, err := s.insertID(ctx, "start-run", toMicros(now))
	if err != nil {
		return 0, fmt.Errorf("start run: %w", err)
	}
	return id, nil
}

// FinishRun records the end and outcome of a publishing cycle.
func (s *DB) FinishRun(ctx context.Context, id int64, ok bool, summary string, now time.Time) error {
	okInt := 0
	if ok {
		okInt = 1
	}
	res, err := s.exec(ctx, "finish-run", toMicros(now), okInt, summary, id)
	return affectedOne(res, err, fmt.Sprintf("finish run %d", id))
}

// LastRun returns the most recently finished run.
func (s *DB) LastRun(ctx context.Context) (Run, error) {
	var (
		r                 Run
		started, finished int64
		ok                int64
	)
	err := s.db.QueryRowContext(ctx, s.sql["last-run"]).Scan(&r.ID, &started, &finished, &ok, &r.Summary)
	if errNoRows(err) {
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
