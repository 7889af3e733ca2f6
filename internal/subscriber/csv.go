package subscriber

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"publisher/internal/content"
	"publisher/internal/valid"
)

// columns is the header WriteCSV writes and ParseCSV understands.
var columns = []string{"email", "name", "topics", "cadence"}

// ParseCSV reads one subscriber file. The first record is the header; it must name
// an email column, and may name name, topics and cadence in any order (others are
// ignored with a warning). An empty cadence becomes defaultCadence. A row with a
// bad address, an unknown cadence, a line break or control character in any field,
// a wrong number of fields or a quoting error is reported with its line and skipped.
// An apostrophe that WriteCSV put before a formula character is dropped.
// Rows are returned in file order and are not merged; see Merge.
func ParseCSV(file string, r io.Reader, defaultCadence string) ([]Row, []Problem) {
	var rows []Row
	problems, _ := ScanCSV(file, r, defaultCadence, func(row Row) error {
		rows = append(rows, row)
		return nil
	})
	return rows, problems
}

// ScanCSV is ParseCSV one row at a time: fn gets each good row as it is read, so a
// list of any length is never held whole. An error from fn stops the scan and is
// returned.
func ScanCSV(file string, r io.Reader, defaultCadence string, fn func(Row) error) ([]Problem, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // checked here, so the message can name both counts
	cr.ReuseRecord = true

	var problems []Problem
	problem := func(line int, sev Severity, format string, args ...any) {
		problems = append(problems, Problem{File: file, Line: line, Severity: sev, Message: fmt.Sprintf(format, args...)})
	}

	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		problem(0, Error, "empty file: a header row naming at least the email column is required")
		return problems, nil
	}
	if err != nil {
		problem(csvErrLine(err, 1), Error, "header row: %s", csvErrMessage(err))
		return problems, nil
	}
	// ReuseRecord: the header's backing array is reused by the next Read.
	width := len(header)
	index, ok := readHeader(header, func(sev Severity, format string, args ...any) { problem(1, sev, format, args...) })
	if !ok {
		return problems, nil
	}

	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				problem(0, Error, "reading: %v", err)
				break
			}
			problem(csvErrLine(err, 0), Error, "row skipped: %s", csvErrMessage(err))
			continue
		}
		line, _ := cr.FieldPos(0)
		for i := range rec {
			rec[i] = unescapeCell(rec[i])
		}
		row, msg := parseRow(rec, index, width, defaultCadence)
		if msg != "" {
			problem(line, Error, "row skipped: %s", msg)
			continue
		}
		if row.Email == "" {
			continue // a row of empty fields, e.g. ",,," left by a spreadsheet
		}
		for _, w := range row.warnings {
			problem(line, Warning, "%s", w)
		}
		row.File, row.Line = file, line
		if err := fn(row.Row); err != nil {
			return problems, err
		}
	}
	return problems, nil
}

// columnIndex holds each known column's position in the header, -1 when absent.
type columnIndex struct{ email, name, topics, cadence int }

func readHeader(header []string, problem func(Severity, string, ...any)) (columnIndex, bool) {
	index := columnIndex{-1, -1, -1, -1}
	ok := true
	for i, raw := range header {
		col := raw
		if i == 0 {
			col = strings.TrimPrefix(col, "\ufeff") // spreadsheet exports often start with a BOM
		}
		col = strings.ToLower(strings.TrimSpace(col))
		var slot *int
		switch col {
		case "email":
			slot = &index.email
		case "name":
			slot = &index.name
		case "topics":
			slot = &index.topics
		case "cadence":
			slot = &index.cadence
		default:
			problem(Warning, "unknown column %q ignored (known: %s)", raw, strings.Join(columns, ", "))
			continue
		}
		if *slot >= 0 {
			problem(Error, "column %q given twice; file skipped", col)
			ok = false
			continue
		}
		*slot = i
	}
	if index.email < 0 {
		problem(Error, "header has no email column; file skipped (header: %q)", strings.Join(header, ","))
		ok = false
	}
	return index, ok
}

// parsedRow is a Row plus the warnings it earned.
type parsedRow struct {
	Row
	warnings []string
}

// parseRow checks one record. A non-empty message means the row is skipped.
func parseRow(rec []string, index columnIndex, width int, defaultCadence string) (parsedRow, string) {
	var row parsedRow
	if len(rec) != width {
		return row, fmt.Sprintf("has %d fields, the header has %d", len(rec), width)
	}
	for i, field := range rec {
		if msg := badCharacters(field); msg != "" {
			return row, fmt.Sprintf("field %d %s", i+1, msg)
		}
	}
	get := func(i int) string {
		if i < 0 {
			return ""
		}
		return strings.TrimSpace(rec[i])
	}
	if allEmpty(rec) {
		return row, ""
	}

	email, msg := parseEmail(get(index.email))
	if msg != "" {
		return row, msg
	}
	row.Email = email
	row.Name = get(index.name)

	if raw := get(index.topics); raw != "" {
		for t := range strings.SplitSeq(raw, ";") {
			t = strings.TrimSpace(t)
			if t == "" {
				continue
			}
			slug := content.Slugify(t)
			if slug == "" {
				row.warnings = append(row.warnings, fmt.Sprintf("topic %q has no letters or digits; ignored", t))
				continue
			}
			row.Topics = append(row.Topics, slug)
		}
		if len(row.Topics) == 0 {
			// Reading it as "all topics" would send far more than was asked for.
			return row, fmt.Sprintf("topics %q name no usable topic", raw)
		}
		slices.Sort(row.Topics)
		row.Topics = slices.Compact(row.Topics)
	}

	cadence := strings.ToLower(get(index.cadence))
	given := cadence != ""
	if !given {
		cadence = defaultCadence
	}
	if !valid.Cadence(cadence) {
		if given {
			return row, fmt.Sprintf("unknown cadence %q (want immediate, daily or weekly)", cadence)
		}
		return row, fmt.Sprintf("cadence is empty and the default %q is not immediate, daily or weekly", defaultCadence)
	}
	row.Cadence = cadence
	return row, ""
}

// parseEmail accepts a bare address only ("reader@example.org", not
// "Reader <reader@example.org>"), so what is stored is exactly what was written.
func parseEmail(s string) (string, string) {
	addr, err := valid.Email(s)
	if errors.Is(err, valid.ErrEmailEmpty) {
		return "", "email is empty"
	}
	if err != nil {
		return "", fmt.Sprintf("email %q %v", s, err)
	}
	return addr, ""
}

// badCharacters rejects what must never reach a mail header: line breaks, other
// control characters and invalid UTF-8.
func badCharacters(s string) string {
	if err := valid.Line(s); err != nil {
		return err.Error()
	}
	return ""
}

func allEmpty(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

func csvErrLine(err error, fallback int) int {
	var pe *csv.ParseError
	if errors.As(err, &pe) && pe.Line > 0 {
		return pe.Line
	}
	return fallback
}

func csvErrMessage(err error) string {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		if pe.StartLine != pe.Line {
			return fmt.Sprintf("%v (record starting at line %d, column %d)", pe.Err, pe.StartLine, pe.Column)
		}
		return fmt.Sprintf("%v (column %d)", pe.Err, pe.Column)
	}
	return err.Error()
}

// Merge folds rows with the same address (already lower-cased) into one: the later
// row wins whole, at the position of the first, the same rule the store applies
// when it syncs the list files. Each merge is a warning at the later row naming the
// earlier one.
func Merge(rows []Row) ([]Row, []Problem) {
	var out []Row
	var problems []Problem
	seen := make(map[string]int, len(rows))
	for _, r := range rows {
		key := strings.ToLower(r.Email)
		i, dup := seen[key]
		if !dup {
			seen[key] = len(out)
			out = append(out, r)
			continue
		}
		problems = append(problems, Problem{File: r.File, Line: r.Line, Severity: Warning,
			Message: fmt.Sprintf("%s is also listed at %s:%d; this later row wins", r.Email, out[i].File, out[i].Line)})
		out[i] = r
	}
	return out, problems
}

// LoadDir reads every *.csv file in dir, in name order, and merges repeated
// addresses across and within files (see Merge). The error is for a folder that
// cannot be read; a file that cannot be opened is a Problem, and the rest go on.
func LoadDir(dir, defaultCadence string) ([]Row, []Problem, error) {
	var all []Row
	problems, err := ScanDir(dir, defaultCadence, func(r Row) error {
		all = append(all, r)
		return nil
	})
	if err != nil {
		return nil, problems, err
	}
	merged, mergeProblems := Merge(all)
	return merged, append(problems, mergeProblems...), nil
}

// ScanDir streams the good rows of every *.csv file in dir, in name order, to fn,
// without merging repeated addresses (the store does that as it syncs).
func ScanDir(dir, defaultCadence string, fn func(Row) error) ([]Problem, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("subscribers folder %s: %w", dir, err)
	}
	var problems []Problem
	for _, e := range entries { // os.ReadDir sorts by name
		if e.IsDir() || !strings.EqualFold(filepath.Ext(e.Name()), ".csv") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		probs, err := scanFile(path, defaultCadence, fn)
		problems = append(problems, probs...)
		if err != nil {
			return problems, err
		}
	}
	return problems, nil
}

func scanFile(path, defaultCadence string, fn func(Row) error) ([]Problem, error) {
	f, err := os.Open(path)
	if err != nil {
		return []Problem{{File: path, Severity: Error, Message: err.Error()}}, nil
	}
	defer f.Close()
	return ScanCSV(path, f, defaultCadence, fn)
}

// CSVWriter writes rows with the header ParseCSV reads, one at a time, so an export
// of any size streams, and can be edited and read back unchanged.
type CSVWriter struct {
	w *csv.Writer
}

// NewCSVWriter writes the header and returns a writer for the rows.
func NewCSVWriter(w io.Writer) (*CSVWriter, error) {
	cw := csv.NewWriter(w)
	if err := cw.Write(columns); err != nil {
		return nil, fmt.Errorf("writing subscribers: %w", err)
	}
	return &CSVWriter{w: cw}, nil
}

// Write writes one row. A cell a spreadsheet would run as a formula is
// escaped (see EscapeCell): a name typed into the web sign-up form ends up
// here, and an operator opens exports in a spreadsheet.
func (c *CSVWriter) Write(r Row) error {
	if err := c.w.Write([]string{EscapeCell(r.Email), EscapeCell(r.Name), EscapeCell(strings.Join(r.Topics, ";")), EscapeCell(r.Cadence)}); err != nil {
		return fmt.Errorf("writing subscriber %s: %w", r.Email, err)
	}
	return nil
}

// Flush writes out what is buffered and reports any error met on the way.
func (c *CSVWriter) Flush() error {
	c.w.Flush()
	if err := c.w.Error(); err != nil {
		return fmt.Errorf("writing subscribers: %w", err)
	}
	return nil
}

// WriteCSV writes rows with the header ParseCSV reads.
func WriteCSV(w io.Writer, rows []Row) error {
	cw, err := NewCSVWriter(w)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if err := cw.Write(r); err != nil {
			return err
		}
	}
	return cw.Flush()
}

// formulaStart holds the characters that make a spreadsheet (Excel,
// LibreOffice, Google Sheets) read a cell as a formula: OWASP's list for CSV
// injection.
const formulaStart = "=+-@\t\r"

// EscapeCell makes a cell inert in a spreadsheet: one that starts with a
// formula character gets a leading apostrophe, which spreadsheets take as
// "this is text" and do not show (OWASP, CSV injection). So that ParseCSV,
// which drops that apostrophe, reads back exactly what was written, a cell
// of apostrophes before a formula character ("'=x") gets one more too.
func EscapeCell(s string) string {
	if formulaAfterQuotes(s) {
		return "'" + s
	}
	return s
}

// unescapeCell undoes EscapeCell. A leading apostrophe not followed by a
// formula character ("'t Hooft") is a person's own and is kept.
func unescapeCell(s string) string {
	if strings.HasPrefix(s, "'") && formulaAfterQuotes(s) {
		return s[1:]
	}
	return s
}

// formulaAfterQuotes reports whether s is any number of apostrophes (none
// included) followed by a formula character.
func formulaAfterQuotes(s string) bool {
	s = strings.TrimLeft(s, "'")
	return s != "" && strings.IndexByte(formulaStart, s[0]) >= 0
}
