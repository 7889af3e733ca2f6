package osfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
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
	var paths []string
	for i := range 700 { // several goroutines' worth
		p := filepath.Join(dir, fmt.Sprintf("f%03d", i))
		if err := os.WriteFile(p, make([]byte, i), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(paths[5], link); err != nil {
		t.Fatal(err)
	}
	paths = append(paths, filepath.Join(dir, "missing"), link)
	for _, follow := range []bool{false, true} {
		infos, errs := StatAll(paths, follow)
		for i := range 700 {
			if errs[i] != nil || infos[i].Size() != int64(i) {
				t.Fatalf("follow=%v: %s: %v, %v", follow, paths[i], infos[i], errs[i])
			}
		}
		if !errors.Is(errs[700], fs.ErrNotExist) {
			t.Errorf("missing file: %v", errs[700])
		}
		if isLink := infos[701].Mode()&fs.ModeSymlink != 0; isLink == follow {
			t.Errorf("follow=%v: symlink mode %v", follow, infos[701].Mode())
		}
	}
	if infos, errs := StatAll(nil, false); len(infos) != 0 || len(errs) != 0 {
		t.Error("no paths, yet results")
	}
}
