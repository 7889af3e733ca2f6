package web

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"publisher/internal/store"
	"publisher/internal/valid"
)

// badToken is the one answer to a forged, altered, expired or stale link: which
// check failed is nobody's business.
func (s *Server) badToken(w http.ResponseWriter, r *http.Request) {
	s.metrics.event("bad_token")
	s.renderError(w, r, http.StatusBadRequest, "This link is not valid",
		"It may have expired, been cut short by your mail program, or been changed. Please use the latest link we sent you, or sign up again on the site.")
}

// tokenSubscriber checks the token for purpose and loads its subscriber. It
// answers the request itself and returns false when that fails.
func (s *Server) tokenSubscriber(w http.ResponseWriter, r *http.Request, purpose, tok string) (store.Subscriber, bool) {
	id, err := s.opts.Signer.Verify(purpose, tok, time.Now())
	if err != nil {
		s.badToken(w, r)
		return store.Subscriber{}, false
	}
	sub, err := s.opts.Store.SubscriberByID(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		s.badToken(w, r)
		return store.Subscriber{}, false
	}
	if err != nil {
		s.logger.Error("load subscriber", "subscriber", id, "err", err)
		s.renderError(w, r, http.StatusServiceUnavailable, "Please try again later", "We could not look up your subscription just now.")
		return store.Subscriber{}, false
	}
	return sub, true
}

// confirmGet handles GET /confirm?token=: the second step of double opt-in.
func (s *Server) confirmGet(w http.ResponseWriter, r *http.Request) {
	tokenPageHeaders(w)
	sub, ok := s.tokenSubscriber(w, r, PurposeConfirm, r.URL.Query().Get("token"))
	if !ok {
		return
	}
	switch sub.Status {
	case store.StatusPending:
		if err := s.opts.Store.SetStatus(r.Context(), sub.ID, store.StatusActive, store.Change{By: store.ByWeb, Reason: "confirmation link"}, time.Now()); err != nil {
			s.logger.Error("confirm", "subscriber", sub.ID, "err", err)
			s.renderError(w, r, http.StatusServiceUnavailable, "Please try again later", "We could not confirm your subscription just now.")
			return
		}
		s.metrics.event("confirmed")
		s.logger.Info("subscription confirmed", "subscriber", sub.ID)
	case store.StatusActive:
		// A second click (or a mail scanner's): already done.
	default:
		// Unsubscribed or bounced since the link was sent: an old confirmation
		// link must not lift that.
		s.badToken(w, r)
		return
	}
	d := s.newPage()
	d.Email = sub.Email
	s.render(w, r, http.StatusOK, "confirmed", d)
}

// unsubscribeGet shows one button; the GET itself changes nothing, so link
// scanners that follow every URL in a message cannot unsubscribe anyone.
func (s *Server) unsubscribeGet(w http.ResponseWriter, r *http.Request) {
	tokenPageHeaders(w)
	tok := r.URL.Query().Get("token")
	sub, ok := s.tokenSubscriber(w, r, PurposeUnsubscribe, tok)
	if !ok {
		return
	}
	d := s.newPage()
	d.Email, d.Token = sub.Email, tok
	s.render(w, r, http.StatusOK, "unsubscribe", d)
}

// unsubscribePost handles the page's button and the RFC 8058 one-click POST a
// mail provider sends to the List-Unsubscribe URL (token in the URL, body
// "List-Unsubscribe=One-Click", no cookies, no Origin). Either way the address
// is suppressed at once and the answer is a page, never a redirect.
func (s *Server) unsubscribePost(w http.ResponseWriter, r *http.Request) {
	tokenPageHeaders(w)
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.renderError(w, r, http.StatusBadRequest, "Could not read the form", "The form data was malformed or too large.")
		return
	}
	oneClick := r.PostForm.Get("List-Unsubscribe") == "One-Click"
	// The token is the credential here, so a forged cross-site post could only
	// unsubscribe someone whose token it already has; still, browser form posts
	// go through the cross-origin check. The one-click POST comes from a mail
	// provider's server and is exempt.
	if !oneClick {
		if err := s.csrf.Check(r); err != nil {
			s.metrics.event("csrf_refused")
			s.renderError(w, r, http.StatusForbidden, "Request refused",
				"This form was sent from another site. Open the link from your email again.")
			return
		}
	}
	tok := r.PostForm.Get("token")
	if tok == "" {
		tok = r.URL.Query().Get("token")
	}
	sub, ok := s.tokenSubscriber(w, r, PurposeUnsubscribe, tok)
	if !ok {
		return
	}
	if !store.IsSuppressed(sub.Status) {
		why := store.Change{By: store.ByWeb, Reason: "unsubscribe page"}
		if oneClick {
			why.Reason = "one-click unsubscribe (RFC 8058)"
		}
		if err := s.opts.Store.SetStatus(r.Context(), sub.ID, store.StatusUnsubscribed, why, time.Now()); err != nil {
			s.logger.Error("unsubscribe", "subscriber", sub.ID, "err", err)
			s.renderError(w, r, http.StatusServiceUnavailable, "Please try again later", "We could not record your request just now.")
			return
		}
		s.metrics.event("unsubscribed")
		s.logger.Info("unsubscribed", "subscriber", sub.ID, "one_click", oneClick)
	}
	d := s.newPage()
	d.Email = sub.Email
	s.render(w, r, http.StatusOK, "unsubscribed", d)
}

func (s *Server) preferencesGet(w http.ResponseWriter, r *http.Request) {
	tokenPageHeaders(w)
	tok := r.URL.Query().Get("token")
	sub, ok := s.tokenSubscriber(w, r, PurposePreferences, tok)
	if !ok {
		return
	}
	s.render(w, r, http.StatusOK, "preferences", s.preferencesPage(sub, tok, false))
}

func (s *Server) preferencesPost(w http.ResponseWriter, r *http.Request) {
	tokenPageHeaders(w)
	if err := s.csrf.Check(r); err != nil {
		s.metrics.event("csrf_refused")
		s.renderError(w, r, http.StatusForbidden, "Request refused",
			"This form was sent from another site. Open the link from your email again.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.renderError(w, r, http.StatusBadRequest, "Could not read the form", "The form data was malformed or too large.")
		return
	}
	tok := r.PostForm.Get("token")
	if tok == "" {
		tok = r.URL.Query().Get("token")
	}
	sub, ok := s.tokenSubscriber(w, r, PurposePreferences, tok)
	if !ok {
		return
	}
	topics, problems := s.validTopics(r.PostForm["topics"], sub.Topics)
	cadence := strings.TrimSpace(r.PostForm.Get("cadence"))
	if cadence == "" {
		cadence = sub.Cadence
	}
	if cadence == "" {
		cadence = s.opts.DefaultCadence
	}
	if !valid.Cadence(cadence) {
		problems = append(problems, "Frequency: choose immediate, daily or weekly.")
	}
	if len(problems) > 0 {
		s.renderError(w, r, http.StatusBadRequest, "Please check the form", "", problems...)
		return
	}
	if err := s.opts.Store.SetPreferences(r.Context(), sub.ID, topics, cadence, time.Now()); err != nil {
		s.logger.Error("preferences", "subscriber", sub.ID, "err", err)
		s.renderError(w, r, http.StatusServiceUnavailable, "Please try again later", "We could not save your preferences just now.")
		return
	}
	s.metrics.event("preferences_updated")
	sub.Topics, sub.Cadence = topics, cadence
	s.render(w, r, http.StatusOK, "preferences", s.preferencesPage(sub, tok, true))
}

func (s *Server) preferencesPage(sub store.Subscriber, tok string, saved bool) pageData {
	d := s.newPage()
	d.Email, d.Token, d.Saved = sub.Email, tok, saved
	var known []string
	if s.opts.Topics != nil {
		known = s.opts.Topics()
	}
	// Topics the subscriber holds but the site no longer lists stay visible, so
	// saving the form does not silently drop them.
	choices := slices.Clone(known)
	for _, t := range sub.Topics {
		if _, ok := lookupFold(choices, t); !ok {
			choices = append(choices, t)
		}
	}
	for _, t := range choices {
		_, checked := lookupFold(sub.Topics, t)
		d.TopicChoices = append(d.TopicChoices, topicChoice{Name: t, Checked: checked})
	}
	cadence := sub.Cadence
	if cadence == "" {
		cadence = s.opts.DefaultCadence
	}
	for _, c := range cadenceLabels {
		d.CadenceChoices = append(d.CadenceChoices, cadenceChoice{Value: c.Value, Label: c.Label, Selected: c.Value == cadence})
	}
	return d
}
