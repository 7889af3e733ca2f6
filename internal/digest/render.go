package digest

import (
	"container/list"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	htmltemplate "html/template"
	"io/fs"
	"net/url"
	"slices"
	"strings"
	"sync"
	texttemplate "text/template"
	"unicode"
	"unicode/utf8"

	"github.com/vanng822/go-premailer/premailer"

	"publisher/internal/content"
)

// Template file names, read from the templates folder.
const (
	HTMLTemplate = "digest.html.tmpl"
	TextTemplate = "digest.txt.tmpl"
	Stylesheet   = "digest.css"
)

// DefaultSubject is the subject template used when none is configured.
const DefaultSubject = `{{.Newest.Title}}{{if gt .More 0}} + {{.More}} more{{end}}`

// MaxHTMLBytes is where Gmail clips a message's HTML and hides the rest behind a
// link, unsubscribe footer included.
const MaxHTMLBytes = 102 * 1024

// maxSubjectRunes keeps subjects readable in an inbox list; longer ones are cut at a word.
const maxSubjectRunes = 150

// maxPreheaderRunes is about what inbox previews show.
const maxPreheaderRunes = 140

// cacheEntries bounds the shared-render cache: one entry per distinct piece set,
// and a run rarely has more than a few (one per topic mix and cadence).
const cacheEntries = 128

// personalHeadroom is left under MaxHTMLBytes for the name, address and links
// substituted after the size check.
const personalHeadroom = 2048

// SiteInfo describes the publication sending the digest.
type SiteInfo struct {
	Title       string
	BaseURL     string // absolute http(s) URL of the site's root
	Description string
}

// Links are the subscriber's own links, already carrying their tokens.
type Links struct {
	Unsubscribe string
	Preferences string
}

// Recipient is whom one rendering is for.
type Recipient struct {
	Name  string
	Email string
}

// Rendered is one digest ready to be put into a message.
type Rendered struct {
	// Subject is one line: no CR, LF or other control characters.
	Subject string
	// Preheader is the preview text shown next to the subject in inbox lists.
	Preheader string
	HTML      string
	Text      string
	// HTMLParts and TextParts are HTML and Text cut at the reader's values:
	// shared, value, shared, ..., shared. The shared strings are the same from
	// reader to reader (one digest render serves them all), so the mail
	// package can encode them once (see mail.Message).
	HTMLParts, TextParts []string
	// View is the digest as a page of the site, for "View in browser" (the
	// same for every reader of these pieces: it names nobody); nil without
	// WithViewPages.
	View *ViewPage
}

// ViewPage is a digest as a page of the site: Path, relative to the output
// folder, holds HTML; the emails link to it.
type ViewPage struct {
	Path string
	HTML []byte
}

// ViewDir is the folder of the digests' pages in the output folder.
const ViewDir = "digests/"

// Option changes how a Renderer renders.
type Option func(*Renderer)

// WithFullText puts each piece's whole body in the digest (on by default) as long
// as the HTML stays under the size limit (digest.body: full); off gives each
// piece's title, byline and teaser with a link to read on (digest.body: summary).
func WithFullText(on bool) Option { return func(r *Renderer) { r.fullText = on } }

// WithViewPages gives every digest a page of its own on the site, which the
// emails link to ("View in browser"): Rendered.View.
func WithViewPages(on bool) Option { return func(r *Renderer) { r.viewPages = on } }

// WithMaxHTMLBytes changes the HTML size limit (MaxHTMLBytes by default).
func WithMaxHTMLBytes(n int) Option { return func(r *Renderer) { r.maxHTML = n } }

// Renderer renders digests. It parses its templates once, and inlines CSS once per
// distinct set of pieces: the shared rendering is cached with the personal parts
// (name, address, links) as placeholders, which each Render fills in. It is safe
// for concurrent use.
type Renderer struct {
	site      SiteInfo
	base      *url.URL
	html      *htmltemplate.Template
	text      *texttemplate.Template
	subject   *texttemplate.Template
	css       htmltemplate.CSS
	fullText  bool
	viewPages bool
	maxHTML   int

	// ph are this Renderer's placeholders, all starting with tag; the random part
	// keeps piece text from ever matching one by accident or design.
	tag   string
	ph    [numSlots]string
	cache *renderCache
}

// The personal parts of a digest, filled in after the shared rendering.
const (
	slotName = iota
	slotEmail
	slotUnsubscribe
	slotPreferences
	numSlots
)

// NewRenderer parses digest.html.tmpl, digest.txt.tmpl and digest.css from fsys and
// the subject template. Errors name the template and line.
func NewRenderer(fsys fs.FS, site SiteInfo, subjectTemplate string, opts ...Option) (*Renderer, error) {
	base, err := url.Parse(site.BaseURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("digest: site base URL %q must be an absolute http(s) URL", site.BaseURL)
	}
	if !strings.HasSuffix(base.Path, "/") {
		base.Path += "/" // so piece paths resolve under it, not beside it
	}
	site.BaseURL = base.String()

	r := &Renderer{site: site, base: base, fullText: true, maxHTML: MaxHTMLBytes, cache: newRenderCache(cacheEntries)}
	for _, opt := range opts {
		opt(r)
	}

	funcs := map[string]any{"wrap": wrap, "rule": func() string { return strings.Repeat("-", 72) }, "truncate": truncateRunes}

	src, err := fs.ReadFile(fsys, HTMLTemplate)
	if err != nil {
		return nil, fmt.Errorf("digest: reading template: %w", err)
	}
	if r.html, err = htmltemplate.New(HTMLTemplate).Funcs(funcs).Parse(string(src)); err != nil {
		return nil, fmt.Errorf("digest: %w", err)
	}
	if src, err = fs.ReadFile(fsys, TextTemplate); err != nil {
		return nil, fmt.Errorf("digest: reading template: %w", err)
	}
	if r.text, err = texttemplate.New(TextTemplate).Funcs(funcs).Parse(string(src)); err != nil {
		return nil, fmt.Errorf("digest: %w", err)
	}
	if src, err = fs.ReadFile(fsys, Stylesheet); err != nil {
		return nil, fmt.Errorf("digest: reading stylesheet: %w", err)
	}
	if strings.Contains(strings.ToLower(string(src)), "</style") {
		return nil, fmt.Errorf("digest: %s must not contain </style>", Stylesheet)
	}
	r.css = htmltemplate.CSS(src) // the operator's own file: trusted like the templates

	if subjectTemplate == "" {
		subjectTemplate = DefaultSubject
	}
	if r.subject, err = texttemplate.New("digest.subject").Funcs(funcs).Parse(subjectTemplate); err != nil {
		return nil, fmt.Errorf("digest: subject template: %w", err)
	}

	var nonce [8]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, fmt.Errorf("digest: %w", err)
	}
	// Letters and digits only, so html/template leaves them alone in text and URLs alike.
	r.tag = "Zq" + hex.EncodeToString(nonce[:])
	r.ph = [numSlots]string{r.tag + "NAMEqZ", r.tag + "EMAILqZ", r.tag + "UNSUBqZ", r.tag + "PREFSqZ"}
	return r, nil
}

// Render renders the digest of pieces for one recipient. The pieces are shown
// newest first whatever their order here.
func (r *Renderer) Render(rcpt Recipient, pieces []content.Piece, links Links) (Rendered, error) {
	if len(pieces) == 0 {
		return Rendered{}, errors.New("digest: nothing to render: no pieces")
	}
	for _, l := range []struct{ name, value string }{{"unsubscribe", links.Unsubscribe}, {"preferences", links.Preferences}} {
		u, err := url.Parse(l.value)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return Rendered{}, fmt.Errorf("digest: %s link %q must be an absolute http(s) URL", l.name, l.value)
		}
	}
	sorted := slices.Clone(pieces)
	SortNewestFirst(sorted)
	name, email := oneLine(rcpt.Name), oneLine(rcpt.Email)
	hasName := name != ""

	shared, err := r.cache.get(cacheKey(sorted, hasName), func() (sharedRender, error) {
		return r.renderShared(sorted, hasName)
	})
	if err != nil {
		return Rendered{}, err
	}
	raw := [numSlots]string{slotName: name, slotEmail: email, slotUnsubscribe: links.Unsubscribe, slotPreferences: links.Preferences}
	var escaped [numSlots]string
	for i, v := range raw {
		escaped[i] = html.EscapeString(v)
	}
	return Rendered{
		Subject:   shared.subject,
		Preheader: shared.preheader,
		HTML:      shared.html.fill(escaped),
		Text:      shared.text.fill(raw),
		HTMLParts: shared.html.cut(escaped),
		TextParts: shared.text.cut(raw),
		View:      shared.view,
	}, nil
}

// sharedRender is everything in a digest but the personal parts.
type sharedRender struct {
	subject, preheader string
	html, text         splitText
	view               *ViewPage
}

// splitText is a rendering cut at its placeholders: parts[0], the value of slot
// slots[0], parts[1], and so on, ending with the last part.
type splitText struct {
	parts []string
	slots []int
	size  int // bytes in parts
}

// split cuts s at every placeholder of r.
func (r *Renderer) split(s string) splitText {
	var st splitText
	start := 0
	for from := 0; ; {
		i := strings.Index(s[from:], r.tag)
		if i < 0 {
			break
		}
		i += from
		slot := -1
		for k, p := range r.ph {
			if strings.HasPrefix(s[i:], p) {
				slot = k
				break
			}
		}
		if slot < 0 {
			from = i + len(r.tag)
			continue
		}
		st.parts = append(st.parts, s[start:i])
		st.slots = append(st.slots, slot)
		start = i + len(r.ph[slot])
		from = start
	}
	st.parts = append(st.parts, s[start:])
	for _, p := range st.parts {
		st.size += len(p)
	}
	return st
}

// fill joins the parts with values in their slots, in one allocation.
func (st splitText) fill(values [numSlots]string) string {
	n := st.size
	for _, k := range st.slots {
		n += len(values[k])
	}
	var b strings.Builder
	b.Grow(n)
	for i, k := range st.slots {
		b.WriteString(st.parts[i])
		b.WriteString(values[k])
	}
	b.WriteString(st.parts[len(st.parts)-1])
	return b.String()
}

// cut returns the parts and values in order, as fill joins them.
func (st splitText) cut(values [numSlots]string) []string {
	out := make([]string, 0, 2*len(st.slots)+1)
	for i, k := range st.slots {
		out = append(out, st.parts[i], values[k])
	}
	return append(out, st.parts[len(st.parts)-1])
}

// item is one piece as the templates see it.
type item struct {
	Title    string
	URL      string
	Authors  []content.Author
	Byline   string // "Ana Petrova (analyst), Li Wen"
	DateText string // "2 March 2026"
	DateISO  string // "2026-03-02"
	Source   content.Source
	// Summary is the piece's teaser: its summary, or its lede cut near 300
	// characters (empty next to the full text when it is the lede).
	Summary string
	// Body and BodyText are the whole piece, set only when full text is shown;
	// without them the item ends with a link to read on.
	Body     htmltemplate.HTML
	BodyText string

	fullBody      htmltemplate.HTML
	fullText      string
	summaryIsLede bool
}

// pageData is what digest.html.tmpl and digest.txt.tmpl are executed with.
type pageData struct {
	Site      SiteInfo
	Subject   string
	Preheader string
	Recipient Recipient
	Links     Links
	Items     []item
	// Count is how many pieces the digest announces; Omitted of them did not fit
	// and are only counted, with a link to the site.
	Count   int
	Omitted int
	CSS     htmltemplate.CSS
	// ViewURL is the digest's page on the site ("View in browser"), in the
	// emails; empty on that page itself.
	ViewURL string
	// Web is set when rendering that page: nothing personal, no preheader.
	Web bool
}

// subjectData is what the subject template is executed with.
type subjectData struct {
	Site   SiteInfo
	Newest content.Piece
	Pieces []content.Piece
	Count  int
	More   int // Count - 1
}

func (r *Renderer) renderShared(pieces []content.Piece, hasName bool) (out sharedRender, err error) {
	defer func() {
		// A template or the CSS inliner must not take the whole run down.
		if p := recover(); p != nil {
			err = fmt.Errorf("digest: rendering panicked: %v", p)
		}
	}()
	var subj strings.Builder
	if err := r.subject.Execute(&subj, subjectData{Site: r.site, Newest: pieces[0], Pieces: pieces, Count: len(pieces), More: len(pieces) - 1}); err != nil {
		return out, fmt.Errorf("digest: subject template: %w", err)
	}
	out.subject = truncateRunes(maxSubjectRunes, oneLine(subj.String()))
	if out.subject == "" {
		out.subject = truncateRunes(maxSubjectRunes, oneLine(r.site.Title))
	}
	out.preheader = preheader(pieces)

	items := make([]item, len(pieces))
	for i := range pieces {
		items[i] = r.item(&pieces[i])
	}
	data := pageData{
		Site: r.site, Subject: out.subject, Preheader: out.preheader,
		Links: Links{Unsubscribe: r.ph[slotUnsubscribe], Preferences: r.ph[slotPreferences]},
		Count: len(pieces), CSS: r.css,
	}
	data.Recipient.Email = r.ph[slotEmail]
	if hasName {
		data.Recipient.Name = r.ph[slotName]
	}
	var viewPath string
	if r.viewPages {
		key := viewKey(pieces, r.fullText)
		viewPath = ViewDir + key + "/index.html"
		data.ViewURL = r.base.JoinPath(strings.TrimSuffix(ViewDir, "/"), key).String() + "/"
	}

	// Full text if asked for and it fits, else summaries, else as many
	// summaries as fit.
	full := r.fullText
	shown := len(items)
	var page string
	budget := r.maxHTML - personalHeadroom
	for {
		data.Items = make([]item, shown)
		for i := range shown {
			data.Items[i] = items[i]
			if full && items[i].fullBody != "" {
				data.Items[i].Body, data.Items[i].BodyText = items[i].fullBody, items[i].fullText
				if items[i].summaryIsLede {
					data.Items[i].Summary = ""
				}
			}
		}
		data.Omitted = len(items) - shown
		if page, err = r.renderHTML(&data); err != nil {
			return out, err
		}
		if len(page) <= budget || (!full && shown == 1) {
			break
		}
		if full {
			full = false
			continue
		}
		next := shown * budget / len(page)
		shown = max(1, min(next, shown-1))
	}

	var text strings.Builder
	if err := r.text.Execute(&text, &data); err != nil {
		return out, fmt.Errorf("digest: %w", err)
	}
	out.html, out.text = r.split(page), r.split(text.String())
	if viewPath != "" {
		// The page shows what the emails show, less what is the reader's own;
		// a browser takes the stylesheet as it is, so it is not inlined.
		web := data
		web.Web, web.ViewURL, web.Recipient, web.Links = true, "", Recipient{}, Links{}
		var b strings.Builder
		if err := r.html.Execute(&b, &web); err != nil {
			return out, fmt.Errorf("digest: the page in the browser: %w", err)
		}
		out.view = &ViewPage{Path: viewPath, HTML: []byte(b.String())}
	}
	return out, nil
}

// viewKey names the page of a digest of pieces: the same pieces, in the same
// versions, have the same page, whoever they were sent to.
func viewKey(pieces []content.Piece, fullText bool) string {
	h := sha256.New()
	fmt.Fprintf(h, "full text %v\n", fullText)
	for i := range pieces {
		p := &pieces[i]
		fmt.Fprintf(h, "%q %q %q %d\n", p.ID, p.Hash, p.Key(), p.FirstSeen.UnixMicro())
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

func (r *Renderer) renderHTML(data *pageData) (string, error) {
	var b strings.Builder
	if err := r.html.Execute(&b, data); err != nil {
		return "", fmt.Errorf("digest: %w", err)
	}
	pm, err := premailer.NewPremailerFromString(b.String(), premailer.NewOptions())
	if err != nil {
		return "", fmt.Errorf("digest: inlining CSS: %w", err)
	}
	inlined, err := pm.Transform()
	if err != nil {
		return "", fmt.Errorf("digest: inlining CSS: %w", err)
	}
	return inlined, nil
}

func (r *Renderer) item(p *content.Piece) item {
	it := item{
		Title:   oneLine(p.Title),
		URL:     r.pieceURL(p),
		Authors: p.Authors,
		Byline:  content.Byline(p.Authors, true),
		Source:  p.Source,
		Summary: content.Teaser(p),
	}
	if it.Title == "" {
		it.Title = "(untitled)"
	}
	if d := p.Published(); !d.IsZero() {
		it.DateText = d.Format("2 January 2006")
		it.DateISO = d.Format("2006-01-02")
	}
	if r.fullText {
		if u, err := url.Parse(it.URL); err == nil {
			// A body that cannot be read or whose links cannot be resolved is
			// left out: the summary and the link to the piece still carry the news.
			if body, err := content.PieceHTML(p, u); err == nil && body != "" {
				it.fullBody = htmltemplate.HTML(body) // sanitised by the content package
				it.fullText = p.Text
				if it.fullText == "" {
					it.fullText = content.HTMLToText(body)
				}
				it.fullText = strings.TrimSpace(it.fullText)
			}
		}
	}
	// Without an editor's summary the lede stands in, except next to the full
	// text, which starts with it.
	it.summaryIsLede = strings.TrimSpace(p.Summary) == "" && it.Summary != ""
	return it
}

// pieceURL is the piece's canonical URL when it has a usable one, else its page in the archive.
func (r *Renderer) pieceURL(p *content.Piece) string {
	if u, err := url.Parse(p.CanonicalURL); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
		return u.String()
	}
	slug := p.Slug
	if slug == "" {
		slug = p.ID
	}
	return r.base.JoinPath("pieces", slug).String() + "/"
}

func preheader(pieces []content.Piece) string {
	if len(pieces) == 1 {
		p := pieces[0]
		text := content.Teaser(&p)
		if strings.TrimSpace(text) == "" {
			text = p.Title
		}
		return truncateRunes(maxPreheaderRunes, oneLine(text))
	}
	titles := make([]string, len(pieces))
	for i := range pieces {
		titles[i] = oneLine(pieces[i].Title)
	}
	return truncateRunes(maxPreheaderRunes, strings.Join(titles, " · "))
}

// cacheKey identifies a shared rendering: the pieces (by content) and whether the
// template's greeting has a name in it.
func cacheKey(pieces []content.Piece, hasName bool) string {
	h := sha256.New()
	if hasName {
		h.Write([]byte{1})
	} else {
		h.Write([]byte{0})
	}
	field := func(s string) {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	for i := range pieces {
		p := &pieces[i]
		field(p.ID)
		if p.Hash != "" {
			field(p.Hash) // the content package's digest of the source covers the rest
			field(p.FirstSeen.String())
			continue
		}
		field(p.Title)
		field(p.Summary)
		field(p.Lede)
		field(p.HTML)
		field(p.Text)
		field(p.CanonicalURL)
		field(p.Slug)
		field(p.Source.Name + "\x00" + p.Source.URL)
		field(p.Published().String())
		for _, a := range p.Authors {
			field(a.Name + "\x00" + a.Role)
		}
	}
	return string(h.Sum(nil))
}

// oneLine makes s safe for one line of a header or a heading: control characters
// (CR and LF among them) and line separators become spaces, runs of spaces one.
func oneLine(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
	}), " ")
}

// truncateRunes cuts s to at most n runes, at a space when one is near, and marks the cut.
func truncateRunes(n int, s string) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	runes := []rune(s)[:n-1]
	cut := len(runes)
	for i := len(runes) - 1; i >= len(runes)/2; i-- {
		if runes[i] == ' ' {
			cut = i
			break
		}
	}
	return strings.TrimRight(string(runes[:cut]), " ") + "…"
}

// wrap breaks each line of s at spaces so no line is longer than width runes
// (a single longer word, such as a URL, gets a line to itself). Lines laid out
// already are left as they are: a table's rows and rules, a quotation's
// lines, a heading's underline (as a piece's plain text has them).
func wrap(width int, s string) string {
	var out strings.Builder
	for i, line := range strings.Split(strings.TrimSpace(s), "\n") {
		if i > 0 {
			out.WriteByte('\n')
		}
		if laidOut(line) {
			out.WriteString(line)
			continue
		}
		col := 0
		for _, word := range strings.Fields(line) {
			wl := utf8.RuneCountInString(word)
			switch {
			case col == 0:
			case col+1+wl > width:
				out.WriteByte('\n')
				col = 0
			default:
				out.WriteByte(' ')
				col++
			}
			out.WriteString(word)
			col += wl
		}
	}
	return out.String()
}

// laidOut reports whether a line of plain text keeps its own layout.
func laidOut(line string) bool {
	t := strings.TrimSpace(line)
	switch {
	case t == "":
		return false
	case strings.HasPrefix(t, "|"), strings.HasPrefix(t, "+-"), strings.HasPrefix(t, ">"):
		return true
	}
	return strings.Trim(t, "-*=") == ""
}

// renderCache keeps the most recently used shared renderings. A key being built
// is shared too: concurrent Renders of the same piece set wait for one build
// instead of each running the CSS inliner.
type renderCache struct {
	mu      sync.Mutex
	max     int
	entries map[string]*cacheEntry
	order   *list.List // front is most recently used
	builds  int        // how many shared renderings were built, for tests
}

type cacheEntry struct {
	key   string
	elem  *list.Element
	ready chan struct{}
	val   sharedRender
	err   error
}

func newRenderCache(n int) *renderCache {
	return &renderCache{max: n, entries: make(map[string]*cacheEntry), order: list.New()}
}

func (c *renderCache) get(key string, build func() (sharedRender, error)) (sharedRender, error) {
	c.mu.Lock()
	if e, ok := c.entries[key]; ok {
		c.order.MoveToFront(e.elem)
		c.mu.Unlock()
		<-e.ready
		return e.val, e.err
	}
	e := &cacheEntry{key: key, ready: make(chan struct{})}
	e.elem = c.order.PushFront(e)
	c.entries[key] = e
	for c.order.Len() > c.max {
		oldest := c.order.Remove(c.order.Back()).(*cacheEntry)
		delete(c.entries, oldest.key)
	}
	c.builds++
	c.mu.Unlock()

	func() {
		defer close(e.ready)
		e.val, e.err = build()
	}()
	if e.err != nil { // do not keep failures: the next call tries again
		c.mu.Lock()
		if c.entries[key] == e {
			c.order.Remove(e.elem)
			delete(c.entries, key)
		}
		c.mu.Unlock()
	}
	return e.val, e.err
}
