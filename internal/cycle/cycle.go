// Package cycle runs one publishing cycle: load the pieces, record the new ones,
// build the feeds and archive, sync the subscriber list, plan the digests due and
// send them through the delivery ledger. It is the only package that ties content,
// feed, site, digest, mail and store together; the CLI, the scheduler and the HTTP
// server call it.
package cycle

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	netmail "net/mail"
	"strings"
	"sync/atomic"
	"time"

	"publisher/internal/config"
	"publisher/internal/content"
	"publisher/internal/digest"
	"publisher/internal/mail"
	"publisher/internal/output"
	"publisher/internal/site"
	"publisher/internal/store"
	"publisher/internal/subscriber"
	"publisher/internal/token"
)

// Runner holds what every cycle needs. It is safe to call Run from one goroutine at a
// time; the store's lease keeps other processes out.
type Runner struct {
	cfg       *config.Config
	store     store.Store
	transport mail.Transport
	templates fs.FS
	signer    *token.Signer
	log       *slog.Logger
	now       func() time.Time
	progress  io.Writer
	from      mail.Address
	replyTo   mail.Address
	mailto    string
	listID    string
	domain    string
	policy    digest.Policy
	site      *site.Site
	renderer  *digest.Renderer
	// topics is the topic list of the pieces last loaded, read by HTTP handlers.
	topics atomic.Pointer[[]string]
	// install is the installation's id, once read from the store.
	install atomic.Pointer[string]
	// inc is what this run's fingerprint found, for an incremental build (build.go).
	inc incState
	// views are the digests' pages in the browser (build.go).
	views viewPages
}

// Signer signs the links in emails; the HTTP side verifies them with the same one.
func (r *Runner) Signer() *token.Signer { return r.signer }

// From is the sender of every email.
func (r *Runner) From() mail.Address { return r.from }

// ReplyTo is the Reply-To of every email (zero when none is set).
func (r *Runner) ReplyTo() mail.Address { return r.replyTo }

// ListID is the List-Id of every email.
func (r *Runner) ListID() string { return r.listID }

// Topics lists the topics of the pieces last loaded, for sign-up and preference forms.
func (r *Runner) Topics() []string {
	if t := r.topics.Load(); t != nil {
		return *t
	}
	return nil
}

// Deps are the parts a Runner is built from.
type Deps struct {
	Config    *config.Config
	Store     store.Store
	Transport mail.Transport // nil: built from the configuration
	Templates fs.FS
	Logger    *slog.Logger
	// Now is the clock (tests move it); nil means time.Now.
	Now func() time.Time
	// Progress, when set, receives a progress bar during a send (a terminal).
	Progress io.Writer
}

// New checks the templates and the mail settings and returns a Runner.
func New(d Deps) (*Runner, error) {
	cfg := d.Config
	r := &Runner{cfg: cfg, store: d.Store, transport: d.Transport, templates: d.Templates, log: d.Logger, now: d.Now, progress: d.Progress}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	secret := cfg.Secret
	if secret == "" {
		// Only reachable with the file transport (config refuses smtp without a secret):
		// links in outbox files are for looking at, not for a real reader.
		secret = config.SampleSecret
	}
	signer, err := token.New(secret)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	r.signer = signer
	from, err := netmail.ParseAddress(cfg.Mail.From)
	if err != nil {
		return nil, fmt.Errorf("mail.from: %w", err)
	}
	r.from = mail.Address{Name: from.Name, Email: from.Address}
	r.domain = from.Address[strings.LastIndex(from.Address, "@")+1:]
	if cfg.Mail.ReplyTo != "" {
		rt, err := netmail.ParseAddress(cfg.Mail.ReplyTo)
		if err != nil {
			return nil, fmt.Errorf("mail.reply_to: %w", err)
		}
		r.replyTo = mail.Address{Name: rt.Name, Email: rt.Address}
	}
	r.mailto = from.Address
	if cfg.Mail.Unsubscribe != "" {
		a, err := netmail.ParseAddress(cfg.Mail.Unsubscribe)
		if err != nil {
			return nil, fmt.Errorf("mail.unsubscribe_mailto: %w", err)
		}
		r.mailto = a.Address
	}
	r.listID = cfg.Mail.ListID
	if r.listID == "" {
		r.listID = fmt.Sprintf("%s <digest.%s>", sanitizeHeader(cfg.Site.Title), r.domain)
	}
	hour, minute, _ := cfg.Digest.SendAtClock()
	day, _ := cfg.Digest.Weekday()
	r.policy = digest.Policy{Lookback: cfg.Digest.Lookback, SendHour: hour, SendMinute: minute, SendDay: day, Location: cfg.Digest.Location()}

	r.site, err = site.New(site.Options{
		Title: cfg.Site.Title, Description: cfg.Site.Description, BaseURL: cfg.Site.BaseURL,
		Language: cfg.Site.Language, Templates: d.Templates, SubscribeAction: cfg.Site.BaseURL + "subscribe",
		DefaultCadence: cfg.Digest.DefaultCadence, PageSize: cfg.Site.PageSize,
	})
	if err != nil {
		return nil, err
	}
	r.renderer, err = digest.NewRenderer(d.Templates, digest.SiteInfo{Title: cfg.Site.Title, BaseURL: cfg.Site.BaseURL, Description: cfg.Site.Description}, cfg.Digest.Subject,
		digest.WithFullText(cfg.Digest.Body == "full"), digest.WithViewPages(true))
	if err != nil {
		return nil, err
	}
	if r.transport == nil {
		r.transport, err = NewTransport(cfg, r.log)
		if err != nil {
			return nil, err
		}
	}
	return r, nil
}

// NewTransport builds the mail transport the configuration names, with DKIM and the
// rate limits: over several relays, a pool that spreads messages over them and
// moves a failing relay's messages to the others (its state changes go to log).
func NewTransport(cfg *config.Config, log *slog.Logger) (mail.Transport, error) {
	var dkim *mail.DKIM
	if cfg.Mail.DKIM.Domain != "" {
		var err error
		dkim, err = mail.LoadDKIM(cfg.Mail.DKIM.Domain, cfg.Mail.DKIM.Selector, cfg.Mail.DKIM.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("mail.dkim.key_file: %w", err)
		}
	}
	switch cfg.Mail.Transport {
	case "file":
		return &mail.FileTransport{Dir: cfg.Mail.OutboxDir, DKIM: dkim}, nil
	case "smtp":
		s := cfg.Mail.SMTP
		defaultHELO := ""
		if a, err := netmail.ParseAddress(cfg.Mail.From); err == nil {
			defaultHELO = a.Address[strings.LastIndex(a.Address, "@")+1:]
		}
		relays := s.RelayList()
		pool := make([]mail.Relay, len(relays))
		for i, r := range relays {
			t, err := mail.NewSMTPTransport(mail.SMTPConfig{
				Host: r.Host, Port: r.Port, Username: r.Username, Password: r.Password, TLS: r.TLS,
				HELO: cmp.Or(r.HELO, defaultHELO), ConnectTimeout: s.ConnectTimeout, SendTimeout: s.SendTimeout, DKIM: dkim,
			})
			if err != nil {
				if len(s.Relays) == 0 {
					return nil, fmt.Errorf("mail.smtp: %w", err)
				}
				return nil, fmt.Errorf("mail.smtp.relays[%d]: %w", i, err)
			}
			pool[i] = mail.Relay{Name: r.Name(), Transport: t, Connections: r.Connections, Rate: r.Rate}
		}
		if len(pool) == 1 {
			return mail.Limited(pool[0].Transport, pool[0].Rate, pool[0].Connections), nil
		}
		return mail.NewPool(mail.PoolConfig{Relays: pool, Logger: log})
	}
	return nil, fmt.Errorf("mail.transport: unknown %q", cfg.Mail.Transport)
}

// Summary is what one cycle did.
type Summary struct {
	Pieces           int
	NewPieces        int
	ContentProblems  []content.Problem
	Output           output.Stats
	ListProblems     []subscriber.Problem
	Sync             store.SyncResult
	Planned          int // deliveries planned this run
	Sent             int
	Retried          int // temporary failures, to be tried again
	Failed           int // permanent failures and deliveries given up
	Suppressed       int // addresses suppressed this run after hard failures
	Skipped          int // deliveries dropped because the subscriber left meanwhile
	Pending          int // deliveries still pending at the end (retries due later, or stopped)
	Elsewhere        int // deliveries other live senders (replicas) still hold at the end
	SendingElsewhere bool
	// BuildSkipped: nothing the feeds and archive are made from changed since the
	// last build, so the pieces were not parsed for it and nothing was rendered.
	BuildSkipped bool
	// PiecesRead: the content folder was parsed in this run.
	PiecesRead bool
	DryRun     bool
	WouldSend  int // dry run: messages that would go out
}

// ContentErrors counts the error-level problems among the pieces.
func (s *Summary) ContentErrors() int {
	n := 0
	for _, p := range s.ContentProblems {
		if p.Severity == content.Error {
			n++
		}
	}
	return n
}

// OK reports whether everything due went out.
func (s *Summary) OK() bool { return s.Failed == 0 && s.Pending == 0 }

// String is the one-line summary printed at the end of a run.
func (s *Summary) String() string {
	if s.DryRun {
		return fmt.Sprintf("dry run: %d pieces (%d new), %d messages would be sent", s.Pieces, s.NewPieces, s.WouldSend)
	}
	line := fmt.Sprintf("pieces %d (%d new), files written %d, planned %d, sent %d, retried %d, failed %d, suppressed %d, skipped %d, pending %d",
		s.Pieces, s.NewPieces, s.Output.Written, s.Planned, s.Sent, s.Retried, s.Failed, s.Suppressed, s.Skipped, s.Pending)
	if s.Elsewhere > 0 {
		line += fmt.Sprintf(", held by other senders %d", s.Elsewhere)
	}
	return line
}

// Options change what Run does.
type Options struct {
	// DryRun does everything but write files, record state and send.
	DryRun bool
	// BuildOnly stops after the feeds and archive (publisher build).
	BuildOnly bool
	// RetryNow sends pending deliveries whose retry is not yet due, once: for an
	// operator who has just fixed the relay.
	RetryNow bool
}

// Run performs one cycle. ctx cancelled means: stop taking new messages, finish the
// ones on the wire, record them, and return; the rest stays pending for the next run.
// A cycle that sends is recorded in the store's run history (health checks read it).
func (r *Runner) Run(ctx context.Context, opts Options) (*Summary, error) {
	if opts.DryRun || opts.BuildOnly {
		return r.run(ctx, opts)
	}
	runID, err := r.store.StartRun(ctx, r.now())
	if err != nil {
		return &Summary{}, fmt.Errorf("record run: %w", err)
	}
	sum, err := r.run(ctx, opts)
	ok := err == nil && sum.OK()
	text := sum.String()
	if err != nil {
		text += "; error: " + err.Error()
	}
	if ferr := r.store.FinishRun(context.WithoutCancel(ctx), runID, ok, text, r.now()); ferr != nil {
		r.log.Error("recording the run", "err", ferr)
	}
	return sum, err
}

func (r *Runner) run(ctx context.Context, opts Options) (*Summary, error) {
	sum := &Summary{DryRun: opts.DryRun}
	var pieces []content.Piece
	if opts.DryRun {
		var err error
		if pieces, err = r.Pieces(ctx, sum, false); err != nil {
			return sum, err
		}
		// Rendered but not written: a dry run still finds what would fail.
		produced := 0
		if err := r.Render(pieces, func(output.File) { produced++ }); err != nil {
			if produced == 0 {
				return sum, err
			}
			r.log.Error("feeds and archive: pieces left out", "err", err)
		}
		r.log.Info("built feeds and archive", "pieces", len(pieces), "new", sum.NewPieces)
		return sum, r.dryRun(ctx, sum, pieces)
	}

	// The output's snapshot is taken while the content is fingerprinted: two
	// walks of 10,000 stats each on a large archive, independent of each other;
	// and the build's index is read beside them when a build is all but certain.
	r.prefetchIndex()
	snapshot := r.snapshotOutput()
	inputs, contentFiles := r.inputsFingerprint()
	var newest time.Time // the latest first-seen time, when the build is skipped
	if st, ok := r.unchangedBuild(ctx, inputs, snapshot); ok {
		newest = st.Newest
		sum.BuildSkipped = true
		sum.Pieces = st.Pieces
		sum.ContentProblems = st.Problems
		r.logUnchangedProblems(st.Problems)
		topics := st.Topics
		r.topics.Store(&topics)
		r.log.Info("nothing changed since the last build: feeds and archive left as they are", "pieces", st.Pieces)
	} else {
		var err error
		if pieces, err = r.build(ctx, sum, inputs, contentFiles, opts.BuildOnly); err != nil {
			return sum, err
		}
	}
	if opts.BuildOnly {
		return sum, nil
	}

	now := r.now()
	if err := r.syncSubscribers(ctx, sum, now); err != nil {
		return sum, err
	}
	err := r.deliver(ctx, sum, pieces, newest, opts)
	r.purge(ctx)
	return sum, err
}

// deliver plans the digests due and sends what is pending, under the store's
// leases. With one sender at a time (SQLite) the run holds the send lease
// throughout, and leaves everything to another live holder. With shared
// sending (PostgreSQL) it plans under the plan lease (waiting while another
// replica plans), then sends beside the other replicas under a lease of its
// own, each claiming its own deliveries.
// pieces is nil when the build was skipped; newest is then the latest
// first-seen time the last build recorded.
func (r *Runner) deliver(ctx context.Context, sum *Summary, pieces []content.Piece, newest time.Time, opts Options) error {
	ttl := r.cfg.Store.LeaseTTL
	name := leaseSend
	var passes int64
	if r.store.SharedSend() {
		name = leasePlan
		var err error
		if passes, err = r.store.PlanPasses(ctx); err != nil {
			return err
		}
	}
	planner, err := waitForLease(ctx, r.store, r.log, name, ttl, !r.store.SharedSend())
	if errors.Is(err, errHeldElsewhere) {
		sum.SendingElsewhere = true
		r.log.Info("another run holds the send lease; leaving planning and sending to it")
		return nil
	}
	if err != nil {
		return fmt.Errorf("lease %s: %w", name, err)
	}
	defer planner.release(ctx)
	// A replica that planned while this one waited for the lease planned
	// everything due: its pass began after this run did.
	planned := false
	if r.store.SharedSend() {
		now, err := r.store.PlanPasses(planner.ctx)
		if err != nil {
			return leaseErr(planner, err)
		}
		if planned = now > passes; planned {
			r.log.Info("another replica planned while this one waited; sending beside it")
		}
	}

	if pieces == nil {
		// The build did not need the pieces; planning and sending need them only
		// when a subscriber is due or a delivery is pending. Nobody due now means
		// plan would record nothing, and nothing pending means send would send
		// nothing: skipping both is the same as running them a moment earlier.
		needPieces, anyDue, err := r.piecesNeeded(planner.ctx, newest)
		if err != nil {
			return leaseErr(planner, err)
		}
		switch {
		case needPieces:
			if pieces, err = r.Pieces(planner.ctx, sum, true); err != nil {
				return leaseErr(planner, err)
			}
		case anyDue && !planned:
			// Nothing is new to anyone due: plan without pieces (it only marks them
			// served); nothing is pending, so there is nothing to send.
			r.log.Info("subscribers due, but nothing new for any of them")
			return leaseErr(planner, r.plan(planner.ctx, planner, sum, nil))
		default:
			r.log.Info("no subscriber due and no delivery pending")
			return nil
		}
	}
	if !planned {
		if err := r.plan(planner.ctx, planner, sum, pieces); err != nil {
			return leaseErr(planner, err)
		}
	}
	sender := planner
	if r.store.SharedSend() {
		planner.release(ctx)
		if sender, err = acquireLease(ctx, r.store, r.log, leaseSenderPrefix+randomToken(), ttl); err != nil {
			return fmt.Errorf("sender lease: %w", err)
		}
		defer sender.release(ctx)
	}
	return leaseErr(sender, r.send(ctx, sender, sum, pieces, opts.RetryNow))
}

// leaseErr reports a lost lease as the reason err happened, when it is.
func leaseErr(h *heldLease, err error) error {
	if err == nil && !h.Lost() {
		return nil
	}
	if h.Lost() {
		return fmt.Errorf("stopped: %w", context.Cause(h.ctx))
	}
	return err
}

// sanitizeHeader drops control characters from text bound for a header.
func sanitizeHeader(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

// randomToken is 12 random hex digits.
func randomToken() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
