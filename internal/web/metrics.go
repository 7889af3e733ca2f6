package web

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// RunStats is what the daemon reports after each publishing cycle.
type RunStats struct {
	Start      time.Time
	Duration   time.Duration
	OK         bool
	Published  int // pieces new in this run
	Sent       int
	Failed     int
	Retried    int
	Suppressed int
	Pending    int // deliveries left pending at the end of the run
}

// Metrics holds publisher's Prometheus metrics in a registry of its own, so two
// servers (or tests) never collide in the global one.
type Metrics struct {
	reg           *prometheus.Registry
	published     prometheus.Counter
	sent          prometheus.Counter
	failed        prometheus.Counter
	retried       prometheus.Counter
	suppressed    prometheus.Counter
	runs          *prometheus.CounterVec
	runDuration   prometheus.Histogram
	lastRun       prometheus.Gauge
	lastSuccess   prometheus.Gauge
	nextRun       prometheus.Gauge
	pending       prometheus.Gauge
	lastFailed    prometheus.Gauge
	subscriptions *prometheus.CounterVec
}

// NewMetrics makes the metrics. Every figure is kept up to date by the runs and
// the web events as they happen: a scrape reads counters, never the ledger
// (counting a ledger of millions of rows on every scrape is a load of its own).
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "publisher_pieces_published_total", Help: "Pieces published for the first time.",
		}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "publisher_digests_sent_total", Help: "Digest emails accepted by the mail server.",
		}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "publisher_digests_failed_total", Help: "Digest emails that failed for good.",
		}),
		retried: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "publisher_digests_retried_total", Help: "Digest sends that failed temporarily and will be retried.",
		}),
		suppressed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "publisher_suppressions_total", Help: "Addresses suppressed by runs (bounce limit reached).",
		}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "publisher_runs_total", Help: "Publishing cycles by result.",
		}, []string{"result"}),
		runDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "publisher_run_duration_seconds",
			Help:    "How long a publishing cycle took.",
			Buckets: prometheus.ExponentialBuckets(0.1, 3, 10), // 0.1 s to about 33 min
		}),
		lastRun: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "publisher_last_run_timestamp_seconds", Help: "When the last cycle finished (Unix time).",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "publisher_last_success_timestamp_seconds", Help: "When the last successful cycle finished (Unix time).",
		}),
		nextRun: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "publisher_next_run_timestamp_seconds", Help: "When the scheduler runs the next cycle (Unix time).",
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "publisher_deliveries_pending", Help: "Deliveries left pending at the end of the last run (retried by a later one).",
		}),
		lastFailed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "publisher_last_run_failed_deliveries", Help: "Deliveries that failed for good in the last run.",
		}),
		subscriptions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "publisher_web_events_total", Help: "Sign-up, confirmation, unsubscribe and preference events on the web endpoints.",
		}, []string{"event"}),
	}
	m.runs.WithLabelValues("ok")
	m.runs.WithLabelValues("failed")
	m.reg.MustRegister(m.published, m.sent, m.failed, m.retried, m.suppressed, m.runs,
		m.runDuration, m.lastRun, m.lastSuccess, m.nextRun, m.pending, m.lastFailed, m.subscriptions,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// ObserveRun records one publishing cycle.
func (m *Metrics) ObserveRun(r RunStats) {
	result := "failed"
	if r.OK {
		result = "ok"
	}
	m.runs.WithLabelValues(result).Inc()
	m.runDuration.Observe(r.Duration.Seconds())
	m.published.Add(float64(max(r.Published, 0)))
	m.sent.Add(float64(max(r.Sent, 0)))
	m.failed.Add(float64(max(r.Failed, 0)))
	m.retried.Add(float64(max(r.Retried, 0)))
	m.suppressed.Add(float64(max(r.Suppressed, 0)))
	m.pending.Set(float64(max(r.Pending, 0)))
	m.lastFailed.Set(float64(max(r.Failed, 0)))
	end := r.Start.Add(r.Duration)
	m.lastRun.Set(float64(end.Unix()))
	if r.OK {
		m.lastSuccess.Set(float64(end.Unix()))
	}
}

// SetNextRun publishes the scheduler's next run time (schedule.Options.OnNext).
func (m *Metrics) SetNextRun(t time.Time) { m.nextRun.Set(float64(t.Unix())) }

// Registry exposes the registry, for a caller that wants to add collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, ErrorHandling: promhttp.ContinueOnError})
}

func (m *Metrics) event(name string) { m.subscriptions.WithLabelValues(name).Inc() }
