// Command benchgen writes the benchmark inputs: pieces in both of publisher's
// formats, subscriber lists, and a Hugo site holding the same articles. Output is a
// pure function of the flags (fixed seeds), so every run measures the same bytes.
//
//	benchgen pieces -n 10000 -dir DIR [-paragraphs 6] [-undated]
//	benchgen subscribers -n 100000 -out FILE.csv
//	benchgen hugo -n 10000 -dir DIR [-paragraphs 6]
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// topics is the small set of desks the generated pieces are filed under.
var topics = []string{"Energy", "Security", "Economy", "Foreign Policy", "Technology"}

// vocabulary is made-up analysis prose; only its length and shape matter.
var vocabulary = strings.Fields(`analysts expect the ministry to revise its forecast after
pipeline tariffs rose sharply across the region while shipping insurers priced new
risks into tanker contracts and central banks held reserves steady despite pressure
from currency markets grid operators reported record demand during the cold spell
negotiators met again without agreement on transit fees procurement delays left
several brigades short of air defence systems officials described the talks as
constructive but declined to give a timetable exporters shifted cargoes toward
southern ports as rail capacity tightened the parliament debated a budget that
favours defence over infrastructure investors remain cautious about long term
contracts because sanctions rules keep changing observers note that coastal states
lack patrol vessels for the northern waters the regulator opened an inquiry into
price swings on the wholesale market diplomats signalled a willingness to resume
dialogue once the ceasefire holds refinery margins narrowed as crude discounts faded`)

var firstNames = []string{"Ana", "Jonas", "Li", "Sam", "Marta", "Oleksii", "Ingrid", "Tomas", "Aino", "Ravi", "Chloe", "Dmitri"}
var lastNames = []string{"Petrova", "Lehtinen", "Okafor", "Müller", "Kowalska", "Petraitis", "Haugen", "Novak", "Wen", "Sato", "Garcia", "Ivanova"}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchgen pieces|subscribers|hugo [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "pieces":
		err = cmdPieces(os.Args[2:])
	case "subscribers":
		err = cmdSubscribers(os.Args[2:])
	case "hugo":
		err = cmdHugo(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchgen:", err)
		os.Exit(1)
	}
}

// article is one generated piece, independent of the format it is written in.
type article struct {
	slug       string
	title      string
	author     string
	date       time.Time
	topics     []string
	summary    string
	paragraphs []string
}

// epoch anchors generated dates so the output never depends on today's date.
var epoch = time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)

func makeArticle(i, paragraphs int) article {
	rng := rand.New(rand.NewPCG(uint64(i), 42))
	sentence := func(words int) string {
		w := make([]string, words)
		for j := range w {
			w[j] = vocabulary[rng.IntN(len(vocabulary))]
		}
		s := strings.Join(w, " ")
		return strings.ToUpper(s[:1]) + s[1:] + "."
	}
	a := article{
		slug:    fmt.Sprintf("piece-%05d", i),
		author:  firstNames[rng.IntN(len(firstNames))] + " " + lastNames[rng.IntN(len(lastNames))],
		date:    epoch.Add(-time.Duration(i) * 3 * time.Hour),
		summary: sentence(18),
	}
	a.title = strings.TrimSuffix(sentence(7), ".") + fmt.Sprintf(" (%d)", i)
	a.topics = []string{topics[i%len(topics)]}
	if i%3 == 0 {
		a.topics = append(a.topics, topics[(i+2)%len(topics)])
	}
	for range paragraphs {
		var p []string
		for range 5 + rng.IntN(3) {
			p = append(p, sentence(10+rng.IntN(10)))
		}
		a.paragraphs = append(a.paragraphs, strings.Join(p, " "))
	}
	// Even articles become Markdown pieces (plain text has no links): give them
	// a link to another piece, relative, and one to a source outside the site.
	if i%2 == 0 && len(a.paragraphs) > 1 {
		a.paragraphs[1] += fmt.Sprintf(" See [the piece before](../piece-%05d/) and [the report](https://source.example/reports/%d).", i+2, i)
	}
	return a
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func cmdPieces(args []string) error {
	fs := flag.NewFlagSet("pieces", flag.ExitOnError)
	n := fs.Int("n", 10000, "number of pieces")
	dir := fs.String("dir", "", "content folder to write (emptied first)")
	paragraphs := fs.Int("paragraphs", 6, "paragraphs per piece")
	undated := fs.Bool("undated", false, "give no dates, so pieces count as published when first seen (for digests)")
	_ = fs.Parse(args)
	if *dir == "" {
		return fmt.Errorf("pieces: -dir is required")
	}
	if err := os.RemoveAll(*dir); err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	for i := range *n {
		a := makeArticle(i, *paragraphs)
		// Even pieces are Markdown with front matter; odd ones are newsroom plain text,
		// two in three of them with a sidecar (the rest have their title derived).
		if i%2 == 0 {
			var b strings.Builder
			fmt.Fprintf(&b, "---\ntitle: %q\nauthors:\n  - name: %s\n    role: Analyst\n", a.title, a.author)
			if !*undated {
				fmt.Fprintf(&b, "date: %s\n", a.date.Format(time.RFC3339))
			}
			fmt.Fprintf(&b, "topics: %s\nsummary: %q\n---\n\n", quoteList(a.topics), a.summary)
			for j, p := range a.paragraphs {
				if j == 2 {
					fmt.Fprintf(&b, "## Section %d\n\n", j)
				}
				fmt.Fprintf(&b, "%s\n\n", p)
			}
			if err := os.WriteFile(filepath.Join(*dir, a.slug+".md"), []byte(b.String()), 0o644); err != nil {
				return err
			}
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "Originally published in the Bench Review\n%s\n", a.author)
		b.WriteString(strings.Join(a.paragraphs, "\n"))
		fmt.Fprintf(&b, "\n%s\nAnalyst, Bench Institute", a.author)
		if err := os.WriteFile(filepath.Join(*dir, a.slug+".txt"), []byte(b.String()), 0o644); err != nil {
			return err
		}
		if i%3 != 0 {
			var s strings.Builder
			fmt.Fprintf(&s, "title: %q\ntopics: %s\n", a.title, quoteList(a.topics))
			if !*undated {
				fmt.Fprintf(&s, "date: %s\n", a.date.Format(time.RFC3339))
			}
			if err := os.WriteFile(filepath.Join(*dir, a.slug+".yaml"), []byte(s.String()), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

func cmdSubscribers(args []string) error {
	fs := flag.NewFlagSet("subscribers", flag.ExitOnError)
	n := fs.Int("n", 100000, "number of subscribers")
	out := fs.String("out", "", "CSV file to write")
	cadence := fs.String("cadence", "immediate", "cadence of every row")
	_ = fs.Parse(args)
	if *out == "" {
		return fmt.Errorf("subscribers: -out is required")
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<16)
	fmt.Fprintln(w, "email,name,topics,cadence")
	for i := range *n {
		// Empty topics: everyone wants every piece, so all get the same ~20 KB digest
		// and differ only in name, address and tokens.
		fmt.Fprintf(w, "reader%07d@bench.example.org,%s %s,,%s\n", i,
			firstNames[i%len(firstNames)], lastNames[(i/len(firstNames))%len(lastNames)], *cadence)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// Hugo's side: the same articles as Markdown, with RSS for home, sections and tags
// (Hugo's defaults), and minimal templates so the work is rendering, not theming.
const hugoConfig = `baseURL = "https://bench.example.org/"
title = "Bench"
languageCode = "en"
disableKinds = ["sitemap", "robotsTXT", "404"]
[taxonomies]
  tag = "tags"
[outputs]
  home = ["html", "rss"]
  section = ["html", "rss"]
  taxonomy = ["html", "rss"]
  term = ["html", "rss"]
[services.rss]
  limit = 50
[markup.goldmark.renderer]
  unsafe = false
`

var hugoLayouts = map[string]string{
	"baseof.html": `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{{ .Title }}</title></head><body>{{ block "main" . }}{{ end }}</body></html>
`,
	"single.html": `{{ define "main" }}<article><h1>{{ .Title }}</h1><p>{{ .Date.Format "2 January 2006" }}{{ with .Params.author }} · {{ . }}{{ end }}</p>{{ with .Params.tags }}<ul>{{ range . }}<li>{{ . }}</li>{{ end }}</ul>{{ end }}{{ .Content }}</article>{{ end }}
`,
	"list.html": `{{ define "main" }}<h1>{{ .Title }}</h1><ul>{{ range .Paginator.Pages }}<li><a href="{{ .RelPermalink }}">{{ .Title }}</a> {{ .Summary }}</li>{{ end }}</ul>{{ end }}
`,
}

func cmdHugo(args []string) error {
	fs := flag.NewFlagSet("hugo", flag.ExitOnError)
	n := fs.Int("n", 10000, "number of articles")
	dir := fs.String("dir", "", "site folder to write (emptied first)")
	paragraphs := fs.Int("paragraphs", 6, "paragraphs per article")
	_ = fs.Parse(args)
	if *dir == "" {
		return fmt.Errorf("hugo: -dir is required")
	}
	if err := os.RemoveAll(*dir); err != nil {
		return err
	}
	posts := filepath.Join(*dir, "content", "posts")
	layouts := filepath.Join(*dir, "layouts", "_default")
	for _, d := range []string{posts, layouts} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(*dir, "hugo.toml"), []byte(hugoConfig), 0o644); err != nil {
		return err
	}
	for name, body := range hugoLayouts {
		if err := os.WriteFile(filepath.Join(layouts, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	for i := range *n {
		a := makeArticle(i, *paragraphs)
		var b strings.Builder
		fmt.Fprintf(&b, "---\ntitle: %q\nauthor: %q\ndate: %s\ntags: %s\nsummary: %q\n---\n\n",
			a.title, a.author, a.date.Format(time.RFC3339), quoteList(a.topics), a.summary)
		for j, p := range a.paragraphs {
			if j == 2 && i%2 == 0 {
				fmt.Fprintf(&b, "## Section %d\n\n", j)
			}
			fmt.Fprintf(&b, "%s\n\n", p)
		}
		if err := os.WriteFile(filepath.Join(posts, a.slug+".md"), []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	return nil
}
