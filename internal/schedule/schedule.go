// Package schedule runs publisher's cycle on a cron schedule in the long-running
// daemon: specs are validated before robfig/cron sees them, runs never overlap,
// a panicking run is logged and the next one still happens, and shutdown lets the
// run in flight finish within a grace period before cancelling it.
package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
)

// Parse validates spec and returns its schedule. It accepts the five-field cron
// syntax, descriptors (@daily, @hourly, @every 15m, ...) and a CRON_TZ= or TZ=
// time-zone prefix. Every error names the spec.
func Parse(spec string) (cron.Schedule, error) {
	trimmed := strings.TrimSpace(spec)
	if trimmed == "" {
		return nil, errors.New("schedule: empty cron spec")
	}
	if strings.ContainsAny(trimmed, "\r\n") {
		return nil, fmt.Errorf("schedule %q: line break in cron spec", spec)
	}
	rest := trimmed
	for _, prefix := range []string{"CRON_TZ=", "TZ="} {
		if !strings.HasPrefix(rest, prefix) {
			continue
		}
		// The library slices up to the first space without checking there is one,
		// and panics; refuse that shape here, and name a bad zone ourselves.
		zone, after, ok := strings.Cut(rest[len(prefix):], " ")
		if !ok || strings.TrimSpace(after) == "" {
			return nil, fmt.Errorf("schedule %q: %s must be followed by a space and a cron expression", spec, prefix)
		}
		if zone == "" {
			return nil, fmt.Errorf("schedule %q: empty time zone after %s", spec, prefix)
		}
		if _, err := time.LoadLocation(zone); err != nil {
			return nil, fmt.Errorf("schedule %q: unknown time zone %q: %w", spec, zone, err)
		}
		rest = strings.TrimSpace(after)
		trimmed = prefix + zone + " " + rest
		break
	}
	if every, ok := strings.CutPrefix(rest, "@every "); ok {
		d, err := time.ParseDuration(strings.TrimSpace(every))
		if err != nil {
			return nil, fmt.Errorf("schedule %q: bad @every duration: %w", spec, err)
		}
		if d <= 0 {
			return nil, fmt.Errorf("schedule %q: @every needs a positive duration", spec)
		}
	}
	return parseGuarded(spec, trimmed)
}

// parseGuarded turns any panic left in the library's parser into an error, so a
// configuration mistake can never bring the daemon down.
func parseGuarded(spec, normalized string) (sched cron.Schedule, err error) {
	defer func() {
		if r := recover(); r != nil {
			sched, err = nil, fmt.Errorf("schedule %q: invalid cron spec (%v)", spec, r)
		}
	}()
	sched, err = cron.ParseStandard(normalized)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w", spec, err)
	}
	// The library looks five years ahead and gives the zero time when it finds
	// nothing: "0 0 30 2 *" (February 30th) parses and never runs.
	if sched.Next(time.Now()).IsZero() {
		return nil, fmt.Errorf("schedule %q: never fires (no such date in the next five years)", spec)
	}
	return sched, nil
}

// Options configure a Scheduler.
type Options struct {
	// Spec is the cron spec (validated with Parse).
	Spec string
	// Job is one publishing cycle. Its context is cancelled only when Stop's grace
	// period has passed, never by the context given to Start.
	Job func(ctx context.Context) error
	// RunAtStart runs the job once right after Start (still never overlapping).
	RunAtStart bool
	// Grace is how long Stop lets a run in flight go on before cancelling its
	// context. The job is expected to finish the messages on the wire then and
	// leave the rest pending.
	Grace time.Duration
	// OnNext, when set, is told the next run time at start and after each run
	// (for example Metrics.SetNextRun).
	OnNext func(time.Time)
	Logger *slog.Logger
}

// Scheduler runs one job on a cron schedule.
type Scheduler struct {
	opts    Options
	sched   cron.Schedule
	cron    *cron.Cron
	entryID cron.EntryID
	logger  *slog.Logger

	mu        sync.Mutex
	started   bool
	stopping  bool
	stopped   chan struct{} // closed when Stop begins
	baseCtx   context.Context
	cancelRun context.CancelFunc // of the run in flight, nil when idle
	running   sync.WaitGroup     // runs in flight, including the one at start
}

// New validates the options and prepares a Scheduler; Start starts it.
func New(opts Options) (*Scheduler, error) {
	sched, err := Parse(opts.Spec)
	if err != nil {
		return nil, err
	}
	if opts.Job == nil {
		return nil, errors.New("schedule: no job")
	}
	if opts.Grace < 0 {
		return nil, fmt.Errorf("schedule: negative shutdown grace %s", opts.Grace)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cl := cronLogger{logger}
	s := &Scheduler{opts: opts, sched: sched, logger: logger, stopped: make(chan struct{})}
	// Skip before Recover: a panicking run must still release the skip slot, and a
	// skipped tick must not count as a run.
	s.cron = cron.New(
		cron.WithChain(cron.SkipIfStillRunning(cl), cron.Recover(cl)),
		cron.WithLogger(cl),
	)
	s.entryID = s.cron.Schedule(sched, cron.FuncJob(s.runOnce))
	return s, nil
}

// Start begins scheduling. ctx supplies values (not cancellation) to the runs:
// stopping is Stop's job, so a signal cancelling ctx does not cut a run short.
func (s *Scheduler) Start(ctx context.Context) {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return
	}
	s.started = true
	s.baseCtx = context.WithoutCancel(ctx)
	s.mu.Unlock()

	s.cron.Start()
	next := s.sched.Next(time.Now())
	s.logger.Info("scheduler started", "spec", s.opts.Spec, "next_run", next, "run_at_start", s.opts.RunAtStart)
	s.reportNext(next)
	if s.opts.RunAtStart {
		// The entry's wrapped job shares SkipIfStillRunning's slot with the
		// scheduled runs, so this run cannot overlap them either.
		wrapped := s.cron.Entry(s.entryID).WrappedJob
		go wrapped.Run()
	}
}

// Stopping is closed as soon as Stop is called, before the grace period: a job
// that can drain (send what is on the wire, start nothing new) watches it, while
// its context is cancelled only when the grace period is over.
func (s *Scheduler) Stopping() <-chan struct{} { return s.stopped }

// Next returns the time of the next scheduled run.
func (s *Scheduler) Next() time.Time {
	if e := s.cron.Entry(s.entryID); !e.Next.IsZero() && e.Next.After(time.Now()) {
		return e.Next
	}
	return s.sched.Next(time.Now())
}

func (s *Scheduler) reportNext(next time.Time) {
	if s.opts.OnNext != nil {
		s.opts.OnNext(next)
	}
}

// runOnce is the job cron calls (through its chain).
func (s *Scheduler) runOnce() {
	s.mu.Lock()
	if s.stopping || !s.started {
		s.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(s.baseCtx)
	s.cancelRun = cancel
	s.running.Add(1)
	s.mu.Unlock()

	start := time.Now()
	defer func() {
		s.mu.Lock()
		s.cancelRun = nil
		stopping := s.stopping
		s.mu.Unlock()
		cancel()
		s.running.Done()
		if !stopping {
			next := s.Next()
			s.logger.Info("next run", "next_run", next)
			s.reportNext(next)
		}
	}()

	s.logger.Info("run started")
	err := s.opts.Job(ctx)
	if err != nil {
		s.logger.Error("run failed", "duration", time.Since(start).Round(time.Millisecond), "err", err)
		return
	}
	s.logger.Info("run finished", "duration", time.Since(start).Round(time.Millisecond))
}

// Stop stops scheduling, lets a run in flight go on for the grace period, then
// cancels its context, and waits for it to return until ctx is done. It returns an
// error when ctx ends first (the run is cancelled then at the latest).
func (s *Scheduler) Stop(ctx context.Context) error {
	s.mu.Lock()
	if !s.stopping {
		s.stopping = true
		close(s.stopped)
	}
	s.mu.Unlock()

	cronDone := s.cron.Stop()
	done := make(chan struct{})
	go func() {
		<-cronDone.Done()
		s.running.Wait()
		close(done)
	}()

	grace := time.NewTimer(s.opts.Grace)
	defer grace.Stop()
	graceC := grace.C
	for {
		select {
		case <-done:
			s.logger.Info("scheduler stopped")
			return nil
		case <-graceC:
			graceC = nil
			if s.cancelInFlight() {
				s.logger.Warn("shutdown grace period over, cancelling the run in flight", "grace", s.opts.Grace)
			}
		case <-ctx.Done():
			s.cancelInFlight()
			return fmt.Errorf("schedule: run still in flight at shutdown deadline: %w", ctx.Err())
		}
	}
}

func (s *Scheduler) cancelInFlight() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancelRun == nil {
		return false
	}
	s.cancelRun()
	return true
}

// cronLogger sends robfig/cron's log lines to slog. Its routine chatter (wake,
// run, schedule) goes to Debug; a skipped tick is worth an Info line.
type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) {
	if msg == "skip" {
		c.l.Info("run skipped: previous run still in progress")
		return
	}
	c.l.Debug("cron: "+msg, kv...)
}

func (c cronLogger) Error(err error, msg string, kv ...any) {
	if msg == "panic" {
		msg = "run panicked"
	}
	c.l.Error(msg, append(kv, "err", err)...)
}
