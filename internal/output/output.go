// Package output puts rendered files on disk so that a reader (a feed fetcher, a
// web server) never sees half a file, files whose bytes did not change keep their
// mtime (so HTTP caches and rsync stay quiet), and files an earlier build produced
// but this one does not are removed — never files somebody else put there.
package output

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"publisher/internal/osfile"
)

// ManifestName is the file, in the output folder, listing what Write produced,
// so that the next Write knows what it may remove.
const ManifestName = ".publisher-manifest"

// File is one output file. Path is slash-separated and relative to the output folder.
type File struct {
	Path string
	Data []byte
	// Release, when set, is called once Data is no longer needed (written,
	// found unchanged, or refused), so that its producer can reuse the buffer.
	Release func()
}

// Stats counts what one Write did.
type Stats struct {
	Written   int // created or replaced
	Unchanged int // same bytes already there: left alone
	Kept      int // not handed over again but kept (Writer.Keep)
	Removed   int // produced by an earlier Write, gone from this one
}

// writers is how many files are written at once: enough to overlap the kernel's
// work on one file with the renderer producing the next, few enough that the
// files waiting in the queue stay a handful. On 2 cores, 2 writers spent less
// system time than 4 in each of four alternating builds (the same wall time).
const writers = 2

// Write makes dir hold files: a Writer fed every file, then closed.
func Write(dir string, files []File) (Stats, error) {
	w, err := NewWriter(dir)
	if err != nil {
		return Stats{}, err
	}
	for _, f := range files {
		w.Add(f)
	}
	return w.Close()
}

// Writer puts files into one output folder as they are handed to it, so a build
// never holds all of its output at once. Each file is written to a temporary file
// beside it and renamed over the old one, so the swap is atomic; a file whose bytes
// are already there is left alone. Close waits for the writes, removes the files
// an earlier build produced and this one did not, and records the new set.
//
// Files are not fsynced one by one: the output can always be rebuilt from the
// content, and the rename already guarantees a reader sees either the whole old or
// the whole new file. Only the manifest is synced (when it changes), because a
// lost manifest would leave stale files behind for good.
//
// A bad path or a failed write is reported by Close (all such errors joined)
// without stopping the other files.
type Writer struct {
	dir      string
	root     *os.Root
	previous []string
	jobs     chan job
	wg       sync.WaitGroup

	mu      sync.Mutex
	wanted  map[string]bool
	folders map[string]*folderCheck // folders checked or made in this Write
	stats   Stats
	changed []string // written (created or replaced)
	errs    []error
	closed  bool
}

// Changed lists the files written (created or replaced), sorted, once Close
// returned: what readers of the output should hear of.
func (w *Writer) Changed() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.changed)
}

type job struct {
	name    string
	data    []byte
	release func()
}

// NewWriter opens dir (creating it) and starts the writers.
func NewWriter(dir string) (*Writer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("output: create %s: %w", dir, err)
	}
	// os.Root refuses any path (or symlink inside dir) that leads outside dir; it
	// guards the removals. Writes use plain calls on paths whose folders were
	// checked once (see folder), which costs a fraction of os.Root's walk per call.
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("output: open %s: %w", dir, err)
	}
	previous, err := readManifest(root)
	if err != nil {
		_ = root.Close()
		return nil, fmt.Errorf("output: %s: %w", path.Join(dir, ManifestName), err)
	}
	w := &Writer{
		dir: dir, root: root, previous: previous,
		jobs:    make(chan job, writers),
		wanted:  make(map[string]bool, len(previous)),
		folders: map[string]*folderCheck{},
	}
	for range writers {
		w.wg.Go(w.work)
	}
	return w, nil
}

// Add queues f for writing; it blocks while the writers are busy, which keeps
// the files waiting in memory few. Problems with f are reported by Close.
func (w *Writer) Add(f File) {
	name, err := cleanPath(f.Path)
	w.mu.Lock()
	switch {
	case w.closed:
		err = errors.New("added after Close")
	case err != nil:
	case w.wanted[name]:
		err = errors.New("produced twice in one build")
	default:
		w.wanted[name] = true
	}
	if err != nil {
		w.errs = append(w.errs, fmt.Errorf("output: %q: %w", f.Path, err))
		w.mu.Unlock()
		if f.Release != nil {
			f.Release()
		}
		return
	}
	w.mu.Unlock()
	w.jobs <- job{name: name, data: f.Data, release: f.Release}
}

// Keep counts path as part of this build without writing it: the file an
// earlier Write left there stays as it is. An incremental build keeps what it
// did not render again; Close removes only what was neither added nor kept.
func (w *Writer) Keep(path string) {
	name, err := cleanPath(path)
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.closed:
		err = errors.New("kept after Close")
	case err != nil:
	case w.wanted[name]:
		err = errors.New("produced twice in one build")
	default:
		w.wanted[name] = true
		w.stats.Kept++
		return
	}
	w.errs = append(w.errs, fmt.Errorf("output: %q: %w", path, err))
}

func (w *Writer) work() {
	for j := range w.jobs {
		changed, err := w.writeIfChanged(j.name, j.data)
		if j.release != nil {
			j.release()
		}
		w.mu.Lock()
		switch {
		case err != nil:
			w.errs = append(w.errs, fmt.Errorf("output: %s: %w", path.Join(w.dir, j.name), err))
		case changed:
			w.stats.Written++
			w.changed = append(w.changed, j.name)
		default:
			w.stats.Unchanged++
		}
		w.mu.Unlock()
	}
}

// Close finishes the writes, removes stale files and updates the manifest.
func (w *Writer) Close() (Stats, error) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return w.stats, errors.New("output: closed twice")
	}
	w.closed = true
	w.mu.Unlock()
	close(w.jobs)
	w.wg.Wait()
	defer w.root.Close()
	slices.Sort(w.changed)

	kept := make([]string, 0, len(w.wanted))
	for name := range w.wanted {
		kept = append(kept, name)
	}
	for _, name := range w.previous {
		if w.wanted[name] {
			continue
		}
		err := w.root.Remove(name)
		switch {
		case err == nil:
			w.stats.Removed++
			removeEmptyParents(w.root, name)
		case errors.Is(err, fs.ErrNotExist):
		default:
			// Still ours: list it again so a later Write retries the removal.
			kept = append(kept, name)
			w.errs = append(w.errs, fmt.Errorf("output: remove stale %s: %w", path.Join(w.dir, name), err))
		}
	}

	slices.Sort(kept)
	manifest := []byte(strings.Join(kept, "\n") + "\n")
	if len(kept) == 0 {
		manifest = nil
	}
	if err := w.writeManifest(manifest); err != nil {
		w.errs = append(w.errs, fmt.Errorf("output: %s: %w", path.Join(w.dir, ManifestName), err))
	}
	return w.stats, errors.Join(w.errs...)
}

// Abort finishes the writes already queued but removes nothing: for a build that
// failed part way, whose file set is incomplete. The manifest keeps every file it
// listed and adds the ones written, so a later complete build still removes them.
func (w *Writer) Abort() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return errors.New("output: closed twice")
	}
	w.closed = true
	w.mu.Unlock()
	close(w.jobs)
	w.wg.Wait()
	defer w.root.Close()
	kept := slices.Clone(w.previous)
	for name := range w.wanted {
		kept = append(kept, name)
	}
	slices.Sort(kept)
	kept = slices.Compact(kept)
	var manifest []byte
	if len(kept) > 0 {
		manifest = []byte(strings.Join(kept, "\n") + "\n")
	}
	if err := w.writeManifest(manifest); err != nil {
		w.errs = append(w.errs, fmt.Errorf("output: %s: %w", path.Join(w.dir, ManifestName), err))
	}
	return errors.Join(w.errs...)
}

// cleanPath checks that p names a file inside the output folder and returns it cleaned.
func cleanPath(p string) (string, error) {
	if p == "" {
		return "", errors.New("empty path")
	}
	if strings.Contains(p, "\\") || strings.ContainsRune(p, 0) {
		return "", errors.New("path must be slash-separated and free of NUL")
	}
	if path.IsAbs(p) {
		return "", errors.New("path must be relative")
	}
	clean := path.Clean(p)
	if clean == "." || clean == ".." || strings.HasPrefix(clean, "../") {
		return "", errors.New("path leaves the output folder")
	}
	if clean == ManifestName {
		return "", fmt.Errorf("%s is reserved for the publisher", ManifestName)
	}
	return clean, nil
}

func readManifest(root *os.Root) ([]string, error) {
	data, err := root.ReadFile(ManifestName)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, bytes.Count(data, []byte{'\n'})+1)
	for line := range strings.Lines(string(data)) {
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			continue
		}
		// A hand-edited manifest must not make Write delete outside dir.
		name, err := cleanPath(line)
		if err != nil {
			continue
		}
		names = append(names, name)
	}
	return names, nil
}

// folder makes sure the folder (slash-separated, relative, clean) exists inside
// the output folder as a real folder, not a symlink, and neither are its parents,
// so a path below it cannot lead outside, and reports whether this Write created
// it. Each folder is checked once per Write;
// the writers wait only for the folders they need, not for each other's.
func (w *Writer) folder(name string) (made bool, err error) {
	w.mu.Lock()
	f, ok := w.folders[name]
	if !ok {
		f = &folderCheck{}
		w.folders[name] = f
	}
	w.mu.Unlock()
	f.once.Do(func() {
		if name == "." {
			return
		}
		if _, f.err = w.folder(path.Dir(name)); f.err != nil {
			return
		}
		full := filepath.Join(w.dir, filepath.FromSlash(name))
		err := os.Mkdir(full, 0o755)
		if errors.Is(err, fs.ErrExist) {
			var info fs.FileInfo
			if info, err = os.Lstat(full); err == nil && !info.IsDir() {
				err = fmt.Errorf("%s is not a folder (a symlink or a file) and is left alone", name)
			}
		} else if err == nil {
			f.made = true
		}
		f.err = err
	})
	return f.made, f.err
}

// folderCheck is the outcome of checking one folder.
type folderCheck struct {
	once sync.Once
	err  error
	made bool // created by this Write: nothing in it can be there already
}

// writeIfChanged writes data to name atomically unless name already holds
// exactly data. It reports whether it wrote.
func (w *Writer) writeIfChanged(name string, data []byte) (bool, error) {
	made, err := w.folder(path.Dir(name))
	if err != nil {
		return false, err
	}
	full := filepath.Join(w.dir, filepath.FromSlash(name))
	// In a folder this Write created there is nothing to compare with.
	if !made {
		same, err := holds(full, data)
		if err != nil || same {
			return false, err
		}
	}
	if err := replace(full, data, false); err != nil {
		return false, err
	}
	return true, nil
}

// replace writes data to a temporary file beside full and renames it to full,
// so a reader sees the old bytes or the new ones, never part of them. With
// durable the data is synced before the rename; the folder is left to the caller.
func replace(full string, data []byte, durable bool) error {
	tmp, tmpName, err := createTemp(filepath.Dir(full), filepath.Base(full))
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			_ = tmp.Close()
			_ = os.Remove(tmpName)
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if durable {
		if err := tmp.Sync(); err != nil {
			return err
		}
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	// rename(2) replaces a symlink at full rather than following it.
	if err := osfile.Rename(tmpName, full); err != nil {
		return err
	}
	ok = true
	return nil
}

// holds reports whether the regular file at full holds exactly data, reading it
// only when the size matches. Anything else there (a symlink, nothing) does not.
func holds(full string, data []byte) (bool, error) {
	info, err := os.Lstat(full)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !info.Mode().IsRegular() || info.Size() != int64(len(data)) {
		return false, nil
	}
	f, err := osfile.Open(full, os.O_RDONLY, 0)
	if err != nil {
		return false, err
	}
	defer f.Close()
	// One byte more than expected tells a file that grew since the Lstat.
	old := make([]byte, len(data)+1)
	n, err := io.ReadFull(f, old)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return false, err
	}
	return bytes.Equal(old[:n], data), nil
}

// createTemp makes a new, exclusive temporary file in folder, beside the target,
// so the rename stays within one file system.
func createTemp(folder, base string) (*os.File, string, error) {
	for range 10 {
		var suffix [6]byte
		_, _ = rand.Read(suffix[:])
		name := filepath.Join(folder, "."+base+".tmp-"+hex.EncodeToString(suffix[:]))
		f, err := osfile.Open(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, name, err
	}
	return nil, "", errors.New("could not create a temporary file")
}

// writeManifest replaces the manifest when its bytes changed, synced before the
// rename and with the folder synced after it, so a crash leaves either the old
// list or the new one: a manifest that is lost or half written would leave stale
// files no later build removes.
func (w *Writer) writeManifest(data []byte) error {
	full := filepath.Join(w.dir, ManifestName)
	same, err := holds(full, data)
	if err != nil || same {
		return err
	}
	if err := replace(full, data, true); err != nil {
		return err
	}
	if d, err := os.Open(w.dir); err == nil {
		// Failure only costs durability, not correctness: not reported.
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// removeEmptyParents removes the folders left empty by removing name, up to
// (not including) the output folder.
func removeEmptyParents(root *os.Root, name string) {
	for folder := path.Dir(name); folder != "."; folder = path.Dir(folder) {
		entries, err := fs.ReadDir(root.FS(), folder)
		if err != nil || len(entries) > 0 {
			return
		}
		if root.Remove(folder) != nil {
			return
		}
	}
}

// Snapshot identifies what the last Write left in dir: a hash of the manifest and
// of each listed file's size, modification time and mode. It changes when any of
// those files is replaced, edited or removed, so a build may be skipped only when
// the snapshot is the one taken right after the previous build. It returns an
// error when there is no manifest or a listed file is missing.
func Snapshot(dir string) (string, error) {
	s, err := TakeSnap(dir)
	if err != nil {
		return "", err
	}
	return s.Sum(), nil
}

// Snap is a Snapshot with what it was made from, so that the snapshot after a
// Write can be worked out from it by looking at the files written only.
type Snap struct {
	manifest []byte
	names    []string
	stats    map[string]osfile.Stat // each listed file's
}

// TakeSnap looks at dir as Snapshot does.
func TakeSnap(dir string) (*Snap, error) {
	data, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return nil, fmt.Errorf("output: %w", err)
	}
	s := &Snap{manifest: data, names: manifestNames(data)}
	s.stats = make(map[string]osfile.Stat, len(s.names))
	return s, s.stat(dir, s.names)
}

// After is the snapshot of dir after a Write that left every listed file as s
// found it but those in written: it reads the manifest again and stats only
// the files written or new to the manifest.
func (s *Snap) After(dir string, written []string) (*Snap, error) {
	data, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return nil, fmt.Errorf("output: %w", err)
	}
	n := &Snap{manifest: data, names: manifestNames(data)}
	n.stats = make(map[string]osfile.Stat, len(n.names))
	again := slices.Clone(written)
	for _, name := range n.names {
		if st, ok := s.stats[name]; ok {
			n.stats[name] = st
		} else {
			again = append(again, name)
		}
	}
	return n, n.stat(dir, again)
}

func manifestNames(data []byte) []string {
	names := make([]string, 0, bytes.Count(data, []byte{'\n'})+1)
	for line := range strings.Lines(string(data)) {
		if name, err := cleanPath(strings.TrimRight(line, "\r\n")); err == nil {
			names = append(names, name)
		}
	}
	return names
}

// stat records the stats of names, all on every core.
func (s *Snap) stat(dir string, names []string) error {
	stats, errs := osfile.StatAll(dir, names, false)
	for i, name := range names {
		if errs[i] != nil {
			return fmt.Errorf("output: %w", errs[i])
		}
		s.stats[name] = stats[i]
	}
	return nil
}

// Sum is the snapshot as Snapshot gives it: a hash of the manifest and of a
// line per file with its size, mtime and mode, hashed a buffer at a time (the
// lines of a large archive run to megabytes).
func (s *Snap) Sum() string {
	h := sha256.New()
	h.Write(s.manifest)
	const flushAt = 32 << 10
	buf := make([]byte, 0, flushAt+1024)
	for _, name := range s.names {
		st := s.stats[name]
		buf = append(append(buf, name...), 0)
		buf = append(strconv.AppendInt(buf, st.Size, 10), 0)
		buf = append(strconv.AppendInt(buf, st.ModTime.UnixNano(), 10), 0)
		buf = append(strconv.AppendUint(buf, uint64(st.Mode), 8), '\n')
		if len(buf) >= flushAt {
			h.Write(buf)
			buf = buf[:0]
		}
	}
	h.Write(buf)
	return hex.EncodeToString(h.Sum(nil))
}

// WriteFile puts one file into dir outside every build's manifest, so no
// build removes it (a digest's page in the browser, linked from emails that
// stay in inboxes): atomically, and only when its bytes changed. It reports
// whether it wrote. Its folders are made inside dir and must not be symlinks.
func WriteFile(dir, name string, data []byte) (bool, error) {
	clean, err := cleanPath(name)
	if err != nil {
		return false, fmt.Errorf("output: %q: %w", name, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return false, fmt.Errorf("output: open %s: %w", dir, err)
	}
	defer root.Close()
	if folder := path.Dir(clean); folder != "." {
		// os.Root refuses a symlink leading out of dir.
		if err := root.MkdirAll(folder, 0o755); err != nil {
			return false, fmt.Errorf("output: %s: %w", path.Join(dir, folder), err)
		}
	}
	full := filepath.Join(dir, filepath.FromSlash(clean))
	if same, err := holds(full, data); err != nil || same {
		return false, err
	}
	if err := replace(full, data, false); err != nil {
		return false, fmt.Errorf("output: %s: %w", full, err)
	}
	return true, nil
}
