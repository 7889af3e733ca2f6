package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"publisher/internal/cycle"
	"publisher/internal/schedule"
	"publisher/internal/web"
	"publisher/templates"
)

func runDaemon(ctx context.Context, e *env, args []string) int {
	fs := e.flags("daemon", "", "Run cycles on the configured schedule and serve the feeds, archive and sign-up endpoints.")
	if st := parse(fs, args); st >= 0 {
		return st
	}
	o, st := e.open(ctx, "daemon")
	if o == nil {
		return st
	}
	defer o.store.Close()
	cfg, log, r, str := o.cfg, o.log, o.runner, o.store

	metrics := web.NewMetrics(str)
	sched, err := schedule.New(schedule.Options{
		Spec: cfg.Schedule, RunAtStart: cfg.RunAtStart, Logger: log, OnNext: metrics.SetNextRun,
		// cycle.Run drains when its context is cancelled (finishes what is on the
		// wire, leaves the rest pending), so cancel at once and let Stop's deadline
		// (shutdown_grace) bound the wait.
		Grace: 0,
		Job: func(ctx context.Context) error {
			start := time.Now()
			sum, err := r.Run(ctx, cycle.Options{})
			metrics.ObserveRun(web.RunStats{Start: start, Duration: time.Since(start), OK: err == nil && sum.OK(),
				Published: sum.NewPieces, Sent: sum.Sent, Failed: sum.Failed, Retried: sum.Retried, Suppressed: sum.Suppressed})
			if err != nil {
				return err
			}
			if !sum.OK() {
				return errors.New(sum.String())
			}
			return nil
		},
	})
	if err != nil {
		fmt.Fprintf(e.stderr, "publisher daemon: schedule: %v\n", err)
		return ExitConfig
	}

	var httpSrv *http.Server
	var srv *web.Server
	if cfg.HTTP.Listen != "" {
		// Confirmation emails go out at once, on their own connection.
		transport, err := cycle.NewTransport(cfg, log)
		if err != nil {
			fmt.Fprintf(e.stderr, "publisher daemon: %v\n", err)
			return ExitConfig
		}
		var proxies []netip.Prefix
		for _, p := range cfg.HTTP.TrustedProxies {
			if pr, err := netip.ParsePrefix(p); err == nil {
				proxies = append(proxies, pr)
			}
		}
		srv, err = web.New(web.Options{
			OutputDir: cfg.Output.Dir, BaseURL: cfg.Site.BaseURL, SiteTitle: cfg.Site.Title,
			Templates: templates.FS(cfg.Templates.Dir), Store: str, Signer: r.Signer(),
			ConfirmTTL: cfg.Tokens.ConfirmTTL, RateLimit: cfg.HTTP.RateLimit,
			Mailer: web.TransportMailer{Transport: transport}, From: r.From(), ReplyTo: r.ReplyTo(), ListID: r.ListID(),
			Topics:         r.Topics,
			DefaultCadence: cfg.Digest.DefaultCadence, Logger: log, Metrics: metrics,
			TrustedProxies: proxies,
		})
		if err != nil {
			fmt.Fprintf(e.stderr, "publisher daemon: %v\n", err)
			return ExitConfig
		}
		ln, err := net.Listen("tcp", cfg.HTTP.Listen)
		if err != nil {
			fmt.Fprintf(e.stderr, "publisher daemon: http.listen: %v\n", err)
			return ExitConfig
		}
		httpSrv = srv.HTTPServer(cfg.HTTP.Listen)
		go func() {
			if err := httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("http", "err", err)
			}
		}()
		log.Info("serving", "listen", ln.Addr().String())
	}

	// Topics offered on the forms come from the pieces; read them once now, the
	// runs keep them current.
	if _, err := r.Pieces(ctx, &cycle.Summary{}, false); err != nil {
		log.Warn("reading pieces for the topic list", "err", err)
	}
	sched.Start(ctx)
	<-ctx.Done() // SIGTERM / SIGINT (cli.Main's signal.NotifyContext)
	log.Info("shutting down", "grace", cfg.Grace)
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Grace)
	defer cancel()
	if err := sched.Stop(stopCtx); err != nil {
		log.Warn("stop", "err", err)
	}
	if httpSrv != nil {
		httpCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = httpSrv.Shutdown(httpCtx)
		_ = srv.Close(httpCtx)
	}
	return ExitOK
}

func runHealthcheck(ctx context.Context, e *env, args []string) int {
	fs := e.flags("healthcheck", "", "Ask the daemon on http.listen whether it is alive (GET /healthz).")
	if st := parse(fs, args); st >= 0 {
		return st
	}
	cfg, st := e.loadConfig()
	if cfg == nil {
		return st
	}
	host, port, err := net.SplitHostPort(cfg.HTTP.Listen)
	if err != nil {
		fmt.Fprintf(e.stderr, "publisher healthcheck: http.listen: %v\n", err)
		return ExitConfig
	}
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	if err := web.HealthCheck(ctx, "http://"+net.JoinHostPort(host, port)+"/healthz"); err != nil {
		fmt.Fprintf(e.stderr, "publisher healthcheck: %v\n", err)
		return ExitFailures
	}
	return ExitOK
}
