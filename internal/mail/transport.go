package mail

import (
	"context"
	"errors"
	"fmt"
	"net/textproto"
	"time"

	gomail "github.com/wneessen/go-mail"
	"golang.org/x/time/rate"
)

// Sender sends messages one after another over one connection. It is not
// safe for concurrent use: run one Sender per goroutine.
type Sender interface {
	Send(ctx context.Context, m *Message) error
	Close() error
}

// Transport hands out Senders.
type Transport interface {
	NewSender(ctx context.Context) (Sender, error)
}

// Class says whether sending the same message again may succeed.
type Class int

const (
	// NoError is the class of a nil error.
	NoError Class = iota
	// Temporary: 4xx replies, dial failures, timeouts, dropped connections.
	// Retry later.
	Temporary
	// Permanent: 5xx replies, or a message that can never be built.
	Permanent
)

func (c Class) String() string {
	switch c {
	case NoError:
		return "ok"
	case Temporary:
		return "temporary"
	case Permanent:
		return "permanent"
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// Stage tells where a send failed, so callers can tell a refused recipient
// (a bounce to count against the address) from a refused sender or a server
// that would not talk to us (which says nothing about the recipient).
type Stage string

// Stages of one delivery.
const (
	StageBuild Stage = "build"   // the message was invalid
	StageQueue Stage = "queue"   // waiting for the rate limiter
	StageDial  Stage = "connect" // connect, greeting, EHLO, STARTTLS, AUTH
	StageMail  Stage = "mail"    // MAIL FROM
	StageRcpt  Stage = "rcpt"    // RCPT TO
	StageData  Stage = "data"    // DATA, the content, the final reply
	StageWrite Stage = "write"   // writing the outbox file
)

// Error is what Senders return: the recipient and message it concerns, how
// to treat it and, when the server answered, its reply code.
type Error struct {
	Recipient string
	MessageID string
	Stage     Stage
	Class     Class
	Code      int    // SMTP reply code, 0 when there was no reply
	Enhanced  string // enhanced status code such as "5.1.1", when the server sent one
	// Cause says whose problem it is (the reader's mailbox or the sender's
	// side); CauseOf works it out when it is left CauseNone.
	Cause Cause
	Err   error
}

func (e *Error) Error() string {
	if e.Recipient == "" {
		return fmt.Sprintf("%s (%s): %v", e.Stage, e.Class, e.Err)
	}
	return fmt.Sprintf("send %s to %s (%s, %s): %v", e.MessageID, e.Recipient, e.Stage, e.Class, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// ErrNotSent marks a send that stopped, because its context ended, before the
// message's content was handed to the server: nothing can have been accepted,
// so the message may be sent again (by anyone) without a duplicate. A context
// that ends after the content went out does not interrupt the send: the
// server's answer is awaited (within the send timeout) so the ledger can say
// what happened.
var ErrNotSent = errors.New("stopped before the message was sent")

// NotSent reports whether err is a send stopped before anything was accepted.
func NotSent(err error) bool { return errors.Is(err, ErrNotSent) }

// sendable reports why a message must not be handed to the server now: ctx
// ended or its deadline passed. The deadline is compared with the clock rather
// than left to the context's timer, so a process resumed after a pause (SIGSTOP)
// sees at once that its time is up, before the timer has fired.
func sendable(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrNotSent, err)
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return fmt.Errorf("%w: %w", ErrNotSent, context.DeadlineExceeded)
	}
	return nil
}

// Classify says whether err is worth retrying. Errors this package did not
// make are judged by their kind: go-mail's SendError.IsTemp only looks for a
// leading "4", so network failures would otherwise look permanent.
func Classify(err error) Class {
	if err == nil {
		return NoError
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	return classify(err)
}

func classify(err error) Class {
	switch {
	case err == nil:
		return NoError
	case errors.Is(err, ErrInvalidMessage):
		return Permanent
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return Temporary
	}
	if code := Code(err); code >= 400 && code < 500 {
		return Temporary
	} else if code >= 500 && code < 600 {
		return Permanent
	}
	var se *gomail.SendError
	if errors.As(err, &se) {
		switch se.Reason {
		case gomail.ErrGetSender, gomail.ErrGetRcpts, gomail.ErrNoUnencoded:
			return Permanent // the message itself is at fault
		}
	}
	// Everything else is a connection that failed or went away: io.EOF,
	// net.Error, ECONNRESET, a timeout, a TLS failure. None says anything
	// about the recipient, so never let it count as a bounce.
	return Temporary
}

// Code returns the SMTP reply code carried by err, or 0.
func Code(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	var tp *textproto.Error
	if errors.As(err, &tp) {
		return tp.Code
	}
	var se *gomail.SendError
	if errors.As(err, &se) {
		return se.ErrorCode()
	}
	return 0
}

// Limited shares one token bucket between every Sender t hands out, so N
// connections together send at most perSecond messages a second.
// perSecond <= 0 means no limit.
func Limited(t Transport, perSecond float64, burst int) Transport {
	if perSecond <= 0 {
		return t
	}
	if burst < 1 {
		burst = 1
	}
	return &limitedTransport{next: t, limiter: rate.NewLimiter(rate.Limit(perSecond), burst)}
}

type limitedTransport struct {
	next    Transport
	limiter *rate.Limiter
}

func (l *limitedTransport) NewSender(ctx context.Context) (Sender, error) {
	s, err := l.next.NewSender(ctx)
	if err != nil {
		return nil, err
	}
	return &limitedSender{next: s, limiter: l.limiter}, nil
}

type limitedSender struct {
	next    Sender
	limiter *rate.Limiter
}

func (l *limitedSender) Send(ctx context.Context, m *Message) error {
	if err := l.limiter.Wait(ctx); err != nil {
		return &Error{Recipient: m.To.Email, MessageID: m.MessageID, Stage: StageQueue,
			Class: Temporary, Cause: CauseTemporary, Err: fmt.Errorf("rate limit: %w: %w", ErrNotSent, err)}
	}
	return l.next.Send(ctx, m)
}

func (l *limitedSender) Close() error { return l.next.Close() }
