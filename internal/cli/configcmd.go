package cli

import (
	"context"
	"fmt"
	"strings"

	"publisher/internal/config"
)

func runConfig(_ context.Context, e *env, args []string) int {
	fs := e.flags("config", "", `Print every configuration key, its environment variable, its default and what
it does. With --effective, print instead the value in force for each key (from
the file, the environment or the default, which it says), secrets masked.`)
	markdown := fs.Bool("markdown", false, "print a Markdown table (as in the README)")
	effective := fs.Bool("effective", false, "print the settings in force, secrets masked")
	if _, st := fs.parse(args, 0, 0); st >= 0 {
		return st
	}
	if *effective {
		cfg, st := e.loadConfigQuietly()
		if cfg == nil {
			return st
		}
		file := cfg.File()
		if file == "" {
			file = "none (" + e.configPath + " not found)"
		}
		fmt.Fprintf(e.stdout, "# configuration file: %s\n", file)
		for _, s := range cfg.Effective() {
			fmt.Fprintf(e.stdout, "%s = %q  # %s\n", s.Path, s.Value, s.Source)
		}
		for _, w := range cfg.Warnings() {
			fmt.Fprintf(e.stdout, "# warning: %s\n", w)
		}
		return ExitOK
	}
	keys := config.Keys()
	if *markdown {
		fmt.Fprintln(e.stdout, "| key | environment | default | meaning |")
		fmt.Fprintln(e.stdout, "| --- | --- | --- | --- |")
		for _, k := range keys {
			def := k.Default
			if def != "" {
				def = "`" + strings.ReplaceAll(def, "|", `\|`) + "`"
			}
			env := "`" + k.Env + "`"
			if k.FileEnv != "" {
				env += " or `" + k.FileEnv + "`"
			}
			fmt.Fprintf(e.stdout, "| `%s` | %s | %s | %s |\n", k.Path, env, def, strings.ReplaceAll(k.Doc, "|", `\|`))
		}
		return ExitOK
	}
	for _, k := range keys {
		env := k.Env
		if k.FileEnv != "" {
			env += ", or a file named by " + k.FileEnv
		}
		fmt.Fprintf(e.stdout, "%s (%s) = %q\n    %s\n", k.Path, env, k.Default, k.Doc)
	}
	return ExitOK
}
