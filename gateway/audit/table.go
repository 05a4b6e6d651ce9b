package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/councildata/gateway/gateway"
)

// TableName is the audit log's table in SQL: gateway.audit.
const TableName = "audit"

// Table serves the audit log file as the table gateway.audit, so
// governance officers can query it (under policy, like any table). It reads
// the file as it is at scan time and never writes.
type Table struct {
	path  string
	alloc memory.Allocator
}

var _ gateway.Source = (*Table)(nil)

// NewTable serves the log at path.
func NewTable(path string) *Table { return &Table{path: path, alloc: memory.DefaultAllocator} }

var tableSchema = arrow.NewSchema([]arrow.Field{
	{Name: "seq", Type: arrow.PrimitiveTypes.Int64},
	{Name: "decision_id", Type: arrow.BinaryTypes.String},
	{Name: "timestamp", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
	{Name: "door", Type: arrow.BinaryTypes.String},
	{Name: "action", Type: arrow.BinaryTypes.String},
	{Name: "outcome", Type: arrow.BinaryTypes.String},
	{Name: "query_id", Type: arrow.BinaryTypes.String},
	{Name: "requester_id", Type: arrow.BinaryTypes.String},
	{Name: "requester_organisation", Type: arrow.BinaryTypes.String},
	{Name: "requested_by", Type: arrow.BinaryTypes.String},
	// dry_run_as: the requester a governance officer's dry run decided
	// for (NULL on every other record).
	{Name: "dry_run_as", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "purpose", Type: arrow.BinaryTypes.String},
	{Name: "case_ref", Type: arrow.BinaryTypes.String},
	{Name: "sql", Type: arrow.BinaryTypes.String},
	{Name: "tables", Type: arrow.BinaryTypes.String, Nullable: true},     // JSON array
	{Name: "agreements", Type: arrow.BinaryTypes.String, Nullable: true}, // JSON array
	// The councils the answer left out: by policy (coverage) and because
	// their stores failed (a partial answer). JSON arrays.
	{Name: "excluded", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "failed", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "rows", Type: arrow.PrimitiveTypes.Int64},
	{Name: "duration_ms", Type: arrow.PrimitiveTypes.Float64},
	{Name: "error", Type: arrow.BinaryTypes.String},
	{Name: "error_code", Type: arrow.BinaryTypes.String, Nullable: true}, // the error's class; NULL when none
	{Name: "trace_id", Type: arrow.BinaryTypes.String, Nullable: true},   // the OpenTelemetry trace; NULL when none
	{Name: "input", Type: arrow.BinaryTypes.String, Nullable: true},      // JSON
	{Name: "result", Type: arrow.BinaryTypes.String, Nullable: true},     // JSON
	{Name: "prev_hash", Type: arrow.BinaryTypes.String},
	{Name: "hash", Type: arrow.BinaryTypes.String},
}, nil)

// Tables lists the one table.
func (t *Table) Tables(context.Context) ([]gateway.Table, error) {
	return []gateway.Table{{Name: TableName, Schema: tableSchema, Rows: -1}}, nil
}

// Ping checks that the log can be read.
func (t *Table) Ping(context.Context) error {
	f, err := os.Open(t.path)
	if err != nil {
		return err
	}
	return f.Close()
}

// Close does nothing: the table holds no resources between scans.
func (t *Table) Close() error { return nil }

// Scan reads the whole log into record batches of the requested columns.
// It pushes nothing down; the engine applies every filter.
func (t *Table) Scan(ctx context.Context, req gateway.ScanRequest) (*gateway.ScanResult, error) {
	if req.Table != TableName {
		return nil, gateway.Errorf(gateway.CodeNotFound, "source %q has no table %q; its tables are: %s", "gateway", req.Table, TableName)
	}
	cols := req.Columns
	if len(cols) == 0 {
		for _, f := range tableSchema.Fields() {
			cols = append(cols, f.Name)
		}
	}
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		idx := tableSchema.FieldIndices(c)
		if len(idx) == 0 {
			return nil, gateway.Errorf(gateway.CodeBadRequest, "gateway.audit has no column %q", c)
		}
		fields[i] = tableSchema.Field(idx[0])
	}
	schema := arrow.NewSchema(fields, nil)
	f, err := os.Open(t.path)
	if err != nil {
		e := gateway.Wrap(gateway.CodeSourceFailed, err, "the audit log cannot be read")
		e.Source = "gateway"
		return nil, e
	}
	defer f.Close()
	b := array.NewRecordBuilder(t.alloc, schema)
	defer b.Release()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	line := 0
	for sc.Scan() {
		line++
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var rec Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return nil, gateway.Errorf(gateway.CodeSourceFailed, "the audit log is malformed at line %d", line)
		}
		for i, c := range cols {
			appendField(b.Field(i), c, &rec)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, gateway.Wrap(gateway.CodeSourceFailed, err, "the audit log cannot be read")
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	rdr, err := array.NewRecordReader(schema, []arrow.RecordBatch{rec})
	if err != nil {
		return nil, err
	}
	return &gateway.ScanResult{Reader: rdr, Pushed: gateway.Pushed{Columns: len(req.Columns) > 0}, Statement: "read " + t.path}, nil
}

func jsonText(b array.Builder, v any, isNil bool) {
	if isNil {
		b.AppendNull()
		return
	}
	raw, err := json.Marshal(v)
	if err != nil {
		b.AppendNull()
		return
	}
	b.(*array.StringBuilder).Append(string(raw))
}

func appendField(b array.Builder, col string, r *Record) {
	str := func(s string) { b.(*array.StringBuilder).Append(s) }
	switch col {
	case "seq":
		b.(*array.Int64Builder).Append(int64(r.Seq))
	case "decision_id":
		str(r.DecisionID)
	case "timestamp":
		b.(*array.TimestampBuilder).Append(arrow.Timestamp(r.Timestamp.UTC().UnixMicro()))
	case "door":
		str(r.Door)
	case "action":
		str(r.Action)
	case "outcome":
		str(r.Outcome)
	case "query_id":
		str(r.QueryID)
	case "requester_id":
		str(r.Requester.ID)
	case "requester_organisation":
		str(r.Requester.Organisation)
	case "requested_by":
		str(r.RequestedBy)
	case "dry_run_as":
		if r.DryRunAs == nil {
			b.AppendNull()
		} else {
			str(r.DryRunAs.ID)
		}
	case "purpose":
		str(r.Purpose)
	case "case_ref":
		str(r.CaseRef)
	case "sql":
		str(r.SQL)
	case "tables":
		jsonText(b, r.Tables, r.Tables == nil)
	case "agreements":
		jsonText(b, r.Agreements, r.Agreements == nil)
	case "excluded":
		jsonText(b, r.Excluded, r.Excluded == nil)
	case "failed":
		jsonText(b, r.Failed, r.Failed == nil)
	case "rows":
		b.(*array.Int64Builder).Append(r.Rows)
	case "duration_ms":
		b.(*array.Float64Builder).Append(r.DurationMS)
	case "error":
		str(r.Error)
	case "trace_id":
		if r.TraceID == "" {
			b.AppendNull()
		} else {
			str(r.TraceID)
		}
	case "error_code":
		if r.ErrorCode == "" {
			b.AppendNull()
		} else {
			str(r.ErrorCode)
		}
	case "input":
		jsonText(b, r.Input, r.Input == nil)
	case "result":
		jsonText(b, r.Result, r.Result == nil)
	case "prev_hash":
		str(r.PrevHash)
	case "hash":
		str(r.Hash)
	default:
		panic(fmt.Sprintf("audit: no column %q", col)) // guarded by Scan
	}
}
