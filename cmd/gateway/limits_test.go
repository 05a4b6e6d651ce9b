package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	"github.com/councildata/gateway/gateway/flightapi"
	"github.com/councildata/gateway/gateway/storetest"
)

// bigQuery is a result far larger than the sockets' buffers, so a client
// that does not read it blocks the gateway's writes.
const bigQuery = "SELECT range AS n, repeat('x', 200) AS s FROM range(20000000)"

// rewrite replaces old with new in the config file, once.
func rewrite(t *testing.T, configPath, old, new string) {
	t.Helper()
	raw, err := os.ReadFile(configPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte(old)) {
		t.Fatalf("config has no %q", old)
	}
	if err := os.WriteFile(configPath, bytes.Replace(raw, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}

// limitedDemo is the demo with one query slot, a queue of one (waited in
// as long as need be), one query per requester and a 1 s write timeout.
func limitedDemo(t *testing.T) string {
	t.Helper()
	cfg, _ := demo(t, 42, true)
	rewrite(t, cfg, "  max_concurrent: 16\n", "  max_concurrent: 1\n  max_queued: 1\n  max_queue_wait: 50s\n  max_per_requester: 1\n")
	withServerConfig(t, cfg, "  write_timeout: 1s\n")
	return cfg
}

// idleReader sends a query over HTTP and never reads the answer, like the
// attack's connections; the connection stays open until the test ends.
func idleReader(t *testing.T, base, key, q string) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.(*net.TCPConn).SetReadBuffer(4096)
	body := sqlFor(q, "research")
	fmt.Fprintf(conn, "POST /v1/query HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", key, len(body), body)
}

// queryState is the admission state /readyz reports.
type queryState struct {
	Running, Queued int
}

func readyState(t *testing.T, base string) queryState {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Queries queryState `json:"queries"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body.Queries
}

// eventually polls until ok, failing after a minute.
func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// auditOutcome is the final outcome the audit log records for the
// queries with this SQL ("" while none has ended), and their door.
func auditOutcome(t *testing.T, configPath, sql string) (outcome, door string) {
	t.Helper()
	raw, _ := os.ReadFile(strings.Replace(configPath, "gateway.yaml", "audit/audit.jsonl", 1))
	for _, line := range bytes.Split(raw, []byte("\n")) {
		var rec struct {
			SQL     string `json:"sql"`
			Outcome string `json:"outcome"`
			Door    string `json:"door"`
		}
		if json.Unmarshal(line, &rec) == nil && rec.SQL == sql && rec.Outcome != "allowed" {
			outcome, door = rec.Outcome, rec.Door
		}
	}
	return outcome, door
}

// refused checks a refusal over HTTP: its status, its code and a
// Retry-After of at least a second.
func refused(t *testing.T, r response, status int, code string) {
	t.Helper()
	var body struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	_ = json.Unmarshal(r.body, &body)
	secs, err := strconv.Atoi(r.header.Get("Retry-After"))
	if r.status != status || body.Error.Code != code || err != nil || secs < 1 {
		t.Errorf("want %d %s with Retry-After, got %d Retry-After %q: %s", status, code, r.status, r.header.Get("Retry-After"), r.body)
	}
}

// A client that sends a query and never reads the answer holds its slot
// only until the write timeout: the gateway's write fails, the query is
// cancelled, audited as cancelled (not as a council's failure), and the
// slot goes to the query waiting for it. Meanwhile a second query of the
// same requester is refused with 429, and one more than the queue holds
// with 503, both with Retry-After.
func TestHTTPIdleReaderAndRefusals(t *testing.T) {
	cfg := limitedDemo(t)
	base := start(t, cfg)
	idleReader(t, base, "demo-analyst", bigQuery)
	eventually(t, "the idle reader's query to run", func() bool { return readyState(t, base).Running == 1 })

	refused(t, post(t, base, "demo-analyst", "", sqlFor("SELECT 1", "research")), http.StatusTooManyRequests, "too_many_requests")

	queued := make(chan response, 1)
	go func() {
		queued <- post(t, base, "demo-public", "", sqlFor("SELECT council, count(*) FROM std.planning_applications GROUP BY ALL", "transparency"))
	}()
	eventually(t, "a query to wait in the queue", func() bool { return readyState(t, base).Queued == 1 })
	refused(t, post(t, base, "demo-partner", "", sqlFor("SELECT 1", "health-and-social-care")), http.StatusServiceUnavailable, "overloaded")

	if r := <-queued; r.status != http.StatusOK {
		t.Fatalf("the waiting query, once the idle reader's slot was free: %d %s", r.status, r.body)
	}
	eventually(t, "the idle reader's query to be audited", func() bool { o, _ := auditOutcome(t, cfg, bigQuery); return o != "" })
	if outcome, door := auditOutcome(t, cfg, bigQuery); outcome != "canceled" || door != "http" {
		t.Errorf("the idle reader's query was audited %q (door %q), want canceled", outcome, door)
	}
	if st := readyState(t, base); st.Running != 0 || st.Queued != 0 {
		t.Errorf("after all: %+v", st)
	}
}

// The same over Flight SQL: a client that plans a statement, starts its
// DoGet and reads nothing holds its slot only until the write timeout;
// the query is audited as cancelled and the stream ends with an error,
// not as if the result were complete. A second statement of the same
// requester is refused with RESOURCE_EXHAUSTED and one more than the
// queue holds with UNAVAILABLE, each with a retry-after trailer.
func TestFlightIdleReaderAndRefusals(t *testing.T) {
	cfg := limitedDemo(t)
	base, addr := startFlight(t, cfg)
	cl := flightClient(t, addr)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	analyst := asCtx(ctx, "demo-analyst", "research")
	info, err := cl.Execute(analyst, bigQuery)
	if err != nil {
		t.Fatal(err)
	}
	rdr, err := cl.DoGet(analyst, info.Endpoint[0].Ticket) // and read nothing
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Release()

	var md metadata.MD
	_, err = cl.Execute(analyst, "SELECT 1", grpc.Trailer(&md))
	flightRefused(t, err, md, codes.ResourceExhausted)

	queued := make(chan response, 1)
	go func() {
		queued <- post(t, base, "demo-public", "", sqlFor("SELECT council, count(*) FROM std.planning_applications GROUP BY ALL", "transparency"))
	}()
	eventually(t, "a query to wait in the queue", func() bool { return readyState(t, base).Queued == 1 })
	md = nil
	_, err = cl.Execute(asCtx(ctx, "demo-partner", "health-and-social-care"), "SELECT 1", grpc.Trailer(&md))
	flightRefused(t, err, md, codes.Unavailable)

	if r := <-queued; r.status != http.StatusOK {
		t.Fatalf("the waiting query, once the idle reader's slot was free: %d %s", r.status, r.body)
	}
	eventually(t, "the idle reader's query to be audited", func() bool { o, _ := auditOutcome(t, cfg, bigQuery); return o != "" })
	if outcome, door := auditOutcome(t, cfg, bigQuery); outcome != "canceled" || door != "flight" {
		t.Errorf("the idle reader's query was audited %q (door %q), want canceled", outcome, door)
	}
	// Reading now gets what was in flight, then the error: never a
	// clean end of a result that was cut short.
	for rdr.Next() {
	}
	if codeOfErr(rdr.Err()) != codes.Canceled {
		t.Errorf("the idle reader's stream ended with %v, want CANCELED", rdr.Err())
	}
}

func flightRefused(t *testing.T, err error, md metadata.MD, want codes.Code) {
	t.Helper()
	secs := 0
	if v := md.Get(flightapi.RetryAfterTrailer); len(v) == 1 {
		secs, _ = strconv.Atoi(v[0])
	}
	if codeOfErr(err) != want || secs < 1 {
		t.Errorf("want %s with retry-after, got %v, trailer %v", want, err, md)
	}
}

// blackhole is a TCP proxy to a server that can be made to stop
// answering, as a council's store that accepts connections and never
// replies: once set, new connections are accepted and never served, and
// open ones stop moving bytes.
type blackhole struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	holed  bool
	conns  []net.Conn
}

func newBlackhole(t *testing.T, target string) *blackhole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackhole{ln: ln, target: target}
	t.Cleanup(b.close)
	go b.serve()
	return b
}

// close drops every connection, as a store that went away for good.
func (b *blackhole) close() {
	b.ln.Close()
	b.mu.Lock()
	for _, c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
}

func (b *blackhole) hole() {
	b.mu.Lock()
	b.holed = true
	b.mu.Unlock()
}

func (b *blackhole) isHoled() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.holed
}

func (b *blackhole) serve() {
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		b.conns = append(b.conns, c)
		holed := b.holed
		b.mu.Unlock()
		if holed {
			continue // accepted, never answered
		}
		up, err := net.Dial("tcp", b.target)
		if err != nil {
			c.Close()
			continue
		}
		b.mu.Lock()
		b.conns = append(b.conns, up)
		b.mu.Unlock()
		go b.pipe(c, up)
		go b.pipe(up, c)
	}
}

// pipe copies until the proxy is holed; then it stops reading, so bytes
// pile up unanswered.
func (b *blackhole) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for b.isHoled() {
			time.Sleep(50 * time.Millisecond)
			if errors.Is(err, net.ErrClosed) {
				return
			}
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// A council whose store stops answering holds no more of the gateway's
// query slots than its own limit (sources[].max_concurrent): the queries
// beyond it fail at once with 503 source_busy naming the council, and a
// query over the other councils is answered while the stuck ones still
// wait for the store. The store here is a real PostgreSQL behind a proxy
// that turns into a black hole once the gateway has listed its tables.
func TestBlackholedCouncilDoesNotHoldHealthyQueries(t *testing.T) {
	dsn, pg := storetest.Postgres(t)
	if _, err := pg.Exec(`CREATE TABLE payments (id int, amount numeric(10,2)); INSERT INTO payments SELECT g, g FROM generate_series(1, 10) g`); err != nil {
		t.Fatal(err)
	}
	hole := newBlackhole(t, "127.0.0.1:5432")
	proxied := strings.Replace(dsn, "127.0.0.1:5432", hole.ln.Addr().String(), 1)
	if proxied == dsn {
		t.Skip("the test PostgreSQL is not on 127.0.0.1:5432, so it cannot be put behind the proxy")
	}
	cfg, _ := demo(t, 42, false)
	rewrite(t, cfg, "  max_concurrent: 16\n", "  max_concurrent: 4\n  max_per_requester: 20\n")
	rewrite(t, cfg, "  timeout: 60s\n", "  timeout: 8s\n")
	rewrite(t, cfg, "sources:\n", fmt.Sprintf("sources:\n  - id: stuck\n    council: Stuck Council\n    gss: S12000050\n    type: postgres\n    dsn: %q\n    max_concurrent: 2\n    stall_timeout: 500ms\n\n", proxied))
	base := start(t, cfg)
	t.Cleanup(hole.close) // before the gateway stops, which then need not wait for the store
	if r := post(t, base, "demo-analyst", "", sqlBody("SELECT count(*) FROM stuck.payments")); r.status != http.StatusOK {
		t.Fatalf("before the black hole: %d %s", r.status, r.body)
	}
	hole.hole()

	results := make(chan response, 6)
	for range 6 {
		go func() {
			results <- post(t, base, "demo-analyst", "", sqlBody("SELECT sum(amount) FROM stuck.payments"))
		}()
	}
	// Two queries are stuck in the store; the other four fail, at once or
	// once the store has been seen stuck for its stall timeout.
	for range 4 {
		r := <-results
		var body struct {
			Error struct{ Code, Message, Source string } `json:"error"`
		}
		_ = json.Unmarshal(r.body, &body)
		if r.status != http.StatusServiceUnavailable || body.Error.Code != "source_busy" || body.Error.Source != "stuck" ||
			!strings.Contains(body.Error.Message, "Stuck Council") || r.header.Get("Retry-After") == "" {
			t.Errorf("a query beyond the stuck council's limit: %d %s", r.status, r.body)
		}
	}
	healthy := post(t, base, "demo-analyst", "", sqlBody("SELECT council, count(*) FROM std.spend_over_500 GROUP BY ALL"))
	if healthy.status != http.StatusOK {
		t.Errorf("the query over healthy councils: %d %s", healthy.status, healthy.body)
	}
	select {
	case r := <-results:
		t.Errorf("a stuck query ended before the healthy one was answered: %d %s", r.status, r.body)
	default:
	}
	for range 2 {
		if r := <-results; r.status != http.StatusGatewayTimeout {
			t.Errorf("a query stuck in the store, at its timeout: %d %s", r.status, r.body)
		}
	}
}
