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

// Who or what changed a subscriber's status, as the history records it
// (Change.By, StatusChange.By).
const (
	BySync    = "sync"    // the list files
	ByWeb     = "web"     // the reader, on the site: sign-up, confirmation, unsubscribe
	ByCLI     = "cli"     // an operator, with publisher subscribers
	BySend    = "send"    // the SMTP server's answers during a run (the bounce limit)
	ByMailbox = "mailbox" // a delivery status notification or complaint report read from the bounce mailbox
	ByWebhook = "webhook" // an email service provider's webhook
)

// Change says who or what changes a status, and why, for the history.
type Change struct {
	By     string
	Reason string
}

// StatusChange is one entry of a subscriber's history. From is "" for an
// address that was new.
type StatusChange struct {
	SubscriberID int64
	From, To     string
	By, Reason   string
	At           time.Time
}

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

// ErrErased is returned for an address erased on request: AddSubscriber
// refuses it unless told it may add it again (SubscriberInput.AfterErasure),
// and Export and Unsuppress find nothing but its hash.
var ErrErased = errors.New("erased on request")

// ErrInFlight is returned by Erase while a run holds a delivery to the
// address: erase it once the run is over.
var ErrInFlight = errors.New("a run is sending to this address")

// ErrNotSuppressed is returned by Unsuppress for an address that is not
// suppressed.
var ErrNotSuppressed = errors.New("not suppressed")

// ErrLeaseHeld is returned by AcquireLease when another holder has the lease and
// it has not expired.
var ErrLeaseHeld = errors.New("lease held by another process")

// ErrLeaseLost is returned when a write needs a lease (or a claim made under
// it) that has expired or been taken over: the caller must stop at once.
var ErrLeaseLost = errors.New("lease lost")

// PiecesSummary sums up the pieces a store has recorded (Store.PiecesSummary).
type PiecesSummary struct {
	Count int
	// Newest is the latest first-seen time; zero when Count is.
	Newest time.Time
}

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
	// AfterErasure adds an address erased on request (an operator who knows,
	// and has the person's word); without it such an address is refused.
	AfterErasure bool
}

// SyncResult counts what a list-file sync changed.
type SyncResult struct {
	Added, Updated, Reactivated, Gone, KeptSuppressed int
	// Erased counts listed addresses that were erased on request, and so not
	// added; ErasedOrigins says where the first few are listed (file and
	// line, not the address).
	Erased        int
	ErasedOrigins []string
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
	// FailingSince is when its first failed attempt was made (zero while it
	// has not failed); Refusals counts the refusals on the sender's side that
	// were charged to it (see Outcome.Refused).
	FailingSince time.Time
	Refusals     int
	CreatedAt    time.Time
}

// Outcome kinds for a delivery attempt.
const (
	OutcomeSent      = "sent"
	OutcomeRetry     = "retry"     // not delivered yet: try again at NextAttempt
	OutcomePermanent = "permanent" // the reader's hard bounce: counts toward the bounce limit
	OutcomeGaveUp    = "gave_up"   // failed for good, but not the reader's fault (retries ran out, or the message cannot be built)
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
	// Refused (with OutcomeRetry or OutcomeGaveUp) adds one to the delivery's
	// Refusals: a refusal on the sender's side that concerns this message.
	Refused bool
}

// OutcomeResult says what a batch of outcomes did besides recording them.
type OutcomeResult struct {
	// Suppressed lists the subscribers this batch suppressed (bounce limit reached).
	Suppressed []int64
	// Fenced lists the deliveries whose outcome was not written because the
	// delivery is no longer claimed under the writer's fence: another sender took
	// it over. The writer has lost its lease and must stop sending.
	Fenced []int64
}

// Event kinds: what a bounce, a complaint report or a webhook says about a
// delivery (the words of package bounce).
const (
	EventHardBounce  = "hard_bounce" // the address is dead: counts toward the bounce limit
	EventSoftBounce  = "soft_bounce" // a full mailbox, or a server that gave up on temporary failures
	EventRefused     = "refused"     // refused for the sender's reasons (policy, content, a block list)
	EventDelayed     = "delayed"     // a server on the way is still trying
	EventDelivered   = "delivered"   // a server on the way, or the provider, delivered it
	EventComplaint   = "complaint"   // the reader marked it as spam: suppresses at once
	EventUnsubscribe = "unsubscribe" // the reader left through the provider's link: suppresses at once
)

// What recording an event did (EventResult.Effect).
const (
	EffectRecorded   = "recorded"   // kept for the record; a kind that changes nothing, or a suppression already in force
	EffectCounted    = "counted"    // a hard bounce, counted toward the bounce limit
	EffectSuppressed = "suppressed" // it suppressed the subscriber
	EffectRepeat     = "repeat"     // a hard bounce of a delivery whose bounce was counted already
	EffectUnmatched  = "unmatched"  // about neither a delivery nor a subscriber we know
	EffectErased     = "erased"     // about an address erased on request: not kept
)

// Event is one piece of feedback about a delivery, from the bounce mailbox or
// a provider's webhook.
type Event struct {
	// Source ("dsn", "arf", "ses", "postmark", "mailgun", "sendgrid") and ID,
	// the source's own id for it, make the event's identity: recorded once.
	Source, ID string
	Kind       string
	// Recipient is the reader's address as the report gives it; MessageID our
	// Message-ID of the digest (angle brackets optional). Either may be empty.
	Recipient, MessageID string
	Status, Diagnostic   string
	At                   time.Time // when it happened, by the report; zero when unknown
	// By is the way it came: ByMailbox or ByWebhook (the history's "by").
	By string
}

// EventResult says what recording an event did.
type EventResult struct {
	// New is false for an event recorded before, which changed nothing now.
	New bool
	// DeliveryID and SubscriberID are what it was matched to (0: nothing).
	DeliveryID, SubscriberID int64
	Effect                   string
}

// Person is all that is held about one address (Export).
type Person struct {
	// Subscriber is the zero Subscriber when only events name the address.
	Subscriber Subscriber
	History    []StatusChange
	Deliveries []DeliveryRecord
	Events     []EventRecord
}

// DeliveryRecord is one delivery of the ledger, as Export shows it.
type DeliveryRecord struct {
	ID, DigestID         int64
	Status               string
	PieceIDs             []string
	Attempts             int
	MessageID, LastError string
	CreatedAt            time.Time
	NextAttempt          time.Time // zero: at once
	SentAt               time.Time // zero unless sent
}

// EventRecord is one recorded event, as Export shows it (By is not kept).
type EventRecord struct {
	Event
	ReceivedAt time.Time
	DeliveryID int64 // 0: matched to no delivery
	Effect     string
}

// Purged counts what Purge deleted.
type Purged struct {
	Deliveries, Digests, Events int64
}

// Erasure says what Erase deleted.
type Erasure struct {
	Subscriber                  bool
	Deliveries, History, Events int64
}

// Lease is a named right to act alone (plan, or send on an engine with one
// sender), held until Expires by the store's clock and renewed by heartbeat.
// Holder is a random token made for each acquisition; Fence is a number drawn
// from one counter for each acquisition, so no two leases ever share one.
// Deliveries are claimed under a fence, and every ledger write names it: a
// holder whose lease expired cannot write over a claim someone else has taken.
type Lease struct {
	Name    string
	Holder  string
	Label   string // who holds it, for people reading logs (host, pid); never used to decide
	Fence   int64
	Expires time.Time
}

// PendingState describes the pending deliveries as one sender sees them.
type PendingState struct {
	// Open: pending deliveries this sender may claim (unclaimed, claimed by itself,
	// or claimed under an expired lease); NextOpen is when the first of them
	// comes due (zero when Open is 0).
	Open     int64
	NextOpen time.Time
	// Elsewhere: pending deliveries claimed by other senders whose leases are
	// live; ElsewhereUntil is the earliest of those leases' expiries.
	Elsewhere      int64
	ElsewhereUntil time.Time
}

// DeliveryCounts summarises the ledger.
type DeliveryCounts struct {
	Pending, Sent, Failed, Skipped int64
	// LastSent is when the server last accepted a message (zero if never).
	LastSent time.Time
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
	// Engine names the database engine: "sqlite" or "postgres".
	Engine() string
	// SharedSend reports whether several processes may send the same digest at
	// once, each claiming its own deliveries (PostgreSQL). Without it one process
	// plans and sends at a time (SQLite: one writer, one machine).
	SharedSend() bool

	// RecordPieces stores the first-seen time (now) of every id not seen before,
	// updates hashes, and returns the first-seen time of every id passed in.
	RecordPieces(ctx context.Context, pieces []PieceSeen, now time.Time) (map[string]time.Time, error)
	// FirstSeen returns the first-seen time of every piece recorded, writing nothing.
	FirstSeen(ctx context.Context) (map[string]time.Time, error)
	// PiecesSummary returns how many pieces are recorded and the latest of
	// their first-seen times: pieces are only ever added and a first-seen time
	// never changes, so an equal summary means the very same times.
	PiecesSummary(ctx context.Context) (PiecesSummary, error)

	// SyncSubscribers makes the file-sourced subscribers match the rows that each
	// hands to add, streamed so the list is never held whole: new addresses are added
	// active, known ones updated, file-sourced addresses not among the rows become
	// gone. Suppressed addresses keep their status whatever the files say. An error
	// from each (or add) rolls the whole sync back. Two syncs never interleave.
	SyncSubscribers(ctx context.Context, each func(add func(SubscriberInput) error) error, now time.Time) (SyncResult, error)
	// AddSubscriber inserts an address or updates its name, topics and cadence.
	// It never lifts a suppression; the returned subscriber shows the status in force.
	// A new address erased on request is refused with ErrErased, unless
	// in.AfterErasure.
	// A new address, or a gone one coming back, starts a history entry by its
	// Source (web, cli; file is the sync) with its ConsentSource as the reason.
	AddSubscriber(ctx context.Context, in SubscriberInput, now time.Time) (Subscriber, error)
	SubscriberByEmail(ctx context.Context, email string) (Subscriber, error)
	SubscriberByID(ctx context.Context, id int64) (Subscriber, error)
	// EachSubscriber streams subscribers in id order, by pages, without holding the list.
	// An empty status list means every status.
	EachSubscriber(ctx context.Context, statuses []string, fn func(Subscriber) error) error
	// SetStatus changes a subscriber's status (confirm, unsubscribe, suppress, ...)
	// and records the change, with who made it and why, in its history.
	// Setting active also records ConfirmedAt when it was zero.
	SetStatus(ctx context.Context, id int64, status string, why Change, now time.Time) error
	// StatusHistory lists every status change of a subscriber, oldest first.
	StatusHistory(ctx context.Context, id int64) ([]StatusChange, error)
	SetPreferences(ctx context.Context, id int64, topics []string, cadence string, now time.Time) error
	// Export returns all that is held about one address: its subscriber row,
	// history, deliveries and events. ErrNotFound when nothing is (wrapping
	// ErrErased too when the address was erased).
	Export(ctx context.Context, email string) (Person, error)
	// Erase deletes all that is held about one address (its deliveries,
	// history and events, then the subscriber) and keeps a keyed hash of it,
	// so that no list file or sign-up adds it again. ErrInFlight while a run
	// holds a delivery to it.
	Erase(ctx context.Context, email string, now time.Time) (Erasure, error)
	// Unsuppress lifts a suppression, an operator's decision: the address goes
	// back to active (pending when it signed up on the web and never
	// confirmed), its hard-bounce count starts afresh, and the history records
	// reason. ErrNotFound for an unknown address (wrapping ErrErased too for
	// an erased one), ErrNotSuppressed for one that is not suppressed.
	Unsuppress(ctx context.Context, email, reason string, now time.Time) (Subscriber, error)

	// CreateDigest starts a digest (one planning pass) and returns its id.
	CreateDigest(ctx context.Context, now time.Time) (int64, error)
	// PlanDeliveries, in one transaction and only while lease is held (else
	// ErrLeaseLost, writing nothing), inserts a pending delivery for each entry
	// with pieces and advances every entry's watermark and LastDigestAt (a due
	// subscriber with nothing new was served too). A subscriber already holding a
	// delivery in this digest is left alone.
	PlanDeliveries(ctx context.Context, lease Lease, digestID int64, planned []PlannedDelivery, now time.Time) error
	// PlanPasses counts the planning passes completed so far; PlanPassDone counts
	// one more, while lease is held. A replica that waited for the plan lease
	// while another planned sees the count move, and need not plan again.
	// planned is how many deliveries the pass added: after many, the engine may
	// refresh what its query planner knows of the ledger.
	PlanPasses(ctx context.Context) (int64, error)
	PlanPassDone(ctx context.Context, lease Lease, planned int) error
	// ClaimDeliveries claims, under fence, up to limit pending deliveries with
	// id > afterID whose next attempt is due at due and which no live lease has
	// claimed, and returns them in id order. Claimed rows stay this sender's
	// until its lease ends. ErrLeaseLost when fence's lease is no longer live.
	ClaimDeliveries(ctx context.Context, fence, afterID int64, due time.Time, limit int) ([]Delivery, error)
	// RecordOutcomes applies a batch of outcomes in one transaction, each only if
	// the delivery is still pending and claimed under fence (the others are
	// listed in the result as fenced). Every outcome but a skip records the
	// message id and counts an attempt; a retry records its time as the
	// delivery's first failure if it had none. A permanent outcome adds a hard
	// bounce to the subscriber and suppresses it (bounced) when it reaches
	// bounceLimit.
	RecordOutcomes(ctx context.Context, fence int64, outcomes []Outcome, bounceLimit int) (OutcomeResult, error)
	// RecordEvent records a bounce, complaint or webhook event once (by Source
	// and ID) and applies it, in one transaction: matched to the delivery by
	// our Message-ID, else to the subscriber by address, a hard bounce counts
	// toward bounceLimit (one per delivery; bounced at the limit), a complaint
	// suppresses as complained and an unsubscribe as unsubscribed at once;
	// other kinds are only recorded. A suppression in force is never replaced.
	// An event about an address erased on request is not kept (New is false,
	// Effect is EffectErased).
	RecordEvent(ctx context.Context, e Event, bounceLimit int, now time.Time) (EventResult, error)
	// Purge deletes, batch rows to a transaction, the finished deliveries of
	// digests planned before before (and those digests once empty), and the
	// events received before it. Pending deliveries and the status history
	// are kept.
	Purge(ctx context.Context, before time.Time, batch int) (Purged, error)
	// ReleaseClaims gives up the claims held under fence on deliveries still pending.
	ReleaseClaims(ctx context.Context, fence int64) error
	CountDeliveries(ctx context.Context) (DeliveryCounts, error)
	// PendingState says what is left for the sender holding fence, and what
	// other live senders hold.
	PendingState(ctx context.Context, fence int64) (PendingState, error)

	// AcquireLease takes the named lease for ttl when it is free or expired, with
	// a new holder token and fence. ErrLeaseHeld (with the current holder's
	// lease) when a live holder has it. Expiry is by the store's clock (the
	// database server's, for PostgreSQL), never by the caller's.
	AcquireLease(ctx context.Context, name, label string, ttl time.Duration) (Lease, error)
	// RenewLease extends a live lease by ttl from now. ErrLeaseLost when it has
	// expired or another holder took it: an expired lease is never renewed.
	RenewLease(ctx context.Context, lease Lease, ttl time.Duration) (Lease, error)
	// ReleaseLease gives the lease up if it is still this holder's; claims made
	// under it become free at once.
	ReleaseLease(ctx context.Context, lease Lease) error
	// LeaseByName returns the named lease as it stands, or ErrNotFound.
	LeaseByName(ctx context.Context, name string) (Lease, error)

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
