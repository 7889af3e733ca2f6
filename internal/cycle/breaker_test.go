package cycle

import (
	"errors"
	"fmt"
	"net/textproto"
	"strings"
	"syscall"
	"testing"
	"time"

	"publisher/internal/mail"
)

// reply builds the error a Sender returns for an SMTP answer at stage.
func replyErr(stage mail.Stage, code int, text string) error {
	class := mail.Temporary
	if code >= 500 {
		class = mail.Permanent
	}
	return &mail.Error{Recipient: "r@example.org", Stage: stage, Class: class, Code: code, Enhanced: mail.EnhancedCode(text),
		Err: fmt.Errorf("RCPT TO:<r@example.org>: %w", &textproto.Error{Code: code, Msg: text})}
}

var (
	relayDenied  = replyErr(mail.StageRcpt, 554, "5.7.1 relay access denied")
	userUnknown  = replyErr(mail.StageRcpt, 550, "5.1.1 user unknown")
	mailboxFull  = replyErr(mail.StageRcpt, 552, "5.2.2 mailbox full")
	greylisted   = replyErr(mail.StageRcpt, 451, "4.7.1 greylisted, try later")
	senderQuota  = replyErr(mail.StageMail, 451, "4.7.1 sending quota exceeded")
	connRefused  = &mail.Error{Stage: mail.StageDial, Class: mail.Temporary, Err: fmt.Errorf("smtp 127.0.0.1:2525: %w", syscall.ECONNREFUSED)}
	droppedInTx  = &mail.Error{Stage: mail.StageData, Class: mail.Temporary, Err: errors.New("DATA: EOF")}
	stoppedByRun = &mail.Error{Stage: mail.StageData, Class: mail.Temporary, Err: fmt.Errorf("%w: context canceled", mail.ErrNotSent)}
)

func TestJudgeTellsTheRelayFromTheReader(t *testing.T) {
	for _, c := range []struct {
		err  error
		want verdict
	}{
		{nil, accepted},
		{relayDenied, refused},
		{senderQuota, refused},
		{replyErr(mail.StageRcpt, 554, "no valid recipients, relaying denied"), refused},
		{userUnknown, neutral},
		{mailboxFull, neutral},
		{greylisted, neutral},
		{connRefused, unreached},
		{droppedInTx, unreached},
		{replyErr(mail.StageMail, 421, "4.3.2 shutting down"), unreached},
		{stoppedByRun, neutral},
		{fmt.Errorf("build: %w", mail.ErrInvalidMessage), neutral},
	} {
		if got := judge(c.err); got != c.want {
			t.Errorf("judge(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// to is err, a *mail.Error, about recipient i of a list spread over five domains.
func to(err error, i int) error {
	e := *err.(*mail.Error)
	e.Recipient = fmt.Sprintf("reader%d@d%d.example", i, i%5)
	return &e
}

// testBreaker is a breaker on a clock the test moves.
func testBreaker(lastSent time.Time) (*breaker, *time.Time) {
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	b := newBreaker("the relay", lastSent)
	b.clock = func() time.Time { return now }
	return b, &now
}

func TestBreakerTripsOnTenRefusalsInARow(t *testing.T) {
	b, _ := testBreaker(time.Time{})
	for i := range breakerSample - 1 {
		if b.observe(to(relayDenied, i)) {
			t.Fatalf("tripped after %d refusals", i+1)
		}
	}
	if !b.observe(to(relayDenied, breakerSample)) {
		t.Fatal("ten refusals in a row did not trip it")
	}
	err := b.err()
	if !errors.Is(err, ErrSendingStopped) {
		t.Fatalf("err = %v, want ErrSendingStopped", err)
	}
	for _, want := range []string{"the relay refused every message", "(10 in a row, none accepted)", "554 5.7.1 relay access denied", "nobody was suppressed", "run again"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("not one line: %q", err)
	}
}

// Refusals for one domain (its policy, say, with its readers together in the
// list) stop the send only at fifty in a row: a relay that refuses the desk
// still trips it on a list all at one domain, and the readers after a block of
// ten at a refusing domain still get their digest.
func TestBreakerWantsSeveralDomainsOrFiftyRefusals(t *testing.T) {
	b, _ := testBreaker(time.Time{})
	for i := range breakerOneDomain - 1 {
		if b.observe(relayDenied) {
			t.Fatalf("tripped after %d refusals for one domain", i+1)
		}
	}
	if !b.observe(relayDenied) {
		t.Fatal("fifty refusals in a row for one domain did not trip it")
	}
	two, _ := testBreaker(time.Time{})
	for i := range 4 * breakerSample {
		err := to(relayDenied, i%2) // two domains
		if two.observe(err) {
			t.Fatalf("tripped after %d refusals for two domains", i+1)
		}
	}
}

// One bad recipient, a few refusals now and then, or a whole list of dead
// addresses never trip it: only the relay failing as a whole does.
func TestBreakerIgnoresWhatConcernsOneReader(t *testing.T) {
	b, now := testBreaker(time.Time{})
	for i := range 2000 {
		var err error
		switch {
		case i%10 == 3:
			err = to(relayDenied, i) // a tenth of the messages refused on the sender's side
		case i%7 == 0:
			err = userUnknown
		case i%5 == 0:
			err = greylisted
		}
		if b.observe(err) {
			t.Fatalf("tripped at attempt %d", i)
		}
		*now = now.Add(10 * time.Millisecond)
	}
	for i := range 500 {
		for _, err := range []error{userUnknown, mailboxFull, greylisted, stoppedByRun} {
			if b.observe(err) {
				t.Fatalf("tripped on answers about readers (%d: %v)", i, err)
			}
		}
	}
	// Nine refusals, then one message accepted: the count starts again.
	for range 3 {
		for i := range breakerSample - 1 {
			b.observe(to(relayDenied, i))
		}
		if b.observe(nil) {
			t.Fatal("tripped with a message accepted")
		}
	}
}

// Connections that fail stop the send only once they have failed for a while:
// a relay restarting does not, a relay that is down does, in seconds.
func TestBreakerGivesConnectionFailuresTime(t *testing.T) {
	b, now := testBreaker(time.Time{})
	for range 50 {
		if b.observe(connRefused) {
			t.Fatal("tripped at once on refused connections")
		}
		*now = now.Add(50 * time.Millisecond)
	}
	if b.observe(nil) {
		t.Fatal("tripped on an acceptance")
	}
	// Down for good: the streak starts over, and trips once it spans breakerSpan.
	start := *now
	for !b.observe(connRefused) {
		*now = now.Add(250 * time.Millisecond)
		if now.Sub(start) > time.Minute {
			t.Fatal("never tripped on a relay that refuses every connection")
		}
	}
	if took := now.Sub(start); took < breakerSpan || took > breakerSpan+time.Second {
		t.Errorf("tripped after %v of failures, want about %v", took, breakerSpan)
	}
	err := b.err()
	for _, want := range []string{"the relay could not be reached for 5", "attempts in a row", "connection refused", "nobody was suppressed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
}

// A quota refusal to MAIL FROM after a share was accepted: ten in a row trip it.
func TestBreakerTripsWhenTheRelayTurnsMidRun(t *testing.T) {
	b, _ := testBreaker(time.Time{})
	for range 300 {
		b.observe(nil)
	}
	tripped := false
	for i := range breakerSample {
		tripped = b.observe(to(senderQuota, i))
	}
	if !tripped || !strings.Contains(b.err().Error(), "451 4.7.1 sending quota exceeded") {
		t.Fatalf("tripped %v: %v", tripped, b.err())
	}
}

// works says whether a failure may be charged to its delivery: only when the
// relay has delivered since the delivery began failing, and is not failing now.
func TestBreakerWorksOnlyWhenTheRelayDelivers(t *testing.T) {
	yesterday := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	b, _ := testBreaker(yesterday)
	if !b.works(time.Time{}) || !b.works(yesterday.Add(-time.Hour)) || !b.works(yesterday) {
		t.Error("a failure before the last acceptance is not the delivery's own")
	}
	if b.works(yesterday.Add(time.Hour)) {
		t.Error("failing since after the last acceptance, nothing accepted since: charged")
	}
	b.observe(nil)
	if !b.works(yesterday.Add(time.Hour)) {
		t.Error("accepted in this run, yet not charged")
	}
	b.observe(relayDenied)
	if b.works(time.Time{}) {
		t.Error("charged while the relay is refusing")
	}
	fresh, _ := testBreaker(time.Time{})
	if fresh.works(time.Time{}) {
		t.Error("nothing ever accepted, yet charged")
	}
}

// After each failed connection attempt the next waits, longer for each one in
// a row (whichever sender met it), until a message is accepted.
func TestBreakerPacesFailedConnections(t *testing.T) {
	b, now := testBreaker(time.Time{})
	var got []time.Duration
	for range 7 {
		b.noteDial(connRefused)
		got = append(got, b.dialWait())
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond, 2 * time.Second, 2 * time.Second}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("waits %v, want %v", got, want)
	}
	*now = now.Add(time.Second)
	if w := b.dialWait(); w != time.Second {
		t.Errorf("a second later: wait %v, want 1s", w)
	}
	for _, err := range []error{relayDenied, droppedInTx, userUnknown} {
		b.noteDial(err)
	}
	if w := b.dialWait(); w != time.Second {
		t.Errorf("failures other than connecting changed the wait to %v", w)
	}
	b.observe(nil)
	if w := b.dialWait(); w != 0 {
		t.Errorf("after an acceptance: wait %v, want none", w)
	}
	b.noteDial(connRefused)
	if w := b.dialWait(); w != dialPause {
		t.Errorf("first failure after an acceptance: wait %v, want %v", w, dialPause)
	}
}
