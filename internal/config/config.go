// Package config reads publisher.yaml and the PUBLISHER_* environment variables into
// one validated Config. Every key has a dotted path (site.base_url); its environment
// name is PUBLISHER_ plus the path in upper snake case (PUBLISHER_SITE_BASE_URL), and
// the environment wins over the file. Unknown keys and bad values are errors that
// name the key (and the file line, when it came from the file).
package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	netmail "net/mail"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/publicsuffix"
	"gopkg.in/yaml.v3"

	"publisher/internal/valid"
)

// Config is the whole configuration. The yaml tags are the key names; `doc` tags feed
// the reference printed by `publisher config` and kept in the README. A `secret`
// tag marks a key that is masked when printed and may be read from a file named by
// PUBLISHER_<KEY>_FILE; a `path` tag marks a file or folder, which, given relative
// in the configuration file, is taken relative to that file's folder.
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
	Secret      string        `yaml:"secret" secret:"true" doc:"key for signing confirm, unsubscribe and preference links (HMAC-SHA256), at least 32 bytes; required unless mail.transport is file"`
	Schedule    string        `yaml:"schedule" doc:"cron spec for publisher daemon: 5 fields, @daily, @every 15m, optional CRON_TZ=Area/City prefix"`
	RunAtStart  bool          `yaml:"run_at_start" doc:"daemon: run a cycle at once on start"`
	Grace       time.Duration `yaml:"shutdown_grace" doc:"on SIGTERM, how long the daemon waits at least for the run in flight; it always waits for a message on the wire (up to mail.smtp.connect_timeout + send_timeout + 15s); the rest stays pending"`
	HTTP        HTTP          `yaml:"http"`
	Tokens      Tokens        `yaml:"tokens"`
	Store       Store         `yaml:"store"`
	Bounces     Bounces       `yaml:"bounces"`
	Webhooks    Webhooks      `yaml:"webhooks"`

	file     string            // the configuration file read, "" when none was
	sources  map[string]string // key -> where its value came from, for keys not at their default
	warnings Errors
}

type Site struct {
	Title       string `yaml:"title" doc:"the publication's name, in feeds, pages and emails"`
	BaseURL     string `yaml:"base_url" doc:"absolute URL the output is served from; every link is built on it"`
	Language    string `yaml:"language" doc:"BCP 47 language tag of the content"`
	Description string `yaml:"description" doc:"one line about the publication"`
	PageSize    int    `yaml:"page_size" doc:"pieces on the front page, on each topic page and on each page of the archive (month by month)"`
}

type Content struct {
	Dir      string `yaml:"dir" path:"true" doc:"folder of pieces (.md, .txt, with .yaml sidecars); subfolders allowed"`
	MaxBytes int64  `yaml:"max_bytes" doc:"largest piece file accepted, in bytes"`
	// Images and documents a piece links to are published beside its page.
	MaxAssetBytes int64 `yaml:"max_asset_bytes" doc:"largest image or document beside a piece that is published with it, in bytes"`
}

type Output struct {
	Dir string `yaml:"dir" path:"true" doc:"where feeds and the archive are written"`
}

type Data struct {
	Dir string `yaml:"dir" path:"true" doc:"where the SQLite database lives"`
}

type Templates struct {
	Dir string `yaml:"dir" path:"true" doc:"optional folder whose templates override the built-in ones by name"`
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
	Dir string `yaml:"dir" path:"true" doc:"folder of subscriber list CSV files"`
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
	OutboxDir   string        `yaml:"outbox_dir" path:"true" doc:"where the file transport writes messages"`
	From        string        `yaml:"from" doc:"From address with display name, e.g. \"Desk <digest@example.org>\""`
	ReplyTo     string        `yaml:"reply_to" doc:"Reply-To address (optional)"`
	ListID      string        `yaml:"list_id" doc:"List-Id header, e.g. \"Desk digest <digest.example.org>\" (default from site.title and the From domain)"`
	Unsubscribe string        `yaml:"unsubscribe_mailto" doc:"mailto address for List-Unsubscribe (default: the From address)"`
	BounceLimit int           `yaml:"bounce_limit" doc:"hard bounces (the reader's mailbox refused for good, e.g. 550 5.1.1) after which an address is suppressed"`
	MaxAttempts int           `yaml:"max_attempts" doc:"refusals on the sender's side (policy, relay, authentication, message, e.g. 554 5.7.1) one delivery may take, while the relay delivers other mail, before it is given up; temporary failures are retried for retry_window instead"`
	RetryBase   time.Duration `yaml:"retry_base" doc:"first retry delay; doubles each attempt, up to retry_max"`
	// Retries span hours, as an MTA queues: a run retries what comes due
	// within a couple of minutes, later runs the rest.
	RetryMax    time.Duration `yaml:"retry_max" doc:"longest wait between two attempts of one delivery (at least retry_base)"`
	RetryWindow time.Duration `yaml:"retry_window" doc:"how long a delivery that keeps failing (4xx, no answer, mailbox full) is retried, from its first failure, before it is given up; time in which the relay delivered nothing does not use it up"`
	SMTP        SMTP          `yaml:"smtp"`
	DKIM        DKIM          `yaml:"dkim"`
}

type SMTP struct {
	Host           string        `yaml:"host" doc:"SMTP server host"`
	Port           int           `yaml:"port" doc:"SMTP server port"`
	Username       string        `yaml:"username" doc:"SMTP AUTH user (optional)"`
	Password       string        `yaml:"password" secret:"true" doc:"SMTP AUTH password; set it in the environment or a file (PUBLISHER_MAIL_SMTP_PASSWORD_FILE), not in publisher.yaml"`
	TLS            string        `yaml:"tls" doc:"starttls (mandatory), tls (implicit), or none (loopback hosts only)"`
	HELO           string        `yaml:"helo" doc:"name sent in HELO/EHLO (default: the From domain)"`
	Connections    int           `yaml:"connections" doc:"parallel SMTP connections, each reused for many messages"`
	Rate           float64       `yaml:"rate" doc:"messages per second across all connections; 0 = unlimited"`
	ConnectTimeout time.Duration `yaml:"connect_timeout" doc:"dial and greeting timeout"`
	SendTimeout    time.Duration `yaml:"send_timeout" doc:"timeout for one message's transaction"`
	Relays         []Relay       `yaml:"relays" doc:"several relays instead of host, each with the keys below: messages are spread over them by their connections, and a failing relay's go to the others (see the README). In the environment: comma-separated URLs such as smtp://user@host:587?connections=4&rate=10"`
}

type DKIM struct {
	Domain   string `yaml:"domain" doc:"DKIM signing domain (d=); empty disables signing"`
	Selector string `yaml:"selector" doc:"DKIM selector (s=)"`
	KeyFile  string `yaml:"key_file" path:"true" doc:"PEM private key (RSA or Ed25519)"`
}

type HTTP struct {
	Listen string `yaml:"listen" doc:"address the daemon serves the site and the subscription endpoints on, e.g. 127.0.0.1:8080; empty disables HTTP"`
	// /metrics and /readyz tell an outsider how the desk is doing; they are kept
	// off the public listener unless the operator puts them there.
	AdminListen string `yaml:"admin_listen" doc:"address for /metrics, /readyz and /healthz, e.g. 0.0.0.0:9090 in a pod; empty serves them on http.listen"`
	RateLimit   int    `yaml:"rate_limit" doc:"sign-ups accepted per client address per minute"`
	// Behind a reverse proxy every request comes from the proxy; its X-Forwarded-For
	// is believed only when it is listed here.
	TrustedProxies []string `yaml:"trusted_proxies" doc:"CIDRs of reverse proxies whose X-Forwarded-For names the client (comma-separated in the environment)"`
}

type Tokens struct {
	ConfirmTTL time.Duration `yaml:"confirm_ttl" doc:"how long a confirmation link stays valid"`
}

type Store struct {
	Driver string `yaml:"driver" doc:"sqlite (a file in data.dir: one machine, one sender at a time) or postgres (several replicas share planning and sending)"`
	DSN    string `yaml:"dsn" secret:"true" doc:"PostgreSQL connection string (postgres://user:password@host:5432/db?sslmode=verify-full), with store.driver: postgres; set it in the environment or a file (PUBLISHER_STORE_DSN_FILE), not in publisher.yaml"`
	// Leases coordinate runs and replicas through the database; a run that dies
	// holds its lease (and the deliveries claimed under it) until it expires.
	LeaseTTL time.Duration `yaml:"lease_ttl" doc:"how long a lease lasts unless renewed (renewed every third of it); a process that died blocks the work it held this long"`
	// Deliveries hold who was sent what and when: personal data, kept no
	// longer than it serves (matching late bounces, answering a reader).
	DeliveryRetention time.Duration `yaml:"delivery_retention" doc:"finished deliveries of digests older than this, and bounce and webhook events, are deleted by each run (at least 1d; 0 keeps them for ever); pending ones and the status history are kept"`
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
			RetryMax:    time.Hour,
			RetryWindow: 48 * time.Hour,
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
		HTTP:     HTTP{Listen: "127.0.0.1:8080", AdminListen: "127.0.0.1:9090", RateLimit: 5},
		Tokens:   Tokens{ConfirmTTL: 48 * time.Hour},
		Store:    Store{Driver: "sqlite", LeaseTTL: 30 * time.Second, DeliveryRetention: 400 * 24 * time.Hour},
		Bounces:  Bounces{Schedule: "@every 15m", POP3: POP3{TLS: "tls"}},
	}
}

// SampleSecret is the secret in the repository's publisher.yaml. It is fine for the
// file outbox, and refused for real sending.
const SampleSecret = "sample-secret-change-me"

// placeholderSecrets are the values the repository ships where a secret belongs
// (publisher.yaml, deploy/kubernetes/secret.yaml): `kubectl apply -k` would put
// them in force as they are, so they are refused for real sending.
var placeholderSecrets = []string{SampleSecret, "replace-with-a-long-random-value"}

// MinSecretBytes is the shortest secret accepted for real sending: HMAC-SHA256
// key shorter than the hash's own 32 bytes weakens every link it signs.
const MinSecretBytes = 32

// shutdownMargin is what a run needs after its last message is answered: record
// the outcome, release the lease, record the run.
const shutdownMargin = 15 * time.Second

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
// paths written in the file are taken relative to the file's folder, as every tool
// that reads a configuration file does; those from the environment and the
// defaults stay relative to the working directory.
func Load(path string, mustExist bool, environ []string) (*Config, error) {
	cfg := Defaults()
	cfg.sources = map[string]string{}
	var errs Errors
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		cfg.file = path
		errs = append(errs, decodeFile(path, data, &cfg)...)
	case errors.Is(err, os.ErrNotExist) && !mustExist:
	default:
		return nil, fmt.Errorf("config: %w", err)
	}
	errs = append(errs, cfg.applyEnv(environ)...)
	if len(errs) == 0 {
		errs = append(errs, cfg.validate()...)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return &cfg, nil
}

// File is the configuration file that was read, or "" when none was (defaults
// and environment only).
func (c *Config) File() string { return c.file }

// Warnings are the settings accepted that are likely mistakes, and the
// environment variables ignored; each names its key or variable.
func (c *Config) Warnings() Errors { return c.warnings }

// leaf is one settable key.
type leaf struct {
	path   string
	field  reflect.Value
	doc    string
	secret bool
	isPath bool
}

// leaves lists every key of cfg with its dotted path, in declaration order.
func leaves(v reflect.Value, prefix string) []leaf {
	var out []leaf
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
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
		out = append(out, leaf{path: path, field: fv, doc: f.Tag.Get("doc"), secret: f.Tag.Get("secret") == "true", isPath: f.Tag.Get("path") == "true"})
	}
	return out
}

// EnvName is the environment variable that overrides key; a list's element
// keys are numbered (mail.smtp.relays[0].password: PUBLISHER_MAIL_SMTP_RELAYS_0_PASSWORD).
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.NewReplacer("[", "_", "]", "", ".", "_").Replace(key))
}

// Key describes one configuration key for the reference documentation.
type Key struct {
	Path, Env, Default, Doc string
	// Secret keys are masked when printed, and may be read from the file named by
	// FileEnv instead of from Env.
	Secret  bool
	FileEnv string
}

// Keys lists every key with its environment name, default and description.
func Keys() []Key {
	d := Defaults()
	var out []Key
	for _, l := range leaves(reflect.ValueOf(&d).Elem(), "") {
		k := Key{Path: l.path, Env: EnvName(l.path), Default: format(l.field), Doc: l.doc, Secret: l.secret}
		if l.secret {
			k.FileEnv = k.Env + "_FILE"
		}
		out = append(out, k)
		if isList(l.field) {
			// Each element's keys, with N for its position (from 0).
			for _, e := range leaves(newElement(l.field.Type().Elem()), l.path+"[N]") {
				out = append(out, Key{Path: e.path, Env: EnvName(e.path), Default: format(e.field), Doc: e.doc, Secret: e.secret})
			}
		}
	}
	return out
}

// Setting is one key's value in force and where it came from.
type Setting struct {
	Key
	Value  string // masked for secrets
	Source string // "default", "file:line" or the environment variable's name
}

// Effective lists every key with the value in force, secrets masked, and where
// each value came from.
func (c *Config) Effective() []Setting {
	var out []Setting
	for _, l := range c.effectiveLeaves() {
		k := Key{Path: l.path, Env: EnvName(l.path), Doc: l.doc, Secret: l.secret}
		value := format(l.field)
		if l.secret {
			k.FileEnv = k.Env + "_FILE"
			value = mask(value)
		}
		source := c.sources[l.path]
		if source == "" {
			source = "default"
		}
		out = append(out, Setting{Key: k, Value: value, Source: source})
	}
	return out
}

// effectiveLeaves is every key in force: a list's elements key by key (so
// their secrets are masked like any other), in place of the list itself.
func (c *Config) effectiveLeaves() []leaf {
	var out []leaf
	for _, l := range leaves(reflect.ValueOf(c).Elem(), "") {
		if !isList(l.field) {
			out = append(out, l)
			continue
		}
		for i := 0; i < l.field.Len(); i++ {
			out = append(out, leaves(l.field.Index(i), fmt.Sprintf("%s[%d]", l.path, i))...)
		}
	}
	return out
}

// mask hides a secret but says whether one is set and how long it is, which is
// what an operator checking a deployment needs to know.
func mask(v string) string {
	if v == "" {
		return "(not set)"
	}
	return fmt.Sprintf("(set, %d bytes)", len(v))
}

func format(v reflect.Value) string {
	if v.Kind() == reflect.Slice && v.Len() == 0 {
		return ""
	}
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
	d := decoder{file: path, dir: filepath.Dir(path), cfg: cfg}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return Errors{{Key: "(file)", Source: path, Msg: err.Error()}}
	}
	if len(root.Content) == 0 {
		return nil // an empty file sets nothing
	}
	var errs Errors
	d.walk(root.Content[0], reflect.ValueOf(cfg).Elem(), "", &errs)
	return errs
}

// decoder reads one configuration file into cfg.
type decoder struct {
	file, dir string
	cfg       *Config
}

func (d decoder) walk(n *yaml.Node, v reflect.Value, prefix string, errs *Errors) {
	at := func(n *yaml.Node) string { return fmt.Sprintf("%s:%d", d.file, n.Line) }
	keyName := prefix
	if keyName == "" {
		keyName = "(top level)"
	}
	if n.Kind != yaml.MappingNode {
		*errs = append(*errs, &Error{Key: keyName, Source: at(n), Msg: "expected a mapping of keys"})
		return
	}
	fields := map[string]reflect.Value{}
	isPath := map[string]bool{}
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		if !t.Field(i).IsExported() {
			continue
		}
		name := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		fields[name] = v.Field(i)
		isPath[name] = t.Field(i).Tag.Get("path") == "true"
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
			d.walk(val, fv, path, errs)
			continue
		}
		if isList(fv) {
			d.cfg.sources[path] = at(k)
			d.walkList(val, fv, path, errs)
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
			d.cfg.sources[path] = at(val)
			continue
		}
		if val.Kind != yaml.ScalarNode {
			*errs = append(*errs, &Error{Key: path, Source: at(val), Msg: "expected a single value"})
			continue
		}
		if val.Tag == "!!null" {
			continue
		}
		value := val.Value
		if isPath[k.Value] && value != "" && !filepath.IsAbs(value) {
			value = filepath.Join(d.dir, value)
		}
		if err := setScalar(fv, value); err != nil {
			*errs = append(*errs, &Error{Key: path, Source: at(val), Msg: err.Error()})
		}
		d.cfg.sources[path] = at(val)
	}
}

func (cfg *Config) applyEnv(environ []string) Errors {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, EnvPrefix) {
			env[k] = v
		}
	}
	var errs Errors
	known := map[string]bool{EnvPrefix + "CONFIG": true} // the file itself
	for _, l := range leaves(reflect.ValueOf(cfg).Elem(), "") {
		name := EnvName(l.path)
		known[name] = true
		if isList(l.field) {
			errs = append(errs, applyListEnv(env, known, l, cfg.sources)...)
			continue
		}
		val, ok := env[name]
		source := name
		if l.secret {
			// Kubernetes and Docker mount secrets as files: PUBLISHER_SECRET_FILE
			// names one, and its content (less a final line end) is the value.
			fileName := name + "_FILE"
			known[fileName] = true
			if file, fromFile := env[fileName]; fromFile {
				if ok {
					errs = append(errs, &Error{Key: l.path, Source: fileName, Msg: "both " + name + " and " + fileName + " are set; set one"})
					continue
				}
				b, err := os.ReadFile(file)
				if err != nil {
					errs = append(errs, &Error{Key: l.path, Source: fileName, Msg: err.Error()})
					continue
				}
				val, ok, source = strings.TrimRight(string(b), "\r\n"), true, fileName
			}
		}
		if !ok {
			continue
		}
		cfg.sources[l.path] = source
		if l.field.Kind() == reflect.Slice {
			l.field.Set(reflect.ValueOf(splitList(val)))
			continue
		}
		if err := setScalar(l.field, val); err != nil {
			errs = append(errs, &Error{Key: l.path, Source: source, Msg: err.Error()})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(env)) {
		if known[name] {
			continue
		}
		if serviceLink(name, env[name]) {
			// A Service named publisher makes Kubernetes inject these into every
			// pod of its namespace unless enableServiceLinks is false.
			cfg.warnings = append(cfg.warnings, &Error{Key: name, Msg: "ignored: a variable Kubernetes injects for a Service (set enableServiceLinks: false in the pod spec)"})
			continue
		}
		errs = append(errs, &Error{Key: name, Msg: "unknown environment variable (no such configuration key)"})
	}
	return errs
}

// serviceLink reports whether name=value is one of the variables Kubernetes
// injects for a Service whose name starts with "publisher": PUBLISHER_SERVICE_HOST,
// PUBLISHER_SERVICE_PORT[_<port name>], PUBLISHER_PORT and
// PUBLISHER_PORT_<port>_<TCP|UDP|SCTP>[_PROTO|_PORT|_ADDR] (with the rest of the
// Service's name between PUBLISHER and the suffix). Both the name and the shape
// of the value must match, so a mistyped key is still an error.
func serviceLink(name, value string) bool {
	isIP := func(v string) bool { return net.ParseIP(v) != nil }
	isPort := func(v string) bool { n, err := strconv.Atoi(v); return err == nil && n > 0 && n < 65536 }
	isURL := func(v string) bool {
		scheme, hostport, ok := strings.Cut(v, "://")
		_, port, err := net.SplitHostPort(hostport)
		return ok && err == nil && isPort(port) && (scheme == "tcp" || scheme == "udp" || scheme == "sctp")
	}
	rest := strings.TrimPrefix(name, "PUBLISHER")
	parts := strings.Split(rest, "_")
	// parts[0] is "" (the underscore after PUBLISHER); find the suffix.
	for i := 1; i < len(parts); i++ {
		switch {
		case parts[i] == "SERVICE" && i+1 < len(parts) && parts[i+1] == "HOST" && i+2 == len(parts):
			return isIP(value)
		case parts[i] == "SERVICE" && i+1 < len(parts) && parts[i+1] == "PORT":
			return isPort(value)
		case parts[i] == "PORT" && i+1 == len(parts):
			return isURL(value)
		case parts[i] == "PORT" && i+2 < len(parts) && isPort(parts[i+1]) && (parts[i+2] == "TCP" || parts[i+2] == "UDP" || parts[i+2] == "SCTP"):
			switch strings.Join(parts[i+3:], "_") {
			case "":
				return isURL(value)
			case "PROTO":
				return strings.EqualFold(value, parts[i+2])
			case "PORT":
				return isPort(value)
			case "ADDR":
				return isIP(value)
			}
			return false
		}
	}
	return false
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
		errs = append(errs, &Error{Key: key, Source: c.source(key), Msg: fmt.Sprintf(format, args...)})
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
	if c.Templates.Dir != "" {
		// A mistyped folder would silently give the built-in templates.
		if fi, err := os.Stat(c.Templates.Dir); err != nil {
			bad("templates.dir", "%v", err)
		} else if !fi.IsDir() {
			bad("templates.dir", "%s is not a folder", c.Templates.Dir)
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
	if !valid.Cadence(c.Digest.DefaultCadence) {
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
		if c.Mail.SMTP.Host == "" && len(c.Mail.SMTP.Relays) == 0 {
			bad("mail.smtp.host", "must be set with the smtp transport")
		}
		if u, err := url.Parse(c.Site.BaseURL); err == nil && u.Scheme != "https" && !valid.LoopbackHost(u.Hostname()) {
			bad("site.base_url", "must be https to send over smtp: unsubscribe links and RFC 8058 one-click unsubscribe need it (got %q)", c.Site.BaseURL)
		}
		switch {
		case c.Secret == "" || slices.Contains(placeholderSecrets, c.Secret):
			bad("secret", "set a long random secret (e.g. PUBLISHER_SECRET=$(openssl rand -hex 32)) before sending over smtp; the value shipped in the repository is a placeholder")
		case len(c.Secret) < MinSecretBytes:
			bad("secret", "is %d bytes; use at least %d random bytes (e.g. PUBLISHER_SECRET=$(openssl rand -hex 32)) before sending over smtp", len(c.Secret), MinSecretBytes)
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
	if c.Mail.RetryBase <= 0 {
		bad("mail.retry_base", "must be positive")
	}
	if c.Mail.RetryMax <= 0 {
		bad("mail.retry_max", "must be positive")
	}
	if c.Mail.RetryWindow <= 0 {
		bad("mail.retry_window", "must be positive")
	}
	if c.Mail.SMTP.Port < 1 || c.Mail.SMTP.Port > 65535 {
		bad("mail.smtp.port", "must be 1-65535, got %d", c.Mail.SMTP.Port)
	}
	switch c.Mail.SMTP.TLS {
	case "starttls", "tls":
	case "none":
		if c.Mail.Transport == "smtp" && !valid.LoopbackHost(c.Mail.SMTP.Host) && len(c.Mail.SMTP.Relays) == 0 {
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
	c.validateRelays(bad)
	if c.Mail.DKIM.Domain != "" && (c.Mail.DKIM.Selector == "" || c.Mail.DKIM.KeyFile == "") {
		bad("mail.dkim", "domain, selector and key_file go together")
	}
	if a, err := netmail.ParseAddress(c.Mail.From); err == nil && c.Mail.DKIM.Domain != "" {
		from := a.Address[strings.LastIndex(a.Address, "@")+1:]
		if !aligned(c.Mail.DKIM.Domain, from) {
			c.warn("mail.dkim.domain", "%q does not align with the From domain %q: receivers checking DMARC see the signature as someone else's and fail every message (sign with the From domain or its parent)", c.Mail.DKIM.Domain, from)
		}
	}
	if c.HTTP.RateLimit < 1 {
		bad("http.rate_limit", "must be at least 1")
	}
	if c.HTTP.Listen != "" {
		if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
			bad("http.listen", "not host:port: %q", c.HTTP.Listen)
		}
	}
	if c.HTTP.AdminListen != "" {
		if _, _, err := net.SplitHostPort(c.HTTP.AdminListen); err != nil {
			bad("http.admin_listen", "not host:port: %q", c.HTTP.AdminListen)
		} else if c.HTTP.AdminListen == c.HTTP.Listen {
			bad("http.admin_listen", "is the same address as http.listen (%q); leave it empty to serve /metrics and /readyz there", c.HTTP.Listen)
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
	switch c.Store.Driver {
	case "sqlite":
		if c.Store.DSN != "" {
			bad("store.dsn", "is for store.driver: postgres; sqlite keeps its file in data.dir")
		}
	case "postgres":
		if strings.TrimSpace(c.Store.DSN) == "" {
			bad("store.dsn", "must be set with store.driver postgres (e.g. PUBLISHER_STORE_DSN=postgres://publisher@db:5432/publisher)")
		}
	default:
		bad("store.driver", "must be sqlite or postgres, got %q", c.Store.Driver)
	}
	if c.Store.LeaseTTL < time.Second {
		bad("store.lease_ttl", "must be at least 1s, got %s", c.Store.LeaseTTL)
	}
	if r := c.Store.DeliveryRetention; r != 0 && r < 24*time.Hour {
		bad("store.delivery_retention", "must be at least 1d (or 0 to keep deliveries for ever), got %s", formatDuration(r))
	}
	c.validateFeedback(bad)
	return errs
}

// source says where key was set: its own line or variable, or else its list
// element's; "" when it has its default.
func (c *Config) source(key string) string {
	if s, ok := c.sources[key]; ok {
		return s
	}
	if i := strings.LastIndex(key, "]."); i >= 0 {
		return c.sources[key[:i+1]]
	}
	return ""
}

func (c *Config) warn(key, format string, args ...any) {
	c.warnings = append(c.warnings, &Error{Key: key, Msg: fmt.Sprintf(format, args...)})
}

// aligned reports DMARC's relaxed alignment of a DKIM signing domain with the From
// domain: the same organisational domain (the registrable domain under the public
// suffix list), so d=example.org signs mail from news.example.org.
func aligned(dkim, from string) bool {
	dkim, from = strings.ToLower(strings.TrimSuffix(dkim, ".")), strings.ToLower(strings.TrimSuffix(from, "."))
	if dkim == from {
		return true
	}
	a, errA := publicsuffix.EffectiveTLDPlusOne(dkim)
	b, errB := publicsuffix.EffectiveTLDPlusOne(from)
	return errA == nil && errB == nil && a == b
}

// ShutdownWait is how long the daemon waits on SIGTERM for the run in flight:
// shutdown_grace, but never less than a message on the wire can take (connect,
// send, and recording what happened), so a message the server is accepting is
// never cut off and then sent again by the next start.
func (c *Config) ShutdownWait() time.Duration {
	return max(c.Grace, c.Mail.SMTP.ConnectTimeout+c.Mail.SMTP.SendTimeout+shutdownMargin)
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

// StoreTarget is what the store's driver opens: the SQLite file, or the
// PostgreSQL connection string.
func (c *Config) StoreTarget() string {
	if c.Store.Driver == "postgres" {
		return c.Store.DSN
	}
	return c.DBPath()
}
