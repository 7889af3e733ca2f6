package cycle

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"publisher/internal/content"
	"publisher/internal/osfile"
	"publisher/internal/output"
)

// buildStateName is the file, in data.dir, describing the last complete build, so
// that a run with nothing changed can skip parsing and rendering.
const buildStateName = "build-state.json"

// racyWindow: a content file modified this recently may be modified again within
// the file system's timestamp granularity without its mtime changing, so a build
// that saw it is not trusted to be skipped next time (git's "racy clean" rule).
const racyWindow = 2 * time.Second

// buildState is what a complete build leaves for the next run to compare with.
type buildState struct {
	// Inputs hashes everything the output is made from, except the store (see
	// FirstSeen): the content files' names, sizes and mtimes, the settings the
	// renderers read, the templates and the binary.
	Inputs string `json:"inputs"`
	// FirstSeen identifies the first-seen times of the pieces in the store,
	// which the feeds carry, by the store's summary of them
	// (store.PiecesSummary): pieces are only added, and their times never change.
	FirstSeen string `json:"first_seen"`
	// Newest is the latest first-seen time among them: what a skipped run compares
	// subscribers' watermarks with, without reading the store's pieces again.
	Newest time.Time `json:"newest"`
	// Output is output.Snapshot right after the build: the build is skipped only
	// when nobody has touched the files since.
	Output string `json:"output"`
	// What a skipped run reports as if it had loaded the pieces.
	Pieces   int               `json:"pieces"`
	Topics   []string          `json:"topics"`
	Problems []content.Problem `json:"problems"`
}

func (r *Runner) buildStatePath() string {
	return filepath.Join(r.cfg.Data.Dir, buildStateName)
}

// inputsFingerprint hashes what the build is made from. It returns "" when the
// content cannot be trusted to be unchanged by its mtimes (a file modified within
// racyWindow, or a file that cannot be read): such a build is never skipped.
// files lists the content folder's files as the walk found them (slash-separated,
// relative), for the build to load without walking the folder again; nil when
// the folder was not walked.
//
// It also leaves in r.inc what an incremental build needs: the hash of
// everything but the content (global) and each content file's stats.
func (r *Runner) inputsFingerprint() (fingerprint string, files []string) {
	r.inc.global, r.inc.stats, r.inc.seen = "", nil, nil
	g := sha256.New()
	fmt.Fprintf(g, "publisher build state 3\n")
	if !hashBinary(g) {
		return "", nil
	}
	// The sections the feeds and archive are rendered from; the others (mail,
	// subscribers, schedule) do not change a byte of the output.
	settings, err := json.Marshal([]any{r.cfg.Site, r.cfg.Content, r.cfg.Output, r.cfg.Templates, r.cfg.Feed, r.cfg.Digest.DefaultCadence})
	if err != nil {
		return "", nil
	}
	g.Write(settings)
	g.Write([]byte{'\n'})
	if r.templates != nil && !hashTemplates(g, r.templates) {
		return "", nil
	}
	global := hex.EncodeToString(g.Sum(nil))
	h := sha256.New()
	h.Write([]byte(global + "\n"))
	ok, files, stats := hashContent(h, r.cfg.Content.Dir, time.Now().Add(-racyWindow))
	r.inc.global, r.inc.stats = global, stats
	if !ok {
		return "", files
	}
	return hex.EncodeToString(h.Sum(nil)), files
}

// hashBinary identifies the running program: a rebuilt binary may render differently.
func hashBinary(h hash.Hash) bool {
	if bi, ok := debug.ReadBuildInfo(); ok {
		fmt.Fprintf(h, "version %s\n", bi.Main.Version)
		for _, s := range bi.Settings {
			fmt.Fprintf(h, "%s=%s\n", s.Key, s.Value)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return false
	}
	info, err := os.Stat(exe)
	if err != nil {
		return false
	}
	fmt.Fprintf(h, "binary %s %d %d\n", exe, info.Size(), info.ModTime().UnixNano())
	return true
}

// hashTemplates hashes every template file's bytes. With templates.dir set only
// the override files are listed; the embedded ones are part of the binary.
func hashTemplates(h hash.Hash, templates fs.FS) bool {
	err := fs.WalkDir(templates, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(templates, p)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "template %s %d\n", p, len(data))
		h.Write(data)
		return nil
	})
	return err == nil
}

// hashContent hashes the name, size, mtime and mode of every file under dir that
// content.Load could read (hidden files and folders are skipped, as Load skips
// them). It reports false when a file changed after racyAfter or cannot be read.
// files are those files' paths, relative to dir and slash-separated, or nil when
// dir could not be walked. stats holds each file's size, mtime and mode by
// path, but for a racy file's (which an incremental build must read again).
func hashContent(h hash.Hash, dir string, racyAfter time.Time) (ok bool, files []string, stats map[string]string) {
	type entry struct {
		rel    string
		folder bool
	}
	// Folders in lexical order, each before what it holds (filepath.WalkDir's
	// order), the lists grown a folder at a time.
	entries := []entry{{".", true}}
	var walk func(abs, rel string) error
	walk = func(abs, rel string) error {
		f, err := os.Open(abs)
		if err != nil {
			return err
		}
		list, err := f.ReadDir(-1)
		f.Close()
		if err != nil {
			return err
		}
		// Sorted by name here rather than by os.ReadDir, which compares
		// through the DirEntry interface: a third of the walk's time in a
		// folder of 10,000 pieces.
		folder := make([]entry, 0, len(list))
		for _, d := range list {
			if name := d.Name(); !content.Hidden(name) {
				folder = append(folder, entry{name, d.IsDir()})
			}
		}
		slices.SortFunc(folder, func(a, b entry) int { return strings.Compare(a.rel, b.rel) })
		entries = slices.Grow(entries, len(folder))
		files = slices.Grow(files, len(folder))
		for _, e := range folder {
			name := e.rel
			if rel != "" {
				e.rel = rel + "/" + name
			}
			entries = append(entries, e)
			if !e.folder {
				files = append(files, e.rel)
			} else if err := walk(filepath.Join(abs, name), e.rel); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(filepath.Clean(dir), ""); err != nil {
		return false, nil, nil
	}
	// Following a symlink to the file Load would read.
	infos, errs := osfile.StatAll(dir, files, true)
	stats = make(map[string]string, len(files))
	// The lines go to the hash a buffer at a time: fmt per line cost more than
	// the stats, and one buffer for them all runs to a megabyte.
	const flushAt = 32 << 10
	buf := make([]byte, 0, flushAt+1024)
	ok = true
	i := 0
	for _, e := range entries {
		if len(buf) >= flushAt {
			h.Write(buf)
			buf = buf[:0]
		}
		if e.folder {
			// A folder's own mtime only says its entries changed, and they are
			// hashed one by one.
			buf = append(append(append(buf, "folder "...), e.rel...), '\n')
			continue
		}
		st, err := infos[i], errs[i]
		i++
		if err != nil || st.ModTime.After(racyAfter) {
			ok = false // the other files' stats still serve an incremental build
			continue
		}
		buf = append(append(append(buf, "content "...), e.rel...), ' ')
		start := len(buf)
		buf = append(strconv.AppendInt(buf, st.Size, 10), ' ')
		buf = append(strconv.AppendInt(buf, st.ModTime.UnixNano(), 10), ' ')
		buf = append(strconv.AppendUint(buf, uint64(st.Mode), 8), '\n')
		stats[e.rel] = string(buf[start : len(buf)-1])
	}
	h.Write(buf)
	return ok, files, stats
}

// firstSeenFingerprint identifies every piece's first-seen time in the
// store by the store's summary of them, and returns the newest too. A build
// that recorded its pieces (r.inc.seen) does not ask again.
func (r *Runner) firstSeenFingerprint(ctx context.Context) (string, time.Time, error) {
	seen := r.inc.seen
	if seen == nil {
		s, err := r.store.PiecesSummary(ctx)
		if err != nil {
			return "", time.Time{}, fmt.Errorf("read first-seen times: %w", err)
		}
		seen = &s
	}
	return fmt.Sprintf("%d pieces, newest %d", seen.Count, seen.Newest.UnixMicro()), seen.Newest, nil
}

// snapshotOutput takes output.Snapshot of the output folder on a goroutine of
// its own, for a caller with other work to do meanwhile. The build of the same
// run reads it too (r.inc), to tell whether the output is as the last build
// left it.
func (r *Runner) snapshotOutput() *pendingSnapshot {
	p := &pendingSnapshot{ch: make(chan outputSnapshot, 1)}
	go func() {
		var o outputSnapshot
		defer func() { p.ch <- o }()
		defer r.recovered("the output snapshot", &o.err)
		snap, err := output.TakeSnap(r.cfg.Output.Dir)
		o = outputSnapshot{taken: snap, err: err}
		if err == nil {
			o.snap = snap.Sum()
		}
	}()
	r.inc.snapshot = p
	return p
}

// pendingSnapshot is a snapshot being taken; get waits for it.
type pendingSnapshot struct {
	ch   chan outputSnapshot
	once sync.Once
	val  outputSnapshot
}

func (p *pendingSnapshot) get() outputSnapshot {
	p.once.Do(func() { p.val = <-p.ch })
	return p.val
}

// outputSnapshot is what output.TakeSnap returned, and its sum.
type outputSnapshot struct {
	taken *output.Snap
	snap  string
	err   error
}

// unchangedBuild returns the last build's state when inputs (from
// inputsFingerprint) match it, the store's first-seen times are the same and the
// output folder is exactly as that build left it (snapshot delivers
// output.Snapshot of it, taken before any build): building again would write
// nothing. Any doubt (no state, a read error) means build.
func (r *Runner) unchangedBuild(ctx context.Context, inputs string, snapshot *pendingSnapshot) (*buildState, bool) {
	if inputs == "" {
		return nil, false
	}
	data, err := os.ReadFile(r.buildStatePath())
	if err != nil {
		return nil, false
	}
	// The inputs alone first, the state's first field: when they differ,
	// which is every build, the rest (thousands of problems in a large
	// archive) is not even scanned.
	if recorded, ok := firstString(data, "inputs"); ok && recorded != inputs {
		return nil, false
	}
	var st buildState
	if err := json.Unmarshal(data, &st); err != nil || st.Inputs != inputs {
		return nil, false
	}
	if st.Newest.IsZero() && st.Pieces > 0 {
		return nil, false // a state from before Newest was recorded
	}
	if seen, _, err := r.firstSeenFingerprint(ctx); err != nil || seen != st.FirstSeen {
		return nil, false
	}
	if o := snapshot.get(); o.err != nil || o.snap != st.Output {
		return nil, false
	}
	return &st, true
}

// firstString returns the value of the first field of the JSON object in
// data when that field is named key and holds a string.
func firstString(data []byte, key string) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "", false
	}
	if t, err := dec.Token(); err != nil || t != key {
		return "", false
	}
	t, err := dec.Token()
	v, ok := t.(string)
	return v, err == nil && ok
}

// saveBuildState records a complete build (st.Output is the output's snapshot
// right after it). Failing to record it only costs the next run a rebuild, so
// it is logged, not returned. No fsync: a state file lost in a crash also only
// costs a rebuild.
func (r *Runner) saveBuildState(ctx context.Context, st buildState) {
	path := r.buildStatePath()
	fail := func(err error) {
		_ = os.Remove(path)
		r.log.Warn("recording the build for the next run (it will build again)", "file", path, "err", err)
	}
	var err error
	st.FirstSeen, st.Newest, err = r.firstSeenFingerprint(ctx)
	if err != nil {
		fail(err)
		return
	}
	data, err := json.Marshal(st)
	if err != nil {
		fail(err)
		return
	}
	if err := writeRecord(path, data); err != nil {
		fail(err)
	}
}

// writeRecord writes one of the build's records (state, index), which a later
// build can always do without: to a temporary file, renamed into place once the
// old one is gone. Renaming over an existing file makes ext4 write the new
// one's blocks to disk at once (auto_da_alloc), which cost a build of 10,000
// pieces 80 ms for its 7 MB index; a record lost in a crash only costs a full
// build, and one left half written fails to read (the index has a checksum).
func writeRecord(path string, data []byte) error {
	return writeRecordFrom(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// writeRecordFrom is writeRecord of what write writes.
func writeRecordFrom(path string, write func(io.Writer) error) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err == nil {
		err = write(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

// forgetBuildState removes the record of the last build, before a build starts
// changing the output: a build that fails half way must not be mistaken for the
// complete one.
func (r *Runner) forgetBuildState() {
	if err := os.Remove(r.buildStatePath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		r.log.Warn("removing the record of the last build", "err", err)
	}
}
