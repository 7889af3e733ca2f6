// Package config reads publisher.yaml and the PUBLISHER_* environment variables into
// one validated Config. Every key has a dotted path (site.base_url); its environment
// name is PUBLISHER_ plus the path in upper snake case (PUBLISHER_SITE_BASE_URL), and
// the environment wins over the file. Unknown keys and bad values are errors that
// name the key (and the file line, when it came from the file).
package config

import (
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"publisher/internal/mail"
	"publisher/internal/subscriber"
)

// Config is the whole configuration. The yaml tags are the key names; `doc` tags feed
// the reference printed by `publisher config` and kept in the README.
type Config struct {
	Site        Site          `yaml:"site"`
	Content     Content       `yaml:"content"`
	Output      Output        `yaml:"output"`
	Data        Data          `yaml:"data"`
	Templates   Templates     `yaml:"templates"`
	Feed        Feed          `yaml:"feed"`
	Subscribers Subscribers   `yaml:"subscribers"`
	Digest      Digest        `yaml:"digest"`
	Mail        Mail          `yaml:"mail"`
	Secret      string        `yaml:"secret" doc:"key for signing confirm, unsubscribe and preference links (HMAC-SHA256); required unless mail.transport is file"`
	Schedule    string        `yaml:"schedule" doc:"cron spec for publisher daemon: 5 fields, @daily, @every 15m, optional CRON_TZ=Area/City prefix"`
	RunAtStart  bool          `yaml:"run_at_start" doc:"daemon: run a cycle at once on start"`
	Grace       time.Duration `yaml:"shutdown_grace" doc:"on SIGTERM, how long to wait for the messages on the wire to finish; the rest stays pending"`
	HTTP        HTTP          `yaml:"http"`
	Tokens      Tokens        `yaml:"tokens"`
	Store       Store         `yaml:"store"`
}

type Site struct {
	Title       string `yaml:"title" doc:"the publication's name, in feeds, pages and emails"`
	BaseURL     string `yaml:"base_url" doc:"absolute URL the output is served from; every link is built on it"`
	Language    string `yaml:"language" doc:"BCP 47 language tag of the content"`
	Description string `yaml:"description" doc:"one line about the publication"`
	PageSize    int    `yaml:"page_size" doc:"pieces on the front page, on each topic page and on each page of the archive (month by month)"`
}

type Content struct {
	Dir      string `yaml:"dir" doc:"folder of pieces (.md, .txt, with .yaml sidecars); subfolders allowed"`
	MaxBytes int64  `yaml:"max_bytes" doc:"largest piece file accepted, in bytes"`
	// Images and documents a piece links to are published beside its page.
	MaxAssetBytes int64 `yaml:"max_asset_bytes" doc:"largest image or document beside a piece that is published with it, in bytes"`
}

type Output struct {
	Dir string `yaml:"dir" doc:"where feeds and the archive are written"`
}

type Data struct {
	Dir string `yaml:"dir" doc:"where the SQLite database lives"`
}

type Templates struct {
	Dir string `yaml:"dir" doc:"optional folder whose templates override the built-in ones by name"`
}

type Feed struct {
	Items      int      `yaml:"items" doc:"items per feed"`
	WebSubHubs []string `yaml:"websub_hubs" doc:"WebSub hubs to ping for every feed that changed (comma-separated in the environment)"`
	// Entry ids are made on the base URL of the first build (kept in the
	// store), so that they survive a move; this names their host outright.
	IDAuthority string `yaml:"id_authority" doc:"host name in feed entry ids (tag: URIs, RSS guids); default: the host of the first site.base_url the store recorded, so ids survive a move"`
	OPMLFormat  string `yaml:"opml_format" doc:"the one format feeds.opml lists for each feed: rss, atom or json"`
}

type Subscribers struct {
	Dir string `yaml:"dir" doc:"folder of subscriber list CSV files"`
}

type Digest struct {
	DefaultCadence string        `yaml:"default_cadence" doc:"cadence for rows that give none: immediate, daily or weekly"`
	Lookback       time.Duration `yaml:"lookback" doc:"a new subscriber's first digest reaches back this far before they joined (e.g. 7d, 36h)"`
	SendAt         string        `yaml:"send_at" doc:"HH:MM at which daily and weekly digests become due"`
	SendDay        string        `yaml:"send_day" doc:"weekday on which weekly digests become due"`
	Timezone       string        `yaml:"timezone" doc:"IANA zone for send_at and send_day"`
	Subject        string        `yaml:"subject" doc:"Go text/template for the subject; fields .Newest (a piece), .More (count), .Count, .Site"`
	Body           string        `yaml:"body" doc:"summary (title, byline, summary or lede, a link to the piece) or full (each piece's whole text, as long as the email stays under 102 KB)"`
}

type Mail struct {
	Transport   string        `yaml:"transport" doc:"file (write .eml files to outbox_dir) or smtp"`
	OutboxDir   string        `yaml:"outbox_dir" doc:"where the file transport writes messages"`
	From        string        `yaml:"from" doc:"From address with display name, e.g. \"Desk <digest@example.org>\""`
	ReplyTo     string        `yaml:"reply_to" doc:"Reply-To address (optional)"`
	ListID      string        `yaml:"list_id" doc:"List-Id header, e.g. \"Desk digest <digest.example.org>\" (default from site.title and the From domain)"`
	Unsubscribe string        `yaml:"unsubscribe_mailto" doc:"mailto address for List-Unsubscribe (default: the From address)"`
	BounceLimit int           `yaml:"bounce_limit" doc:"hard failures after which an address is suppressed"`
	MaxAttempts int           `yaml:"max_attempts" doc:"attempts per delivery before it is given up"`
	RetryBase   time.Duration `yaml:"retry_base" doc:"first retry delay; doubles each attempt"`
	SMTP        SMTP          `yaml:"smtp"`
	DKIM        DKIM          `yaml:"dkim"`
}

type SMTP struct {
	Host           string        `yaml:"host" doc:"SMTP server host"`
	Port           int           `yaml:"port" doc:"SMTP server port"`
	Username       string        `yaml:"username" doc:"SMTP AUTH user (optional)"`
	Password       string        `yaml:"password" doc:"SMTP AUTH password; set it in the environment, not the file"`
	TLS            string        `yaml:"tls" doc:"starttls (mandatory), tls (implicit), or none (loopback hosts only)"`
	HELO           string        `yaml:"helo" doc:"name sent in HELO/EHLO (default: the From domain)"`
	Connections    int           `yaml:"connections" doc:"parallel SMTP connections, each reused for many messages"`
	Rate           float64       `yaml:"rate" doc:"messages per second across all connections; 0 = unlimited"`
	ConnectTimeout time.Duration `yaml:"connect_timeout" doc:"dial and greeting timeout"`
	SendTimeout    time.Duration `yaml:"send_timeout" doc:"timeout for one message's transaction"`
}

type DKIM struct {
	Domain   string `yaml:"domain" doc:"DKIM signing domain (d=); empty disables signing"`
	Selector string `yaml:"selector" doc:"DKIM selector (s=)"`
	KeyFile  string `yaml:"key_file" doc:"PEM private key (RSA or Ed25519)"`
}

type HTTP struct {
	Listen    string `yaml:"listen" doc:"address the daemon serves on, e.g. 127.0.0.1:8080; empty disables HTTP"`
	RateLimit int    `yaml:"rate_limit" doc:"sign-ups accepted per client address per minute"`
	// Behind a reverse proxy every request comes from the proxy; its X-Forwarded-For
	// is believed only when it is listed here.
	TrustedProxies []string `yaml:"trusted_proxies" doc:"CIDRs of reverse proxies whose X-Forwarded-For names the client (comma-separated in the environment)"`
}

type Tokens struct {
	ConfirmTTL time.Duration `yaml:"confirm_ttl" doc:"how long a confirmation link stays valid"`
}

type Store struct {
	Driver string `yaml:"driver" doc:"sqlite (the only engine so far)"`
}

// Defaults returns the configuration used for every key the file and environment leave unset.
func Defaults() Config {
	return Config{
		Site:        Site{Title: "Publisher", BaseURL: "http://localhost:8080/", Language: "en", PageSize: 20},
		Content:     Content{Dir: "content", MaxBytes: 2 << 20, MaxAssetBytes: 20 << 20},
		Output:      Output{Dir: "public"},
		Data:        Data{Dir: "data"},
		Feed:        Feed{Items: 50, OPMLFormat: "rss"},
		Subscribers: Subscribers{Dir: "subscribers"},
		Digest: Digest{
			DefaultCadence: "daily",
			Lookback:       7 * 24 * time.Hour,
			SendAt:         "07:00",
			SendDay:        "monday",
			Timezone:       "UTC",
			Subject:        `{{.Newest.Title}}{{if gt .More 0}} + {{.More}} more{{end}}`,
			Body:           "summary",
		},
		Mail: Mail{
			Transport:   "file",
			OutboxDir:   "data/outbox",
			From:        "Publisher <digest@localhost>",
			BounceLimit: 3,
			MaxAttempts: 8,
			RetryBase:   time.Second,
			SMTP: SMTP{
				Port:           587,
				TLS:            "starttls",
				Connections:    4,
				ConnectTimeout: 15 * time.Second,
				SendTimeout:    60 * time.Second,
			},
		},
		Schedule: "@hourly",
		Grace:    30 * time.Second,
		HTTP:     HTTP{Listen: "127.0.0.1:8080", RateLimit: 5},
		Tokens:   Tokens{ConfirmTTL: 48 * time.Hour},
		Store:    Store{Driver: "sqlite"},
	}
}

// SampleSecret is the secret in the repository's publisher.yaml. It is fine for the
// file outbox, and refused for real sending.
const SampleSecret = "sample-secret-change-me"

// EnvPrefix starts every environment variable publisher reads.
const EnvPrefix = "PUBLISHER_"

// Error is one problem with one key.
type Error struct {
	Key    string
	Source string // "file:line" or the environment variable's name
	Msg    string
}

func (e *Error) Error() string {
	if e.Source != "" {
		return fmt.Sprintf("%s: %s: %s", e.Source, e.Key, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Key, e.Msg)
}

// Errors is every problem found, so an operator fixes them all in one go.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Load reads path (which may be missing only when mustExist is false), applies the
// environment (environ as from os.Environ), fills defaults and validates. Relative
// folders are kept relative to the working directory, as an operator typing them expects.
func Load(path string, mustExist bool, environ []string) (*Config, error) {
	cfg := Defaults()
	var errs Errors
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		errs = append(errs, decodeFile(path, data, &cfg)...)
	case errors.Is(err, os.ErrNotExist) && !mustExist:
	default:
		return nil, fmt.Errorf("config: %w", err)
	}
	errs = append(errs, applyEnv(environ, &cfg)...)
	if len(errs) == 0 {
		errs = append(errs, cfg.validate()...)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return &cfg, nil
}

// leaf is one settable key.
type leaf struct {
	path  string
	field reflect.Value
	doc   string
}

// leaves lists every key of cfg with its dotted path, in declaration order.
func leaves(v reflect.Value, prefix string) []leaf {
	var out []leaf
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := strings.Split(f.Tag.Get("yaml"), ",")[0]
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		fv := v.Field(i)
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Time{}) {
			out = append(out, leaves(fv, path)...)
			continue
		}
		out = append(out, leaf{path: path, field: fv, doc: f.Tag.Get("doc")})
	}
	return out
}

// EnvName is the environment variable that overrides key.
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// Key describes one configuration key for the reference documentation.
type Key struct {
	Path, Env, Default, Doc string
}

// Keys lists every key with its environment name, default and description.
func Keys() []Key {
	d := Defaults()
	var out []Key
	for _, l := range leaves(reflect.ValueOf(&d).Elem(), "") {
		out = append(out, Key{Path: l.path, Env: EnvName(l.path), Default: format(l.field), Doc: l.doc})
	}
	return out
}

func format(v reflect.Value) string {
	switch x := v.Interface().(type) {
	case time.Duration:
		return formatDuration(x)
	case []string:
		return strings.Join(x, ",")
	default:
		return fmt.Sprint(x)
	}
}

func formatDuration(d time.Duration) string {
	if d != 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

func decodeFile(path string, data []byte, cfg *Config) Errors {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return Errors{{Key: "(file)", Source: path, Msg: err.Error()}}
	}
	if len(root.Content) == 0 {
		return nil // an empty file sets nothing
	}
	var errs Errors
	walkNode(path, root.Content[0], reflect.ValueOf(cfg).Elem(), "", &errs)
	return errs
}

func walkNode(file string, n *yaml.Node, v reflect.Value, prefix string, errs *Errors) {
	at := func(n *yaml.Node) string { return fmt.Sprintf("%s:%d", file, n.Line) }
	keyName := prefix
	if keyName == "" {
		keyName = "(top level)"
	}
	if n.Kind != yaml.MappingNode {
		*errs = append(*errs, &Error{Key: keyName, Source: at(n), Msg: "expected a mapping of keys"})
		return
	}
	fields := map[string]reflect.Value{}
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		fields[strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]] = v.Field(i)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		path := k.Value
		if prefix != "" {
			path = prefix + "." + k.Value
		}
		fv, ok := fields[k.Value]
		if !ok {
			*errs = append(*errs, &Error{Key: path, Source: at(k), Msg: "unknown key"})
			continue
		}
		if seen[k.Value] {
			*errs = append(*errs, &Error{Key: path, Source: at(k), Msg: "given twice"})
		}
		seen[k.Value] = true
		if fv.Kind() == reflect.Struct {
			if val.Kind == yaml.ScalarNode && val.Tag == "!!null" {
				continue
			}
			walkNode(file, val, fv, path, errs)
			continue
		}
		if fv.Kind() == reflect.Slice {
			var items []string
			switch val.Kind {
			case yaml.SequenceNode:
				for _, it := range val.Content {
					if it.Kind != yaml.ScalarNode {
						*errs = append(*errs, &Error{Key: path, Source: at(it), Msg: "expected a list of strings"})
						continue
					}
					items = append(items, it.Value)
				}
			case yaml.ScalarNode:
				if val.Tag != "!!null" {
					items = splitList(val.Value)
				}
			default:
				*errs = append(*errs, &Error{Key: path, Source: at(val), Msg: "expected a list of strings"})
				continue
			}
			fv.Set(reflect.ValueOf(items))
			continue
		}
		if val.Kind != yaml.ScalarNode {
			*errs = append(*errs, &Error{Key: path, Source: at(val), Msg: "expected a single value"})
			continue
		}
		if val.Tag == "!!null" {
			continue
		}
		if err := setScalar(fv, val.Value); err != nil {
			*errs = append(*errs, &Error{Key: path, Source: at(val), Msg: err.Error()})
		}
	}
}

func applyEnv(environ []string, cfg *Config) Errors {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, EnvPrefix) {
			env[k] = v
		}
	}
	var errs Errors
	known := map[string]bool{}
	for _, l := range leaves(reflect.ValueOf(cfg).Elem(), "") {
		name := EnvName(l.path)
		known[name] = true
		val, ok := env[name]
		if !ok {
			continue
		}
		if l.field.Kind() == reflect.Slice {
			l.field.Set(reflect.ValueOf(splitList(val)))
			continue
		}
		if err := setScalar(l.field, val); err != nil {
			errs = append(errs, &Error{Key: l.path, Source: name, Msg: err.Error()})
		}
	}
	for name := range env {
		// PUBLISHER_CONFIG names the file itself; anything else unknown is a typo.
		if !known[name] && name != EnvPrefix+"CONFIG" {
			errs = append(errs, &Error{Key: name, Msg: "unknown environment variable (no such configuration key)"})
		}
	}
	return errs
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func setScalar(v reflect.Value, s string) error {
	if v.Type() == reflect.TypeOf(time.Duration(0)) {
		d, err := ParseDuration(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return fmt.Errorf("not a whole number: %q", s)
		}
		v.SetInt(n)
	case reflect.Float64:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return fmt.Errorf("not a number: %q", s)
		}
		v.SetFloat(f)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("not true or false: %q", s)
		}
		v.SetBool(b)
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

// ParseDuration is time.ParseDuration plus a "d" unit for whole days ("7d").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("not a duration: %q (use e.g. 7d, 36h, 90m)", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("not a duration: %q (use e.g. 7d, 36h, 90m)", s)
	}
	return d, nil
}

func (c *Config) validate() Errors {
	var errs Errors
	bad := func(key, format string, args ...any) {
		errs = append(errs, &Error{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	if strings.TrimSpace(c.Site.Title) == "" {
		bad("site.title", "must not be empty")
	}
	if u, err := url.Parse(c.Site.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("site.base_url", "must be an absolute http(s) URL, got %q", c.Site.BaseURL)
	} else if !strings.HasSuffix(c.Site.BaseURL, "/") {
		c.Site.BaseURL += "/"
	}
	if c.Site.Language == "" || strings.ContainsAny(c.Site.Language, " \r\n") {
		bad("site.language", "must be a language tag such as en or en-GB, got %q", c.Site.Language)
	}
	for key, dir := range map[string]string{"content.dir": c.Content.Dir, "output.dir": c.Output.Dir, "data.dir": c.Data.Dir, "subscribers.dir": c.Subscribers.Dir} {
		if strings.TrimSpace(dir) == "" {
			bad(key, "must not be empty")
		}
	}
	if c.Site.PageSize < 1 || c.Site.PageSize > 500 {
		bad("site.page_size", "must be 1-500, got %d", c.Site.PageSize)
	}
	if c.Content.MaxBytes <= 0 {
		bad("content.max_bytes", "must be positive")
	}
	if c.Content.MaxAssetBytes <= 0 {
		bad("content.max_asset_bytes", "must be positive")
	}
	if c.Feed.Items <= 0 {
		bad("feed.items", "must be positive, got %d", c.Feed.Items)
	}
	if a := c.Feed.IDAuthority; a != "" {
		if u, err := url.Parse("https://" + a + "/"); err != nil || u.Host != a || u.Port() != "" || strings.ContainsAny(a, "@/ ") {
			bad("feed.id_authority", "must be a host name such as desk.example.org, got %q", a)
		}
	}
	switch c.Feed.OPMLFormat {
	case "rss", "atom", "json":
	default:
		bad("feed.opml_format", "must be rss, atom or json, got %q", c.Feed.OPMLFormat)
	}
	for _, h := range c.Feed.WebSubHubs {
		if u, err := url.Parse(h); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("feed.websub_hubs", "not an absolute http(s) URL: %q", h)
		}
	}
	if !subscriber.ValidCadence(c.Digest.DefaultCadence) {
		bad("digest.default_cadence", "must be immediate, daily or weekly, got %q", c.Digest.DefaultCadence)
	}
	if _, _, err := c.Digest.SendAtClock(); err != nil {
		bad("digest.send_at", "%v", err)
	}
	if _, err := c.Digest.Weekday(); err != nil {
		bad("digest.send_day", "%v", err)
	}
	if _, err := time.LoadLocation(c.Digest.Timezone); err != nil || c.Digest.Timezone == "" {
		bad("digest.timezone", "unknown time zone %q", c.Digest.Timezone)
	}
	if strings.TrimSpace(c.Digest.Subject) == "" {
		bad("digest.subject", "must not be empty")
	}
	if c.Digest.Body != "summary" && c.Digest.Body != "full" {
		bad("digest.body", "must be summary or full, got %q", c.Digest.Body)
	}
	switch c.Mail.Transport {
	case "file":
		if c.Mail.OutboxDir == "" {
			bad("mail.outbox_dir", "must not be empty with the file transport")
		}
	case "smtp":
		if c.Mail.SMTP.Host == "" {
			bad("mail.smtp.host", "must be set with the smtp transport")
		}
		if u, err := url.Parse(c.Site.BaseURL); err == nil && u.Scheme != "https" && !mail.IsLoopback(u.Hostname()) {
			bad("site.base_url", "must be https to send over smtp: unsubscribe links and RFC 8058 one-click unsubscribe need it (got %q)", c.Site.BaseURL)
		}
		if c.Secret == "" || c.Secret == SampleSecret {
			bad("secret", "set a long random secret (e.g. PUBLISHER_SECRET=$(openssl rand -hex 32)) before sending over smtp")
		}
	default:
		bad("mail.transport", "must be file or smtp, got %q", c.Mail.Transport)
	}
	if a, err := netmail.ParseAddress(c.Mail.From); err != nil {
		bad("mail.from", "not an address: %q", c.Mail.From)
	} else if strings.ContainsAny(c.Mail.From, "\r\n") || !strings.Contains(a.Address, "@") {
		bad("mail.from", "not an address: %q", c.Mail.From)
	}
	if c.Mail.ReplyTo != "" {
		if _, err := netmail.ParseAddress(c.Mail.ReplyTo); err != nil {
			bad("mail.reply_to", "not an address: %q", c.Mail.ReplyTo)
		}
	}
	if c.Mail.Unsubscribe != "" {
		if _, err := netmail.ParseAddress(c.Mail.Unsubscribe); err != nil {
			bad("mail.unsubscribe_mailto", "not an address: %q", c.Mail.Unsubscribe)
		}
	}
	if strings.ContainsAny(c.Mail.ListID, "\r\n") {
		bad("mail.list_id", "must be one line")
	}
	if c.Mail.BounceLimit < 1 {
		bad("mail.bounce_limit", "must be at least 1")
	}
	if c.Mail.MaxAttempts < 1 {
		bad("mail.max_attempts", "must be at least 1")
	}
	if c.Mail.SMTP.Port < 1 || c.Mail.SMTP.Port > 65535 {
		bad("mail.smtp.port", "must be 1-65535, got %d", c.Mail.SMTP.Port)
	}
	switch c.Mail.SMTP.TLS {
	case "starttls", "tls":
	case "none":
		if c.Mail.Transport == "smtp" && !mail.IsLoopback(c.Mail.SMTP.Host) {
			bad("mail.smtp.tls", "none is only allowed for a loopback host, not %q", c.Mail.SMTP.Host)
		}
	default:
		bad("mail.smtp.tls", "must be starttls, tls or none, got %q", c.Mail.SMTP.TLS)
	}
	if c.Mail.SMTP.Connections < 1 || c.Mail.SMTP.Connections > 200 {
		bad("mail.smtp.connections", "must be 1-200, got %d", c.Mail.SMTP.Connections)
	}
	if c.Mail.SMTP.Rate < 0 {
		bad("mail.smtp.rate", "must not be negative")
	}
	if c.Mail.SMTP.ConnectTimeout <= 0 {
		bad("mail.smtp.connect_timeout", "must be positive")
	}
	if c.Mail.SMTP.SendTimeout <= 0 {
		bad("mail.smtp.send_timeout", "must be positive")
	}
	if c.Mail.DKIM.Domain != "" && (c.Mail.DKIM.Selector == "" || c.Mail.DKIM.KeyFile == "") {
		bad("mail.dkim", "domain, selector and key_file go together")
	}
	if c.HTTP.RateLimit < 1 {
		bad("http.rate_limit", "must be at least 1")
	}
	if c.HTTP.Listen != "" {
		if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
			bad("http.listen", "not host:port: %q", c.HTTP.Listen)
		}
	}
	for _, p := range c.HTTP.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			bad("http.trusted_proxies", "not a CIDR such as 10.0.0.0/8: %q", p)
		}
	}
	if c.Tokens.ConfirmTTL <= 0 {
		bad("tokens.confirm_ttl", "must be positive")
	}
	if c.Store.Driver != "sqlite" {
		bad("store.driver", "must be sqlite, got %q", c.Store.Driver)
	}
	return errs
}

// SendAtClock returns digest.send_at as hour and minute.
func (d Digest) SendAtClock() (hour, minute int, err error) {
	t, err := time.Parse("15:04", d.SendAt)
	if err != nil {
		return 0, 0, fmt.Errorf("must be HH:MM, got %q", d.SendAt)
	}
	return t.Hour(), t.Minute(), nil
}

// Weekday returns digest.send_day.
func (d Digest) Weekday() (time.Weekday, error) {
	for w := time.Sunday; w <= time.Saturday; w++ {
		if strings.EqualFold(d.SendDay, w.String()) {
			return w, nil
		}
	}
	return 0, fmt.Errorf("must be a weekday name such as monday, got %q", d.SendDay)
}

// Location returns digest.timezone, already validated.
func (d Digest) Location() *time.Location {
	loc, err := time.LoadLocation(d.Timezone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// DBPath is the SQLite file inside data.dir.
func (c *Config) DBPath() string { return filepath.Join(c.Data.Dir, "publisher.db") }
