package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"

	"publisher/internal/mail"
	"publisher/internal/store"
	"publisher/internal/valid"
)

const (
	maxFormBytes = 16 << 10
	maxNameRunes = 100
	maxTopics    = 50
)

// subscribe handles POST /subscribe: double opt-in. Whatever the state of the
// address, a valid request gets the same page at the same speed: the answer
// comes before anything that depends on the address (looking it up, recording
// it, the confirmation email), which is queued, so neither the body nor the
// timing tells who is subscribed.
func (s *Server) subscribe(w http.ResponseWriter, r *http.Request) {
	if err := s.csrf.Check(r); err != nil {
		s.metrics.event("csrf_refused")
		s.renderError(w, r, http.StatusForbidden, "Request refused",
			"This form was sent from another site. Open the page on our site and submit it there.")
		return
	}
	ip := clientIP(r, s.opts.TrustedProxies)
	if !s.perClient.Allow(rateKey(ip), time.Now()) {
		s.metrics.event("rate_limited")
		w.Header().Set("Retry-After", "60")
		s.renderError(w, r, http.StatusTooManyRequests, "Too many requests",
			"Please wait a minute before signing up again.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.renderError(w, r, http.StatusBadRequest, "Could not read the form", "The form data was malformed or too large.")
		return
	}
	in, problems := s.validateSignup(r.PostForm)
	if len(problems) > 0 {
		s.metrics.event("subscribe_invalid")
		s.renderError(w, r, http.StatusBadRequest, "Please check the form", "", problems...)
		return
	}
	in.ConsentIP = ip
	if !s.signups.reserve() {
		// Full (a flood) or shutting down: the same answer for every address.
		s.metrics.event("subscribe_queue_full")
		w.Header().Set("Retry-After", "60")
		s.renderError(w, r, http.StatusServiceUnavailable, "Please try again later", "We could not record your request just now.")
		return
	}
	s.metrics.event("subscribe")
	s.render(w, r, http.StatusOK, "subscribed", s.newPage())
	// The work starts once the answer is on its way, so it does not compete with
	// this answer for the processor either.
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	s.signups.push(signupJob{in: in, at: time.Now()})
}

// rateKey groups IPv6 clients by /64, the block one customer usually holds.
func rateKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || a.Is4() {
		return ip
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// signup records the request and sends the confirmation email when the
// address may receive one. It runs on the sign-up queue, after the answer.
func (s *Server) signup(ctx context.Context, j signupJob) error {
	in, now := j.in, j.at
	existing, err := s.opts.Store.SubscriberByEmail(ctx, in.Email)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return fmt.Errorf("look up %s: %w", in.Email, err)
	case existing.Status == store.StatusActive || store.IsSuppressed(existing.Status):
		// Already subscribed, or the reader (or a bounce) said stop: no email, and
		// no change a stranger could make to their settings.
		s.logger.Info("subscribe: address already known, nothing sent", "status", existing.Status)
		return nil
	}
	sub, err := s.opts.Store.AddSubscriber(ctx, in, now)
	if errors.Is(err, store.ErrErased) {
		// Erased at the reader's request: not added again, whoever asks.
		s.logger.Info("subscribe: address erased on request, not added; nothing sent")
		return nil
	}
	if err != nil {
		return fmt.Errorf("add %s: %w", in.Email, err)
	}
	if sub.Status != store.StatusPending {
		return nil
	}
	if !s.perEmail.Allow(sub.Email, now) {
		// Someone keeps submitting this address: stop flooding its inbox.
		s.logger.Warn("subscribe: confirmation email limit reached for an address", "subscriber", sub.ID)
		return nil
	}
	msg, err := s.confirmationMessage(sub, now)
	if err != nil {
		return err
	}
	sendCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := s.opts.Mailer.Send(sendCtx, msg); err != nil {
		s.metrics.event("confirmation_failed")
		return fmt.Errorf("send confirmation email to subscriber %d: %w", sub.ID, err)
	}
	s.metrics.event("confirmation_sent")
	s.logger.Info("confirmation email sent", "subscriber", sub.ID)
	return nil
}

// confirmData is what confirm.txt.tmpl and confirm.html.tmpl see.
type confirmData struct {
	SiteTitle, HomeURL, Name, ConfirmURL, ConfirmTTL string
}

// confirmTemplates are the two parts of the confirmation email.
type confirmTemplates struct {
	text *template.Template
	html *htmltemplate.Template
}

func parseConfirmTemplates(fsys fs.FS) (confirmTemplates, error) {
	var c confirmTemplates
	b, err := fs.ReadFile(fsys, "confirm.txt.tmpl")
	if err == nil {
		c.text, err = template.New("confirm.txt.tmpl").Parse(string(b))
	}
	if err != nil {
		return c, fmt.Errorf("web: template confirm.txt.tmpl: %w", err)
	}
	b, err = fs.ReadFile(fsys, "confirm.html.tmpl")
	if err == nil {
		c.html, err = htmltemplate.New("confirm.html.tmpl").Parse(string(b))
	}
	if err != nil {
		return c, fmt.Errorf("web: template confirm.html.tmpl: %w", err)
	}
	return c, nil
}

// ConfirmURL returns the confirmation link for a subscriber, valid until expires.
func (s *Server) ConfirmURL(subscriberID int64, expires time.Time) string {
	return s.opts.BaseURL + "confirm?token=" + s.opts.Signer.Sign(PurposeConfirm, subscriberID, expires)
}

func (s *Server) confirmationMessage(sub store.Subscriber, now time.Time) (*mail.Message, error) {
	data := confirmData{
		SiteTitle:  s.opts.SiteTitle,
		HomeURL:    s.opts.BaseURL,
		Name:       sub.Name,
		ConfirmURL: s.ConfirmURL(sub.ID, now.Add(s.opts.ConfirmTTL)),
		ConfirmTTL: humanDuration(s.opts.ConfirmTTL),
	}
	var text, html bytes.Buffer
	if err := s.confirm.text.Execute(&text, data); err != nil {
		return nil, fmt.Errorf("render confirm.txt.tmpl: %w", err)
	}
	if err := s.confirm.html.Execute(&html, data); err != nil {
		return nil, fmt.Errorf("render confirm.html.tmpl: %w", err)
	}
	nonce := make([]byte, 8)
	_, _ = rand.Read(nonce)
	msg := &mail.Message{
		From:      s.opts.From,
		To:        mail.Address{Name: sub.Name, Email: sub.Email},
		ReplyTo:   s.opts.ReplyTo,
		Subject:   "Confirm your subscription to " + s.opts.SiteTitle,
		Date:      now,
		MessageID: fmt.Sprintf("confirm.%d.%s@%s", sub.ID, hex.EncodeToString(nonce), messageIDDomain(s.opts.From.Email, s.base.Hostname())),
		ListID:    s.opts.ListID,
		Text:      text.String(),
		HTML:      html.String(),
	}
	if err := msg.Validate(); err != nil {
		return nil, fmt.Errorf("confirmation email for subscriber %d: %w", sub.ID, err)
	}
	return msg, nil
}

// messageIDDomain takes the domain of the From address, so Message-IDs are on
// our own domain, falling back to the site's host.
func messageIDDomain(from, host string) string {
	if _, domain, ok := strings.Cut(from, "@"); ok && isDotAtomASCII(domain) {
		return domain
	}
	if isDotAtomASCII(host) {
		return host
	}
	return "publisher.invalid"
}

func isDotAtomASCII(s string) bool {
	if s == "" || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") || strings.Contains(s, "..") {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// validateSignup checks the sign-up form; every problem is a sentence for the
// page (escaped there), naming the field.
func (s *Server) validateSignup(form map[string][]string) (store.SubscriberInput, []string) {
	var problems []string
	in := store.SubscriberInput{Source: store.SourceWeb, Status: store.StatusPending, ConsentSource: store.SourceWeb}

	email := strings.TrimSpace(first(form["email"]))
	if email, problem := validEmail(email); problem != "" {
		problems = append(problems, "Email: "+problem)
	} else {
		in.Email = email
	}

	name := strings.TrimSpace(first(form["name"]))
	switch {
	case !utf8.ValidString(name):
		problems = append(problems, "Name: not valid text.")
	case valid.Line(name) != nil:
		problems = append(problems, "Name: line breaks and control characters are not allowed.")
	case utf8.RuneCountInString(name) > maxNameRunes:
		problems = append(problems, fmt.Sprintf("Name: at most %d characters.", maxNameRunes))
	default:
		in.Name = name
	}

	topics, topicProblems := s.validTopics(form["topics"], nil)
	problems = append(problems, topicProblems...)
	in.Topics = topics

	cadence := strings.TrimSpace(first(form["cadence"]))
	if cadence == "" {
		cadence = s.opts.DefaultCadence
	}
	if !valid.Cadence(cadence) {
		problems = append(problems, "Frequency: choose immediate, daily or weekly.")
	} else {
		in.Cadence = cadence
	}
	return in, problems
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// validEmail returns the address, or a sentence saying what is wrong with it.
func validEmail(email string) (string, string) {
	addr, err := valid.Email(email)
	switch {
	case err == nil:
		return addr, ""
	case errors.Is(err, valid.ErrEmailEmpty):
		return "", "please enter your email address."
	case errors.Is(err, valid.ErrEmailControl):
		return "", "line breaks and control characters are not allowed."
	case errors.Is(err, valid.ErrEmailTooLong):
		return "", fmt.Sprintf("at most %d characters.", valid.MaxEmailLen)
	}
	return "", "this is not an email address."
}

// validTopics splits checkbox values (or an "a;b" list from a script) and checks
// each against the known topics, returning their canonical spelling.
// held are topics the subscriber already has, accepted even if no longer listed.
func (s *Server) validTopics(values, held []string) ([]string, []string) {
	var known []string
	if s.opts.Topics != nil {
		known = s.opts.Topics()
	}
	if len(known) > 0 {
		known = append(slices.Clone(known), held...)
	}
	var topics, problems []string
	seen := map[string]bool{}
	for _, v := range values {
		for _, t := range strings.FieldsFunc(v, func(r rune) bool { return r == ';' || r == ',' }) {
			t, err := valid.Topic(t)
			if err != nil {
				problems = append(problems, "Topics: a topic name is too long or holds control characters.")
				continue
			}
			if t == "" {
				continue
			}
			if len(known) > 0 {
				canonical, ok := lookupFold(known, t)
				if !ok {
					problems = append(problems, fmt.Sprintf("Topics: %q is not one of our topics.", t))
					continue
				}
				t = canonical
			}
			if key := strings.ToLower(t); !seen[key] {
				seen[key] = true
				topics = append(topics, t)
			}
		}
	}
	if len(topics) > maxTopics {
		problems = append(problems, fmt.Sprintf("Topics: at most %d.", maxTopics))
	}
	return topics, problems
}

func lookupFold(list []string, s string) (string, bool) {
	for _, k := range list {
		if strings.EqualFold(k, s) {
			return k, true
		}
	}
	return "", false
}
