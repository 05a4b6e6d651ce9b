// Command loadgen loads the gateway's HTTP API from 127.0.0.1 only, in one
// of two shapes, each bounded in count and time.
//
// S6 (the default): C concurrent analysts, each running a fixed number of
// queries from a mixed set (--per), stopping after --deadline. It prints
// p50/p99 latency, errors and throughput.
//
//	loadgen --base http://127.0.0.1:18080 --key bench-key --analysts 50 --per 4 \
//	  --query 'SELECT ...' --query 'SELECT ...'
//
// Overload (--duration): C clients, each sending one query after another
// for the duration, each request given up after --timeout as a client with
// that timeout would; a refused request (429, 503) waits for its
// Retry-After before the next one unless --no-backoff. Clients take the
// keys of --key in turn (repeat it, or give a comma-separated list). It
// prints the useful throughput (200 answers read in full, per second),
// their p50/p99, and the counts of 429s, 503s, client timeouts and
// anything else.
//
//	loadgen --base http://127.0.0.1:18090 --key k1,k2 --clients 500 --duration 30s --timeout 5s \
//	  --query 'SELECT ...'
//
// With --pg DSN the overload shape runs the queries on PostgreSQL itself
// (pgx, a pool of --clients connections, every row read as raw bytes): the
// floor a pass-through query through the gateway is judged against.
//
//	loadgen --pg postgres://postgres@127.0.0.1:5432/postgres --clients 32 --duration 20s --query 'SELECT ...'
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

type multi []string

func (m *multi) String() string { return strings.Join(*m, "; ") }
func (m *multi) Set(s string) error {
	*m = append(*m, s)
	return nil
}

func main() {
	base := flag.String("base", "http://127.0.0.1:18080", "gateway base URL (loopback only)")
	var keys multi
	flag.Var(&keys, "key", "API key (repeat, or comma-separated; clients take them in turn; default bench-key)")
	purpose := flag.String("purpose", "research", "purpose")
	analysts := flag.Int("analysts", 50, "S6: concurrent analysts")
	per := flag.Int("per", 4, "S6: queries per analyst")
	deadline := flag.Duration("deadline", 5*time.Minute, "S6: stop sending after this long")
	clients := flag.Int("clients", 20, "overload: concurrent clients")
	duration := flag.Duration("duration", 0, "overload: run the clients this long (0: the S6 shape)")
	timeout := flag.Duration("timeout", 5*time.Second, "overload: each client gives a request up after this long")
	sendTimeout := flag.Bool("send-timeout", false, "overload: tell the gateway the client's timeout (timeout_ms)")
	noBackoff := flag.Bool("no-backoff", false, "overload: ignore Retry-After and send again at once")
	accept := flag.String("accept", "application/json", "overload: the Accept header (the result's format)")
	pgDSN := flag.String("pg", "", "overload: run the queries on this PostgreSQL (loopback) instead of the gateway")
	var queries multi
	flag.Var(&queries, "query", "a query of the mix (repeat)")
	flag.Parse()
	if *pgDSN != "" {
		if *duration <= 0 || *clients < 1 || *clients > 500 || *duration > 10*time.Minute || len(queries) == 0 {
			fmt.Fprintln(os.Stderr, "loadgen: --pg needs --duration (at most 10m), 1-500 --clients and a --query")
			os.Exit(2)
		}
		if err := pgOverload(*pgDSN, queries, *clients, *duration, *timeout); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(1)
		}
		return
	}
	acceptHeader = *accept
	u, err := url.Parse(*base)
	if err != nil || (u.Hostname() != "127.0.0.1" && u.Hostname() != "localhost") || len(queries) == 0 {
		fmt.Fprintln(os.Stderr, "loadgen: need a loopback --base and at least one --query")
		os.Exit(2)
	}
	var keyList []string
	for _, k := range keys {
		keyList = append(keyList, strings.Split(k, ",")...)
	}
	if len(keyList) == 0 {
		keyList = []string{"bench-key"}
	}
	if *duration > 0 {
		if *clients < 1 || *clients > 500 || *duration > 10*time.Minute || *timeout <= 0 {
			fmt.Fprintln(os.Stderr, "loadgen: at most 500 clients for at most 10 minutes, with a positive --timeout")
			os.Exit(2)
		}
		overload(*base, keyList, *purpose, queries, *clients, *duration, *timeout, *sendTimeout, !*noBackoff)
		return
	}
	if *analysts > 500 || *per > 100 {
		fmt.Fprintln(os.Stderr, "loadgen: at most 500 analysts × 100 queries")
		os.Exit(2)
	}
	s6(*base, keyList, *purpose, queries, *analysts, *per, *deadline)
}

func s6(base string, keys []string, purpose string, queries []string, analysts, per int, deadline time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: analysts}}
	var mu sync.Mutex
	var lat []time.Duration
	errs, skipped := 0, 0
	var firstErr string
	var wg sync.WaitGroup
	start := time.Now()
	for a := range analysts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := keys[a%len(keys)] // analysts take the keys in turn
			for i := range per {
				if ctx.Err() != nil {
					mu.Lock()
					skipped++
					mu.Unlock()
					continue
				}
				q := queries[(a+i)%len(queries)]
				body, _ := json.Marshal(map[string]string{"sql": q, "purpose": purpose})
				req, _ := http.NewRequestWithContext(ctx, "POST", base+"/v1/query", strings.NewReader(string(body)))
				req.Header.Set("Authorization", "Bearer "+key)
				t0 := time.Now()
				resp, err := client.Do(req)
				ok := err == nil
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					ok = err == nil && resp.StatusCode == 200
					if !ok && err == nil {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				d := time.Since(t0)
				mu.Lock()
				if ok {
					lat = append(lat, d)
				} else {
					errs++
					if firstErr == "" {
						firstErr = err.Error()
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	slices.Sort(lat)
	fmt.Printf("ok=%d errors=%d skipped=%d p50_ms=%.1f p99_ms=%.1f max_ms=%.1f wall_s=%.1f qps=%.2f first_error=%q\n",
		len(lat), errs, skipped, pct(lat, 0.50), pct(lat, 0.99), pct(lat, 1), wall.Seconds(), float64(len(lat))/wall.Seconds(), firstErr)
}

// pct is the p-th quantile of sorted durations, in ms.
func pct(lat []time.Duration, p float64) float64 {
	if len(lat) == 0 {
		return 0
	}
	return float64(lat[min(len(lat)-1, int(float64(len(lat))*p))].Microseconds()) / 1000
}

// acceptHeader is the overload requests' Accept header (--accept).
var acceptHeader = "application/json"

// tally is what the overload clients saw.
type tally struct {
	mu       sync.Mutex
	ok       []time.Duration // 200s read in full
	refused  []time.Duration // 429s and 503s
	status   map[string]int  // 429, 503 by code, other statuses
	timeouts int             // given up by the client
	errs     int             // transport errors other than timeouts
	firstErr string
}

func (t *tally) add(f func(*tally)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f(t)
}

func overload(base string, keys []string, purpose string, queries []string, clients int, duration, timeout time.Duration, sendTimeout, backoff bool) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxIdleConns: clients}}
	t := &tally{status: map[string]int{}}
	cpu0 := cpuSeconds()
	wall := runClients(clients, duration, func(c, i int, end time.Time) {
		wait := request(client, base, keys[c%len(keys)], purpose, queries[(c+i)%len(queries)], timeout, sendTimeout, t)
		if backoff && wait > 0 {
			time.Sleep(min(wait, time.Until(end)))
		}
	})
	slices.Sort(t.ok)
	slices.Sort(t.refused)
	var other []string
	for k, n := range t.status {
		other = append(other, fmt.Sprintf("%s:%d", k, n))
	}
	sort.Strings(other)
	fmt.Printf("clients=%d timeout_s=%.0f backoff=%v send_timeout=%v wall_s=%.1f ok=%d qps_ok=%.2f p50_ms=%.1f p99_ms=%.1f r429=%d r503=%d client_timeouts=%d errors=%d refused_p50_ms=%.1f client_cpu_s=%.1f statuses=%s first_error=%q\n",
		clients, timeout.Seconds(), backoff, sendTimeout, wall.Seconds(), len(t.ok), float64(len(t.ok))/wall.Seconds(), pct(t.ok, 0.5), pct(t.ok, 0.99),
		t.status["429"], t.status["503"], t.timeouts, t.errs, pct(t.refused, 0.5), cpuSeconds()-cpu0, strings.Join(other, ","), t.firstErr)
}

// runClients runs clients goroutines, each calling one with its number
// and its request count until duration has passed, and returns the wall
// time they took.
func runClients(clients int, duration time.Duration, one func(c, i int, end time.Time)) time.Duration {
	end := time.Now().Add(duration)
	start := time.Now()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(end); i++ {
				one(c, i, end)
			}
		}()
	}
	wg.Wait()
	return time.Since(start)
}

// request sends one query and records what came back; it returns the
// Retry-After of a refusal.
func request(client *http.Client, base, key, purpose, q string, timeout time.Duration, sendTimeout bool, t *tally) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	body := map[string]any{"sql": q, "purpose": purpose}
	if sendTimeout {
		body["timeout_ms"] = timeout.Milliseconds()
	}
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/v1/query", strings.NewReader(string(raw)))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Accept", acceptHeader)
	t0 := time.Now()
	resp, err := client.Do(req)
	var text []byte
	if err == nil {
		text, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	d := time.Since(t0)
	switch {
	case err != nil && (errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil):
		t.add(func(t *tally) { t.timeouts++ })
	case err != nil:
		t.add(func(t *tally) {
			t.errs++
			if t.firstErr == "" {
				t.firstErr = err.Error()
			}
		})
	case resp.StatusCode == http.StatusOK:
		t.add(func(t *tally) { t.ok = append(t.ok, d) })
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		_ = json.Unmarshal(text, &e)
		t.add(func(t *tally) {
			t.refused = append(t.refused, d)
			t.status[strconv.Itoa(resp.StatusCode)]++
			t.status[strconv.Itoa(resp.StatusCode)+"/"+e.Error.Code]++
		})
		secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return time.Duration(secs) * time.Second
	default:
		t.add(func(t *tally) {
			t.status[strconv.Itoa(resp.StatusCode)]++
			if t.firstErr == "" {
				t.firstErr = fmt.Sprintf("status %d: %.200s", resp.StatusCode, text)
			}
		})
	}
	return 0
}

// cpuSeconds is the CPU the load generator itself has used (user and
// system): on one machine with the gateway, what it takes from it.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// pgOverload is the overload shape run on PostgreSQL itself: clients
// connections, each running the queries in turn for duration and reading
// every row (as raw bytes, no decoding), printing the same fields as
// overload.
func pgOverload(dsn string, queries []string, clients int, duration, timeout time.Duration) error {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return err
	}
	if h := cfg.ConnConfig.Host; h != "127.0.0.1" && h != "localhost" && h != "::1" {
		return fmt.Errorf("--pg must be a loopback address, not %q", h)
	}
	cfg.MaxConns, cfg.MinConns = int32(clients), int32(clients)
	ctx := context.Background()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := pool.Ping(ctx); err != nil {
		return err
	}
	t := &tally{status: map[string]int{}}
	cpu0 := cpuSeconds()
	wall := runClients(clients, duration, func(c, i int, _ time.Time) {
		qctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		t0 := time.Now()
		rows, err := pool.Query(qctx, queries[(c+i)%len(queries)])
		if err == nil {
			for rows.Next() {
				_ = rows.RawValues()
			}
			rows.Close()
			err = rows.Err()
		}
		d := time.Since(t0)
		t.add(func(t *tally) {
			if err != nil {
				t.errs++
				if t.firstErr == "" {
					t.firstErr = err.Error()
				}
				return
			}
			t.ok = append(t.ok, d)
		})
	})
	slices.Sort(t.ok)
	fmt.Printf("clients=%d wall_s=%.1f ok=%d qps_ok=%.2f p50_ms=%.1f p99_ms=%.1f errors=%d client_cpu_s=%.1f first_error=%q\n",
		clients, wall.Seconds(), len(t.ok), float64(len(t.ok))/wall.Seconds(), pct(t.ok, 0.5), pct(t.ok, 0.99), t.errs, cpuSeconds()-cpu0, t.firstErr)
	return nil
}
