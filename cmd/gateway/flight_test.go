package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-adbc/go/adbc"
	adbcflight "github.com/apache/arrow-adbc/go/adbc/driver/flightsql"
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/councildata/gateway/gateway/flightapi"
)

// startFlight runs the real gateway on free ports, as `gateway serve` does,
// and returns the HTTP base URL and the bound Flight SQL address.
func startFlight(t *testing.T, configPath string) (base, flightAddr string) {
	t.Helper()
	_, base, flightAddr = startMain(t, configPath)
	return base, flightAddr
}

// startMain is startFlight that also returns the running Main.
func startMain(t testing.TB, configPath string) (m *Main, base, flightAddr string) {
	t.Helper()
	return startMainAt(t, configPath, "127.0.0.1:0")
}

// startMainAt is startMain with the PostgreSQL door listening on pgAddr.
func startMainAt(t testing.TB, configPath, pgAddr string) (m *Main, base, flightAddr string) {
	t.Helper()
	return startMainOn(t, configPath, "127.0.0.1:0", pgAddr)
}

// startMainOn is startMainAt with the HTTP door listening on httpAddr.
func startMainOn(t testing.TB, configPath, httpAddr, pgAddr string) (m *Main, base, flightAddr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	m = &Main{ConfigPath: configPath, HTTPAddr: httpAddr, FlightAddr: "127.0.0.1:0", PostgresAddr: pgAddr, AdminAddr: "127.0.0.1:0"}
	if err := m.Open(ctx); err != nil {
		t.Fatal(err)
	}
	addr, err := m.Listen()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		m.Close()
	})
	scheme := "http://"
	if m.Config.Server.HTTPTLS != nil {
		scheme = "https://"
	}
	return m, scheme + addr, m.FlightAddr
}

// withConfig rewrites the demo config's server block.
func withServerConfig(t testing.TB, configPath, lines string) {
	t.Helper()
	raw, err := os.ReadFile(configPath)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(raw), "server:\n", "server:\n"+lines, 1)
	if err := os.WriteFile(configPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// adbcOpen connects the ADBC Flight SQL driver with the given options.
func adbcOpen(t *testing.T, addr string, opts map[string]string) adbc.Connection {
	t.Helper()
	opts[adbc.OptionKeyURI] = "grpc://" + addr
	db, err := adbcflight.NewDriver(memory.DefaultAllocator).NewDatabase(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cnxn, err := db.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cnxn.Close() })
	return cnxn
}

// adbcAs connects as the holder of key, declaring purpose on every call.
func adbcAs(t *testing.T, addr, key, purpose string) adbc.Connection {
	t.Helper()
	opts := map[string]string{adbcflight.OptionAuthorizationHeader: "Bearer " + key}
	if purpose != "" {
		opts[adbcflight.OptionRPCCallHeaderPrefix+"x-gateway-purpose"] = purpose
	}
	return adbcAs2(t, addr, opts)
}

func adbcAs2(t *testing.T, addr string, opts map[string]string) adbc.Connection {
	return adbcOpen(t, addr, opts)
}

// table is a result rendered for comparison: column names and types, and
// rows as text.
type table struct {
	fields []string
	rows   [][]string
}

func render(t *testing.T, rdr array.RecordReader) table {
	t.Helper()
	var out table
	for _, f := range rdr.Schema().Fields() {
		out.fields = append(out.fields, f.Name+" "+f.Type.String())
	}
	for rdr.Next() {
		rec := rdr.RecordBatch()
		for i := 0; i < int(rec.NumRows()); i++ {
			row := make([]string, rec.NumCols())
			for c, col := range rec.Columns() {
				row[c] = "NULL"
				if col.IsValid(i) {
					row[c] = col.ValueStr(i)
				}
			}
			out.rows = append(out.rows, row)
		}
	}
	if err := rdr.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func (a table) equal(b table) bool {
	sortRows := func(rows [][]string) []string {
		out := make([]string, len(rows))
		for i, r := range rows {
			out[i] = strings.Join(r, "\x1f")
		}
		sort.Strings(out)
		return out
	}
	return slices.Equal(a.fields, b.fields) && slices.Equal(sortRows(a.rows), sortRows(b.rows))
}

// httpTable runs q over HTTP as Arrow IPC; a refusal returns its status
// and message.
func httpTable(t *testing.T, base, key, purpose, q string) (table, int, string) {
	t.Helper()
	r := post(t, base, key, "application/vnd.apache.arrow.stream", sqlFor(q, purpose))
	if r.status != 200 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		json.Unmarshal(r.body, &e)
		return table{}, r.status, e.Error.Message
	}
	rdr, err := ipc.NewReader(bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Release()
	return render(t, rdr), 200, ""
}

// adbcTable runs q over ADBC.
func adbcTable(t *testing.T, cnxn adbc.Connection, q string) (table, error) {
	t.Helper()
	stmt, err := cnxn.NewStatement()
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	if err := stmt.SetSqlQuery(q); err != nil {
		t.Fatal(err)
	}
	rdr, _, err := stmt.ExecuteQuery(context.Background())
	if err != nil {
		return table{}, err
	}
	defer rdr.Release()
	return render(t, rdr), nil
}

// sameAsHTTP runs q over both doors and fails unless both agree.
func sameAsHTTP(t *testing.T, base string, cnxn adbc.Connection, key, purpose, q string) table {
	t.Helper()
	want, st, msg := httpTable(t, base, key, purpose, q)
	if st != 200 {
		t.Fatalf("HTTP %s: %d %s", q, st, msg)
	}
	got, err := adbcTable(t, cnxn, q)
	if err != nil {
		t.Fatalf("Flight %s: %v", q, err)
	}
	if !got.equal(want) {
		t.Fatalf("%s as %s: Flight and HTTP differ:\nflight %v %d rows %v\nhttp   %v %d rows %v", q, key, got.fields, len(got.rows), head(got.rows), want.fields, len(want.rows), head(want.rows))
	}
	if len(want.rows) == 0 {
		t.Fatalf("%s: no rows to compare", q)
	}
	return got
}

func head(rows [][]string) [][]string { return rows[:min(3, len(rows))] }

// flightClient is arrow-go's Flight SQL client.
func flightClient(t *testing.T, addr string) *flightsql.Client {
	t.Helper()
	cl, err := flightsql.NewClient(addr, nil, nil, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// as is an outgoing context carrying a bearer credential and a purpose.
func asCtx(ctx context.Context, bearer, purpose string) context.Context {
	md := metadata.Pairs()
	if bearer != "" {
		md.Set("authorization", "Bearer "+bearer)
	}
	if purpose != "" {
		md.Set("x-gateway-purpose", purpose)
	}
	return metadata.NewOutgoingContext(ctx, md)
}

func codeOfErr(err error) codes.Code { return status.Code(err) }

// visibleOverHTTP is the "schema.table" list GET /v1/catalog gives.
func visibleOverHTTP(t *testing.T, base, key, purpose string) []string {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/v1/catalog?purpose="+purpose, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var cat struct {
		Sources []struct {
			Tables []struct {
				SQLName string `json:"sql_name"`
			} `json:"tables"`
		} `json:"sources"`
		Datasets []struct {
			SQLName string `json:"sql_name"`
		} `json:"standard_datasets"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&cat); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range cat.Sources {
		for _, tb := range s.Tables {
			out = append(out, tb.SQLName)
		}
	}
	for _, d := range cat.Datasets {
		out = append(out, d.SQLName)
	}
	sort.Strings(out)
	return out
}

// objects is GetObjects at depth all: "schema.table" -> column -> type name.
func objects(t *testing.T, cnxn adbc.Connection) map[string]map[string]string {
	t.Helper()
	rdr, err := cnxn.GetObjects(context.Background(), adbc.ObjectDepthAll, nil, nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Release()
	out := map[string]map[string]string{}
	for rdr.Next() {
		rec := rdr.RecordBatch()
		catNames := rec.Column(0).(*array.String)
		schemas := rec.Column(1).(*array.List)
		for c := 0; c < int(rec.NumRows()); c++ {
			if catNames.Value(c) != "councils" {
				t.Errorf("catalog %q", catNames.Value(c))
			}
			sStruct := schemas.ListValues().(*array.Struct)
			so, se := schemas.ValueOffsets(c)
			for s := so; s < se; s++ {
				schemaName := sStruct.Field(0).(*array.String).Value(int(s))
				tables := sStruct.Field(1).(*array.List)
				tStruct := tables.ListValues().(*array.Struct)
				to, te := tables.ValueOffsets(int(s))
				for ti := to; ti < te; ti++ {
					name := schemaName + "." + tStruct.Field(0).(*array.String).Value(int(ti))
					out[name] = map[string]string{"": tStruct.Field(1).(*array.String).Value(int(ti))}
					cols := tStruct.Field(2).(*array.List)
					cStruct := cols.ListValues().(*array.Struct)
					co, ce := cols.ValueOffsets(int(ti))
					typeName := cStruct.Field(indexOf(cStruct, "xdbc_type_name")).(*array.String)
					for ci := co; ci < ce; ci++ {
						out[name][cStruct.Field(0).(*array.String).Value(int(ci))] = typeName.Value(int(ci))
					}
				}
			}
		}
	}
	return out
}

func indexOf(s *array.Struct, name string) int {
	for i, f := range s.DataType().(*arrow.StructType).Fields() {
		if f.Name == name {
			return i
		}
	}
	return -1
}

// TestFlightSQLWithADBC: the ADBC driver connects with a demo key, browses
// the tree down to columns, reads the server's info, runs a cross-council
// query that equals the HTTP answer, and runs prepared statements with
// parameters.
func TestFlightSQLWithADBC(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	base, addr := startFlight(t, cfg)
	cnxn := adbcAs(t, addr, "demo-analyst", "research")
	ctx := context.Background()

	t.Run("objects", func(t *testing.T) {
		objs := objects(t, cnxn)
		spend := objs["std.spend_over_500"]
		if spend[""] != "VIEW" || spend["council"] != "VARCHAR" || !strings.HasPrefix(spend["amount"], "DECIMAL") {
			t.Errorf("std.spend_over_500: %v", spend)
		}
		if own := objs["edinburgh.payments_over_500"]; own[""] != "TABLE" || len(own) < 3 {
			t.Errorf("edinburgh.payments_over_500: %v", own)
		}
		if _, ok := objs["gateway.audit"]; ok {
			t.Error("the analyst sees the audit log")
		}
		var names []string
		for n := range objs {
			names = append(names, n)
		}
		sort.Strings(names)
		if want := visibleOverHTTP(t, base, "demo-analyst", "research"); !slices.Equal(names, want) {
			t.Errorf("GetObjects lists %v; GET /v1/catalog lists %v", names, want)
		}
		rdr, err := cnxn.GetTableTypes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := render(t, rdr); fmt.Sprint(got.rows) != "[[TABLE] [VIEW]]" {
			t.Errorf("table types: %v", got.rows)
		}
		rdr.Release()
		schema, err := cnxn.GetTableSchema(ctx, nil, ptrTo("std"), "planning_applications")
		if err != nil || schema.NumFields() < 5 {
			t.Errorf("GetTableSchema: %v %v", schema, err)
		}
	})

	t.Run("info", func(t *testing.T) {
		rdr, err := cnxn.GetInfo(ctx, []adbc.InfoCode{adbc.InfoVendorName, adbc.InfoVendorVersion})
		if err != nil {
			t.Fatal(err)
		}
		defer rdr.Release()
		got := render(t, rdr)
		text := fmt.Sprint(got.rows)
		if !strings.Contains(text, "Council Data Gateway") {
			t.Errorf("GetInfo: %v", text)
		}
	})

	t.Run("cross-council query equals HTTP", func(t *testing.T) {
		got := sameAsHTTP(t, base, cnxn, "demo-analyst", "research",
			"SELECT council, count(*) AS n, sum(amount) AS total, count(*) FILTER (WHERE beneficiary_name = '[individual]') AS redacted FROM std.spend_over_500 GROUP BY council ORDER BY council")
		if len(got.rows) != 6 || !strings.Contains(got.fields[2], "decimal") {
			t.Errorf("six councils with decimal totals: %v %v", got.fields, got.rows)
		}
		sameAsHTTP(t, base, cnxn, "demo-analyst", "research", "SELECT * FROM std.planning_applications WHERE council IN ('fife', 'edinburgh') ORDER BY council, reference")
	})

	t.Run("basic auth handshake", func(t *testing.T) {
		c := adbcAs2(t, addr, map[string]string{adbc.OptionKeyUsername: "analyst@edinburgh", adbc.OptionKeyPassword: "demo-analyst",
			adbcflight.OptionRPCCallHeaderPrefix + "x-gateway-purpose": "research"})
		sameAsHTTP(t, base, c, "demo-analyst", "research", "SELECT council, count(*) FROM std.spend_over_500 GROUP BY council")
	})

	t.Run("prepared statement with parameters", func(t *testing.T) {
		stmt, err := cnxn.NewStatement()
		if err != nil {
			t.Fatal(err)
		}
		defer stmt.Close()
		if err := stmt.SetSqlQuery("SELECT council, count(*) AS n, sum(amount) AS total FROM std.spend_over_500 WHERE council = ? AND amount > ? GROUP BY council"); err != nil {
			t.Fatal(err)
		}
		if err := stmt.Prepare(ctx); err != nil {
			t.Fatal(err)
		}
		params, err := stmt.GetParameterSchema()
		if err != nil || params.NumFields() != 2 {
			t.Fatalf("parameter schema: %v %v", params, err)
		}
		for _, c := range []struct {
			council string
			min     float64
		}{{"fife", 1000}, {"edinburgh", 5000.5}, {"it's'); DROP TABLE x; --", 0}} {
			bind := array.NewRecordBuilder(memory.DefaultAllocator, arrow.NewSchema([]arrow.Field{
				{Name: "council", Type: arrow.BinaryTypes.String}, {Name: "min", Type: arrow.PrimitiveTypes.Float64}}, nil))
			bind.Field(0).(*array.StringBuilder).Append(c.council)
			bind.Field(1).(*array.Float64Builder).Append(c.min)
			rec := bind.NewRecordBatch()
			bind.Release()
			if err := stmt.Bind(ctx, rec); err != nil {
				t.Fatal(err)
			}
			rec.Release()
			rdr, _, err := stmt.ExecuteQuery(ctx)
			if err != nil {
				t.Fatalf("%s: %v", c.council, err)
			}
			got := render(t, rdr)
			rdr.Release()
			lit := strings.ReplaceAll(c.council, "'", "''")
			want, st, msg := httpTable(t, base, "demo-analyst", "research",
				fmt.Sprintf("SELECT council, count(*) AS n, sum(amount) AS total FROM std.spend_over_500 WHERE council = '%s' AND amount > %v GROUP BY council", lit, c.min))
			if st != 200 {
				t.Fatalf("HTTP: %d %s", st, msg)
			}
			if !got.equal(want) {
				t.Errorf("%s > %v: prepared %v, HTTP %v", c.council, c.min, got.rows, want.rows)
			}
		}
	})

	t.Run("prepared statement with the flightsql client", func(t *testing.T) {
		cl := flightClient(t, addr)
		actx := asCtx(ctx, "demo-analyst", "research")
		prep, err := cl.Prepare(actx, "SELECT reference FROM std.planning_applications WHERE council = $1 ORDER BY reference LIMIT $2")
		if err != nil {
			t.Fatal(err)
		}
		if prep.ParameterSchema().NumFields() != 2 {
			t.Errorf("parameter schema %v", prep.ParameterSchema())
		}
		b := array.NewRecordBuilder(memory.DefaultAllocator, arrow.NewSchema([]arrow.Field{
			{Name: "$1", Type: arrow.BinaryTypes.String}, {Name: "$2", Type: arrow.PrimitiveTypes.Int64}}, nil))
		b.Field(0).(*array.StringBuilder).Append("dundee")
		b.Field(1).(*array.Int64Builder).Append(4)
		rec := b.NewRecordBatch()
		b.Release()
		prep.SetParameters(rec)
		info, err := prep.Execute(actx)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
		rdr, err := cl.DoGet(actx, info.Endpoint[0].Ticket)
		if err != nil {
			t.Fatal(err)
		}
		got := render(t, rdr)
		rdr.Release()
		want, _, _ := httpTable(t, base, "demo-analyst", "research", "SELECT reference FROM std.planning_applications WHERE council = 'dundee' ORDER BY reference LIMIT 4")
		if len(got.rows) != 4 || !got.equal(want) {
			t.Errorf("prepared %v, HTTP %v", got.rows, want.rows)
		}
		// Another requester cannot use the handle.
		stolen, err := cl.LoadPreparedStatementFromResult(&flightsql.CreatePreparedStatementResult{PreparedStatementHandle: prep.Handle()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stolen.Execute(asCtx(ctx, "demo-public", "transparency")); codeOfErr(err) != codes.NotFound {
			t.Errorf("another requester's handle: %v", err)
		}
		if err := prep.Close(actx); err != nil {
			t.Fatal(err)
		}
		if _, err := prep.Execute(actx); err == nil {
			t.Error("a closed statement ran")
		}
	})
}

func ptrTo[T any](v T) *T { return &v }

// TestFlightSQLPersonas: each demo key sees over Flight SQL the same
// tables, columns, masks and rows as over HTTP, and is refused the same
// things with the same reasons.
func TestFlightSQLPersonas(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	base, addr := startFlight(t, cfg)
	cl := flightClient(t, addr)
	for _, p := range []struct {
		key, purpose string
		queries      []string
		refused      map[string]string // query -> reason
		unseen       []string          // answered as a table that does not exist
		sees, hidden []string
	}{
		{key: "demo-analyst", purpose: "research",
			queries: []string{
				"SELECT council, beneficiary_name, amount FROM std.spend_over_500 WHERE council = 'fife' ORDER BY amount DESC, beneficiary_name LIMIT 20",
				"SELECT council, reference, applicant_name FROM std.planning_applications ORDER BY council, reference LIMIT 50",
				"SELECT * FROM edinburgh.payments_over_500"},
			unseen: []string{"SELECT count(*) FROM fife.payments", "SELECT count(*) FROM gateway.audit"},
			sees:   []string{"std.spend_over_500", "edinburgh.payments_over_500"}, hidden: []string{"gateway.audit", "fife.payments"}},
		{key: "demo-partner", purpose: "health-and-social-care",
			queries: []string{"SELECT postcode, received_date, application_type, decision FROM std.planning_applications WHERE council = 'edinburgh'"},
			refused: map[string]string{
				"SELECT applicant_name FROM std.planning_applications WHERE council = 'edinburgh'": "applicant_name",
				"SELECT sum(amount) FROM std.spend_over_500 WHERE council = 'edinburgh'":           "expired"},
			sees: []string{"std.planning_applications"}, hidden: []string{"std.spend_over_500", "edinburgh.payments_over_500"}},
		{key: "demo-public", purpose: "transparency",
			queries: []string{
				"SELECT council, expense_type, count(*) AS n, sum(amount) AS total FROM std.spend_over_500 GROUP BY ALL ORDER BY ALL",
				"SELECT * FROM std.planning_applications WHERE council = 'highland' ORDER BY reference"},
			refused: map[string]string{"SELECT * FROM std.spend_over_500": "only leave as aggregates"},
			sees:    []string{"std.planning_applications", "std.spend_over_500"}, hidden: []string{"edinburgh.payments_over_500"}},
		{key: "demo-governance", purpose: "audit",
			queries: []string{"SELECT requester_id, action, door FROM gateway.audit WHERE seq < 5 ORDER BY seq"},
			unseen:  []string{"SELECT count(*) FROM edinburgh.payments_over_500"},
			sees:    []string{"gateway.audit"}},
	} {
		t.Run(p.key, func(t *testing.T) {
			cnxn := adbcAs(t, addr, p.key, p.purpose)
			for _, q := range p.queries {
				sameAsHTTP(t, base, cnxn, p.key, p.purpose, q)
			}
			ctx := asCtx(context.Background(), p.key, p.purpose)
			for q, why := range p.refused {
				_, st, msg := httpTable(t, base, p.key, p.purpose, q)
				_, err := cl.Execute(ctx, q)
				if st != 403 || codeOfErr(err) != codes.PermissionDenied || !strings.Contains(msg, why) || !strings.Contains(status.Convert(err).Message(), flightapi.Hints(msg)) {
					t.Errorf("%s: HTTP %d %q; Flight %v", q, st, msg, err)
				}
			}
			for _, q := range p.unseen {
				_, st, msg := httpTable(t, base, p.key, p.purpose, q)
				_, err := cl.Execute(ctx, q)
				if st != 404 || codeOfErr(err) != codes.NotFound || !strings.Contains(msg, "that you may read") || !strings.Contains(status.Convert(err).Message(), flightapi.Hints(msg)) {
					t.Errorf("%s: HTTP %d %q; Flight %v", q, st, msg, err)
				}
			}
			objs := objects(t, cnxn)
			var names []string
			for n := range objs {
				names = append(names, n)
			}
			sort.Strings(names)
			t.Logf("%s (%s) sees %v", p.key, p.purpose, names)
			if want := visibleOverHTTP(t, base, p.key, p.purpose); !slices.Equal(names, want) {
				t.Errorf("GetObjects lists %v; GET /v1/catalog lists %v", names, want)
			}
			for _, n := range p.sees {
				if objs[n] == nil {
					t.Errorf("%s is not listed", n)
				}
			}
			for _, n := range p.hidden {
				if objs[n] != nil {
					t.Errorf("%s is listed", n)
				}
			}
		})
	}
	// Warnings travel in the DoGet's trailers, as beside HTTP's results.
	pub := asCtx(context.Background(), "demo-public", "transparency")
	const grouped = "SELECT council, expense_type, count(*) AS n, sum(amount) AS total FROM std.spend_over_500 GROUP BY ALL"
	httpRes, _, _ := as(t, base, "demo-public", "transparency", grouped)
	info, err := cl.Execute(pub, grouped)
	if err != nil {
		t.Fatal(err)
	}
	var trailer metadata.MD
	rdr, err := cl.DoGet(pub, info.Endpoint[0].Ticket, grpc.Trailer(&trailer))
	if err != nil {
		t.Fatal(err)
	}
	for rdr.Next() {
	}
	rdr.Release()
	if got := trailer.Get("x-gateway-suppressed"); len(got) != 1 || got[0] != fmt.Sprint(httpRes.Stats.Suppressed) || got[0] == "0" ||
		len(trailer.Get("x-gateway-warning")) != len(httpRes.Warnings) || trailer.Get("x-gateway-query-id")[0] != string(info.AppMetadata) {
		t.Errorf("trailers %v; HTTP suppressed %d, warnings %v", trailer, httpRes.Stats.Suppressed, httpRes.Warnings)
	}

	// Without a purpose, the analyst is refused with the policy's reason.
	if _, err := cl.Execute(asCtx(context.Background(), "demo-analyst", ""), "SELECT count(*) FROM std.spend_over_500"); codeOfErr(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "no purpose declared") {
		t.Errorf("no purpose: %v", err)
	}
}

// TestFlightSQLAuthAndTickets: bad credentials, expired session tokens,
// and tickets replayed, forged, expired, or used by another requester.
func TestFlightSQLAuthAndTickets(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	withServerConfig(t, cfg, "  flight_ticket_ttl: 3s\n  flight_session_ttl: 3s\n")
	_, addr := startFlight(t, cfg)
	cl := flightClient(t, addr)
	bg := context.Background()
	analyst := asCtx(bg, "demo-analyst", "research")
	const q = "SELECT council, count(*) FROM std.spend_over_500 GROUP BY council"

	for name, ctx := range map[string]context.Context{"no credentials": bg, "unknown key": asCtx(bg, "not-a-key", ""), "forged session": asCtx(bg, "gws_AAAA", "")} {
		if _, err := cl.GetCatalogs(ctx); codeOfErr(err) != codes.Unauthenticated {
			t.Errorf("%s: %v", name, err)
		}
		if _, err := cl.Execute(ctx, q); codeOfErr(err) != codes.Unauthenticated {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := cl.Client.AuthenticateBasicToken(bg, "analyst@edinburgh", "wrong"); codeOfErr(err) != codes.Unauthenticated {
		t.Errorf("basic auth with a wrong key: %v", err)
	}

	t.Run("session token expires", func(t *testing.T) {
		sctx, err := cl.Client.AuthenticateBasicToken(bg, "analyst@edinburgh", "demo-analyst")
		if err != nil {
			t.Fatal(err)
		}
		md, _ := metadata.FromOutgoingContext(sctx)
		token := md.Get("authorization")[0]
		if !strings.HasPrefix(token, "Bearer gws_") || strings.Contains(token, "demo-analyst") {
			t.Fatalf("session token %q", token)
		}
		if _, err := cl.GetCatalogs(sctx); err != nil {
			t.Fatalf("fresh session: %v", err)
		}
		time.Sleep(3200 * time.Millisecond)
		if _, err := cl.GetCatalogs(sctx); codeOfErr(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "expired") {
			t.Errorf("expired session: %v", err)
		}
	})

	rows := func(ctx context.Context, ticket *flight.Ticket) (int64, error) {
		rdr, err := cl.DoGet(ctx, ticket)
		if err != nil {
			return 0, err
		}
		defer rdr.Release()
		var n int64
		for rdr.Next() {
			n += rdr.RecordBatch().NumRows()
		}
		return n, rdr.Err()
	}

	t.Run("tickets", func(t *testing.T) {
		info, err := cl.Execute(analyst, q)
		if err != nil {
			t.Fatal(err)
		}
		ticket := info.Endpoint[0].Ticket
		if bytes.Contains(ticket.Ticket, []byte("SELECT")) || bytes.Contains(ticket.Ticket, []byte("spend")) {
			t.Fatal("the ticket carries the SQL")
		}
		// Another requester gets nothing, and does not use it up.
		if n, err := rows(asCtx(bg, "demo-public", "transparency"), ticket); codeOfErr(err) != codes.PermissionDenied || n != 0 {
			t.Errorf("another requester's ticket: %d rows, %v", n, err)
		}
		// Forged: one byte of the handle changed.
		handle, err := flightsql.GetStatementQueryTicket(ticket)
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range []int{0, 5, len(handle.GetStatementHandle()) - 1} {
			bad := append([]byte(nil), handle.GetStatementHandle()...)
			bad[i] ^= 0x40
			forged, _ := flightsql.CreateStatementQueryTicket(bad)
			if n, err := rows(analyst, &flight.Ticket{Ticket: forged}); codeOfErr(err) != codes.PermissionDenied || n != 0 {
				t.Errorf("forged ticket (byte %d): %d rows, %v", i, n, err)
			}
		}
		// A statement ticket made up by the client.
		made, _ := flightsql.CreateStatementQueryTicket([]byte("SELECT * FROM gateway.audit"))
		if n, err := rows(analyst, &flight.Ticket{Ticket: made}); codeOfErr(err) != codes.PermissionDenied || n != 0 {
			t.Errorf("made-up ticket: %d rows, %v", n, err)
		}
		if n, err := rows(analyst, ticket); err != nil || n != 6 {
			t.Fatalf("own ticket: %d rows, %v", n, err)
		}
		if n, err := rows(analyst, ticket); codeOfErr(err) != codes.NotFound || n != 0 {
			t.Errorf("replayed ticket: %d rows, %v", n, err)
		}
	})

	t.Run("ticket expires", func(t *testing.T) {
		info, err := cl.Execute(analyst, q)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(3200 * time.Millisecond)
		if n, err := rows(analyst, info.Endpoint[0].Ticket); codeOfErr(err) != codes.NotFound || n != 0 {
			t.Errorf("expired ticket: %d rows, %v", n, err)
		}
	})

	t.Run("CancelFlightInfo", func(t *testing.T) {
		info, err := cl.Execute(analyst, q)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cl.CancelFlightInfo(asCtx(bg, "demo-public", "transparency"), &flight.CancelFlightInfoRequest{Info: info}); codeOfErr(err) != codes.PermissionDenied {
			t.Errorf("another requester cancelled: %v", err)
		}
		res, err := cl.CancelFlightInfo(analyst, &flight.CancelFlightInfoRequest{Info: info})
		if err != nil || res.Status != flight.CancelStatusCancelled {
			t.Fatalf("cancel: %v %v", res, err)
		}
		if n, err := rows(analyst, info.Endpoint[0].Ticket); codeOfErr(err) != codes.NotFound || n != 0 {
			t.Errorf("cancelled ticket: %d rows, %v", n, err)
		}
	})

	t.Run("metadata and empty keys", func(t *testing.T) {
		for name, call := range map[string]func() (*flight.FlightInfo, error){
			"primary keys": func() (*flight.FlightInfo, error) {
				return cl.GetPrimaryKeys(analyst, flightsql.TableRef{Table: "spend_over_500"})
			},
			"exported keys": func() (*flight.FlightInfo, error) {
				return cl.GetExportedKeys(analyst, flightsql.TableRef{Table: "spend_over_500"})
			},
			"imported keys": func() (*flight.FlightInfo, error) {
				return cl.GetImportedKeys(analyst, flightsql.TableRef{Table: "spend_over_500"})
			},
			"cross reference": func() (*flight.FlightInfo, error) {
				return cl.GetCrossReference(analyst, flightsql.TableRef{Table: "a"}, flightsql.TableRef{Table: "b"})
			},
			"type info": func() (*flight.FlightInfo, error) { return cl.GetXdbcTypeInfo(analyst, nil) },
		} {
			info, err := call()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			want, _ := flight.DeserializeSchema(info.Schema, memory.DefaultAllocator)
			n, err := rows(analyst, info.Endpoint[0].Ticket)
			if err != nil || (name == "type info") != (n > 0) {
				t.Errorf("%s: %d rows, %v (schema %v)", name, n, err, want)
			}
		}
		info, err := cl.GetSqlInfo(analyst, []flightsql.SqlInfo{flightsql.SqlInfoFlightSqlServerName, flightsql.SqlInfoFlightSqlServerReadOnly, flightsql.SqlInfoIdentifierQuoteChar, 999999})
		if err != nil {
			t.Fatal(err)
		}
		rdr, err := cl.DoGet(analyst, info.Endpoint[0].Ticket)
		if err != nil {
			t.Fatal(err)
		}
		defer rdr.Release()
		if !rdr.Next() {
			t.Fatal(rdr.Err())
		}
		m := sqlInfoValues(rdr.RecordBatch())
		if m[uint32(flightsql.SqlInfoFlightSqlServerName)] != "Council Data Gateway" || m[uint32(flightsql.SqlInfoFlightSqlServerReadOnly)] != true || m[uint32(flightsql.SqlInfoIdentifierQuoteChar)] != `"` {
			t.Errorf("sql info: %v", m)
		}
	})
}

// vmHWM is the process's peak resident set, in bytes.
func vmHWM(t *testing.T) int64 {
	t.Helper()
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status:", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb)
			return kb * 1024
		}
	}
	t.Skip("no VmHWM")
	return 0
}

// TestFlightSQLMillionRowsBoundedMemory: two million rows (260 MB) stream
// through the gateway to the ADBC client in the same process, with a query
// memory limit of 32 MB, and the process's peak RSS grows by well under the
// result: by at most the memory limit plus a fixed allowance, whatever the
// result's size (a million rows grew it by about the same 80 MB as two). range() needs no source scan; a query over council tables
// also loads the scanned rows into the query's DuckDB first, under the same
// limit (README, Known limits).
func TestFlightSQLMillionRowsBoundedMemory(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	raw, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(raw), "memory_limit: 1GB", "memory_limit: 32MB", 1)), 0o644)
	base, addr := startFlight(t, cfg)
	_ = base
	cnxn := adbcAs(t, addr, "demo-analyst", "research")
	const q = "SELECT range AS n, repeat(md5(range::VARCHAR), 4) AS s FROM range(2000000)"
	// Warm up: the first query starts DuckDB's and gRPC's allocations.
	if _, err := adbcTable(t, cnxn, "SELECT range AS n, repeat(md5(range::VARCHAR), 4) AS s FROM range(10000)"); err != nil {
		t.Fatal(err)
	}
	// Reset the peak (Linux: writing 5 to clear_refs resets VmHWM).
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Skip("cannot reset the peak RSS:", err)
	}
	before := vmHWM(t)
	stmt, _ := cnxn.NewStatement()
	defer stmt.Close()
	stmt.SetSqlQuery(q)
	rdr, _, err := stmt.ExecuteQuery(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var n, bytesRead int64
	var last int64 = -1
	for rdr.Next() {
		rec := rdr.RecordBatch()
		ids := rec.Column(0).(*array.Int64)
		for i := 0; i < ids.Len(); i++ {
			if ids.Value(i) != last+1 {
				t.Fatalf("row %d after %d", ids.Value(i), last)
			}
			last = ids.Value(i)
		}
		n += rec.NumRows()
		bytesRead += int64(len(rec.Column(1).(*array.String).ValueBytes()))
	}
	if err := rdr.Err(); err != nil {
		t.Fatal(err)
	}
	rdr.Release()
	growth := vmHWM(t) - before
	t.Logf("%d rows, %d MB of strings streamed; peak RSS %d MB before, grew by %d MB", n, bytesRead>>20, before>>20, growth>>20)
	if n != 2_000_000 {
		t.Fatalf("%d rows", n)
	}
	// The bound. The engine runs the query into a table of the query's
	// DuckDB, which keeps within query.memory_limit (32 MB here) and spills
	// the rest to the query's temp directory, then reads it back a page
	// (65,536 rows) at a time; pages become Arrow batches that are written
	// to gRPC as they come (its flow control holds back a fast server) and
	// the client keeps a few. So the peak may grow by the memory limit (32
	// MB) plus a fixed 96 MB for a page, batches in flight, gRPC buffers
	// and GC slack: 128 MB, half the 260 MB result, so holding the result
	// anywhere would exceed it.
	resultBytes := bytesRead + 8*n
	const bound = 128 << 20
	if growth > bound || resultBytes <= bound {
		t.Errorf("peak RSS grew by %d MB streaming a %d MB result; the bound is %d MB", growth>>20, resultBytes>>20, bound>>20)
	}
}

// TestFlightSQLClientGoneStopsTheStoreQuery: a Flight SQL client that goes
// away while its statement is being planned (the engine reads the sources
// while planning, see Known limits) stops the query in the council's
// PostgreSQL; and one that goes away in the middle of DoGet closes the
// query, which the audit log records as cancelled.
func TestFlightSQLClientGoneStopsTheStoreQuery(t *testing.T) {
	cfg, _, pg := databases(t)
	view := slowView(t, pg, "slow_flight")
	_, addr := startFlight(t, cfg)
	cl := flightClient(t, addr)
	err := stopsStoreQuery(t, pg, "slow_flight", func(ctx context.Context) error {
		_, err := cl.Execute(asCtx(ctx, "demo-analyst", ""), `SELECT * FROM `+view)
		return err
	})
	if codeOfErr(err) != codes.Canceled {
		t.Errorf("cancelled call: %v", err)
	}
}

// TestFlightSQLDoGetGoneClosesTheQuery: a client leaving in the middle of
// DoGet closes the query (the engine's Result), which the audit log
// records with the rows sent so far and the outcome cancelled.
func TestFlightSQLDoGetGoneClosesTheQuery(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	_, addr := startFlight(t, cfg)
	cl := flightClient(t, addr)
	ctx, cancel := context.WithCancel(asCtx(context.Background(), "demo-analyst", "research"))
	const total = 2_000_000
	info, err := cl.Execute(ctx, fmt.Sprintf("SELECT range AS n, repeat('x', 40) AS s FROM range(%d)", total))
	if err != nil {
		t.Fatal(err)
	}
	queryID := string(info.AppMetadata)
	rdr, err := cl.DoGet(ctx, info.Endpoint[0].Ticket)
	if err != nil {
		t.Fatal(err)
	}
	if !rdr.Next() {
		t.Fatal(rdr.Err())
	}
	cancel()
	for rdr.Next() {
	}
	rdr.Release()
	log := strings.Replace(cfg, "gateway.yaml", "audit/audit.jsonl", 1)
	deadline := time.Now().Add(20 * time.Second)
	for {
		raw, _ := os.ReadFile(log)
		var outcome string
		for _, line := range bytes.Split(raw, []byte("\n")) {
			var rec struct {
				QueryID string `json:"query_id"`
				Outcome string `json:"outcome"`
				Door    string `json:"door"`
				Rows    int64  `json:"rows"`
			}
			if json.Unmarshal(line, &rec) == nil && rec.QueryID == queryID && rec.Outcome != "allowed" {
				if rec.Door != "flight" || rec.Rows >= total {
					t.Errorf("audit record %+v", rec)
				}
				outcome = rec.Outcome
			}
		}
		if outcome == "canceled" {
			return
		}
		if outcome != "" || time.Now().After(deadline) {
			t.Fatalf("the query %s was not closed as cancelled (outcome %q)", queryID, outcome)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sqlInfoValues reads a GetSqlInfo result's strings and booleans.
func sqlInfoValues(rec arrow.RecordBatch) map[uint32]any {
	out := map[uint32]any{}
	names := rec.Column(0).(*array.Uint32)
	vals := rec.Column(1).(*array.DenseUnion)
	for i := 0; i < int(rec.NumRows()); i++ {
		off := int(vals.ValueOffset(i))
		switch child := vals.Field(vals.ChildID(i)).(type) {
		case *array.String:
			out[names.Value(i)] = child.Value(off)
		case *array.Boolean:
			out[names.Value(i)] = child.Value(off)
		case *array.Int64:
			out[names.Value(i)] = child.Value(off)
		}
	}
	return out
}

// TestFlightSQLOverTLS: with server.flight_tls the Flight SQL door speaks
// TLS with the configured certificate (generated here), and ADBC connects
// with grpc+tls trusting it; a plaintext client is refused.
func TestFlightSQLOverTLS(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	dir := filepath.Dir(cfg)
	certPEM := writeCert(t, dir)
	withServerConfig(t, cfg, "  flight_tls:\n    cert_file: tls/cert.pem\n    key_file: tls/key.pem\n")
	base, addr := startFlight(t, cfg)

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	cl, err := flightsql.NewClient(addr, nil, nil, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.GetCatalogs(asCtx(context.Background(), "demo-analyst", "research")); err != nil {
		t.Fatalf("over TLS: %v", err)
	}
	if _, err := flightClient(t, addr).GetCatalogs(asCtx(context.Background(), "demo-analyst", "research")); err == nil {
		t.Error("a plaintext client was served")
	}
	opts := map[string]string{adbc.OptionKeyURI: "grpc+tls://" + addr, adbcflight.OptionSSLRootCerts: string(certPEM),
		adbcflight.OptionAuthorizationHeader: "Bearer demo-analyst", adbcflight.OptionRPCCallHeaderPrefix + "x-gateway-purpose": "research"}
	db, err := adbcflight.NewDriver(memory.DefaultAllocator).NewDatabase(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cnxn, err := db.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer cnxn.Close()
	sameAsHTTP(t, base, cnxn, "demo-analyst", "research", "SELECT council, count(*) FROM std.planning_applications GROUP BY council")
}

// writeCert writes a self-signed certificate for 127.0.0.1 and its key
// under dir/tls and returns the certificate's PEM.
func writeCert(t testing.TB, dir string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "council-gateway-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.MkdirAll(filepath.Join(dir, "tls"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls", "cert.pem"), certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls", "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPEM
}
