package cycle

import (
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"publisher/internal/smtptest"
)

// age sets every content file's mtime to ago before now: files written just now
// are never trusted to be unchanged (their mtime may not move on the next edit).
func (b *bench) age(ago time.Duration) {
	b.t.Helper()
	at := time.Now().Add(-ago)
	err := filepath.WalkDir(b.cfg.Content.Dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return os.Chtimes(p, at, at)
	})
	if err != nil {
		b.t.Fatal(err)
	}
}

func (b *bench) output(rel string) (string, time.Time) {
	b.t.Helper()
	p := filepath.Join(b.cfg.Output.Dir, rel)
	data, err := os.ReadFile(p)
	if err != nil {
		b.t.Fatal(err)
	}
	info, err := os.Stat(p)
	if err != nil {
		b.t.Fatal(err)
	}
	return string(data), info.ModTime()
}

func TestUnchangedRunSkipsTheBuildAndAChangeRebuilds(t *testing.T) {
	b := newBench(t, vilnius(t, "2026-11-26 12:00"))
	b.piece("one", "Piece one", "2026-11-25", "energy")
	b.piece("two", "Piece two", "2026-11-24")
	b.age(time.Hour)

	sum, _ := b.run()
	if sum.BuildSkipped || sum.Pieces != 2 || sum.Output.Written == 0 {
		t.Fatalf("first run: %+v", sum)
	}
	index, built := b.output("index.html")

	b.now = b.now.Add(time.Hour)
	sum, _ = b.run()
	if !sum.BuildSkipped || sum.Pieces != 2 || sum.Output.Written != 0 || sum.Output.Unchanged != 0 {
		t.Fatalf("nothing changed, yet the pieces were parsed or the output rebuilt: %+v", sum)
	}
	if again, at := b.output("index.html"); again != index || !at.Equal(built) {
		t.Fatal("a skipped build touched index.html")
	}

	// One piece's text changes (same file, a different size and mtime): rebuilt.
	b.piece("one", "Piece one, revised", "2026-11-25", "energy")
	b.age(30 * time.Minute)
	b.now = b.now.Add(time.Hour)
	sum, _ = b.run()
	if sum.BuildSkipped || sum.Output.Written == 0 {
		t.Fatalf("after an edit: %+v", sum)
	}
	if page, _ := b.output("pieces/one/index.html"); !strings.Contains(page, "Piece one, revised") {
		t.Error("the edited piece's page was not rebuilt")
	}

	// A file removed from the output folder: rebuilt, though no content changed.
	if err := os.Remove(filepath.Join(b.cfg.Output.Dir, "feed.xml")); err != nil {
		t.Fatal(err)
	}
	b.now = b.now.Add(time.Hour)
	if sum, _ = b.run(); sum.BuildSkipped || sum.Output.Written != 1 {
		t.Fatalf("after feed.xml was removed: %+v", sum)
	}
	b.output("feed.xml")

	// A setting the pages show: rebuilt.
	b.cfg.Site.Title = "Cycle Desk Renamed"
	b.now = b.now.Add(time.Hour)
	if sum, _ = b.run(); sum.BuildSkipped {
		t.Fatalf("after the site title changed: %+v", sum)
	}
	if page, _ := b.output("index.html"); !strings.Contains(page, "Cycle Desk Renamed") {
		t.Error("index.html does not carry the new title")
	}

	// A piece just written is never trusted by mtime: built even if nothing else moved.
	b.piece("three", "Piece three", "2026-11-26")
	b.now = b.now.Add(time.Hour)
	if sum, _ = b.run(); sum.BuildSkipped || sum.Pieces != 3 {
		t.Fatalf("after a new piece: %+v", sum)
	}
}

func TestNewSubscriberGetsTheDigestWhenNothingChanged(t *testing.T) {
	b := newBench(t, vilnius(t, "2026-11-26 12:00"))
	b.piece("one", "Piece one", "2026-11-26")
	b.age(time.Hour)
	if sum, _ := b.run(); sum.BuildSkipped || sum.Sent != 0 {
		t.Fatalf("first run: %+v", sum)
	}

	b.write("subscribers/list.csv", "email,name,cadence\nnew@example.org,New Reader,immediate\n")
	b.now = b.now.Add(time.Hour)
	sum, got := b.run()
	if !sum.BuildSkipped {
		t.Fatalf("no content changed, yet the build ran: %+v", sum)
	}
	if sum.Sent != 1 || len(got["new@example.org"]) != 1 || !strings.Contains(b.lastBody("new@example.org"), "Piece one") {
		t.Fatalf("the new subscriber did not get the piece: %+v %v", sum, got)
	}

	b.now = b.now.Add(time.Hour)
	if sum, _ := b.run(); !sum.BuildSkipped || sum.Sent != 0 || sum.Planned != 0 || sum.PiecesRead {
		t.Fatalf("nothing new: the pieces should not even be read: %+v", sum)
	}

	// A daily reader who has had everything is due at 07:00 the next day: still
	// nothing to read, but the pass marks them served, so a piece arriving later
	// that day waits for the following morning.
	b.write("subscribers/list.csv", "email,name,cadence\nnew@example.org,New Reader,daily\n")
	b.now = vilnius(t, "2026-11-27 07:30")
	if sum, got := b.run(); sum.PiecesRead || sum.Sent != 0 || len(got) != 0 {
		t.Fatalf("due with nothing new: %+v %v", sum, got)
	}
	b.piece("two", "Piece two", "2026-11-27")
	b.age(time.Hour)
	b.now = vilnius(t, "2026-11-27 10:00")
	if sum, got := b.run(); sum.Sent != 0 || len(got) != 0 {
		t.Fatalf("a daily reader already served today got mail: %+v %v", sum, got)
	}
	b.now = vilnius(t, "2026-11-28 07:05")
	if sum, got := b.run(); sum.Sent != 1 || !strings.Contains(b.lastBody("new@example.org"), "Piece two") {
		t.Fatalf("the next morning: %+v %v", sum, got)
	}
}

func TestPendingDeliveriesAreSentWhenNothingChanged(t *testing.T) {
	b := newBench(t, vilnius(t, "2026-11-26 12:00"))
	b.piece("one", "Piece one", "2026-11-26")
	b.write("subscribers/list.csv", "email,name,cadence\nwait@example.org,Waiting,immediate\n")
	b.age(time.Hour)
	b.srv.SetOptions(smtptest.Options{Rcpt: func(string) *smtpError { return tempFail }})
	b.cfg.Mail.MaxAttempts = 10
	b.cfg.Mail.RetryBase = time.Hour
	if sum, _ := b.run(); sum.Pending != 1 {
		t.Fatalf("while refused: %+v", sum)
	}

	b.srv.SetOptions(smtptest.Options{})
	b.now = b.now.Add(2 * time.Hour)
	sum, got := b.run()
	if !sum.BuildSkipped || sum.Sent != 1 || len(got["wait@example.org"]) != 1 || sum.Pending != 0 {
		t.Fatalf("retry with nothing changed: %+v %v", sum, got)
	}
	if !strings.Contains(b.lastBody("wait@example.org"), "Piece one") {
		t.Error("the retried digest lacks its piece")
	}
}

// The content's hash names files relative to the folder, however the folder is
// spelled, and changes with any file's size or mtime, in subfolders too; a
// file modified within the racy window makes it untrustworthy.
func TestHashContent(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-time.Hour)
	for _, f := range []string{"a.md", "desk/b.txt", "desk/b.yaml", ".hidden/x.md", "c.md~"} {
		p := filepath.Join(dir, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	hashOf := func(d string) string {
		h := sha256.New()
		if ok, _, _ := hashContent(h, d, time.Now().Add(-racyWindow)); !ok {
			t.Fatalf("hashContent(%s) refused", d)
		}
		return hex.EncodeToString(h.Sum(nil))
	}
	first := hashOf(dir)
	t.Chdir(filepath.Dir(dir))
	for _, spelling := range []string{dir + "/", filepath.Base(dir), "./" + filepath.Base(dir) + "/"} {
		if got := hashOf(spelling); got != first {
			t.Errorf("%q hashes differently from %q", spelling, dir)
		}
	}
	// A hidden or backup file is not content: changing it changes nothing.
	if err := os.WriteFile(filepath.Join(dir, ".hidden", "x.md"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if hashOf(dir) != first {
		t.Error("a hidden file changed the hash")
	}
	sub := filepath.Join(dir, "desk", "b.txt")
	if err := os.WriteFile(sub, []byte("longer than before"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(sub, old, old); err != nil {
		t.Fatal(err)
	}
	if hashOf(dir) == first {
		t.Error("a changed file in a subfolder left the hash as it was")
	}
	if err := os.Chtimes(sub, time.Now(), time.Now()); err != nil {
		t.Fatal(err)
	}
	ok, files, _ := hashContent(sha256.New(), dir, time.Now().Add(-racyWindow))
	if ok {
		t.Error("a file modified just now was trusted")
	}
	// The files the build will load without walking again: all but the hidden ones.
	if want := []string{"a.md", "desk/b.txt", "desk/b.yaml"}; !slices.Equal(files, want) {
		t.Errorf("files %q, want %q", files, want)
	}
}

// A skipped build still reports each content error (those pieces are still not
// published), but the warnings, logged one by one by the build that found
// them, only as a count.
func TestUnchangedRunReportsErrorsAndCountsWarnings(t *testing.T) {
	b := newBench(t, vilnius(t, "2026-11-26 12:00"))
	b.piece("fine", "A fine piece", "2026-11-25")
	b.write("content/no-front-matter.md", "Just a body, so the title is derived.\n")
	b.write("content/bad-date.md", "---\ntitle: Bad date\ndate: someday\n---\nBody.\n")
	b.age(time.Hour)
	var logs strings.Builder
	b.log = slog.New(slog.NewTextHandler(&logs, nil))
	if sum, _ := b.run(); sum.BuildSkipped {
		t.Fatal("first run skipped the build")
	}
	first := logs.String()
	if !strings.Contains(first, "bad-date.md") || !strings.Contains(first, "no-front-matter.md") {
		t.Fatalf("the build did not log every problem:\n%s", first)
	}
	logs.Reset()
	b.now = b.now.Add(time.Hour)
	sum, _ := b.run()
	if !sum.BuildSkipped || sum.ContentErrors() != 1 {
		t.Fatalf("second run: skipped %v, %d errors", sum.BuildSkipped, sum.ContentErrors())
	}
	again := logs.String()
	if !strings.Contains(again, "bad-date.md") || strings.Contains(again, "no-front-matter.md") || !strings.Contains(again, "warnings=2") {
		t.Errorf("a skipped build should log the error and count the 2 warnings:\n%s", again)
	}
}

// The check for an unchanged build reads the state's inputs without decoding
// the rest; anything else than a leading "inputs" string sends it to the full
// decoding.
func TestFirstString(t *testing.T) {
	for _, c := range []struct {
		data string
		want string
		ok   bool
	}{
		{`{"inputs":"abc","problems":[{"file":"a.md"}]}`, "abc", true},
		{`{"inputs":"abc"`, "abc", true}, // the rest is never read
		{`{"problems":[],"inputs":"abc"}`, "", false},
		{`{"inputs":3}`, "", false},
		{`["inputs","abc"]`, "", false},
		{`not json`, "", false},
		{``, "", false},
	} {
		got, ok := firstString([]byte(c.data), "inputs")
		if got != c.want || ok != c.ok {
			t.Errorf("firstString(%s) = %q, %v; want %q, %v", c.data, got, ok, c.want, c.ok)
		}
	}
}
