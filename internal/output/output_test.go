package output

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWriteCreatesFilesAndFolders(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "public")
	st, err := Write(dir, []File{
		{Path: "index.html", Data: []byte("home")},
		{Path: "pieces/a/index.html", Data: []byte("piece a")},
		{Path: "topics/eu/feed.xml", Data: []byte("<rss/>")},
	})
	if err != nil || st != (Stats{Written: 3}) {
		t.Fatalf("Write: %+v %v", st, err)
	}
	if read(t, filepath.Join(dir, "pieces", "a", "index.html")) != "piece a" {
		t.Error("wrong content")
	}
	if got := read(t, filepath.Join(dir, ManifestName)); got != "index.html\npieces/a/index.html\ntopics/eu/feed.xml\n" {
		t.Errorf("manifest %q", got)
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, "*", "*", ".*.tmp-*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

func TestUnchangedFilesAreNotRewritten(t *testing.T) {
	dir := t.TempDir()
	files := []File{{Path: "a.xml", Data: []byte("same")}, {Path: "b/c.json", Data: []byte("{}")}}
	if _, err := Write(dir, files); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	for _, p := range []string{"a.xml", "b/c.json", ManifestName} {
		if err := os.Chtimes(filepath.Join(dir, p), old, old); err != nil {
			t.Fatal(err)
		}
	}
	inode := func(p string) os.FileInfo {
		fi, err := os.Stat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		return fi
	}
	before := inode("a.xml")

	st, err := Write(dir, []File{{Path: "a.xml", Data: []byte("same")}, {Path: "b/c.json", Data: []byte(`{"x":1}`)}})
	if err != nil || st != (Stats{Written: 1, Unchanged: 1}) {
		t.Fatalf("Write: %+v %v", st, err)
	}
	after := inode("a.xml")
	if !after.ModTime().Equal(old) || !os.SameFile(before, after) {
		t.Error("unchanged a.xml was rewritten")
	}
	if inode("b/c.json").ModTime().Equal(old) || read(t, filepath.Join(dir, "b", "c.json")) != `{"x":1}` {
		t.Error("changed b/c.json was not rewritten")
	}
	if !inode(ManifestName).ModTime().Equal(old) {
		t.Error("manifest rewritten although the set of files did not change")
	}
}

// TestWriteReplacesAtomically shows the old file is replaced by rename, not
// truncated in place: a reader holding the old file keeps reading whole old bytes.
func TestWriteReplacesAtomically(t *testing.T) {
	dir := t.TempDir()
	oldData := bytes.Repeat([]byte("old "), 10000)
	if _, err := Write(dir, []File{{Path: "feed.xml", Data: oldData}}); err != nil {
		t.Fatal(err)
	}
	reader, err := os.Open(filepath.Join(dir, "feed.xml"))
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	newData := []byte("new")
	if _, err := Write(dir, []File{{Path: "feed.xml", Data: newData}}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(reader.Name())
	if err != nil || !bytes.Equal(got, newData) {
		t.Fatalf("path now holds %q, %v", got, err)
	}
	var held bytes.Buffer
	if _, err := held.ReadFrom(reader); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(held.Bytes(), oldData) {
		t.Errorf("a reader of the old file saw %d bytes, want the whole old file (%d)", held.Len(), len(oldData))
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{ManifestName, "feed.xml"}) {
		t.Errorf("folder holds %q: temporary files left behind?", names)
	}
}

func TestStaleFilesAreRemovedOthersKept(t *testing.T) {
	dir := t.TempDir()
	if _, err := Write(dir, []File{
		{Path: "index.html", Data: []byte("i")},
		{Path: "pieces/gone/index.html", Data: []byte("g")},
		{Path: "topics/old/feed.xml", Data: []byte("o")},
		{Path: "topics/kept/feed.xml", Data: []byte("k")},
	}); err != nil {
		t.Fatal(err)
	}
	// Files somebody else put in the output folder, one of them beside ours.
	for _, p := range []string{"robots.txt", "topics/old/README"} {
		if err := os.WriteFile(filepath.Join(dir, p), []byte("mine"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st, err := Write(dir, []File{{Path: "index.html", Data: []byte("i")}, {Path: "topics/kept/feed.xml", Data: []byte("k")}})
	if err != nil || st != (Stats{Unchanged: 2, Removed: 2}) {
		t.Fatalf("Write: %+v %v", st, err)
	}
	for _, p := range []string{"pieces/gone/index.html", "pieces/gone", "pieces", "topics/old/feed.xml"} {
		if _, err := os.Stat(filepath.Join(dir, p)); !os.IsNotExist(err) {
			t.Errorf("%s still there (%v)", p, err)
		}
	}
	for _, p := range []string{"robots.txt", "topics/old/README", "topics/kept/feed.xml", "index.html"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("%s removed: %v", p, err)
		}
	}
	if got := read(t, filepath.Join(dir, ManifestName)); got != "index.html\ntopics/kept/feed.xml\n" {
		t.Errorf("manifest %q", got)
	}
}

func TestPathsLeavingTheFolderAreRefused(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "out")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A symlink inside the folder pointing out of it.
	if err := os.Symlink(parent, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	bad := []string{"../escape.txt", "/etc/passwd", "a/../../escape.txt", "", ".", `a\b`, ManifestName, "link/escape.txt"}
	var files []File
	for _, p := range bad {
		files = append(files, File{Path: p, Data: []byte("x")})
	}
	files = append(files, File{Path: "good.txt", Data: []byte("ok")}, File{Path: "good.txt", Data: []byte("twice")})
	st, err := Write(dir, files)
	if err == nil {
		t.Fatal("no error for paths leaving the folder")
	}
	for _, p := range []string{"../escape.txt", "/etc/passwd", "link/escape.txt", "produced twice"} {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error does not name %s: %v", p, err)
		}
	}
	if st.Written != 1 || read(t, filepath.Join(dir, "good.txt")) != "ok" {
		t.Errorf("the good file was not written: %+v", st)
	}
	if _, err := os.Stat(filepath.Join(parent, "escape.txt")); !os.IsNotExist(err) {
		t.Error("a file was written outside the folder")
	}
}

func TestTamperedManifestCannotDeleteOutside(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "out")
	victim := filepath.Join(parent, "victim.txt")
	if err := os.WriteFile(victim, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestName), []byte("../victim.txt\n/etc/hostname\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(dir, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(victim); err != nil {
		t.Errorf("file outside the folder removed: %v", err)
	}
}

func TestWriterTakesFilesOneByOne(t *testing.T) {
	dir := t.TempDir()
	if _, err := Write(dir, []File{{Path: "old/index.html", Data: []byte("old")}, {Path: "keep.xml", Data: []byte("k")}}); err != nil {
		t.Fatal(err)
	}
	w, err := NewWriter(dir)
	if err != nil {
		t.Fatal(err)
	}
	// One buffer, lent to each file in turn: the writer must be done with it
	// (Release) before it is filled again.
	buf := make([]byte, 0, 64)
	free := make(chan struct{}, 1)
	release := func() { free <- struct{}{} }
	for i := range 50 {
		buf = append(buf[:0], strings.Repeat("x", i)...)
		w.Add(File{Path: fmt.Sprintf("pieces/p%02d/index.html", i), Data: buf, Release: release})
		<-free
	}
	w.Add(File{Path: "keep.xml", Data: []byte("k"), Release: release})
	<-free
	w.Add(File{Path: "../out.txt", Data: []byte("no"), Release: release})
	<-free // refused, and released all the same
	st, err := w.Close()
	if err == nil || !strings.Contains(err.Error(), "../out.txt") {
		t.Fatalf("a bad path was not reported: %v", err)
	}
	if st != (Stats{Written: 50, Unchanged: 1, Removed: 1}) {
		t.Fatalf("stats %+v", st)
	}
	if got := read(t, filepath.Join(dir, "pieces", "p07", "index.html")); got != "xxxxxxx" {
		t.Errorf("p07 holds %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "old")); !os.IsNotExist(err) {
		t.Error("the stale file's folder is still there")
	}
	manifest := read(t, filepath.Join(dir, ManifestName))
	if strings.Count(manifest, "\n") != 51 || strings.Contains(manifest, "old/") {
		t.Errorf("manifest %q", manifest)
	}
}

func TestAbortRemovesNothingAndRemembersWhatItWrote(t *testing.T) {
	dir := t.TempDir()
	if _, err := Write(dir, []File{{Path: "a.html", Data: []byte("a")}}); err != nil {
		t.Fatal(err)
	}
	w, err := NewWriter(dir)
	if err != nil {
		t.Fatal(err)
	}
	w.Add(File{Path: "b/new.html", Data: []byte("b")})
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if read(t, filepath.Join(dir, "a.html")) != "a" || read(t, filepath.Join(dir, "b", "new.html")) != "b" {
		t.Error("an aborted Write lost a file")
	}
	if got := read(t, filepath.Join(dir, ManifestName)); got != "a.html\nb/new.html\n" {
		t.Errorf("manifest %q", got)
	}
	// The next complete Write removes both, since it produces neither.
	if st, err := Write(dir, []File{{Path: "c.html", Data: []byte("c")}}); err != nil || st.Removed != 2 {
		t.Fatalf("%+v %v", st, err)
	}
}

func TestASymlinkInPlaceOfAFileIsReplacedNotFollowed(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "out")
	victim := filepath.Join(parent, "victim.txt")
	if err := os.WriteFile(victim, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(dir, "feed.xml")); err != nil {
		t.Fatal(err)
	}
	if st, err := Write(dir, []File{{Path: "feed.xml", Data: []byte("keep")}}); err != nil || st.Written != 1 {
		t.Fatalf("%+v %v", st, err)
	}
	if info, err := os.Lstat(filepath.Join(dir, "feed.xml")); err != nil || !info.Mode().IsRegular() {
		t.Errorf("feed.xml is not a regular file now: %v", err)
	}
	if read(t, victim) != "keep" {
		t.Error("the file outside was changed")
	}
}

func TestSnapshotChangesWhenTheOutputIsTouched(t *testing.T) {
	dir := t.TempDir()
	if _, err := Snapshot(dir); err == nil {
		t.Error("a snapshot of a folder never written")
	}
	if _, err := Write(dir, []File{{Path: "a.xml", Data: []byte("one")}, {Path: "b/c.html", Data: []byte("two")}}); err != nil {
		t.Fatal(err)
	}
	first, err := Snapshot(dir)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := Snapshot(dir); again != first {
		t.Error("two snapshots of the same folder differ")
	}
	if err := os.WriteFile(filepath.Join(dir, "b", "c.html"), []byte("edited"), 0o644); err != nil {
		t.Fatal(err)
	}
	if edited, _ := Snapshot(dir); edited == first {
		t.Error("an edited file did not change the snapshot")
	}
	if err := os.Remove(filepath.Join(dir, "a.xml")); err != nil {
		t.Fatal(err)
	}
	if _, err := Snapshot(dir); err == nil {
		t.Error("a missing file gave a snapshot")
	}
}

// An incremental build keeps what it does not render again: kept files stay
// untouched, and Close removes only what was neither added nor kept.
func TestKeptFilesStayAndTheRestGoes(t *testing.T) {
	dir := t.TempDir()
	if _, err := Write(dir, []File{
		{Path: "index.html", Data: []byte("i")},
		{Path: "pieces/a/index.html", Data: []byte("a")},
		{Path: "pieces/b/index.html", Data: []byte("b")},
	}); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(dir, "pieces/a/index.html"), old, old); err != nil {
		t.Fatal(err)
	}
	w, err := NewWriter(dir)
	if err != nil {
		t.Fatal(err)
	}
	w.Keep("pieces/a/index.html")
	w.Add(File{Path: "index.html", Data: []byte("i2")})
	w.Add(File{Path: "pieces/c/index.html", Data: []byte("c")})
	w.Keep("../escape")
	st, err := w.Close()
	if err == nil || !strings.Contains(err.Error(), "escape") {
		t.Errorf("a kept path outside the folder: %v", err)
	}
	if st != (Stats{Written: 2, Kept: 1, Removed: 1}) {
		t.Errorf("stats %+v", st)
	}
	if got := w.Changed(); !slices.Equal(got, []string{"index.html", "pieces/c/index.html"}) {
		t.Errorf("changed %q", got)
	}
	if info, err := os.Stat(filepath.Join(dir, "pieces/a/index.html")); err != nil || !info.ModTime().Equal(old) {
		t.Errorf("kept file touched: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "pieces/b/index.html")); !os.IsNotExist(err) {
		t.Errorf("a file neither added nor kept is still there: %v", err)
	}
	if got := read(t, filepath.Join(dir, ManifestName)); got != "index.html\npieces/a/index.html\npieces/c/index.html\n" {
		t.Errorf("manifest %q", got)
	}
}

func TestWriteFileOutsideTheManifest(t *testing.T) {
	dir := t.TempDir()
	if _, err := Write(dir, []File{{Path: "index.html", Data: []byte("i")}}); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false} {
		wrote, err := WriteFile(dir, "digests/abc/index.html", []byte("digest"))
		if err != nil || wrote != want {
			t.Fatalf("write %d: wrote %v, %v", i, wrote, err)
		}
	}
	// The next build neither lists nor removes it.
	if _, err := Write(dir, []File{{Path: "index.html", Data: []byte("i")}}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(dir, "digests/abc/index.html")); got != "digest" {
		t.Errorf("digest page %q", got)
	}
	if got := read(t, filepath.Join(dir, ManifestName)); got != "index.html\n" {
		t.Errorf("manifest %q", got)
	}
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"../x.html", "link/x.html", ManifestName} {
		if _, err := WriteFile(dir, bad, []byte("x")); err == nil {
			t.Errorf("WriteFile(%q) accepted", bad)
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("wrote through a symlink: %v", entries)
	}
}

// The snapshot after a Write, worked out from the one before and the files
// written, is the one taken afresh.
func TestSnapAfterAWrite(t *testing.T) {
	dir := t.TempDir()
	if _, err := Write(dir, []File{{Path: "a.html", Data: []byte("a")}, {Path: "b.html", Data: []byte("b")}, {Path: "c/d.html", Data: []byte("d")}}); err != nil {
		t.Fatal(err)
	}
	before, err := TakeSnap(dir)
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWriter(dir)
	if err != nil {
		t.Fatal(err)
	}
	w.Keep("a.html")
	w.Add(File{Path: "b.html", Data: []byte("b, longer")})
	w.Add(File{Path: "e.html", Data: []byte("e")})
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	after, err := before.After(dir, w.Changed())
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := Snapshot(dir)
	if err != nil {
		t.Fatal(err)
	}
	if after.Sum() != fresh || before.Sum() == fresh {
		t.Errorf("snapshot after the write %s, taken afresh %s (before %s)", after.Sum(), fresh, before.Sum())
	}
}
