// Package output puts rendered files on disk so that a reader (a feed fetcher, a
// web server) never sees half a file, files whose bytes did not change keep their
// mtime (so HTTP caches and rsync stay quiet), and files an earlier build produced
// but this one does not are removed — never files somebody else put there.
package output

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
)

// ManifestName is the file, in the output folder, listing what Write produced,
// so that the next Write knows what it may remove.
const ManifestName = ".publisher-manifest"

// File is one output file. Path is slash-separated and relative to the output folder.
type File struct {
	Path string
	Data []byte
}

// Stats counts what one Write did.
type Stats struct {
	Written   int // created or replaced
	Unchanged int // same bytes already there: left alone
	Removed   int // produced by an earlier Write, gone from this one
}

// Write makes dir hold files. Each file is written to a temporary file in its
// own folder, synced and renamed over the old one, so the swap is atomic.
// A bad path or a failed write is reported (all such errors joined) without
// stopping the other files.
func Write(dir string, files []File) (Stats, error) {
	var stats Stats
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return stats, fmt.Errorf("output: create %s: %w", dir, err)
	}
	// os.Root refuses any path (or symlink inside dir) that leads outside dir.
	root, err := os.OpenRoot(dir)
	if err != nil {
		return stats, fmt.Errorf("output: open %s: %w", dir, err)
	}
	defer root.Close()

	previous, err := readManifest(root)
	if err != nil {
		return stats, fmt.Errorf("output: %s: %w", path.Join(dir, ManifestName), err)
	}

	var errs []error
	wanted := make(map[string]bool, len(files))
	for _, f := range files {
		name, err := cleanPath(f.Path)
		if err != nil {
			errs = append(errs, fmt.Errorf("output: %q: %w", f.Path, err))
			continue
		}
		if wanted[name] {
			errs = append(errs, fmt.Errorf("output: %s: produced twice in one build", name))
			continue
		}
		wanted[name] = true
		changed, err := writeIfChanged(root, name, f.Data)
		if err != nil {
			errs = append(errs, fmt.Errorf("output: %s: %w", path.Join(dir, name), err))
			continue
		}
		if changed {
			stats.Written++
		} else {
			stats.Unchanged++
		}
	}

	kept := make([]string, 0, len(wanted))
	for name := range wanted {
		kept = append(kept, name)
	}
	for _, name := range previous {
		if wanted[name] {
			continue
		}
		err := root.Remove(name)
		switch {
		case err == nil:
			stats.Removed++
			removeEmptyParents(root, name)
		case errors.Is(err, fs.ErrNotExist):
		default:
			// Still ours: list it again so a later Write retries the removal.
			kept = append(kept, name)
			errs = append(errs, fmt.Errorf("output: remove stale %s: %w", path.Join(dir, name), err))
		}
	}

	slices.Sort(kept)
	manifest := []byte(strings.Join(kept, "\n") + "\n")
	if len(kept) == 0 {
		manifest = nil
	}
	if _, err := writeIfChanged(root, ManifestName, manifest); err != nil {
		errs = append(errs, fmt.Errorf("output: %s: %w", path.Join(dir, ManifestName), err))
	}
	return stats, errors.Join(errs...)
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
	var names []string
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

// writeIfChanged writes data to name atomically unless name already holds
// exactly data. It reports whether it wrote.
func writeIfChanged(root *os.Root, name string, data []byte) (bool, error) {
	old, err := root.ReadFile(name)
	if err == nil && bytes.Equal(old, data) {
		return false, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	folder := path.Dir(name)
	if folder != "." {
		if err := root.MkdirAll(folder, 0o755); err != nil {
			return false, err
		}
	}
	tmp, tmpName, err := createTemp(root, folder, path.Base(name))
	if err != nil {
		return false, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = tmp.Close()
			_ = root.Remove(tmpName)
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return false, err
	}
	if err := tmp.Sync(); err != nil {
		return false, err
	}
	if err := tmp.Close(); err != nil {
		return false, err
	}
	if err := root.Rename(tmpName, name); err != nil {
		return false, err
	}
	ok = true
	syncDir(root, folder)
	return true, nil
}

// createTemp makes a new, exclusive temporary file beside the target, so the
// rename stays within one file system.
func createTemp(root *os.Root, folder, base string) (*os.File, string, error) {
	for range 10 {
		var suffix [6]byte
		_, _ = rand.Read(suffix[:])
		name := path.Join(folder, "."+base+".tmp-"+hex.EncodeToString(suffix[:]))
		f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, name, err
	}
	return nil, "", errors.New("could not create a temporary file")
}

// syncDir makes the rename durable; failure only costs durability, not
// correctness, so it is not reported.
func syncDir(root *os.Root, folder string) {
	d, err := root.Open(folder)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
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
