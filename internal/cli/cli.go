// Package cli is publisher's command line: one file per command, each parsing its
// own flags and calling the packages that do the work.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"

	"publisher/internal/config"
	"publisher/internal/cycle"
	"publisher/internal/store"
	"publisher/templates"
)

// Exit statuses.
const (
	ExitOK       = 0
	ExitFailures = 1 // some deliveries failed, or check found errors
	ExitConfig   = 2 // bad configuration or usage
)

// env is what every command gets: streams, the environment and the global flags.
type env struct {
	stdout, stderr io.Writer
	environ        []string
	configPath     string
	configGiven    bool
	logLevel       slog.Level
	logJSON        bool
	// terminal is true when stderr is a terminal (progress bars instead of log lines).
	terminal bool
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e *env, args []string) int
}

func commands() []command {
	return []command{
		{"build", "render the feeds and the archive from the content folder", runBuild},
		{"check", "validate the configuration, the pieces, the subscriber lists and the templates", runCheck},
		{"run", "one whole cycle: build, sync subscribers, plan and send due digests", runRun},
		{"preview", "render the digest a subscriber would get now, without sending or recording", runPreview},
		{"subscribers", "manage subscribers: list, add, remove, suppress, unsuppress, history, import, export, erase", runSubscribers},
		{"daemon", "run cycles on the configured schedule and serve feeds, archive and sign-up endpoints", runDaemon},
		{"healthcheck", "ask a running daemon whether it is alive (for container health checks)", runHealthcheck},
		{"config", "print every configuration key with its environment variable and default", runConfig},
		{"version", "print the version", runVersion},
	}
}

// Main runs publisher with args (without the program name) and returns the exit status.
func Main(args []string, environ []string, stdout, stderr io.Writer, terminal bool) int {
	e := &env{stdout: stdout, stderr: stderr, environ: environ, terminal: terminal, configPath: "publisher.yaml"}
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, config.EnvPrefix+"CONFIG="); ok && v != "" {
			e.configPath, e.configGiven = v, true
		}
	}
	fs := flag.NewFlagSet("publisher", flag.ContinueOnError)
	fs.SetOutput(stderr)
	e.globalFlags(fs)
	fs.Usage = func() {} // printed below, to stdout when asked for
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout)
			return ExitOK
		}
		usage(stderr)
		return ExitConfig
	}
	rest := fs.Args()
	if len(rest) == 0 {
		usage(stderr)
		return ExitConfig
	}
	if rest[0] == "help" {
		usage(stdout)
		return ExitOK
	}
	for _, c := range commands() {
		if c.name == rest[0] {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return c.run(ctx, e, rest[1:])
		}
	}
	fmt.Fprintf(stderr, "publisher: unknown command %q\n\n", rest[0])
	usage(stderr)
	return ExitConfig
}

func (e *env) globalFlags(fs *flag.FlagSet) {
	fs.Func("config", "configuration file (default publisher.yaml; env PUBLISHER_CONFIG)", func(s string) error {
		e.configPath, e.configGiven = s, true
		return nil
	})
	fs.Func("log-level", "debug, info, warn or error (default info)", func(s string) error {
		return e.logLevel.UnmarshalText([]byte(s))
	})
	fs.BoolFunc("log-json", "log as JSON lines instead of text", func(string) error {
		e.logJSON = true
		return nil
	})
}

// cmdFlags is one command's flags and its usage text.
type cmdFlags struct {
	*flag.FlagSet
	e                        *env
	name, argsUsage, summary string
}

// flags returns the flags of a command, with the global flags accepted after the
// command name too.
func (e *env) flags(name, argsUsage, summary string) *cmdFlags {
	fs := flag.NewFlagSet("publisher "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	e.globalFlags(fs)
	fs.Usage = func() {} // printed by parse: to stdout for --help, to stderr for a mistake
	return &cmdFlags{FlagSet: fs, e: e, name: name, argsUsage: argsUsage, summary: summary}
}

func (f *cmdFlags) usage(w io.Writer) {
	line := "publisher " + f.name + " [flags]"
	if f.argsUsage != "" {
		line += " " + f.argsUsage
	}
	fmt.Fprintf(w, "Usage: %s\n\n%s\n\nFlags:\n", line, f.summary)
	f.SetOutput(w)
	f.PrintDefaults()
	f.SetOutput(f.e.stderr)
}

// parse reads the flags wherever they stand among the arguments (before or after
// them, as the usage line puts them) and returns the other arguments, or the exit
// status to stop with: 0 after --help, 2 for a bad flag or a wrong number of
// arguments (between minArgs and maxArgs; maxArgs < 0 is no limit). After "--"
// everything is an argument.
func (f *cmdFlags) parse(args []string, minArgs, maxArgs int) ([]string, int) {
	var positional, tail []string
	if i := slices.Index(args, "--"); i >= 0 {
		args, tail = args[:i], args[i+1:]
	}
	for {
		rest, st := f.parseLeading(args)
		if st >= 0 {
			return nil, st
		}
		if len(rest) == 0 {
			break
		}
		positional, args = append(positional, rest[0]), rest[1:]
	}
	positional = append(positional, tail...)
	switch {
	case len(positional) < minArgs:
		return nil, f.fail("missing argument: %s", f.argsUsage)
	case maxArgs >= 0 && len(positional) > maxArgs:
		return nil, f.fail("unexpected argument %q", positional[maxArgs])
	}
	return positional, -1
}

// parseLeading reads the flags up to the first argument that is not one, and
// returns that argument and the rest unread (a subcommand and its own flags).
func (f *cmdFlags) parseLeading(args []string) ([]string, int) {
	if err := f.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			f.usage(f.e.stdout)
			return nil, ExitOK
		}
		fmt.Fprintln(f.e.stderr)
		f.usage(f.e.stderr)
		return nil, ExitConfig
	}
	return f.Args(), -1
}

// fail reports a usage mistake with the command's usage, on stderr.
func (f *cmdFlags) fail(format string, args ...any) int {
	fmt.Fprintf(f.e.stderr, "publisher %s: %s\n\n", f.name, fmt.Sprintf(format, args...))
	f.usage(f.e.stderr)
	return ExitConfig
}

func (e *env) logger() *slog.Logger {
	opts := &slog.HandlerOptions{Level: e.logLevel}
	if e.logJSON {
		// Log processors sum and compare numbers: a duration is seconds, not
		// slog's default of nanoseconds.
		opts.ReplaceAttr = func(_ []string, a slog.Attr) slog.Attr {
			if a.Value.Kind() == slog.KindDuration {
				a.Value = slog.Float64Value(a.Value.Duration().Seconds())
			}
			return a
		}
		return slog.New(slog.NewJSONHandler(e.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(e.stderr, opts))
}

// progress is where a run draws its progress bar: a terminal, and only when the
// log is for people (a JSON log is read by a program).
func (e *env) progress() io.Writer {
	if e.terminal && !e.logJSON {
		return e.stderr
	}
	return nil
}

// loadConfig reads the configuration; a missing default file is fine (defaults and
// environment), a missing named one is not. It says once, on the log, which file
// was read (or that none was) and every warning about the settings.
func (e *env) loadConfig() (*config.Config, int) {
	cfg, st := e.loadConfigQuietly()
	if cfg == nil {
		return nil, st
	}
	log := e.logger()
	if cfg.File() != "" {
		abs, _ := filepath.Abs(cfg.File())
		log.Info("configuration", "file", abs)
	} else {
		log.Info("configuration: no file (" + e.configPath + " not found), so the built-in defaults and the PUBLISHER_* variables")
	}
	for _, w := range cfg.Warnings() {
		log.Warn("configuration", "problem", w.Error())
	}
	return cfg, -1
}

// loadConfigQuietly is loadConfig without the log lines, for commands whose
// output is read by a program (healthcheck, config).
func (e *env) loadConfigQuietly() (*config.Config, int) {
	cfg, err := config.Load(e.configPath, e.configGiven, e.environ)
	if err != nil {
		fmt.Fprintf(e.stderr, "publisher: configuration (%s):\n%v\n", e.configPath, err)
		return nil, ExitConfig
	}
	return cfg, -1
}

func openStore(ctx context.Context, cfg *config.Config) (store.Store, error) {
	st, err := store.Open(ctx, cfg.Store.Driver, cfg.StoreTarget())
	if err != nil {
		if cfg.Store.Driver == "postgres" {
			return nil, fmt.Errorf("store.dsn: %w", err)
		}
		return nil, fmt.Errorf("data.dir: open %s: %w", cfg.DBPath(), err)
	}
	return st, nil
}

// opened is what a command that runs cycles works with. The caller closes store.
type opened struct {
	cfg    *config.Config
	log    *slog.Logger
	runner *cycle.Runner
	store  store.Store
}

// open loads the configuration and opens the store and a runner. On failure it has
// printed why, naming the command, and returns the exit status to stop with.
func (e *env) open(ctx context.Context, command string) (*opened, int) {
	cfg, st := e.loadConfig()
	if cfg == nil {
		return nil, st
	}
	log := e.logger()
	db, err := openStore(ctx, cfg)
	if err != nil {
		fmt.Fprintf(e.stderr, "publisher %s: %v\n", command, err)
		return nil, ExitConfig
	}
	r, err := cycle.New(cycle.Deps{Config: cfg, Store: db, Templates: templates.FS(cfg.Templates.Dir), Logger: log, Progress: e.progress()})
	if err != nil {
		db.Close()
		fmt.Fprintf(e.stderr, "publisher %s: %v\n", command, err)
		return nil, ExitConfig
	}
	return &opened{cfg: cfg, log: log, runner: r, store: db}, -1
}

func usage(w io.Writer) {
	fmt.Fprintf(w, `publisher turns a folder of pieces into feeds, an archive and email digests.

Usage: publisher [--config FILE] <command> [flags]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, `
Global flags (before or after the command):
  --config FILE     configuration file (default publisher.yaml; env PUBLISHER_CONFIG)
  --log-level LVL   debug, info, warn or error
  --log-json        log as JSON lines

Every configuration key can be set in the environment: publisher config lists them.
Run "publisher <command> --help" for a command's flags.
Exit status: 0 done (deliveries still pending are retried by a later run), 1 some
deliveries failed or check found errors, 2 bad configuration or usage.
`)
}

func runVersion(_ context.Context, e *env, args []string) int {
	fs := e.flags("version", "", "Print the version of this binary.")
	if _, st := fs.parse(args, 0, 0); st >= 0 {
		return st
	}
	fmt.Fprintln(e.stdout, "publisher", version())
	return ExitOK
}

// stampedVersion is set at link time by the image build
// (-ldflags "-X publisher/internal/cli.stampedVersion=v1.2.3"): a build from a
// copied tree has no module version and no VCS information to read.
var stampedVersion string

func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	if stampedVersion != "" {
		return stampedVersion + " " + info.GoVersion
	}
	v := info.Main.Version
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return v + " " + info.GoVersion
}
