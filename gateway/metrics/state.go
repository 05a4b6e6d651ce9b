package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/admission"
)

// State is what the gateway reports of itself at each scrape. Each func
// may be nil.
type State struct {
	// Admission is the query slots' state (admission.Controller.Stats).
	Admission func() admission.Stats
	// Sources are the councils' stores as the catalog now serves them.
	Sources func() []SourceState
	// Policy is the revision in force and whether the last reload failed.
	Policy func() (revision string, lastErr error)
	// Config is how many config reloads were tried and the last one's
	// error.
	Config func() (reloads int, lastErr error)
}

// SourceState is one council store's state at a scrape.
type SourceState struct {
	Source  string
	Breaker *admission.BreakerState // nil: no breaker
	Copies  []gateway.CopyStatus    // an accelerated source's local copies
}

// Watch registers the gateway's state, read at each scrape.
func (m *Metrics) Watch(st State) { m.reg.MustRegister(&stateCollector{st: st}) }

type stateCollector struct{ st State }

var (
	slotsDesc     = prometheus.NewDesc("gateway_query_slots", "Query slots: configured (total), in use (running) and requests waiting for one (queued).", []string{"state"}, nil)
	memoryDesc    = prometheus.NewDesc("gateway_query_memory_bytes", "Query memory: reserved by running queries, and the budget (query.memory_budget).", []string{"state"}, nil)
	refusedDesc   = prometheus.NewDesc("gateway_admission_refused_total", "Queries refused before they ran: overloaded (503, queue full), per_requester (429, query.max_per_requester) or gave_up (the queue wait passed).", []string{"reason"}, nil)
	admittedDesc  = prometheus.NewDesc("gateway_admission_admitted_total", "Queries given a slot.", nil, nil)
	circuitDesc   = prometheus.NewDesc("gateway_store_circuit", "Each council store's circuit breaker: 1 for the state it is in (closed, trial, open).", []string{"source", "state"}, nil)
	failuresDesc  = prometheus.NewDesc("gateway_store_consecutive_failures", "Calls to the store that failed in a row.", []string{"source"}, nil)
	copyAgeDesc   = prometheus.NewDesc("gateway_copy_age_seconds", "How long ago each accelerated table's local copy last matched its store.", []string{"source", "table"}, nil)
	copyStateDesc = prometheus.NewDesc("gateway_copy_serving", "1 when the local copy answers the table's scans, 0 when the store does (loading, expired, refused).", []string{"source", "table", "state"}, nil)
	revisionDesc  = prometheus.NewDesc("gateway_policy_revision_info", "The policy revision in force (1), and whether its last reload failed (label last_reload).", []string{"revision", "last_reload"}, nil)
	reloadsDesc   = prometheus.NewDesc("gateway_config_reloads_total", "Config reloads tried.", nil, nil)
	reloadOKDesc  = prometheus.NewDesc("gateway_config_last_reload_ok", "1 when the last config reload went in force (or none was tried), 0 when it failed.", nil, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{slotsDesc, memoryDesc, refusedDesc, admittedDesc, circuitDesc, failuresDesc, copyAgeDesc, copyStateDesc, revisionDesc, reloadsDesc, reloadOKDesc} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	if f := c.st.Admission; f != nil {
		s := f()
		gauge(slotsDesc, float64(s.Slots), "total")
		gauge(slotsDesc, float64(s.Running), "running")
		gauge(slotsDesc, float64(s.Queued), "queued")
		gauge(memoryDesc, float64(s.MemoryReserved), "reserved")
		gauge(memoryDesc, float64(s.MemoryBudget), "budget")
		counter(admittedDesc, float64(s.Counts.Admitted))
		counter(refusedDesc, float64(s.Counts.Overloaded), "overloaded")
		counter(refusedDesc, float64(s.Counts.TooMany), "per_requester")
		counter(refusedDesc, float64(s.Counts.GaveUp), "gave_up")
	}
	if f := c.st.Sources; f != nil {
		for _, s := range f() {
			if b := s.Breaker; b != nil {
				for _, state := range []string{"closed", "trial", "open"} {
					v := 0.0
					if b.State == state {
						v = 1
					}
					gauge(circuitDesc, v, s.Source, state)
				}
				gauge(failuresDesc, float64(b.Failures), s.Source)
			}
			for _, cp := range s.Copies {
				if cp.AgeSeconds != nil {
					gauge(copyAgeDesc, float64(*cp.AgeSeconds), s.Source, cp.Table)
				}
				serving := 0.0
				if cp.Serving == "copy" {
					serving = 1
				}
				gauge(copyStateDesc, serving, s.Source, cp.Table, cp.State)
			}
		}
	}
	if f := c.st.Policy; f != nil {
		rev, err := f()
		last := "ok"
		if err != nil {
			last = "failed"
		}
		gauge(revisionDesc, 1, rev, last)
	}
	if f := c.st.Config; f != nil {
		n, err := f()
		counter(reloadsDesc, float64(n))
		ok := 1.0
		if err != nil {
			ok = 0
		}
		gauge(reloadOKDesc, ok)
	}
}
