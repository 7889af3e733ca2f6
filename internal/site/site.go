// Package site renders the static archive: a front page with the latest pieces,
// every feed and the e-mail sign-up form, one page per piece, one per topic
// with that topic's latest pieces, and the archive month by month (the whole
// site's and each topic's) in pages of a bounded size. Like package feed it is
// a pure renderer: the same pieces give the same bytes.
package site

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"publisher/internal/content"
	"publisher/internal/feed"
	"publisher/internal/output"
	"publisher/internal/subscriber"
	"publisher/templates"
)

// Template files the archive is drawn from. The layout file defines the page
// frame ("site-layout") and shared pieces; each page file defines "site-main".
const (
	LayoutTemplate  = "site-layout.html.tmpl"
	PartsTemplate   = "site-parts.html.tmpl" // entries, lists, forms, pagers: parsed before the layout
	IndexTemplate   = "site-index.html.tmpl"
	PieceTemplate   = "site-piece.html.tmpl"
	TopicTemplate   = "site-topic.html.tmpl"
	ArchiveTemplate = "site-archive.html.tmpl" // one page of a month
	MonthsTemplate  = "site-months.html.tmpl"  // the site's archive, month by month
)

var pageTemplates = []string{IndexTemplate, PieceTemplate, TopicTemplate, ArchiveTemplate, MonthsTemplate}

// ArchiveDir is the folder of the site's archive: archive/index.html lists the
// months, archive/2026/11/index.html is November 2026, archive/2026/11/2/ its
// second page. A topic's archive is in its own folder: topics/<slug>/2026/11/.
const ArchiveDir = "archive/"

// DefaultPageSize is how many pieces a list page shows when Options.PageSize is 0.
const DefaultPageSize = 20

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
	// SubscribeAction is where the sign-up forms post. Empty leaves them
	// out: a static archive has nothing to post to until the daemon serves one.
	SubscribeAction string
	// Cadences the form offers (immediate, daily, weekly when empty), the
	// first of them, or DefaultCadence, preselected.
	Cadences       []string
	DefaultCadence string
	// PageSize is how many pieces the front page, a topic page and a page of
	// the archive show (DefaultPageSize when 0).
	PageSize int
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
		opts.Cadences = subscriber.Cadences()
	}
	if opts.PageSize < 0 {
		return nil, fmt.Errorf("site: page size %d must be positive", opts.PageSize)
	}
	if opts.PageSize == 0 {
		opts.PageSize = DefaultPageSize
	}
	pages, errs := parse(opts.Templates)
	if len(errs) > 0 {
		return nil, fmt.Errorf("site: %w", errors.Join(errs...))
	}
	return &Site{opts: opts, base: base, pages: pages}, nil
}

// parse builds one template set per page: the parts, the layout (which may
// redefine parts) and that page's file, so that every page can define its own
// "site-main".
func parse(fsys fs.FS) (map[string]*template.Template, []error) {
	parts, err := fs.ReadFile(fsys, PartsTemplate)
	if err != nil {
		return nil, []error{fmt.Errorf("template %s: %w", PartsTemplate, err)}
	}
	layout, err := fs.ReadFile(fsys, LayoutTemplate)
	if err != nil {
		return nil, []error{fmt.Errorf("template %s: %w", LayoutTemplate, err)}
	}
	pages := map[string]*template.Template{}
	var errs []error
	for _, name := range pageTemplates {
		text, err := fs.ReadFile(fsys, name)
		if err != nil {
			errs = append(errs, fmt.Errorf("template %s: %w", name, err))
			continue
		}
		t := template.New(name)
		if _, err := t.New(PartsTemplate).Parse(string(parts)); err != nil {
			return nil, []error{err}
		}
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
			SubscribeAction: "/subscribe", Cadences: subscriber.Cadences(), Templates: fsys, PageSize: 1,
		},
		pages: pages,
	}
	s.base, _ = url.Parse(s.opts.BaseURL)
	if err := s.Check(); err != nil {
		return []error{err}
	}
	return nil
}

// Check executes the site's templates against a sample set of pieces, so that
// `publisher check` finds template mistakes that only show when rendering.
func (s *Site) Check() error {
	// Page size 1 gives the samples every kind of page, parts and links included.
	c := *s
	c.opts.PageSize = 1
	return c.RenderTo(samplePieces(), func(f output.File) {})
}

func samplePieces() []content.Piece {
	date := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	sample := content.Piece{
		ID: "sample", Slug: "sample", Title: "Sample piece", File: "sample.md",
		Authors: []content.Author{{Name: "A. Author", Role: "Analyst", URL: "https://desk.example/a"}},
		Date:    date, Updated: date.AddDate(0, 0, 1), Summary: "A summary.", Lede: "A lede.",
		Topics: []string{"Sample topic"}, Source: content.Source{Name: "The Source", URL: "https://source.example/"},
		CanonicalURL: "https://source.example/sample", Image: "cover.png",
		HTML: `<p>Body with <a href="other/">a link</a>.</p>`,
	}
	older := sample
	older.ID, older.Slug, older.File, older.Date = "older-sample", "older-sample", "older-sample.md", date.AddDate(0, -1, 0)
	return []content.Piece{sample, older}
}

// Render returns every page of the archive for pieces. Pieces that cannot get a
// page are left out and named in the error; the files returned are complete for
// the rest. They are in path order (pages are rendered concurrently).
func (s *Site) Render(pieces []content.Piece) ([]output.File, error) {
	var files []output.File
	err := s.RenderTo(pieces, func(f output.File) {
		f.Data = bytes.Clone(f.Data)
		f.Release()
		f.Release = nil
		files = append(files, f)
	})
	slices.SortFunc(files, func(a, b output.File) int { return strings.Compare(a.Path, b.Path) })
	return files, err
}

// RenderTo renders the same files as Render but hands each to emit as soon as it
// is produced, so a caller writing them never holds the whole archive. A file's
// Data is lent: its buffer is reused once the file's Release is called.
func (s *Site) RenderTo(pieces []content.Piece, emit func(output.File)) error {
	plan, err := s.Plan(pieces)
	if err != nil {
		return err
	}
	return errors.Join(plan.Problems(), plan.Render(func(Page) bool { return true }, emit))
}

// Templates of the layout that render a part of a page once for many pages.
const (
	EntryTemplate     = "site-piece-entry" // one piece in a list
	FeedsHeadTemplate = "site-feeds-head"  // a page's feeds as autodiscovery links
	FeedsFootTemplate = "site-feeds-foot"  // the site's feeds as footer links
	HeaderTemplate    = "site-header"      // the site's name and navigation
	SubscribeTemplate = "site-subscribe"   // the sign-up form
)

// part renders one of the layout's shared templates, or "" when the layout
// does not define it.
func (s *Site) part(name string, data any) (template.HTML, error) {
	t := s.pages[IndexTemplate].Lookup(name)
	if t == nil {
		return "", nil
	}
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("site: %s: %w", name, err)
	}
	return template.HTML(b.String()), nil
}

// pageFrame is what many pages share besides the site: a topic, a set of
// feeds, and the parts rendered once for all of them.
type pageFrame struct {
	topic *feedGroup
	feeds []feedLink
	key   string // frameKey(feeds, topic)
	// Rendered from feeds ("site-feeds-head"), the site's feeds
	// ("site-feeds-foot"), and the site and topic ("site-header",
	// "site-subscribe"): together they cost as much as a piece's own part of
	// its page, so they are rendered once per frame rather than per page.
	feedsHead, feedsFoot, header, subscribe template.HTML
}

// frame renders the shared parts for pages of sd showing topic (nil for the
// site's own pages) and feeds; foot is the site's feeds in the footer. The
// header and the form see the page's data with nothing else set.
func (s *Site) frame(sd *siteData, topic *feedGroup, feeds []feedLink, foot template.HTML) (*pageFrame, error) {
	fr := &pageFrame{topic: topic, feeds: feeds, key: frameKey(feeds, topic), feedsFoot: foot}
	var err error
	if fr.feedsHead, err = s.part(FeedsHeadTemplate, feeds); err != nil {
		return nil, err
	}
	data := &pageData{Site: sd, Topic: topic}
	if fr.header, err = s.part(HeaderTemplate, data); err != nil {
		return nil, err
	}
	if fr.subscribe, err = s.part(SubscribeTemplate, data); err != nil {
		return nil, err
	}
	return fr, nil
}

func (fr *pageFrame) fill(d *pageData) {
	d.Topic, d.Feeds, d.frame = fr.topic, fr.feeds, fr.key
	d.FeedsHead, d.FeedsFoot, d.Header, d.Subscribe = fr.feedsHead, fr.feedsFoot, fr.header, fr.subscribe
}

// Page is one file of the archive.
type Page struct {
	Path string
	// Key changes whenever the page's bytes would, for the same templates and
	// settings: a build may keep a page whose key it rendered before.
	Key string
	// Piece is the piece a piece page shows, in the plan's own copy: its body
	// must be there (Piece.HTML) when the page is rendered. Nil for lists.
	Piece *content.Piece
}

// Plan is every page of the archive for a set of pieces, and what each page is
// made from. Planning reads no piece's body and renders nothing but the parts
// shared by many pages, so an incremental build plans the whole archive and
// renders only the pages whose keys changed.
type Plan struct {
	s        *Site
	sorted   []content.Piece
	keys     []string     // sorted[i].Key()
	views    []*pieceView // views[i] for sorted[i], made for the pages rendered
	pages    []page
	problems error
}

type page struct {
	tmpl, path string
	data       *pageData
	piece      int   // the piece a piece page shows; -1 for lists
	pieces     []int // the pieces a list shows, by index in sorted
	key        string
}

// Problems names the pieces left out of the archive (a bad slug, no date).
func (p *Plan) Problems() error { return p.problems }

// Pages lists every page: the piece pages (newest piece first), then the lists.
func (p *Plan) Pages() []Page {
	out := make([]Page, len(p.pages))
	for i, pg := range p.pages {
		out[i] = Page{Path: pg.path, Key: pg.key}
		if pg.piece >= 0 {
			out[i].Piece = &p.sorted[pg.piece]
		}
	}
	return out
}

// Plan works out every page of the archive for pieces. Its error is a template
// that fails on the parts shared by many pages; pieces that cannot get a page
// are named by Problems.
func (s *Site) Plan(pieces []content.Piece) (*Plan, error) {
	sorted, sortErr := feed.Newest(pieces)
	p := &Plan{s: s, sorted: sorted, problems: sortErr, views: make([]*pieceView, len(sorted)), keys: make([]string, len(sorted))}
	topics := feed.Topics(sorted)
	sd := s.siteData(topics)
	siteFeeds := sd.FeedGroups[0].Links
	foot, err := s.part(FeedsFootTemplate, siteFeeds)
	if err != nil {
		return nil, err
	}

	// The piece pages: each depends on its piece and on a frame that is the
	// same for all of them.
	psd := pieceSite(sd)
	pieceFrame, err := s.frame(psd, nil, siteFeeds, foot)
	if err != nil {
		return nil, err
	}
	pieceData := &pageData{Site: psd}
	pieceFrame.fill(pieceData)
	pieceKey := dataKey(PieceTemplate, "", pieceData, jsonKey(psd), nil)
	// A key per piece and page: on every core, as they are most of the plan.
	p.pages = make([]page, len(sorted), len(sorted)+len(sorted)/4)
	err = forEach(len(sorted), func(i int) error {
		p.keys[i] = sorted[i].Key()
		path := feed.PieceDir(sorted[i].Slug) + "index.html"
		p.pages[i] = page{tmpl: PieceTemplate, path: path, data: pieceData, piece: i, key: hashOf(pieceKey, path, p.keys[i])}
		return nil
	})
	if err != nil {
		return nil, err
	}

	// The lists: the site's, then each topic's.
	siteFrame, err := s.frame(sd, nil, siteFeeds, foot)
	if err != nil {
		return nil, err
	}
	sdKey := jsonKey(sd)
	all := make([]int, len(sorted))
	for i := range all {
		all[i] = i
	}
	front := &pageData{Site: sd, Canonical: sd.Home, Description: s.opts.Description, Archive: sd.ArchiveURL}
	siteFrame.fill(front)
	front.FeedsFoot = "" // the front page lists every feed in its body
	p.addArchive("", ArchiveDir, all, front, siteFrame)
	months := &pageData{
		Site: sd, Title: "Archive", Heading: "Archive", Canonical: sd.ArchiveURL,
		Description: fmt.Sprintf("Every piece from %s, month by month", s.opts.Title),
		Archive:     sd.ArchiveURL, Years: front.Years,
	}
	siteFrame.fill(months)
	front.Years = nil // the front page links to the archive's index instead
	p.addList(IndexTemplate, "index.html", front, all)
	p.addList(MonthsTemplate, ArchiveDir+"index.html", months, nil)

	slugs := map[string]string{} // topic name → slug, worked out once per name
	byTopic := make(map[string][]int, len(topics))
	for i := range sorted {
		seen := ""
		for _, name := range sorted[i].Topics {
			name = strings.TrimSpace(name)
			if name == "" {
				continue
			}
			slug, ok := slugs[name]
			if !ok {
				slug = feed.TopicSlug(name)
				slugs[name] = slug
			}
			if strings.Contains(seen, "\x00"+slug+"\x00") {
				continue
			}
			seen += "\x00" + slug + "\x00"
			byTopic[slug] = append(byTopic[slug], i)
		}
	}
	for i, t := range topics {
		group := &sd.FeedGroups[i+1]
		feeds := append(append([]feedLink{}, group.Links...), siteFeeds...)
		topicFrame, err := s.frame(sd, group, feeds, foot)
		if err != nil {
			return nil, err
		}
		dir := feed.TopicDir(t.Slug)
		home := &pageData{
			Site: sd, Title: t.Name, Canonical: group.Home,
			Description: fmt.Sprintf("Pieces on %s from %s", t.Name, s.opts.Title),
			Archive:     group.Home,
		}
		topicFrame.fill(home)
		on := byTopic[t.Slug]
		p.addArchive(t.Name+": ", dir, on, home, topicFrame)
		p.addList(TopicTemplate, dir+"index.html", home, on)
	}
	// The lists' keys, once their data is complete (an archive links the page
	// that ends it), on every core.
	lists := p.pages[len(sorted):]
	err = forEach(len(lists), func(i int) error {
		pg := &lists[i]
		pg.key = dataKey(pg.tmpl, pg.path, pg.data, sdKey, p.keysOf(pg.pieces))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// addList adds a list page showing the newest PageSize of pieces (indexes in
// sorted, newest first).
func (p *Plan) addList(tmpl, path string, data *pageData, pieces []int) {
	shown := pieces[:min(len(pieces), p.s.opts.PageSize)]
	p.pages = append(p.pages, page{tmpl: tmpl, path: path, data: data, piece: -1, pieces: shown})
}

// addArchive adds the month pages of one archive (the site's when prefix is
// empty, else a topic's) rooted at folder dir, for pieces (newest first), and
// links them in a run from the oldest to end, the page that lists the newest
// pieces (the front page or the topic's page): end.Prev becomes the newest
// archive page and end.Years the archive's months. Each page gets fr.
func (p *Plan) addArchive(prefix, dir string, pieces []int, end *pageData, fr *pageFrame) {
	parts := archiveParts(p.sorted, pieces, p.s.opts.PageSize)
	root := feed.Resolve(p.s.base, dir)
	urls := make([]string, len(parts))
	for i := range parts {
		urls[i] = feed.Resolve(p.s.base, archivePath(dir, &parts[i]))
	}
	for i := range parts {
		part := &parts[i]
		d := &pageData{
			Site: end.Site, Title: prefix + part.title(), Heading: prefix + part.title(), Canonical: urls[i],
			Description: fmt.Sprintf("%sPieces published in %s on %s", prefix, part.month.name(), p.s.opts.Title),
			Archive:     end.Archive,
		}
		fr.fill(d)
		if i > 0 {
			d.Prev = &navLink{URL: urls[i-1], Title: prefix + parts[i-1].title()}
		}
		if i+1 < len(parts) {
			d.Next = &navLink{URL: urls[i+1], Title: prefix + parts[i+1].title()}
		} else {
			d.Next = &navLink{URL: end.Canonical, Title: prefix + "Latest pieces"}
		}
		path := archivePath(dir, part) + "index.html"
		p.pages = append(p.pages, page{tmpl: ArchiveTemplate, path: path, data: d, piece: -1, pieces: part.pieces})
	}
	if n := len(parts); n > 0 {
		end.Prev = &navLink{URL: urls[n-1], Title: prefix + parts[n-1].title()}
	}
	end.Years = yearsOf(parts, root)
}

func (p *Plan) viewsOf(indexes []int) []*pieceView {
	out := make([]*pieceView, len(indexes))
	for k, i := range indexes {
		out[k] = p.views[i]
	}
	return out
}

func (p *Plan) keysOf(indexes []int) []string {
	out := make([]string, len(indexes))
	for k, i := range indexes {
		out[k] = p.keys[i]
	}
	return out
}

// dataKey hashes what a page is made of: its template and path, its data as
// JSON (every field but the site, keyed apart as sdKey, and the pieces, keyed by
// pieceKeys). Two pages with equal keys are the same bytes.
func dataKey(tmpl, path string, d *pageData, sdKey string, pieceKeys []string) string {
	data, err := json.Marshal(d)
	if err != nil {
		// Only unencodable values fail, and pageData has none; a key that
		// never matches makes the page render every time.
		return "unkeyed " + err.Error()
	}
	return hashOf(append([]string{tmpl, path, sdKey, d.frame, string(data)}, pieceKeys...)...)
}

// frameKey keys the fields many pages share, which dataKey leaves to it.
func frameKey(feeds []feedLink, topic *feedGroup) string {
	return jsonKey(struct {
		Feeds []feedLink
		Topic *feedGroup
	}{feeds, topic})
}

func jsonKey(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		return "unkeyed " + err.Error()
	}
	return hashOf(string(data))
}

// hashOf hashes parts; 128 bits are plenty for a key, and the keys of every
// page are kept between builds.
func hashOf(parts ...string) string {
	n := 0
	for _, s := range parts {
		n += len(s) + 12
	}
	// On the stack when it fits: a key is made for every page on every build.
	var stack [2048]byte
	buf := stack[:0]
	if n > len(stack) {
		buf = make([]byte, 0, n)
	}
	for _, s := range parts {
		buf = append(strconv.AppendInt(buf, int64(len(s)), 10), ':')
		buf = append(buf, s...)
	}
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:16])
}

// Render renders the pages of the plan that want chooses, and hands each to
// emit as it is produced, in a buffer it lends (see RenderTo). A template
// failure stops rendering (every page would fail alike); a piece whose links
// cannot be resolved still gets its page and is named in the error.
func (p *Plan) Render(want func(Page) bool, emit func(output.File)) error {
	var pieces, lists []int // indexes in p.pages
	needView := make([]bool, len(p.views))
	needEntry := make([]bool, len(p.views))
	all := p.Pages()
	for i := range p.pages {
		if !want(all[i]) {
			continue
		}
		pg := &p.pages[i]
		if pg.piece >= 0 {
			pieces = append(pieces, i)
			needView[pg.piece] = true
			continue
		}
		lists = append(lists, i)
		for _, i := range pg.pieces {
			needView[i], needEntry[i] = true, true
		}
	}
	var views []int
	for i, need := range needView {
		if need {
			views = append(views, i)
		}
	}
	_ = forEach(len(views), func(k int) error {
		i := views[k]
		v := p.s.pieceView(&p.sorted[i], i)
		p.views[i] = &v
		return nil
	})

	var buffers sync.Pool
	// emit is called from one goroutine at a time, though pages are rendered
	// on several.
	var emitMu sync.Mutex
	exec := func(tmpl, path string, data *pageData) error {
		buf, _ := buffers.Get().(*bytes.Buffer) // nil while the pool is empty
		if buf == nil {
			buf = new(bytes.Buffer)
		}
		buf.Reset()
		// Room for the frame (about 8 KB with the stylesheet) and the content,
		// so that the buffer is not regrown several times per page.
		size := 10 << 10
		if data.Piece != nil {
			size += len(data.Piece.body) + len(data.Piece.Summary)
		}
		buf.Grow(size + len(data.Pieces)*1024)
		if err := p.s.pages[tmpl].ExecuteTemplate(buf, "site-layout", data); err != nil {
			return fmt.Errorf("site: %s: %w", path, err)
		}
		emitMu.Lock()
		defer emitMu.Unlock()
		emit(output.File{Path: path, Data: buf.Bytes(), Release: func() { buffers.Put(buf) }})
		return nil
	}
	entries := p.s.pages[IndexTemplate].Lookup(EntryTemplate)
	entry := func(i int) error {
		if entries == nil || !needEntry[i] {
			return nil
		}
		v := p.views[i]
		var b strings.Builder
		b.Grow(1024)
		if err := entries.Execute(&b, v); err != nil {
			return fmt.Errorf("site: %s for %s: %w", EntryTemplate, v.piece.File, err)
		}
		v.Entry = template.HTML(b.String())
		needEntry[i] = false
		return nil
	}

	// The piece pages first, each with its entry while its view is at hand;
	// the lists then take the entries.
	pieceErr := make([]error, len(pieces))
	err := forEach(len(pieces), func(k int) error {
		pg := &p.pages[pieces[k]]
		v := p.views[pg.piece]
		v.body, pieceErr[k] = resolvedBody(v.piece, v.pageURL)
		defer func() { v.body = "" }()
		page := *pg.data
		page.Title, page.Canonical, page.Description, page.Piece = v.Title, v.Canonical, v.Summary, v
		if err := exec(pg.tmpl, pg.path, &page); err != nil {
			return err
		}
		return entry(pg.piece)
	})
	errs := append([]error{err}, pieceErr...)
	if err != nil {
		return errors.Join(errs...)
	}
	if err := forEach(len(views), func(k int) error { return entry(views[k]) }); err != nil {
		return errors.Join(append(errs, err)...)
	}
	if err := forEach(len(lists), func(k int) error {
		pg := &p.pages[lists[k]]
		data := *pg.data
		data.Pieces = p.viewsOf(pg.pieces)
		return exec(pg.tmpl, pg.path, &data)
	}); err != nil {
		return errors.Join(append(errs, err)...)
	}
	return errors.Join(errs...)
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
