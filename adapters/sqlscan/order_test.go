package sqlscan

import (
	"reflect"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/councildata/gateway/gateway"
)

// orderDialect orders ints and floats, text with a collation, and refuses
// anything else; nullsKeyword picks NULLS FIRST/LAST or the IS NULL key.
func orderDialect(nullsKeyword bool, placeholder func(int) string) Dialect {
	d := testDialect
	d.Placeholder = placeholder
	d.NullsOrder = nullsKeyword
	d.Order = func(c Column, colSQL string) (string, bool) {
		switch c.Type.ID() {
		case arrow.INT64, arrow.FLOAT64:
			return colSQL, true
		case arrow.STRING:
			if c.Expr != "" {
				return "", false
			}
			return colSQL + ` COLLATE "C"`, true
		}
		return "", false
	}
	return d
}

func TestBuildTopN(t *testing.T) {
	id := gateway.Order{Column: "id"}
	amountDesc := gateway.Order{Column: "amount", Desc: true}
	tests := []struct {
		name     string
		keywords bool // NULLS FIRST/LAST, else (col IS NULL)
		question bool // ? placeholders, else $n
		req      gateway.ScanRequest
		sql      string
		args     []any
		pushed   gateway.Pushed
	}{
		{
			name:     "NULLS LAST by default, both directions",
			keywords: true,
			req:      gateway.ScanRequest{Columns: []string{"id", "amount"}, Limit: 10, OrderBy: []gateway.Order{amountDesc, id}},
			sql:      `SELECT "id", "amount" FROM "public"."pay""ments" ORDER BY "amount" DESC NULLS LAST, "id" ASC NULLS LAST LIMIT $1`,
			args:     []any{int64(10)},
			pushed:   gateway.Pushed{Columns: true, Limit: true, OrderBy: true, Exact: true},
		},
		{
			name:     "explicit NULLS FIRST, filters before the order, placeholders numbered through",
			keywords: true,
			req: gateway.ScanRequest{Columns: []string{"id"}, Limit: 3, Filters: []gateway.Filter{{Column: "id", Op: gateway.OpGt, Value: int64(7)}},
				OrderBy: []gateway.Order{{Column: "amount", NullsFirst: true}}},
			sql:    `SELECT "id" FROM "public"."pay""ments" WHERE "id" > $1::int8 ORDER BY "amount" ASC NULLS FIRST LIMIT $2`,
			args:   []any{int64(7), int64(3)},
			pushed: gateway.Pushed{Columns: true, Filters: []int{0}, Limit: true, OrderBy: true, Exact: true},
		},
		{
			name:     "text ordered under the dialect's collation",
			keywords: true,
			req:      gateway.ScanRequest{Columns: []string{"supplier"}, Limit: 2, OrderBy: []gateway.Order{{Column: "supplier", Desc: true, NullsFirst: true}}},
			sql:      `SELECT "supplier" FROM "public"."pay""ments" ORDER BY "supplier" COLLATE "C" DESC NULLS FIRST LIMIT $1`,
			args:     []any{int64(2)},
			pushed:   gateway.Pushed{Columns: true, Limit: true, OrderBy: true, Exact: true},
		},
		{
			name:     "no NULLS keyword: an IS NULL key places NULLs (last)",
			question: true,
			req:      gateway.ScanRequest{Columns: []string{"id"}, Limit: 5, OrderBy: []gateway.Order{amountDesc, id}},
			sql:      `SELECT "id" FROM "public"."pay""ments" ORDER BY ("amount" IS NULL) ASC, "amount" DESC, ("id" IS NULL) ASC, "id" ASC LIMIT ?`,
			args:     []any{int64(5)},
			pushed:   gateway.Pushed{Columns: true, Limit: true, OrderBy: true, Exact: true},
		},
		{
			name:     "no NULLS keyword: NULLS FIRST, with a bound filter",
			question: true,
			req: gateway.ScanRequest{Columns: []string{"id"}, Limit: 5, Filters: []gateway.Filter{{Column: "id", Op: gateway.OpNe, Value: int64(1)}},
				OrderBy: []gateway.Order{{Column: "amount", NullsFirst: true}}},
			sql:    `SELECT "id" FROM "public"."pay""ments" WHERE "id" <> ?::int8 ORDER BY ("amount" IS NULL) DESC, "amount" ASC LIMIT ?`,
			args:   []any{int64(1), int64(5)},
			pushed: gateway.Pushed{Columns: true, Filters: []int{0}, Limit: true, OrderBy: true, Exact: true},
		},
		{
			name:     "a column the store cannot order: neither order nor limit",
			keywords: true,
			req:      gateway.ScanRequest{Columns: []string{"id"}, Limit: 5, OrderBy: []gateway.Order{id, {Column: "ref"}}},
			sql:      `SELECT "id" FROM "public"."pay""ments"`,
			pushed:   gateway.Pushed{Columns: true, Exact: true},
		},
		{
			name:     "an unknown order column: neither order nor limit",
			keywords: true,
			req:      gateway.ScanRequest{Limit: 5, Columns: []string{"id"}, OrderBy: []gateway.Order{{Column: "nope"}}},
			sql:      `SELECT "id" FROM "public"."pay""ments"`,
			pushed:   gateway.Pushed{Columns: true, Exact: true},
		},
		{
			name:     "a superset filter: neither order nor limit",
			keywords: true,
			req: gateway.ScanRequest{Columns: []string{"id"}, Limit: 5, Filters: []gateway.Filter{{Column: "supplier", Op: gateway.OpEq, Value: "Acme"}},
				OrderBy: []gateway.Order{id}},
			sql:    `SELECT "id" FROM "public"."pay""ments" WHERE "supplier" = $1`,
			args:   []any{"Acme"},
			pushed: gateway.Pushed{Columns: true, Filters: []int{0}},
		},
		{
			name:     "a refused filter: neither order nor limit",
			keywords: true,
			req: gateway.ScanRequest{Columns: []string{"id"}, Limit: 5, Filters: []gateway.Filter{{Column: "amount", Op: gateway.OpGt, Value: 1.5}},
				OrderBy: []gateway.Order{id}},
			sql:    `SELECT "id" FROM "public"."pay""ments"`,
			pushed: gateway.Pushed{Columns: true},
		},
		{
			name:     "an order without a limit is not rendered",
			keywords: true,
			req:      gateway.ScanRequest{Columns: []string{"id"}, Limit: -1, OrderBy: []gateway.Order{id}},
			sql:      `SELECT "id" FROM "public"."pay""ments"`,
			pushed:   gateway.Pushed{Columns: true, Exact: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ph := Dollar
			if tt.question {
				ph = Question
			}
			d := orderDialect(tt.keywords, ph)
			q, err := Build(d, testTable, tt.req)
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
		})
	}
}

func TestBuildTopNNoOrderHook(t *testing.T) {
	q, err := Build(testDialect, testTable, gateway.ScanRequest{Columns: []string{"id"}, Limit: 5, OrderBy: []gateway.Order{{Column: "id"}}})
	if err != nil {
		t.Fatal(err)
	}
	if q.Pushed.Limit || q.Pushed.OrderBy || len(q.Args) != 0 {
		t.Errorf("a dialect without an Order hook pushed %+v (%s)", q.Pushed, q.SQL)
	}
}
