package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// healthz says the process is alive and serving; nothing else.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = io.WriteString(w, "ok\n")
}

// readyz says whether this replica can serve: the store answers and the built
// output is there (and the caller's own check, if any, passes). It says nothing
// of how the last run went: one refused address or a greylisted retry must not
// take the feeds, the sign-up form and the unsubscribe links out of service.
// Failed runs are for the metrics and the logs. The reasons are
// operator-facing text, never request input.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		s.logger.Warn("not ready", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "not ready: "+err.Error()+"\n")
		return
	}
	_, _ = io.WriteString(w, "ready\n")
}

func (s *Server) ready(ctx context.Context) error {
	if err := s.opts.Store.Ping(ctx); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if !s.built.Load() {
		return errors.New("output: the build at start has not finished")
	}
	if _, err := os.Stat(filepath.Join(s.opts.OutputDir, "index.html")); err != nil {
		return fmt.Errorf("output: nothing built yet: %w", err)
	}
	if s.opts.Ready != nil {
		if err := s.opts.Ready(ctx); err != nil {
			return err
		}
	}
	return nil
}

// HealthCheck GETs url (the daemon's /healthz) and fails unless it answers
// 2xx; `publisher healthcheck` runs it inside the image, which has no shell.
func HealthCheck(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck %s: %w", url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("healthcheck %s: %s", url, resp.Status)
	}
	return nil
}
