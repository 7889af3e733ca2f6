// Package cycle runs one publishing cycle: load the pieces, record the new ones,
// build the feeds and archive, sync the subscriber list, plan the digests due and
// send them through the delivery ledger. It is the only package that ties content,
// feed, site, digest, mail and store together; the CLI, the scheduler and the HTTP
// server call it.
package cycle

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	netmail "net/mail"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"publisher/internal/config"
	"publisher/internal/content"
	"publisher/internal/digest"
	"publisher/internal/feed"
	"publisher/internal/mail"
	"publisher/internal/output"
	"publisher/internal/site"
	"publisher/internal/store"
	"publisher/internal/subscriber"
	"publisher/internal/token"
	"publisher/internal/websub"
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
	holder    string
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

// LeaseName is the store lease that keeps two runs from planning or sending at once.
const LeaseName = "send"

// leaseTTL bounds how long a run that died blocks the others.
const leaseTTL = 60 * time.Second

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
	})
	if err != nil {
		return nil, err
	}
	r.renderer, err = digest.NewRenderer(d.Templates, digest.SiteInfo{Title: cfg.Site.Title, BaseURL: cfg.Site.BaseURL, Description: cfg.Site.Description}, cfg.Digest.Subject)
	if err != nil {
		return nil, err
	}
	if r.transport == nil {
		r.transport, err = NewTransport(cfg)
		if err != nil {
			return nil, err
		}
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	r.holder = newHolder(hex.EncodeToString(b[:]))
	return r, nil
}

// NewTransport builds the mail transport the configuration names, with DKIM and the
// shared rate limit.
func NewTransport(cfg *config.Config) (mail.Transport, error) {
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
		helo := s.HELO
		if helo == "" {
			if a, err := netmail.ParseAddress(cfg.Mail.From); err == nil {
				helo = a.Address[strings.LastIndex(a.Address, "@")+1:]
			}
		}
		t, err := mail.NewSMTPTransport(mail.SMTPConfig{
			Host: s.Host, Port: s.Port, Username: s.Username, Password: s.Password, TLS: s.TLS,
			HELO: helo, ConnectTimeout: s.ConnectTimeout, SendTimeout: s.SendTimeout, DKIM: dkim,
		})
		if err != nil {
			return nil, fmt.Errorf("mail.smtp: %w", err)
		}
		return mail.Limited(t, s.Rate, s.Connections), nil
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
	return fmt.Sprintf("pieces %d (%d new), files written %d, planned %d, sent %d, retried %d, failed %d, suppressed %d, skipped %d, pending %d",
		s.Pieces, s.NewPieces, s.Output.Written, s.Planned, s.Sent, s.Retried, s.Failed, s.Suppressed, s.Skipped, s.Pending)
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
	// walks of 10,000 stats each on a large archive, independent of each other.
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

	ok, err := r.acquireLease(ctx, now)
	if err != nil {
		return sum, fmt.Errorf("lease: %w", err)
	}
	if !ok {
		sum.SendingElsewhere = true
		r.log.Info("another run holds the send lease; leaving planning and sending to it")
		return sum, nil
	}
	leaseCtx, stopLease := context.WithCancelCause(ctx)
	renewed := make(chan struct{})
	go r.keepLease(leaseCtx, stopLease, renewed)
	defer func() {
		stopLease(nil)
		<-renewed
		// Released with a fresh context: the run's own may be cancelled by now.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := r.store.ReleaseLease(rctx, LeaseName, r.holder); err != nil {
			r.log.Warn("releasing lease", "err", err)
		}
	}()

	if sum.BuildSkipped {
		// The build did not need the pieces; planning and sending need them only
		// when a subscriber is due or a delivery is pending. Nobody due now means
		// plan would record nothing, and nothing pending means send would send
		// nothing: skipping both is the same as running them a moment earlier.
		needPieces, anyDue, err := r.piecesNeeded(leaseCtx, newest)
		if err != nil {
			return sum, err
		}
		switch {
		case needPieces:
			if pieces, err = r.Pieces(leaseCtx, sum, true); err != nil {
				return sum, err
			}
		case anyDue:
			// Nothing is new to anyone due: plan without pieces (it only marks them
			// served); nothing is pending, so there is nothing to send.
			r.log.Info("subscribers due, but nothing new for any of them")
			return sum, r.plan(leaseCtx, sum, nil)
		default:
			r.log.Info("no subscriber due and no delivery pending")
			return sum, nil
		}
	}
	if err := r.plan(leaseCtx, sum, pieces); err != nil {
		return sum, err
	}
	if err := r.send(leaseCtx, sum, pieces, opts.RetryNow); err != nil {
		if cause := context.Cause(leaseCtx); cause != nil && !errors.Is(cause, context.Canceled) {
			return sum, cause
		}
		return sum, err
	}
	return sum, nil
}

// build loads the pieces, renders the feeds and archive and writes them, each file
// handed to the writer as it is rendered, so the output is never held whole.
// With buildOnly the pieces come without their plain text.
// inputs is the fingerprint taken before loading; a complete build records it.
// files are the content files the fingerprint's walk found (nil: walk again).
func (r *Runner) build(ctx context.Context, sum *Summary, inputs string, files []string, buildOnly bool) ([]content.Piece, error) {
	// Only the digests read the pieces' plain text.
	pieces, err := r.loadPieces(ctx, sum, true, !buildOnly, files)
	if err != nil {
		return nil, err
	}
	r.forgetBuildState()
	w, err := output.NewWriter(r.cfg.Output.Dir)
	if err != nil {
		return nil, fmt.Errorf("output.dir %s: %w", r.cfg.Output.Dir, err)
	}
	produced := 0
	err = r.Render(pieces, func(f output.File) {
		produced++
		w.Add(f)
	})
	var missing *partMissingError
	if err != nil && (produced == 0 || errors.As(err, &missing)) {
		// Nothing rendered, or no feed: leave the output as it was rather than
		// remove what was not written.
		if aerr := w.Abort(); aerr != nil {
			r.log.Error("output", "err", aerr)
		}
		return nil, err
	}
	complete := err == nil
	if err != nil {
		r.log.Error("feeds and archive: pieces left out", "err", err)
	}
	sum.Output, err = w.Close()
	if err != nil {
		return nil, fmt.Errorf("output.dir %s: %w", r.cfg.Output.Dir, err)
	}
	r.log.Info("built feeds and archive", "pieces", len(pieces), "new", sum.NewPieces, "written", sum.Output.Written, "unchanged", sum.Output.Unchanged, "removed", sum.Output.Removed)
	if complete && inputs != "" {
		r.saveBuildState(ctx, buildState{Inputs: inputs, Pieces: len(pieces), Topics: topicList(pieces), Problems: sum.ContentProblems})
	}
	if sum.Output.Written > 0 {
		r.pingHubs(ctx)
	}
	return pieces, nil
}

// piecesNeeded says what planning and sending need when the build was skipped:
// the pieces, when a delivery is pending or a due subscriber has not yet been
// told of the newest piece; a planning pass without pieces, when subscribers are
// due but nothing is new to any of them (it still marks them served, so a daily
// digest keeps its moment); or nothing at all.
// newest is the latest first-seen time, as the last build recorded it.
func (r *Runner) piecesNeeded(ctx context.Context, newest time.Time) (needPieces, anyDue bool, err error) {
	counts, err := r.store.CountDeliveries(ctx)
	if err != nil {
		return false, false, fmt.Errorf("count deliveries: %w", err)
	}
	if counts.Pending > 0 {
		return true, true, nil
	}
	now := r.now()
	err = r.store.EachSubscriber(ctx, []string{store.StatusActive}, func(s store.Subscriber) error {
		if !r.policy.Due(digestSubscriber(s), now) {
			return nil
		}
		anyDue = true
		// digest.Select's floor: nothing first seen at or before it is news to s.
		floor := s.JoinedAt.Add(-r.cfg.Digest.Lookback)
		if s.Watermark.After(floor) {
			floor = s.Watermark
		}
		if newest.After(floor) {
			return errFound
		}
		return nil
	})
	if errors.Is(err, errFound) {
		return true, true, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("list subscribers: %w", err)
	}
	return false, anyDue, nil
}

// errFound stops a walk over the subscribers at the first one that settles the answer.
var errFound = errors.New("found")

// keepLease renews the lease until ctx ends; losing it stops the send.
func (r *Runner) keepLease(ctx context.Context, stop context.CancelCauseFunc, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(leaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			ok, err := r.store.AcquireLease(ctx, LeaseName, r.holder, leaseTTL, r.now())
			if ctx.Err() != nil {
				return
			}
			if err != nil || !ok {
				stop(fmt.Errorf("lost the send lease (err: %v)", err))
				return
			}
		}
	}
}

// Pieces loads the content folder, records the pieces' first-seen times (when
// record is set; otherwise unseen pieces count as seen now), and returns the pieces
// newest first.
func (r *Runner) Pieces(ctx context.Context, sum *Summary, record bool) ([]content.Piece, error) {
	return r.loadPieces(ctx, sum, record, true, nil)
}

// loadPieces is Pieces; without withText the pieces' plain text is left out
// (a build alone never reads it). files, when not nil, are the content files
// already listed (content.Options.Files).
func (r *Runner) loadPieces(ctx context.Context, sum *Summary, record, withText bool, files []string) ([]content.Piece, error) {
	opts := content.Options{MaxBytes: r.cfg.Content.MaxBytes, SkipText: !withText, Files: files}
	// Links are made absolute as the pieces load, against each piece's page:
	// the archive, the feeds and the emails all resolve them there, and the
	// plain text of the emails then carries absolute URLs too.
	if base, err := feed.ParseBase(r.cfg.Site.BaseURL); err == nil {
		opts.LinkBase = func(slug string) *url.URL { return feed.PieceURL(base, slug) }
	}
	pieces, problems, err := content.Load(ctx, r.cfg.Content.Dir, opts)
	sum.PiecesRead = true
	sum.ContentProblems = problems
	r.logProblems(problems)
	if err != nil {
		return nil, fmt.Errorf("content.dir: %w", err)
	}
	seen := make([]store.PieceSeen, len(pieces))
	for i, p := range pieces {
		seen[i] = store.PieceSeen{ID: p.ID, Hash: p.Hash}
	}
	// The store keeps microseconds; so must "now", to tell new pieces from old.
	now := r.now().UTC().Truncate(time.Microsecond)
	var firstSeen map[string]time.Time
	if record {
		firstSeen, err = r.store.RecordPieces(ctx, seen, now)
	} else {
		firstSeen, err = r.store.FirstSeen(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("record pieces: %w", err)
	}
	for i := range pieces {
		fs, ok := firstSeen[pieces[i].ID]
		if !ok {
			fs = now
		}
		if fs.Equal(now) {
			sum.NewPieces++
		}
		pieces[i].FirstSeen = fs
	}
	digest.SortNewestFirst(pieces)
	sum.Pieces = len(pieces)
	topics := topicList(pieces)
	r.topics.Store(&topics)
	return pieces, nil
}

// Render produces every feed and archive file for pieces, handing each to emit as
// it is produced. Pieces that cannot be rendered are left out and named in the
// error; the files emitted are complete for the rest. When the archive cannot be
// rendered at all, the error comes with nothing emitted; when the feeds cannot
// (their settings are checked first, so only a failure to encode them is left),
// the error is a *partMissingError, after the archive went out.
func (r *Runner) Render(pieces []content.Piece, emit func(output.File)) error {
	opts := feed.Options{
		Title: r.cfg.Site.Title, Description: r.cfg.Site.Description, BaseURL: r.cfg.Site.BaseURL,
		Language: r.cfg.Site.Language, Items: r.cfg.Feed.Items, Hubs: r.cfg.Feed.WebSubHubs,
	}
	if err := feed.Check(opts); err != nil {
		return fmt.Errorf("feeds: %w", err)
	}
	// The feeds are a handful of files, rendered beside the archive's pages on
	// another core and emitted after them.
	type rendered struct {
		files []output.File
		err   error
	}
	feeds := make(chan rendered, 1)
	go func() {
		files, err := feed.Render(opts, pieces)
		feeds <- rendered{files, err}
	}()
	pages := 0
	siteErr := r.site.RenderTo(pieces, func(f output.File) {
		pages++
		emit(f)
	})
	fr := <-feeds
	if siteErr != nil && pages == 0 {
		return fmt.Errorf("archive: %w", siteErr)
	}
	if fr.err != nil && fr.files == nil {
		return &partMissingError{fmt.Errorf("feeds: %w", fr.err)}
	}
	for _, f := range fr.files {
		emit(f)
	}
	var errs []error
	if fr.err != nil {
		errs = append(errs, fmt.Errorf("feeds: %w", fr.err))
	}
	if siteErr != nil {
		errs = append(errs, fmt.Errorf("archive: %w", siteErr))
	}
	return errors.Join(errs...)
}

// partMissingError is a Render error after which the output lacks a whole part
// (every feed): a build must not remove the files it did not write this time.
type partMissingError struct{ err error }

func (e *partMissingError) Error() string { return e.err.Error() }
func (e *partMissingError) Unwrap() error { return e.err }

func (r *Runner) logProblems(problems []content.Problem) {
	for _, p := range problems {
		if p.Severity == content.Error {
			r.log.Error("content", "problem", p.String())
		} else {
			r.log.Warn("content", "problem", p.String())
		}
	}
}

// logUnchangedProblems reports the problems of the content a skipped build
// would have loaded: each error again (a piece is still not published), but the
// warnings, which the build that found them logged one by one, as a count:
// repeated on every run they would bury the rest of the log.
func (r *Runner) logUnchangedProblems(problems []content.Problem) {
	warnings := 0
	for _, p := range problems {
		if p.Severity == content.Error {
			r.log.Error("content", "problem", p.String())
		} else {
			warnings++
		}
	}
	if warnings > 0 {
		r.log.Warn("content: warnings unchanged since the build that logged them; publisher check lists them", "warnings", warnings)
	}
}

// syncSubscribers streams the list files into the store.
func (r *Runner) syncSubscribers(ctx context.Context, sum *Summary, now time.Time) error {
	var err error
	sum.Sync, err = r.store.SyncSubscribers(ctx, func(add func(store.SubscriberInput) error) error {
		problems, err := subscriber.ScanDir(r.cfg.Subscribers.Dir, r.cfg.Digest.DefaultCadence, func(row subscriber.Row) error {
			return add(toInput(row))
		})
		sum.ListProblems = problems
		return err
	}, now)
	for _, p := range sum.ListProblems {
		r.log.Warn("subscriber list", "problem", p.String())
	}
	if err != nil {
		return fmt.Errorf("subscribers.dir: %w", err)
	}
	for _, d := range sum.Sync.DuplicateExamples {
		r.log.Warn("subscriber list: address listed more than once; the later row wins", "address", d)
	}
	s := sum.Sync
	r.log.Info("synced subscriber lists", "added", s.Added, "updated", s.Updated, "reactivated", s.Reactivated, "gone", s.Gone, "kept_suppressed", s.KeptSuppressed, "duplicates", s.Duplicates)
	return nil
}

func toInput(row subscriber.Row) store.SubscriberInput {
	return store.SubscriberInput{
		Email: row.Email, Name: row.Name, Topics: row.Topics, Cadence: row.Cadence,
		Source: store.SourceFile, Status: store.StatusActive, ConsentSource: fmt.Sprintf("file %s:%d", row.File, row.Line),
	}
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

// topicList is the sorted set of topics the pieces carry.
func topicList(pieces []content.Piece) []string {
	var out []string
	for _, p := range pieces {
		out = append(out, p.Topics...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// pingHubs tells the WebSub hubs that the feeds changed. A hub that fails is
// logged; it never stops the run.
func (r *Runner) pingHubs(ctx context.Context) {
	hubs := r.cfg.Feed.WebSubHubs
	if len(hubs) == 0 {
		return
	}
	base := r.cfg.Site.BaseURL
	topics := []string{base + "feed.xml", base + "atom.xml", base + "feed.json"}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := websub.PingHubs(ctx, &http.Client{Timeout: 10 * time.Second}, hubs, topics); err != nil {
		r.log.Warn("websub", "err", err)
		return
	}
	r.log.Info("pinged WebSub hubs", "hubs", len(hubs))
}
