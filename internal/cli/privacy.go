package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"publisher/internal/store"
)

// personJSON is what subscribers export EMAIL prints: all that is held about
// one address. Times are RFC 3339 in UTC; a time that never happened is left
// out.
type personJSON struct {
	Email      string          `json:"email"`
	ExportedAt time.Time       `json:"exported_at"`
	Subscriber *subscriberJSON `json:"subscriber"` // null when only events name the address
	History    []changeJSON    `json:"status_history"`
	Deliveries []deliveryJSON  `json:"deliveries"`
	Events     []eventJSON     `json:"events"`
}

type subscriberJSON struct {
	ID            int64      `json:"id"`
	Email         string     `json:"email"`
	Name          string     `json:"name"`
	Topics        []string   `json:"topics"`
	Cadence       string     `json:"cadence"`
	Status        string     `json:"status"`
	Source        string     `json:"source"`
	JoinedAt      *time.Time `json:"joined_at,omitempty"`
	ConfirmedAt   *time.Time `json:"confirmed_at,omitempty"`
	ConsentIP     string     `json:"consent_ip"`
	ConsentSource string     `json:"consent_source"`
	Watermark     *time.Time `json:"watermark,omitempty"`
	LastDigestAt  *time.Time `json:"last_digest_at,omitempty"`
	HardBounces   int        `json:"hard_bounces"`
	UpdatedAt     *time.Time `json:"updated_at,omitempty"`
}

type changeJSON struct {
	At     time.Time `json:"at"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	By     string    `json:"by"`
	Reason string    `json:"reason"`
}

type deliveryJSON struct {
	ID          int64      `json:"id"`
	DigestID    int64      `json:"digest_id"`
	Status      string     `json:"status"`
	Pieces      []string   `json:"pieces"`
	Attempts    int        `json:"attempts"`
	MessageID   string     `json:"message_id,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
	CreatedAt   *time.Time `json:"created_at,omitempty"`
	NextAttempt *time.Time `json:"next_attempt,omitempty"`
	SentAt      *time.Time `json:"sent_at,omitempty"`
}

type eventJSON struct {
	Source     string     `json:"source"`
	ID         string     `json:"id"`
	Kind       string     `json:"kind"`
	Recipient  string     `json:"recipient,omitempty"`
	MessageID  string     `json:"message_id,omitempty"`
	Status     string     `json:"status,omitempty"`
	Diagnostic string     `json:"diagnostic,omitempty"`
	At         *time.Time `json:"at,omitempty"`
	ReceivedAt *time.Time `json:"received_at,omitempty"`
	DeliveryID int64      `json:"delivery_id,omitempty"`
	Effect     string     `json:"effect"`
}

// when is t in UTC, or nil for a time that never happened.
func when(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func (c *subscribersCmd) exportPerson(ctx context.Context, w io.Writer, email string) int {
	email = strings.ToLower(strings.TrimSpace(email))
	p, err := c.db.Export(ctx, email)
	if err != nil {
		return c.fail(err)
	}
	out := personJSON{Email: email, ExportedAt: c.now, History: []changeJSON{}, Deliveries: []deliveryJSON{}, Events: []eventJSON{}}
	if s := p.Subscriber; s.ID != 0 {
		out.Subscriber = &subscriberJSON{ID: s.ID, Email: s.Email, Name: s.Name, Topics: s.Topics, Cadence: s.Cadence, Status: s.Status, Source: s.Source,
			JoinedAt: when(s.JoinedAt), ConfirmedAt: when(s.ConfirmedAt), ConsentIP: s.ConsentIP, ConsentSource: s.ConsentSource,
			Watermark: when(s.Watermark), LastDigestAt: when(s.LastDigestAt), HardBounces: s.HardBounces, UpdatedAt: when(s.UpdatedAt)}
		if out.Subscriber.Topics == nil {
			out.Subscriber.Topics = []string{}
		}
	}
	for _, h := range p.History {
		out.History = append(out.History, changeJSON{At: h.At, From: h.From, To: h.To, By: h.By, Reason: h.Reason})
	}
	for _, d := range p.Deliveries {
		out.Deliveries = append(out.Deliveries, deliveryJSON{ID: d.ID, DigestID: d.DigestID, Status: d.Status, Pieces: d.PieceIDs, Attempts: d.Attempts,
			MessageID: d.MessageID, LastError: d.LastError, CreatedAt: when(d.CreatedAt), NextAttempt: when(d.NextAttempt), SentAt: when(d.SentAt)})
	}
	for _, e := range p.Events {
		out.Events = append(out.Events, eventJSON{Source: e.Source, ID: e.ID, Kind: e.Kind, Recipient: e.Recipient, MessageID: e.MessageID,
			Status: e.Status, Diagnostic: e.Diagnostic, At: when(e.At), ReceivedAt: when(e.ReceivedAt), DeliveryID: e.DeliveryID, Effect: e.Effect})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return c.fail(err)
	}
	return ExitOK
}

func (c *subscribersCmd) erase(ctx context.Context, args []string) int {
	fs := c.e.flags("subscribers erase", "EMAIL", `Delete all that is held about one address, at the person's request: the
subscriber, every status change, every delivery and every bounce, complaint
or webhook event about it. Only a keyed hash of the address is kept (HMAC-
SHA256 under a key of this database's own), so that no list file, import or
sign-up adds it again; subscribers add --after-erasure does, when the person
asks to come back. It asks for nothing, and says what it deleted. Remove the
address from the list files too: each run warns while one still lists it.
Logs written before stay as they are: rotate them as your policy says.`)
	positional, st := c.openWithArg(ctx, fs, args)
	if st >= 0 {
		return st
	}
	defer c.db.Close()
	email := strings.ToLower(strings.TrimSpace(positional[0]))
	res, err := c.db.Erase(ctx, email, c.now)
	if errors.Is(err, store.ErrInFlight) {
		return c.fail(fmt.Errorf("%w; nothing was erased: erase it again once the run is over", err))
	}
	if err != nil {
		return c.fail(err)
	}
	if !res.Subscriber && res.Events == 0 {
		fmt.Fprintf(c.e.stdout, "%s: nothing was held; its keyed hash is kept, so that no list file or sign-up adds it\n", email)
		return ExitOK
	}
	what := []string{}
	if res.Subscriber {
		what = append(what, "the subscriber")
	}
	what = append(what, plural(res.History, "status change"), plural(res.Deliveries, "delivery"), plural(res.Events, "event"))
	fmt.Fprintf(c.e.stdout, "%s: erased %s; its keyed hash is kept, so that no list file or sign-up adds it again\n", email, strings.Join(what, ", "))
	return ExitOK
}

func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "y") {
		return fmt.Sprintf("%d %sies", n, strings.TrimSuffix(noun, "y"))
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func (c *subscribersCmd) unsuppress(ctx context.Context, args []string) int {
	fs := c.e.flags("subscribers unsuppress", "EMAIL --reason TEXT", `Lift a suppression (unsubscribed, bounced, complained, removed): the address
is mailed again. It goes back to active, or to pending when it signed up on
the web and never confirmed; its hard-bounce count starts afresh. The reason
is recorded in its history (subscribers history EMAIL). Lift an unsubscribe
or a complaint only when the reader has asked for it.`)
	reason := fs.String("reason", "", "why (required): recorded in the address's history")
	positional, st := fs.parse(args, 1, 1)
	if st >= 0 {
		return st
	}
	if strings.TrimSpace(*reason) == "" {
		return fs.fail("--reason is required: say why the suppression is lifted")
	}
	if st := c.open(ctx); st >= 0 {
		return st
	}
	defer c.db.Close()
	email := strings.ToLower(strings.TrimSpace(positional[0]))
	before, err := c.db.SubscriberByEmail(ctx, email)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return c.fail(err)
	}
	s, err := c.db.Unsuppress(ctx, email, *reason, c.now)
	if err != nil {
		return c.fail(err)
	}
	fmt.Fprintf(c.e.stdout, "%s: %s -> %s\n", s.Email, before.Status, s.Status)
	return ExitOK
}

func (c *subscribersCmd) history(ctx context.Context, args []string) int {
	fs := c.e.flags("subscribers history", "EMAIL", `Print every status change of one address, oldest first, tab-separated: when,
from, to, by whom or what (sync: the list files; web: the reader on the site;
cli: an operator; send: the SMTP server's answers; mailbox: a bounce or
complaint report; webhook: an email service provider; migration: the status
when the history began), and why.`)
	positional, st := c.openWithArg(ctx, fs, args)
	if st >= 0 {
		return st
	}
	defer c.db.Close()
	s, err := c.db.SubscriberByEmail(ctx, positional[0])
	if errors.Is(err, store.ErrNotFound) {
		// Say whether it was erased, or whether only events name it.
		if _, err = c.db.Export(ctx, positional[0]); err == nil {
			err = fmt.Errorf("%s is no subscriber; events name it (subscribers export shows them)", positional[0])
		}
	}
	if err != nil {
		return c.fail(err)
	}
	changes, err := c.db.StatusHistory(ctx, s.ID)
	if err != nil {
		return c.fail(err)
	}
	tw := tabwriter.NewWriter(c.e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AT\tFROM\tTO\tBY\tREASON")
	for _, ch := range changes {
		from := ch.From
		if from == "" {
			from = "(new)"
		}
		reason := strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f {
				return ' ' // a server's words may hold tabs and line breaks
			}
			return r
		}, ch.Reason)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", ch.At.UTC().Format(time.RFC3339), from, ch.To, ch.By, reason)
	}
	if err := tw.Flush(); err != nil {
		return c.fail(err)
	}
	return ExitOK
}
