package pgtest

import (
	"context"
	"database/sql"
	"os"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// TestSchemasAreApart checks that two tests' schemas do not see each other's tables.
func TestSchemasAreApart(t *testing.T) {
	ctx := context.Background()
	a, err := sql.Open("pgx", DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := sql.Open("pgx", DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := a.ExecContext(ctx, `CREATE TABLE only_in_a (x INT)`); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ExecContext(ctx, `SELECT * FROM only_in_a`); err == nil {
		t.Fatal("a table of one schema is visible from another")
	}
	if _, err := a.ExecContext(ctx, `INSERT INTO only_in_a VALUES (1)`); err != nil {
		t.Fatal(err)
	}
}
