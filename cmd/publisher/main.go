// Command publisher turns a desk's pieces into feeds, an archive and email digests.
// See the README, or run publisher --help.
package main

import (
	"os"

	"golang.org/x/term"

	"publisher/internal/cli"

	// Time zone data in the binary: the container image has no /usr/share/zoneinfo.
	_ "time/tzdata"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Environ(), os.Stdout, os.Stderr, term.IsTerminal(int(os.Stderr.Fd()))))
}
