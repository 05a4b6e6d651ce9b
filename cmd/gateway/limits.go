package main

import (
	"bufio"
	"fmt"
	"github.com/councildata/gateway/adapters/accelerate"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/admission"
	"github.com/councildata/gateway/gateway/config"
)

// admissionLimits are the query section's limits for the admission
// controller. Without query.memory_budget the budget is the memory of
// max_concurrent queries at their memory_limit, at most half the machine's
// memory (DuckDB's memory_limit is not a hard cap on what a query's
// process memory grows to, so the other half is headroom), and at least
// one query's.
func admissionLimits(q config.Query) (admission.Limits, error) {
	perQuery, err := q.MemoryLimitBytes()
	if err != nil {
		return admission.Limits{}, fmt.Errorf("query: field memory_limit: %w", err)
	}
	budget, err := q.MemoryBudgetBytes()
	if err != nil {
		return admission.Limits{}, fmt.Errorf("query: field memory_budget: %w", err)
	}
	if budget == 0 {
		budget = int64(max(q.MaxConcurrent, 1)) * perQuery
		if total := machineMemory(); total > 0 {
			budget = min(budget, total/2)
		}
		budget = max(budget, perQuery)
	}
	return admission.Limits{Slots: q.MaxConcurrent, MaxQueued: q.MaxQueued, PerRequester: q.MaxPerRequester,
		MemoryBudget: budget, QueryMemory: perQuery, Timeout: time.Duration(q.Timeout), MaxQueueWait: time.Duration(q.MaxQueueWait)}, nil
}

// machineMemory is the machine's memory in bytes (Linux's MemTotal), or 0
// when it cannot be read.
func machineMemory() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// limitSource puts a council's store behind its per-source call limit.
func limitSource(st gateway.Source, sc config.Source, obs admission.Observer) gateway.Source {
	cool := time.Duration(sc.BreakerCooldown)
	return admission.LimitSource(st, sc.ID, sc.Council, admission.SourceLimits{MaxConcurrent: sc.MaxConcurrent, StallTimeout: time.Duration(sc.StallTimeout), Observer: obs,
		Breaker: admission.BreakerLimits{Failures: max(sc.BreakerFailures, 0), Cooldown: cool, MaxCooldown: max(cool, time.Minute)}})
}

// serveSource puts a council's opened store behind what every query of it
// goes through: its local copies, when the source is accelerated, then its
// per-source call limit. keys are the snapshots' encryption keys by source
// id.
func serveSource(st gateway.Source, sc config.Source, keys map[string][]byte, obs admission.Observer) (gateway.Source, error) {
	if sc.Accelerate != nil {
		a, err := accelerate.New(st, sc, accelerate.Options{Key: keys[sc.ID]})
		if err != nil {
			return nil, err
		}
		st = a
	}
	return limitSource(st, sc, obs), nil
}
