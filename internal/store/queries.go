package store

import (
	"bufio"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// queryFiles holds the SQL, one file per table (queries/README.md says how it
// is written).
//
//go:embed queries/*.sql
var queryFiles embed.FS

// queries maps a statement's name to its text, ready for one engine.
type queries map[string]string

// loadQueries reads every named statement and puts in the engine's words.
// Placeholders are left as "?"; the engine numbers them when it runs a statement
// (see (*DB).bind), because some statements are completed at run time.
func loadQueries(files fs.FS, words map[string]string) (queries, error) {
	entries, err := fs.ReadDir(files, "queries")
	if err != nil {
		return nil, fmt.Errorf("read queries: %w", err)
	}
	out := queries{}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		file := path.Join("queries", e.Name())
		body, err := fs.ReadFile(files, file)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", file, err)
		}
		if err := parseQueries(file, string(body), words, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// parseQueries adds the statements of one file to out. Comment lines before a
// statement's text are left out; a statement ends where the next name begins.
func parseQueries(file, body string, words map[string]string, out queries) error {
	var (
		name   string
		text   strings.Builder
		lineNo int
	)
	flush := func() error {
		if name == "" {
			return nil
		}
		q := strings.TrimSpace(text.String())
		if q == "" {
			return fmt.Errorf("%s: statement %q is empty", file, name)
		}
		for word, repl := range words {
			q = strings.ReplaceAll(q, "{{"+word+"}}", repl)
		}
		for rest := q; ; {
			i := strings.Index(rest, "{{")
			if i < 0 {
				break
			}
			word, _, _ := strings.Cut(rest[i+2:], "}}")
			if !callerWord(word) {
				return fmt.Errorf("%s: statement %q: unknown word {{%s}}", file, name, word)
			}
			rest = rest[i+2:]
		}
		out[name] = q
		text.Reset()
		return nil
	}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		if n, ok := strings.CutPrefix(line, "-- name:"); ok {
			if err := flush(); err != nil {
				return err
			}
			name = strings.TrimSpace(n)
			if _, dup := out[name]; dup || name == "" {
				return fmt.Errorf("%s:%d: statement name %q empty or given twice", file, lineNo, name)
			}
			continue
		}
		if strings.HasPrefix(strings.TrimSpace(line), "--") || name == "" {
			continue
		}
		text.WriteString(line)
		text.WriteByte('\n')
	}
	return flush()
}

// callerWord reports whether word is one a statement's caller fills in at run
// time (a list of placeholders as long as what it has to write).
func callerWord(word string) bool {
	switch word {
	case "values", "ids", "message_ids", "sent_ats":
		return true
	}
	return false
}

// numberPlaceholders rewrites "?" placeholders as "$1", "$2", ... for
// PostgreSQL. The statements hold no "?" inside string literals.
func numberPlaceholders(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// valuesList is n groups of width placeholders: "(?, ?), (?, ?)".
func valuesList(n, width int) string {
	return valuesOf(n, "("+strings.TrimSuffix(strings.Repeat("?, ", width), ", ")+")")
}

// valuesOf is n copies of group, comma-separated.
func valuesOf(n int, group string) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(group)
	}
	return b.String()
}
