package cycle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
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
	// FirstSeen hashes the first-seen times of the pieces in the store, which the
	// feeds carry.
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
func (r *Runner) inputsFingerprint() (fingerprint string, files []string) {
	h := sha256.New()
	fmt.Fprintf(h, "publisher build state 1\n")
	if !hashBinary(h) {
		return "", nil
	}
	// The sections the feeds and archive are rendered from; the others (mail,
	// subscribers, schedule) do not change a byte of the output.
	settings, err := json.Marshal([]any{r.cfg.Site, r.cfg.Content, r.cfg.Output, r.cfg.Templates, r.cfg.Feed})
	if err != nil {
		return "", nil
	}
	h.Write(settings)
	h.Write([]byte{'\n'})
	if r.templates != nil && !hashTemplates(h, r.templates) {
		return "", nil
	}
	ok, files := hashContent(h, r.cfg.Content.Dir, time.Now().Add(-racyWindow))
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
// dir could not be walked.
func hashContent(h hash.Hash, dir string, racyAfter time.Time) (ok bool, files []string) {
	type entry struct {
		rel    string
		folder bool
	}
	var entries []entry
	dir = filepath.Clean(dir)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir && content.Hidden(d.Name()) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		rel := "."
		if p != dir {
			// WalkDir's paths are filepath.Join(dir, …), and dir is clean.
			rel = filepath.ToSlash(strings.TrimPrefix(strings.TrimPrefix(p, dir), string(filepath.Separator)))
		}
		entries = append(entries, entry{rel, d.IsDir()})
		if !d.IsDir() {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		return false, nil
	}
	// Following a symlink to the file Load would read.
	stats, errs := osfile.StatAll(dir, files, true)
	// One buffer for the lines, hashed at the end: fmt per line cost more than
	// the stats.
	buf := make([]byte, 0, 64*len(entries))
	i := 0
	for _, e := range entries {
		if e.folder {
			// A folder's own mtime only says its entries changed, and they are
			// hashed one by one.
			buf = append(append(append(buf, "folder "...), e.rel...), '\n')
			continue
		}
		st, err := stats[i], errs[i]
		i++
		if err != nil || st.ModTime.After(racyAfter) {
			return false, files
		}
		buf = append(append(append(buf, "content "...), e.rel...), ' ')
		buf = append(strconv.AppendInt(buf, st.Size, 10), ' ')
		buf = append(strconv.AppendInt(buf, st.ModTime.UnixNano(), 10), ' ')
		buf = append(strconv.AppendUint(buf, uint64(st.Mode), 8), '\n')
	}
	h.Write(buf)
	return true, files
}

// firstSeenFingerprint hashes every piece's first-seen time in the store, and
// returns the newest of them too.
func (r *Runner) firstSeenFingerprint(ctx context.Context) (string, time.Time, error) {
	seen, err := r.store.FirstSeen(ctx)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("read first-seen times: %w", err)
	}
	ids := make([]string, 0, len(seen))
	var newest time.Time
	for id, t := range seen {
		ids = append(ids, id)
		if t.After(newest) {
			newest = t
		}
	}
	slices.Sort(ids)
	h := sha256.New()
	for _, id := range ids {
		h.Write([]byte(id + "\x00" + strconv.FormatInt(seen[id].UnixMicro(), 10) + "\n"))
	}
	return hex.EncodeToString(h.Sum(nil)), newest, nil
}

// snapshotOutput takes output.Snapshot of the output folder on a goroutine of
// its own, for a caller with other work to do meanwhile.
func (r *Runner) snapshotOutput() <-chan outputSnapshot {
	ch := make(chan outputSnapshot, 1)
	go func() {
		var (
			snap string
			err  error
		)
		defer func() { ch <- outputSnapshot{snap, err} }()
		defer r.recovered("the output snapshot", &err)
		snap, err = output.Snapshot(r.cfg.Output.Dir)
	}()
	return ch
}

// outputSnapshot is what output.Snapshot returned.
type outputSnapshot struct {
	snap string
	err  error
}

// unchangedBuild returns the last build's state when inputs (from
// inputsFingerprint) match it, the store's first-seen times are the same and the
// output folder is exactly as that build left it (snapshot delivers
// output.Snapshot of it, taken before any build): building again would write
// nothing. Any doubt (no state, a read error) means build.
func (r *Runner) unchangedBuild(ctx context.Context, inputs string, snapshot <-chan outputSnapshot) (*buildState, bool) {
	if inputs == "" {
		return nil, false
	}
	data, err := os.ReadFile(r.buildStatePath())
	if err != nil {
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
	if o := <-snapshot; o.err != nil || o.snap != st.Output {
		return nil, false
	}
	return &st, true
}

// saveBuildState records a complete build. Failing to record it only costs the
// next run a rebuild, so it is logged, not returned. No fsync: a state file lost
// in a crash also only costs a rebuild.
func (r *Runner) saveBuildState(ctx context.Context, st buildState) {
	path := r.buildStatePath()
	fail := func(err error) {
		_ = os.Remove(path)
		r.log.Warn("recording the build for the next run (it will build again)", "file", path, "err", err)
	}
	// The store's query and the output's stats are independent: run them at once.
	snapshot := r.snapshotOutput()
	var err error
	st.FirstSeen, st.Newest, err = r.firstSeenFingerprint(ctx)
	snap := <-snapshot
	if err == nil {
		st.Output, err = snap.snap, snap.err
	}
	if err != nil {
		fail(err)
		return
	}
	data, err := json.Marshal(st)
	if err != nil {
		fail(err)
		return
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		fail(err)
		return
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		fail(err)
	}
}

// forgetBuildState removes the record of the last build, before a build starts
// changing the output: a build that fails half way must not be mistaken for the
// complete one.
func (r *Runner) forgetBuildState() {
	if err := os.Remove(r.buildStatePath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		r.log.Warn("removing the record of the last build", "err", err)
	}
}
