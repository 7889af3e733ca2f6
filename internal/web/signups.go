package web

import (
	"context"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"publisher/internal/store"
)

const (
	// signupQueueSize bounds the sign-ups waiting to be recorded: a flood is
	// answered 503 rather than held in memory.
	signupQueueSize = 256
	// signupWorkers record sign-ups and send confirmation emails, each on its
	// own SMTP connection: at most this many emails are in flight.
	signupWorkers = 4
	// signupDelay is how long after its answer a sign-up's work begins. Go runs
	// a goroutine just woken before others that are waiting, so a worker woken
	// by the handler would otherwise start its database write before the
	// reader of the answer (a proxy, a test client) has read it: the answer
	// would seem slower for a new address than for a known one.
	signupDelay = 5 * time.Millisecond
)

// signupJob is one valid sign-up, answered already.
type signupJob struct {
	in store.SubscriberInput
	at time.Time
}

// signupQueue records sign-ups on a few workers, after the request has been
// answered, so the answer takes the same time for every address. A request
// reserves its place before answering (a full queue is answered 503, the same
// for every address) and hands its job over after.
type signupQueue struct {
	s      *Server
	mu     sync.RWMutex
	closed bool
	slots  chan struct{} // one per job reserved and not yet done
	// jobs has one channel per worker; an address always goes to the same one,
	// so two sign-ups of one address are recorded in the order they came.
	jobs    []chan signupJob
	workers sync.WaitGroup
	pending sync.WaitGroup // jobs reserved and not yet done
}

func newSignupQueue(s *Server, size, workers int) *signupQueue {
	q := &signupQueue{s: s, slots: make(chan struct{}, size)}
	for range workers {
		jobs := make(chan signupJob, size)
		q.jobs = append(q.jobs, jobs)
		q.workers.Go(func() { q.work(jobs) })
	}
	return q
}

// reserve takes a place for one job, or reports false when the queue is full or
// closed. Every reservation is followed by one push.
func (q *signupQueue) reserve() bool {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return false
	}
	select {
	case q.slots <- struct{}{}:
		q.pending.Add(1)
		return true
	default:
		return false
	}
}

// push queues the job of a reservation; it never blocks (each worker's channel
// holds as many as there are places).
func (q *signupQueue) push(j signupJob) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		// Closed between the reservation and now: the worker that would have
		// taken it is draining what came before.
		<-q.slots
		q.pending.Done()
		q.s.logger.Warn("subscribe: shutting down; a sign-up was not recorded")
		return
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(j.in.Email))
	q.jobs[h.Sum32()%uint32(len(q.jobs))] <- j
}

func (q *signupQueue) work(jobs <-chan signupJob) {
	for j := range jobs {
		time.Sleep(time.Until(j.at.Add(signupDelay)))
		// Not the request's context: the request is over by now.
		if err := q.s.signup(context.Background(), j); err != nil {
			q.s.logger.Error("subscribe", "err", err)
		}
		<-q.slots
		q.pending.Done()
	}
}

// wait returns once every sign-up reserved so far is done (tests).
func (q *signupQueue) wait() { q.pending.Wait() }

// close stops taking sign-ups and waits for the queued ones until ctx is done.
func (q *signupQueue) close(ctx context.Context) error {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		for _, jobs := range q.jobs {
			close(jobs)
		}
	}
	q.mu.Unlock()
	done := make(chan struct{})
	go func() {
		q.workers.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("web: sign-ups still being recorded: %w", ctx.Err())
	}
}
