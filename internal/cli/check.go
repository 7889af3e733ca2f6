package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"publisher/internal/content"
	"publisher/internal/cycle"
	"publisher/internal/digest"
	"publisher/internal/schedule"
	"publisher/internal/site"
	"publisher/internal/subscriber"
	"publisher/internal/web"
	"publisher/templates"
)

func runCheck(ctx context.Context, e *env, args []string) int {
	flags := e.flags("check", "", `Validate the configuration, every piece in content.dir, the subscriber lists and
the templates, and print every problem with its file and line. Every template
is executed against sample pieces, so one that fails only when a page or an
email is rendered is found here. Nothing is written.

Exit status: 2 when the configuration is bad, 1 when any other error was found,
0 when there were only warnings (shown).`)
	if _, st := flags.parse(args, 0, 0); st >= 0 {
		return st
	}
	cfg, _ := e.loadConfigQuietly()
	if cfg == nil {
		return ExitConfig // loadConfig printed every problem with its key
	}
	if _, err := schedule.Parse(cfg.Schedule); err != nil {
		fmt.Fprintf(e.stderr, "publisher: configuration (%s):\nschedule: %v\n", e.configPath, err)
		return ExitConfig
	}
	// The bounce mailbox's and the webhooks' settings, as run and daemon read them.
	_, bounceErr := newBounceReader(cfg, nil, nil)
	_, webhookErr := webhookProviders(cfg)
	if err := errors.Join(bounceErr, webhookErr); err != nil {
		fmt.Fprintf(e.stderr, "publisher: configuration (%s):\n%v\n", e.configPath, err)
		return ExitConfig
	}
	errs, warnings := 0, 0
	report := func(severity, line string) {
		if severity == "error" {
			errs++
		} else {
			warnings++
		}
		fmt.Fprintln(e.stdout, line)
	}
	if cfg.File() == "" {
		report("warning", fmt.Sprintf("configuration: %s not found; checked the built-in defaults and the PUBLISHER_* variables", e.configPath))
	}
	for _, w := range cfg.Warnings() {
		report("warning", "configuration: "+w.Error())
	}

	// The mail settings a runner needs, DKIM key included.
	tmpl := templates.FS(cfg.Templates.Dir)
	if _, err := cycle.New(cycle.Deps{Config: cfg, Templates: tmpl}); err != nil {
		report("error", "templates/mail: "+err.Error())
	} else {
		seen := map[string]bool{}
		for _, err := range checkTemplates(tmpl, cfg.Site.BaseURL, cfg.Digest.Subject) {
			if line := templateProblem(cfg.Templates.Dir, err); !seen[line] {
				seen[line] = true
				report("error", line)
			}
		}
	}

	pieces, problems, err := content.Load(ctx, cfg.Content.Dir, content.Options{MaxBytes: cfg.Content.MaxBytes})
	if err != nil {
		report("error", fmt.Sprintf("content.dir %s: %v", cfg.Content.Dir, err))
	}
	for _, p := range problems {
		report(p.Severity.String(), p.String())
	}

	rows, listProblems, err := subscriber.LoadDir(cfg.Subscribers.Dir, cfg.Digest.DefaultCadence)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// A desk that publishes feeds only has no list.
		report("warning", fmt.Sprintf("subscribers.dir %s: no such folder; no email digests are sent", cfg.Subscribers.Dir))
	case err != nil:
		report("error", fmt.Sprintf("subscribers.dir %s: %v", cfg.Subscribers.Dir, err))
	}
	for _, p := range listProblems {
		report(p.Severity.String(), p.String())
	}

	fmt.Fprintf(e.stdout, "checked %d pieces and %d subscribers: %d errors, %d warnings\n", len(pieces), len(rows), errs, warnings)
	if errs > 0 {
		return ExitFailures
	}
	return ExitOK
}

// templateProblem names the file a failing template came from: the override in
// templates.dir when there is one of that name, else the built-in one.
func templateProblem(dir string, err error) string {
	msg := err.Error()
	name := templateName.FindString(msg)
	if name == "" {
		return "templates: " + msg
	}
	if dir != "" {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return "templates: " + strings.Replace(msg, name, filepath.Join(dir, name), 1)
		}
	}
	return "templates: " + strings.Replace(msg, name, "(built in) "+name, 1)
}

var templateName = regexp.MustCompile(`[A-Za-z0-9_-]+\.(?:html|txt)\.tmpl`)

// checkTemplates executes every template against sample pieces: the archive's,
// the digest's (with and without a reader's name) and the daemon's pages and
// confirmation email. Parsing alone passes a template that calls a field that
// does not exist; executing it does not.
func checkTemplates(fsys fs.FS, baseURL, subject string) []error {
	errs := site.CheckTemplates(fsys)
	errs = append(errs, web.CheckTemplates(fsys)...)
	r, err := digest.NewRenderer(fsys, digest.SiteInfo{Title: "Sample desk", BaseURL: baseURL, Description: "A sample."}, subject)
	if err != nil {
		return append(errs, err)
	}
	links := digest.Links{Unsubscribe: baseURL + "unsubscribe?token=t", Preferences: baseURL + "preferences?token=t"}
	for _, rcpt := range []digest.Recipient{{Name: "Sample Reader", Email: "reader@example.org"}, {Email: "reader@example.org"}} {
		if _, err := r.Render(rcpt, samplePieces(), links); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// samplePieces are two pieces with every field set, for executing templates.
func samplePieces() []content.Piece {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	piece := func(slug, title string) content.Piece {
		return content.Piece{
			ID: slug, Slug: slug, Title: title, File: slug + ".md",
			Authors: []content.Author{{Name: "A. Author", Role: "Analyst", Email: "a@example.org", URL: "https://example.org/a"}},
			Date:    at, Updated: at.Add(24 * time.Hour), FirstSeen: at, Summary: "A summary.", Lede: "A lede.",
			Topics: []string{"energy"}, Source: content.Source{Name: "The Source", URL: "https://example.org/"},
			CanonicalURL: "https://example.org/" + slug, Image: "https://example.org/cover.png",
			HTML: `<p>A body with <a href="https://example.org/">a link</a>.</p>`, Text: "A body with a link.",
		}
	}
	return []content.Piece{piece("sample-one", "Sample one"), piece("sample-two", "Sample two")}
}
