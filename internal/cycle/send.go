package cycle

import (
	"context"
	"errors"
	"fmt"
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
	// maxBackoff caps the exponential retry delay.
	maxBackoff = 6 * time.Hour
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

// send delivers every pending delivery that is due, in passes, until none is due
// within maxInRunWait or ctx ends.
func (r *Runner) send(ctx context.Context, sum *Summary, pieces []content.Piece, retryNow bool) error {
	// The digests' pages are published while sending for real (not by a dry
	// run or a preview), each before the first email that links to it.
	r.views.publishing(true)
	defer r.views.publishing(false)
	byID := make(map[string]*content.Piece, len(pieces))
	for i := range pieces {
		byID[pieces[i].ID] = &pieces[i]
	}
	counts, err := r.store.CountDeliveries(ctx)
	if err != nil {
		return fmt.Errorf("count deliveries: %w", err)
	}
	var bar *progressbar.ProgressBar
	if r.progress != nil && counts.Pending > 0 {
		bar = progressbar.NewOptions64(counts.Pending,
			progressbar.OptionSetWriter(r.progress), progressbar.OptionSetDescription("sending"),
			progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("msg"),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
		defer func() { _ = bar.Finish() }()
	}

	for ctx.Err() == nil {
		due := r.now()
		if retryNow {
			// The first pass takes every pending delivery, whatever its backoff says.
			due, retryNow = due.Add(100*365*24*time.Hour), false
		}
		if err := r.sendPass(ctx, sum, byID, bar, due); err != nil {
			return err
		}
		next, err := r.store.EarliestPending(ctx)
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if err != nil {
			return fmt.Errorf("read pending deliveries: %w", err)
		}
		wait := next.Sub(r.now())
		if wait > maxInRunWait {
			break
		}
		if wait > 0 {
			r.log.Info("waiting for retries to come due", "in", wait.Round(time.Millisecond))
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
	}
	// Whatever is left, for whatever reason, is pending for the next run.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if counts, err = r.store.CountDeliveries(rctx); err == nil {
		sum.Pending = int(counts.Pending)
	}
	return nil
}

// sendPass streams the due pending deliveries once through the senders.
func (r *Runner) sendPass(ctx context.Context, sum *Summary, byID map[string]*content.Piece, bar *progressbar.ProgressBar, due time.Time) error {
	conns := r.cfg.Mail.SMTP.Connections
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

	// The ledger writer: commits whatever outcomes have arrived in one transaction.
	// A sender waits for its outcome to commit before taking the next message, so at
	// most one accepted-but-unrecorded message per connection can exist: that is the
	// whole of what a kill can duplicate.
	ledgerErr := make(chan error, 1)
	go func() {
		ledgerErr <- r.ledger(results, note, sum, conns)
	}()

	// passCtx ends when the run is stopped or the ledger cannot be written: queued
	// messages are then left pending, and only those already on the wire finish.
	passCtx, stopPass := context.WithCancel(ctx)
	defer stopPass()
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() { r.sender(passCtx, stopPass, jobs, results) })
	}

	// The producer reads the ledger page by page, renders, and feeds the senders.
	prodErr := r.produce(passCtx, jobs, results, byID, due)
	close(jobs)
	wg.Wait()
	close(results)
	if err := <-ledgerErr; err != nil {
		return err
	}
	if prodErr != nil && !errors.Is(prodErr, context.Canceled) {
		return prodErr
	}
	return nil
}

// produce feeds the senders with the pending deliveries due at due.
func (r *Runner) produce(ctx context.Context, jobs chan<- job, results chan<- recorded, byID map[string]*content.Piece, due time.Time) error {
	var after int64
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		page, err := r.store.PendingDeliveries(ctx, after, due, pendingPage)
		if err != nil {
			return fmt.Errorf("read pending deliveries: %w", err)
		}
		if len(page) == 0 {
			return nil
		}
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
			msg, err := r.message(d.DigestID, d.SubscriberID, d.Email, d.Name, items, r.now())
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
				return ctx.Err()
			}
		}
	}
}

// record hands an outcome to the ledger without waiting for the commit: used for
// deliveries that never reached the wire.
func record(results chan<- recorded, o store.Outcome) {
	results <- recorded{out: o}
}

// sender owns one connection and sends jobs over it until jobs closes.
func (r *Runner) sender(ctx context.Context, stop context.CancelFunc, jobs <-chan job, results chan<- recorded) {
	var s mail.Sender
	defer func() {
		if s != nil {
			_ = s.Close()
		}
	}()
	for j := range jobs {
		if ctx.Err() != nil {
			continue // stopped: leave it pending
		}
		// The send itself is not cancelled with the run: a message on the wire is
		// finished (within the send timeout) so the ledger can say what happened.
		sendCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.Mail.SMTP.SendTimeout+r.cfg.Mail.SMTP.ConnectTimeout)
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
		o := r.outcome(j, err)
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

// outcome classifies one attempt's result.
func (r *Runner) outcome(j job, err error) store.Outcome {
	now := r.now()
	o := store.Outcome{DeliveryID: j.d.ID, SubscriberID: j.d.SubscriberID, At: now, MessageID: j.msg.MessageID}
	attempt := j.d.Attempts + 1
	switch {
	case err == nil:
		o.Kind = store.OutcomeSent
	case errors.Is(err, mail.ErrInvalidMessage):
		// Retrying cannot mend a message that cannot be built.
		o.Kind = store.OutcomeGaveUp
		o.Error = err.Error()
		r.log.Error("message cannot be built", "to", j.d.Email, "err", err)
	case mail.RecipientRefused(err):
		o.Kind = store.OutcomePermanent
		o.Error = err.Error()
		r.log.Warn("permanent failure", "to", j.d.Email, "err", err)
	case mail.Classify(err) == mail.Permanent && attempt < r.cfg.Mail.MaxAttempts:
		// A 5xx that refuses us rather than the reader (MAIL FROM, say) is a
		// problem of configuration: keep the delivery for a run after the fix.
		o.Kind = store.OutcomeRetry
		o.Error = err.Error()
		o.NextAttempt = now.Add(backoff(r.cfg.Mail.RetryBase, j.d.Attempts))
		r.log.Error("the server refused the message, not the recipient; check mail.from and the relay", "to", j.d.Email, "err", err)
	case attempt >= r.cfg.Mail.MaxAttempts:
		o.Kind = store.OutcomeGaveUp
		o.Error = err.Error()
		r.log.Warn("giving up after temporary failures", "to", j.d.Email, "attempts", attempt, "err", err)
	default:
		o.Kind = store.OutcomeRetry
		o.Error = err.Error()
		o.NextAttempt = now.Add(backoff(r.cfg.Mail.RetryBase, j.d.Attempts))
		r.log.Info("temporary failure, will retry", "to", j.d.Email, "attempt", attempt, "at", o.NextAttempt, "err", err)
	}
	return o
}

// backoff is base doubled per earlier attempt, capped.
func backoff(base time.Duration, earlier int) time.Duration {
	d := base
	for i := 0; i < earlier && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// ledger commits outcomes in groups and acknowledges each once committed.
// With conns senders, each waiting for its own acknowledgement, a group
// that is still small waits up to groupWait for more: a commit costs far
// more than an outcome in it, and every sender not yet heard from is busy
// on the wire and will report soon.
func (r *Runner) ledger(results <-chan recorded, note func(store.Outcome), sum *Summary, conns int) error {
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
			// A fresh context: outcomes of messages already accepted must be recorded
			// even when the run is being stopped.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			suppressed, err := r.store.RecordOutcomes(ctx, outs, r.cfg.Mail.BounceLimit)
			cancel()
			if err != nil {
				failed = fmt.Errorf("record outcomes: %w", err)
				r.log.Error("ledger write failed; stopping the send", "err", err)
			} else {
				for _, o := range outs {
					note(o)
				}
				sum.Suppressed += len(suppressed)
				for _, id := range suppressed {
					r.log.Warn("address suppressed after hard failures", "subscriber", id)
				}
			}
		}
		for _, rec := range batch {
			if rec.ack != nil {
				rec.ack <- failed
			}
		}
	}
	return failed
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

// message builds the digest email for one subscriber.
func (r *Runner) message(digestID, subscriberID int64, email, name string, items []content.Piece, now time.Time) (*mail.Message, error) {
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
		MessageID:         fmt.Sprintf("digest-%d-%d@%s", digestID, subscriberID, r.domain),
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
