package cycle

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"publisher/internal/content"
	"publisher/internal/digest"
	"publisher/internal/feed"
	"publisher/internal/osfile"
	"publisher/internal/output"
	"publisher/internal/site"
	"publisher/internal/store"
	"publisher/internal/websub"
)

// incState is what one run's fingerprint found, for the build of the same
// run: the hash of everything the output is made from but the content, each
// content file's stats, and the output's snapshot before the build.
type incState struct {
	global   string
	stats    map[string]string
	snapshot *pendingSnapshot
	// seen sums up the store's pieces once this run recorded its own
	// (loadPieces), for the build's records.
	seen *store.PiecesSummary
	// prefetched is the last build's index being read ahead (prefetchIndex);
	// nil once taken.
	prefetched *indexRead
}

// indexRead is the last build's index being read and decoded on a goroutine
// of its own.
type indexRead struct {
	done chan struct{}
	idx  *buildIndex
	err  error
}

// prefetchIndex starts reading and decoding the last build's index when the
// content folder's entries changed after that build recorded its state (a
// piece added, removed or renamed): a build is then all but certain, and the
// index, megabytes on a large archive, is read while the folders are walked
// rather than after. An edit inside a file, or in a subfolder, leaves the
// folder's own time alone: the build then reads the index when it needs it,
// and a run with nothing to build reads none.
func (r *Runner) prefetchIndex() {
	r.inc.prefetched = nil
	state, err := os.Stat(r.buildStatePath())
	if err != nil {
		return
	}
	folder, err := os.Stat(r.cfg.Content.Dir)
	if err != nil || !folder.ModTime().After(state.ModTime()) {
		return
	}
	p := &indexRead{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		defer r.recovered("reading the build index", &p.err)
		data, err := readString(r.indexPath())
		if err != nil {
			p.err = err
			return
		}
		p.idx, p.err = decodeIndex(data)
	}()
	r.inc.prefetched = p
}

// buildIndexName is the file, in data.dir, that lets the next build render only
// what changed: what the last build parsed and what each file it wrote was
// rendered from.
const buildIndexName = "build-index"

// indexVersion changes whenever buildIndex or what it holds does.
const indexVersion = 2

// buildIndex is what a build leaves for the next one.
type buildIndex struct {
	Version int
	// Global hashes what every file depends on: the binary, the settings, the
	// templates, the id base. Another value means a full build.
	Global string
	// Output is output.Snapshot right after the build: the output must be
	// exactly as the build left it for a file to be kept.
	Output string
	// Content is content.Cache's record of every piece file, each piece with
	// its first-seen time.
	Content map[string]*content.FileResult
	// Seen is the store's summary of its pieces after the build recorded its
	// own: while the store's is the same, the first-seen times in Content
	// are the store's.
	Seen store.PiecesSummary
	// Files are the key of every file written, by path: a file whose key is
	// unchanged is kept.
	Files map[string]string
	// order lists Content's keys, as Load read them or the file held them:
	// when sorted, they need not be sorted again.
	order []string
	// encoded holds each result read from the file, but its first-seen time,
	// as the file had it: a result the next build takes unchanged (the same
	// pointer) is written back as those bytes rather than encoded again.
	encoded map[*content.FileResult]string
}

// firstBaseSetting is the store's record of the first site.base_url: feed
// entry ids are made on it, so that they survive a move to another host.
const firstBaseSetting = "site.first_base_url"

// build loads the pieces, renders the feeds and archive and writes them, each file
// handed to the writer as it is rendered, so the output is never held whole.
// When the last build left its index and nothing but the content changed
// since, the build is incremental: only the files whose inputs changed are
// rendered, the others are kept as they are, and the output is the same, byte
// for byte, as a full build's. With buildOnly the pieces come without their
// plain text.
// inputs is the fingerprint taken before loading; a complete build records it.
// files are the content files the fingerprint's walk found (nil: walk again).
func (r *Runner) build(ctx context.Context, sum *Summary, inputs string, files []string, buildOnly bool) ([]content.Piece, error) {
	idBase, err := r.idBase(ctx, true)
	if err != nil {
		return nil, err
	}
	global := hashStrings(r.inc.global, idBase)
	prev := r.readIndex(global)
	// Only the digests read the pieces' plain text.
	cache := &content.Cache{Stats: r.inc.stats}
	var prevSeen *store.PiecesSummary
	if prev != nil {
		cache.Prev, prevSeen = prev.Content, &prev.Seen
	}
	// The writer reads the output's manifest while the pieces load; it writes
	// nothing until files are added.
	type opened struct {
		w   *output.Writer
		err error
	}
	writer := make(chan opened, 1)
	go func() {
		w, err := output.NewWriter(r.cfg.Output.Dir)
		writer <- opened{w, err}
	}()
	pieces, err := r.loadPieces(ctx, sum, true, !buildOnly, files, cache, prevSeen)
	o := <-writer
	if err != nil {
		if o.err == nil {
			if aerr := o.w.Abort(); aerr != nil {
				r.log.Error("output", "err", aerr)
			}
		}
		return nil, err
	}
	if o.err != nil {
		return nil, fmt.Errorf("output.dir %s: %w", r.cfg.Output.Dir, o.err)
	}
	w := o.w
	r.forgetBuildState()
	// From here the output changes, and the last index no longer matches it:
	// it is removed while the build renders rather than when the new one
	// takes its place, as removing a file of megabytes waits on the disk
	// (10 ms for 7 MB here). A build that failed before this point leaves it
	// for the next one; one that stops after it leaves none.
	oldIndexGone := make(chan struct{})
	go func() {
		defer close(oldIndexGone)
		r.forgetIndex()
	}()
	defer func() { <-oldIndexGone }()
	keys := &fileKeys{w: w}
	if prev != nil {
		keys.prev = prev.Files
	}
	keys.next = make(map[string]string, len(keys.prev))
	produced := 0
	err = r.render(pieces, idBase, keys.fresh, func(f output.File) {
		produced++
		w.Add(f)
	})
	var missing *partMissingError
	if err != nil && (produced == 0 && keys.kept == 0 || errors.As(err, &missing)) {
		// Nothing rendered, or no feed: leave the output as it was rather than
		// remove what was not written.
		if aerr := w.Abort(); aerr != nil {
			r.log.Error("output", "err", aerr)
		}
		r.forgetIndex()
		return nil, err
	}
	complete := err == nil
	if err != nil {
		r.log.Error("feeds and archive: pieces left out", "err", err)
	}
	sum.Output, err = w.Close()
	if err != nil {
		r.forgetIndex()
		return nil, fmt.Errorf("output.dir %s: %w", r.cfg.Output.Dir, err)
	}
	mode := "full"
	if prev != nil && prev.Files != nil {
		mode = "incremental"
	}
	parsed := 0
	for _, r := range cache.Next {
		if !r.Reused {
			parsed++
		}
	}
	r.log.Info("built feeds and archive", "build", mode, "pieces", len(pieces), "new", sum.NewPieces, "files_parsed", parsed,
		"written", sum.Output.Written, "kept", sum.Output.Kept, "unchanged", sum.Output.Unchanged, "removed", sum.Output.Removed)
	// The index is encoded while the output's new snapshot, which it ends
	// with, is worked out.
	var (
		snap     string
		snapErr  error
		snapDone = make(chan struct{})
		saved    = make(chan error, 1)
	)
	go func() {
		idx := buildIndex{Version: indexVersion, Global: global, Content: cache.Next, Files: keys.next, order: cache.NextFiles}
		if prev != nil {
			idx.encoded = prev.encoded
		}
		if r.inc.seen != nil {
			idx.Seen = *r.inc.seen
		}
		<-oldIndexGone
		saved <- r.saveIndex(idx, func() (string, error) {
			<-snapDone
			return snap, snapErr
		})
	}()
	snap, snapErr = r.snapshotAfter(w.Changed())
	close(snapDone)
	if snapErr != nil {
		r.log.Warn("recording the build for the next run (it will build again)", "err", snapErr)
	} else if complete && inputs != "" {
		r.saveBuildState(ctx, buildState{Inputs: inputs, Output: snap, Pieces: len(pieces), Topics: topicList(pieces), Problems: sum.ContentProblems})
	}
	if err := <-saved; err != nil {
		r.forgetIndex()
		if snapErr == nil {
			r.log.Warn("recording the build's index (the next build will be a full one)", "file", r.indexPath(), "err", err)
		}
	}
	r.pingHubs(ctx, w.Changed())
	return pieces, nil
}

// snapshotAfter is output.Snapshot of the output folder after a build that
// wrote the files written: worked out from the snapshot taken before it when
// there is one, so that only those files are looked at again.
func (r *Runner) snapshotAfter(written []string) (string, error) {
	if p := r.inc.snapshot; p != nil {
		if before := p.get(); before.err == nil {
			after, err := before.taken.After(r.cfg.Output.Dir, written)
			if err != nil {
				return "", err
			}
			return after.Sum(), nil
		}
	}
	return output.Snapshot(r.cfg.Output.Dir)
}

// fileKeys decides, file by file, whether a build renders it: when its key (a
// hash of what it is made from) differs from the last build's, or the last
// build left none. A file it does not render is kept as it is.
type fileKeys struct {
	mu   sync.Mutex
	prev map[string]string
	next map[string]string
	w    *output.Writer
	kept int
}

func (k *fileKeys) fresh(path, key string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.next[path] = key
	if old, ok := k.prev[path]; ok && old == key {
		k.w.Keep(path)
		k.kept++
		return false
	}
	return true
}

// idBase is the base URL feed entry ids are made on: the first site.base_url
// the store recorded (recording the current one when none is, if record).
func (r *Runner) idBase(ctx context.Context, record bool) (string, error) {
	if !record {
		v, err := r.store.Setting(ctx, firstBaseSetting)
		if errors.Is(err, store.ErrNotFound) {
			return r.cfg.Site.BaseURL, nil
		}
		if err != nil {
			return "", fmt.Errorf("read %s: %w", firstBaseSetting, err)
		}
		return v, nil
	}
	v, err := r.store.SetSetting(ctx, firstBaseSetting, r.cfg.Site.BaseURL, true, r.now())
	if err != nil {
		return "", fmt.Errorf("record %s: %w", firstBaseSetting, err)
	}
	return v, nil
}

// Pieces loads the content folder, records the pieces' first-seen times (when
// record is set; otherwise unseen pieces count as seen now), and returns the pieces
// newest first. The files unchanged since the last build are not read again;
// their bodies are read when a digest asks for them.
func (r *Runner) Pieces(ctx context.Context, sum *Summary, record bool) ([]content.Piece, error) {
	cache := &content.Cache{Stats: r.inc.stats}
	var prevSeen *store.PiecesSummary
	if idBase, err := r.idBase(ctx, false); err == nil {
		if prev := r.readIndex(hashStrings(r.inc.global, idBase)); prev != nil {
			cache.Prev, prevSeen = prev.Content, &prev.Seen
		}
	}
	return r.loadPieces(ctx, sum, record, true, nil, cache, prevSeen)
}

// loadPieces is Pieces; without withText the pieces' plain text is left out
// (a build alone never reads it). files, when not nil, are the content files
// already listed (content.Options.Files). prevSeen is the store's summary
// the cache's first-seen times go with, if any.
func (r *Runner) loadPieces(ctx context.Context, sum *Summary, record, withText bool, files []string, cache *content.Cache, prevSeen *store.PiecesSummary) ([]content.Piece, error) {
	opts := content.Options{MaxBytes: r.cfg.Content.MaxBytes, MaxAssetBytes: r.cfg.Content.MaxAssetBytes, SkipText: !withText, Files: files, Cache: cache}
	// Links are made absolute as the pieces load, against each piece's page:
	// the archive, the feeds and the emails all resolve them there, and the
	// plain text of the emails then carries absolute URLs too.
	if base, err := feed.ParseBase(r.cfg.Site.BaseURL); err == nil {
		opts.LinkBase = func(slug string) *url.URL { return feed.PieceURL(base, slug) }
	}
	pieces, problems, err := content.Load(ctx, r.cfg.Content.Dir, opts)
	sum.PiecesRead = true
	sum.ContentProblems = problems
	// A piece file taken unchanged from the last build's index had its
	// warnings logged by the build that read it.
	r.logProblems(problems, func(p *content.Problem) bool {
		res := cache.Next[p.File]
		return res != nil && res.Reused
	})
	if err != nil {
		return nil, fmt.Errorf("content.dir: %w", err)
	}
	// The store keeps microseconds; so must "now", to tell new pieces from old.
	now := r.now().UTC().Truncate(time.Microsecond)
	if err := r.firstSeen(ctx, pieces, prevSeen, record, now); err != nil {
		return nil, fmt.Errorf("record pieces: %w", err)
	}
	for i := range pieces {
		if pieces[i].FirstSeen.Equal(now) {
			sum.NewPieces++
		}
	}
	digest.SortNewestFirst(pieces)
	sum.Pieces = len(pieces)
	topics := topicList(pieces)
	r.topics.Store(&topics)
	return pieces, nil
}

// firstSeen sets each piece's first-seen time from the store, recording the
// pieces it has not seen (and the hashes of those that changed) when record
// is set; otherwise an unseen piece counts as seen now.
//
// A piece taken unchanged from the cache was recorded by an earlier run, with
// the same hash: it is not written again. Its first-seen time is the one the
// cache carries while the store's summary is prevSeen (the store has the very
// pieces the last build left); otherwise every time is read from the store,
// and a piece the store has lost is recorded again.
func (r *Runner) firstSeen(ctx context.Context, pieces []content.Piece, prevSeen *store.PiecesSummary, record bool, now time.Time) error {
	if !record {
		seen, err := r.store.FirstSeen(ctx)
		if err != nil {
			return err
		}
		for i := range pieces {
			if t, ok := seen[pieces[i].ID]; ok {
				pieces[i].FirstSeen = t
			} else {
				pieces[i].FirstSeen = now
			}
		}
		return nil
	}
	reused := func(p *content.Piece) *content.FileResult {
		if res := p.Cached(); res != nil && res.Reused {
			return res
		}
		return nil
	}
	// summary is the store's summary of its pieces; asked is whether it is
	// up to date (asked once, and again only after this run recorded pieces).
	var (
		summary store.PiecesSummary
		asked   bool
		trusted bool
	)
	if prevSeen != nil {
		var err error
		if summary, err = r.store.PiecesSummary(ctx); err != nil {
			return err
		}
		asked = true
		trusted = summary.Count == prevSeen.Count && summary.Newest.Equal(prevSeen.Newest)
	}
	var stored map[string]time.Time // every first-seen time in the store, when read
	if !trusted {
		for i := range pieces {
			if reused(&pieces[i]) != nil {
				var err error
				if stored, err = r.store.FirstSeen(ctx); err != nil {
					return err
				}
				break
			}
		}
	}
	var (
		seen []store.PieceSeen
		to   []int // the pieces seen is about, by index
	)
	for i := range pieces {
		p := &pieces[i]
		if res := reused(p); res != nil {
			if trusted && !res.Piece.FirstSeen.IsZero() {
				p.FirstSeen = res.Piece.FirstSeen
				continue
			}
			if t, ok := stored[p.ID]; ok {
				p.FirstSeen = t
				continue
			}
		}
		seen = append(seen, store.PieceSeen{ID: p.ID, Hash: p.Hash})
		to = append(to, i)
	}
	if len(seen) > 0 {
		recorded, err := r.store.RecordPieces(ctx, seen, now)
		if err != nil {
			return err
		}
		asked = false // the pieces just recorded may be new to the store
		for _, i := range to {
			if t, ok := recorded[pieces[i].ID]; ok {
				pieces[i].FirstSeen = t
			} else {
				pieces[i].FirstSeen = now
			}
		}
	}
	if !asked {
		var err error
		if summary, err = r.store.PiecesSummary(ctx); err != nil {
			return err
		}
	}
	r.inc.seen = &summary
	// The cache carries the times into the build's index.
	for i := range pieces {
		if res := pieces[i].Cached(); res != nil {
			res.Piece.FirstSeen = pieces[i].FirstSeen
		}
	}
	return nil
}

// Render produces every feed and archive file for pieces, handing each to emit as
// it is produced. Pieces that cannot be rendered are left out and named in the
// error; the files emitted are complete for the rest. When the archive cannot be
// rendered at all, the error comes with nothing emitted; when the feeds cannot
// (their settings are checked first, so only a failure to encode them is left),
// the error is a *partMissingError, after the archive went out.
func (r *Runner) Render(pieces []content.Piece, emit func(output.File)) error {
	idBase, err := r.idBase(context.Background(), false)
	if err != nil {
		return err
	}
	return r.render(pieces, idBase, func(string, string) bool { return true }, emit)
}

func (r *Runner) feedOptions(idBase string) feed.Options {
	return feed.Options{
		Title: r.cfg.Site.Title, Description: r.cfg.Site.Description, BaseURL: r.cfg.Site.BaseURL,
		Language: r.cfg.Site.Language, Items: r.cfg.Feed.Items, Hubs: r.cfg.Feed.WebSubHubs,
		IDBase: idBase, IDAuthority: r.cfg.Feed.IDAuthority, OPMLFormat: r.cfg.Feed.OPMLFormat,
	}
}

// render is Render with a choice: fresh(path, key) says whether the file at
// path, made from what key hashes, must be rendered; a file it declines is
// left to the caller (kept as the last build wrote it).
func (r *Runner) render(pieces []content.Piece, idBase string, fresh func(path, key string) bool, emit func(output.File)) error {
	opts := r.feedOptions(idBase)
	if err := feed.Check(opts); err != nil {
		return fmt.Errorf("feeds: %w", err)
	}
	// The feeds are a handful of files, planned and rendered on another core
	// while the archive is planned and rendered, and emitted after it: their
	// pieces' bodies are read again from the files, which takes longer than
	// the archive's pages when few change. The two plans are independent;
	// each takes its own sorted copy.
	type rendered struct {
		files []output.File
		err   error
	}
	done := make(chan rendered, 1)
	go func() {
		var out rendered
		defer func() {
			if errors.Is(out.err, ErrPanicked) {
				out.files = nil // none of them can be trusted
			}
			done <- out
		}()
		defer r.recovered("the feed renderer", &out.err)
		feeds, err := feed.Plan(opts, pieces)
		if err != nil {
			out.err = err
			return
		}
		channels := feeds.Channels()
		var errs []error
		for i, c := range channels {
			render := false
			for _, f := range c.Files() {
				if fresh(f, c.Key) {
					render = true
				}
			}
			if !render {
				continue
			}
			files, err := feeds.RenderChannel(i)
			if files == nil {
				out = rendered{nil, err}
				return
			}
			out.files = append(out.files, files...)
			errs = append(errs, err)
		}
		opml, err := feeds.OPML()
		if err != nil {
			out = rendered{nil, err}
			return
		}
		out.files = append(out.files, opml)
		out.err = errors.Join(errs...)
	}()
	plan, err := r.site.Plan(pieces)
	if err != nil {
		<-done
		return fmt.Errorf("archive: %w", err)
	}
	pages, wanted := 0, 0
	siteErr := plan.Render(func(p site.Page) bool {
		if !fresh(p.Path, p.Key) {
			return false
		}
		wanted++
		return true
	}, func(f output.File) {
		pages++
		emit(f)
	})
	if siteErr != nil && pages == 0 && wanted > 0 {
		// Nothing of the archive: a template that fails on every page.
		<-done
		return fmt.Errorf("archive: %w", siteErr)
	}
	siteErr = errors.Join(plan.Problems(), siteErr)
	assetErr := r.emitAssets(pieces, fresh, emit)
	fr := <-done
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
	if assetErr != nil {
		errs = append(errs, assetErr)
	}
	return errors.Join(errs...)
}

// emitAssets hands over the files beside each piece (content.Piece.Assets),
// each to go beside the piece's page; an asset whose file is as the last
// build found it is kept.
func (r *Runner) emitAssets(pieces []content.Piece, fresh func(path, key string) bool, emit func(output.File)) error {
	var errs []error
	for i := range pieces {
		p := &pieces[i]
		if p.Draft || feed.CheckSlug(p.Slug) != nil {
			continue
		}
		for _, a := range p.Assets {
			dst := feed.PieceDir(p.Slug) + a.Dst
			if !fresh(dst, "asset "+a.Src+" "+r.inc.stats[a.Src]) {
				continue
			}
			data, err := readAsset(r.cfg.Content.Dir, a.Src, r.cfg.Content.MaxAssetBytes)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %s: %w", p.File, a.Src, err))
				continue
			}
			emit(output.File{Path: dst, Data: data})
		}
	}
	return errors.Join(errs...)
}

func readAsset(dir, src string, maxBytes int64) ([]byte, error) {
	f, err := osfile.Open(filepath.Join(dir, filepath.FromSlash(src)), os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(io.LimitReader(f, maxBytes+1)); err != nil {
		return nil, err
	}
	if int64(b.Len()) > maxBytes {
		return nil, fmt.Errorf("grew past content.max_asset_bytes (%d)", maxBytes)
	}
	return b.Bytes(), nil
}

// viewPages are the digests' pages on the site ("View in browser"), written
// into the output folder outside the build's manifest (emails stay in inboxes
// for years: no build removes them), once each per process.
type viewPages struct {
	mu      sync.Mutex
	on      bool
	written map[string]bool
}

func (v *viewPages) publishing(on bool) {
	v.mu.Lock()
	v.on = on
	v.mu.Unlock()
}

// publishView writes a digest's page while digests are being sent. A page
// that cannot be written is logged: the email still goes out.
func (r *Runner) publishView(page *digest.ViewPage) {
	if page == nil {
		return
	}
	v := &r.views
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.on || v.written[page.Path] {
		return
	}
	if _, err := output.WriteFile(r.cfg.Output.Dir, page.Path, page.HTML); err != nil {
		r.log.Error("the digest's page in the browser", "page", page.Path, "err", err)
		return
	}
	if v.written == nil {
		v.written = map[string]bool{}
	}
	v.written[page.Path] = true
}

// partMissingError is a Render error after which the output lacks a whole part
// (every feed): a build must not remove the files it did not write this time.
type partMissingError struct{ err error }

func (e *partMissingError) Error() string { return e.err.Error() }
func (e *partMissingError) Unwrap() error { return e.err }

func (r *Runner) indexPath() string { return filepath.Join(r.cfg.Data.Dir, buildIndexName) }

// readIndex returns the last build's index when an incremental build may use
// it: made with the same binary, settings, templates and id base (global),
// and the output folder exactly as that build left it. Anything else is nil:
// a full build.
func (r *Runner) readIndex(global string) *buildIndex {
	if r.inc.global == "" {
		return nil
	}
	var (
		idx *buildIndex
		err error
	)
	if p := r.inc.prefetched; p != nil {
		r.inc.prefetched = nil
		<-p.done
		idx, err = p.idx, p.err
	} else {
		var data string
		if data, err = readString(r.indexPath()); err == nil {
			idx, err = decodeIndex(data)
		}
	}
	if err != nil || idx.Global != global {
		return nil
	}
	if r.inc.snapshot != nil {
		if s := r.inc.snapshot.get(); s.err != nil || s.snap != idx.Output {
			idx.Files = nil // the output was touched: every file is rendered again
		}
	} else {
		idx.Files = nil
	}
	return idx
}

// readString reads a file into a string without copying it again.
func readString(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var b strings.Builder
	if info, err := f.Stat(); err == nil {
		b.Grow(int(info.Size()) + 1)
	}
	_, err = io.Copy(&b, f)
	return b.String(), err
}

// saveIndex records idx, with the output's snapshot output gives, for the
// next build. Failing only costs that build a full one.
func (r *Runner) saveIndex(idx buildIndex, output func() (string, error)) error {
	p := r.indexPath()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return writeRecordFrom(p, func(w io.Writer) error { return encodeIndex(w, &idx, output) })
}

func (r *Runner) forgetIndex() {
	if err := os.Remove(r.indexPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		r.log.Warn("removing the build's index", "err", err)
	}
}

func hashStrings(parts ...string) string {
	h := sha256.New()
	for _, s := range parts {
		fmt.Fprintf(h, "%d:%s\n", len(s), s)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// logProblems logs the problems of the content: each error (a piece is still
// not published), and each warning but those unchanged says were logged one by
// one by an earlier build, which are counted in one line instead: repeated on
// every run they would bury the rest of the log.
func (r *Runner) logProblems(problems []content.Problem, unchanged func(*content.Problem) bool) {
	warnings := 0
	for i := range problems {
		p := &problems[i]
		switch {
		case p.Severity == content.Error:
			r.log.Error("content", "problem", p.String())
		case unchanged(p):
			warnings++
		default:
			r.log.Warn("content", "problem", p.String())
		}
	}
	if warnings > 0 {
		r.log.Warn("content: warnings unchanged since the build that logged them; publisher check lists them", "warnings", warnings)
	}
}

// logUnchangedProblems reports the problems of the content a skipped build
// would have loaded: its warnings were all logged by the build that found them.
func (r *Runner) logUnchangedProblems(problems []content.Problem) {
	r.logProblems(problems, func(*content.Problem) bool { return true })
}

// topicList is the sorted set of topics the pieces carry.
func topicList(pieces []content.Piece) []string {
	seen := map[string]bool{}
	var out []string
	for i := range pieces {
		for _, t := range pieces[i].Topics {
			if !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
	}
	slices.Sort(out)
	return out
}

// pingHubs tells the WebSub hubs which feeds changed: every feed file the build
// wrote (the site's and each topic's, in each format). A hub that fails is
// logged; it never stops the run.
func (r *Runner) pingHubs(ctx context.Context, written []string) {
	hubs := r.cfg.Feed.WebSubHubs
	if len(hubs) == 0 {
		return
	}
	var topics []string
	for _, p := range written {
		switch path.Base(p) {
		case feed.RSSName, feed.AtomName, feed.JSONName:
			if dir := path.Dir(p); dir == "." || strings.HasPrefix(dir, "topics/") && path.Dir(dir) == "topics" {
				topics = append(topics, r.cfg.Site.BaseURL+p)
			}
		}
	}
	if len(topics) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := websub.PingHubs(ctx, &http.Client{Timeout: 10 * time.Second}, hubs, topics); err != nil {
		r.log.Warn("websub", "err", err)
		return
	}
	r.log.Info("pinged WebSub hubs", "hubs", len(hubs), "feeds", len(topics))
}
