package cycle

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"publisher/internal/config"
	"publisher/internal/store"
	"publisher/templates"
)

// tree is every file under dir: bytes and modification times.
type tree struct {
	data  map[string][]byte
	mtime map[string]time.Time
}

func readTree(t *testing.T, dir string) tree {
	t.Helper()
	tr := tree{data: map[string][]byte{}, mtime: map[string]time.Time{}}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		tr.data[rel], tr.mtime[rel] = b, info.ModTime()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// build runs publisher build with cfg (the bench's store and clock).
func (b *bench) build(cfg *config.Config) *Summary {
	b.t.Helper()
	r, err := New(Deps{Config: cfg, Store: b.store, Templates: templates.Embedded(), Now: func() time.Time { return b.now }, Logger: b.log})
	if err != nil {
		b.t.Fatal(err)
	}
	sum, err := r.Run(context.Background(), Options{BuildOnly: true})
	if err != nil {
		b.t.Fatalf("build: %v", err)
	}
	return sum
}

// fullBuild builds the bench's content from scratch into a folder of its own,
// with the same store (so the same first-seen times), and returns the tree.
func (b *bench) fullBuild() tree {
	b.t.Helper()
	cfg := *b.cfg
	cfg.Output.Dir = b.t.TempDir()
	cfg.Data.Dir = b.t.TempDir()
	if sum := b.build(&cfg); sum.Output.Kept != 0 {
		b.t.Fatalf("a build without an index kept %d files", sum.Output.Kept)
	}
	return readTree(b.t, cfg.Output.Dir)
}

// ageSince sets the mtime of every content file modified after since to ago
// before now, as age does for all of them.
func (b *bench) ageSince(since time.Time, ago time.Duration) {
	b.t.Helper()
	at := time.Now().Add(-ago)
	err := filepath.WalkDir(b.cfg.Content.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil || !info.ModTime().After(since) {
			return err
		}
		return os.Chtimes(p, at, at)
	})
	if err != nil {
		b.t.Fatal(err)
	}
}

// sameTrees compares two output trees byte for byte.
func sameTrees(t *testing.T, step string, got, want tree) {
	t.Helper()
	for p, w := range want.data {
		g, ok := got.data[p]
		switch {
		case !ok:
			t.Errorf("%s: %s is missing from the incremental build", step, p)
		case !bytes.Equal(g, w):
			t.Errorf("%s: %s differs from a full build's", step, p)
		}
	}
	for p := range got.data {
		if _, ok := want.data[p]; !ok {
			t.Errorf("%s: %s is in the incremental build only", step, p)
		}
	}
}

// changedFiles lists the files whose bytes or mtimes differ between two trees,
// and those added or removed.
func changedFiles(before, after tree) (rewritten, added, removed []string) {
	for p, data := range after.data {
		old, ok := before.data[p]
		switch {
		case !ok:
			added = append(added, p)
		case !bytes.Equal(old, data) || !before.mtime[p].Equal(after.mtime[p]):
			rewritten = append(rewritten, p)
		}
	}
	for p := range before.data {
		if _, ok := after.data[p]; !ok {
			removed = append(removed, p)
		}
	}
	slices.Sort(rewritten)
	slices.Sort(added)
	slices.Sort(removed)
	return
}

func TestIncrementalBuildEqualsAFullBuild(t *testing.T) {
	b := newBench(t, time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	b.cfg.Site.PageSize = 3
	b.cfg.Feed.Items = 4
	topics := []string{"Energy", "Security", "Economy"}
	for i := range 24 {
		date := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC).AddDate(0, 0, -4*i).Format(time.DateOnly)
		if i%2 == 1 {
			// Plain text with a sidecar giving the date and topic.
			b.write(fmt.Sprintf("content/desk/t%02d.txt", i), fmt.Sprintf("Ana Babić\nPlain piece %d, its first paragraph.\nIts second.\n", i))
			b.write(fmt.Sprintf("content/desk/t%02d.yaml", i), fmt.Sprintf("title: Plain %d\ndate: %s\ntopics: [%s]\n", i, date, topics[i%3]))
			continue
		}
		b.piece(fmt.Sprintf("m%02d", i), fmt.Sprintf("Markdown %d", i), date, topics[i%3])
	}
	b.piece("undated", "Undated piece", "", "Energy")
	b.write("content/charted.md", "---\ntitle: Charted\ndate: 2026-10-02\ntopics: [Economy]\n---\n\n![chart](chart.svg)\n")
	b.write("content/chart.svg", `<svg xmlns="http://www.w3.org/2000/svg"><rect width="2" height="1"/></svg>`)
	b.age(time.Hour)
	var logged bytes.Buffer
	b.log = slog.New(slog.NewJSONHandler(&logged, nil))
	// parsed is how many piece files the build logged since the last Reset read.
	parsed := func() int {
		var line struct {
			Msg    string
			Parsed int `json:"files_parsed"`
		}
		for _, l := range strings.Split(strings.TrimSpace(logged.String()), "\n") {
			if err := json.Unmarshal([]byte(l), &line); err == nil && line.Msg == "built feeds and archive" {
				logged.Reset()
				return line.Parsed
			}
		}
		t.Fatalf("no build in the log:\n%s", logged.String())
		return 0
	}

	if sum := b.build(b.cfg); sum.Output.Kept != 0 || sum.Output.Written == 0 {
		t.Fatalf("first build: %+v", sum.Output)
	}
	sameTrees(t, "first build", readTree(t, b.cfg.Output.Dir), b.fullBuild())
	if _, err := os.Stat(filepath.Join(b.cfg.Output.Dir, "pieces/charted/chart.svg")); err != nil {
		t.Fatalf("the piece's image was not published beside its page: %v", err)
	}

	steps := []struct {
		name   string
		change func()
		// want, when set, is every file the step may write or add (beyond these
		// only feeds and OPML may change).
		want []string
	}{
		// November has 6 pieces, in 2 pages of 3: the new one starts a third,
		// and the second's rel="next" now leads to it.
		{"a new piece, the newest", func() {
			b.piece("fresh", "Fresh piece", "", "Security")
		}, []string{
			"pieces/fresh/index.html", "index.html", "archive/index.html",
			"archive/2026/11/2/index.html", "archive/2026/11/3/index.html",
			"topics/security/index.html", "topics/security/2026/11/index.html",
		}},
		{"a title edited", func() {
			b.piece("m10", "Markdown 10, revised", "2026-10-01", "Economy")
		}, nil},
		{"a sidecar edited", func() {
			b.write("content/desk/t03.yaml", "title: Plain 3, renamed\ndate: 2026-11-08\ntopics: [Economy, Energy]\n")
		}, nil},
		{"back-dated into an older month", func() {
			b.piece("m02", "Markdown 2", "2026-08-15", "Economy")
		}, nil},
		{"a piece removed", func() {
			if err := os.Remove(filepath.Join(b.cfg.Content.Dir, "m04.md")); err != nil {
				t.Fatal(err)
			}
		}, nil},
		{"a new topic", func() {
			b.piece("trade", "On trade", "2026-11-25", "Trade")
		}, nil},
		{"the image changed", func() {
			b.write("content/chart.svg", `<svg xmlns="http://www.w3.org/2000/svg"><rect width="3" height="1"/></svg>`)
		}, []string{"pieces/charted/chart.svg"}},
		{"a file written a moment ago (racy mtime)", func() {
			b.piece("racy", "Racy piece", "2026-11-24", "Energy")
		}, nil},
	}
	for _, step := range steps {
		before := readTree(t, b.cfg.Output.Dir)
		start := time.Now().Add(-time.Second)
		step.change()
		if !strings.Contains(step.name, "racy") {
			// Only the files the step wrote are aged: every other one keeps
			// its stats, and the build reads it from its index.
			b.ageSince(start, 30*time.Minute)
		}
		b.now = b.now.Add(time.Hour)
		logged.Reset()
		sum := b.build(b.cfg)
		if sum.Output.Kept == 0 {
			t.Errorf("%s: the build kept nothing: %+v", step.name, sum.Output)
		}
		if n := parsed(); n > 1 {
			t.Errorf("%s: the build read %d piece files, want the one that changed", step.name, n)
		}
		after := readTree(t, b.cfg.Output.Dir)
		sameTrees(t, step.name, after, b.fullBuild())
		rewritten, added, removed := changedFiles(before, after)
		written := append(append([]string{}, rewritten...), added...)
		// A file rewritten with the same bytes would show here too.
		for _, p := range rewritten {
			if bytes.Equal(before.data[p], after.data[p]) {
				t.Errorf("%s: %s rewritten with the same bytes", step.name, p)
			}
		}
		if step.want != nil {
			var extra []string
			for _, p := range written {
				if !slices.Contains(step.want, p) && !strings.HasSuffix(p, ".xml") && !strings.HasSuffix(p, ".json") &&
					!strings.HasSuffix(p, ".opml") && p != ".publisher-manifest" {
					extra = append(extra, p)
				}
			}
			if len(extra) > 0 || len(removed) > 0 {
				t.Errorf("%s: also wrote %q, removed %q", step.name, extra, removed)
			}
			for _, p := range step.want {
				if !slices.Contains(written, p) {
					t.Errorf("%s: %s was not written", step.name, p)
				}
			}
		}
		if step.name == "a piece removed" && !slices.Contains(removed, "pieces/m04/index.html") {
			t.Errorf("%s: the removed piece's page is still there (removed %q)", step.name, removed)
		}
	}

	// The output touched by hand: the build renders everything again (and
	// still writes only what differs).
	if err := os.Remove(filepath.Join(b.cfg.Output.Dir, "pieces/m06/index.html")); err != nil {
		t.Fatal(err)
	}
	b.now = b.now.Add(time.Hour)
	b.piece("after-touch", "After the touch", "2026-11-26", "Energy")
	b.age(time.Minute)
	if sum := b.build(b.cfg); sum.Output.Kept != 0 {
		t.Errorf("after the output was touched: kept %d files", sum.Output.Kept)
	}
	sameTrees(t, "after the output was touched", readTree(t, b.cfg.Output.Dir), b.fullBuild())
}

// An incremental build takes the first-seen times of the pieces it does not
// read again from its index while the store holds just the pieces the last
// build left; a store that has lost pieces since (put back from an older
// copy) is asked for every time, and the pieces it lost are recorded again.
func TestIncrementalBuildFirstSeenTimesFollowTheStore(t *testing.T) {
	ctx := context.Background()
	b := newBench(t, time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	b.piece("undated-a", "Undated A", "", "Energy")
	b.piece("undated-b", "Undated B", "", "Energy")
	b.age(time.Hour)
	b.build(b.cfg)
	firstRun := b.now
	// addPiece adds a piece an hour later, the other files keeping their stats.
	addPiece := func(slug string) {
		t.Helper()
		b.now = b.now.Add(time.Hour)
		start := time.Now().Add(-time.Second)
		b.piece(slug, "Piece "+slug, "", "Energy")
		b.ageSince(start, time.Minute)
	}
	// check compares the first-seen times in the store, in the index and on
	// the pieces' pages with want.
	check := func(step string, want map[string]time.Time) {
		t.Helper()
		stored, err := b.store.FirstSeen(ctx)
		if err != nil {
			t.Fatal(err)
		}
		data, err := readString(filepath.Join(b.cfg.Data.Dir, buildIndexName))
		if err != nil {
			t.Fatal(err)
		}
		idx, err := decodeIndex(data)
		if err != nil {
			t.Fatal(err)
		}
		for id, w := range want {
			if got := stored[id]; !got.Equal(w) {
				t.Errorf("%s: the store has %s first seen at %v, want %v", step, id, got, w)
			}
			if got := idx.Content[id+".md"].Piece.FirstSeen; !got.Equal(w) {
				t.Errorf("%s: the index has %s first seen at %v, want %v", step, id, got, w)
			}
		}
		sameTrees(t, step, readTree(t, b.cfg.Output.Dir), b.fullBuild())
	}

	addPiece("c")
	if sum := b.build(b.cfg); sum.Output.Kept == 0 {
		t.Fatalf("the build after c was added kept nothing: %+v", sum.Output)
	}
	check("c added", map[string]time.Time{"undated-a": firstRun, "undated-b": firstRun, "c": b.now})
	cSeen := b.now

	// Another replica on the same store saw piece e first, by its own clock:
	// the store's summary moved, and e keeps the time the store has.
	byReplica := b.now.Add(-30 * time.Minute)
	if _, err := b.store.RecordPieces(ctx, []store.PieceSeen{{ID: "e", Hash: "as the other replica read it"}}, byReplica); err != nil {
		t.Fatal(err)
	}
	addPiece("e")
	b.build(b.cfg)
	check("e seen first by another replica", map[string]time.Time{"undated-a": firstRun, "undated-b": firstRun, "c": cSeen, "e": byReplica})

	db, err := sql.Open("sqlite", b.cfg.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DELETE FROM pieces WHERE id = 'undated-b'`); err != nil {
		t.Fatal(err)
	}
	addPiece("d")
	b.build(b.cfg)
	check("after the store lost undated-b", map[string]time.Time{"undated-a": firstRun, "undated-b": b.now, "c": cSeen, "e": byReplica, "d": b.now})
}

// A build that fails before it changes the output leaves the last index, so
// the next build is still an incremental one.
func TestABuildFailingBeforeItWritesKeepsTheLastIndex(t *testing.T) {
	b := newBench(t, time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	b.piece("a", "Piece A", "2026-11-20", "Energy")
	b.piece("b", "Piece B", "2026-11-21", "Energy")
	b.age(time.Hour)
	b.build(b.cfg)
	indexFile := filepath.Join(b.cfg.Data.Dir, buildIndexName)
	before, err := os.ReadFile(indexFile)
	if err != nil {
		t.Fatal(err)
	}

	// The store refuses the new piece: recording it fails, after the index
	// was read and before anything is written.
	db, err := sql.Open("sqlite", b.cfg.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TRIGGER refuse_pieces BEFORE INSERT ON pieces BEGIN SELECT RAISE(FAIL, 'refused'); END`); err != nil {
		t.Fatal(err)
	}
	b.now = b.now.Add(time.Hour)
	start := time.Now().Add(-time.Second)
	b.piece("c", "Piece C", "2026-11-22", "Energy")
	b.ageSince(start, time.Minute)
	r, err := New(Deps{Config: b.cfg, Store: b.store, Templates: templates.Embedded(), Now: func() time.Time { return b.now }, Logger: b.log})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(context.Background(), Options{BuildOnly: true}); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("the build with the store refusing pieces: %v, want the refusal", err)
	}
	after, err := os.ReadFile(indexFile)
	if err != nil || !bytes.Equal(after, before) {
		t.Fatalf("the failed build left the index %d bytes (%v), want the last build's %d", len(after), err, len(before))
	}

	if _, err := db.Exec(`DROP TRIGGER refuse_pieces`); err != nil {
		t.Fatal(err)
	}
	if sum := b.build(b.cfg); sum.Output.Kept == 0 {
		t.Errorf("the build after the failed one kept nothing: %+v", sum.Output)
	}
}

// A build logs each content warning once: the build that reads the file logs
// it, the builds that take the file unchanged from the index (or skip
// building) count it in one line. Errors are logged every time.
func TestContentWarningsAreLoggedByTheBuildThatReadsThem(t *testing.T) {
	b := newBench(t, time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	b.piece("dated", "Dated", "2026-11-20", "Energy")
	b.write("content/untitled-old.txt", "A plain piece with no title, read by the first build.\n")
	b.write("content/broken.md", "---\ntitle: [unclosed\n---\n\nBody.\n")
	b.age(time.Hour)
	var logged bytes.Buffer
	b.log = slog.New(slog.NewJSONHandler(&logged, nil))
	// build returns the content lines the build logged: each problem's text,
	// and "N unchanged" for the count of the others.
	build := func() []string {
		t.Helper()
		logged.Reset()
		b.now = b.now.Add(time.Hour)
		b.build(b.cfg)
		var out []string
		for _, l := range strings.Split(strings.TrimSpace(logged.String()), "\n") {
			var line struct {
				Msg      string
				Level    string
				Problem  string
				Warnings int
			}
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatalf("log line %q: %v", l, err)
			}
			switch {
			case line.Msg == "content":
				out = append(out, line.Level+" "+line.Problem)
			case strings.HasPrefix(line.Msg, "content: warnings unchanged"):
				out = append(out, fmt.Sprintf("%d unchanged", line.Warnings))
			}
		}
		return out
	}
	has := func(lines []string, prefix string) bool {
		return slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, prefix) })
	}

	warnings := func(lines []string) int {
		n := 0
		for _, l := range lines {
			if strings.HasPrefix(l, "WARN ") {
				n++
			}
		}
		return n
	}
	unchanged := func(n int) string { return fmt.Sprintf("%d unchanged", n) }

	first := build()
	if !has(first, "WARN untitled-old.txt: warning: no title") || !has(first, "ERROR broken.md:") ||
		slices.ContainsFunc(first, func(l string) bool { return strings.HasSuffix(l, " unchanged") }) {
		t.Fatalf("first build logged %q, want the warnings and the error one by one", first)
	}
	start := time.Now().Add(-time.Second)
	b.write("content/untitled-new.txt", "Another plain piece with no title, added later.\n")
	b.ageSince(start, time.Minute)
	second := build()
	if !has(second, "WARN untitled-new.txt: warning: no title") || has(second, "WARN untitled-old.txt") || has(second, "WARN broken.md") ||
		!has(second, "ERROR broken.md:") || !slices.Contains(second, unchanged(warnings(first))) {
		t.Fatalf("incremental build logged %q, want the new file's warnings one by one, the error again and the first build's %d warnings counted", second, warnings(first))
	}
	third := build()
	if has(third, "WARN") || !has(third, "ERROR broken.md:") || !slices.Contains(third, unchanged(warnings(first)+warnings(second))) {
		t.Fatalf("skipped build logged %q, want the error again and all %d warnings counted", third, warnings(first)+warnings(second))
	}
}

// A digest's page in the browser is published when the digest is sent, before
// it goes out, and no later build removes it; a dry run publishes nothing.
func TestDigestPageIsPublishedWhenSent(t *testing.T) {
	b := newBench(t, time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	b.piece("gauge", "Gauge", "2026-11-25", "Energy")
	b.write("subscribers/list.csv", "email,name,cadence\nreader@example.org,Reader,immediate\n")

	r, err := New(Deps{Config: b.cfg, Store: b.store, Templates: templates.Embedded(), Now: func() time.Time { return b.now }})
	if err != nil {
		t.Fatal(err)
	}
	if sum, err := r.Run(context.Background(), Options{DryRun: true}); err != nil || sum.WouldSend != 1 {
		t.Fatalf("dry run: %+v %v", sum, err)
	}
	if _, err := os.Stat(filepath.Join(b.cfg.Output.Dir, "digests")); !os.IsNotExist(err) {
		t.Fatalf("a dry run published a digest's page (%v)", err)
	}

	if sum, _ := b.run(); sum.Sent != 1 {
		t.Fatalf("sent %d", sum.Sent)
	}
	body := b.lastBody("reader@example.org")
	link := regexp.MustCompile(`https://desk\.example\.org/digests/[0-9a-f]+/`).FindString(body)
	if link == "" {
		t.Fatalf("the digest has no link to its page:\n%s", body)
	}
	page := filepath.Join(b.cfg.Output.Dir, strings.TrimPrefix(link, "https://desk.example.org/"), "index.html")
	data, err := os.ReadFile(page)
	if err != nil || !bytes.Contains(data, []byte("Gauge")) || bytes.Contains(data, []byte("reader@example.org")) {
		t.Fatalf("the digest's page: %v\n%s", err, data)
	}
	// A new piece and a build: the page stays.
	b.piece("more", "More", "2026-11-26", "Energy")
	b.age(time.Minute)
	b.now = b.now.Add(time.Hour)
	b.build(b.cfg)
	if _, err := os.Stat(page); err != nil {
		t.Errorf("a build removed the digest's page: %v", err)
	}
}

// BenchmarkIncrementalBuild is a build of 10,000 pieces after one new piece
// was added (bench/run.sh measures the same with the binary, beside a full
// build and Hugo).
func BenchmarkIncrementalBuild(b *testing.B) {
	t := &testing.T{}
	bb := newBench(t, time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	bb.t = t
	topics := []string{"Energy", "Security", "Economy", "Foreign Policy", "Technology"}
	body := strings.Repeat("Analysts expect the ministry to revise its forecast after pipeline tariffs rose sharply. ", 6)
	for i := range 10000 {
		date := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC).Add(-time.Duration(i) * 3 * time.Hour).Format(time.RFC3339)
		bb.write(fmt.Sprintf("content/piece-%05d.md", i), fmt.Sprintf("---\ntitle: \"Piece %d\"\nauthors: [Ana Analyst]\ndate: %s\ntopics: [%s]\n---\n\n%s\n\n%s\n\n%s\n", i, date, topics[i%5], body, body, body))
	}
	bb.age(time.Hour)
	bb.build(bb.cfg)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		name := fmt.Sprintf("content/new-%05d.md", i)
		bb.write(name, fmt.Sprintf("---\ntitle: \"New %d\"\ntopics: [Energy]\n---\n\nA new piece.\n", i))
		// Older than the 2 s in which an mtime is not trusted; the others as they were.
		at := time.Now().Add(-time.Minute)
		if err := os.Chtimes(filepath.Join(bb.dir, name), at, at); err != nil {
			b.Fatal(err)
		}
		bb.now = bb.now.Add(time.Minute)
		b.StartTimer()
		if sum := bb.build(bb.cfg); sum.Output.Kept == 0 {
			b.Fatalf("not incremental: %+v", sum.Output)
		}
	}
}
