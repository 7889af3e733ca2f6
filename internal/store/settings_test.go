package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestSettings(t *testing.T) {
	s, path := openTest(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	if _, err := s.Setting(ctx, "site.first_base_url"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unset setting: %v", err)
	}
	// keep: the first value recorded stays.
	for _, v := range []string{"https://a.example/", "https://b.example/"} {
		got, err := s.SetSetting(ctx, "site.first_base_url", v, true, now)
		if err != nil || got != "https://a.example/" {
			t.Fatalf("SetSetting(%q, keep) = %q, %v", v, got, err)
		}
	}
	// Without keep the value is replaced.
	if got, err := s.SetSetting(ctx, "other", "1", false, now); err != nil || got != "1" {
		t.Fatalf("SetSetting = %q, %v", got, err)
	}
	if got, err := s.SetSetting(ctx, "other", "2", false, now); err != nil || got != "2" {
		t.Fatalf("SetSetting replace = %q, %v", got, err)
	}
	// It survives reopening the file.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got, err := s2.Setting(ctx, "site.first_base_url"); err != nil || got != "https://a.example/" {
		t.Fatalf("after reopening: %q, %v", got, err)
	}
}
