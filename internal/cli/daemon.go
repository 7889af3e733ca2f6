package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"publisher/internal/cycle"
	"publisher/internal/schedule"
	"publisher/internal/store"
	"publisher/internal/web"
	"publisher/templates"
)

const daemonHelp = `Run cycles on the configured schedule and serve the feeds, archive and sign-up
endpoints (http.listen), and /metrics and /readyz (http.admin_listen).

At start it builds the feeds and archive for the settings in force (a quick
no-op when nothing changed) and serves the site once that is done; until
then the site answers 503. Sending waits for the schedule, or starts at once
with run_at_start.

With webhooks.* set, it takes the ESP webhooks on POST /webhooks/<provider>
(ses, postmark, mailgun, sendgrid) on http.listen; with bounces.pop3.host set,
it reads the bounce mailbox on bounces.schedule.

On SIGTERM or SIGINT it stops scheduling; the run in flight takes no new
message, finishes those on the wire (waiting the longer of shutdown_grace and
mail.smtp.connect_timeout + send_timeout + 15s) and leaves the rest pending;
exit 0.`

func runDaemon(ctx context.Context, e *env, args []string) int {
	fs := e.flags("daemon", "", daemonHelp)
	if _, st := fs.parse(args, 0, 0); st >= 0 {
		return st
	}
	o, st := e.open(ctx, "daemon")
	if o == nil {
		return st
	}
	cfg, log, r := o.cfg, o.log, o.runner
	// The store is closed only once nothing can be writing to it (see stop).
	storeOpen := true
	defer func() {
		if storeOpen {
			_ = o.store.Close()
		}
	}()

	providers, err := webhookProviders(cfg)
	if err != nil {
		fmt.Fprintf(e.stderr, "publisher daemon: %v\n", err)
		return ExitConfig
	}
	bounces, err := newBounceReader(cfg, o.store, log)
	if err != nil {
		fmt.Fprintf(e.stderr, "publisher daemon: %v\n", err)
		return ExitConfig
	}
	scheds := []*schedule.Scheduler{nil} // the cycle's, then the bounce mailbox's
	if bounces != nil {
		bs, err := schedule.New(schedule.Options{Spec: cfg.Bounces.Schedule, Logger: log.With("job", "bounce mailbox"), Job: bounces.read})
		if err != nil {
			fmt.Fprintf(e.stderr, "publisher daemon: bounces.schedule: %v\n", err)
			return ExitConfig
		}
		scheds = append(scheds, bs)
	}

	metrics := web.NewMetrics()
	var srv *web.Server // nil when http.listen is empty
	sched, err := schedule.New(schedule.Options{
		Spec: cfg.Schedule, RunAtStart: cfg.RunAtStart, Logger: log, OnNext: metrics.SetNextRun,
		// cycle.Run drains when its context is cancelled (finishes what is on the
		// wire, leaves the rest pending), so cancel at once and let Stop's deadline
		// bound the wait.
		Grace: 0,
		Job: func(ctx context.Context) error {
			start := time.Now()
			sum, err := r.Run(ctx, cycle.Options{})
			metrics.ObserveRun(web.RunStats{Start: start, Duration: time.Since(start), OK: err == nil && sum.Failed == 0,
				Published: sum.NewPieces, Sent: sum.Sent, Failed: sum.Failed, Retried: sum.Retried, Suppressed: sum.Suppressed, Pending: sum.Pending})
			if srv != nil && built(sum) {
				srv.OutputBuilt()
			}
			if err != nil {
				return err
			}
			if sum.Failed > 0 {
				return errors.New(sum.String())
			}
			return nil
		},
	})
	if err != nil {
		fmt.Fprintf(e.stderr, "publisher daemon: schedule: %v\n", err)
		return ExitConfig
	}
	scheds[0] = sched

	var servers []*http.Server
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
		var webhooks http.Handler
		if len(providers) > 0 {
			wh, err := web.NewWebhooks(storeEvents{db: o.store, bounceLimit: cfg.Mail.BounceLimit, by: store.ByWebhook}, log, providers...)
			if err != nil {
				fmt.Fprintf(e.stderr, "publisher daemon: webhooks: %v\n", err)
				return ExitConfig
			}
			webhooks = wh.Handler()
			for _, p := range providers {
				log.Info("taking webhooks", "provider", p.Name(), "path", "/webhooks/"+p.Name())
			}
		}
		srv, err = web.New(web.Options{
			OutputDir: cfg.Output.Dir, BaseURL: cfg.Site.BaseURL, SiteTitle: cfg.Site.Title,
			Templates: templates.FS(cfg.Templates.Dir), Store: o.store, Signer: r.Signer(),
			ConfirmTTL: cfg.Tokens.ConfirmTTL, RateLimit: cfg.HTTP.RateLimit,
			Mailer: web.TransportMailer{Transport: transport}, From: r.From(), ReplyTo: r.ReplyTo(), ListID: r.ListID(),
			Topics:         r.Topics,
			DefaultCadence: cfg.Digest.DefaultCadence, Logger: log, Metrics: metrics,
			TrustedProxies: proxies,
			OutputPending:  true,
			AdminSeparate:  cfg.HTTP.AdminListen != "",
			Webhooks:       webhooks,
		})
		if err != nil {
			fmt.Fprintf(e.stderr, "publisher daemon: %v\n", err)
			return ExitConfig
		}
		listeners := []struct {
			key, addr string
			handler   http.Handler
		}{{"http.listen", cfg.HTTP.Listen, srv.Handler()}}
		if cfg.HTTP.AdminListen != "" {
			listeners = append(listeners, struct {
				key, addr string
				handler   http.Handler
			}{"http.admin_listen", cfg.HTTP.AdminListen, srv.AdminHandler()})
		}
		for _, l := range listeners {
			ln, err := net.Listen("tcp", l.addr)
			if err != nil {
				shutdownHTTP(servers, log)
				fmt.Fprintf(e.stderr, "publisher daemon: %s: %v\n", l.key, err)
				return ExitConfig
			}
			hs := srv.HTTPServer(l.addr, l.handler)
			servers = append(servers, hs)
			go func() {
				if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
					log.Error("http", "listen", l.key, "err", err)
				}
			}()
			log.Info("serving", "listen", l.key, "addr", ln.Addr().String())
		}
	}

	// Build for the settings in force before serving the site: the output folder
	// may hold a build for another base URL, or nothing. The build also reads the
	// topics the forms offer.
	start := time.Now()
	if sum, err := r.Run(ctx, cycle.Options{BuildOnly: true}); err != nil {
		log.Error("build at start failed; the site answers 503 until a run builds it", "err", err)
	} else {
		log.Info("build at start done", "duration", time.Since(start), "pieces", sum.Pieces, "skipped_unchanged", sum.BuildSkipped, "written", sum.Output.Written)
		if srv != nil {
			srv.OutputBuilt()
		}
	}
	if ctx.Err() == nil {
		for _, s := range scheds {
			s.Start(ctx)
		}
	}
	<-ctx.Done() // SIGTERM / SIGINT (cli.Main's signal.NotifyContext)

	if !stop(ctx, cfg.ShutdownWait(), scheds, srv, servers, log) {
		// Something may still be writing: leave the store open for the process
		// exit to end (SQLite and PostgreSQL both recover from that), rather
		// than close it under a write.
		storeOpen = false
		return ExitFailures
	}
	return ExitOK
}

// built reports whether a run left the output built for the settings in force.
func built(sum *cycle.Summary) bool {
	return sum.BuildSkipped || sum.Output.Written+sum.Output.Unchanged > 0
}

// stop shuts the daemon down: the run in flight drains (it finishes the
// messages on the wire, within wait), the HTTP servers finish their requests,
// queued sign-ups are recorded. It reports whether all of that finished, so
// that the store can be closed.
func stop(ctx context.Context, wait time.Duration, scheds []*schedule.Scheduler, srv *web.Server, servers []*http.Server, log *slog.Logger) bool {
	log.Info("shutting down: waiting for the run in flight", "wait_at_most", wait)
	ok := true
	var wg sync.WaitGroup
	wg.Go(func() {
		if !shutdownHTTP(servers, log) {
			ok = false
		}
	})
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), wait)
	defer cancel()
	var schedErr error
	for _, s := range scheds {
		schedErr = errors.Join(schedErr, s.Stop(stopCtx))
	}
	wg.Wait()
	if schedErr != nil {
		log.Error("the run in flight did not finish in time; exiting without closing the store", "wait", wait, "err", schedErr)
		ok = false
	}
	if srv != nil {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := srv.Close(closeCtx); err != nil {
			log.Error("sign-ups still being recorded; exiting without closing the store", "err", err)
			ok = false
		}
	}
	if ok {
		log.Info("stopped")
	}
	return ok
}

// shutdownHTTP lets the requests in progress finish, for up to 10 seconds.
func shutdownHTTP(servers []*http.Server, log *slog.Logger) bool {
	ok := true
	for _, hs := range servers {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := hs.Shutdown(ctx); err != nil {
			log.Error("http shutdown", "addr", hs.Addr, "err", err)
			ok = false
		}
		cancel()
	}
	return ok
}

func runHealthcheck(ctx context.Context, e *env, args []string) int {
	fs := e.flags("healthcheck", "", "Ask the daemon on http.listen whether it is alive (GET /healthz).")
	if _, st := fs.parse(args, 0, 0); st >= 0 {
		return st
	}
	cfg, st := e.loadConfigQuietly()
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
