package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestSettings(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			s, reopen := openEngine(t, eng)
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
			// Processes recording a first value at once agree on one.
			s2 := reopen()
			var (
				wg  sync.WaitGroup
				mu  sync.Mutex
				got = map[string]bool{}
			)
			for i, h := range []*DB{s, s2, s, s2} {
				wg.Go(func() {
					v, err := h.SetSetting(ctx, "installation", string(rune('a'+i)), true, now)
					if err != nil {
						t.Error(err)
					}
					mu.Lock()
					got[v] = true
					mu.Unlock()
				})
			}
			wg.Wait()
			if len(got) != 1 {
				t.Fatalf("first values in force: %v, want one", got)
			}
			if v, err := s2.Setting(ctx, "site.first_base_url"); err != nil || v != "https://a.example/" {
				t.Fatalf("from another handle: %q, %v", v, err)
			}
		})
	}
}
