// Package problem is the shape every input checker reports in: one thing wrong
// with one file (and line), and whether it stopped that item. Pieces, subscriber
// lists and templates all speak it, so the CLI prints them alike.
package problem

import "fmt"

// Severity says whether a problem stops its item.
type Severity int

const (
	// Warning: the item is used, but something was guessed, dropped or merged.
	Warning Severity = iota
	// Error: the item (or the whole file) is not used.
	Error
)

func (s Severity) String() string {
	if s == Error {
		return "error"
	}
	return "warning"
}

// Problem is one thing wrong with one file.
type Problem struct {
	File     string
	Line     int // 0 when the problem concerns the whole file
	Severity Severity
	Message  string
}

func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %s: %s", p.File, p.Line, p.Severity, p.Message)
	}
	return fmt.Sprintf("%s: %s: %s", p.File, p.Severity, p.Message)
}
