package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"publisher/internal/bounce"
	"publisher/internal/esp"
)

// EventRecorder records one bounce, complaint or other delivery event.
// isNew is false when an event with the same Source and ID was recorded
// before: providers retry, and a replayed request must change nothing.
type EventRecorder interface {
	RecordEvent(ctx context.Context, e bounce.Event) (isNew bool, err error)
}

// maxWebhookBody bounds a webhook's body: SendGrid batches events, the others
// send one.
const maxWebhookBody = 5 << 20

// Webhooks serves POST /webhooks/{provider} for each provider given: it
// verifies the request, records each of its events once, and answers
//
//	200 recorded (new or not), or nothing to record
//	401 not from the provider: bad signature or credentials, stale, replayed
//	400 from the provider but unreadable
//	404 a provider that is not set up
//	413 too large
//	503 the events could not be recorded (the provider will retry)
//
// It is a handler of its own, mounted under the daemon's mux, so that it
// needs nothing of the Server but a recorder.
type Webhooks struct {
	recorder  EventRecorder
	providers map[string]esp.Provider
	logger    *slog.Logger
}

// NewWebhooks checks that there is a recorder and each provider's name is
// unique.
func NewWebhooks(recorder EventRecorder, logger *slog.Logger, providers ...esp.Provider) (*Webhooks, error) {
	if recorder == nil {
		return nil, errors.New("webhooks: no event recorder")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	w := &Webhooks{recorder: recorder, providers: map[string]esp.Provider{}, logger: logger}
	for _, p := range providers {
		if _, dup := w.providers[p.Name()]; dup {
			return nil, fmt.Errorf("webhooks: provider %q given twice", p.Name())
		}
		w.providers[p.Name()] = p
	}
	return w, nil
}

// Handler serves the webhooks.
func (w *Webhooks) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /webhooks/{provider}", w.serve)
	return mux
}

func (w *Webhooks) serve(rw http.ResponseWriter, r *http.Request) {
	name := r.PathValue("provider")
	p, ok := w.providers[name]
	if !ok {
		http.Error(rw, "no such webhook", http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, maxWebhookBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(rw, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(rw, "cannot read the body", http.StatusBadRequest)
		return
	}
	events, err := p.Events(r.Context(), r.Header, body)
	switch {
	case errors.Is(err, esp.ErrUnauthorized):
		// Logged for the operator; the answer says nothing an attacker could use.
		w.logger.Warn("webhook refused", "provider", name, "remote", r.RemoteAddr, "err", err)
		http.Error(rw, "unauthorized", http.StatusUnauthorized)
		return
	case errors.Is(err, esp.ErrBadRequest):
		w.logger.Warn("webhook unreadable", "provider", name, "err", err)
		http.Error(rw, "unreadable payload", http.StatusBadRequest)
		return
	case err != nil:
		w.logger.Error("webhook", "provider", name, "err", err)
		http.Error(rw, "try again later", http.StatusServiceUnavailable)
		return
	}
	recorded := 0
	for _, e := range events {
		isNew, err := w.recorder.RecordEvent(r.Context(), e)
		if err != nil {
			// The provider retries the whole request; those recorded already
			// are recognised by their ids then.
			w.logger.Error("recording a webhook event", "provider", name, "event", e.ID, "err", err)
			http.Error(rw, "try again later", http.StatusServiceUnavailable)
			return
		}
		if isNew {
			recorded++
			w.logger.Info("webhook event", "provider", name, "kind", e.Kind, "recipient", e.Recipient, "id", e.ID)
		}
	}
	if f, ok := p.(esp.Finisher); ok {
		f.Done(body)
	}
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = fmt.Fprintf(rw, "ok: %d events, %d new\n", len(events), recorded)
}
