// Package subscriber reads the subscriber list from CSV files and writes it back.
// Every bad row is reported with its file and line and skipped; the rest go on.
package subscriber

import (
	"publisher/internal/problem"
	"publisher/internal/valid"
)

// Cadences a subscriber may choose (package valid checks them).
const (
	Immediate = valid.Immediate
	Daily     = valid.Daily
	Weekly    = valid.Weekly
)

// Cadences lists the cadences in the order forms offer them.
func Cadences() []string { return []string{Immediate, Daily, Weekly} }

// CadenceLabel is how every form (the archive's sign-up form, the
// preferences page) words a cadence, so a reader meets one wording.
func CadenceLabel(c string) string {
	switch c {
	case Immediate:
		return "With every new piece"
	case Daily:
		return "Once a day"
	case Weekly:
		return "Once a week"
	}
	return c
}

// Row is one subscriber as read from a file.
type Row struct {
	// Email is the bare address, lower-cased.
	Email string
	Name  string
	// Topics are topic slugs, sorted and without duplicates; empty means all topics.
	Topics  []string
	Cadence string
	// File and Line say where the row was read.
	File string
	Line int
}

// Problem and Severity are the shared problem report: an Error skips the row (or,
// at line 0 or 1, the file); a Warning keeps it.
type (
	Problem  = problem.Problem
	Severity = problem.Severity
)

const (
	Warning = problem.Warning
	Error   = problem.Error
)
