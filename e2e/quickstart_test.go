package e2e

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// copyTree copies the repository's sample files the quick start uses.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if e.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestQuickStart runs the README's first command on a copy of the repository's
// sample configuration, content and subscribers: one .eml per sample subscriber.
func TestQuickStart(t *testing.T) {
	root := repoRoot(t)
	d := &desk{t: t, dir: t.TempDir()}
	for _, sub := range []string{"content", "subscribers"} {
		copyTree(t, filepath.Join(root, sub), filepath.Join(d.dir, sub))
	}
	yaml, err := os.ReadFile(filepath.Join(root, "publisher.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	d.write("publisher.yaml", string(yaml))

	if r := d.run("check"); r.code != 0 {
		t.Fatalf("check on the sample content: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r := d.run("run")
	if r.code != 0 {
		t.Fatalf("run exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	f, err := os.Open(filepath.Join(root, "subscribers", "readers.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	records, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := len(records) - 1
	emls, _ := filepath.Glob(filepath.Join(d.dir, "data", "outbox", "*.eml"))
	if len(emls) != want || want == 0 {
		t.Fatalf("%d .eml files in data/outbox, want one per sample subscriber (%d)\n%s", len(emls), want, r.stderr)
	}
	for _, name := range []string{"feed.xml", "atom.xml", "feed.json", "feeds.opml", "index.html"} {
		if _, err := os.Stat(filepath.Join(d.dir, "public", name)); err != nil {
			t.Errorf("public/%s: %v", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(d.dir, "data", "publisher.db")); err != nil {
		t.Errorf("no SQLite file: %v", err)
	}

	// Run again: nothing new, nothing written or sent.
	r = d.run("run")
	if r.code != 0 || !strings.Contains(r.stdout, "files written 0") || !strings.Contains(r.stdout, "sent 0") {
		t.Fatalf("second run: exit %d\n%s", r.code, r.stdout)
	}
	emls2, _ := filepath.Glob(filepath.Join(d.dir, "data", "outbox", "*.eml"))
	if len(emls2) != len(emls) {
		t.Fatalf("second run wrote %d more messages", len(emls2)-len(emls))
	}
}
