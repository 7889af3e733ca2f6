package cycle

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"publisher/internal/content"
	"publisher/internal/digest"
	"publisher/internal/feed"
	"publisher/internal/output"
	"publisher/internal/store"
	"publisher/internal/websub"
)

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
		var (
			files []output.File
			err   error
		)
		defer func() { feeds <- rendered{files, err} }()
		defer r.recovered("the feed renderer", &err)
		files, err = feed.Render(opts, pieces)
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
