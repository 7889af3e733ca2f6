package cli

import (
	"context"
	"fmt"

	"publisher/internal/content"
	"publisher/internal/cycle"
	"publisher/internal/schedule"
	"publisher/internal/subscriber"
	"publisher/templates"
)

func runCheck(ctx context.Context, e *env, args []string) int {
	fs := e.flags("check", "", `Validate the configuration, every piece in content.dir, the subscriber lists and
the templates, and print every problem with its file and line. Nothing is written.

Exit status: 1 when any error was found, 0 when there were only warnings (shown).`)
	if st := parse(fs, args); st >= 0 {
		return st
	}
	cfg, _ := e.loadConfig()
	if cfg == nil {
		return ExitFailures // loadConfig printed every problem with its key
	}
	errors, warnings := 0, 0
	report := func(severity, line string) {
		if severity == "error" {
			errors++
		} else {
			warnings++
		}
		fmt.Fprintln(e.stdout, line)
	}

	if _, err := schedule.Parse(cfg.Schedule); err != nil {
		report("error", "schedule: "+err.Error())
	}
	// Templates (and the mail settings a runner needs, DKIM key included).
	if _, err := cycle.New(cycle.Deps{Config: cfg, Templates: templates.FS(cfg.Templates.Dir)}); err != nil {
		report("error", "templates/mail: "+err.Error())
	}

	pieces, problems, err := content.Load(ctx, cfg.Content.Dir, content.Options{MaxBytes: cfg.Content.MaxBytes})
	if err != nil {
		report("error", fmt.Sprintf("content.dir %s: %v", cfg.Content.Dir, err))
	}
	for _, p := range problems {
		report(p.Severity.String(), p.String())
	}

	rows, listProblems, err := subscriber.LoadDir(cfg.Subscribers.Dir, cfg.Digest.DefaultCadence)
	if err != nil {
		report("error", fmt.Sprintf("subscribers.dir %s: %v", cfg.Subscribers.Dir, err))
	}
	for _, p := range listProblems {
		report(p.Severity.String(), p.String())
	}

	fmt.Fprintf(e.stdout, "checked %d pieces and %d subscribers: %d errors, %d warnings\n", len(pieces), len(rows), errors, warnings)
	if errors > 0 {
		return ExitFailures
	}
	return ExitOK
}
