package bounce

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	pubmail "publisher/internal/mail"
)

// addFixtures seeds f with every fixture under testdata (the committed corpus
// under testdata/fuzz adds the odd cases).
func addFixtures(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.eml"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no fixtures: %v", err)
	}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
		f.Add(crlf(raw))
	}
}

// plainAddress: lower case, one @, no spaces or brackets.
func plainAddress(s string) bool {
	return s != "" && s == strings.ToLower(s) && strings.Count(s, "@") >= 1 && !strings.ContainsAny(s, " \t\r\n<>")
}

// FuzzParseDSN: any bytes either give ErrNotReport, an error naming the DSN, or
// recipients whose fields hold what their names promise, one event each.
func FuzzParseDSN(f *testing.F) {
	addFixtures(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, err := ParseDSN(raw, deskVERP)
		events, parseErr := Parse(raw, deskVERP)
		if err != nil {
			if !errors.Is(err, ErrNotReport) && !strings.HasPrefix(err.Error(), "dsn ") {
				t.Fatalf("error does not say what it is about: %v", err)
			}
			if parseErr == nil && len(events) > 0 && events[0].Source == "dsn" {
				t.Fatalf("Parse gave DSN events where ParseDSN failed: %v", err)
			}
			return
		}
		if len(d.Recipients) == 0 {
			t.Fatal("a DSN without recipients was accepted")
		}
		for _, r := range d.Recipients {
			if !plainAddress(r.FinalRecipient) || (r.OriginalRecipient != "" && !plainAddress(r.OriginalRecipient)) {
				t.Fatalf("recipient addresses %q %q", r.FinalRecipient, r.OriginalRecipient)
			}
			if !actions[r.Action] {
				t.Fatalf("action %q", r.Action)
			}
			if r.Status != "" && pubmail.EnhancedCode(r.Status) != r.Status {
				t.Fatalf("status %q", r.Status)
			}
			if r.Action == "failed" && strings.HasPrefix(r.Status, "5.") &&
				r.Cause != pubmail.CauseHardBounce && r.Cause != pubmail.CauseSoftBounce && r.Cause != pubmail.CauseSender {
				t.Fatalf("permanent failure %q classified %v", r.Status, r.Cause)
			}
		}
		if strings.ContainsAny(d.MessageID, "<> \t\r\n") {
			t.Fatalf("message id %q", d.MessageID)
		}
		if d.VERPRecipient != "" && !plainAddress(d.VERPRecipient) {
			t.Fatalf("VERP recipient %q", d.VERPRecipient)
		}
		if parseErr != nil || !slices.Equal(events, d.Events()) || len(events) != len(d.Recipients) {
			t.Fatalf("Parse = %d events, %v; ParseDSN gave %d recipients", len(events), parseErr, len(d.Recipients))
		}
		for _, e := range events {
			if e.Source != "dsn" || e.ID == "" || e.Kind == "" || !plainAddress(e.Recipient) {
				t.Fatalf("event %+v", e)
			}
			if e.Kind == HardBounce && !strings.HasPrefix(e.Status, "5.") && e.Status != "" {
				t.Fatalf("hard bounce with status %q", e.Status)
			}
		}
	})
}

// FuzzParseARF: any bytes either give ErrNotReport, an error naming the
// report, or a report with a feedback type, and a complaint only for abuse or
// fraud.
func FuzzParseARF(f *testing.F) {
	addFixtures(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		a, err := ParseARF(raw, deskVERP)
		if err != nil {
			if !errors.Is(err, ErrNotReport) && !strings.HasPrefix(err.Error(), "arf ") {
				t.Fatalf("error does not say what it is about: %v", err)
			}
			return
		}
		if a.FeedbackType == "" || a.FeedbackType != strings.ToLower(a.FeedbackType) || a.ID == "" {
			t.Fatalf("feedback type %q, id %q", a.FeedbackType, a.ID)
		}
		for _, addr := range append([]string{a.VERPRecipient, a.OriginalTo, a.OriginalMailFrom}, a.OriginalRcptTo...) {
			if addr != "" && !plainAddress(addr) {
				t.Fatalf("address %q", addr)
			}
		}
		if strings.ContainsAny(a.MessageID, "<> \t\r\n") {
			t.Fatalf("message id %q", a.MessageID)
		}
		events := a.Events()
		if want := complaintTypes[a.FeedbackType]; (len(events) == 1) != want || len(events) > 1 {
			t.Fatalf("%s report gave %d events", a.FeedbackType, len(events))
		}
		for _, e := range events {
			if e.Kind != Complaint || e.Source != "arf" || (e.Recipient != "" && !plainAddress(e.Recipient)) {
				t.Fatalf("event %+v", e)
			}
		}
		all, err := Parse(raw, deskVERP)
		if err != nil || !slices.Equal(all, events) {
			t.Fatalf("Parse = %+v, %v", all, err)
		}
	})
}
