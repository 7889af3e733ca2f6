package e2e

import (
	"bytes"
	"io"
	"io/fs"
	"mime/quotedprintable"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestEveryLinkResolves runs the quick start and follows every link on the
// site's own host found in the output (pages, feeds, OPML, the digests'
// pages) and in the emails sent: each must name a file the output holds (a
// folder's index.html), so that nothing a reader clicks or an image a page
// shows is a 404. The daemon's own pages (sign-up, confirm, unsubscribe,
// preferences) are answered by the daemon, not the folder, and are left out.
func TestEveryLinkResolves(t *testing.T) {
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
	if r := d.run("run"); r.code != 0 {
		t.Fatalf("run: exit %d\n%s", r.code, r.stderr)
	}
	const base = "http://localhost:8080/"
	public := filepath.Join(d.dir, "public")
	// A link ends where the markup or an escape around it starts (XML's
	// &#34;, JSON's \"); none of the site's own carries a query.
	link := regexp.MustCompile(regexp.QuoteMeta(base) + `[^"'<>\s)\]&\\]*`)
	daemon := regexp.MustCompile(`^(subscribe|confirm|unsubscribe|preferences)(\?|$)`)

	checked := map[string]bool{}
	check := func(where, raw string) {
		u, err := url.Parse(strings.TrimRight(raw, ".,;"))
		if err != nil {
			t.Errorf("%s: a link that does not parse: %q", where, raw)
			return
		}
		rel := strings.TrimPrefix(u.Path, "/")
		if daemon.MatchString(rel) || checked[rel] {
			return
		}
		checked[rel] = true
		file := filepath.Join(public, filepath.FromSlash(rel))
		if rel == "" || strings.HasSuffix(rel, "/") {
			file = filepath.Join(file, "index.html")
		}
		if info, err := os.Stat(file); err != nil || !info.Mode().IsRegular() {
			t.Errorf("%s links to %s, which the output does not hold", where, raw)
		}
	}

	err = filepath.WalkDir(public, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			return err
		}
		switch filepath.Ext(p) {
		case ".html", ".xml", ".json", ".opml":
		default:
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(public, p)
		for _, l := range link.FindAllString(string(data), -1) {
			check(rel, l)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	emls, _ := filepath.Glob(filepath.Join(d.dir, "data", "outbox", "*.eml"))
	if len(emls) == 0 {
		t.Fatal("no email sent")
	}
	for _, eml := range emls {
		raw, err := os.ReadFile(eml)
		if err != nil {
			t.Fatal(err)
		}
		text, _ := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(raw)))
		for _, l := range link.FindAllString(string(text), -1) {
			check(filepath.Base(eml), l)
		}
	}
	// The links that had to resolve include the sample piece's chart, both in
	// the archive and in the digests' pages.
	for _, want := range []string{"pieces/lng-contracts-europe/lng-terminal.svg", "archive/", "feeds.opml"} {
		if !checked[want] {
			t.Errorf("no link to %s was followed", want)
		}
	}
	if len(checked) < 30 {
		t.Errorf("only %d distinct links followed", len(checked))
	}
}
