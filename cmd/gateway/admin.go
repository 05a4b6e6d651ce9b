package main

import (
	"net"
	"net/http"
	"net/http/pprof"
	"strings"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/admission"
	"github.com/councildata/gateway/gateway/metrics"
)

// adminHandler is the admin listener's: metrics and profiles, for the
// operators, on an address of their own (server.admin) that no query door
// shares. It asks for no credential: bind it where only operators reach
// it (the default is loopback).
func (m *Main) adminHandler() http.Handler {
	m.metrics.Watch(metrics.State{
		Admission: m.admission.Stats,
		Sources:   m.sourceStates,
		Policy: func() (string, error) {
			if m.policy == nil {
				return "disabled", nil
			}
			return m.policy.Revision(), m.policy.LastError()
		},
		Config: m.ReloadStatus,
	})
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.metrics.Handler())
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("council gateway admin listener: /metrics (Prometheus), /debug/pprof/ (Go profiles)\n"))
	})
	return adminHosts(mux)
}

// adminHosts answers only requests addressed to an IP address or to
// localhost (Prometheus scrapes by address; an operator's curl and
// port-forward say 127.0.0.1 or localhost): a web page that rebinds its
// own name to this address gets 421, not the metrics or a profile.
func adminHosts(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.Trim(host, "[]")
		if net.ParseIP(host) == nil && !strings.EqualFold(host, "localhost") {
			http.Error(w, "the admin listener answers requests to an IP address or localhost only", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// sourceStates are the councils' stores as the catalog serves them now,
// for the metrics read at each scrape.
func (m *Main) sourceStates() []metrics.SourceState {
	var out []metrics.SourceState
	for _, src := range m.Engine.Catalog().Sources() {
		st := metrics.SourceState{Source: src.Config.ID}
		if bs, ok := admission.BreakerOf(src.Store); ok {
			st.Breaker = &bs
		}
		if c, ok := gateway.Find[gateway.Copier](src.Store); ok {
			st.Copies = c.Copies()
		}
		out = append(out, st)
	}
	return out
}
