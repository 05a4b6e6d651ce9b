package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/catalog"
	"github.com/councildata/gateway/gateway/config"
)

// Reload reads the config file again and puts its sources, mappings and
// standard datasets in force: a new or changed source is opened, an
// unchanged one kept as it is, and the new catalog checked (tables,
// mappings, dataset types) before anything changes. On any error the
// config in force stays, whole, and the error says what was wrong.
// Queries already planned finish on the config they started with; the
// stores a reload drops or replaces are closed once those have had their
// timeout to finish. The other sections (server, query, policy, audit,
// auth, requesters) are read at start only: a change to them is logged as
// needing a restart.
func (m *Main) Reload(ctx context.Context) error {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	m.reloads++
	cfg, err := config.Load(m.ConfigPath)
	if err != nil {
		return m.reloadFailed(err)
	}
	if restart := restartOnly(m.Config, cfg); len(restart) > 0 {
		slog.Warn("config changed in sections read at start only; they need a restart", "config", cfg.File, "sections", restart)
	}
	stores := map[string]gateway.Source{}
	var opened []gateway.Source // closed again if the reload fails
	fail := func(err error) error {
		for _, st := range opened {
			st.Close()
		}
		return m.reloadFailed(err)
	}
	old := map[string]config.Source{}
	for _, sc := range m.Config.Sources {
		old[sc.ID] = sc
	}
	for _, sc := range cfg.Sources {
		if prev, ok := old[sc.ID]; ok && reflect.DeepEqual(prev, sc) {
			stores[sc.ID] = m.stores[sc.ID]
			continue
		}
		st, err := openSource(ctx, sc)
		if err != nil {
			return fail(fmt.Errorf("config %s: source %q: %w", cfg.File, sc.ID, err))
		}
		var keys map[string][]byte
		if sc.Accelerate != nil && sc.Accelerate.EncryptionKeyFile != "" {
			sec, err := cfg.LoadSecrets()
			if err != nil {
				st.Close()
				return fail(err)
			}
			keys = sec.CopyKeys
		}
		served, err := serveSource(st, sc, keys, m.storeObserver())
		if err != nil {
			st.Close()
			return fail(fmt.Errorf("config %s: source %q: %w", cfg.File, sc.ID, err))
		}
		st = served
		opened = append(opened, st)
		stores[sc.ID] = st
	}
	cfg.Sources = append(cfg.Sources, config.Source{ID: "gateway", Council: "Council Data Gateway", Type: "audit"})
	stores["gateway"] = m.stores["gateway"]
	cat, err := catalog.New(ctx, cfg, stores)
	if err != nil {
		return fail(fmt.Errorf("config %s: %w", cfg.File, err))
	}
	if err := m.Engine.Reload(ctx, cat); err != nil {
		return fail(fmt.Errorf("config %s: %w", cfg.File, err))
	}
	// In force. The stores no longer used close once every query that
	// may still read them has ended (its timeout, counted from arrival).
	var dropped []gateway.Source
	for id, st := range m.stores {
		if stores[id] != st {
			dropped = append(dropped, st)
		}
	}
	if len(dropped) > 0 {
		grace := time.Duration(m.Config.Query.Timeout) + 10*time.Second
		time.AfterFunc(grace, func() {
			for _, st := range dropped {
				st.Close()
			}
		})
	}
	keep := *m.Config // the sections read at start stay as they were
	keep.Sources, keep.Datasets = cfg.Sources, cfg.Datasets
	m.Config, m.Catalog, m.stores = &keep, cat, stores
	m.reloadErr = nil
	slog.Info("config reloaded", "config", cfg.File, "sources", len(cfg.Sources)-1, "standard_datasets", len(cfg.Datasets), "opened", len(opened), "closing", len(dropped))
	return nil
}

func (m *Main) reloadFailed(err error) error {
	m.reloadErr = err
	slog.Error("config reload rejected; the config in force stays", "config", m.ConfigPath, "err", err)
	return err
}

// ReloadStatus is how many reloads were tried and the last one's error,
// nil after a good one.
func (m *Main) ReloadStatus() (int, error) {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	return m.reloads, m.reloadErr
}

// restartOnly names the sections of the config that differ between a and
// b and are read at start only.
func restartOnly(a, b *config.Config) []string {
	var out []string
	for name, pair := range map[string][2]any{
		"server": {a.Server, b.Server}, "query": {a.Query, b.Query}, "policy": {a.Policy, b.Policy},
		"audit": {a.Audit, b.Audit}, "auth": {a.Auth, b.Auth}, "requesters": {a.Requesters, b.Requesters},
	} {
		if !reflect.DeepEqual(pair[0], pair[1]) {
			out = append(out, name)
		}
	}
	return out
}

// watchConfig reloads on SIGHUP and whenever the config file changes,
// until ctx ends.
func (m *Main) watchConfig(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var events <-chan fsnotify.Event
	if w, err := fsnotify.NewWatcher(); err != nil {
		slog.Warn("config file not watched; reload with SIGHUP", "err", err)
	} else {
		defer w.Close()
		// The directory, not the file: editors save by renaming a new
		// file over the old one.
		if err := w.Add(filepath.Dir(m.Config.File)); err != nil {
			slog.Warn("config file not watched; reload with SIGHUP", "err", err)
		} else {
			events = w.Events
		}
	}
	name := filepath.Clean(m.Config.File)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			timer.Reset(0)
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if filepath.Clean(ev.Name) == name {
				timer.Reset(250 * time.Millisecond) // one reload per save
			}
		case <-timer.C:
			if err := m.Reload(ctx); err != nil && errors.Is(ctx.Err(), context.Canceled) {
				return
			}
		}
	}
}
