package bounce

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	pubmail "publisher/internal/mail"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// crlf gives the message as it travels over SMTP.
func crlf(raw []byte) []byte {
	return []byte(strings.ReplaceAll(strings.ReplaceAll(string(raw), "\r\n", "\n"), "\n", "\r\n"))
}

var deskVERP = func() VERP {
	v, err := NewVERP("bounces@desk.example.org")
	if err != nil {
		panic(err)
	}
	return v
}()

func TestParseDSNFixtures(t *testing.T) {
	cases := []struct {
		file      string
		id        string
		reporting string
		messageID string
		verp      string
		rec       Recipient
		kind      Kind
	}{
		{
			file: "postfix-user-unknown.eml", id: "20261120070014.4XyZ1b2C3d@relay.desk.example.org",
			reporting: "relay.desk.example.org", messageID: "digest-12-5@desk.example.org", verp: "ana.petrova@example.org",
			rec: Recipient{FinalRecipient: "ana.petrova@example.org", OriginalRecipient: "ana.petrova@example.org", Action: "failed",
				Status: "5.1.1", DiagnosticType: "smtp", RemoteMTA: "mx.example.org", Cause: pubmail.CauseHardBounce,
				Diagnostic: "550 5.1.1 <ana.petrova@example.org>: Recipient address rejected: User unknown in virtual mailbox table"},
			kind: HardBounce,
		},
		{
			// Exim says Status 5.0.0; the remote server's 5.1.1 is kept.
			file: "exim-unrouteable.eml", id: "E1tDq2x-0004Ab-1c@mail.desk-host.example",
			reporting: "mail.desk-host.example", messageID: "digest-12-9@desk.example.org", verp: "jorg@example.net",
			rec: Recipient{FinalRecipient: "jorg@example.net", Action: "failed", Status: "5.1.1", DiagnosticType: "smtp",
				RemoteMTA: "mx1.example.net", Cause: pubmail.CauseHardBounce,
				Diagnostic: "550 5.1.1 <jorg@example.net>: no mailbox here by that name"},
			kind: HardBounce,
		},
		{
			// Gmail: nested parts, no reply code in the diagnostic.
			file: "gmail-no-such-user.eml", id: "6741a2b3.050a0220.1c2d3e.0001.GMR@mx.google.com",
			reporting: "googlemail.com", messageID: "digest-12-14@desk.example.org", verp: "lena.k@example.com",
			rec: Recipient{FinalRecipient: "lena.k@example.com", Action: "failed", Status: "5.1.1", DiagnosticType: "smtp",
				RemoteMTA: "gmail-smtp-in.l.google.com. 2001:db8::1b", Cause: pubmail.CauseHardBounce,
				LastAttempt: time.Date(2026, 11, 20, 15, 2, 11, 0, time.UTC),
				Diagnostic:  "The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. For more information, go to https://support.google.com/mail/?p=NoSuchUser a1b2c3d4e5f6 - gsmtp"},
			kind: HardBounce,
		},
		{
			// No returned message: the Message-ID comes from Gmail's X-Original-Message-ID.
			file: "gmail-over-quota.eml", id: "6741a2b3.050a0220.1c2d3e.0002.GMR@mx.google.com",
			reporting: "googlemail.com", messageID: "digest-13-21@desk.example.org", verp: "tomas@example.com",
			rec: Recipient{FinalRecipient: "tomas@example.com", Action: "failed", Status: "5.2.2", DiagnosticType: "smtp",
				RemoteMTA: "gmail-smtp-in.l.google.com.", Cause: pubmail.CauseSoftBounce,
				LastAttempt: time.Date(2026, 11, 21, 15, 0, 40, 0, time.UTC),
				Diagnostic:  "552-5.2.2 The recipient's inbox is out of storage space. Please direct the recipient to 552 5.2.2 https://support.google.com/mail/?p=OverQuotaPerm a1b2 - gsmtp"},
			kind: SoftBounce,
		},
		{
			// Exchange: the returned headers are base64, the text quoted-printable.
			file: "exchange-recipient-not-found.eml", id: "9f8e7d6c-5b4a-4c3d-9e2f-1a0b9c8d7e6f@AM0PR01MB0002.eurprd01.prod.outlook.example",
			reporting: "AM0PR01MB0002.eurprd01.prod.outlook.example", messageID: "digest-12-30@desk.example.org", verp: "m.ilves@agency.example",
			rec: Recipient{FinalRecipient: "m.ilves@agency.example", OriginalRecipient: "m.ilves@agency.example", Action: "failed",
				Status: "5.1.10", DiagnosticType: "smtp", Cause: pubmail.CauseHardBounce,
				Diagnostic: "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"},
			kind: HardBounce,
		},
		{
			// A block list refused the relay: the reader is not to blame.
			file: "postfix-blocked.eml", id: "20261120070402.5AbC2d3E4f@relay.desk.example.org",
			reporting: "relay.desk.example.org", messageID: "digest-12-41@desk.example.org", verp: "sam@example.edu",
			rec: Recipient{FinalRecipient: "sam@example.edu", OriginalRecipient: "sam@example.edu", Action: "failed",
				Status: "5.7.1", DiagnosticType: "smtp", RemoteMTA: "mx.example.edu", Cause: pubmail.CauseSender,
				Diagnostic: "554 5.7.1 Service unavailable; Client host [198.51.100.7] blocked using a block list"},
			kind: Refused,
		},
		{
			file: "postfix-delayed.eml", id: "20261120110500.6BcD3e4F5g@relay.desk.example.org",
			reporting: "relay.desk.example.org", messageID: "digest-12-52@desk.example.org", verp: "ines@example.org",
			rec: Recipient{FinalRecipient: "ines@example.org", OriginalRecipient: "ines@example.org", Action: "delayed",
				Status: "4.4.1", DiagnosticType: "x-postfix", Cause: pubmail.CauseTemporary,
				Diagnostic: "connect to mx.example.org[192.0.2.50]:25: Connection timed out"},
			kind: Delayed,
		},
	}
	for _, c := range cases {
		for _, form := range []string{"LF", "CRLF"} {
			t.Run(c.file+"/"+form, func(t *testing.T) {
				raw := fixture(t, c.file)
				if form == "CRLF" {
					raw = crlf(raw)
				}
				d, err := ParseDSN(raw, deskVERP)
				if err != nil {
					t.Fatal(err)
				}
				if d.ID != c.id || d.ReportingMTA != c.reporting || d.MessageID != c.messageID || d.VERPRecipient != c.verp {
					t.Errorf("id %q reporting %q message %q verp %q,\nwant %q %q %q %q",
						d.ID, d.ReportingMTA, d.MessageID, d.VERPRecipient, c.id, c.reporting, c.messageID, c.verp)
				}
				if len(d.Recipients) != 1 || len(d.Problems) != 0 {
					t.Fatalf("recipients %+v, problems %q: want one recipient and no problem", d.Recipients, d.Problems)
				}
				if got := d.Recipients[0]; got != c.rec {
					t.Errorf("recipient\n got %+v\nwant %+v", got, c.rec)
				}
				events := d.Events()
				want := Event{Source: "dsn", ID: c.id + "/" + c.rec.FinalRecipient + "/" + c.rec.Action, Kind: c.kind,
					Recipient: c.verp, MessageID: c.messageID, Status: c.rec.Status, Diagnostic: c.rec.Diagnostic}
				if len(events) != 1 {
					t.Fatalf("events %+v", events)
				}
				got := events[0]
				got.At = time.Time{}
				if got != want {
					t.Errorf("event\n got %+v\nwant %+v", got, want)
				}
				if events[0].At.IsZero() {
					t.Errorf("event has no time")
				}
				// Parse, which tells the report kinds apart, gives the same.
				all, err := Parse(raw, deskVERP)
				if err != nil || !slices.Equal(all, events) {
					t.Errorf("Parse = %+v, %v; want %+v", all, err, events)
				}
			})
		}
	}
}

func TestParseARFFixture(t *testing.T) {
	for _, raw := range [][]byte{fixture(t, "arf-abuse.eml"), crlf(fixture(t, "arf-abuse.eml"))} {
		a, err := ParseARF(raw, deskVERP)
		if err != nil {
			t.Fatal(err)
		}
		want := ARF{
			ID: "fbl.20261121091245.77aa@fbl.mailbox.example", FeedbackType: "abuse", UserAgent: "MailboxFBL/2.1", Version: "1",
			OriginalMailFrom: "bounces+priya=mailbox.example@desk.example.org", OriginalRcptTo: []string{"priya@mailbox.example"},
			ReportingMTA: "fbl.mailbox.example", SourceIP: "198.51.100.7", ArrivalDate: time.Date(2026, 11, 21, 7, 0, 31, 0, time.UTC),
			MessageID: "digest-13-60@desk.example.org", VERPRecipient: "priya@mailbox.example", OriginalTo: "redacted@mailbox.example",
			ListUnsubscribe: "<https://desk.example.org/unsubscribe?token=CCCC.DDDD>, <mailto:digest@desk.example.org?subject=unsubscribe>",
			Date:            time.Date(2026, 11, 21, 9, 12, 45, 0, time.UTC),
		}
		if !a.ArrivalDate.Equal(want.ArrivalDate) || !a.Date.Equal(want.Date) {
			t.Errorf("dates %v %v, want %v %v", a.ArrivalDate, a.Date, want.ArrivalDate, want.Date)
		}
		a.ArrivalDate, a.Date, want.ArrivalDate, want.Date = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if !reflect.DeepEqual(*a, want) {
			t.Errorf("\n got %+v\nwant %+v", *a, want)
		}
		events, err := Parse(raw, deskVERP)
		if err != nil || len(events) != 1 {
			t.Fatalf("Parse = %+v, %v", events, err)
		}
		e := events[0]
		if e.Source != "arf" || e.Kind != Complaint || e.Recipient != "priya@mailbox.example" ||
			e.MessageID != "digest-13-60@desk.example.org" || e.ID != want.ID || e.At.IsZero() {
			t.Errorf("event %+v", e)
		}
	}
}

// Without VERP a complaint names the reader by Original-Rcpt-To; a not-spam
// report is no complaint at all.
func TestARFWithoutVERPAndOtherFeedbackTypes(t *testing.T) {
	raw := string(fixture(t, "arf-abuse.eml"))
	plain := strings.ReplaceAll(raw, "bounces+priya=mailbox.example@", "bounces@")
	events, err := Parse([]byte(plain), deskVERP)
	if err != nil || len(events) != 1 || events[0].Recipient != "priya@mailbox.example" {
		t.Errorf("Parse = %+v, %v: want the complaint for Original-Rcpt-To", events, err)
	}
	redacted := strings.ReplaceAll(plain, "Original-Rcpt-To: <priya@mailbox.example>\n", "")
	events, err = Parse([]byte(redacted), deskVERP)
	if err != nil || len(events) != 1 || events[0].Recipient != "redacted@mailbox.example" || events[0].MessageID != "digest-13-60@desk.example.org" {
		t.Errorf("Parse = %+v, %v: want the complaint with the To header and the Message-ID", events, err)
	}
	for _, typ := range []string{"not-spam", "virus", "auth-failure", "other"} {
		other := strings.Replace(raw, "Feedback-Type: abuse", "Feedback-Type: "+typ, 1)
		events, err := Parse([]byte(other), deskVERP)
		if err != nil || len(events) != 0 {
			t.Errorf("%s: Parse = %+v, %v; want no event", typ, events, err)
		}
	}
	fraud := strings.Replace(raw, "Feedback-Type: abuse", "Feedback-Type: Fraud", 1)
	if events, _ := Parse([]byte(fraud), deskVERP); len(events) != 1 || events[0].Kind != Complaint {
		t.Errorf("fraud report: %+v, want a complaint", events)
	}
	missing := strings.Replace(raw, "Feedback-Type: abuse\n", "", 1)
	if _, err := ParseARF([]byte(missing), deskVERP); err == nil || !strings.Contains(err.Error(), "Feedback-Type") {
		t.Errorf("report without Feedback-Type: %v", err)
	}
}

// A DSN's broken recipient block is reported by number; the others are kept.
func TestDSNBrokenBlockKeepsTheOthers(t *testing.T) {
	raw := strings.Replace(string(fixture(t, "postfix-user-unknown.eml")),
		"Final-Recipient: rfc822; ana.petrova@example.org\n",
		"Final-Recipient: rfc822; first@example.org\nAction: failed\nStatus: 5.1.1\n\n"+
			"Final-Recipient: rfc822; not an address\nAction: failed\nStatus: 5.1.1\n\n"+
			"Final-Recipient: rfc822; third@example.org\nAction: bounced\nStatus: 5.1.1\n\n"+
			"Final-Recipient: rfc822; fourth@example.org\nAction: failed\nStatus: five\n\n"+
			"Final-Recipient: rfc822; ana.petrova@example.org\n", 1)
	d, err := ParseDSN([]byte(raw), VERP{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range d.Recipients {
		got = append(got, r.FinalRecipient)
	}
	if !slices.Equal(got, []string{"first@example.org", "ana.petrova@example.org"}) {
		t.Errorf("recipients %q", got)
	}
	wantProblems := []string{`block 3: field Final-Recipient "rfc822; not an address" is not an address`,
		`block 4: field Action "bounced": want failed, delayed, delivered, relayed or expanded`,
		`block 5: field Status "five" is not a status code such as 5.1.1`}
	if !slices.Equal(d.Problems, wantProblems) {
		t.Errorf("problems\n %q\nwant\n %q", d.Problems, wantProblems)
	}
	// The zero VERP decodes any VERP-shaped address.
	if d.VERPRecipient != "ana.petrova@example.org" {
		t.Errorf("VERP %q", d.VERPRecipient)
	}
}

func TestNotReports(t *testing.T) {
	for name, raw := range map[string]string{
		"plain text":  "From: someone@example.org\nSubject: out of office\n\nI am away until Monday.\n",
		"no header":   "",
		"bad header":  " folded first line\n\nbody",
		"mixed":       "Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: text/plain\n\nhello\n--x--\n",
		"no boundary": "Content-Type: multipart/report; report-type=delivery-status\n\n--x\n",
		"forwarded bounce": "Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: message/rfc822\n\n" +
			string(fixture(t, "postfix-user-unknown.eml")) + "\n--x--\n",
	} {
		events, err := Parse([]byte(raw), deskVERP)
		if !errors.Is(err, ErrNotReport) || events != nil {
			t.Errorf("%s: %+v, %v; want ErrNotReport", name, events, err)
		}
	}
	// Each parser refuses the other's report.
	if _, err := ParseDSN(fixture(t, "arf-abuse.eml"), deskVERP); !errors.Is(err, ErrNotReport) {
		t.Errorf("ParseDSN of a feedback report: %v", err)
	}
	if _, err := ParseARF(fixture(t, "postfix-user-unknown.eml"), deskVERP); !errors.Is(err, ErrNotReport) {
		t.Errorf("ParseARF of a DSN: %v", err)
	}
}

// A report without a Message-ID gets an id from its bytes: the same message
// read twice gives the same id, another message another.
func TestReportIDWithoutMessageID(t *testing.T) {
	raw := strings.Replace(string(fixture(t, "postfix-delayed.eml")), "Message-Id: <20261120110500.6BcD3e4F5g@relay.desk.example.org>\n", "", 1)
	a, err := ParseDSN([]byte(raw), deskVERP)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := ParseDSN([]byte(raw), deskVERP)
	c, _ := ParseDSN([]byte(strings.Replace(raw, "11:05:00", "11:06:00", 1)), deskVERP)
	if !strings.HasPrefix(a.ID, "sha256:") || a.ID != b.ID || a.ID == c.ID {
		t.Errorf("ids %q %q %q", a.ID, b.ID, c.ID)
	}
}

// Shapes the fixtures do not show: encoded status parts, RFC 6533's UTF-8
// reports, nesting, several recipients, a report cut short.
func TestParseDSNShapes(t *testing.T) {
	const head = "Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b\n"
	cases := []struct {
		name string
		raw  string
		want []Event // ID and At not compared
	}{
		{"base64 status part", head + "Content-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n\n" +
			"UmVwb3J0aW5nLU1UQTogZG5zOyBteC5leGFtcGxlLm9yZwoKRmluYWwtUmVjaXBpZW50OiByZmM4MjI7IGFAZXhhbXBsZS5vcmcKQWN0aW9uOiBmYWlsZWQKU3RhdHVzOiA1LjEuMQo=\n--b--\n",
			[]Event{{Source: "dsn", Kind: HardBounce, Recipient: "a@example.org", Status: "5.1.1"}}},
		{"quoted-printable diagnostic", head + "Content-Type: message/delivery-status\nContent-Transfer-Encoding: quoted-printable\n\n" +
			"Final-Recipient: rfc822; a@example.org\nAction: failed\nStatus: 5.0.0\nDiagnostic-Code: smtp; 550 5.2.2 mailbox fu=\nll\n--b--\n",
			[]Event{{Source: "dsn", Kind: SoftBounce, Recipient: "a@example.org", Status: "5.2.2", Diagnostic: "550 5.2.2 mailbox full"}}},
		{"UTF-8 report (RFC 6533)", "Content-Type: multipart/report; report-type=global-delivery-status; boundary=b\n\n--b\n" +
			"Content-Type: message/global-delivery-status\n\nFinal-Recipient: utf-8; Jörg@Bücher.example\nAction: failed\nStatus: 5.1.1\n" +
			"--b\nContent-Type: message/global-headers\n\nMessage-ID: <digest-1-1@desk.example.org>\n--b--\n",
			[]Event{{Source: "dsn", Kind: HardBounce, Recipient: "jörg@bücher.example", MessageID: "digest-1-1@desk.example.org", Status: "5.1.1"}}},
		{"two recipients, Exim's 5.0.0 before a relay refusal", "To: bounces+a=example.org@desk.example.org\n" + head +
			"Content-Type: message/delivery-status\n\nReporting-MTA: dns; mx\n\nFinal-Recipient: rfc822; a@example.org\nAction: failed\nStatus: 5.0.0\n" +
			"Diagnostic-Code: smtp; 554 5.7.1 relay access denied\n\nFinal-Recipient: rfc822; b@example.org\nAction: delivered\nStatus: 2.0.0\n--b--\n",
			[]Event{{Source: "dsn", Kind: Refused, Recipient: "a@example.org", Status: "5.7.1", Diagnostic: "554 5.7.1 relay access denied"},
				{Source: "dsn", Kind: Delivered, Recipient: "a@example.org", Status: "2.0.0"}}},
		{"nested three deep, expired in a queue", "Content-Type: multipart/mixed; boundary=a\n\n--a\nContent-Type: multipart/mixed; boundary=c\n\n--c\n" +
			"Content-Type: multipart/report; boundary=d\n\n--d\nContent-Type: message/delivery-status\n\nFinal-Recipient: rfc822;a@example.org\n" +
			"Action: failed\nStatus: 4.4.7\n--d--\n--c--\n--a--\n",
			[]Event{{Source: "dsn", Kind: SoftBounce, Recipient: "a@example.org", Status: "4.4.7"}}},
		{"returned message cut short", head + "Content-Type: message/delivery-status\n\nFinal-Recipient: rfc822; a@example.org\nAction: failed\n" +
			"Diagnostic-Code: smtp; 550 No such user here\n--b\nContent-Type: message/rfc822\n\nMessage-ID: <digest-4-4@desk.example.org>\nSubject: cut",
			[]Event{{Source: "dsn", Kind: HardBounce, Recipient: "a@example.org", MessageID: "digest-4-4@desk.example.org", Diagnostic: "550 No such user here"}}},
	}
	for _, c := range cases {
		events, err := Parse([]byte(c.raw), deskVERP)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		for i := range events {
			if events[i].ID == "" {
				t.Errorf("%s: event %d has no id", c.name, i)
			}
			events[i].ID, events[i].At = "", time.Time{}
		}
		if !slices.Equal(events, c.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, events, c.want)
		}
	}
}

// The ESPs report failures with the same two fields a DSN has.
func TestClassify(t *testing.T) {
	for _, c := range []struct {
		status, diagnostic string
		cause              pubmail.Cause
		effective          string
	}{
		{"5.1.1", "smtp; 550 5.1.1 user unknown", pubmail.CauseHardBounce, "5.1.1"},
		{"5.0.0", "smtp; 554 5.7.1 relay access denied", pubmail.CauseSender, "5.7.1"},
		{"", "550 5.2.2 mailbox full", pubmail.CauseSoftBounce, "5.2.2"},
		{"5.7.1", "", pubmail.CauseSender, "5.7.1"},
		{"", "smtp; 550 Requested action not taken: mailbox unavailable", pubmail.CauseHardBounce, ""},
		{"4.4.7", "", pubmail.CauseTemporary, "4.4.7"},
		{"", "", pubmail.CauseTemporary, ""},
		// A diagnostic whose text holds a ";" but no type keeps it.
		{"", "550 no such user; check the address", pubmail.CauseHardBounce, ""},
	} {
		cause, status := Classify(c.status, c.diagnostic)
		if cause != c.cause || status != c.effective {
			t.Errorf("Classify(%q, %q) = %v, %q; want %v, %q", c.status, c.diagnostic, cause, status, c.cause, c.effective)
		}
	}
}
