package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmcdole/gofeed"
	"golang.org/x/net/html"
)

// payloads are the ways of smuggling something executable into a page.
var payloads = []string{
	`<script>alert(1)</script>`,
	`<img src=x onerror=alert(2)>`,
	`<a href="javascript:alert(3)">click</a>`,
	`<svg onload=alert(4)>`,
	`"><script>alert(5)</script>`,
	`<iframe src="https://evil.example/"></iframe>`,
	`<a href="JaVaScRiPt:alert(6)">x</a>`,
	`<a href=" javascript:alert(7)">x</a>`,
	`<object data="https://evil.example/x.swf"></object>`,
	`<a href="data:text/html,<script>alert(8)</script>">x</a>`,
	`<form action="javascript:alert(9)"><button>go</button></form>`,
	`<body onload=alert(10)>`,
}

// executable lists what in an HTML document could run: script-like elements,
// event-handler attributes, and javascript:/vbscript:/data: URLs.
func executable(doc string) []string {
	var found []string
	root, err := html.Parse(strings.NewReader(doc))
	if err != nil {
		return []string{"unparsable: " + err.Error()}
	}
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "script", "iframe", "object", "embed", "frame", "frameset", "applet", "base":
				found = append(found, "<"+n.Data+">")
			}
			for _, a := range n.Attr {
				key := strings.ToLower(a.Key)
				if strings.HasPrefix(key, "on") {
					found = append(found, fmt.Sprintf("<%s %s=%q>", n.Data, a.Key, a.Val))
				}
				switch key {
				case "href", "src", "action", "formaction", "xlink:href", "srcset", "data", "poster":
					v := strings.ToLower(strings.Join(strings.Fields(a.Val), ""))
					if strings.HasPrefix(v, "javascript:") || strings.HasPrefix(v, "vbscript:") || strings.HasPrefix(v, "data:text/html") {
						found = append(found, fmt.Sprintf("<%s %s=%q>", n.Data, a.Key, a.Val))
					}
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(root)
	return found
}

// TestNothingExecutableReachesAFeedAPageOrAnEmail pushes every payload through every
// field of a Markdown piece, a plain-text piece and its sidecar, and a subscriber's
// name, then reads every page, every feed's HTML and every email's HTML part.
func TestNothingExecutableReachesAFeedAPageOrAnEmail(t *testing.T) {
	d := newDesk(t, `site:
  title: XSS Desk
  base_url: http://localhost:8080/
mail:
  transport: file
  outbox_dir: outbox
digest:
  default_cadence: immediate
`)
	var csv strings.Builder
	csv.WriteString("email,name\n")
	for i, p := range payloads {
		q := func(s string) string { return strings.ReplaceAll(s, `"`, `'`) }
		d.write(fmt.Sprintf("content/md-%02d.md", i), fmt.Sprintf(`---
title: "Title %[1]s"
summary: "Summary %[1]s"
authors:
  - name: "Author %[1]s"
    role: "Role %[1]s"
topics: [energy]
source:
  name: "Source %[1]s"
---

Body with %[2]s inline.

%[2]s

[link](javascript:alert(99)) and ![img](javascript:alert(98))
`, q(p), p))
		d.write(fmt.Sprintf("content/txt-%02d.txt", i), fmt.Sprintf("Originally published in the %[1]s\nJana Novak\nA paragraph with %[1]s in it.\nJana Novak\nRole %[1]s\n", p))
		d.write(fmt.Sprintf("content/side-%02d.txt", i), "Jana Novak\nA plain paragraph.\n")
		d.write(fmt.Sprintf("content/side-%02d.yaml", i), fmt.Sprintf("title: \"Sidecar %s\"\nsummary: \"Sidecar summary %s\"\n", q(p), q(p)))
		fmt.Fprintf(&csv, "reader%02d@example.org,\"Reader %s\"\n", i, strings.ReplaceAll(p, `"`, `""`))
	}
	d.write("subscribers/list.csv", csv.String())

	r := d.run("run")
	if r.code != 0 {
		t.Fatalf("run exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	checked := 0
	check := func(where, doc string) {
		t.Helper()
		checked++
		if bad := executable(doc); len(bad) > 0 {
			t.Errorf("%s: executable content: %v", where, bad)
		}
	}

	// Every page of the archive.
	pub := filepath.Join(d.dir, "public")
	err := filepath.WalkDir(pub, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(pub, p)
		switch filepath.Ext(p) {
		case ".html":
			check(rel, string(b))
		case ".xml", ".json":
			feed, err := gofeed.NewParser().Parse(bytes.NewReader(b))
			if err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
			for _, it := range feed.Items {
				check(rel+" content of "+it.Link, it.Content)
				// RSS descriptions are HTML to a reader. Atom summaries are declared
				// type="text" and JSON Feed summaries are plain text by the spec, so
				// a payload there is shown, not run.
				if feed.FeedType == "rss" {
					check(rel+" description of "+it.Link, it.Description)
				}
			}
			if feed.FeedType == "atom" && (bytes.Contains(b, []byte(`<summary type="html"`)) || bytes.Contains(b, []byte(`<summary>`))) {
				t.Errorf("%s: an Atom summary not declared type=\"text\"", rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Every email's HTML part.
	emls, _ := filepath.Glob(filepath.Join(d.dir, "outbox", "*.eml"))
	if len(emls) != len(payloads) {
		t.Fatalf("%d emails, want %d", len(emls), len(payloads))
	}
	for _, p := range emls {
		_, doc := emailParts(t, p)
		check(filepath.Base(p), doc)
	}
	t.Logf("%d payloads through pieces, sidecars and subscriber names; %d documents checked", len(payloads), checked)
	if checked < 100 {
		t.Fatalf("only %d documents checked", checked)
	}
}
