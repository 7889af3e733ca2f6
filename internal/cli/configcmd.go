package cli

import (
	"context"
	"fmt"
	"strings"

	"publisher/internal/config"
)

func runConfig(_ context.Context, e *env, args []string) int {
	fs := e.flags("config", "", "Print every configuration key, its environment variable, its default and what it does.")
	markdown := fs.Bool("markdown", false, "print a Markdown table (as in the README)")
	if st := parse(fs, args); st >= 0 {
		return st
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
			fmt.Fprintf(e.stdout, "| `%s` | `%s` | %s | %s |\n", k.Path, k.Env, def, strings.ReplaceAll(k.Doc, "|", `\|`))
		}
		return ExitOK
	}
	for _, k := range keys {
		fmt.Fprintf(e.stdout, "%s (%s) = %q\n    %s\n", k.Path, k.Env, k.Default, k.Doc)
	}
	return ExitOK
}
