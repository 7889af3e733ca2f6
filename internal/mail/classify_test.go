package mail

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/textproto"
	"strings"
	"testing"
)

// wireReply parses a reply as it comes over the wire (lines joined by CRLF,
// "550-" continuation lines) the way the sender reads it.
func wireReply(t testing.TB, raw string) (int, string) {
	t.Helper()
	r := textproto.NewReader(bufio.NewReader(strings.NewReader(raw + "\r\n")))
	code, msg, err := r.ReadResponse(0)
	if err != nil {
		var tp *textproto.Error
		if !errors.As(err, &tp) {
			t.Fatalf("reply %q does not parse: %v", raw, err)
		}
	}
	return code, msg
}

// Replies in the shape the big mailbox providers and the common MTAs send them
// (addresses, hosts and ids replaced by example values).
var replyCases = []struct {
	who, reply string
	want       Cause
}{
	// Gmail
	{"gmail", "550-5.1.1 The email account that you tried to reach does not exist. Please try\r\n550-5.1.1 double-checking the recipient's email address for typos or\r\n550-5.1.1 unnecessary spaces. For more information, go to\r\n550 5.1.1  https://support.google.com/mail/?p=NoSuchUser a1b2c3d4e5 - gsmtp", CauseHardBounce},
	{"gmail", "550-5.2.1 The email account that you tried to reach is inactive and cannot\r\n550 5.2.1 receive messages. a1b2c3d4e5 - gsmtp", CauseHardBounce},
	{"gmail", "552-5.2.2 The recipient's inbox is out of storage space. Please direct the\r\n552 5.2.2 recipient to https://support.google.com/mail/?p=OverQuotaPerm a1b2 - gsmtp", CauseSoftBounce},
	{"gmail", "452-4.2.2 The recipient's inbox is out of storage space and inbound mail\r\n452 4.2.2 cannot be delivered. a1b2 - gsmtp", CauseTemporary},
	{"gmail", "550-5.7.1 [192.0.2.10] Gmail has detected that this message is likely\r\n550-5.7.1 unsolicited mail. To reduce the amount of spam sent to Gmail,\r\n550 5.7.1 this message has been blocked. a1b2 - gsmtp", CauseSender},
	{"gmail", "550-5.7.26 Unauthenticated email from example.org is not accepted due to\r\n550 5.7.26 domain's DMARC policy. a1b2 - gsmtp", CauseSender},
	{"gmail", "550-5.7.25 [192.0.2.10] The IP address sending this message does not have a\r\n550 5.7.25 PTR record setup. a1b2 - gsmtp", CauseSender},
	{"gmail", "421-4.7.0 [192.0.2.10] Our system has detected an unusual rate of\r\n421 4.7.0 unsolicited mail originating from your IP address. a1b2 - gsmtp", CauseTemporary},
	{"gmail", "553-5.1.3 The recipient address <reader at example.org> is not a valid RFC\r\n553 5.1.3 5321 address. a1b2 - gsmtp", CauseHardBounce},
	{"gmail", "552-5.7.0 This message was blocked because its content presents a potential\r\n552 5.7.0 security issue. a1b2 - gsmtp", CauseSender},
	{"gmail relay", "550 5.4.5 Daily user sending limit exceeded. a1b2 - gsmtp", CauseSender},
	{"gmail relay", "530 5.7.0 Authentication Required. a1b2 - gsmtp", CauseSender},
	// Microsoft: Outlook.com, Exchange Online, Exchange
	{"outlook.com", "550 5.5.0 Requested action not taken: mailbox unavailable (S2017062302). [DB5EUR01FT000.eop-EUR01.prod.protection.outlook.com 2026-11-20T10:00:00.000Z 08DD0000AAAA0000]", CauseHardBounce},
	{"exchange online", "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient reader@example.org not found by SMTP address lookup", CauseHardBounce},
	{"exchange online", "550 5.4.1 Recipient address rejected: Access denied. For more information see https://aka.ms/EXOSmtpErrors [AM0EUR02FT000.eop-EUR02.prod.protection.outlook.com 2026-11-20T10:00:00.000Z 08DD0000AAAA0000]", CauseHardBounce},
	{"outlook.com", "550 5.7.1 Unfortunately, messages from [192.0.2.10] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150). You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors.", CauseSender},
	{"exchange online", "550 5.7.606 Access denied, banned sending IP [192.0.2.10]. To request removal from this list please visit https://sender.office.com/", CauseSender},
	{"exchange online", "550 5.7.509 Access denied, sending domain example.org does not pass DMARC verification and has a DMARC policy of reject.", CauseSender},
	{"exchange", "554 5.2.2 mailbox full; STOREDRV.Deliver.Exception:QuotaExceededException.MapiExceptionShutoffQuotaExceeded; Failed to process message due to a permanent exception", CauseSoftBounce},
	{"exchange online relay", "554 5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed to process message due to a permanent exception with message Cannot submit message.", CauseSender},
	{"exchange online", "550 5.7.520 Access denied, Your organization does not allow external forwarding.", CauseSender},
	{"exchange online", "550 5.1.8 Access denied, bad outbound sender", CauseSender},
	{"exchange online", "451 4.7.500 Server busy. Please try again later from [192.0.2.10]. (S77719)", CauseTemporary},
	{"exchange online", "550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP.", CauseSender},
	{"exchange online relay", "550 5.7.60 SMTP; Client does not have permissions to send as this sender", CauseSender},
	{"exchange", "554 5.6.211 Invalid MIME Content: Single text value size (32780) exceeded allowed maximum (32768)", CauseSender},
	{"exchange", "550 5.1.1 RESOLVER.ADR.ExRecipNotFound; not found", CauseHardBounce},
	{"exchange", "550 5.2.1 Mailbox cannot be accessed", CauseHardBounce},
	{"exchange", "550 5.4.4 SMTPSEND.DNS.NonExistentDomain; nonexistent domain", CauseHardBounce},
	// Yahoo and AOL
	{"yahoo", "554 delivery error: dd This user doesn't have a yahoo.com account (reader@example.org) [0] - mta1001.mail.ne1.yahoo.com", CauseHardBounce},
	{"yahoo", "554 delivery error: dd Sorry your message to reader@example.org cannot be delivered. This mailbox is disabled (554.30). - mta1002.mail.bf1.yahoo.com", CauseHardBounce},
	{"yahoo", "553 5.7.1 [BL21] Connections will not be accepted from 192.0.2.10, because the ip is in Spamhaus's list; see https://postmaster.yahooinc.com/error-codes", CauseSender},
	{"yahoo", "554 5.7.9 Message not accepted for policy reasons.  See https://postmaster.yahooinc.com/error-codes", CauseSender},
	{"yahoo", "421 4.7.0 [TSS04] Messages from 192.0.2.10 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes", CauseTemporary},
	{"aol", "552 1 Requested mail action aborted, mailbox not found", CauseHardBounce},
	{"yahoo", "451 Message temporarily deferred - [160]", CauseTemporary},
	// Postfix
	{"postfix", "550 5.1.1 <reader@example.org>: Recipient address rejected: User unknown in local recipient table", CauseHardBounce},
	{"postfix", "550 5.1.1 <reader@example.org>: Recipient address rejected: User unknown in virtual mailbox table", CauseHardBounce},
	{"postfix", "554 5.7.1 <reader@example.org>: Relay access denied", CauseSender},
	{"postfix", "454 4.7.1 <reader@example.org>: Relay access denied", CauseTemporary},
	{"postfix", "550 5.1.0 <desk@example.org>: Sender address rejected: User unknown in local recipient table", CauseSender},
	{"postfix", "553 5.1.8 <desk@example.org>: Sender address rejected: Domain not found", CauseSender},
	{"postfix", "554 5.7.1 Service unavailable; Client host [192.0.2.10] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.10", CauseSender},
	{"postfix", "554 5.7.1 <unknown[192.0.2.10]>: Client host rejected: Access denied", CauseSender},
	{"postfix", "550 5.7.1 <reader@example.org>: Recipient address rejected: Access denied", CauseSender},
	{"postfix", "552 5.3.4 Message size exceeds fixed limit", CauseSender},
	{"postfix", "552 5.2.2 <reader@example.org>: Recipient address rejected: Mailbox full", CauseSoftBounce},
	{"postfix", "450 4.1.2 <reader@nowhere.example>: Recipient address rejected: Domain not found", CauseTemporary},
	{"postfix", "550 5.1.2 <reader@nowhere.example>: Recipient address rejected: Domain not found", CauseHardBounce},
	{"postfix", "554 5.7.1 <reader@example.org>: Recipient address rejected: Please see http://www.openspf.net/Why?s=mfrom;id=desk@example.org;ip=192.0.2.10", CauseSender},
	{"amavis", "554 5.7.0 Reject, id=12345-01 - spam", CauseSender},
	{"postfix", "554 5.4.6 Too many hops", CauseSender},
	{"postfix via a relay quoting it", "554 554 5.7.1 <reader@example.org>: Recipient address rejected: Access denied (state 14).", CauseSender},
	// Exim (no enhanced codes unless configured)
	{"exim", "550 Unrouteable address", CauseHardBounce},
	{"exim", "550 relay not permitted", CauseSender},
	{"exim", "550-Verification failed for <desk@example.org>\r\n550-Unrouteable address\r\n550 Sender verify failed", CauseSender},
	{"exim", "550 Administrative prohibition", CauseSender},
	{"exim", "552 Message size exceeds maximum permitted", CauseSender},
	{"exim (cpanel)", "550 No Such User Here", CauseHardBounce},
	{"exim", "550-Your message was rejected because it appears to be spam\r\n550 (score 12.5)", CauseSender},
	{"exim", "451 Temporary local problem - please try later", CauseTemporary},
	{"exim", "550 Requested action not taken: mailbox unavailable", CauseHardBounce},
	{"exim", "550 Mailbox quota exceeded", CauseSoftBounce},
	// qmail, with its trailing enhanced codes
	{"qmail", "553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)", CauseSender},
	{"qmail", "550 sorry, no mailbox here by that name. (#5.1.1)", CauseHardBounce},
	{"qmail", "552 sorry, that message size exceeds my databytes limit (#5.3.4)", CauseSender},
	// Sendmail
	{"sendmail", "550 5.1.1 <reader@example.org>... User unknown", CauseHardBounce},
	{"sendmail", "550 5.7.1 <reader@example.org>... Relaying denied. Proper authentication required.", CauseSender},
	{"sendmail", "553 5.1.8 <desk@example.org>... Domain of sender address desk@example.org does not exist", CauseSender},
	{"sendmail", "552 5.2.3 Message size exceeds fixed maximum message size (10485760)", CauseSender},
	{"sendmail", "554 5.0.0 Service unavailable", CauseSender},
	{"sendmail", "550 5.0.0 <reader@example.org>... User unknown", CauseHardBounce},
	// Others
	{"icloud", "550 5.1.1 <reader@example.org>: user does not exist", CauseHardBounce},
	{"icloud", "554 5.7.1 [CS01] Message rejected due to local policy. Please visit https://support.apple.com/", CauseSender},
	{"comcast", "550 5.1.1 Not our Customer", CauseHardBounce},
	{"mimecast", "550 Invalid Recipient - https://community.mimecast.com/docs/DOC-1369#550 [a1b2c3.us123]", CauseHardBounce},
	{"mimecast", "550 Administrative prohibition - envelope blocked - https://community.mimecast.com/docs/DOC-1369#550 [a1b2c3.us123]", CauseSender},
	{"domino", "550 5.1.1 User not listed in public Name & Address Book", CauseHardBounce},
	{"domino", "550 User not listed in public Name & Address Book", CauseHardBounce},
	{"barracuda", "554 Service unavailable; Client host [192.0.2.10] blocked using Barracuda Reputation; http://www.barracudanetworks.com/reputation/?ip=192.0.2.10", CauseSender},
	{"proofpoint", "554 Blocked - see https://ipcheck.proofpoint.com/?ip=192.0.2.10", CauseSender},
	{"old hotmail", "550 #5.1.0 Address rejected reader@example.org", CauseHardBounce},
	{"null MX (RFC 7505)", "556 5.1.10 Recipient address reader@example.org has null MX", CauseHardBounce},
	{"RFC 7293", "550 5.7.17 Mailbox owner has changed", CauseHardBounce},
	{"RFC 7504", "521 5.3.2 example.org does not accept mail", CauseSender},
	{"ses relay", "554 Message rejected: Email address is not verified. The following identities failed the check in region EU-WEST-1: desk@example.org", CauseSender},
	{"ses relay", "454 Throttling failure: Maximum sending rate exceeded.", CauseTemporary},
	{"ses relay", "554 Transaction failed: Sending suspended for this account.", CauseSender},
	{"relay", "553 Authentication is required to send mail as <desk@example.org>", CauseSender},
	{"relay", "550 Message rejected", CauseSender},
	// RFC 5321's bare codes
	{"bare 550", "550 Requested action not taken: mailbox unavailable", CauseHardBounce},
	{"bare 550, no text", "550 ", CauseHardBounce},
	{"bare 551", "551 User not local; please try <reader@elsewhere.example>", CauseHardBounce},
	{"bare 553", "553 Requested action not taken: mailbox name not allowed", CauseHardBounce},
	{"bare 554", "554 Transaction failed", CauseSender},
	{"bare 552", "552 Requested mail action aborted: exceeded storage allocation", CauseSoftBounce},
	{"bare 552, no text", "552 ", CauseSender},
	{"bare 554, no text", "554 ", CauseSender},
	{"bare 500", "500 Syntax error, command unrecognized", CauseSender},
	{"550 with relay words", "550 Relaying not allowed", CauseSender},
	{"550 with spam words", "550 Message classified as spam", CauseSender},
	{"550 blocked", "550 Blocked", CauseSender},
	{"enhanced class disagreeing with the code", "550 4.7.1 greylisted, come back later", CauseSender},
	{"accepted", "250 2.0.0 Ok: queued as 4B2F1", CauseNone},
}

func TestClassifyReply(t *testing.T) {
	for _, c := range replyCases {
		code, text := wireReply(t, c.reply)
		if got := ClassifyReply(code, text); got != c.want {
			t.Errorf("%s: %q\n  = %v, want %v", c.who, c.reply, got, c.want)
		}
	}
	if got := ClassifyReply(0, ""); got != CauseTemporary {
		t.Errorf("no reply at all = %v, want temporary", got)
	}
}

// A DSN may give only the enhanced status (no SMTP diagnostic): its class
// decides permanence.
func TestClassifyStatusWithoutReplyCode(t *testing.T) {
	for _, c := range []struct {
		status, text string
		want         Cause
	}{
		{"5.1.1", "", CauseHardBounce},
		{"5.2.2", "", CauseSoftBounce},
		{"5.7.1", "", CauseSender},
		{"4.4.1", "", CauseTemporary},
		{"5.4.7", "delivery time expired", CauseSoftBounce},
		{"2.0.0", "", CauseNone},
		{"5.0.0", "user unknown", CauseHardBounce},
		{"5.0.0", "", CauseSender},
		{"", "", CauseTemporary},
	} {
		if got := ClassifyStatus(0, c.status, c.text); got != c.want {
			t.Errorf("ClassifyStatus(0, %q, %q) = %v, want %v", c.status, c.text, got, c.want)
		}
	}
}

func TestEnhancedCode(t *testing.T) {
	for text, want := range map[string]string{
		"5.1.1 no such user":                            "5.1.1",
		"5.1.10 RESOLVER.ADR.RecipientNotFound":         "5.1.10",
		"#5.1.0 Address rejected":                       "5.1.0",
		"sorry, no mailbox here by that name. (#5.1.1)": "5.1.1",
		"554 5.7.1 quoted twice":                        "5.7.1",
		"4.2.2 over quota\n4.2.2 second line":           "4.2.2",
		"2.0.0 Ok":                                      "2.0.0",
		"5.1 short":                                     "",
		"6.1.1 bad class":                               "",
		"5.1234.1 too long":                             "",
		"5..1 empty":                                    "",
		"x (#5.a.1)":                                    "",
		"Requested action not taken":                    "",
		"":                                              "",
	} {
		if got := EnhancedCode(text); got != want {
			t.Errorf("EnhancedCode(%q) = %q, want %q", text, got, want)
		}
	}
}

// Through a real SMTP dialogue: the Cause on the returned Error says whose
// problem each refusal is, wherever in the transaction it came.
func TestSMTPErrorsCarryTheirCause(t *testing.T) {
	ss := &scriptServer{pipelining: true, refuse: map[string]string{
		"<relay@example.net>":   "554 5.7.1 <relay@example.net>: Relay access denied",
		"<gone@example.net>":    "550-5.1.1 The email account that you tried to reach does not exist.\r\n550 5.1.1 Please check the address.",
		"<full@example.net>":    "552 5.2.2 <full@example.net>: Recipient address rejected: Mailbox full",
		"<busy@example.net>":    "451 4.7.1 try again later",
		"<blocked@example.net>": "550 Blocked: your IP address is listed",
		"<nocode@example.net>":  "550 Requested action not taken: mailbox unavailable",
	}, dataReply: map[string]string{
		"<big@example.net>":  "552 5.3.4 Message size exceeds fixed limit",
		"<spam@example.net>": "550 5.7.1 Message rejected as spam",
	}}
	startScriptServer(t, ss)
	s := newSender(t, scriptTransport(t, ss.port))
	for _, c := range []struct {
		to    string
		stage Stage
		class Class
		cause Cause
	}{
		{"relay@example.net", StageRcpt, Permanent, CauseSender},
		{"gone@example.net", StageRcpt, Permanent, CauseHardBounce},
		{"full@example.net", StageRcpt, Permanent, CauseSoftBounce},
		{"busy@example.net", StageRcpt, Temporary, CauseTemporary},
		{"blocked@example.net", StageRcpt, Permanent, CauseSender},
		{"nocode@example.net", StageRcpt, Permanent, CauseHardBounce},
		{"big@example.net", StageData, Permanent, CauseSender},
		{"spam@example.net", StageData, Permanent, CauseSender},
		{"ok@example.net", "", NoError, CauseNone},
	} {
		m := sampleMessage(1)
		m.To.Email = c.to
		err := s.Send(context.Background(), m)
		if c.class == NoError {
			if err != nil {
				t.Fatalf("%s: %v", c.to, err)
			}
			continue
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("%s: %v, want an *Error", c.to, err)
		}
		if e.Stage != c.stage || e.Class != c.class || e.Cause != c.cause || CauseOf(err) != c.cause {
			t.Errorf("%s: stage %s class %v cause %v (CauseOf %v), want %s %v %v: %v",
				c.to, e.Stage, e.Class, e.Cause, CauseOf(err), c.stage, c.class, c.cause, err)
		}
		// A wrapped error keeps its cause.
		if got := CauseOf(fmt.Errorf("delivery 7: %w", err)); got != c.cause {
			t.Errorf("%s: wrapped CauseOf = %v", c.to, got)
		}
	}
}

// A refusal at MAIL FROM is the relay refusing us, whatever its text says.
func TestSMTPRefusedSenderIsNeverTheReader(t *testing.T) {
	ss := &scriptServer{pipelining: true, refuse: map[string]string{"<desk@example.org>": "550 5.1.1 <desk@example.org>: User unknown"}}
	startScriptServer(t, ss)
	s := newSender(t, scriptTransport(t, ss.port))
	err := s.Send(context.Background(), sampleMessage(1))
	var e *Error
	if !errors.As(err, &e) || e.Stage != StageMail || e.Cause != CauseSender {
		t.Fatalf("%v (cause %v): want a MAIL error blamed on the sender", err, CauseOf(err))
	}
}

func TestCauseOfOtherErrors(t *testing.T) {
	for _, c := range []struct {
		err  error
		want Cause
	}{
		{nil, CauseNone},
		{context.DeadlineExceeded, CauseTemporary},
		{errors.New("connection reset by peer"), CauseTemporary},
		{fmt.Errorf("x: %w", ErrInvalidMessage), CauseSender},
		{&textproto.Error{Code: 550, Msg: "5.1.1 no such user"}, CauseHardBounce},
		{&textproto.Error{Code: 554, Msg: "5.7.1 relay access denied"}, CauseSender},
		// An Error made without its Cause (by another transport) gets one worked out.
		{&Error{Stage: StageRcpt, Class: Permanent, Code: 550, Err: &textproto.Error{Code: 550, Msg: "5.1.1 no such user"}}, CauseHardBounce},
		{&Error{Stage: StageRcpt, Class: Permanent, Code: 554, Enhanced: "5.7.1"}, CauseSender},
		{&Error{Stage: StageMail, Class: Permanent, Code: 550}, CauseSender},
		{&Error{Stage: StageDial, Class: Temporary, Code: 535}, CauseSender},
		{&Error{Stage: StageDial, Class: Temporary}, CauseTemporary},
		{&Error{Stage: StageBuild, Class: Permanent}, CauseSender},
		{&Error{Stage: StageData, Class: Temporary}, CauseTemporary},
	} {
		if got := CauseOf(c.err); got != c.want {
			t.Errorf("CauseOf(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// FuzzClassifyReply: any reply gives a Cause that agrees with its code's
// class, and relay or block-list wording without an enhanced code never blames
// the reader.
func FuzzClassifyReply(f *testing.F) {
	for _, c := range replyCases {
		code, text := wireReply(f, c.reply)
		f.Add(code, text)
	}
	f.Fuzz(func(t *testing.T, code int, text string) {
		got := ClassifyReply(code, text)
		enhanced := EnhancedCode(text)
		if enhanced != "" && !validEnhanced(enhanced) {
			t.Fatalf("EnhancedCode(%q) = %q, not a status code", text, enhanced)
		}
		switch class := code / 100; {
		case class == 2 || class == 3:
			if got != CauseNone {
				t.Fatalf("%d %q = %v, want none", code, text, got)
			}
		case class == 5:
			if got != CauseHardBounce && got != CauseSoftBounce && got != CauseSender {
				t.Fatalf("%d %q = %v: a 5xx is permanent", code, text, got)
			}
			lower := strings.ToLower(text)
			if enhanced == "" && got == CauseHardBounce && (strings.Contains(lower, "relay") || strings.Contains(lower, "spam") || strings.Contains(lower, "block")) {
				t.Fatalf("%d %q blamed on the reader", code, text)
			}
			if strings.HasPrefix(enhanced, "5.7.") && enhanced != "5.7.17" && enhanced != "5.7.18" && got != CauseSender {
				t.Fatalf("%d %q = %v: a policy code is the sender's", code, text, got)
			}
		case code != 0 || text == "":
			if got != CauseTemporary {
				t.Fatalf("%d %q = %v, want temporary", code, text, got)
			}
		}
	})
}
