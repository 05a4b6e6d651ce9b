package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// sizeUnits are the units DuckDB accepts in a size such as memory_limit:
// KB, MB, GB and TB are powers of 1000, KiB, MiB, GiB and TiB of 1024.
var sizeUnits = map[string]float64{
	"": 1, "b": 1, "byte": 1, "bytes": 1,
	"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// ParseSize reads a size as DuckDB writes one, e.g. "1GB", "512 MiB",
// "1.5gb", in bytes. A bare number is bytes.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(strings.ToLower(s))
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(t)
	}
	n, err := strconv.ParseFloat(t[:i], 64)
	unit, ok := sizeUnits[strings.TrimSpace(t[i:])]
	if err != nil || !ok || n <= 0 || n*unit > math.MaxInt64 {
		return 0, fmt.Errorf("%q is not a size like 512MB or 4GB", s)
	}
	return int64(n * unit), nil
}

// MemoryLimitBytes is MemoryLimit in bytes.
func (q Query) MemoryLimitBytes() (int64, error) { return ParseSize(q.MemoryLimit) }

// MemoryBudgetBytes is MemoryBudget in bytes, 0 when it is not set.
func (q Query) MemoryBudgetBytes() (int64, error) {
	if q.MemoryBudget == "" {
		return 0, nil
	}
	return ParseSize(q.MemoryBudget)
}

// validateLimits checks the admission limits of the query section.
func (q Query) validateLimits() []error {
	var errs []error
	if q.MaxConcurrent < 0 || q.MaxQueued < 0 || q.MaxPerRequester < 0 || q.MaxQueueWait < 0 {
		errs = append(errs, errors.New("query: fields max_concurrent, max_queued, max_queue_wait and max_per_requester must be positive"))
	}
	limit, err := q.MemoryLimitBytes()
	if err != nil {
		errs = append(errs, fmt.Errorf("query: field memory_limit: %w", err))
	}
	budget, err := q.MemoryBudgetBytes()
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("query: field memory_budget: %w", err))
	case budget > 0 && limit > budget:
		errs = append(errs, fmt.Errorf("query: field memory_budget %s is less than one query's memory_limit %s: no query could run", q.MemoryBudget, q.MemoryLimit))
	}
	return errs
}
