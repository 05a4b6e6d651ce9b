package catalog

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/config"
)

// stubSource lists fixed tables, or fails while down is set.
type stubSource struct {
	tables []gateway.Table
	down   bool
	lists  int
}

func (s *stubSource) Tables(context.Context) ([]gateway.Table, error) {
	s.lists++
	if s.down {
		return nil, errors.New("connection refused")
	}
	return s.tables, nil
}
func (s *stubSource) Scan(context.Context, gateway.ScanRequest) (*gateway.ScanResult, error) {
	return nil, errors.New("not used")
}
func (s *stubSource) Ping(context.Context) error {
	if s.down {
		return errors.New("connection refused")
	}
	return nil
}
func (s *stubSource) Close() error { return nil }

func spendTable() gateway.Table {
	return gateway.Table{Name: "Payments", Rows: 10, Schema: arrow.NewSchema([]arrow.Field{
		{Name: "Net Amount", Type: arrow.BinaryTypes.String},
		{Name: "Date", Type: arrow.FixedWidthTypes.Date32},
	}, nil)}
}

func parse(t *testing.T, datasets string) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(`
policy: {disabled: true}
sources:
  - {id: fife, council: Fife Council, gss: S12000047, type: sqlite, path: /x}
  - {id: moray, council: The Moray Council, gss: S12000020, type: sqlite, path: /y}
`+datasets), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMappingsAreCheckedAgainstTheStores(t *testing.T) {
	cases := []struct {
		name, datasets string
		want           []string // "" = accepted
	}{
		{"good", `standard_datasets: [{name: spend, columns: [{name: amount, type: "DECIMAL(14,2)"}], mappings: {fife: {table: payments, columns: {amount: {from: net amount, convert: amount}}}}}]`, nil},
		{"no table", `standard_datasets: [{name: spend, columns: [{name: amount, type: DOUBLE}], mappings: {fife: {table: spend, columns: {amount: x}}}}]`,
			[]string{`standard dataset "spend"`, "mappings.fife", `no table "spend"`, "Payments"}},
		{"no column", `standard_datasets: [{name: spend, columns: [{name: amount, type: DOUBLE}], mappings: {fife: {table: Payments, columns: {amount: Amount}}}}]`,
			[]string{`standard dataset "spend"`, "mappings.fife.columns.amount", `no column "Amount"`, `"Net Amount"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fife := &stubSource{tables: []gateway.Table{spendTable()}}
			_, err := New(context.Background(), parse(t, c.datasets), map[string]gateway.Source{"fife": fife, "moray": &stubSource{}})
			if c.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestLookupsListWhatExists(t *testing.T) {
	fife := &stubSource{tables: []gateway.Table{spendTable()}}
	cat, err := New(context.Background(), parse(t, `standard_datasets: [{name: spend, columns: [{name: amount, type: DOUBLE}]}]`), map[string]gateway.Source{"fife": fife, "moray": &stubSource{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if s, err := cat.Source("FIFE"); err != nil || s.Config.ID != "fife" {
		t.Errorf("case-insensitive source: %v", err)
	}
	if _, err := cat.Source("leeds"); gateway.ErrorCode(err) != gateway.CodeNotFound || !strings.Contains(err.Error(), "fife, moray") {
		t.Errorf("unknown source: %v", err)
	}
	s, _ := cat.Source("fife")
	if tb, err := s.Table(ctx, "payments"); err != nil || tb.Name != "Payments" {
		t.Errorf("case-insensitive table: %v", err)
	}
	if _, err := s.Table(ctx, "budget"); gateway.ErrorCode(err) != gateway.CodeNotFound || !strings.Contains(err.Error(), "Payments") {
		t.Errorf("unknown table: %v", err)
	}
	if _, err := cat.Dataset("planning"); gateway.ErrorCode(err) != gateway.CodeNotFound || !strings.Contains(err.Error(), "std.spend") {
		t.Errorf("unknown dataset: %v", err)
	}
	if fife.lists != 1 {
		t.Errorf("tables listed %d times, want once (cached)", fife.lists)
	}
}

func TestUnreachableSourceIsRetried(t *testing.T) {
	moray := &stubSource{down: true, tables: []gateway.Table{spendTable()}}
	cat, err := New(context.Background(), parse(t, ""), map[string]gateway.Source{"fife": &stubSource{}, "moray": moray})
	if err != nil {
		t.Fatalf("an unreachable source must not stop the start: %v", err)
	}
	ctx := context.Background()
	st := cat.Check(ctx)
	if !st[0].OK || st[1].OK || st[1].Source != "moray" || st[1].Error == "" {
		t.Errorf("check: %+v", st)
	}
	s, _ := cat.Source("moray")
	if _, err := s.Table(ctx, "payments"); gateway.ErrorCode(err) != gateway.CodeSourceFailed || !strings.Contains(err.Error(), "moray") {
		t.Errorf("table of a down source: %v", err)
	}
	moray.down = false
	if _, err := s.Table(ctx, "payments"); err != nil {
		t.Errorf("after the source came back: %v", err)
	}
}

func TestSQLType(t *testing.T) {
	cases := map[string]arrow.DataType{
		"BIGINT":                   arrow.PrimitiveTypes.Int64,
		"DECIMAL(14,2)":            &arrow.Decimal128Type{Precision: 14, Scale: 2},
		"VARCHAR":                  arrow.BinaryTypes.String,
		"BLOB":                     arrow.BinaryTypes.Binary,
		"DATE":                     arrow.FixedWidthTypes.Date32,
		"TIMESTAMP":                &arrow.TimestampType{Unit: arrow.Microsecond},
		"TIMESTAMP WITH TIME ZONE": &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"},
		"BOOLEAN":                  arrow.FixedWidthTypes.Boolean,
	}
	for want, typ := range cases {
		if got := SQLType(typ); got != want {
			t.Errorf("SQLType(%s) = %s, want %s", typ, got, want)
		}
	}
}
