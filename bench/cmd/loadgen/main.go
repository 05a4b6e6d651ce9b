// Command loadgen is S6: C concurrent analysts, each running a fixed number
// of queries from a mixed set against the gateway's HTTP API, bounded in
// count (--per) and time (--deadline). It prints p50/p99 latency, errors and
// throughput. It talks to 127.0.0.1 only.
//
//	loadgen --base http://127.0.0.1:18080 --key bench-key --analysts 50 --per 4 \
//	  --query 'SELECT ...' --query 'SELECT ...'
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, "; ") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

func main() {
	base := flag.String("base", "http://127.0.0.1:18080", "gateway base URL (loopback only)")
	key := flag.String("key", "bench-key", "API key")
	purpose := flag.String("purpose", "research", "purpose")
	analysts := flag.Int("analysts", 50, "concurrent analysts")
	per := flag.Int("per", 4, "queries per analyst")
	deadline := flag.Duration("deadline", 5*time.Minute, "stop sending after this long")
	var queries multi
	flag.Var(&queries, "query", "a query of the mix (repeat)")
	flag.Parse()
	u, err := url.Parse(*base)
	if err != nil || (u.Hostname() != "127.0.0.1" && u.Hostname() != "localhost") || len(queries) == 0 {
		fmt.Fprintln(os.Stderr, "loadgen: need a loopback --base and at least one --query")
		os.Exit(2)
	}
	if *analysts > 500 || *per > 100 {
		fmt.Fprintln(os.Stderr, "loadgen: at most 500 analysts × 100 queries")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *deadline)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *analysts}}
	var mu sync.Mutex
	var lat []time.Duration
	errs, skipped := 0, 0
	var firstErr string
	var wg sync.WaitGroup
	start := time.Now()
	for a := range *analysts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range *per {
				if ctx.Err() != nil {
					mu.Lock()
					skipped++
					mu.Unlock()
					continue
				}
				q := queries[(a+i)%len(queries)]
				body, _ := json.Marshal(map[string]string{"sql": q, "purpose": *purpose})
				req, _ := http.NewRequestWithContext(ctx, "POST", *base+"/v1/query", strings.NewReader(string(body)))
				req.Header.Set("Authorization", "Bearer "+*key)
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
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(len(lat)-1, int(float64(len(lat))*p))].Microseconds()) / 1000
	}
	fmt.Printf("ok=%d errors=%d skipped=%d p50_ms=%.1f p99_ms=%.1f max_ms=%.1f wall_s=%.1f qps=%.2f first_error=%q\n",
		len(lat), errs, skipped, pct(0.50), pct(0.99), pct(1), wall.Seconds(), float64(len(lat))/wall.Seconds(), firstErr)
}
