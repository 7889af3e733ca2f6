// Package site renders the static archive: a front page with the latest pieces,
// every feed and the e-mail sign-up form, one page per piece and one per topic.
// Like package feed it is a pure renderer: the same pieces give the same bytes.
package site

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"publisher/internal/content"
	"publisher/internal/feed"
	"publisher/internal/output"
	"publisher/templates"
)

// Template files the archive is drawn from. The layout file defines the page
// frame ("site-layout") and shared pieces; each page file defines "site-main".
const (
	LayoutTemplate = "site-layout.html.tmpl"
	IndexTemplate  = "site-index.html.tmpl"
	PieceTemplate  = "site-piece.html.tmpl"
	TopicTemplate  = "site-topic.html.tmpl"
)

// defaultCadences are the digest cadences the sign-up form offers when
// Options.Cadences is empty.
func defaultCadences() []string { return []string{"immediate", "daily", "weekly"} }

// Options describe the site.
type Options struct {
	Title       string
	Description string
	// BaseURL is the absolute URL the output folder is served at.
	BaseURL string
	// Language is the pages' lang attribute; "en" when empty.
	Language string
	// Templates holds the template files; nil means the embedded set.
	Templates fs.FS
	// SubscribeAction is where the sign-up form posts. Empty leaves the form
	// out: a static archive has nothing to post to until the daemon serves one.
	SubscribeAction string
	// Cadences the form offers (immediate, daily, weekly when empty), the
	// first of them, or DefaultCadence, preselected.
	Cadences       []string
	DefaultCadence string
	// IndexItems is how many pieces the front page lists; 0 lists them all.
	IndexItems int
}

// Site renders archive pages from templates parsed once.
type Site struct {
	opts  Options
	base  *url.URL
	pages map[string]*template.Template // by page template file name
}

// New checks opts and parses the templates. A template that does not parse is
// an error naming its file and line.
func New(opts Options) (*Site, error) {
	if strings.TrimSpace(opts.Title) == "" {
		return nil, errors.New("site: title is empty")
	}
	base, err := feed.ParseBase(opts.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("site: %w", err)
	}
	if opts.Templates == nil {
		opts.Templates = templates.FS("")
	}
	if opts.Language == "" {
		opts.Language = "en"
	}
	if len(opts.Cadences) == 0 {
		opts.Cadences = defaultCadences()
	}
	pages, errs := parse(opts.Templates)
	if len(errs) > 0 {
		return nil, fmt.Errorf("site: %w", errors.Join(errs...))
	}
	return &Site{opts: opts, base: base, pages: pages}, nil
}

// parse builds one template set per page: the layout plus that page's file,
// so that every page can define its own "site-main".
func parse(fsys fs.FS) (map[string]*template.Template, []error) {
	layout, err := fs.ReadFile(fsys, LayoutTemplate)
	if err != nil {
		return nil, []error{fmt.Errorf("template %s: %w", LayoutTemplate, err)}
	}
	pages := map[string]*template.Template{}
	var errs []error
	for _, name := range []string{IndexTemplate, PieceTemplate, TopicTemplate} {
		text, err := fs.ReadFile(fsys, name)
		if err != nil {
			errs = append(errs, fmt.Errorf("template %s: %w", name, err))
			continue
		}
		t := template.New(name)
		if _, err := t.New(LayoutTemplate).Parse(string(layout)); err != nil {
			// The same layout error would repeat for every page: report it once.
			return nil, []error{err}
		}
		if _, err := t.Parse(string(text)); err != nil {
			errs = append(errs, err)
			continue
		}
		for _, needed := range []string{"site-layout", "site-main"} {
			if t.Lookup(needed) == nil {
				errs = append(errs, fmt.Errorf("template %s: defines no %q template", name, needed))
			}
		}
		pages[name] = t
	}
	return pages, errs
}

// CheckTemplates reports every problem with the archive templates in fsys:
// files that are missing or do not parse, and templates that fail on a sample
// site (an unknown field, say). Each error names the file and line.
func CheckTemplates(fsys fs.FS) []error {
	pages, errs := parse(fsys)
	if len(errs) > 0 {
		return errs
	}
	s := &Site{
		opts: Options{
			Title: "Sample desk", BaseURL: "https://desk.example/", Language: "en",
			SubscribeAction: "/subscribe", Cadences: defaultCadences(), Templates: fsys,
		},
		pages: pages,
	}
	s.base, _ = url.Parse(s.opts.BaseURL)
	var out []error
	if err := s.renderPooled(samplePieces(), nil, func(string, *bytes.Buffer) {}); err != nil {
		out = append(out, err)
	}
	return out
}

// Check executes the site's templates against a sample set of pieces, so that
// `publisher check` finds template mistakes that only show when rendering.
func (s *Site) Check() error {
	return s.renderPooled(samplePieces(), nil, func(string, *bytes.Buffer) {})
}

func samplePieces() []content.Piece {
	date := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	return []content.Piece{{
		ID: "sample", Slug: "sample", Title: "Sample piece", File: "sample.md",
		Authors: []content.Author{{Name: "A. Author", Role: "Analyst", URL: "https://desk.example/a"}},
		Date:    date, Updated: date.AddDate(0, 0, 1), Summary: "A summary.", Lede: "A lede.",
		Topics: []string{"Sample topic"}, Source: content.Source{Name: "The Source", URL: "https://source.example/"},
		CanonicalURL: "https://source.example/sample", Image: "cover.png",
		HTML: `<p>Body with <a href="other/">a link</a>.</p>`,
	}}
}

// Render returns index.html, pieces/<slug>/index.html for every piece and
// topics/<slug>/index.html for every topic. Pieces that cannot get a page are
// left out and named in the error; the files returned are complete for the rest.
// They are in path order (pages are rendered concurrently).
func (s *Site) Render(pieces []content.Piece) ([]output.File, error) {
	var files []output.File
	err := s.renderPooled(pieces, nil, func(path string, buf *bytes.Buffer) {
		files = append(files, output.File{Path: path, Data: buf.Bytes()})
	})
	slices.SortFunc(files, func(a, b output.File) int { return strings.Compare(a.Path, b.Path) })
	return files, err
}

// RenderTo renders the same files as Render but hands each to emit as soon as it
// is produced, so a caller writing them never holds the whole archive. A file's
// Data is lent: its buffer is reused once the file's Release is called.
func (s *Site) RenderTo(pieces []content.Piece, emit func(output.File)) error {
	var buffers sync.Pool
	return s.renderPooled(pieces, &buffers, func(path string, buf *bytes.Buffer) {
		emit(output.File{Path: path, Data: buf.Bytes(), Release: func() { buffers.Put(buf) }})
	})
}

// listPage is the index or a topic page.
type listPage struct {
	tmpl, path string
	data       *pageData
}

// Templates of the layout that render a part of a page once for many pages.
const (
	EntryTemplate     = "site-piece-entry" // one piece in a list
	FeedsHeadTemplate = "site-feeds-head"  // a page's feeds as autodiscovery links
	FeedsFootTemplate = "site-feeds-foot"  // a page's feeds as footer links
)

// withFeeds sets data's Feeds and renders them for the head and the footer.
func (s *Site) withFeeds(data *pageData, feeds []feedLink) (*pageData, error) {
	data.Feeds = feeds
	for _, part := range []struct {
		name string
		to   *template.HTML
	}{{FeedsHeadTemplate, &data.FeedsHead}, {FeedsFootTemplate, &data.FeedsFoot}} {
		t := s.pages[IndexTemplate].Lookup(part.name)
		if t == nil {
			continue
		}
		var b strings.Builder
		if err := t.Execute(&b, feeds); err != nil {
			return nil, fmt.Errorf("site: %s: %w", part.name, err)
		}
		*part.to = template.HTML(b.String())
	}
	return data, nil
}

// renderPieces fills views[i] for pieces[i] and renders its page and its list
// entry, on every core: no page depends on another. A piece's own problems are
// added to errs in page order; a template failure is returned, and stops the
// rest (every page would fail alike). frame is the site's data with its own feeds, which every piece page shows.
func (s *Site) renderPieces(pieces []content.Piece, views []pieceView, frame *pageData, exec func(tmpl, path string, data *pageData) error, errs *[]error) error {
	entries := s.pages[IndexTemplate].Lookup(EntryTemplate)
	pieceErr := make([]error, len(views))
	err := forEach(len(views), func(i int) error {
		v := &views[i]
		*v = s.pieceView(&pieces[i])
		v.body, pieceErr[i] = resolvedBody(v.piece, v.pageURL)
		defer func() { v.body = "" }()
		page := *frame
		page.Title, page.Canonical, page.Description, page.Piece = v.Title, v.Canonical, v.Summary, v
		if err := exec(PieceTemplate, feed.PieceDir(v.Slug)+"index.html", &page); err != nil {
			return err
		}
		if entries == nil {
			return nil
		}
		var b strings.Builder
		b.Grow(1024)
		if err := entries.Execute(&b, v); err != nil {
			return fmt.Errorf("site: %s for %s: %w", EntryTemplate, v.piece.File, err)
		}
		v.Entry = template.HTML(b.String())
		return nil
	})
	for _, e := range pieceErr {
		if e != nil {
			*errs = append(*errs, e)
		}
	}
	return err
}

// forEach runs work(0) … work(n-1) on every core. The first error is
// returned, and the items not yet started are not.
func forEach(n int, work func(i int) error) error {
	var (
		next    atomic.Int64
		mu      sync.Mutex
		failure error
		wg      sync.WaitGroup
	)
	for range min(runtime.GOMAXPROCS(0), n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := safely(i, work); err != nil {
					mu.Lock()
					if failure == nil {
						failure = err
					}
					mu.Unlock()
					next.Store(int64(n)) // the others stop at their next item
					return
				}
			}
		})
	}
	wg.Wait()
	return failure
}

// safely runs work(i), turning a panic into an error, so that a bug meeting
// one page fails the build, not the process.
func safely(i int, work func(i int) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error rendering page %d (please report it): %v", i, r)
		}
	}()
	return work(i)
}

// renderPooled renders every page and hands each to emit, in a buffer taken
// from buffers when it is set (a page is 7-15 KB: 10,000 of them were a fifth
// of a build's allocations). A template failure stops rendering (every page
// would fail alike); a piece problem only leaves that piece out.
func (s *Site) renderPooled(pieces []content.Piece, buffers *sync.Pool, emit func(path string, buf *bytes.Buffer)) error {
	sorted, sortErr := feed.Newest(pieces)
	errs := []error{sortErr}
	topics := feed.Topics(sorted)
	sd := s.siteData(topics)

	views := make([]pieceView, len(sorted))

	// emit is called from one goroutine at a time, though pages are rendered
	// on several.
	var emitMu sync.Mutex
	exec := func(tmpl, path string, data *pageData) error {
		var buf *bytes.Buffer
		if buffers != nil {
			buf, _ = buffers.Get().(*bytes.Buffer) // nil while the pool is empty
		}
		if buf == nil {
			buf = new(bytes.Buffer)
		}
		buf.Reset()
		// Room for the frame (about 6 KB with the stylesheet) and the content,
		// so that the buffer is not regrown several times per page.
		size := 8 << 10
		if data.Piece != nil {
			size += len(data.Piece.body) + len(data.Piece.Summary)
		}
		buf.Grow(size + len(data.Pieces)*512)
		if err := s.pages[tmpl].ExecuteTemplate(buf, "site-layout", data); err != nil {
			return fmt.Errorf("site: %s: %w", path, err)
		}
		emitMu.Lock()
		defer emitMu.Unlock()
		emit(path, buf)
		return nil
	}

	// The site's own feeds, on the piece pages and the front page.
	frame, err := s.withFeeds(&pageData{Site: sd}, sd.FeedGroups[0].Links)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	// The list pages come last: they take the entries the piece pages left.
	if err := s.renderPieces(sorted, views, frame, exec, &errs); err != nil {
		return errors.Join(append(errs, err)...)
	}
	listed := views
	if s.opts.IndexItems > 0 && len(listed) > s.opts.IndexItems {
		listed = listed[:s.opts.IndexItems]
	}
	index := *frame
	index.Canonical, index.Description, index.Pieces = sd.Home, s.opts.Description, listed
	lists := []listPage{{IndexTemplate, "index.html", &index}}
	// Each view knows its topics' slugs: one pass sorts the views into topics.
	byTopic := make(map[string][]pieceView, len(topics))
	for i := range views {
		for _, t := range views[i].Topics {
			byTopic[t.slug] = append(byTopic[t.slug], views[i])
		}
	}
	for i, t := range topics {
		group := &sd.FeedGroups[i+1]
		on := byTopic[t.Slug]
		page, err := s.withFeeds(&pageData{
			Site: sd, Title: t.Name, Canonical: group.Home,
			Description: fmt.Sprintf("Pieces on %s from %s", t.Name, s.opts.Title),
			Topic:       group, Pieces: on,
		}, append(append([]feedLink{}, group.Links...), sd.FeedGroups[0].Links...))
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		lists = append(lists, listPage{TopicTemplate, feed.TopicDir(t.Slug) + "index.html", page})
	}
	if err := forEach(len(lists), func(i int) error { return exec(lists[i].tmpl, lists[i].path, lists[i].data) }); err != nil {
		return errors.Join(append(errs, err)...)
	}
	return errors.Join(errs...)
}
