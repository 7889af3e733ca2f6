package mail

import (
	"errors"
	"net/textproto"
	"strconv"
	"strings"
)

// Cause says whose problem a failed delivery is: the reader's mailbox, or the
// sender, the message or a server on the way. Class says whether to try again;
// Cause says whether the failure may count against the reader. Only
// CauseHardBounce may: a relay that refuses to relay, a block list or a message
// too big must never cost a reader their subscription.
type Cause int

const (
	// CauseNone: no failure.
	CauseNone Cause = iota
	// CauseTemporary: a 4xx reply, or no reply at all (dial failure, timeout,
	// dropped connection). Try again later.
	CauseTemporary
	// CauseSoftBounce: the reader's mailbox exists but takes nothing for now
	// (5.2.2 mailbox full, over quota, 5.4.7 expired in a queue). Try again
	// later; it is not a hard bounce.
	CauseSoftBounce
	// CauseHardBounce: the reader's address is dead (5.1.x, 5.2.1; 550, 551, 553
	// without an enhanced code). Counts toward the bounce limit.
	CauseHardBounce
	// CauseSender: a permanent refusal of the sender, the message or the
	// relay (5.7.x policy, relay, authentication, block lists; 5.3.x, 5.5.x,
	// 5.6.x; 552 or 554 without an enhanced code). Says nothing about the
	// reader: keep the delivery for a run after the cause is fixed.
	CauseSender
)

func (c Cause) String() string {
	switch c {
	case CauseNone:
		return "none"
	case CauseTemporary:
		return "temporary"
	case CauseSoftBounce:
		return "soft-bounce"
	case CauseHardBounce:
		return "hard-bounce"
	case CauseSender:
		return "sender"
	}
	return "Cause(" + strconv.Itoa(int(c)) + ")"
}

// CauseOf says whose problem err is. An Error carries its Cause (one made
// without it gets it worked out from its stage and reply); a bare SMTP reply
// is judged by ClassifyReply; any other error is a connection that failed, so
// temporary.
func CauseOf(err error) Cause {
	if err == nil {
		return CauseNone
	}
	var e *Error
	if errors.As(err, &e) {
		if e.Cause != CauseNone {
			return e.Cause
		}
		return errorCause(e)
	}
	if errors.Is(err, ErrInvalidMessage) {
		return CauseSender
	}
	if code := Code(err); code != 0 {
		return ClassifyReply(code, replyText(err))
	}
	return CauseTemporary
}

// errorCause works out e's Cause from where it failed. Only a reply to RCPT TO
// or DATA can be about the reader: before that the server has not heard of them.
func errorCause(e *Error) Cause {
	switch e.Stage {
	case StageRcpt, StageData:
		if e.Code != 0 {
			enhanced := e.Enhanced
			if enhanced == "" {
				enhanced = EnhancedCode(replyText(e.Err))
			}
			return ClassifyStatus(e.Code, enhanced, replyText(e.Err))
		}
	case StageMail, StageDial:
		// MAIL FROM, EHLO, STARTTLS or AUTH refused: the relay refuses us.
		if e.Code >= 500 && e.Code < 600 {
			return CauseSender
		}
	}
	if e.Class == Permanent {
		return CauseSender // a message we cannot build is ours to mend
	}
	return CauseTemporary
}

// replyText is the text of the SMTP reply err carries, or "".
func replyText(err error) string {
	var tp *textproto.Error
	if errors.As(err, &tp) {
		return tp.Msg
	}
	return ""
}

// ClassifyReply judges one SMTP reply by its code and its text, whose first
// word may be an RFC 3463 enhanced status code ("5.1.1"); qmail's trailing
// "(#5.1.1)" is understood too. Code 0 means no reply: temporary.
func ClassifyReply(code int, text string) Cause {
	return ClassifyStatus(code, EnhancedCode(text), text)
}

// ClassifyStatus judges a failure by its reply code (0 when unknown, as in a
// DSN without an SMTP diagnostic), its enhanced status code ("" when none) and
// the reply's text.
//
// The enhanced code decides where it is unambiguous. Where it is missing or
// says little (X.0.0, or "other" details such as 5.2.0, 5.5.0), the text is
// read: policy, relay, block-list and authentication wording first, since
// blaming the reader for those would suppress a whole list; then "mailbox
// full"; then "user unknown" and its many spellings; and last RFC 5321's
// meaning of the bare code (550, 551, 553 and 556 are the mailbox, the rest
// the sender or the message).
func ClassifyStatus(code int, enhanced, text string) Cause {
	class := code / 100
	if code == 0 && enhanced != "" {
		class = int(enhanced[0] - '0')
	}
	switch class {
	case 2, 3:
		return CauseNone
	case 5:
	default:
		return CauseTemporary
	}
	lower := strings.ToLower(text)
	// A server that delays its sender checks until RCPT (Postfix does by
	// default) refuses the sender there, under any code.
	if containsAny(lower, senderAddressPhrases) {
		return CauseSender
	}
	subject, detail, ok := splitEnhanced(enhanced)
	if ok {
		if c, decided := byEnhanced(subject, detail, lower); decided {
			return c
		}
	}
	switch {
	case containsAny(lower, senderPhrases):
		return CauseSender
	case containsAny(lower, mailboxFullPhrases):
		return CauseSoftBounce
	case containsAny(lower, hardBouncePhrases):
		return CauseHardBounce
	}
	if ok && subject != 0 {
		// An "other" detail (X.Y.0) with no telling words: the subject's leaning.
		if subject == 1 {
			return CauseHardBounce
		}
		return CauseSender
	}
	switch code {
	case 550, 551, 553, 556: // mailbox unavailable, not local, name not allowed, domain takes no mail (RFC 7504)
		return CauseHardBounce
	}
	return CauseSender
}

// byEnhanced classifies by the enhanced code's subject and detail (RFC 3463 and
// the IANA registry), reporting false where the code leaves it open.
func byEnhanced(subject, detail int, lower string) (Cause, bool) {
	if detail == 0 {
		return 0, false
	}
	switch subject {
	case 1: // addressing
		switch detail {
		case 7, 8: // the sender's address, refused at RCPT by a server delaying its checks
			return CauseSender, true
		case 5, 9: // "destination address valid", "relayed to non-compliant mailer": not about the mailbox
			return CauseSender, true
		}
		return CauseHardBounce, true // bad mailbox, bad domain, bad syntax, moved, null MX (5.1.10)
	case 2: // mailbox
		switch detail {
		case 1, 4: // disabled; mailing-list expansion failed
			return CauseHardBounce, true
		case 2: // full
			return CauseSoftBounce, true
		}
		return CauseSender, true // 5.2.3 message too long for the mailbox
	case 4: // network and routing
		switch {
		case detail == 4: // unable to route: the reader's domain has no mail host
			return CauseHardBounce, true
		case detail == 7: // delivery time expired in a queue
			return CauseSoftBounce, true
		case detail == 1 && strings.Contains(lower, "recipient address rejected"):
			// Exchange Online's directory check answers an unknown recipient
			// with "550 5.4.1 Recipient address rejected: Access denied".
			return CauseHardBounce, true
		}
		return CauseSender, true
	case 3, 5, 6: // mail system, protocol, content
		return CauseSender, true
	case 7: // security and policy
		switch detail {
		case 17, 18: // mailbox or domain has changed owner (RFC 7293)
			return CauseHardBounce, true
		}
		return CauseSender, true
	}
	return 0, false
}

// Phrases are matched in lower case, as substrings of the reply text.
var (
	senderAddressPhrases = []string{
		"sender address rejected", "sender verify", "sender verification", "sender domain",
		"sender address invalid", "sender denied",
	}
	senderPhrases = []string{
		"relay", "spam", "junk", "block", "blacklist", "black list", "denylist", "deny list",
		"rbl", "spamhaus", "spamcop", "barracuda", "sorbs", "reputation", "policy", "policies",
		"banned", "denied", "prohibit", "not permitted", "not allowed to send",
		"authenticat", "authoriz", "auth required", "spf", "dkim", "dmarc", "ptr record",
		"reverse dns", "rdns", "reverse lookup", "helo", "ehlo", "tls required", "starttls",
		"encryption required", "virus", "malware", "phish", "content", "message size",
		"too large", "too big", "size limit", "exceeds the maximum", "exceeds maximum",
		"message length", "rate limit", "ratelimit", "too many", "throttl", "unsolicited",
		"bulk", "suspicious", "abuse", "rcpthosts", "not local host", "not a gateway",
		"message rejected", "message refused", "sending quota", "sending limit", "send limit",
		"daily quota", "limit exceeded", "suspended", "client host", "your ip", "ip address",
		"sender",
	}
	mailboxFullPhrases = []string{
		"mailbox full", "mailbox is full", "mailbox has exceeded", "full mailbox", "inbox is full",
		"inbox full", "over quota", "overquota", "quota", "insufficient storage",
		"storage allocation", "storage space", "out of storage", "mailbox size limit",
	}
	hardBouncePhrases = []string{
		"user unknown", "unknown user", "unknown recipient", "recipient unknown", "no such user",
		"no such recipient", "no such mailbox", "no such address", "no mailbox", "mailbox not found",
		"mailbox unavailable", "mailbox does not exist", "does not exist", "doesn't exist",
		"not exist", "invalid recipient", "invalid mailbox", "invalid address", "recipient not found",
		"user not found", "address not found", "unrouteable address", "unroutable address",
		"not our customer", "no longer", "account disabled", "account has been disabled",
		"account is disabled", "mailbox disabled", "mailbox is disabled", "disabled", "inactive",
		"deactivated", "not a valid", "not listed in", "unknown local part", "unknown address",
		"doesn't have a", "does not have a", "recipient address rejected", "not found",
	}
)

func containsAny(s string, phrases []string) bool {
	for _, p := range phrases {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// EnhancedCode finds an RFC 3463 status code ("5.1.1") in a reply's text: its
// first word (after an optional "#" or a repeated reply code), or else qmail's "(#5.1.1)" at the end.
// It returns "" when there is none.
func EnhancedCode(text string) string {
	first, _, _ := strings.Cut(text, "\n")
	word, rest, _ := strings.Cut(strings.TrimSpace(first), " ")
	if len(word) == 3 && strings.Trim(word, "0123456789") == "" {
		// The reply code given twice ("554 554 5.7.1 ..."), as some relays
		// quote a remote server's answer.
		word, _, _ = strings.Cut(strings.TrimSpace(rest), " ")
	}
	if code := strings.TrimPrefix(word, "#"); validEnhanced(code) {
		return code
	}
	if i := strings.LastIndex(text, "(#"); i >= 0 {
		if j := strings.IndexByte(text[i:], ')'); j > 0 && validEnhanced(text[i+2:i+j]) {
			return text[i+2 : i+j]
		}
	}
	return ""
}

// validEnhanced checks class.subject.detail: class 2, 4 or 5, subject and
// detail of one to three digits.
func validEnhanced(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || strings.IndexByte("245", parts[0][0]) < 0 {
		return false
	}
	for _, p := range parts[1:] {
		if p == "" || len(p) > 3 || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return true
}

// splitEnhanced returns the subject and detail of a valid enhanced code.
func splitEnhanced(code string) (subject, detail int, ok bool) {
	if !validEnhanced(code) {
		return 0, 0, false
	}
	parts := strings.Split(code, ".")
	subject, _ = strconv.Atoi(parts[1])
	detail, _ = strconv.Atoi(parts[2])
	return subject, detail, true
}
