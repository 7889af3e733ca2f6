package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"publisher/internal/config"
	"publisher/internal/store"
	"publisher/internal/subscriber"
)

const subscribersHelp = `Manage subscribers by hand. The list files in subscribers.dir are synced on
every run; what you do here is kept in the store. A suppression (remove,
suppress, an unsubscribe or hard bounces) always wins over the list files.

  list [--status STATUS]                   print subscribers (tab-separated)
  add EMAIL [--name N] [--topics a;b] [--cadence C]
                                           add or update an active subscriber
  remove EMAIL                             suppress as removed by hand
  suppress EMAIL [--as unsubscribed|bounced|complained|removed]
                                           suppress with a reason
  import FILE.csv                          add every row of a CSV (email,name,topics,cadence)
  export [--out FILE] [--status STATUS]    write subscribers as CSV`

func runSubscribers(ctx context.Context, e *env, args []string) int {
	fs := e.flags("subscribers", "list|add|remove|suppress|import|export ...", subscribersHelp)
	if st := parse(fs, args); st >= 0 {
		return st
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return ExitConfig
	}
	cfg, st := e.loadConfig()
	if cfg == nil {
		return st
	}
	db, err := openStore(ctx, cfg)
	if err != nil {
		fmt.Fprintf(e.stderr, "publisher subscribers: %v\n", err)
		return ExitConfig
	}
	defer db.Close()
	sub, subArgs := rest[0], rest[1:]
	sc := subscribersCmd{e: e, cfg: cfg, db: db, now: time.Now().UTC()}
	switch sub {
	case "list":
		return sc.list(ctx, subArgs)
	case "add":
		return sc.add(ctx, subArgs)
	case "remove":
		return sc.suppress(ctx, append([]string{"--as", store.StatusRemoved}, subArgs...))
	case "suppress":
		return sc.suppress(ctx, subArgs)
	case "import":
		return sc.importCSV(ctx, subArgs)
	case "export":
		return sc.export(ctx, subArgs)
	}
	fmt.Fprintf(e.stderr, "publisher subscribers: unknown subcommand %q\n", sub)
	fs.Usage()
	return ExitConfig
}

type subscribersCmd struct {
	e   *env
	cfg *config.Config
	db  store.Store
	now time.Time
}

func (c subscribersCmd) fail(err error) int {
	fmt.Fprintf(c.e.stderr, "publisher subscribers: %v\n", err)
	return ExitFailures
}

func statuses(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func (c subscribersCmd) list(ctx context.Context, args []string) int {
	fs := c.e.flags("subscribers list", "", "Print subscribers, tab-separated.")
	status := fs.String("status", "", "only these statuses (comma-separated)")
	if st := parse(fs, args); st >= 0 {
		return st
	}
	tw := tabwriter.NewWriter(c.e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EMAIL\tNAME\tSTATUS\tCADENCE\tTOPICS\tSOURCE\tJOINED")
	err := c.db.EachSubscriber(ctx, statuses(*status), func(s store.Subscriber) error {
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

func (c subscribersCmd) add(ctx context.Context, args []string) int {
	fs := c.e.flags("subscribers add", "EMAIL", "Add an active subscriber, or update its name, topics and cadence.")
	name := fs.String("name", "", "display name")
	topics := fs.String("topics", "", "topics separated by ; (empty: all)")
	cadence := fs.String("cadence", "", "immediate, daily or weekly (default digest.default_cadence)")
	if len(args) == 0 {
		fs.Usage()
		return ExitConfig
	}
	email := args[0]
	if st := parse(fs, args[1:]); st >= 0 {
		return st
	}
	row, err := c.row(email, *name, *topics, *cadence)
	if err != nil {
		return c.fail(err)
	}
	s, err := c.db.AddSubscriber(ctx, store.SubscriberInput{Email: row.Email, Name: row.Name, Topics: row.Topics, Cadence: row.Cadence, Source: store.SourceCLI, Status: store.StatusActive, ConsentSource: "cli"}, c.now)
	if err != nil {
		return c.fail(err)
	}
	fmt.Fprintf(c.e.stdout, "%s: %s\n", s.Email, s.Status)
	return ExitOK
}

// row validates one hand-typed subscriber exactly as a list-file row is validated.
func (c subscribersCmd) row(email, name, topics, cadence string) (subscriber.Row, error) {
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

func (c subscribersCmd) suppress(ctx context.Context, args []string) int {
	fs := c.e.flags("subscribers suppress", "EMAIL", "Suppress an address: it is never mailed again, whatever the list files say.")
	as := fs.String("as", store.StatusRemoved, "reason: unsubscribed, bounced, complained or removed")
	// Flags may come before or after the address.
	var email string
	for len(args) > 0 {
		if st := parse(fs, args); st >= 0 {
			return st
		}
		args = fs.Args()
		if len(args) > 0 {
			if email != "" {
				fs.Usage()
				return ExitConfig
			}
			email, args = args[0], args[1:]
		}
	}
	if email == "" || !store.IsSuppressed(*as) {
		fs.Usage()
		return ExitConfig
	}
	email = strings.ToLower(strings.TrimSpace(email))
	s, err := c.db.SubscriberByEmail(ctx, email)
	if errors.Is(err, store.ErrNotFound) {
		// Suppressing an address we never had still matters: a list file may add it later.
		s, err = c.db.AddSubscriber(ctx, store.SubscriberInput{Email: email, Source: store.SourceCLI, Status: *as, ConsentSource: "cli suppress"}, c.now)
	}
	if err != nil {
		return c.fail(err)
	}
	if err := c.db.SetStatus(ctx, s.ID, *as, c.now); err != nil {
		return c.fail(err)
	}
	fmt.Fprintf(c.e.stdout, "%s: %s\n", email, *as)
	return ExitOK
}

func (c subscribersCmd) importCSV(ctx context.Context, args []string) int {
	fs := c.e.flags("subscribers import", "FILE.csv", "Add every valid row of a CSV file (header: email,name,topics,cadence) as active subscribers.")
	if st := parse(fs, args); st >= 0 {
		return st
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return ExitConfig
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return c.fail(err)
	}
	defer f.Close()
	rows, problems := subscriber.ParseCSV(fs.Arg(0), f, c.cfg.Digest.DefaultCadence)
	for _, p := range problems {
		fmt.Fprintln(c.e.stderr, p.String())
	}
	added := 0
	for _, row := range rows {
		if _, err := c.db.AddSubscriber(ctx, store.SubscriberInput{Email: row.Email, Name: row.Name, Topics: row.Topics, Cadence: row.Cadence, Source: store.SourceCLI, Status: store.StatusActive, ConsentSource: fmt.Sprintf("import %s:%d", row.File, row.Line)}, c.now); err != nil {
			return c.fail(err)
		}
		added++
	}
	fmt.Fprintf(c.e.stdout, "imported %d subscribers, %d problems\n", added, len(problems))
	if len(problems) > 0 {
		return ExitFailures
	}
	return ExitOK
}

func (c subscribersCmd) export(ctx context.Context, args []string) int {
	fs := c.e.flags("subscribers export", "", "Write subscribers as CSV (email,name,topics,cadence).")
	out := fs.String("out", "", "file to write (default: standard output)")
	status := fs.String("status", store.StatusActive, "only these statuses (comma-separated; empty: all)")
	if st := parse(fs, args); st >= 0 {
		return st
	}
	var w io.Writer = c.e.stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return c.fail(err)
		}
		defer f.Close()
		w = f
	}
	cw, err := subscriber.NewCSVWriter(w)
	if err != nil {
		return c.fail(err)
	}
	err = c.db.EachSubscriber(ctx, statuses(*status), func(s store.Subscriber) error {
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
