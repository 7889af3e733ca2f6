// Package store owns all of publisher's state and all of its SQL: when each piece
// was first seen, the subscribers and their suppressions, the digests planned and the
// ledger of deliveries, and the leases that keep two runs from sending the same rows.
//
// It imports no other package of publisher: callers translate their own types into
// the plain records defined here.
package store

import (
	"context"
	"errors"
	"time"
)

// Subscriber statuses. Suppressed statuses always win over what the list files say.
const (
	StatusPending      = "pending"      // signed up on the web, not yet confirmed
	StatusActive       = "active"       // receives digests
	StatusGone         = "gone"         // vanished from the list files; back to active if it returns
	StatusUnsubscribed = "unsubscribed" // suppressed: the reader left
	StatusBounced      = "bounced"      // suppressed: too many hard failures
	StatusComplained   = "complained"   // suppressed: spam complaint
	StatusRemoved      = "removed"      // suppressed: removed by hand
)

// Subscriber sources.
const (
	SourceFile = "file"
	SourceWeb  = "web"
	SourceCLI  = "cli"
)

// IsSuppressed reports whether a status keeps an address from ever being mailed
// again until a person lifts it.
func IsSuppressed(status string) bool {
	switch status {
	case StatusUnsubscribed, StatusBounced, StatusComplained, StatusRemoved:
		return true
	}
	return false
}

// Delivery statuses.
const (
	DeliveryPending = "pending" // planned, not yet accepted by the server (may be retrying)
	DeliverySent    = "sent"    // accepted by the server
	DeliveryFailed  = "failed"  // permanent failure, or temporary ones past the attempt limit
	DeliverySkipped = "skipped" // the subscriber was suppressed before it went out
)

// ErrNotFound is returned when a looked-up row does not exist.
var ErrNotFound = errors.New("not found")

// PieceSeen is what a run tells the store about each piece it loaded.
type PieceSeen struct {
	ID   string
	Hash string
}

// Subscriber is one address and its preferences and state.
type Subscriber struct {
	ID            int64
	Email         string // lower-cased
	Name          string
	Topics        []string // empty: all topics
	Cadence       string   // immediate, daily, weekly
	Source        string
	Status        string
	JoinedAt      time.Time
	ConfirmedAt   time.Time // zero until confirmed
	ConsentIP     string
	ConsentSource string
	// Watermark: pieces first seen after it have not yet been considered for this
	// subscriber. Zero for a subscriber never planned (the planner floors it).
	Watermark    time.Time
	LastDigestAt time.Time // when the last digest for it was planned; zero if never
	HardBounces  int
	UpdatedAt    time.Time
}

// SubscriberInput is what a list file, the CLI or the web form says about an address.
type SubscriberInput struct {
	Email         string
	Name          string
	Topics        []string
	Cadence       string
	Source        string
	Status        string // for new rows: active (file, cli) or pending (web)
	ConsentIP     string
	ConsentSource string
}

// SyncResult counts what a list-file sync changed.
type SyncResult struct {
	Added, Updated, Reactivated, Gone, KeptSuppressed int
	// Duplicates counts rows whose address an earlier row already gave (the later
	// row wins); DuplicateExamples names the first few with where they stand.
	Duplicates        int
	DuplicateExamples []string
}

// PlannedDelivery is one subscriber's part of a digest plan. With no PieceIDs it only
// advances the subscriber's watermark (nothing new for them).
type PlannedDelivery struct {
	SubscriberID int64
	PieceIDs     []string
	Watermark    time.Time
}

// Delivery is one pending message of the ledger, joined with what sending it needs.
type Delivery struct {
	ID               int64
	DigestID         int64
	SubscriberID     int64
	Email            string
	Name             string
	SubscriberStatus string
	PieceIDs         []string
	Attempts         int
	CreatedAt        time.Time
}

// Outcome kinds for a delivery attempt.
const (
	OutcomeSent      = "sent"
	OutcomeRetry     = "retry"     // temporary failure: try again at NextAttempt
	OutcomePermanent = "permanent" // hard failure: counts toward the bounce limit
	OutcomeGaveUp    = "gave_up"   // temporary failures past the attempt limit
	OutcomeSkipped   = "skipped"   // subscriber suppressed meanwhile
)

// Outcome is the result of one attempt to send one delivery.
type Outcome struct {
	DeliveryID   int64
	SubscriberID int64
	Kind         string
	MessageID    string
	Error        string
	At           time.Time
	NextAttempt  time.Time // for OutcomeRetry
}

// DeliveryCounts summarises the ledger.
type DeliveryCounts struct {
	Pending, Sent, Failed, Skipped int64
}

// Run is one publishing cycle, as recorded for health checks and metrics.
type Run struct {
	ID         int64
	StartedAt  time.Time
	FinishedAt time.Time // zero while running
	OK         bool
	Summary    string
}

// Store is the whole of publisher's persistent state. Implementations must be safe
// for concurrent use.
type Store interface {
	Close() error
	Ping(ctx context.Context) error

	// RecordPieces stores the first-seen time (now) of every id not seen before,
	// updates hashes, and returns the first-seen time of every id passed in.
	RecordPieces(ctx context.Context, pieces []PieceSeen, now time.Time) (map[string]time.Time, error)
	// FirstSeen returns the first-seen time of every piece recorded, writing nothing.
	FirstSeen(ctx context.Context) (map[string]time.Time, error)

	// SyncSubscribers makes the file-sourced subscribers match the rows that each
	// hands to add, streamed so the list is never held whole: new addresses are added
	// active, known ones updated, file-sourced addresses not among the rows become
	// gone. Suppressed addresses keep their status whatever the files say. An error
	// from each (or add) rolls the whole sync back.
	SyncSubscribers(ctx context.Context, each func(add func(SubscriberInput) error) error, now time.Time) (SyncResult, error)
	// AddSubscriber inserts an address or updates its name, topics and cadence.
	// It never lifts a suppression; the returned subscriber shows the status in force.
	AddSubscriber(ctx context.Context, in SubscriberInput, now time.Time) (Subscriber, error)
	SubscriberByEmail(ctx context.Context, email string) (Subscriber, error)
	SubscriberByID(ctx context.Context, id int64) (Subscriber, error)
	// EachSubscriber streams subscribers in id order, by pages, without holding the list.
	// An empty status list means every status.
	EachSubscriber(ctx context.Context, statuses []string, fn func(Subscriber) error) error
	// SetStatus changes a subscriber's status (confirm, unsubscribe, suppress, ...).
	// Setting active also records ConfirmedAt when it was zero.
	SetStatus(ctx context.Context, id int64, status string, now time.Time) error
	SetPreferences(ctx context.Context, id int64, topics []string, cadence string, now time.Time) error

	// CreateDigest starts a digest (one planning pass) and returns its id.
	CreateDigest(ctx context.Context, now time.Time) (int64, error)
	// PlanDeliveries, in one transaction, inserts a pending delivery for each entry
	// with pieces and advances every entry's watermark and LastDigestAt (a due
	// subscriber with nothing new was served too). A subscriber already holding a
	// delivery in this digest is left alone.
	PlanDeliveries(ctx context.Context, digestID int64, planned []PlannedDelivery, now time.Time) error
	// PendingDeliveries returns up to limit pending deliveries with id > afterID whose
	// next attempt is due at now, in id order.
	PendingDeliveries(ctx context.Context, afterID int64, now time.Time, limit int) ([]Delivery, error)
	// RecordOutcomes applies a batch of outcomes in one transaction. A permanent
	// outcome adds a hard bounce to the subscriber and suppresses it (bounced) when
	// it reaches bounceLimit.
	// It returns the subscribers this batch suppressed.
	RecordOutcomes(ctx context.Context, outcomes []Outcome, bounceLimit int) (suppressed []int64, err error)
	CountDeliveries(ctx context.Context) (DeliveryCounts, error)
	// EarliestPending returns when the next pending delivery comes due, or ErrNotFound.
	EarliestPending(ctx context.Context) (time.Time, error)

	// AcquireLease takes or renews the named lease for holder until now+ttl.
	// It returns false when another holder has it and it has not expired.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, error)
	ReleaseLease(ctx context.Context, name, holder string) error
	// LeaseHolder says who holds the named lease and until when, or ErrNotFound.
	LeaseHolder(ctx context.Context, name string) (holder string, expires time.Time, err error)
	// TakeLease moves the lease from a holder known to be dead to holder, only if
	// from still holds it.
	TakeLease(ctx context.Context, name, from, holder string, ttl time.Duration, now time.Time) (bool, error)

	// Setting returns the value recorded under name, or ErrNotFound.
	Setting(ctx context.Context, name string) (string, error)
	// SetSetting records value under name and returns the value in force:
	// with keep, a value recorded before stays (a first value, recorded once).
	SetSetting(ctx context.Context, name, value string, keep bool, now time.Time) (string, error)

	StartRun(ctx context.Context, now time.Time) (int64, error)
	FinishRun(ctx context.Context, id int64, ok bool, summary string, now time.Time) error
	// LastRun returns the newest finished run, or ErrNotFound.
	LastRun(ctx context.Context) (Run, error)
}
