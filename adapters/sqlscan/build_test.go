package sqlscan

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/councildata/gateway/gateway"
)

// testDialect pushes int filters exactly, text equality as a superset, and
// nothing else, like a cut-down MariaDB.
var testDialect = Dialect{
	Name:        "test",
	Quote:       QuoteWith('"'),
	Placeholder: Dollar,
	Filter: func(c Column, f gateway.Filter, colSQL string) Cond {
		if IsNullOp(f.Op) {
			return Cond{Fit: FitExact}
		}
		switch c.Type.ID() {
		case arrow.INT64:
			return Cond{Fit: FitExact, Right: "%s::int8", Arg: f.Value}
		case arrow.STRING:
			if f.Op == gateway.OpEq {
				return Cond{Fit: FitSuperset, Arg: f.Value}
			}
		}
		return Cond{}
	},
}

var testTable = Table{
	Schema: "public",
	Name:   "pay\"ments",
	Columns: []Column{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "supplier", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "amount", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "ref", Type: arrow.BinaryTypes.String, Expr: `"ref"::text`},
	},
	Rows: -1,
}

func TestBuild(t *testing.T) {
	tests := []struct {
		name   string
		req    gateway.ScanRequest
		sql    string
		args   []any
		pushed gateway.Pushed
	}{
		{
			name:   "all columns, no filters, limit",
			req:    gateway.ScanRequest{Table: "pay\"ments", Limit: 10},
			sql:    `SELECT "id", "supplier", "amount", "ref"::text AS "ref" FROM "public"."pay""ments" LIMIT $1`,
			args:   []any{int64(10)},
			pushed: gateway.Pushed{Limit: true, Exact: true},
		},
		{
			name:   "projection in request order, no limit",
			req:    gateway.ScanRequest{Columns: []string{"amount", "id"}, Limit: -1},
			sql:    `SELECT "amount", "id" FROM "public"."pay""ments"`,
			pushed: gateway.Pushed{Columns: true, Exact: true},
		},
		{
			name: "exact filters keep the limit",
			req: gateway.ScanRequest{Columns: []string{"id"}, Limit: 5, Filters: []gateway.Filter{
				{Column: "id", Op: gateway.OpGe, Value: int64(3)},
				{Column: "supplier", Op: gateway.OpIsNotNull},
			}},
			sql:    `SELECT "id" FROM "public"."pay""ments" WHERE "id" >= $1::int8 AND "supplier" IS NOT NULL LIMIT $2`,
			args:   []any{int64(3), int64(5)},
			pushed: gateway.Pushed{Columns: true, Filters: []int{0, 1}, Limit: true, Exact: true},
		},
		{
			name: "a superset filter is pushed but drops the limit",
			req: gateway.ScanRequest{Columns: []string{"id"}, Limit: 5, Filters: []gateway.Filter{
				{Column: "supplier", Op: gateway.OpEq, Value: "Acme"},
				{Column: "id", Op: gateway.OpLt, Value: int64(9)},
			}},
			sql:    `SELECT "id" FROM "public"."pay""ments" WHERE "supplier" = $1 AND "id" < $2::int8`,
			args:   []any{"Acme", int64(9)},
			pushed: gateway.Pushed{Columns: true, Filters: []int{0, 1}},
		},
		{
			name: "a refused filter is not pushed and drops the limit",
			req: gateway.ScanRequest{Limit: 5, Filters: []gateway.Filter{
				{Column: "amount", Op: gateway.OpGt, Value: 1.5},
				{Column: "id", Op: gateway.OpNe, Value: int64(2)},
			}},
			sql:    `SELECT "id", "supplier", "amount", "ref"::text AS "ref" FROM "public"."pay""ments" WHERE "id" <> $1::int8`,
			args:   []any{int64(2)},
			pushed: gateway.Pushed{Filters: []int{1}},
		},
		{
			name: "filters on the expression of a cast column",
			req: gateway.ScanRequest{Columns: []string{"ref"}, Limit: -1, Filters: []gateway.Filter{
				{Column: "ref", Op: gateway.OpIsNull},
			}},
			sql:    `SELECT "ref"::text AS "ref" FROM "public"."pay""ments" WHERE "ref"::text IS NULL`,
			pushed: gateway.Pushed{Columns: true, Filters: []int{0}, Exact: true},
		},
		{
			name: "unknown filter column and malformed filters are not pushed",
			req: gateway.ScanRequest{Columns: []string{"id"}, Limit: 1, Filters: []gateway.Filter{
				{Column: "nope", Op: gateway.OpEq, Value: int64(1)},
				{Column: "id", Op: gateway.OpEq},                      // no value
				{Column: "id", Op: gateway.OpIsNull, Value: int64(1)}, // value with IS NULL
				{Column: "id", Op: "LIKE", Value: int64(1)},
			}},
			sql:    `SELECT "id" FROM "public"."pay""ments"`,
			pushed: gateway.Pushed{Columns: true},
		},
		{
			name: "injection attempt stays a bound value",
			req: gateway.ScanRequest{Columns: []string{"id"}, Limit: -1, Filters: []gateway.Filter{
				{Column: "supplier", Op: gateway.OpEq, Value: "x'; DROP TABLE payments; --"},
			}},
			sql:    `SELECT "id" FROM "public"."pay""ments" WHERE "supplier" = $1`,
			args:   []any{"x'; DROP TABLE payments; --"},
			pushed: gateway.Pushed{Columns: true, Filters: []int{0}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := Build(testDialect, testTable, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if q.SQL != tt.sql {
				t.Errorf("SQL\n got %s\nwant %s", q.SQL, tt.sql)
			}
			if !reflect.DeepEqual(q.Args, tt.args) {
				t.Errorf("args: got %#v, want %#v", q.Args, tt.args)
			}
			if !reflect.DeepEqual(q.Pushed, tt.pushed) {
				t.Errorf("pushed: got %+v, want %+v", q.Pushed, tt.pushed)
			}
			want := tt.req.Columns
			if len(want) == 0 {
				want = columnNames(testTable.Columns)
			}
			var got []string
			for _, f := range q.Schema.Fields() {
				got = append(got, f.Name)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("schema columns: got %v, want %v", got, want)
			}
		})
	}
}

func TestBuildUnknownColumn(t *testing.T) {
	_, err := Build(testDialect, testTable, gateway.ScanRequest{Columns: []string{"id", "missing"}, Limit: -1})
	var ge *gateway.Error
	if !errors.As(err, &ge) || ge.Code != gateway.CodeBadRequest || !strings.Contains(err.Error(), `"missing"`) {
		t.Fatalf("got %v, want a bad_request error naming the column", err)
	}
}

func TestExpose(t *testing.T) {
	tables := []Table{{Name: "a"}, {Name: "b"}, {Name: "c"}}
	got, err := Expose("test", "s1", tables, []string{"c", "a"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "a" || got[1].Name != "c" {
		t.Errorf("got %v", got)
	}
	_, err = Expose("test", "s1", tables, []string{"a", "zz"})
	if err == nil || !strings.Contains(err.Error(), "s1") || !strings.Contains(err.Error(), `"zz"`) {
		t.Errorf("got %v, want an error naming the source and the table", err)
	}
}

func TestUnknownTable(t *testing.T) {
	err := UnknownTable("test", "s1", "nope", []string{"b", "a"})
	var ge *gateway.Error
	if !errors.As(err, &ge) || ge.Code != gateway.CodeNotFound || ge.Source != "s1" {
		t.Fatalf("got %#v", err)
	}
	if !strings.Contains(err.Error(), `"nope"`) || !strings.Contains(err.Error(), "a, b") {
		t.Errorf("message %q should name the table and list a, b", err)
	}
}
