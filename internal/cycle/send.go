package cycle

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"publisher/internal/content"
	"publisher/internal/digest"
	"publisher/internal/mail"
	"publisher/internal/store"
)

const (
	// pendingPage is how many ledger rows are read at a time: memory is bounded by
	// this page and the queue to the senders, never by the list.
	pendingPage = 256
	// maxInRunWait is the longest a run waits for a retry to come due before it
	// leaves the delivery pending for a later run.
	maxInRunWait = 2 * time.Minute
	// groupWait is how long the ledger holds a small group of outcomes open
	// for more before committing it: a fraction of one message's time on the
	// wire.
	groupWait = time.Millisecond
)

// job is one message for a sender.
type job struct {
	d   store.Delivery
	msg *mail.Message
}

// recorded carries an outcome to the ledger writer; ack is closed once it is committed.
type recorded struct {
	out store.Outcome
	ack chan error
}

// send delivers the pending deliveries that are due, claiming them under
// lease, in passes, until nothing this sender may claim comes due within
// maxInRunWait, the run is stopped, or the lease is lost. Deliveries other live
// senders hold are waited for up to maxInRunWait too: should their sender die,
// its claims come free when its lease expires, and this run takes them over.
func (r *Runner) send(ctx context.Context, lease *heldLease, sum *Summary, pieces []content.Piece, retryNow bool) error {
	// The digests' pages are published while sending for real (not by a dry
	// run or a preview), each before the first email that links to it.
	r.views.publishing(true)
	defer r.views.publishing(false)
	byID := make(map[string]*content.Piece, len(pieces))
	for i := range pieces {
		byID[pieces[i].ID] = &pieces[i]
	}
	counts, err := r.store.CountDeliveries(lease.ctx)
	if err != nil {
		return fmt.Errorf("count deliveries: %w", err)
	}
	var bar *progressbar.ProgressBar
	if r.progress != nil && counts.Pending > 0 {
		bar = newSendBar(r.progress, counts.Pending)
		defer func() { _ = bar.Finish() }()
	}

	var (
		st             store.PendingState
		elsewhereSince time.Time
		failed         error
	)
	br := newBreaker(r.relayName(), counts.LastSent)
passes:
	for lease.ctx.Err() == nil {
		due := r.now()
		if retryNow {
			// The first pass takes every pending delivery, whatever its backoff says.
			due, retryNow = due.Add(100*365*24*time.Hour), false
		}
		claimed, err := r.sendPass(lease, sum, byID, bar, due, br)
		if err != nil {
			failed = err
			break
		}
		if lease.ctx.Err() != nil {
			break
		}
		if st, err = r.store.PendingState(lease.ctx, lease.Fence()); err != nil {
			return fmt.Errorf("read pending deliveries: %w", err)
		}
		var wait time.Duration
		openIn := st.NextOpen.Sub(r.now())
		switch {
		case st.Open > 0 && openIn <= maxInRunWait:
			wait = max(openIn, 0)
			if wait > 0 {
				r.log.Info("waiting for retries to come due", "in", wait.Round(time.Millisecond))
			} else if claimed == 0 {
				// Due but not claimable this instant (another sender is
				// claiming them): look again shortly rather than spin.
				wait = 100 * time.Millisecond
			}
		case st.Elsewhere > 0:
			if elsewhereSince.IsZero() {
				elsewhereSince = time.Now()
				r.log.Info("other senders hold deliveries; standing by in case one stops", "deliveries", st.Elsewhere)
			}
			if time.Since(elsewhereSince) > maxInRunWait {
				break passes
			}
			wait = time.Second
		default:
			break passes
		}
		select {
		case <-lease.ctx.Done():
		case <-time.After(wait):
		}
	}
	// Whatever is left, for whatever reason, is pending for the next run (or
	// held by another sender).
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if st, err = r.store.PendingState(rctx, lease.Fence()); err == nil {
		sum.Pending, sum.Elsewhere = int(st.Open), int(st.Elsewhere)
	}
	return failed
}

// relayName is what the breaker's line calls the transport.
func (r *Runner) relayName() string {
	switch r.transport.(type) {
	case *mail.FileTransport:
		return "the outbox"
	case *mail.Pool:
		return "every relay"
	}
	return "the relay"
}

// newSendBar is the progress bar of a send of total messages, drawn on w.
// Its clock starts now: left to start at the first message, the bar would
// divide that one message by the microseconds since, and show a first rate
// of millions a second.
func newSendBar(w io.Writer, total int64) *progressbar.ProgressBar {
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w), progressbar.OptionSetDescription("sending"),
		progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("msg"),
		progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish(),
		progressbar.OptionSetRenderBlankState(true))
}

// sendPass streams the due deliveries this sender can claim once through the
// senders, and says how many it claimed. It stops early, with the breaker's
// error, when br trips.
func (r *Runner) sendPass(lease *heldLease, sum *Summary, byID map[string]*content.Piece, bar *progressbar.ProgressBar, due time.Time, br *breaker) (int, error) {
	conns := r.cfg.Mail.SMTP.TotalConnections()
	if r.cfg.Mail.Transport == "file" {
		conns = 1
	}
	jobs := make(chan job, conns)
	results := make(chan recorded, conns)
	// note runs on the ledger goroutine only, after each commit.
	note := func(o store.Outcome) {
		switch o.Kind {
		case store.OutcomeSent:
			sum.Sent++
		case store.OutcomeRetry:
			sum.Retried++
		case store.OutcomePermanent, store.OutcomeGaveUp:
			sum.Failed++
		case store.OutcomeSkipped:
			sum.Skipped++
		}
		if bar != nil && o.Kind != store.OutcomeRetry {
			_ = bar.Add(1)
		}
	}

	// passCtx ends when the run is stopped, the lease is lost, or the ledger
	// cannot be written: queued messages are then left pending, and only those
	// already on the wire finish.
	passCtx, stopPass := context.WithCancel(lease.ctx)
	defer stopPass()

	// The ledger writer: commits whatever outcomes have arrived in one transaction.
	// A sender waits for its outcome to commit before taking the next message, so at
	// most one accepted-but-unrecorded message per connection can exist: that is the
	// whole of what a kill can duplicate.
	ledgerErr := make(chan error, 1)
	go func() {
		ledgerErr <- r.ledger(lease, results, note, sum, conns)
	}()

	// A sender that panics stops the pass; the message it held stays pending.
	var (
		mu      sync.Mutex
		crashed error
	)
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			var err error
			defer func() {
				if err != nil {
					mu.Lock()
					crashed = cmp.Or(crashed, err)
					mu.Unlock()
					stopPass()
				}
			}()
			defer r.recovered("a sender", &err)
			r.sender(passCtx, stopPass, lease, jobs, results, br)
		})
	}

	// The producer claims the ledger page by page, renders, and feeds the senders.
	claimed, prodErr := r.produce(passCtx, lease, jobs, results, byID, due)
	close(jobs)
	wg.Wait()
	close(results)
	if err := <-ledgerErr; err != nil {
		return claimed, err
	}
	if crashed != nil {
		return claimed, crashed
	}
	if err := br.err(); err != nil {
		return claimed, err
	}
	if prodErr != nil && !errors.Is(prodErr, context.Canceled) {
		return claimed, prodErr
	}
	return claimed, nil
}

// produce claims the due deliveries page by page and feeds them to the senders.
func (r *Runner) produce(ctx context.Context, lease *heldLease, jobs chan<- job, results chan<- recorded, byID map[string]*content.Piece, due time.Time) (claimed int, err error) {
	defer r.recovered("the producer", &err)
	installation, err := r.installationID(ctx, true)
	if err != nil {
		return 0, err
	}
	var after int64
	for {
		if ctx.Err() != nil {
			return claimed, ctx.Err()
		}
		page, err := r.store.ClaimDeliveries(ctx, lease.Fence(), after, due, pendingPage)
		if errors.Is(err, store.ErrLeaseLost) {
			lease.lose(err)
			return claimed, nil
		}
		if err != nil && ctx.Err() != nil {
			// The pass was stopped while claiming (the claim's transaction is
			// rolled back): not a failure of the claim.
			return claimed, ctx.Err()
		}
		if err != nil {
			return claimed, fmt.Errorf("claim pending deliveries: %w", err)
		}
		if len(page) == 0 {
			return claimed, nil
		}
		claimed += len(page)
		for _, d := range page {
			after = d.ID
			if d.SubscriberStatus != store.StatusActive {
				record(results, store.Outcome{DeliveryID: d.ID, SubscriberID: d.SubscriberID, Kind: store.OutcomeSkipped, Error: "subscriber is " + d.SubscriberStatus, At: r.now()})
				continue
			}
			items := make([]content.Piece, 0, len(d.PieceIDs))
			for _, id := range d.PieceIDs {
				if p, ok := byID[id]; ok {
					items = append(items, *p)
				}
			}
			if len(items) == 0 {
				record(results, store.Outcome{DeliveryID: d.ID, SubscriberID: d.SubscriberID, Kind: store.OutcomeSkipped, Error: "its pieces were withdrawn", At: r.now()})
				continue
			}
			msg, err := r.message(messageID(installation, d.DigestID, d.SubscriberID, d.CreatedAt, r.domain), d.SubscriberID, d.Email, d.Name, items, r.now())
			if err != nil {
				// A message we cannot build (a name with control characters slipped into
				// the store, say) fails alone; the others go on.
				r.log.Error("building message", "to", d.Email, "err", err)
				record(results, store.Outcome{DeliveryID: d.ID, SubscriberID: d.SubscriberID, Kind: store.OutcomeGaveUp, Error: err.Error(), At: r.now()})
				continue
			}
			select {
			case jobs <- job{d: d, msg: msg}:
			case <-ctx.Done():
				return claimed, ctx.Err()
			}
		}
	}
}

// record hands an outcome to the ledger without waiting for the commit: used for
// deliveries that never reached the wire.
func record(results chan<- recorded, o store.Outcome) {
	results <- recorded{out: o}
}

// sender owns one connection and sends jobs over it until jobs closes. Each
// message is sent under the lease's context: a message that has not reached
// the server when the run stops or the lease is lost (or its local time runs
// out: a process paused past its lease) is not sent at all, and left pending
// for whoever sends next; one already on the wire is finished, within the
// send timeout, so the ledger can say what happened. Each result goes to br;
// when it trips, stop ends the pass.
func (r *Runner) sender(ctx context.Context, stop context.CancelFunc, lease *heldLease, jobs <-chan job, results chan<- recorded, br *breaker) {
	var s mail.Sender
	defer func() {
		if s != nil {
			_ = s.Close()
		}
	}()
	timeout := r.cfg.Mail.SMTP.SendTimeout + r.cfg.Mail.SMTP.ConnectTimeout
	for j := range jobs {
		if ctx.Err() != nil || lease.Err() != nil {
			continue // stopped: leave it pending
		}
		if s == nil {
			// After failed connection attempts, wait before the next (see breaker).
			if wait := br.dialWait(); wait > 0 {
				select {
				case <-ctx.Done():
					continue // stopped: leave it pending
				case <-time.After(wait):
				}
			}
		}
		sendCtx, cancel := lease.messageContext(ctx, timeout)
		var err error
		if s == nil {
			s, err = r.transport.NewSender(sendCtx)
			if err != nil {
				s = nil
			}
		}
		if err == nil {
			err = s.Send(sendCtx, j.msg)
		}
		cancel()
		if err != nil && mail.NotSent(err) && (ctx.Err() != nil || lease.Err() != nil) {
			// Never reached the server, and this sender may send no more: the
			// delivery stays pending, its attempt uncounted.
			if lerr := lease.Err(); lerr != nil && ctx.Err() == nil {
				lease.lose(lerr)
			}
			continue
		}
		// Judged before this result counts toward the breaker: whether the
		// relay was delivering when this message failed.
		o := r.outcome(j, err, br)
		if br.observe(err) {
			stop()
		}
		br.noteDial(err)
		if err != nil && mail.Classify(err) == mail.Temporary && s != nil {
			// The connection may be what failed; start the next message on a fresh one.
			_ = s.Close()
			s = nil
		}
		ack := make(chan error, 1)
		results <- recorded{out: o, ack: ack}
		if err := <-ack; err != nil {
			stop()
		}
	}
}

// outcome decides what one attempt's result does to the delivery, by whose
// problem it is (mail.CauseOf). The reader's hard bounce fails it and counts
// toward the bounce limit. Everything else keeps it pending, retried with
// backoff: a temporary failure or a soft bounce until its retry window has
// passed, a refusal on the sender's side (policy, relay, authentication, the
// message) until it has been refused max_attempts times. Neither limit is
// spent while the relay delivers nothing to anyone (see breaker.works): a
// relay that is down or refuses the desk costs no delivery anything, and the
// digest goes out once it is fixed.
func (r *Runner) outcome(j job, err error, br *breaker) store.Outcome {
	now := r.now()
	o := store.Outcome{DeliveryID: j.d.ID, SubscriberID: j.d.SubscriberID, At: now, MessageID: j.msg.MessageID}
	if err == nil {
		o.Kind = store.OutcomeSent
		return o
	}
	o.Error = err.Error()
	if errors.Is(err, mail.ErrInvalidMessage) {
		// Retrying cannot mend a message that cannot be built.
		o.Kind = store.OutcomeGaveUp
		r.log.Error("message cannot be built", "to", j.d.Email, "err", err)
		return o
	}
	attempt := j.d.Attempts + 1
	cause := mail.CauseOf(err)
	if cause == mail.CauseHardBounce {
		o.Kind = store.OutcomePermanent
		r.log.Warn("hard bounce: the reader's mailbox refused for good", "to", j.d.Email, "err", err)
		return o
	}
	o.Kind = store.OutcomeRetry
	o.NextAttempt = now.Add(r.backoff(j.d.Attempts))
	// Whether this failure can be the delivery's own: the relay has delivered
	// other mail since the delivery began failing, and is not failing now.
	own := br.works(j.d.FailingSince)
	if cause == mail.CauseSender {
		if !own {
			// Most likely the relay refuses every message: the breaker will say
			// so. Nothing is charged, and the delivery is due again soon.
			r.log.Error("the relay refused the message on the sender's side (not the reader's): check mail.from and the relay settings", "to", j.d.Email, "err", err)
		} else {
			// The relay takes other mail: this refusal concerns this message
			// (too large, its content, a domain that refuses the desk). A later
			// run tries again, up to max_attempts refusals.
			o.Refused = true
			o.NextAttempt = now.Add(r.retryMax())
			if j.d.Refusals+1 >= r.cfg.Mail.MaxAttempts {
				o.Kind = store.OutcomeGaveUp
				r.log.Warn("giving up after refusals on the sender's side (the reader is not suppressed)", "to", j.d.Email, "refusals", j.d.Refusals+1, "err", err)
				return o
			}
			r.log.Warn("refused on the sender's side; a later run tries again", "to", j.d.Email, "refusals", j.d.Refusals+1, "at", o.NextAttempt, "err", err)
			return o
		}
	}
	if since := j.d.FailingSince; own && !since.IsZero() && now.Sub(since) >= r.cfg.Mail.RetryWindow {
		o.Kind = store.OutcomeGaveUp
		r.log.Warn("giving up: still failing after mail.retry_window while other mail went out", "to", j.d.Email, "failing_since", since, "attempts", attempt, "err", err)
		return o
	}
	if cause != mail.CauseSender {
		r.log.Info("temporary failure, will retry", "to", j.d.Email, "attempt", attempt, "at", o.NextAttempt, "cause", cause, "err", err)
	}
	return o
}

// retryMax is the longest wait between two attempts: mail.retry_max, and
// never less than mail.retry_base (a file written before retry_max existed
// may set a longer base).
func (r *Runner) retryMax() time.Duration {
	return max(r.cfg.Mail.RetryMax, r.cfg.Mail.RetryBase)
}

// backoff is mail.retry_base doubled per earlier attempt, capped at retryMax.
func (r *Runner) backoff(earlier int) time.Duration {
	d, ceiling := r.cfg.Mail.RetryBase, r.retryMax()
	for i := 0; i < earlier && d < ceiling; i++ {
		d *= 2
	}
	return min(d, ceiling)
}

// ledger commits outcomes in groups, under the lease's fence, and
// acknowledges each once committed. With conns senders, each waiting for its
// own acknowledgement, a group that is still small waits up to groupWait for
// more: a commit costs far more than an outcome in it, and every sender not yet
// heard from is busy on the wire and will report soon. An outcome the store
// refuses as fenced means another sender took the delivery over: this sender's
// lease is gone, and it stops.
func (r *Runner) ledger(lease *heldLease, results <-chan recorded, note func(store.Outcome), sum *Summary, conns int) error {
	var failed error
	batch := make([]recorded, 0, 64)
	outs := make([]store.Outcome, 0, 64)
	target := min(cap(batch), max(1, conns/2))
	timer := time.NewTimer(groupWait)
	timer.Stop()
	for first := range results {
		batch = gather(results, append(batch[:0], first), target, timer, groupWait)
		if failed == nil {
			outs = outs[:0]
			for _, rec := range batch {
				outs = append(outs, rec.out)
			}
			failed = r.commit(lease, outs, note, sum)
		}
		// After a failure (a panic included) every outcome still coming is
		// answered with it, so no sender waits for ever.
		for _, rec := range batch {
			if rec.ack != nil {
				rec.ack <- failed
			}
		}
	}
	return failed
}

// commit records one group of outcomes under the lease's fence.
func (r *Runner) commit(lease *heldLease, outs []store.Outcome, note func(store.Outcome), sum *Summary) (err error) {
	defer r.recovered("the ledger", &err)
	// A fresh context: outcomes of messages already accepted must be recorded
	// even when the run is being stopped.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	res, err := r.store.RecordOutcomes(ctx, lease.Fence(), outs, r.cfg.Mail.BounceLimit)
	cancel()
	if err != nil {
		r.log.Error("ledger write failed; stopping the send", "err", err)
		return fmt.Errorf("record outcomes: %w", err)
	}
	fenced := make(map[int64]bool, len(res.Fenced))
	for _, id := range res.Fenced {
		fenced[id] = true
	}
	for _, o := range outs {
		if !fenced[o.DeliveryID] {
			note(o)
		}
	}
	if len(res.Fenced) > 0 {
		r.log.Error("another sender took over deliveries this one held; stopping", "deliveries", len(res.Fenced), "fence", lease.Fence())
		lease.lose(fmt.Errorf("%d deliveries were taken over by another sender", len(res.Fenced)))
	}
	sum.Suppressed += len(res.Suppressed)
	for _, id := range res.Suppressed {
		r.log.Warn("address suppressed after hard failures", "subscriber", id)
	}
	return nil
}

// gather adds to batch the outcomes already waiting and, while it holds
// fewer than target, those arriving within wait; it stops at cap(batch) or
// when results closes. timer is stopped, and reused from call to call.
func gather(results <-chan recorded, batch []recorded, target int, timer *time.Timer, wait time.Duration) []recorded {
	timing := false
	defer func() {
		if timing {
			timer.Stop()
		}
	}()
	for len(batch) < cap(batch) {
		if len(batch) >= target {
			// Enough for one commit: take only what is already waiting.
			select {
			case next, ok := <-results:
				if !ok {
					return batch
				}
				batch = append(batch, next)
				continue
			default:
				return batch
			}
		}
		if !timing {
			timer.Reset(wait)
			timing = true
		}
		select {
		case next, ok := <-results:
			if !ok {
				return batch
			}
			batch = append(batch, next)
		case <-timer.C:
			target = 0 // waited long enough: commit what there is
		}
	}
	return batch
}

// message builds the digest email for one subscriber, with the Message-ID id.
func (r *Runner) message(id string, subscriberID int64, email, name string, items []content.Piece, now time.Time) (*mail.Message, error) {
	base := r.cfg.Site.BaseURL
	unsub := base + "unsubscribe?token=" + url.QueryEscape(r.signer.Sign("unsubscribe", subscriberID, time.Time{}))
	prefs := base + "preferences?token=" + url.QueryEscape(r.signer.Sign("preferences", subscriberID, time.Time{}))
	out, err := r.renderer.Render(digest.Recipient{Email: email, Name: name}, items, digest.Links{Unsubscribe: unsub, Preferences: prefs})
	if err != nil {
		return nil, fmt.Errorf("render digest for %s: %w", email, err)
	}
	r.publishView(out.View)
	m := &mail.Message{
		From:              r.from,
		To:                mail.Address{Name: name, Email: email},
		ReplyTo:           r.replyTo,
		Subject:           out.Subject,
		Date:              now,
		MessageID:         id,
		ListID:            r.listID,
		UnsubscribeURL:    unsub,
		UnsubscribeMailto: "mailto:" + r.mailto + "?subject=unsubscribe",
		Text:              out.Text,
		HTML:              out.HTML,
		TextParts:         out.TextParts,
		HTMLParts:         out.HTMLParts,
	}
	// Not validated here: the transport validates every message it renders,
	// and outcome gives up on one it refuses (mail.ErrInvalidMessage).
	return m, nil
}
