package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"publisher/internal/config"
	"publisher/internal/store"
	"publisher/internal/subscriber"
	"publisher/internal/valid"
)

const subscribersHelp = `Manage subscribers by hand. The list files in subscribers.dir are synced on
every run; what you do here is kept in the store. A suppression (remove,
suppress, an unsubscribe, a complaint or hard bounces) always wins over the
list files, until unsuppress lifts it; an erased address is never added again
by them.

  list [--status STATUS]                   print subscribers (tab-separated)
  add EMAIL [--name N] [--topics a;b] [--cadence C]
                                           add a subscriber, or change what is given
  remove EMAIL                             suppress as removed by hand
  suppress EMAIL [--as unsubscribed|bounced|complained|removed]
                                           suppress with a reason
  unsuppress EMAIL --reason TEXT           lift a suppression (an operator's decision, recorded)
  history EMAIL                            every status change of one address: when, who, why
  import FILE.csv                          add every row of a CSV (email,name,topics,cadence)
  export [--out FILE] [--status STATUS]    write subscribers as CSV
  export EMAIL [--out FILE]                all that is held about one address, as JSON
  erase EMAIL                              delete all that is held about one address, keeping
                                           a keyed hash so that it is never added again

` + statusHelp + `

Run "publisher subscribers <subcommand> --help" for its flags.`

// statusHelp names every status, for the help of the commands that filter by it.
const statusHelp = `Statuses: active (receives digests), pending (signed up on the web, not yet
confirmed), gone (no longer in the list files), and the suppressions:
unsubscribed, bounced, complained, removed.`

// allStatuses are the statuses --status accepts.
var allStatuses = []string{store.StatusActive, store.StatusPending, store.StatusGone,
	store.StatusUnsubscribed, store.StatusBounced, store.StatusComplained, store.StatusRemoved}

func runSubscribers(ctx context.Context, e *env, args []string) int {
	fs := e.flags("subscribers", "list|add|remove|suppress|unsuppress|history|import|export|erase ...", subscribersHelp)
	// The subcommand's own flags follow it: read only what comes before it here.
	rest, st := fs.parseLeading(args)
	if st >= 0 {
		return st
	}
	if len(rest) == 0 {
		return fs.fail("missing subcommand")
	}
	sub, subArgs := rest[0], rest[1:]
	c := subscribersCmd{e: e, now: time.Now().UTC()}
	var run func(context.Context, []string) int
	switch sub {
	case "list":
		run = c.list
	case "add":
		run = c.add
	case "remove":
		run = c.remove
	case "suppress":
		run = c.suppress
	case "unsuppress":
		run = c.unsuppress
	case "history":
		run = c.history
	case "import":
		run = c.importCSV
	case "export":
		run = c.export
	case "erase":
		run = c.erase
	default:
		return fs.fail("unknown subcommand %q", sub)
	}
	return run(ctx, subArgs)
}

// open loads the configuration and opens the store, once a subcommand has read
// its arguments: --help needs neither.
func (c *subscribersCmd) open(ctx context.Context) int {
	cfg, st := c.e.loadConfig()
	if cfg == nil {
		return st
	}
	db, err := openStore(ctx, cfg)
	if err != nil {
		fmt.Fprintf(c.e.stderr, "publisher subscribers: %v\n", err)
		return ExitConfig
	}
	c.cfg, c.db = cfg, db
	return -1
}

type subscribersCmd struct {
	e   *env
	cfg *config.Config
	db  store.Store
	now time.Time
}

func (c *subscribersCmd) fail(err error) int {
	fmt.Fprintf(c.e.stderr, "publisher subscribers: %v\n", err)
	return ExitFailures
}

// statuses reads a --status list; a status that does not exist is a mistake,
// not an empty list.
func statuses(fs *cmdFlags, s string) ([]string, int) {
	if s == "" {
		return nil, -1
	}
	var out []string
	for _, st := range strings.Split(s, ",") {
		st = strings.ToLower(strings.TrimSpace(st))
		if !slices.Contains(allStatuses, st) {
			return nil, fs.fail("--status: unknown status %q (known: %s)", st, strings.Join(allStatuses, ", "))
		}
		out = append(out, st)
	}
	return out, -1
}

// openWithArg parses the flags of a command that takes one argument, then
// opens the store.
func (c *subscribersCmd) openWithArg(ctx context.Context, fs *cmdFlags, args []string) ([]string, int) {
	positional, st := fs.parse(args, 1, 1)
	if st >= 0 {
		return nil, st
	}
	return positional, c.open(ctx)
}

// openWithStatuses parses the flags of a command that takes no argument and a
// --status list, then opens the store.
func (c *subscribersCmd) openWithStatuses(ctx context.Context, fs *cmdFlags, args []string, status *string) ([]string, int) {
	if _, st := fs.parse(args, 0, 0); st >= 0 {
		return nil, st
	}
	only, st := statuses(fs, *status)
	if st >= 0 {
		return nil, st
	}
	return only, c.open(ctx)
}

func (c *subscribersCmd) list(ctx context.Context, args []string) int {
	fs := c.e.flags("subscribers list", "", "Print subscribers, tab-separated.\n\n"+statusHelp)
	status := fs.String("status", "", "only these statuses (comma-separated; default: all)")
	only, st := c.openWithStatuses(ctx, fs, args, status)
	if st >= 0 {
		return st
	}
	defer c.db.Close()
	tw := tabwriter.NewWriter(c.e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EMAIL\tNAME\tSTATUS\tCADENCE\tTOPICS\tSOURCE\tJOINED")
	err := c.db.EachSubscriber(ctx, only, func(s store.Subscriber) error {
		topics := strings.Join(s.Topics, ";")
		if topics == "" {
			topics = "(all)"
		}
		_, err := fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Email, s.Name, s.Status, s.Cadence, topics, s.Source, s.JoinedAt.Format("2006-01-02"))
		return err
	})
	if err != nil {
		return c.fail(err)
	}
	_ = tw.Flush()
	return ExitOK
}

func (c *subscribersCmd) add(ctx context.Context, args []string) int {
	fs := c.e.flags("subscribers add", "EMAIL", `Add an active subscriber. For an address already known, change only what is
given: a name, topics or cadence left out stay as they are. A suppressed
address (unsubscribed, bounced, complained, removed) is refused: what the
reader said stands (subscribers unsuppress lifts it, with a reason). An
address erased on request is refused too, unless --after-erasure says that
the person asked to be added again.`)
	name := fs.String("name", "", "display name")
	afterErasure := fs.Bool("after-erasure", false, "add an address that was erased on request (the person asked to come back)")
	topics := fs.String("topics", "", "topics separated by ; (empty: all)")
	cadence := fs.String("cadence", "", "immediate, daily or weekly (default: digest.default_cadence for a new address)")
	positional, st := fs.parse(args, 1, 1)
	if st >= 0 {
		return st
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if st := c.open(ctx); st >= 0 {
		return st
	}
	defer c.db.Close()
	email := positional[0]
	existing, err := c.db.SubscriberByEmail(ctx, strings.ToLower(strings.TrimSpace(email)))
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return c.fail(err)
	case store.IsSuppressed(existing.Status):
		return c.fail(fmt.Errorf("%s is %s: a suppressed address is not changed by add (it would be mailed again)", existing.Email, existing.Status))
	default:
		// What is not given is kept, not wiped.
		if !given["name"] {
			*name = existing.Name
		}
		if !given["topics"] {
			*topics = strings.Join(existing.Topics, ";")
		}
		if !given["cadence"] {
			*cadence = existing.Cadence
		}
	}
	row, err := c.row(email, *name, *topics, *cadence)
	if err != nil {
		return c.fail(err)
	}
	s, err := c.db.AddSubscriber(ctx, store.SubscriberInput{Email: row.Email, Name: row.Name, Topics: row.Topics, Cadence: row.Cadence,
		Source: store.SourceCLI, Status: store.StatusActive, ConsentSource: "cli", AfterErasure: *afterErasure}, c.now)
	if errors.Is(err, store.ErrErased) {
		return c.fail(fmt.Errorf("%w; add --after-erasure if the person asked to be added again", err))
	}
	if err != nil {
		return c.fail(err)
	}
	fmt.Fprintf(c.e.stdout, "%s: %s\n", s.Email, s.Status)
	return ExitOK
}

// row validates one hand-typed subscriber exactly as a list-file row is validated.
func (c *subscribersCmd) row(email, name, topics, cadence string) (subscriber.Row, error) {
	line := "email,name,topics,cadence\n" + csvField(email) + "," + csvField(name) + "," + csvField(topics) + "," + csvField(cadence) + "\n"
	rows, problems := subscriber.ParseCSV("(command line)", strings.NewReader(line), c.cfg.Digest.DefaultCadence)
	for _, p := range problems {
		if p.Severity == subscriber.Error {
			return subscriber.Row{}, errors.New(p.Message)
		}
	}
	if len(rows) != 1 {
		return subscriber.Row{}, fmt.Errorf("not a valid subscriber: %q", email)
	}
	return rows[0], nil
}

func csvField(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

func (c *subscribersCmd) remove(ctx context.Context, args []string) int {
	fs := c.e.flags("subscribers remove", "EMAIL", "Suppress an address as removed by hand: it is never mailed again, whatever the\nlist files say. The same as suppress EMAIL --as removed.")
	positional, st := fs.parse(args, 1, 1)
	if st >= 0 {
		return st
	}
	return c.suppressAs(ctx, positional[0], store.StatusRemoved, "subscribers remove")
}

func (c *subscribersCmd) suppress(ctx context.Context, args []string) int {
	fs := c.e.flags("subscribers suppress", "EMAIL", "Suppress an address: it is never mailed again, whatever the list files say.")
	as := fs.String("as", store.StatusRemoved, "reason: unsubscribed, bounced, complained or removed")
	positional, st := fs.parse(args, 1, 1)
	if st >= 0 {
		return st
	}
	if !store.IsSuppressed(*as) {
		return fs.fail("--as: %q is not a reason (unsubscribed, bounced, complained or removed)", *as)
	}
	return c.suppressAs(ctx, positional[0], *as, "subscribers suppress --as "+*as)
}

func (c *subscribersCmd) suppressAs(ctx context.Context, email, as, reason string) int {
	if st := c.open(ctx); st >= 0 {
		return st
	}
	defer c.db.Close()
	email = strings.ToLower(strings.TrimSpace(email))
	s, err := c.db.SubscriberByEmail(ctx, email)
	if errors.Is(err, store.ErrNotFound) {
		// Suppressing an address we never had still matters: a list file may add it later.
		if _, verr := valid.Email(email); verr != nil {
			return c.fail(fmt.Errorf("email %q %v", email, verr))
		}
		s, err = c.db.AddSubscriber(ctx, store.SubscriberInput{Email: email, Source: store.SourceCLI, Status: as, ConsentSource: reason}, c.now)
	}
	if errors.Is(err, store.ErrErased) {
		fmt.Fprintf(c.e.stdout, "%s: %v; it stays suppressed by its hash\n", email, err)
		return ExitOK
	}
	if err != nil {
		return c.fail(err)
	}
	if err := c.db.SetStatus(ctx, s.ID, as, store.Change{By: store.ByCLI, Reason: reason}, c.now); err != nil {
		return c.fail(err)
	}
	fmt.Fprintf(c.e.stdout, "%s: %s\n", email, as)
	return ExitOK
}

func (c *subscribersCmd) importCSV(ctx context.Context, args []string) int {
	fs := c.e.flags("subscribers import", "FILE.csv", "Add every valid row of a CSV file (header: email,name,topics,cadence) as active subscribers.")
	positional, st := c.openWithArg(ctx, fs, args)
	if st >= 0 {
		return st
	}
	defer c.db.Close()
	file := positional[0]
	f, err := os.Open(file)
	if err != nil {
		return c.fail(err)
	}
	defer f.Close()
	rows, problems := subscriber.ParseCSV(file, f, c.cfg.Digest.DefaultCadence)
	for _, p := range problems {
		fmt.Fprintln(c.e.stderr, p.String())
	}
	added, erased := 0, 0
	for _, row := range rows {
		_, err := c.db.AddSubscriber(ctx, store.SubscriberInput{Email: row.Email, Name: row.Name, Topics: row.Topics, Cadence: row.Cadence, Source: store.SourceCLI, Status: store.StatusActive, ConsentSource: fmt.Sprintf("import %s:%d", row.File, row.Line)}, c.now)
		if errors.Is(err, store.ErrErased) {
			// Said by file and line: the row is the operator's to remove.
			fmt.Fprintf(c.e.stderr, "%s:%d: error: the address was %v; not added (subscribers add --after-erasure adds it)\n", row.File, row.Line, err)
			erased++
			continue
		}
		if err != nil {
			return c.fail(err)
		}
		added++
	}
	fmt.Fprintf(c.e.stdout, "imported %d subscribers, %d problems\n", added, len(problems)+erased)
	if len(problems)+erased > 0 {
		return ExitFailures
	}
	return ExitOK
}

func (c *subscribersCmd) export(ctx context.Context, args []string) int {
	fs := c.e.flags("subscribers export", "[EMAIL]", `Without EMAIL: write subscribers as CSV (email,name,topics,cadence).

With EMAIL: write all that is held about that one address as JSON (a
person's request for their data): the subscriber (status, preferences, when
and how they joined and consented), every status change with who made it and
why, every delivery (digest, pieces, status, attempts, Message-ID, times) and
every bounce, complaint or webhook event about it.

`+statusHelp)
	out := fs.String("out", "", "file to write (default: standard output)")
	status := fs.String("status", store.StatusActive, "CSV: only these statuses (comma-separated; empty: all)")
	positional, st := fs.parse(args, 0, 1)
	if st >= 0 {
		return st
	}
	var only []string
	if len(positional) == 1 {
		given := false
		fs.Visit(func(f *flag.Flag) { given = given || f.Name == "status" })
		if given {
			return fs.fail("--status is for the CSV of every subscriber, not for one address")
		}
	} else if only, st = statuses(fs, *status); st >= 0 {
		return st
	}
	if st := c.open(ctx); st >= 0 {
		return st
	}
	defer c.db.Close()
	var w io.Writer = c.e.stdout
	if *out != "" {
		// Personal data: readable by its owner only.
		f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return c.fail(err)
		}
		defer f.Close()
		w = f
	}
	if len(positional) == 1 {
		return c.exportPerson(ctx, w, positional[0])
	}
	cw, err := subscriber.NewCSVWriter(w)
	if err != nil {
		return c.fail(err)
	}
	err = c.db.EachSubscriber(ctx, only, func(s store.Subscriber) error {
		return cw.Write(subscriber.Row{Email: s.Email, Name: s.Name, Topics: s.Topics, Cadence: s.Cadence})
	})
	if err == nil {
		err = cw.Flush()
	}
	if err != nil {
		return c.fail(err)
	}
	return ExitOK
}
