package subscriber

import (
	"bytes"
	"strings"
	"testing"
	"unicode"

	"publisher/internal/content"
	"publisher/internal/valid"
)

// FuzzParseCSV checks the promises the mail headers rely on: no panic, every kept
// row has a bare lower-case address, a known cadence and no control characters,
// every problem names the file, and an export reads back the same with no
// cell a spreadsheet would run as a formula.
func FuzzParseCSV(f *testing.F) {
	f.Add([]byte("email,name,topics,cadence\nann@example.org,Ann,energy;security,daily\n"))
	f.Add([]byte("\ufeffemail\r\nANN@EXAMPLE.ORG\r\n"))
	f.Add([]byte("email,name\n\"a@example.org\",\"line\nbreak\"\n"))
	f.Add([]byte("email,name\na@bücher.example,Jörg\nbad\"quote,x\n"))
	f.Add([]byte("name\nno email\n"))
	f.Add([]byte("email,name,topics\n-x@example.org,=HYPERLINK(\"x\"),energy\n+y@example.org,'@cmd,\n'=z@example.org,''-1,\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, problems := ParseCSV("fuzz.csv", bytes.NewReader(data), Daily)
		for _, p := range problems {
			if p.File != "fuzz.csv" || p.Message == "" {
				t.Fatalf("problem without file or message: %+v", p)
			}
		}
		for _, r := range rows {
			if r.Email == "" || r.Email != strings.ToLower(r.Email) || !strings.Contains(r.Email, "@") {
				t.Fatalf("bad email kept: %q", r.Email)
			}
			if !valid.Cadence(r.Cadence) {
				t.Fatalf("bad cadence kept: %q", r.Cadence)
			}
			if r.Line < 2 {
				t.Fatalf("row line %d: rows start after the header", r.Line)
			}
			for _, s := range append([]string{r.Email, r.Name}, r.Topics...) {
				if strings.ContainsFunc(s, unicode.IsControl) {
					t.Fatalf("control character kept in %q", s)
				}
			}
			for _, topic := range r.Topics {
				if topic == "" || content.Slugify(topic) != topic {
					t.Fatalf("topic %q not in slug form", topic)
				}
			}
		}
		var buf bytes.Buffer
		if err := WriteCSV(&buf, rows); err != nil {
			t.Fatal(err)
		}
		back, backProblems := ParseCSV("fuzz.csv", &buf, Daily)
		if len(back) != len(rows) {
			t.Fatalf("export of %d rows read back as %d: %v", len(rows), len(back), backProblems)
		}
		for i := range rows {
			if !sameSubscriber(back[i], rows[i]) {
				t.Fatalf("row %d read back as %+v, want %+v", i, back[i], rows[i])
			}
		}
		for _, rec := range exportedCells(t, buf.Bytes()) {
			for _, cell := range rec {
				if cell != "" && strings.IndexByte(formulaStart, cell[0]) >= 0 {
					t.Fatalf("exported cell %q would run as a formula", cell)
				}
			}
		}
	})
}
