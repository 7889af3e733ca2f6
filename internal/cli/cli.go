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
	"runtime/debug"
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
		{"subscribers", "list, add, remove, suppress, import or export subscribers", runSubscribers},
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
	fs.Usage = func() { usage(stderr) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
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

// flags returns a FlagSet for a command, with the global flags accepted after the
// command name too.
func (e *env) flags(name, argsUsage, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet("publisher "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	e.globalFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: publisher %s [flags] %s\n\n%s\n\nFlags:\n", name, argsUsage, summary)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses a command's flags; it returns the exit status to stop with, or -1 to go on.
func parse(fs *flag.FlagSet, args []string) int {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitConfig
	}
	return -1
}

func (e *env) logger() *slog.Logger {
	opts := &slog.HandlerOptions{Level: e.logLevel}
	if e.logJSON {
		return slog.New(slog.NewJSONHandler(e.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(e.stderr, opts))
}

// loadConfig reads the configuration; a missing default file is fine (defaults and
// environment), a missing named one is not.
func (e *env) loadConfig() (*config.Config, int) {
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
	var progress io.Writer
	if e.terminal {
		progress = e.stderr
	}
	r, err := cycle.New(cycle.Deps{Config: cfg, Store: db, Templates: templates.FS(cfg.Templates.Dir), Logger: log, Progress: progress})
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
Exit status: 0 all done, 1 some deliveries failed or check found errors, 2 bad configuration or usage.
`)
}

func runVersion(_ context.Context, e *env, args []string) int {
	fs := e.flags("version", "", "Print the version of this binary.")
	if st := parse(fs, args); st >= 0 {
		return st
	}
	fmt.Fprintln(e.stdout, "publisher", version())
	return ExitOK
}

func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	v := info.Main.Version
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return v + " " + info.GoVersion
}
