package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/cenkalti/backoff/v5"

	duckdbfile "github.com/councildata/gateway/adapters/duckdb"
	"github.com/councildata/gateway/adapters/files"
	"github.com/councildata/gateway/adapters/mysql"
	"github.com/councildata/gateway/adapters/postgres"
	"github.com/councildata/gateway/adapters/sqlite"
	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/admission"
	"github.com/councildata/gateway/gateway/audit"
	"github.com/councildata/gateway/gateway/auth"
	"github.com/councildata/gateway/gateway/catalog"
	"github.com/councildata/gateway/gateway/config"
	"github.com/councildata/gateway/gateway/console"
	"github.com/councildata/gateway/gateway/engine"
	"github.com/councildata/gateway/gateway/flightapi"
	"github.com/councildata/gateway/gateway/httpapi"
	"github.com/councildata/gateway/gateway/metrics"
	"github.com/councildata/gateway/gateway/pgwire"
	"github.com/councildata/gateway/gateway/policy"
	"github.com/councildata/gateway/gateway/tracing"
)

// Main is the running gateway: config, stores, catalog, engine, servers.
type Main struct {
	ConfigPath string
	HTTPAddr   string // overrides the config
	// FlightAddr overrides the config; after Listen it is the bound
	// address (":0" picks a free port).
	FlightAddr string
	// PostgresAddr overrides the config like FlightAddr ("off": no
	// PostgreSQL door).
	PostgresAddr string
	// AdminAddr overrides the config like PostgresAddr: the admin
	// listener (/metrics, /debug/pprof).
	AdminAddr string
	// Sample, for Check, is how many rows of each mapped table to read
	// to measure the mappings (0: none).
	Sample int

	Config  *config.Config
	Catalog *catalog.Catalog
	Engine  *engine.Engine
	stores  map[string]gateway.Source
	secrets *config.Secrets

	auth      *auth.Authenticator
	admission *admission.Controller // admits every query of both doors
	policy    *policy.Engine        // nil when policy is disabled
	audit     *audit.Log
	stop      context.CancelFunc // stops the policy watcher

	listener net.Listener
	server   *http.Server

	metrics       *metrics.Metrics
	adminListener net.Listener // nil: no admin listener
	admin         *http.Server

	flightListener net.Listener
	flight         *flightapi.Server

	pgListener net.Listener
	pg         *pgwire.Server

	reloadMu  sync.Mutex // one Reload at a time; guards Config, Catalog, stores after start
	reloadErr error      // the last reload's error
	reloads   int        // reloads tried
}

// Open reads the config and its secrets, opens every source and builds the
// engine. A config error stops it with the file, source and field named; a
// missing, short or published secret stops it with the secret named.
func (m *Main) Open(ctx context.Context) error {
	cfg, err := config.Load(m.ConfigPath)
	if err != nil {
		return err
	}
	m.Config = cfg
	if m.secrets, err = cfg.LoadSecrets(); err != nil {
		return err
	}
	if m.HTTPAddr == "" {
		m.HTTPAddr = cfg.Server.HTTP
	}
	if m.FlightAddr == "" {
		m.FlightAddr = cfg.Server.Flight
	}
	if m.AdminAddr == "" {
		m.AdminAddr = cfg.Server.Admin
	}
	m.metrics = metrics.New()
	if m.PostgresAddr == "" {
		m.PostgresAddr = cfg.Server.Postgres
	}
	m.stores = map[string]gateway.Source{}
	opened, errs := openSources(ctx, cfg.Sources, startWait)
	// failed closes the stores opened but not yet served, then the rest.
	failed := func(sc config.Source, err error) error {
		for id, raw := range opened {
			if _, served := m.stores[id]; !served {
				raw.Close()
			}
		}
		m.Close()
		return fmt.Errorf("config %s: source %q: %w", cfg.File, sc.ID, err)
	}
	for i, sc := range cfg.Sources {
		if errs[i] != nil {
			return failed(sc, errs[i])
		}
	}
	for _, sc := range cfg.Sources {
		st, err := serveSource(opened[sc.ID], sc, m.secrets.CopyKeys, m.storeObserver())
		if err != nil {
			return failed(sc, err)
		}
		m.stores[sc.ID] = st
	}
	lim, err := admissionLimits(cfg.Query)
	if err != nil {
		m.Close()
		return fmt.Errorf("config %s: %w", cfg.File, err)
	}
	m.admission = admission.New(lim)
	if m.audit, err = audit.OpenKeyed(cfg.Audit.File, audit.Keys{HMAC: m.secrets.AuditHMACKey, Signer: m.secrets.AuditSigningKey}); err != nil {
		m.Close()
		return fmt.Errorf("config %s: audit: %w", cfg.File, err)
	}
	// The audit log is the table gateway.audit, under policy like any other.
	cfg.Sources = append(cfg.Sources, config.Source{ID: "gateway", Council: "Council Data Gateway", Type: "audit"})
	m.stores["gateway"] = audit.NewTable(cfg.Audit.File)
	if m.Catalog, err = catalog.New(ctx, cfg, m.stores); err != nil {
		m.Close()
		return fmt.Errorf("config %s: %w", cfg.File, err)
	}
	gov := engine.Policy{HashSalt: m.secrets.HashSalt, Audit: m.metrics.Audit(tracing.Audit(m.audit))}
	if cfg.Policy.Disabled {
		slog.Warn("POLICY IS DISABLED: every authenticated requester may read everything", "config", cfg.File)
	} else {
		if m.policy, err = policy.New(ctx, cfg.Policy); err != nil {
			m.Close()
			return fmt.Errorf("config %s: policy: %w", cfg.File, err)
		}
		gov.Decider = m.metrics.Decider(tracing.Decider(m.policy))
		watchCtx, stop := context.WithCancel(context.Background())
		m.stop = stop
		go func() {
			if err := m.policy.Watch(watchCtx); err != nil && watchCtx.Err() == nil {
				slog.Error("policy watcher stopped; changes need a restart", "err", err)
			}
		}()
	}
	if m.Engine, err = engine.New(ctx, m.Catalog, cfg.Query, gov); err != nil {
		m.Close()
		return fmt.Errorf("config %s: %w", cfg.File, err)
	}
	if m.auth, err = auth.New(ctx, cfg.Requesters, cfg.Auth.JWT); err != nil {
		m.Close()
		return fmt.Errorf("config %s: auth: %w", cfg.File, err)
	}
	return nil
}

// Listen binds the HTTP and Flight SQL addresses (":0" picks a free port)
// and returns the HTTP one; m.FlightAddr becomes the bound Flight address.
func (m *Main) Listen() (string, error) {
	sv := m.Config.Server
	cfg := flightapi.Config{Engine: m.Engine, Auth: m.auth, Version: version, Key: m.secrets.FlightTicketKey,
		TicketTTL: time.Duration(sv.FlightTicketTTL), SessionTTL: time.Duration(sv.FlightSessionTTL),
		Admission: m.admission, WriteTimeout: time.Duration(sv.WriteTimeout)}
	if t := m.Config.Server.FlightTLS; t != nil {
		tlsCfg, err := flightapi.LoadTLS(t.CertFile, t.KeyFile)
		if err != nil {
			return "", fmt.Errorf("config %s: server.flight_tls: %w", m.Config.File, err)
		}
		cfg.TLS = tlsCfg
	}
	fs, err := flightapi.New(cfg)
	if err != nil {
		return "", err
	}
	ln, err := net.Listen("tcp", m.HTTPAddr)
	if err != nil {
		return "", fmt.Errorf("listen on %s: %w", m.HTTPAddr, err)
	}
	if t := sv.HTTPTLS; t != nil {
		tlsCfg, err := flightapi.LoadTLS(t.CertFile, t.KeyFile)
		if err != nil {
			ln.Close()
			return "", fmt.Errorf("config %s: server.http_tls: %w", m.Config.File, err)
		}
		ln = tls.NewListener(ln, tlsCfg)
	}
	fln, err := net.Listen("tcp", m.FlightAddr)
	if err != nil {
		ln.Close()
		return "", fmt.Errorf("listen for Flight SQL on %s: %w", m.FlightAddr, err)
	}
	if m.AdminAddr != "off" {
		if m.adminListener, err = net.Listen("tcp", m.AdminAddr); err != nil {
			ln.Close()
			fln.Close()
			return "", fmt.Errorf("listen for the admin listener on %s (server.admin, --admin; \"off\" for none): %w", m.AdminAddr, err)
		}
		m.AdminAddr = m.adminListener.Addr().String()
		m.admin = &http.Server{Handler: m.adminHandler(), ReadHeaderTimeout: 10 * time.Second}
	}
	if m.PostgresAddr != "off" {
		pcfg := pgwire.Config{Engine: m.Engine, Auth: m.auth, Admission: m.admission, Version: version,
			WriteTimeout: time.Duration(sv.WriteTimeout), AllowInsecureRemote: sv.PostgresAllowInsecureRemote,
			MaxConnections: sv.PostgresMaxConnections, MaxConnectionsPerRequester: sv.PostgresMaxConnectionsPerRequester,
			IdleTimeout: time.Duration(sv.PostgresIdleTimeout)}
		if t := sv.PostgresTLS; t != nil {
			tlsCfg, err := flightapi.LoadTLS(t.CertFile, t.KeyFile)
			if err != nil {
				ln.Close()
				fln.Close()
				return "", fmt.Errorf("config %s: server.postgres_tls: %w", m.Config.File, err)
			}
			pcfg.TLS = tlsCfg
		}
		if m.pg, err = pgwire.New(pcfg); err != nil {
			ln.Close()
			fln.Close()
			return "", err
		}
		if m.pgListener, err = net.Listen("tcp", m.PostgresAddr); err != nil {
			ln.Close()
			fln.Close()
			return "", fmt.Errorf("listen for PostgreSQL clients on %s (server.postgres, --postgres; \"off\" for none): %w", m.PostgresAddr, err)
		}
		m.PostgresAddr = m.pgListener.Addr().String()
	}
	m.listener, m.flightListener, m.flight = ln, fln, fs
	m.FlightAddr = fln.Addr().String()
	api := &httpapi.Server{Engine: m.Engine, Auth: m.auth, MaxBodyBytes: sv.MaxBodyBytes, Version: version,
		Admission: m.admission, WriteTimeout: time.Duration(sv.WriteTimeout)}
	api.ConfigStatus = m.ReloadStatus
	if m.policy != nil {
		api.PolicyStatus = func() (string, error) { return m.policy.Revision(), m.policy.LastError() }
		api.Agreements = m.policy.Agreements
	} else {
		api.PolicyStatus = func() (string, error) { return "disabled", nil }
	}
	api.AuditStatus = m.audit.Err
	api.VerifyAudit = func() (audit.Report, error) {
		o := audit.VerifyOptions{Key: m.secrets.AuditHMACKey}
		if k := m.secrets.AuditSigningKey; k != nil {
			o.PublicKey = k.Public().(ed25519.PublicKey)
		}
		return audit.VerifyFileWith(m.audit.Path(), o)
	}
	api.History = func(ctx context.Context, requester string, limit int) ([]audit.Entry, error) {
		return audit.History(ctx, m.audit.Path(), requester, limit)
	}
	sessions := console.NewSessions()
	sessions.Secure = sv.HTTPTLS != nil || strings.HasPrefix(sv.PublicURL, "https://")
	cons := &console.Console{Auth: m.auth, Sessions: sessions, Version: version, PublicURL: sv.PublicURL}
	if o := m.Config.Auth.OIDC; o != nil {
		cons.OIDC = &console.OIDC{Config: *o, ClientSecret: m.secrets.OIDCClientSecret}
	}
	if m.pg != nil {
		cons.Postgres = m.PostgresAddr
	}
	demoKey := sha256.Sum256([]byte("demo-analyst"))
	for _, r := range m.Config.Requesters {
		cons.Demo = cons.Demo || strings.EqualFold(r.KeySHA256, hex.EncodeToString(demoKey[:]))
	}
	api.Console, api.Sessions = cons.Handler(), sessions
	// The handlers set the write deadline again when they start to answer
	// and for each batch of a result; the server's own is for what net/http
	// writes itself.
	handler := api.Handler()
	cons.API = handler // downloads are the API's answers
	// Traces: a span per HTTP request, the caller's traceparent honoured.
	m.server = &http.Server{Handler: otelhttp.NewHandler(handler, "gateway.http", otelhttp.WithSpanNameFormatter(func(string, *http.Request) string { return "gateway.http" })), ReadHeaderTimeout: time.Duration(sv.ReadHeaderTimeout),
		ReadTimeout: time.Duration(sv.ReadTimeout), WriteTimeout: time.Duration(sv.WriteTimeout), IdleTimeout: time.Duration(sv.IdleTimeout)}
	return ln.Addr().String(), nil
}

// Serve serves HTTP and Flight SQL until ctx ends (or one of them fails),
// then shuts both down gracefully.
func (m *Main) Serve(ctx context.Context) error {
	if m.listener == nil {
		if _, err := m.Listen(); err != nil {
			return err
		}
	}
	flightScheme := "grpc://"
	if m.Config.Server.FlightTLS != nil {
		flightScheme = "grpc+tls://"
	}
	pgURL := "off"
	if m.pg != nil {
		pgURL = "postgres://" + m.PostgresAddr
	}
	httpScheme := "http://"
	if m.Config.Server.HTTPTLS != nil {
		httpScheme = "https://"
	}
	adminURL := "off"
	if m.admin != nil {
		adminURL = "http://" + m.AdminAddr
	}
	slog.Info("council gateway serving", "http", httpScheme+m.listener.Addr().String(), "flight", flightScheme+m.FlightAddr, "postgres", pgURL, "admin", adminURL,
		"sources", len(m.Config.Sources), "standard_datasets", len(m.Config.Datasets))
	errc := make(chan error, 3)
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go m.watchConfig(watchCtx) // sources, mappings and datasets reload on change or SIGHUP
	go func() { errc <- m.server.Serve(m.listener) }()
	go func() { errc <- m.flight.Serve(m.flightListener) }()
	if m.admin != nil {
		go func() {
			if err := m.admin.Serve(m.adminListener); err != nil && !errors.Is(err, http.ErrServerClosed) {
				slog.Error("admin listener stopped", "addr", m.AdminAddr, "err", err)
			}
		}()
	}
	if m.pg != nil {
		go func() { errc <- m.pg.Serve(m.pgListener) }()
	}
	var failed error
	select {
	case failed = <-errc:
	case <-ctx.Done():
		m.drain(time.Duration(m.Config.Server.DrainTimeout))
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m.flight.Stop(shutdown)
	if m.pg != nil {
		_ = m.pg.Close(shutdown)
	}
	err := m.server.Shutdown(shutdown)
	if err != nil {
		// A client still holding a connection after the drain: closed.
		err = nil
		_ = m.server.Close()
	}
	if m.admin != nil {
		_ = m.admin.Shutdown(shutdown)
	}
	// Every result closed, so every query's last record written, before
	// Close closes the audit log.
	for end := time.Now().Add(5 * time.Second); !m.Engine.Idle() && time.Now().Before(end); {
		time.Sleep(20 * time.Millisecond)
	}
	if failed != nil && !errors.Is(failed, http.ErrServerClosed) {
		return failed
	}
	return err
}

// storeObserver is told of each call to a council's store: the metrics
// and the traces.
func (m *Main) storeObserver() admission.Observer {
	return admission.Observers{m.metrics, tracing.Stores{}}
}

// drain stops the gateway taking queries (new ones get 503 with
// Retry-After, /readyz says draining) while the doors stay open, lets the
// running queries finish for up to grace, then cancels those left (each
// audited as cancelled, its client told why) and waits for them to end.
func (m *Main) drain(grace time.Duration) {
	m.admission.Drain()
	busy := func() bool { st := m.admission.Stats(); return st.Running+st.Queued > 0 }
	slog.Info("draining: taking no new queries", "running", m.admission.Stats().Running, "grace", grace)
	deadline := time.Now().Add(grace)
	for busy() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if busy() {
		n := m.Engine.CancelAll(fmt.Sprintf("the query was cancelled: the gateway is shutting down, and its drain timeout (server.drain_timeout, %s) has passed", grace))
		slog.Warn("drain timeout passed: cancelling the queries still running", "queries", n)
		for end := time.Now().Add(10 * time.Second); busy() && time.Now().Before(end); {
			time.Sleep(50 * time.Millisecond)
		}
	}
	slog.Info("drained")
}

// Close releases the engine and every store.
func (m *Main) Close() error {
	var errs []error
	if m.stop != nil {
		m.stop()
	}
	if m.audit != nil {
		errs = append(errs, m.audit.Close())
	}
	if m.policy != nil {
		errs = append(errs, m.policy.Close())
	}
	if m.Engine != nil {
		errs = append(errs, m.Engine.Close())
	}
	if m.auth != nil {
		errs = append(errs, m.auth.Close())
	}
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	for _, st := range m.stores {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

// Check validates the config and its secrets and connects to every source,
// printing one line for the secrets and one per council; then the mapping
// mistakes it can see, and with Sample what that many rows of each mapped
// table say of its mapping (checkMappings).
func (m *Main) Check(ctx context.Context, w io.Writer) error {
	cfg, err := config.Load(m.ConfigPath)
	if err != nil {
		return err
	}
	m.Config = cfg
	m.stores = map[string]gateway.Source{}
	defer m.Close()
	failed := 0
	if s, err := cfg.LoadSecrets(); err != nil {
		fmt.Fprintf(w, "FAIL secrets: %v\n", err)
		failed++
	} else {
		fmt.Fprintf(w, "ok   secrets: hash salt, Flight SQL ticket key, audit HMAC key (id %s), audit signing key\n", audit.KeyID(s.AuditHMACKey))
	}
	opened, errs := openSources(ctx, cfg.Sources, connectTimeout)
	for i, sc := range cfg.Sources {
		if errs[i] != nil {
			fmt.Fprintf(w, "FAIL %-12s %-34s %s: %v\n", sc.ID, sc.Council, sc.Type, errs[i])
			failed++
			continue
		}
		m.stores[sc.ID] = opened[sc.ID]
	}
	if len(m.stores) == len(cfg.Sources) {
		cat, err := catalog.New(ctx, cfg, m.stores)
		if err != nil {
			return fmt.Errorf("config %s: %w", cfg.File, err)
		}
		for _, st := range cat.Check(ctx) {
			if !st.OK {
				failed++
				fmt.Fprintf(w, "FAIL %-12s %-34s %s: %s\n", st.Source, st.Council, st.Type, st.Error)
				continue
			}
			rows := "rows unknown"
			if st.Rows >= 0 {
				rows = fmt.Sprintf("%d rows", st.Rows)
			}
			fmt.Fprintf(w, "ok   %-12s %-34s %-8s %d tables, %s (%s)\n", st.Source, st.Council, st.Type, st.Tables, rows, st.Elapsed.Round(time.Millisecond))
		}
		// The engine's own start-up checks: each mapping's date formats,
		// and every standard column compiled over its council's table.
		if eng, err := engine.New(ctx, cat, cfg.Query, engine.Policy{}); err != nil {
			fmt.Fprintf(w, "FAIL mappings: %v\n", err)
			failed++
		} else {
			eng.Close()
			fmt.Fprintf(w, "ok   mappings: every standard column of every council compiles over its table\n")
		}
		if failed == 0 {
			n, err := m.checkMappings(ctx, w, cat)
			if err != nil {
				return err
			}
			if n > 0 {
				return fmt.Errorf("%d mapping checks failed (a conversion that read no sampled value, or a table that could not be sampled)", n)
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d checks failed (the secrets and each source)", failed, len(cfg.Sources)+1)
	}
	return nil
}

// startWait bounds how long start-up waits for the council stores, all
// at once: the doors listen within a second whatever the stores do, and a
// store not open by then is connected in the background.
const startWait = 300 * time.Millisecond

// connectTimeout bounds one attempt to connect to a store (gateway check
// waits this long for each, all at once).
const connectTimeout = 5 * time.Second

// openSources opens every source at once, each given up to wait; opened
// holds each source's store by id, errs each one's error by position.
func openSources(ctx context.Context, scs []config.Source, wait time.Duration) (opened map[string]gateway.Source, errs []error) {
	stores := make([]gateway.Source, len(scs))
	errs = make([]error, len(scs))
	var wg sync.WaitGroup
	for i, sc := range scs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = openSourceWithin(ctx, sc, wait)
		}()
	}
	wg.Wait()
	opened = map[string]gateway.Source{}
	for i, sc := range scs {
		if stores[i] != nil {
			opened[sc.ID] = stores[i]
		}
	}
	return opened, errs
}

// openSource opens one council store as start-up does (openSourceWithin
// startWait).
func openSource(ctx context.Context, sc config.Source) (gateway.Source, error) {
	return openSourceWithin(ctx, sc, startWait)
}

// openSourceWithin opens one council store with its adapter. A PostgreSQL or
// MariaDB store that is unreachable now, or does not answer within wait
// (a network blackhole: it accepts and never speaks), rather than
// misconfigured, is connected in the background (lazySource): the gateway
// starts, readyz names the council as down, and only queries that read it
// fail, with 502 naming it, until it comes back.
func openSourceWithin(ctx context.Context, sc config.Source, wait time.Duration) (gateway.Source, error) {
	open := func(ctx context.Context) (gateway.Source, error) {
		switch sc.Type {
		case "postgres":
			return postgres.Open(ctx, sc, memory.DefaultAllocator)
		case "mysql":
			return mysql.Open(ctx, sc, memory.DefaultAllocator)
		case "sqlite":
			return sqlite.Open(ctx, sc, memory.DefaultAllocator)
		case "duckdb":
			return duckdbfile.Open(ctx, sc)
		case "files":
			return files.Open(ctx, sc)
		}
		return nil, fmt.Errorf("unknown type %q", sc.Type)
	}
	remote := sc.Type == "postgres" || sc.Type == "mysql"
	if !remote {
		return open(ctx)
	}
	type opened struct {
		st  gateway.Source
		err error
	}
	first := make(chan opened, 1)
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), connectTimeout)
	go func() {
		defer cancel()
		st, err := open(actx)
		first <- opened{st, err}
	}()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case o := <-first:
		if o.err == nil {
			return o.st, nil
		}
		if gateway.ErrorCode(o.err) != gateway.CodeSourceFailed && !errors.Is(o.err, context.DeadlineExceeded) {
			return nil, o.err // misconfigured: start-up fails naming the source
		}
		slog.Warn("source not reachable at start; connecting in the background", "source", sc.ID, "err", o.err)
		return newLazySource(sc.ID, open, o.err), nil
	case <-timer.C:
		slog.Warn("source not answering at start; connecting in the background", "source", sc.ID, "waited", wait)
		l := newLazySource(sc.ID, open, fmt.Errorf("no answer within %s at start (still connecting)", wait))
		go func() { // the first attempt may still succeed: keep it, or close it
			if o := <-first; o.err == nil && !l.adopt(o.st) {
				o.st.Close()
			}
		}()
		return l, nil
	}
}

// lazySource is a council store that was not reachable at start. One
// goroutine connects in the background, each attempt bounded by
// connectTimeout and attempts spaced by exponential backoff
// (cenkalti/backoff), so a down council costs no query a connection
// attempt: until it is up, every call fails at once with the last
// attempt's error, 502 naming the council. It has the optional
// capabilities the PostgreSQL and MariaDB adapters have (Aggregator,
// Planner), so a council that was down at start gets its pushdown and its
// EXPLAIN statements once it is up.
type lazySource struct {
	id   string
	open func(context.Context) (gateway.Source, error)
	stop context.CancelFunc
	done chan struct{}
	up   chan struct{} // closed once the store is open

	mu      sync.Mutex
	st      gateway.Source
	lastErr error
}

var (
	_ gateway.Source     = (*lazySource)(nil)
	_ gateway.Aggregator = (*lazySource)(nil)
	_ gateway.Planner    = (*lazySource)(nil)
)

// newLazySource starts connecting to the store in the background. lastErr,
// if set, is why it is not open yet: calls fail with it at once until the
// store is up; with none, calls wait (up to their context) for the first
// attempt.
func newLazySource(id string, open func(context.Context) (gateway.Source, error), lastErr error) *lazySource {
	ctx, stop := context.WithCancel(context.Background())
	l := &lazySource{id: id, open: open, stop: stop, done: make(chan struct{}), up: make(chan struct{}), lastErr: lastErr}
	go l.connect(ctx)
	return l
}

// connect tries to open the store until it is open or the source closes.
func (l *lazySource) connect(ctx context.Context) {
	defer close(l.done)
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = 250*time.Millisecond, 30*time.Second
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, connectTimeout)
		st, err := l.open(actx)
		cancel()
		if err == nil {
			if !l.adopt(st) {
				st.Close()
			}
			return
		}
		if ctx.Err() != nil {
			return
		}
		l.mu.Lock()
		l.lastErr = err
		l.mu.Unlock()
		wait := b.NextBackOff()
		slog.Debug("source still not reachable", "source", l.id, "attempt", attempt, "retry_in", wait, "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
	}
}

// adopt makes st the open store, unless one already is or the source is
// closed; it reports whether it did.
func (l *lazySource) adopt(st gateway.Source) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.up:
		return false
	default:
	}
	if l.lastErr != nil && errors.Is(l.lastErr, errLazyClosed) {
		return false
	}
	l.st = st
	close(l.up)
	slog.Info("source reachable again", "source", l.id)
	l.stop() // the background attempts end
	return true
}

var errLazyClosed = errors.New("source closed")

func (l *lazySource) opened() gateway.Source {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st
}

func (l *lazySource) get(ctx context.Context) (gateway.Source, error) {
	if st := l.opened(); st != nil {
		return st, nil
	}
	unreachable := func(err error) error {
		e := gateway.Wrap(gateway.CodeSourceFailed, err, "council source %q is not reachable", l.id)
		e.Source = l.id
		return e
	}
	l.mu.Lock()
	last := l.lastErr
	l.mu.Unlock()
	if last != nil {
		return nil, unreachable(last)
	}
	select { // the first attempt is still under way
	case <-l.up:
		return l.opened(), nil
	case <-ctx.Done():
		return nil, unreachable(ctx.Err())
	}
}

func (l *lazySource) Tables(ctx context.Context) ([]gateway.Table, error) {
	st, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return st.Tables(ctx)
}

func (l *lazySource) Scan(ctx context.Context, req gateway.ScanRequest) (*gateway.ScanResult, error) {
	st, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return st.Scan(ctx, req)
}

func (l *lazySource) Aggregate(ctx context.Context, req gateway.AggregateRequest) (*gateway.ScanResult, error) {
	st, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	ag, ok := st.(gateway.Aggregator)
	if !ok {
		return nil, gateway.NotPushed("the adapter cannot compute aggregates")
	}
	return ag.Aggregate(ctx, req)
}

func (l *lazySource) planner(ctx context.Context) (gateway.Planner, error) {
	st, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	pl, ok := st.(gateway.Planner)
	if !ok {
		return nil, fmt.Errorf("council source %q: the adapter cannot show its statement", l.id)
	}
	return pl, nil
}

func (l *lazySource) PlanScan(ctx context.Context, req gateway.ScanRequest) (*gateway.ScanPlan, error) {
	pl, err := l.planner(ctx)
	if err != nil {
		return nil, err
	}
	return pl.PlanScan(ctx, req)
}

func (l *lazySource) PlanAggregate(ctx context.Context, req gateway.AggregateRequest) (*gateway.ScanPlan, error) {
	pl, err := l.planner(ctx)
	if err != nil {
		return nil, err
	}
	return pl.PlanAggregate(ctx, req)
}

func (l *lazySource) Ping(ctx context.Context) error {
	st, err := l.get(ctx)
	if err != nil {
		return err
	}
	return st.Ping(ctx)
}

func (l *lazySource) Close() error {
	l.mu.Lock()
	if l.st == nil {
		l.lastErr = errLazyClosed
	}
	l.mu.Unlock()
	l.stop()
	<-l.done
	if st := l.opened(); st != nil {
		return st.Close()
	}
	return nil
}
