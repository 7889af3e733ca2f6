package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// snapshot reads every file under dir: bytes and modification times.
func snapshot(t *testing.T, dir string) (map[string][]byte, map[string]time.Time) {
	t.Helper()
	data, mtimes := map[string][]byte{}, map[string]time.Time{}
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		data[rel], mtimes[rel] = b, info.ModTime()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return data, mtimes
}

// TestBuildTwiceIsByteIdentical builds, touches every piece, waits, builds again:
// the output must be byte for byte the same, no file rewritten, and the undated
// pieces must keep the date they were first seen.
func TestBuildTwiceIsByteIdentical(t *testing.T) {
	d := &desk{t: t, dir: t.TempDir()}
	root := repoRoot(t)
	copyTree(t, filepath.Join(root, "content"), filepath.Join(d.dir, "content"))
	yaml, err := os.ReadFile(filepath.Join(root, "publisher.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	d.write("publisher.yaml", string(yaml))

	if r := d.run("build"); r.code != 0 {
		t.Fatalf("first build: exit %d\n%s", r.code, r.stderr)
	}
	first, mtimes := snapshot(t, filepath.Join(d.dir, "public"))
	if len(first) < 10 {
		t.Fatalf("only %d files built", len(first))
	}

	// Touch every piece a day into the future and let the clock move on.
	later := time.Now().Add(24 * time.Hour)
	entries, _ := os.ReadDir(filepath.Join(d.dir, "content"))
	for _, e := range entries {
		if err := os.Chtimes(filepath.Join(d.dir, "content", e.Name()), later, later); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(1100 * time.Millisecond) // a date built from the clock would now differ

	r := d.run("build")
	if r.code != 0 || !strings.Contains(r.stdout, "0 files written") {
		t.Fatalf("second build: exit %d\n%s", r.code, r.stdout)
	}
	second, mtimes2 := snapshot(t, filepath.Join(d.dir, "public"))
	if len(second) != len(first) {
		t.Fatalf("%d files, then %d", len(first), len(second))
	}
	for name, b := range first {
		if !bytes.Equal(b, second[name]) {
			t.Errorf("%s changed between two builds of the same pieces", name)
		}
		if !mtimes[name].Equal(mtimes2[name]) {
			t.Errorf("%s was rewritten with the same bytes", name)
		}
	}
	// The undated sample piece carries its first-seen date in the feeds.
	if !bytes.Contains(second["atom.xml"], []byte("black-sea-grain-insurance")) {
		t.Errorf("the undated piece is missing from atom.xml")
	}
}
