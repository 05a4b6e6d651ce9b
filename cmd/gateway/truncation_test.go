package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/parquet/file"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// withCaps points a demo config at a copy of the policies in which the
// analyst's benchmarking agreement caps results at analystCap rows (the
// demo: 100000) and the public's aggregate spend at publicCap rows.
func withCaps(t *testing.T, configPath, analystCap, publicCap string) {
	t.Helper()
	src, err := filepath.Abs("../../policies")
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(filepath.Dir(configPath), "policies")
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		text := string(b)
		patch := func(old, new string) error {
			if !strings.Contains(text, old) {
				return fmt.Errorf("%s no longer has %q to set the cap on", p, old)
			}
			text = strings.Replace(text, old, new, 1)
			return nil
		}
		switch filepath.Base(filepath.Dir(p)) {
		case "edinburgh-spend-benchmarking":
			err = patch("row_cap: 100000", "row_cap: "+analystCap)
		case "open-data-transparency":
			const m = "    measures: [amount, irrecoverable_vat, gross_amount]\n"
			err = patch(m, m+"    row_cap: "+publicCap+"\n")
		}
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), []byte(text), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(configPath)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(raw), "dir: "+src, "dir: "+dst, 1)
	if text == string(raw) {
		t.Fatal("the demo config names no policy dir to replace")
	}
	if err := os.WriteFile(configPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// capped is one streamed response, read to its end with its trailers.
type capped struct {
	status   int
	header   http.Header
	trailer  http.Header
	body     []byte
	declared []string // the Trailer header
}

func postCapped(t *testing.T, base, key, accept, body string) capped {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/v1/query", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var declared []string // Go's client moves the Trailer header's names into resp.Trailer
	for k := range resp.Trailer {
		declared = append(declared, k)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return capped{resp.StatusCode, resp.Header, resp.Trailer, b, declared}
}

// csvCouncils counts a CSV result's rows by its council column.
func csvCouncils(t *testing.T, body []byte) (int, map[string]int) {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := slices.Index(recs[0], "council")
	per := map[string]int{}
	for _, r := range recs[1:] {
		if col >= 0 {
			per[r[col]]++
		}
	}
	return len(recs) - 1, per
}

// ndjsonLines splits an NDJSON body into its rows and its marker line
// (nil when there is none).
func ndjsonLines(t *testing.T, body []byte) (rows []map[string]any, marker map[string]any) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("NDJSON line %q: %v", sc.Text(), err)
		}
		if g, ok := m["_gateway"].(map[string]any); ok && len(m) == 1 {
			if marker != nil {
				t.Fatalf("two marker lines")
			}
			marker = g
			continue
		}
		if marker != nil {
			t.Fatalf("a row after the marker line: %s", sc.Text())
		}
		rows = append(rows, m)
	}
	return rows, marker
}

// arrowBatches reads an Arrow IPC stream: its rows, and the custom
// metadata of its last batch when that batch is empty (the marker).
func arrowBatches(t *testing.T, body []byte) (rows int64, marker map[string]string) {
	t.Helper()
	r, err := ipc.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	for r.Next() {
		rec := r.RecordBatch()
		if marker != nil {
			t.Fatalf("a batch after the marker batch")
		}
		rows += rec.NumRows()
		if rm, ok := rec.(arrow.RecordBatchWithMetadata); ok && rec.NumRows() == 0 && rm.Metadata().Len() > 0 {
			marker = map[string]string{}
			for i, k := range rm.Metadata().Keys() {
				marker[k] = rm.Metadata().Values()[i]
			}
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return rows, marker
}

// TestTruncationMarkers: a result the row cap cuts says so in every format
// over HTTP and Flight SQL, keeps rows of every council (interleaved) or
// the first rows of its ORDER BY, a result under the cap says the cap and
// no truncation, and the new headers carry nothing per council under
// aggregate-only terms. File-backed tables name the files read.
func TestTruncationMarkers(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	withCaps(t, cfg, "1000", "3")
	base, flightAddr := startFlight(t, cfg)
	const all = "SELECT * FROM std.spend_over_500"
	body := sqlFor(all, "research")

	// CSV: the header names the cap, the trailer says it cut, and the
	// 1000 rows kept are every council's first rows in turn (6 × 400
	// rows read), not 1000 of one council's.
	r := postCapped(t, base, "demo-analyst", "text/csv", body)
	if r.status != 200 || r.header.Get("X-Gateway-Row-Cap") != "1000" || !slices.Contains(r.declared, "X-Gateway-Truncated") {
		t.Fatalf("CSV: %d, row cap %q, Trailer %q: %.300s", r.status, r.header.Get("X-Gateway-Row-Cap"), r.declared, r.body)
	}
	if got := r.trailer.Get("X-Gateway-Truncated"); got != "true" {
		t.Errorf("CSV trailer X-Gateway-Truncated %q", got)
	}
	n, per := csvCouncils(t, r.body)
	if n != 1000 || len(per) != 6 {
		t.Errorf("CSV: %d rows, by council %v", n, per)
	}
	for c, k := range per {
		if k != 166 && k != 167 {
			t.Errorf("CSV: %d rows of %s, want 166 or 167 (one of each council in turn): %v", k, c, per)
		}
	}

	// NDJSON: the same, and a last line that says so.
	r = postCapped(t, base, "demo-analyst", "application/x-ndjson", body)
	rows, marker := ndjsonLines(t, r.body)
	if r.header.Get("X-Gateway-Row-Cap") != "1000" || r.trailer.Get("X-Gateway-Truncated") != "true" || len(rows) != 1000 {
		t.Errorf("NDJSON: row cap %q, trailer %q, %d rows", r.header.Get("X-Gateway-Row-Cap"), r.trailer.Get("X-Gateway-Truncated"), len(rows))
	}
	if marker == nil || marker["truncated"] != true || marker["row_cap"] != float64(1000) || marker["rows"] != float64(1000) {
		t.Errorf("NDJSON marker %v", marker)
	}

	// Arrow: a last, empty batch with the marker as custom metadata.
	r = postCapped(t, base, "demo-analyst", "application/vnd.apache.arrow.stream", body)
	arows, amarker := arrowBatches(t, r.body)
	if r.header.Get("X-Gateway-Row-Cap") != "1000" || r.trailer.Get("X-Gateway-Truncated") != "true" || arows != 1000 {
		t.Errorf("Arrow: row cap %q, trailer %q, %d rows", r.header.Get("X-Gateway-Row-Cap"), r.trailer.Get("X-Gateway-Truncated"), arows)
	}
	if amarker["gateway.truncated"] != "true" || amarker["gateway.row_cap"] != "1000" || amarker["gateway.rows"] != "1000" {
		t.Errorf("Arrow marker %v", amarker)
	}

	// Parquet: one file, the marker in its key-value metadata.
	r = postCapped(t, base, "demo-analyst", "application/vnd.apache.parquet", body)
	prows, pmarker := parquetFile(t, r.body)
	if r.header.Get("X-Gateway-Row-Cap") != "1000" || r.trailer.Get("X-Gateway-Truncated") != "true" || prows != 1000 {
		t.Errorf("Parquet: row cap %q, trailer %q, %d rows", r.header.Get("X-Gateway-Row-Cap"), r.trailer.Get("X-Gateway-Truncated"), prows)
	}
	if pmarker["gateway.truncated"] != "true" || pmarker["gateway.row_cap"] != "1000" || pmarker["gateway.rows"] != "1000" {
		t.Errorf("Parquet marker %v", pmarker)
	}

	// JSON: stats.truncated and row_cap, the warning kept, the trailer too.
	r = postCapped(t, base, "demo-analyst", "", body)
	var res struct {
		Rows  [][]any
		Stats struct {
			Rows      int64
			Truncated bool
			RowCap    int64 `json:"row_cap"`
			Sources   []struct {
				Source, Table string
				Rows          *int64
				Files         *struct {
					Count          int
					LatestModified string `json:"latest_modified"`
				}
			}
		}
		Warnings []string
	}
	if err := json.Unmarshal(r.body, &res); err != nil {
		t.Fatalf("%v: %.300s", err, r.body)
	}
	if !res.Stats.Truncated || res.Stats.RowCap != 1000 || len(res.Rows) != 1000 || r.trailer.Get("X-Gateway-Truncated") != "true" ||
		!slices.ContainsFunc(res.Warnings, func(w string) bool { return strings.Contains(w, "cut at 1000 rows") }) {
		t.Errorf("JSON: truncated %v, row_cap %d, %d rows, trailer %q, warnings %q", res.Stats.Truncated, res.Stats.RowCap, len(res.Rows), r.trailer.Get("X-Gateway-Truncated"), res.Warnings)
	}

	// Files: each file-backed table names the files its scan found; one
	// monthly file gone shows as one file fewer.
	files := map[string]int{}
	for _, s := range res.Stats.Sources {
		if s.Files != nil {
			files[s.Source] = s.Files.Count
			if s.Files.LatestModified == "" {
				t.Errorf("%s: no latest_modified", s.Source)
			}
		} else if s.Source == "glasgow" || s.Source == "dundee" {
			t.Errorf("%s: no files in stats", s.Source)
		}
	}
	if files["edinburgh"] != 0 || files["glasgow"] < 2 {
		t.Fatalf("files by source %v", files)
	}
	glasgowFiles := files["glasgow"]
	if h := r.header.Values("X-Gateway-Files"); !slices.ContainsFunc(h, func(v string) bool {
		return strings.HasPrefix(v, "source=glasgow; table=spend; files=") && strings.Contains(v, "; latest_modified=")
	}) {
		t.Errorf("X-Gateway-Files %q", h)
	}
	monthly, _ := filepath.Glob(filepath.Join(filepath.Dir(cfg), "data", "glasgow", "spend", "*.csv"))
	if len(monthly) != glasgowFiles {
		t.Fatalf("glasgow has %d files, stats say %d", len(monthly), glasgowFiles)
	}
	if err := os.Remove(monthly[len(monthly)-1]); err != nil {
		t.Fatal(err)
	}
	r = postCapped(t, base, "demo-analyst", "text/csv", sqlFor("SELECT count(*) FROM std.spend_over_500 WHERE council = 'glasgow'", "research"))
	if h := r.header.Values("X-Gateway-Files"); r.status != 200 || len(h) != 1 || !strings.Contains(h[0], "files="+strconv.Itoa(glasgowFiles-1)+";") {
		t.Errorf("after removing a file: %d, X-Gateway-Files %q: %s", r.status, h, r.body)
	}

	// An ORDER BY chooses the rows kept: the first 1000 of its order,
	// which is what LIMIT 1000 (a result of exactly the cap, not cut)
	// returns.
	const ordered = "SELECT council, transaction_id, amount FROM std.spend_over_500 ORDER BY amount DESC, council, transaction_id"
	top := postCapped(t, base, "demo-analyst", "text/csv", sqlFor(ordered, "research"))
	limited := postCapped(t, base, "demo-analyst", "text/csv", sqlFor(ordered+" LIMIT 1000", "research"))
	if top.trailer.Get("X-Gateway-Truncated") != "true" || limited.trailer.Get("X-Gateway-Truncated") != "false" || !bytes.Equal(top.body, limited.body) {
		t.Errorf("ordered: trailers %q / %q, same rows %v", top.trailer.Get("X-Gateway-Truncated"), limited.trailer.Get("X-Gateway-Truncated"), bytes.Equal(top.body, limited.body))
	}

	// Under the cap: the header, and no truncation in any format.
	under := sqlFor("SELECT * FROM std.spend_over_500 WHERE council = 'fife'", "research")
	for _, accept := range []string{"text/csv", "application/x-ndjson", "application/vnd.apache.arrow.stream", ""} {
		r := postCapped(t, base, "demo-analyst", accept, under)
		if r.status != 200 || r.header.Get("X-Gateway-Row-Cap") != "1000" || r.trailer.Get("X-Gateway-Truncated") != "false" {
			t.Errorf("%q under the cap: %d, row cap %q, trailer %q", accept, r.status, r.header.Get("X-Gateway-Row-Cap"), r.trailer.Get("X-Gateway-Truncated"))
		}
		switch accept {
		case "application/x-ndjson":
			if rows, m := ndjsonLines(t, r.body); len(rows) != 400 || m != nil {
				t.Errorf("NDJSON under the cap: %d rows, marker %v", len(rows), m)
			}
		case "application/vnd.apache.arrow.stream":
			if n, m := arrowBatches(t, r.body); n != 400 || m != nil {
				t.Errorf("Arrow under the cap: %d rows, marker %v", n, m)
			}
		case "":
			if !strings.Contains(string(r.body), `"truncated":false`) || !strings.Contains(string(r.body), `"row_cap":1000`) {
				t.Errorf("JSON under the cap: %.400s", r.body[max(0, len(r.body)-400):])
			}
		}
	}
	// Uncapped (Edinburgh's own table): no header, no trailer.
	r = postCapped(t, base, "demo-analyst", "text/csv", sqlFor(`SELECT * FROM edinburgh.payments_over_500`, "research"))
	if r.status != 200 || r.header.Get("X-Gateway-Row-Cap") != "" || len(r.declared) != 0 || len(r.trailer) != 0 {
		t.Errorf("uncapped: %d, row cap %q, Trailer %q, trailers %v", r.status, r.header.Get("X-Gateway-Row-Cap"), r.declared, r.trailer)
	}

	// Aggregate-only (the public, capped at 3 groups): the marker says
	// the cap and the groups sent, nothing per council; no new header or
	// trailer holds any number but the cap and the file counts.
	const groups = "SELECT council, count(*) AS payments FROM std.spend_over_500 GROUP BY council ORDER BY council"
	for _, accept := range []string{"application/x-ndjson", "text/csv", "application/vnd.apache.arrow.stream", ""} {
		r := postCapped(t, base, "demo-public", accept, sqlFor(groups, "transparency"))
		if r.status != 200 || r.header.Get("X-Gateway-Row-Cap") != "3" || r.trailer.Get("X-Gateway-Truncated") != "true" {
			t.Fatalf("public %q: %d, row cap %q, trailer %q: %.300s", accept, r.status, r.header.Get("X-Gateway-Row-Cap"), r.trailer.Get("X-Gateway-Truncated"), r.body)
		}
		for _, v := range r.header.Values("X-Gateway-Files") {
			if strings.Contains(v, "rows") || strings.Contains(v, "400") {
				t.Errorf("public %q X-Gateway-Files %q", accept, v)
			}
		}
		for k, v := range r.trailer {
			if k != "X-Gateway-Truncated" || len(v) != 1 || v[0] != "true" {
				t.Errorf("public %q trailer %s: %q", accept, k, v)
			}
		}
		switch accept {
		case "application/x-ndjson":
			rows, m := ndjsonLines(t, r.body)
			if len(rows) != 3 || len(m) != 3 || m["row_cap"] != float64(3) || m["rows"] != float64(3) || m["truncated"] != true {
				t.Errorf("public NDJSON: %d rows, marker %v", len(rows), m)
			}
		case "":
			var res struct {
				Stats struct {
					Sources []map[string]any
				}
			}
			json.Unmarshal(r.body, &res)
			for _, s := range res.Stats.Sources {
				if _, ok := s["rows"]; ok {
					t.Errorf("public stats source with rows: %v", s)
				}
			}
		}
	}

	// Flight SQL: the cap in the planning call's header and the DoGet's
	// trailers, and a last FlightData whose app_metadata is the marker.
	cl := flightClient(t, flightAddr)
	ctx := asCtx(context.Background(), "demo-analyst", "research")
	flightRun := func(q string) (header, trailer metadata.MD, rows int64, marker []byte) {
		t.Helper()
		info, err := cl.Execute(ctx, q, grpc.Header(&header))
		if err != nil {
			t.Fatal(err)
		}
		stream, err := cl.Client.DoGet(ctx, info.Endpoint[0].Ticket, grpc.Trailer(&trailer))
		if err != nil {
			t.Fatal(err)
		}
		rdr, err := flight.NewRecordReader(stream)
		if err != nil {
			t.Fatal(err)
		}
		for rdr.Next() {
			rec := rdr.RecordBatch()
			if marker != nil {
				t.Errorf("Flight: a batch after the marker")
			}
			rows += rec.NumRows()
			if md := rdr.LatestAppMetadata(); len(md) > 0 {
				if rec.NumRows() != 0 {
					t.Errorf("Flight: app_metadata on a batch of %d rows", rec.NumRows())
				}
				marker = slices.Clone(md)
			}
		}
		if err := rdr.Err(); err != nil {
			t.Fatal(err)
		}
		rdr.Release()
		return header, trailer, rows, marker
	}
	header, trailer, frows, fmarker := flightRun(all)
	if frows != 1000 || !slices.Equal(header.Get("x-gateway-row-cap"), []string{"1000"}) || !slices.Equal(trailer.Get("x-gateway-truncated"), []string{"true"}) ||
		!slices.Equal(trailer.Get("x-gateway-row-cap"), []string{"1000"}) {
		t.Errorf("Flight: %d rows, header %v, trailer %v", frows, header, trailer)
	}
	if string(fmarker) != `{"_gateway":{"truncated":true,"row_cap":1000,"rows":1000}}` {
		t.Errorf("Flight marker %q", fmarker)
	}
	if v := header.Get("x-gateway-files"); !slices.ContainsFunc(v, func(s string) bool { return strings.HasPrefix(s, "source=glasgow; table=spend; files=") }) {
		t.Errorf("Flight x-gateway-files %q", v)
	}
	header, trailer, frows, fmarker = flightRun("SELECT * FROM std.spend_over_500 WHERE council = 'fife'")
	if frows != 400 || fmarker != nil || !slices.Equal(header.Get("x-gateway-row-cap"), []string{"1000"}) || !slices.Equal(trailer.Get("x-gateway-truncated"), []string{"false"}) {
		t.Errorf("Flight under the cap: %d rows, marker %q, header %v, trailer %v", frows, fmarker, header, trailer)
	}
}

// parquetFile reads a Parquet response: its rows and its file's key-value
// metadata.
func parquetFile(t *testing.T, body []byte) (int64, map[string]string) {
	t.Helper()
	rdr, err := file.NewParquetReader(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("not a Parquet file: %v (%.200q)", err, body)
	}
	defer rdr.Close()
	md := map[string]string{}
	kv := rdr.MetaData().KeyValueMetadata()
	for i, k := range kv.Keys() {
		md[k] = kv.Values()[i]
	}
	return rdr.NumRows(), md
}
