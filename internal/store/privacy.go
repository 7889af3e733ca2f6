package store

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// erasureKeySetting names the random key erasure hashes are made with. It is
// kept in the database itself, beside the hashes: it does not hide an address
// from whoever holds the database (who can hash a guess), and is not meant to.
// It makes the hashes this database's own, unlike a plain SHA-256 of an
// address, which is the identifier advertisers match people by across
// datasets. Being in the database, it moves with a backup and never changes
// with the configuration (a key from `secret` would forget every erasure when
// the secret is rotated).
const erasureKeySetting = "erasure_key"

// erasureHasher returns the function that hashes an address for the erasure
// list, recording a new key the first time one is needed. It must not be
// called inside a transaction (it may write one of its own).
func (s *DB) erasureHasher(ctx context.Context) (func(email string) string, error) {
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	if s.erasureKey == nil {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("erasure key: %w", err)
		}
		key, err := s.SetSetting(ctx, erasureKeySetting, hex.EncodeToString(b[:]), true, time.Now())
		if err != nil {
			return nil, fmt.Errorf("erasure key: %w", err)
		}
		s.erasureKey = []byte(key)
	}
	key := s.erasureKey
	return func(email string) string {
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(normalizeEmail(email)))
		return hex.EncodeToString(mac.Sum(nil))
	}, nil
}

// erasedAt says when the address hashed as hash was erased; zero when it
// was not.
func (s *DB) erasedAt(ctx context.Context, q queryer, hash string) (time.Time, error) {
	var at int64
	err := q.QueryRowContext(ctx, s.sql["erasure"], hash).Scan(&at)
	if errNoRows(err) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("erasures: %w", err)
	}
	return fromMicros(at), nil
}

// erasedError is ErrNotFound, and ErrErased with its date when the address
// was erased.
func (s *DB) erasedError(ctx context.Context, email string) error {
	hash, err := s.erasureHasher(ctx)
	if err != nil {
		return err
	}
	at, err := s.erasedAt(ctx, s.db, hash(email))
	if err != nil {
		return err
	}
	if at.IsZero() {
		return ErrNotFound
	}
	return fmt.Errorf("%w on %s: only a keyed hash of the address is kept (%w)", ErrErased, at.Format(time.DateOnly), ErrNotFound)
}

// Export returns all that is held about one address (see Store).
func (s *DB) Export(ctx context.Context, email string) (Person, error) {
	email = normalizeEmail(email)
	var p Person
	sub, err := s.SubscriberByEmail(ctx, email)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return Person{}, fmt.Errorf("export %s: %w", email, err)
	default:
		p.Subscriber = sub
		if p.History, err = s.StatusHistory(ctx, sub.ID); err != nil {
			return Person{}, fmt.Errorf("export %s: %w", email, err)
		}
		if p.Deliveries, err = s.personDeliveries(ctx, sub.ID); err != nil {
			return Person{}, fmt.Errorf("export %s: deliveries: %w", email, err)
		}
	}
	if p.Events, err = s.personEvents(ctx, sub.ID, email); err != nil {
		return Person{}, fmt.Errorf("export %s: events: %w", email, err)
	}
	if p.Subscriber.ID == 0 && len(p.Events) == 0 {
		return Person{}, fmt.Errorf("export %s: %w", email, s.erasedError(ctx, email))
	}
	return p, nil
}

func (s *DB) personDeliveries(ctx context.Context, id int64) ([]DeliveryRecord, error) {
	rows, err := s.db.QueryContext(ctx, s.sql["person-deliveries"], id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []DeliveryRecord
	for rows.Next() {
		var (
			d                        DeliveryRecord
			pieces                   string
			attempts                 int64
			next, sent, createdMicro int64
		)
		if err := rows.Scan(&d.ID, &d.DigestID, &d.Status, &pieces, &attempts, &next, &d.LastError, &d.MessageID, &sent, &createdMicro); err != nil {
			return nil, err
		}
		if d.PieceIDs, err = decodeList(pieces); err != nil {
			return nil, fmt.Errorf("delivery %d: piece ids: %w", d.ID, err)
		}
		d.Attempts = int(attempts)
		d.NextAttempt, d.SentAt, d.CreatedAt = fromMicros(next), fromMicros(sent), fromMicros(createdMicro)
		out = append(out, d)
	}
	return out, rows.Err()
}

func (s *DB) personEvents(ctx context.Context, id int64, email string) ([]EventRecord, error) {
	if id == 0 {
		id = -1 // events matched to nobody carry 0
	}
	rows, err := s.db.QueryContext(ctx, s.sql["person-events"], id, email)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []EventRecord
	for rows.Next() {
		var (
			e            EventRecord
			at, received int64
		)
		if err := rows.Scan(&e.Source, &e.ID, &e.Kind, &e.Recipient, &e.MessageID, &e.Status, &e.Diagnostic, &at, &received, &e.DeliveryID, &e.Effect); err != nil {
			return nil, err
		}
		e.At, e.ReceivedAt = fromMicros(at), fromMicros(received)
		out = append(out, e)
	}
	return out, rows.Err()
}

// Erase deletes all that is held about one address and keeps its keyed hash
// (see Store).
func (s *DB) Erase(ctx context.Context, email string, now time.Time) (Erasure, error) {
	email = normalizeEmail(email)
	if email == "" {
		return Erasure{}, errors.New("erase: empty email")
	}
	hash, err := s.erasureHasher(ctx)
	if err != nil {
		return Erasure{}, fmt.Errorf("erase %s: %w", email, err)
	}
	run := s.inTx
	if s.eng.scrub != nil {
		run = func(ctx context.Context, fn func(tx *sql.Tx) error) error { return s.eng.scrub(ctx, s, fn) }
	}
	var res Erasure
	err = run(ctx, func(tx *sql.Tx) error {
		res = Erasure{}
		var (
			id     int64
			status string
		)
		err := tx.QueryRowContext(ctx, s.sql["subscriber-status-for-update"], email).Scan(&id, &status)
		if err != nil && !errNoRows(err) {
			return err
		}
		res.Subscriber = err == nil
		if res.Subscriber {
			clock, err := s.eng.clock(ctx, tx)
			if err != nil {
				return err
			}
			var held int
			if err := tx.QueryRowContext(ctx, s.sql["erase-held"], id, clock).Scan(&held); err != nil {
				return err
			}
			if held > 0 {
				return ErrInFlight
			}
		}
		eventsOf := id
		if !res.Subscriber {
			eventsOf = -1 // events matched to nobody carry 0
		}
		steps := []struct {
			n    *int64
			name string
			args []any
		}{
			{&res.Events, "erase-events", []any{eventsOf, email}},
			{&res.Deliveries, "erase-deliveries", []any{id}},
			{&res.History, "erase-history", []any{id}},
			{nil, "erase-subscriber", []any{id}},
		}
		for _, st := range steps {
			if !res.Subscriber && st.name != "erase-events" {
				continue
			}
			r, err := tx.ExecContext(ctx, s.sql[st.name], st.args...)
			if err != nil {
				return fmt.Errorf("%s: %w", st.name, err)
			}
			if st.n != nil {
				if *st.n, err = r.RowsAffected(); err != nil {
					return err
				}
			}
		}
		_, err = tx.ExecContext(ctx, s.sql["record-erasure"], hash(email), toMicros(now))
		return err
	})
	if err != nil {
		return Erasure{}, fmt.Errorf("erase %s: %w", email, err)
	}
	return res, nil
}
