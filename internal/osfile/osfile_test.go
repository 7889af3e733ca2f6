package osfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestOpenWriteReadRename(t *testing.T) {
	dir := t.TempDir()
	tmp, final := filepath.Join(dir, ".page.tmp"), filepath.Join(dir, "page.html")
	f, err := Open(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("<p>written</p>"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640); !errors.Is(err, fs.ErrExist) {
		t.Errorf("O_EXCL on an existing file: %v", err)
	}
	if info, err := os.Stat(tmp); err != nil || info.Mode().Perm() != 0o640&^umask(t) {
		t.Errorf("mode %v, %v", info.Mode(), err)
	}
	if err := os.WriteFile(final, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Rename(tmp, final); err != nil {
		t.Fatal(err)
	}
	r, err := Open(final, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if data, err := io.ReadAll(r); err != nil || string(data) != "<p>written</p>" {
		t.Errorf("read %q, %v", data, err)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the temporary name is still there: %v", err)
	}
}

func TestErrorsNameThePath(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.md")
	_, err := Open(missing, os.O_RDONLY, 0)
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Path != missing || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open: %v", err)
	}
	err = Rename(missing, filepath.Join(dir, "b"))
	var le *os.LinkError
	if !errors.As(err, &le) || le.Old != missing || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Rename: %v", err)
	}
	// A folder is not replaced by a file.
	file, folder := filepath.Join(dir, "f"), filepath.Join(dir, "d")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(folder, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Rename(file, folder); err == nil {
		t.Error("a file replaced a folder")
	}
}

func umask(t *testing.T) fs.FileMode {
	t.Helper()
	probe := filepath.Join(t.TempDir(), "probe")
	if err := os.WriteFile(probe, nil, 0o777); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(probe)
	if err != nil {
		t.Fatal(err)
	}
	return 0o777 &^ info.Mode().Perm()
}

func TestStatAll(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	var names []string
	at := time.Date(2026, 11, 2, 3, 4, 5, 6000, time.UTC)
	for i := range 700 { // several goroutines' worth
		name := fmt.Sprintf("sub/f%03d", i)
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.WriteFile(p, make([]byte, i), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, at, at.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	if err := os.Symlink("sub/f005", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	names = append(names, "missing", "link")
	var linkModes [2]uint32
	for k, follow := range []bool{false, true} {
		stats, errs := StatAll(dir, names, follow)
		for i := range 700 {
			if errs[i] != nil || stats[i].Size != int64(i) || !stats[i].ModTime.Equal(at.Add(time.Duration(i)*time.Second)) {
				t.Fatalf("follow=%v: %s: %+v, %v", follow, names[i], stats[i], errs[i])
			}
			if stats[i].Mode != stats[0].Mode {
				t.Fatalf("two regular files of one mode differ: %o, %o", stats[i].Mode, stats[0].Mode)
			}
		}
		var pe *fs.PathError
		if !errors.Is(errs[700], fs.ErrNotExist) || !errors.As(errs[700], &pe) || pe.Path != filepath.Join(dir, "missing") {
			t.Errorf("missing file: %v", errs[700])
		}
		if follow && stats[701].Size != 5 {
			t.Errorf("followed symlink: %+v", stats[701])
		}
		linkModes[k] = stats[701].Mode
	}
	if linkModes[0] == linkModes[1] {
		t.Error("a symlink and the file it points to have one mode")
	}
	if stats, errs := StatAll(dir, nil, false); len(stats) != 0 || len(errs) != 0 {
		t.Error("no names, yet results")
	}
	if _, errs := StatAll(filepath.Join(dir, "nowhere"), []string{"a"}, false); !errors.Is(errs[0], fs.ErrNotExist) {
		t.Errorf("a missing folder: %v", errs[0])
	}
}
