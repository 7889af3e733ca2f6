package cycle

import (
	"errors"
	"fmt"
	"net/textproto"
	"strings"
	"sync"
	"time"

	"publisher/internal/mail"
)

// The circuit breaker's thresholds. A failure that concerns the relay rather
// than one reader (the relay refusing the desk, or no answer at all) counts
// toward a streak that a message accepted ends. breakerSample refusals in a
// row, to recipients in breakerDomains domains or more, stop the send at once:
// a relay that says no to ten messages running and yes to none is refusing the
// desk. Refusals all for one or two domains may be those domains' policy (a
// list keeps a company's readers together), so they stop it only at
// breakerOneDomain in a row: a run whose first readers all sit at a domain
// that refuses the desk would otherwise stop at them every time, and nobody
// after them would ever get the digest. Failures without an answer
// (connections refused, timing out or dropped) stop it only once they have
// also gone on for breakerSpan, so that a relay restarting, or a connection
// lost now and then, does not.
const (
	breakerSample    = 10
	breakerDomains   = 3
	breakerOneDomain = 5 * breakerSample
	breakerSpan      = 5 * time.Second
	// dialPause is how long a sender waits after a connection attempt failed,
	// doubling for each such failure in a row (any sender's, in any pass of
	// the run) up to maxDialPause: a dead relay is not hammered, and its
	// streak takes seconds, not the whole list, to grow.
	dialPause    = 100 * time.Millisecond
	maxDialPause = 2 * time.Second
)

// ErrSendingStopped is what a run stopped by the circuit breaker returns.
var ErrSendingStopped = errors.New("sending stopped")

// verdict is what one attempt says about the relay as a whole.
type verdict int

const (
	neutral   verdict = iota // about one reader or message, or no attempt at all
	accepted                 // the relay took a message
	refused                  // the relay answered, refusing the desk's side
	unreached                // no answer: refused, timed-out or dropped connection, 421
)

// judge reads an attempt's result for what it says about the relay.
func judge(err error) verdict {
	switch {
	case err == nil:
		return accepted
	case mail.NotSent(err), errors.Is(err, mail.ErrInvalidMessage):
		return neutral
	}
	code := mail.Code(err)
	switch mail.CauseOf(err) {
	case mail.CauseSender:
		return refused
	case mail.CauseTemporary:
		if code == 0 || code == 421 {
			return unreached
		}
		switch stageOf(err) {
		case mail.StageDial, mail.StageMail:
			// A 4xx greeting, AUTH or MAIL FROM: the relay will not take
			// anything from the desk for now (a sending quota, say).
			return refused
		}
	}
	// The reader's hard or soft bounce, or a 4xx about one recipient
	// (greylisting): the relay is answering for each reader.
	return neutral
}

// recipientDomain is the domain of the recipient err concerns, lower-cased.
func recipientDomain(err error) string {
	var e *mail.Error
	if !errors.As(err, &e) {
		return ""
	}
	return strings.ToLower(e.Recipient[strings.LastIndexByte(e.Recipient, '@')+1:])
}

// stageOf is where err happened, or "" when it does not say.
func stageOf(err error) mail.Stage {
	var e *mail.Error
	if errors.As(err, &e) {
		return e.Stage
	}
	return ""
}

// breaker watches one run's attempts and stops the send when most of them
// fail the same way, as a whole relay failing does: every message refused on
// the sender's side (relay access denied, a policy or authentication refusal,
// a message too large for the relay), or no connection getting through. Then
// nothing is charged to anyone: the refusals that tripped it count toward no
// delivery's limit and no reader's bounces, and the deliveries stay pending.
// With several relays, the pool moves a failing relay's messages to the
// others, so only every relay failing at once reaches the breaker.
//
// It also says whether the relay is delivering (see works), which a failure
// must show before it may use up a delivery's retries.
type breaker struct {
	clock    func() time.Time // wall clock: the run's clock may stand still in tests
	what     string           // "the relay", "every relay", "the outbox"
	lastSent time.Time        // when the ledger last recorded a message accepted, before this run

	mu       sync.Mutex
	accepted int             // messages accepted in this run
	streak   int             // failures about the relay in a row, nothing accepted between
	answers  int             // of which the relay answered (refused)
	since    time.Time       // the streak's first failure
	last     error           // the streak's last failure
	answer   error           // and its last refusal
	domains  map[string]bool // the recipients' domains of the streak's refusals
	tripped  error
	dials    int       // connection attempts failed in a row since a message was accepted
	nextDial time.Time // no connection attempt before then
}

func newBreaker(what string, lastSent time.Time) *breaker {
	return &breaker{clock: time.Now, what: what, lastSent: lastSent}
}

// observe counts one attempt's result and reports whether the breaker has
// tripped (now or before).
func (b *breaker) observe(err error) bool {
	v := judge(err)
	b.mu.Lock()
	defer b.mu.Unlock()
	switch v {
	case accepted:
		b.accepted++
		b.streak, b.answers, b.dials, b.nextDial = 0, 0, 0, time.Time{}
		clear(b.domains)
	case refused, unreached:
		now := b.clock()
		if b.streak == 0 {
			b.since = now
		}
		b.streak++
		if v == refused {
			b.answers++
			b.answer = err
			if b.domains == nil {
				b.domains = map[string]bool{}
			}
			b.domains[recipientDomain(err)] = true
		}
		b.last = err
		refusedEnough := b.answers >= breakerOneDomain || (b.answers >= breakerSample && len(b.domains) >= breakerDomains)
		unreachedLong := b.streak-b.answers >= breakerSample && now.Sub(b.since) >= breakerSpan
		if b.tripped == nil && (refusedEnough || unreachedLong) {
			b.tripped = b.describe(now)
		}
	}
	return b.tripped != nil
}

// noteDial counts a connection attempt that failed: the next may be made
// dialPause later, doubled for each one before it since a message was
// accepted, up to maxDialPause.
func (b *breaker) noteDial(err error) {
	if stageOf(err) != mail.StageDial || judge(err) != unreached {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dials++
	b.nextDial = b.clock().Add(min(dialPause<<min(b.dials-1, 16), maxDialPause))
}

// dialWait is how long a sender must wait before it tries to connect.
func (b *breaker) dialWait() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return max(b.nextDial.Sub(b.clock()), 0)
}

// describe is the one line that says why the send stopped. Called with b.mu held.
func (b *breaker) describe(now time.Time) error {
	const after = "nobody was suppressed and the deliveries stay pending"
	if b.answers >= breakerSample || 2*b.answers >= b.streak {
		return fmt.Errorf("%w: %s refused every message (%d in a row, none accepted): %s; %s; fix the relay settings (mail.smtp, mail.from) and run again",
			ErrSendingStopped, b.what, b.streak, reply(b.answer), after)
	}
	verb := "could not be reached"
	if b.what == "the outbox" {
		verb = "could not be written"
	}
	return fmt.Errorf("%w: %s %s for %s (%d attempts in a row): %s; %s, for a later run (check mail.smtp if this goes on)",
		ErrSendingStopped, b.what, verb, now.Sub(b.since).Round(100*time.Millisecond), b.streak, reply(b.last), after)
}

// err is why the breaker stopped the send, or nil.
func (b *breaker) err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.tripped
}

// works reports whether the relay has shown that it delivers since a
// delivery began failing at since (zero: it has not failed before), in this
// run or by the ledger's last acceptance, with no run of relay failures going
// on now: only then is the delivery's failure its own, to be counted toward
// its limits. Time in which the relay delivered nothing to anyone spends
// nobody's retries, and a relay refusing every message charges nobody.
func (b *breaker) works(since time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.streak == 0 && (b.accepted > 0 || (!b.lastSent.IsZero() && !b.lastSent.Before(since)))
}

// reply is the server's answer err carries ("554 5.7.1 relay access
// denied"), or what went wrong when there was none.
func reply(err error) string {
	var tp *textproto.Error
	if errors.As(err, &tp) {
		return strings.Join(strings.Fields(fmt.Sprintf("%d %s", tp.Code, tp.Msg)), " ")
	}
	var e *mail.Error
	if errors.As(err, &e) && e.Err != nil {
		return e.Err.Error()
	}
	return err.Error()
}
