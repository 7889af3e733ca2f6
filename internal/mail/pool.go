package mail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Relay is one of the servers a Pool spreads messages over.
type Relay struct {
	// Name identifies the relay in logs and errors, e.g. "smtp.example.org:587".
	Name string
	// Transport connects to the relay; the pool applies Connections and Rate,
	// so it is not wrapped in Limited.
	Transport Transport
	// Connections bounds the connections open to the relay at once.
	Connections int
	// Rate bounds the messages a second over all its connections; 0: no limit.
	Rate float64
}

// PoolConfig describes a Pool. Zero durations and counts take the defaults below.
type PoolConfig struct {
	Relays []Relay
	// Cooldown is how long a failed relay stays out of service; each failure
	// in a row (its trials included) doubles it, up to MaxCooldown.
	Cooldown    time.Duration
	MaxCooldown time.Duration
	// FailAfter is how many temporary (4xx) replies in a row, with nothing
	// accepted between them, take a relay out of service.
	FailAfter int
	Logger    *slog.Logger
	// Now is the clock that times cool-downs (tests move it); nil: time.Now.
	Now func() time.Time
}

// Defaults of PoolConfig.
const (
	DefaultCooldown    = 30 * time.Second
	DefaultMaxCooldown = 10 * time.Minute
	DefaultFailAfter   = 5
)

// errRelaysDown is the cause of a send that found every relay out of service
// or already tried.
var errRelaysDown = errors.New("every relay is out of service")

// Pool is a Transport over several relays. Each message goes to a relay with a
// free connection, chosen in proportion to the relays' connections (a relay
// whose rate limit has no token left gives its turn to one that has). A relay
// that fails as a whole (refused or timed-out connections, TLS or AUTH failure,
// 421, a dropped connection or a lost reply, 5xx to MAIL FROM, or FailAfter 4xx
// replies or refusals on the sender's side in a row) is taken out of service
// for a cool-down, then given one message on trial: if it goes through, the
// relay is back. A message a relay refuses on the sender's side (554 5.7.1
// relay access denied at RCPT, a size limit) is offered to the other relays
// at once; refused by all, the last refusal goes back to the caller.
//
// A message whose relay failed before it could have been accepted is sent at
// once through another relay, so a relay going down loses nothing and costs no
// retry. A message whose reply was lost after it was written whole
// (ErrUnknownOutcome) is never sent again by the pool: the error goes back to
// the caller, as with one relay, so that a message reaches a second relay only
// when the first one's acceptance cannot be known.
//
// Senders do not own connections: each Send takes one from the pool and gives
// it back, so when a relay fails its senders carry on through the others'
// connections, never more than each relay allows.
type Pool struct {
	relays      []*relay
	cooldown    time.Duration
	maxCooldown time.Duration
	failAfter   int
	log         *slog.Logger
	now         func() time.Time

	mu sync.Mutex
	// changed is closed, and replaced, whenever a connection is given back or a
	// relay changes state: senders waiting for a connection look again.
	changed chan struct{}
	// senders is how many Senders are open; the last to close shuts the idle
	// connections.
	senders int
}

type relayState int

const (
	relayUp    relayState = iota
	relayDown             // out of service until `until`
	relayTrial            // cool-down over: the next message tries it
)

func (s relayState) String() string {
	return [...]string{"in service", "out of service", "on trial"}[s]
}

// relay is a Relay and its state; every field after limiter is guarded by Pool.mu.
type relay struct {
	Relay
	index   int
	limiter *rate.Limiter // nil: no limit

	state   relayState
	until   time.Time
	outs    int // failures in a row since it was last in service; sets the cool-down
	probing bool
	busy    int      // connections sending a message now
	idle    []Sender // connections open and free
	streak  int      // 4xx replies in a row
	lastErr error
	current int // smooth weighted round robin
}

// NewPool checks cfg; it connects to nothing.
func NewPool(cfg PoolConfig) (*Pool, error) {
	if len(cfg.Relays) == 0 {
		return nil, errors.New("relay pool: no relays")
	}
	p := &Pool{cooldown: cfg.Cooldown, maxCooldown: cfg.MaxCooldown, failAfter: cfg.FailAfter,
		log: cfg.Logger, now: cfg.Now, changed: make(chan struct{})}
	if p.cooldown <= 0 {
		p.cooldown = DefaultCooldown
	}
	if p.maxCooldown < p.cooldown {
		p.maxCooldown = max(DefaultMaxCooldown, p.cooldown)
	}
	if p.failAfter < 1 {
		p.failAfter = DefaultFailAfter
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	for i, r := range cfg.Relays {
		if r.Transport == nil || r.Connections < 1 || r.Rate < 0 {
			return nil, fmt.Errorf("relay pool: relay %d (%s): needs a transport, at least one connection and a rate of 0 or more", i, r.Name)
		}
		rl := &relay{Relay: r, index: i}
		if r.Rate > 0 {
			rl.limiter = rate.NewLimiter(rate.Limit(r.Rate), r.Connections)
		}
		p.relays = append(p.relays, rl)
	}
	return p, nil
}

// Connections is the most connections the pool opens at once: the sum of its
// relays'. Running that many Senders keeps every connection busy.
func (p *Pool) Connections() int {
	n := 0
	for _, r := range p.relays {
		n += r.Connections
	}
	return n
}

// RelayStatus is what Status reports of one relay.
type RelayStatus struct {
	Name      string
	InService bool      // false while it is out of service or on trial
	Until     time.Time // out of service: when it will be tried again
	Open      int       // connections open (busy or idle)
	LastError error     // what last took it out of service
}

// Status reports every relay's state, in configuration order.
func (p *Pool) Status() []RelayStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]RelayStatus, len(p.relays))
	for i, r := range p.relays {
		out[i] = RelayStatus{Name: r.Name, InService: r.state == relayUp, Open: r.busy + len(r.idle), LastError: r.lastErr}
		if r.state == relayDown {
			out[i].Until = r.until
		}
	}
	return out
}

// NewSender returns a Sender that takes a connection from the pool for each
// message; it connects to nothing yet.
func (p *Pool) NewSender(context.Context) (Sender, error) {
	p.mu.Lock()
	p.senders++
	p.mu.Unlock()
	return &poolSender{p: p}, nil
}

type poolSender struct {
	p      *Pool
	closed bool
}

// Send sends m through one relay, and through the next when that one fails
// before m could have been accepted.
func (s *poolSender) Send(ctx context.Context, m *Message) error {
	p := s.p
	tried := make([]bool, len(p.relays))
	var last error
	for {
		c, err := p.take(ctx, tried)
		if err != nil {
			if last != nil {
				return last // the failure on the last relay tried says most
			}
			return onMessage(m, err)
		}
		tried[c.r.index] = true
		err = c.send(ctx, m)
		if !p.give(ctx, c, err) {
			return err
		}
		last = err
		p.log.Info("sending through another relay", "to", m.To.Email, "failed", c.r.Name, "err", err)
	}
}

// Close shuts the pool's idle connections when no other Sender is open.
func (s *poolSender) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	p := s.p
	p.mu.Lock()
	p.senders--
	var idle []Sender
	if p.senders == 0 {
		for _, r := range p.relays {
			idle = append(idle, r.idle...)
			r.idle = nil
		}
		p.broadcast()
	}
	p.mu.Unlock()
	var errs []error
	for _, c := range idle {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// conn is one connection taken from a relay for one message.
type conn struct {
	r     *relay
	s     Sender // nil: to be dialled
	trial bool
}

func (c *conn) send(ctx context.Context, m *Message) error {
	if l := c.r.limiter; l != nil {
		if err := l.Wait(ctx); err != nil {
			return &Error{Recipient: m.To.Email, MessageID: m.MessageID, Stage: StageQueue, Class: Temporary,
				Err: fmt.Errorf("relay %s: rate limit: %w: %w", c.r.Name, ErrNotSent, err)}
		}
	}
	if c.s == nil {
		s, err := c.r.Transport.NewSender(ctx)
		if err != nil {
			return onMessage(m, err)
		}
		c.s = s
	}
	return c.s.Send(ctx, m)
}

// onMessage makes err, which concerns no message yet (a failed dial), an *Error
// about m.
func onMessage(m *Message, err error) error {
	e := &Error{Stage: StageDial, Class: Temporary, Code: Code(err), Err: err}
	var inner *Error
	if errors.As(err, &inner) {
		e.Stage, e.Class, e.Enhanced, e.Err = inner.Stage, inner.Class, inner.Enhanced, inner.Err
	}
	e.Recipient, e.MessageID = m.To.Email, m.MessageID
	return e
}

// take waits for a connection on a relay not yet tried for this message, while
// some such relay is in service. When none is, it tries early the one due back
// soonest that nobody is trying yet, and fails at once when there is none: with
// every relay down, each is tried by one message at a time, and the others fail
// as they would with one relay down.
func (p *Pool) take(ctx context.Context, tried []bool) (*conn, error) {
	p.mu.Lock()
	for {
		r, wait := p.pick(tried)
		if r != nil {
			c := &conn{r: r}
			r.busy++
			if r.state == relayTrial {
				r.probing, c.trial = true, true
			}
			if n := len(r.idle); n > 0 {
				c.s, r.idle = r.idle[n-1], r.idle[:n-1]
			}
			p.mu.Unlock()
			return c, nil
		}
		if !wait {
			err := p.downError(tried)
			p.mu.Unlock()
			return nil, err
		}
		changed := p.changed
		// A cool-down ending is no event: look again then, too.
		wake := time.NewTimer(p.untilNextTrial(tried))
		p.mu.Unlock()
		select {
		case <-changed:
		case <-wake.C:
		case <-ctx.Done():
			wake.Stop()
			return nil, &Error{Stage: StageQueue, Class: Temporary,
				Err: fmt.Errorf("waiting for a free relay connection: %w: %w", ErrNotSent, ctx.Err())}
		}
		wake.Stop()
		p.mu.Lock()
	}
}

// pick chooses a relay with a free connection, or says whether one in service
// may come free (wait). Called with p.mu held.
func (p *Pool) pick(tried []bool) (r *relay, wait bool) {
	now := p.now()
	var ready, limited []*relay
	var soonest *relay
	for _, r := range p.relays {
		if tried[r.index] {
			continue
		}
		if r.state == relayDown && !now.Before(r.until) {
			r.state = relayTrial
			p.log.Info("relay on trial after its cool-down", "relay", r.Name)
		}
		switch r.state {
		case relayTrial:
			if !r.probing && r.busy < r.Connections {
				return r, true // one message decides whether it is back
			}
		case relayUp:
			wait = true
			if r.busy >= r.Connections {
				continue
			}
			if r.limiter == nil || r.limiter.Tokens() >= 1 {
				ready = append(ready, r)
			} else {
				limited = append(limited, r)
			}
		case relayDown:
			if !r.probing && r.busy < r.Connections && (soonest == nil || r.until.Before(soonest.until)) {
				soonest = r
			}
		}
	}
	if len(ready) == 0 {
		ready = limited // every free relay is at its rate: wait on one of them
	}
	if len(ready) > 0 {
		return nextWeighted(ready), true
	}
	if !wait && soonest != nil {
		// Every relay is out of service and none is being tried: rather than
		// fail without trying, try the one due back first, as one relay would.
		soonest.state = relayTrial
		p.log.Info("every relay is out of service; trying one early", "relay", soonest.Name)
		return soonest, true
	}
	return nil, wait
}

// untilNextTrial is how long until the first cool-down among the relays not
// tried ends (a minute when none is cooling down). Called with p.mu held.
func (p *Pool) untilNextTrial(tried []bool) time.Duration {
	d := time.Minute
	now := p.now()
	for _, r := range p.relays {
		if !tried[r.index] && r.state == relayDown {
			d = min(d, r.until.Sub(now))
		}
	}
	return max(d, time.Millisecond)
}

// nextWeighted is smooth weighted round robin (as nginx balances upstreams):
// over any run of picks among the same relays, each gets its share of
// connections, evenly interleaved.
func nextWeighted(rs []*relay) *relay {
	total := 0
	var best *relay
	for _, r := range rs {
		r.current += r.Connections
		total += r.Connections
		if best == nil || r.current > best.current {
			best = r
		}
	}
	best.current -= total
	return best
}

// downError describes why no relay is left for a message.
func (p *Pool) downError(tried []bool) error {
	var parts []string
	for _, r := range p.relays {
		switch {
		case tried[r.index]:
			parts = append(parts, r.Name+": tried")
		case r.state == relayDown:
			parts = append(parts, fmt.Sprintf("%s: out of service until %s after: %v", r.Name, r.until.Format(time.TimeOnly), r.lastErr))
		default:
			parts = append(parts, r.Name+": being tried")
		}
	}
	return &Error{Stage: StageDial, Class: Temporary, Err: fmt.Errorf("%w (%s)", errRelaysDown, strings.Join(parts, "; "))}
}

// verdict is what one send says about its relay.
type verdict int

const (
	neutral  verdict = iota // nothing: the message or our own deadline was at fault
	answered                // the relay is working: accepted, or refused the recipient
	busy                    // a 4xx reply: one more of a possible run
	refuser                 // a 5xx to RCPT or DATA on the sender's side (relay access denied, a policy, the message): one more of a possible run
	failed                  // the relay failed as a whole
)

// judge reads a send's error for what it says about the relay.
func judge(err error) verdict {
	if err == nil {
		return answered
	}
	var e *Error
	if !errors.As(err, &e) {
		if Classify(err) == Permanent {
			return answered
		}
		return failed
	}
	switch e.Stage {
	case StageBuild, StageQueue, StageWrite:
		return neutral
	case StageDial:
		return failed // refused, timed out, TLS, AUTH, a 4xx or 5xx greeting
	}
	switch code := e.Code; {
	case code == 0, code == 421:
		return failed // no reply (dropped, timed out, garbled), or closing down
	case code < 500:
		return busy
	case e.Stage == StageMail:
		return failed // a 5xx to MAIL FROM refuses us, not the reader
	case CauseOf(err) == CauseSender:
		return refuser
	}
	return answered
}

// give takes c back after a send that ended in err, updates its relay's state,
// and says whether the message should go at once through another relay: only
// when the relay failed and the message cannot have been accepted.
func (p *Pool) give(ctx context.Context, c *conn, err error) (again bool) {
	v := judge(err)
	if err != nil && (ctx.Err() != nil || NotSent(err)) {
		v = neutral // our deadline ran out, or we were stopped: the relay is not to blame
	}
	r := c.r
	var closing []Sender
	p.mu.Lock()
	r.busy--
	if c.trial {
		r.probing = false
	}
	switch v {
	case answered:
		r.streak = 0
		if r.state == relayTrial {
			r.state, r.outs, r.lastErr = relayUp, 0, nil
			p.log.Info("relay back in service", "relay", r.Name)
		}
	case busy, refuser:
		r.streak++
		if r.state == relayTrial || (r.state == relayUp && r.streak >= p.failAfter) {
			closing = p.takeOut(r, err)
		}
	case failed:
		if r.state != relayDown {
			closing = p.takeOut(r, err)
		}
	}
	if c.s != nil {
		if r.state == relayDown || v == failed {
			closing = append(closing, c.s)
		} else {
			r.idle = append(r.idle, c.s)
		}
	}
	// A refusal on the sender's side may be this relay's alone (its
	// credentials, its policy, its size limit): the message, refused before
	// it could be accepted, is offered to the others at once.
	again = ((v == failed || v == busy) && r.state == relayDown || v == refuser) && !errors.Is(err, ErrUnknownOutcome)
	p.broadcast()
	p.mu.Unlock()
	if len(closing) > 0 {
		// A relay that stopped answering would hold each QUIT for the send
		// timeout; the message waiting to go elsewhere must not wait for that.
		go func() {
			for _, s := range closing {
				_ = s.Close()
			}
		}()
	}
	return again
}

// takeOut puts r out of service and returns its idle connections to close.
// Called with p.mu held.
func (p *Pool) takeOut(r *relay, err error) []Sender {
	d := p.cooldown
	for i := 0; i < r.outs && d < p.maxCooldown; i++ {
		d *= 2
	}
	d = min(d, p.maxCooldown)
	r.outs++
	r.state, r.until, r.streak, r.lastErr = relayDown, p.now().Add(d), 0, err
	p.log.Warn("relay out of service", "relay", r.Name, "for", d, "failures_in_a_row", r.outs, "err", err)
	idle := r.idle
	r.idle = nil
	return idle
}

// broadcast wakes the senders waiting for a connection. Called with p.mu held.
func (p *Pool) broadcast() {
	close(p.changed)
	p.changed = make(chan struct{})
}
