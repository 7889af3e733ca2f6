// Package web is the daemon's HTTP side: it serves the built feeds and archive,
// the double opt-in sign-up, the token pages (confirm, unsubscribe, preferences),
// health and readiness probes and Prometheus metrics.
//
// Pages are html/template, so nothing a visitor sends is echoed unescaped. Token
// links are capabilities: they carry a signed subscriber id, so no session or
// cookie is ever set.
package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"publisher/internal/mail"
	"publisher/internal/store"
	"publisher/internal/subscriber"
	"publisher/internal/token"
	"publisher/internal/valid"
)

// Token purposes, shared with the digest's links.
const (
	PurposeConfirm     = "confirm"
	PurposeUnsubscribe = "unsubscribe"
	PurposePreferences = "preferences"
)

// Mailer sends one message; the confirmation email goes through it.
// TransportMailer adapts a mail.Transport.
type Mailer interface {
	Send(ctx context.Context, m *mail.Message) error
}

// Options configure a Server.
type Options struct {
	// OutputDir is the built output (feeds, archive) served at the root.
	OutputDir string
	// BaseURL is site.base_url, ending in "/"; links in emails are built on it.
	BaseURL   string
	SiteTitle string
	// Templates holds web-*.html.tmpl and confirm.{txt,html}.tmpl (templates.FS).
	Templates fs.FS
	Store     store.Store
	Signer    *token.Signer
	// ConfirmTTL is how long a confirmation link works (tokens.confirm_ttl).
	ConfirmTTL time.Duration
	// RateLimit is the number of POST /subscribe allowed per client address per
	// minute (http.rate_limit); 0 means 5.
	RateLimit int
	Mailer    Mailer
	From      mail.Address
	ReplyTo   mail.Address
	ListID    string
	// Topics lists the topics a reader may choose; nil or empty accepts any
	// well-formed topic name.
	Topics         func() []string
	DefaultCadence string
	Logger         *slog.Logger
	// Metrics receives the run figures; nil makes a fresh set.
	Metrics *Metrics
	// Ready is an optional extra readiness check for /readyz.
	Ready func(ctx context.Context) error
	// OutputPending: the output folder may hold files built for other settings
	// (another base URL, an older binary) until OutputBuilt is called; until then
	// the site answers 503 and /readyz fails, rather than serve pages whose links
	// and forms point elsewhere.
	OutputPending bool
	// AdminSeparate takes /metrics and /readyz off Handler: they are served by
	// AdminHandler on a listener of their own (http.admin_listen).
	AdminSeparate bool
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is believed
	// when finding the client address for the rate limit. Empty: none.
	TrustedProxies []netip.Prefix
	// Webhooks, when set, serves /webhooks/ (Webhooks.Handler).
	Webhooks http.Handler
}

// Cadences a subscriber may choose, in the order the form shows them, worded
// as the archive's sign-up form words them.
var cadenceLabels = func() []struct{ Value, Label string } {
	var out []struct{ Value, Label string }
	for _, c := range subscriber.Cadences() {
		out = append(out, struct{ Value, Label string }{c, subscriber.CadenceLabel(c)})
	}
	return out
}()

// Server answers every HTTP request of the daemon.
type Server struct {
	opts      Options
	logger    *slog.Logger
	metrics   *Metrics
	pages     map[string]*template.Template
	confirm   confirmTemplates
	base      *url.URL
	csrf      *http.CrossOriginProtection
	perClient *keyedLimiter // POST /subscribe per client address
	perEmail  *keyedLimiter // confirmation emails per address
	files     *fileCache
	signups   *signupQueue
	built     atomic.Bool // the output folder holds what this process's settings build
}

var pageNames = []string{"subscribed", "confirmed", "unsubscribe", "unsubscribed", "preferences", "error"}

// New checks opts and parses every template once.
func New(opts Options) (*Server, error) {
	var errs []error
	if opts.OutputDir == "" {
		errs = append(errs, errors.New("web: OutputDir is empty"))
	}
	base, err := url.Parse(opts.BaseURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		errs = append(errs, fmt.Errorf("web: BaseURL %q: want an absolute http(s) URL", opts.BaseURL))
	} else if !strings.HasSuffix(base.Path, "/") {
		base.Path += "/"
	}
	if opts.Templates == nil {
		errs = append(errs, errors.New("web: Templates is nil"))
	}
	if opts.Store == nil {
		errs = append(errs, errors.New("web: Store is nil"))
	}
	if opts.Signer == nil {
		errs = append(errs, errors.New("web: Signer is nil"))
	}
	if opts.Mailer == nil {
		errs = append(errs, errors.New("web: Mailer is nil"))
	}
	if opts.ConfirmTTL <= 0 {
		errs = append(errs, fmt.Errorf("web: ConfirmTTL %s must be positive", opts.ConfirmTTL))
	}
	if opts.RateLimit < 0 {
		errs = append(errs, fmt.Errorf("web: RateLimit %d must not be negative", opts.RateLimit))
	}
	if opts.DefaultCadence == "" {
		opts.DefaultCadence = "daily"
	}
	if !valid.Cadence(opts.DefaultCadence) {
		errs = append(errs, fmt.Errorf("web: DefaultCadence %q: want immediate, daily or weekly", opts.DefaultCadence))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if opts.RateLimit == 0 {
		opts.RateLimit = 5
	}
	if opts.SiteTitle == "" {
		opts.SiteTitle = base.Host
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	metrics := opts.Metrics
	if metrics == nil {
		metrics = NewMetrics()
	}

	s := &Server{
		opts:      opts,
		logger:    logger,
		metrics:   metrics,
		base:      base,
		csrf:      http.NewCrossOriginProtection(),
		perClient: newKeyedLimiter(opts.RateLimit, time.Minute),
		perEmail:  newKeyedLimiter(3, time.Hour),
		files:     newFileCache(),
	}
	s.built.Store(!opts.OutputPending)
	s.opts.BaseURL = base.String()
	// The archive may live on another host name than the one the daemon is
	// reached by (a proxy or CDN in front): its sign-up form is still ours.
	if err := s.csrf.AddTrustedOrigin(base.Scheme + "://" + base.Host); err != nil {
		return nil, fmt.Errorf("web: BaseURL %q as trusted origin: %w", opts.BaseURL, err)
	}
	s.csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.renderError(w, r, http.StatusForbidden, "Request refused",
			"This form was sent from another site. Open the page on our site and submit it there.")
	}))

	if s.pages, err = parsePages(opts.Templates); err != nil {
		return nil, err
	}
	if s.confirm, err = parseConfirmTemplates(opts.Templates); err != nil {
		return nil, err
	}
	s.signups = newSignupQueue(s, signupQueueSize, signupWorkers)
	return s, nil
}

// OutputBuilt says the output folder now holds a build made with this
// process's settings (see Options.OutputPending).
func (s *Server) OutputBuilt() { s.built.Store(true) }

// parsePages parses each page's own file with web-layout.html.tmpl and the
// archive's frame (site-layout.html.tmpl), whose blocks web-layout fills: the
// daemon's pages look like the rest of the site.
func parsePages(fsys fs.FS) (map[string]*template.Template, error) {
	frame, err := fs.ReadFile(fsys, "site-layout.html.tmpl")
	if err != nil {
		return nil, fmt.Errorf("web: template site-layout.html.tmpl: %w", err)
	}
	layout, err := fs.ReadFile(fsys, "web-layout.html.tmpl")
	if err != nil {
		return nil, fmt.Errorf("web: template web-layout.html.tmpl: %w", err)
	}
	pages := map[string]*template.Template{}
	for _, name := range pageNames {
		file := "web-" + name + ".html.tmpl"
		body, err := fs.ReadFile(fsys, file)
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", file, err)
		}
		t, err := template.New(file).Option("missingkey=error").Parse(string(frame))
		if err == nil {
			_, err = t.Parse(string(layout))
		}
		if err == nil {
			_, err = t.Parse(string(body))
		}
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", file, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// executePage renders a page in the archive's frame, which prints the site's
// header as .Header: the archive renders it once for all its pages, a page
// here renders its own.
func executePage(w io.Writer, t *template.Template, data pageData) error {
	if header := t.Lookup("site-header"); header != nil {
		var b strings.Builder
		if err := header.Execute(&b, data); err != nil {
			return err
		}
		data.Header = template.HTML(b.String())
	}
	return t.ExecuteTemplate(w, "site-layout", data)
}

// CheckTemplates parses the daemon's page and confirmation-email templates in
// fsys and executes each against sample data, as `publisher check` does: a
// template that parses but fails when a reader opens the page (an unknown
// field, a wrong function argument) is found before it goes live. Every error
// names the template file and line.
func CheckTemplates(fsys fs.FS) []error {
	pages, err := parsePages(fsys)
	if err != nil {
		return []error{err}
	}
	var errs []error
	page := pageData{
		Site:      frameSite{Title: "Sample desk", Language: "en", Home: "https://desk.example/", ArchiveURL: "https://desk.example/archive/"},
		SiteTitle: "Sample desk", HomeURL: "https://desk.example/", Heading: "Heading", Message: "A message.",
		Problems: []string{"A problem."}, Email: "reader@example.org", Token: "token", ConfirmTTL: "2 days", Saved: true,
		TopicChoices:   []topicChoice{{Name: "energy", Checked: true}, {Name: "security"}},
		CadenceChoices: []cadenceChoice{{Value: "daily", Label: "Once a day", Selected: true}},
	}
	for _, name := range pageNames {
		if err := executePage(io.Discard, pages[name], page); err != nil {
			errs = append(errs, fmt.Errorf("web: %w", err))
		}
	}
	confirm, err := parseConfirmTemplates(fsys)
	if err != nil {
		return append(errs, err)
	}
	data := confirmData{SiteTitle: "Sample desk", HomeURL: "https://desk.example/", Name: "Sample Reader", ConfirmURL: "https://desk.example/confirm?token=t", ConfirmTTL: "2 days"}
	if err := confirm.text.Execute(io.Discard, data); err != nil {
		errs = append(errs, fmt.Errorf("web: %w", err))
	}
	if err := confirm.html.Execute(io.Discard, data); err != nil {
		errs = append(errs, fmt.Errorf("web: %w", err))
	}
	return errs
}

// Metrics returns the metrics the server publishes on /metrics.
func (s *Server) Metrics() *Metrics { return s.metrics }

// Handler returns the public HTTP interface: the site, the subscription
// endpoints, the webhooks and /healthz, and /metrics and /readyz unless
// Options.AdminSeparate.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	if !s.opts.AdminSeparate {
		mux.HandleFunc("GET /readyz", s.readyz)
		mux.Handle("GET /metrics", s.metrics.Handler())
	}
	mux.HandleFunc("POST /subscribe", s.subscribe)
	mux.HandleFunc("GET /confirm", s.confirmGet)
	mux.HandleFunc("GET /unsubscribe", s.unsubscribeGet)
	mux.HandleFunc("POST /unsubscribe", s.unsubscribePost)
	mux.HandleFunc("GET /preferences", s.preferencesGet)
	mux.HandleFunc("POST /preferences", s.preferencesPost)
	if s.opts.Webhooks != nil {
		mux.Handle("/webhooks/", s.opts.Webhooks)
	}
	mux.HandleFunc("/", s.static)
	return securityHeaders(mux)
}

// AdminHandler serves /metrics, /readyz and /healthz, for a listener that only
// the operator's monitoring reaches.
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", s.metrics.Handler())
	return securityHeaders(mux)
}

// HTTPServer returns an http.Server for addr with timeouts suited to the
// internet, serving h; the daemon calls Shutdown on it.
func (s *Server) HTTPServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
}

// Close stops taking sign-ups and waits, until ctx is done, for those queued
// to be recorded and their confirmation emails sent. The store must stay open
// until it returns nil.
func (s *Server) Close(ctx context.Context) error {
	return s.signups.close(ctx)
}

// Content-Security-Policy for the daemon's own pages: no script, no remote
// anything, forms only to ourselves.
const pageCSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// archiveCSP for the built archive: its own styles and images, remote images in
// pieces, no script.
const archiveCSP = "default-src 'self'; script-src 'none'; object-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' https: data:; form-action 'self'; base-uri 'self'; frame-ancestors 'none'"

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "strict-origin-when-cross-origin")
		next.ServeHTTP(w, r)
	})
}

// tokenPageHeaders are for every response to a URL that carries a token: the
// token must not leak through a Referer, a cache or a shared proxy.
func tokenPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", pageCSP)
}

// pageData is what every web-*.html.tmpl page sees.
type pageData struct {
	// Site is what the archive's frame shows of the site.
	Site frameSite
	// Header is the frame's "site-header" for Site (see executePage).
	Header         template.HTML
	SiteTitle      string
	HomeURL        string
	Heading        string
	Message        string
	Problems       []string
	Email          string
	Token          string
	ConfirmTTL     string
	Saved          bool
	TopicChoices   []topicChoice
	CadenceChoices []cadenceChoice
}

type topicChoice struct {
	Name    string
	Checked bool
}

type cadenceChoice struct {
	Value, Label string
	Selected     bool
}

// frameSite is the part of the archive's page data its frame reads.
type frameSite struct {
	Title, Language, Home, Description, ArchiveURL string
}

func (s *Server) newPage() pageData {
	return pageData{
		Site:      frameSite{Title: s.opts.SiteTitle, Language: "en", Home: s.opts.BaseURL, ArchiveURL: s.opts.BaseURL + "archive/"},
		SiteTitle: s.opts.SiteTitle, HomeURL: s.opts.BaseURL, ConfirmTTL: humanDuration(s.opts.ConfirmTTL),
	}
}

// render writes a page; the whole page is built first so a template error
// becomes a clean 500, never half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, data pageData) {
	var buf bytes.Buffer
	if err := executePage(&buf, s.pages[name], data); err != nil {
		s.logger.Error("render page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	if h.Get("Content-Security-Policy") == "" {
		h.Set("Content-Security-Policy", pageCSP)
	}
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-store")
	}
	// With its length known the answer is complete once flushed, whatever the
	// handler does after (the sign-up queues its work then).
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

func (s *Server) renderError(w http.ResponseWriter, r *http.Request, status int, heading, message string, problems ...string) {
	d := s.newPage()
	d.Heading, d.Message, d.Problems = heading, message, problems
	s.render(w, r, status, "error", d)
}

// humanDuration says a TTL the way a reader would: "48 hours", "7 days".
func humanDuration(d time.Duration) string {
	switch {
	case d >= 48*time.Hour && d%(24*time.Hour) == 0:
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	case d >= 2*time.Hour:
		return fmt.Sprintf("%d hours", d/time.Hour)
	case d >= 2*time.Minute:
		return fmt.Sprintf("%d minutes", d/time.Minute)
	}
	return d.String()
}
