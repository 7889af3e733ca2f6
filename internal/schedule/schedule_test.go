package schedule

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseAccepts(t *testing.T) {
	for _, spec := range []string{
		"@daily",
		"@hourly",
		"@every 15m",
		"*/5 * * * *",
		"0 7 * * 1-5",
		"CRON_TZ=Europe/Minsk 0 7 * * *",
		"TZ=UTC 30 6 * * *",
		"  CRON_TZ=Asia/Tokyo   @daily  ",
	} {
		if _, err := Parse(spec); err != nil {
			t.Errorf("Parse(%q): %v", spec, err)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for _, spec := range []string{
		"",
		"   ",
		"TZ=Europe/Minsk",         // panics inside robfig/cron
		"CRON_TZ=Europe/Minsk",    // same
		"CRON_TZ=Europe/Minsk   ", // nothing after the zone
		"TZ= 0 7 * * *",
		"CRON_TZ=Mars/Olympus_Mons 0 7 * * *",
		"@every -1s",
		"@every 0s",
		"@every soon",
		"@fortnightly",
		"61 * * * *",
		"* * *",
		"0 7 * * *\n0 8 * * *",
		"0 0 30 2 *",   // February 30th: parses, never fires
		"0 0 31 4,6 *", // April and June have 30 days
	} {
		_, err := Parse(spec)
		if err == nil {
			t.Errorf("Parse(%q): no error", spec)
			continue
		}
		if trimmed := strings.TrimSpace(spec); trimmed != "" && !strings.Contains(err.Error(), strings.Split(trimmed, "\n")[0]) {
			t.Errorf("Parse(%q) error %q does not name the spec", spec, err)
		}
	}
}

func TestParseNeverFiresSaysSo(t *testing.T) {
	_, err := Parse("0 0 30 2 *")
	if err == nil || !strings.Contains(err.Error(), "never fires") {
		t.Fatalf("err = %v", err)
	}
}

func TestParseAppliesTimeZone(t *testing.T) {
	sched, err := Parse("CRON_TZ=Europe/Minsk 0 7 * * *")
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	got := sched.Next(from).UTC()
	want := time.Date(2026, 3, 10, 4, 0, 0, 0, time.UTC) // Minsk is UTC+3
	if !got.Equal(want) {
		t.Fatalf("next = %s, want %s", got, want)
	}
}

func TestNewRefusesBadSpec(t *testing.T) {
	_, err := New(Options{Spec: "TZ=Europe/Minsk", Job: func(context.Context) error { return nil }})
	if err == nil || !strings.Contains(err.Error(), "TZ=Europe/Minsk") {
		t.Fatalf("err = %v, want an error naming the spec", err)
	}
}

// recorder is an slog handler that keeps the messages it sees.
type recorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Message)
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

func (r *recorder) count(msg string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

// waitFor polls cond until it holds; the long limit only keeps a broken test from
// hanging, it asserts nothing about speed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func stopNow(t *testing.T, s *Scheduler) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
}

func TestRunsNeverOverlap(t *testing.T) {
	rec := &recorder{}
	var inFlight, maxInFlight, runs atomic.Int32
	release := make(chan struct{})
	s, err := New(Options{
		Spec:   "@every 1s",
		Logger: slog.New(rec),
		Job: func(ctx context.Context) error {
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for {
				old := maxInFlight.Load()
				if n <= old || maxInFlight.CompareAndSwap(old, n) {
					break
				}
			}
			runs.Add(1)
			<-release
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Start(context.Background())
	waitFor(t, "the first run", func() bool { return runs.Load() == 1 })
	// Further ticks arrive while the first run is blocked: each must be skipped.
	waitFor(t, "two skipped ticks", func() bool { return rec.count("run skipped: previous run still in progress") >= 2 })
	if got := runs.Load(); got != 1 {
		t.Fatalf("%d runs started while the first was still running", got)
	}
	close(release)
	waitFor(t, "a later run", func() bool { return runs.Load() >= 2 })
	stopNow(t, s)
	if m := maxInFlight.Load(); m != 1 {
		t.Fatalf("max runs in flight = %d, want 1", m)
	}
	if rec.count("next run") == 0 {
		t.Fatal("no next-run line logged after a run")
	}
}

func TestRecoversFromPanic(t *testing.T) {
	rec := &recorder{}
	var runs atomic.Int32
	s, err := New(Options{
		Spec:   "@every 1s",
		Logger: slog.New(rec),
		Job: func(ctx context.Context) error {
			if runs.Add(1) == 1 {
				panic("boom")
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Start(context.Background())
	waitFor(t, "a run after the panic", func() bool { return runs.Load() >= 2 })
	stopNow(t, s)
	if rec.count("run panicked") != 1 {
		t.Fatalf("panic logged %d times, want 1", rec.count("run panicked"))
	}
}

func TestRunAtStartAndNext(t *testing.T) {
	var nexts []time.Time
	var mu sync.Mutex
	ran := make(chan struct{}, 1)
	s, err := New(Options{
		Spec:       "@daily",
		RunAtStart: true,
		OnNext: func(next time.Time) {
			mu.Lock()
			nexts = append(nexts, next)
			mu.Unlock()
		},
		Job: func(ctx context.Context) error {
			ran <- struct{}{}
			return errors.New("a failing run is logged, not fatal")
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	s.Start(context.Background())
	select {
	case <-ran:
	case <-time.After(30 * time.Second):
		t.Fatal("no run at start")
	}
	waitFor(t, "next run reported after the run", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(nexts) >= 2
	})
	stopNow(t, s)
	next := s.Next()
	if !next.After(before) || next.After(before.Add(25*time.Hour)) {
		t.Fatalf("Next() = %s, want within a day of %s", next, before)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, n := range nexts {
		if !n.After(before) {
			t.Fatalf("reported next run %s is not in the future", n)
		}
	}
}

func TestStopWaitsForRunInFlight(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	var finished atomic.Bool
	var cancelledEarly atomic.Bool
	s, err := New(Options{
		Spec:       "@daily",
		RunAtStart: true,
		Grace:      time.Hour, // never reached: the run finishes on its own
		Job: func(ctx context.Context) error {
			close(started)
			<-release
			cancelledEarly.Store(ctx.Err() != nil)
			finished.Store(true)
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Cancelling Start's context (as a signal handler would) must not cut the run.
	startCtx, cancelStart := context.WithCancel(context.Background())
	s.Start(startCtx)
	<-started
	cancelStart()

	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		stopped <- s.Stop(ctx)
	}()
	waitFor(t, "Stop to begin", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.stopping
	})
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) while the run was still going", err)
	default:
	}
	close(release)
	if err := <-stopped; err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if !finished.Load() {
		t.Fatal("Stop returned before the run finished")
	}
	if cancelledEarly.Load() {
		t.Fatal("run's context was cancelled within the grace period")
	}
}

func TestStopCancelsAfterGrace(t *testing.T) {
	started := make(chan struct{})
	var sawCancel, sawDrainFirst atomic.Bool
	var s *Scheduler
	s, err := New(Options{
		Spec:       "@daily",
		RunAtStart: true,
		Grace:      50 * time.Millisecond,
		Job: func(ctx context.Context) error {
			close(started)
			<-s.Stopping() // told to drain first...
			sawDrainFirst.Store(ctx.Err() == nil)
			<-ctx.Done() // ...then cancelled when the grace period is over
			sawCancel.Store(errors.Is(ctx.Err(), context.Canceled))
			return ctx.Err()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Start(context.Background())
	<-started
	stopNow(t, s)
	if !sawCancel.Load() {
		t.Fatal("the run's context was not cancelled after the grace period")
	}
	if !sawDrainFirst.Load() {
		t.Fatal("the run's context was cancelled before the grace period began")
	}
}

func TestStopGivesUpAtDeadline(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	s, err := New(Options{
		Spec:       "@daily",
		RunAtStart: true,
		Grace:      10 * time.Millisecond,
		Job: func(ctx context.Context) error {
			close(started)
			<-release // ignores its context
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Start(context.Background())
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop = %v, want a deadline error", err)
	}
}

func TestNoRunAfterStop(t *testing.T) {
	var runs atomic.Int32
	s, err := New(Options{Spec: "@every 1s", Job: func(context.Context) error { runs.Add(1); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	s.Start(context.Background())
	stopNow(t, s)
	n := runs.Load()
	// Run a job through the same path cron would: a stopped scheduler refuses it.
	s.runOnce()
	if runs.Load() != n {
		t.Fatal("a run started after Stop")
	}
}
