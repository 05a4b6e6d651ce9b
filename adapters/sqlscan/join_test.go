package sqlscan

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/councildata/gateway/gateway"
)

var suppliers = Table{
	Name: "suppliers",
	Columns: []Column{
		{Name: "code", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "num", Type: arrow.PrimitiveTypes.Int32},
		{Name: "score", Type: arrow.PrimitiveTypes.Float64},
		{Name: "loose", Type: arrow.BinaryTypes.String, LooseCollation: "und-x-icu-ci"},
	},
	Rows: -1,
}

func TestBuildJoin(t *testing.T) {
	// orderDialect, with 32-bit integers filtered and compared too
	d := orderDialect(true, Dollar)
	filter, order := d.Filter, d.Order
	d.Filter = func(c Column, f gateway.Filter, colSQL string) Cond {
		if c.Type.ID() == arrow.INT32 && !IsNullOp(f.Op) {
			return Cond{Fit: FitExact, Arg: f.Value}
		}
		return filter(c, f, colSQL)
	}
	d.Order = func(c Column, colSQL string) (string, bool) {
		if c.Type.ID() == arrow.INT32 {
			return colSQL, true
		}
		return order(c, colSQL)
	}
	on := func(l, r string) []gateway.JoinKey { return []gateway.JoinKey{{Left: l, Right: r}} }
	side := func(table string, cols []string, fs ...gateway.Filter) gateway.ScanRequest {
		return gateway.ScanRequest{Table: table, Columns: cols, Filters: fs, Limit: -1}
	}
	idGt := gateway.Filter{Column: "id", Op: gateway.OpGt, Value: int64(5)}
	numLt := gateway.Filter{Column: "num", Op: gateway.OpLt, Value: int64(9)}
	for _, c := range []struct {
		name    string
		req     gateway.JoinRequest
		sql     string
		args    []any
		refusal string // the refusal's words, when refused
	}{
		{
			name: "text key compared byte-wise, placeholders numbered across both sides, a limit",
			req:  gateway.JoinRequest{Left: side("pay\"ments", []string{"id", "supplier"}, idGt), Right: side("suppliers", []string{"code", "num"}, numLt), On: on("supplier", "code"), Limit: 3},
			sql:  `SELECT l.*, r.* FROM (SELECT "id", "supplier" FROM "public"."pay""ments" WHERE "id" > $1::int8) AS l INNER JOIN (SELECT "code", "num" FROM "suppliers" WHERE "num" < $2) AS r ON l."supplier" COLLATE "C" = r."code" COLLATE "C" LIMIT $3`,
			args: []any{int64(5), int64(9), int64(3)},
		},
		{
			name: "two integer keys of different widths, no limit",
			req:  gateway.JoinRequest{Left: side("pay\"ments", []string{"id"}), Right: side("suppliers", []string{"num"}), On: on("id", "num"), Limit: -1},
			sql:  `SELECT l.*, r.* FROM (SELECT "id" FROM "public"."pay""ments") AS l INNER JOIN (SELECT "num" FROM "suppliers") AS r ON l."id" = r."num"`,
		},
		{name: "a superset filter", req: gateway.JoinRequest{Left: side("pay\"ments", nil, gateway.Filter{Column: "supplier", Op: gateway.OpEq, Value: "A"}), Right: side("suppliers", nil), On: on("supplier", "code"), Limit: -1},
			refusal: "applied loosely"},
		{name: "a filter the store cannot apply", req: gateway.JoinRequest{Left: side("pay\"ments", nil), Right: side("suppliers", nil, gateway.Filter{Column: "score", Op: gateway.OpGt, Value: 1.5}), On: on("supplier", "code"), Limit: -1},
			refusal: "filter score > 1.5 on suppliers"},
		{name: "floating point key", req: gateway.JoinRequest{Left: side("pay\"ments", nil), Right: side("suppliers", nil), On: on("amount", "score"), Limit: -1},
			refusal: "floating point"},
		{name: "a loose collation", req: gateway.JoinRequest{Left: side("pay\"ments", nil), Right: side("suppliers", nil), On: on("supplier", "loose"), Limit: -1},
			refusal: "collation und-x-icu-ci"},
		{name: "text read through an expression", req: gateway.JoinRequest{Left: side("pay\"ments", nil), Right: side("suppliers", nil), On: on("ref", "code"), Limit: -1},
			refusal: "compares ref"},
		{name: "keys of two kinds", req: gateway.JoinRequest{Left: side("pay\"ments", nil), Right: side("suppliers", nil), On: on("id", "code"), Limit: -1},
			refusal: "the types differ"},
		{name: "no keys", req: gateway.JoinRequest{Left: side("pay\"ments", nil), Right: side("suppliers", nil), Limit: -1},
			refusal: "without keys"},
	} {
		t.Run(c.name, func(t *testing.T) {
			q, err := BuildJoin(d, testTable, suppliers, c.req)
			if c.refusal != "" {
				if !errors.Is(err, gateway.ErrNotPushed) || !strings.Contains(err.Error(), c.refusal) {
					t.Fatalf("got %v, want a refusal saying %q", err, c.refusal)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if q.SQL != c.sql {
				t.Errorf("SQL\n got %s\nwant %s", q.SQL, c.sql)
			}
			if !reflect.DeepEqual(q.Args, c.args) && (len(q.Args) > 0 || len(c.args) > 0) {
				t.Errorf("args %v, want %v", q.Args, c.args)
			}
			// The rows are the left side's columns, then the right's.
			var want []string
			for _, s := range []gateway.ScanRequest{c.req.Left, c.req.Right} {
				want = append(want, s.Columns...)
			}
			var got []string
			for _, f := range q.Schema.Fields() {
				got = append(got, f.Name)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("columns %v, want %v", got, want)
			}
			if !q.Pushed.Exact || !q.Pushed.Limit == (c.req.Limit >= 0) {
				t.Errorf("pushed %+v", q.Pushed)
			}
		})
	}
}
