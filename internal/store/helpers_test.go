package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"publisher/internal/pgtest"
)

// TestMain starts a private PostgreSQL cluster for the tests that run on both
// engines (pgtest), and stops it afterwards.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// engines are the store's engines; every test of the Store's behaviour runs on each.
var engines = []string{"sqlite", "postgres"}

// forEachEngine runs fn as a subtest per engine, each on a new, empty store.
func forEachEngine(t *testing.T, fn func(t *testing.T, s *DB)) {
	t.Helper()
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			s, _ := openEngine(t, eng)
			fn(t, s)
		})
	}
}

// openEngine opens a new, empty store on eng; reopen opens another handle (a
// pool of its own, as another process would have) on the same database.
func openEngine(t testing.TB, eng string) (s *DB, reopen func() *DB) {
	t.Helper()
	var target string
	switch eng {
	case "sqlite":
		target = filepath.Join(t.TempDir(), "state", "publisher.db")
	case "postgres":
		target = pgtest.DSN(t)
	default:
		t.Fatalf("unknown engine %q", eng)
	}
	reopen = func() *DB {
		t.Helper()
		s, err := Open(context.Background(), eng, target)
		if err != nil {
			t.Fatalf("open %s: %v", eng, err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	return reopen(), reopen
}

// testLease is a live lease for a test's planning, claims and outcomes.
func testLease(t testing.TB, s *DB) Lease {
	t.Helper()
	l, err := s.AcquireLease(context.Background(), "test/"+t.Name(), "test", time.Hour)
	if err != nil {
		t.Fatalf("lease: %v", err)
	}
	return l
}

// pgDSN is a new schema on the test server, for tests that open it themselves.
func pgDSN(t testing.TB) string { return pgtest.DSN(t) }
