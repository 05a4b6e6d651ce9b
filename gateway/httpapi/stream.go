package httpapi

import (
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/catalog"
	"github.com/councildata/gateway/gateway/engine"
)

// Output formats.
const (
	formatJSON   = "application/json"
	formatCSV    = "text/csv"
	formatNDJSON = "application/x-ndjson"
	formatArrow  = "application/vnd.apache.arrow.stream"
)

// negotiate picks the output format from an Accept header; JSON when the
// client does not say.
func negotiate(accept string) (string, error) {
	if strings.TrimSpace(accept) == "" {
		return formatJSON, nil
	}
	for _, part := range strings.Split(accept, ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case formatJSON, "*/*", "application/*":
			return formatJSON, nil
		case formatCSV, "text/*":
			return formatCSV, nil
		case formatNDJSON, "application/jsonl", "application/json-seq":
			return formatNDJSON, nil
		case formatArrow, "application/vnd.apache.arrow.file":
			return formatArrow, nil
		}
	}
	return "", gateway.Errorf(gateway.CodeNotAcceptable, "cannot produce %q; ask for application/json, text/csv, application/x-ndjson or application/vnd.apache.arrow.stream", accept)
}

// stream writes the result. The first batch is read before the status is
// sent, so errors found early still get their proper status; an error after
// that ends the stream (JSON with an "error" member, NDJSON with an error
// line, CSV and Arrow by aborting the response so the client sees it
// truncated).
func stream(w http.ResponseWriter, log *slog.Logger, format string, res *engine.Result) (int64, error) {
	rd := res.Reader
	has := rd.Next()
	if !has {
		if err := rd.Err(); err != nil {
			err = res.Err(err)
			writeError(w, log, err, res.QueryID)
			return 0, err
		}
	}
	w.Header().Set("Content-Type", format)
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	var rows int64
	next := func() (arrow.RecordBatch, bool) {
		if has {
			has = false
			return rd.RecordBatch(), true
		}
		if rd.Next() {
			return rd.RecordBatch(), true
		}
		return nil, false
	}
	var err error
	switch format {
	case formatCSV:
		err = writeCSV(w, rd.Schema(), next, &rows, flusher)
	case formatNDJSON:
		err = writeNDJSON(w, rd.Schema(), next, &rows, flusher)
	case formatArrow:
		err = writeArrow(w, rd.Schema(), next, &rows, flusher)
	default:
		err = writeJSONResult(w, log, res, next, &rows)
		return rows, err
	}
	if err == nil {
		err = rd.Err()
	}
	if err != nil {
		err = res.Err(err)
		if format == formatNDJSON {
			_, d := detail(log, err, res.QueryID)
			b, _ := json.Marshal(errorBody{Error: d})
			w.Write(append(b, '\n'))
			return rows, err
		}
		panic(http.ErrAbortHandler)
	}
	return rows, nil
}

func writeJSONResult(w io.Writer, log *slog.Logger, res *engine.Result, next func() (arrow.RecordBatch, bool), rows *int64) error {
	schema := res.Reader.Schema()
	type column struct {
		Name string `json:"name"`
		Type string `json:"type"`
	}
	cols := make([]column, schema.NumFields())
	for i, f := range schema.Fields() {
		cols[i] = column{Name: f.Name, Type: catalog.SQLType(f.Type)}
	}
	head, _ := json.Marshal(res.QueryID)
	colJSON, _ := json.Marshal(cols)
	fmt.Fprintf(w, `{"query_id":%s,"columns":%s,"rows":[`, head, colJSON)
	first := true
	var err error
	for {
		rec, ok := next()
		if !ok {
			break
		}
		for i := range int(rec.NumRows()) {
			if !first {
				io.WriteString(w, ",")
			}
			first = false
			io.WriteString(w, "[")
			for c := range int(rec.NumCols()) {
				if c > 0 {
					io.WriteString(w, ",")
				}
				b, _ := json.Marshal(jsonValue(rec.Column(c), i))
				w.Write(b)
			}
			io.WriteString(w, "]")
			*rows++
		}
	}
	io.WriteString(w, "]")
	if rerr := res.Reader.Err(); rerr != nil {
		err = res.Err(rerr)
		_, d := detail(log, err, res.QueryID)
		b, _ := json.Marshal(d)
		fmt.Fprintf(w, `,"error":%s`, b)
	}
	stats := map[string]any{"rows": *rows, "elapsed_ms": res.Elapsed().Milliseconds(), "sources": res.Sources(), "suppressed": res.Suppressed()}
	sb, _ := json.Marshal(stats)
	wb, _ := json.Marshal(res.Warnings())
	fmt.Fprintf(w, `,"stats":%s,"warnings":%s}`+"\n", sb, wb)
	return err
}

func writeNDJSON(w io.Writer, schema *arrow.Schema, next func() (arrow.RecordBatch, bool), rows *int64, f http.Flusher) error {
	names := make([]string, schema.NumFields())
	for i, fld := range schema.Fields() {
		b, _ := json.Marshal(fld.Name)
		names[i] = string(b)
	}
	var sb strings.Builder
	for {
		rec, ok := next()
		if !ok {
			return nil
		}
		for i := range int(rec.NumRows()) {
			sb.Reset()
			sb.WriteByte('{')
			for c := range int(rec.NumCols()) {
				if c > 0 {
					sb.WriteByte(',')
				}
				b, _ := json.Marshal(jsonValue(rec.Column(c), i))
				sb.WriteString(names[c])
				sb.WriteByte(':')
				sb.Write(b)
			}
			sb.WriteString("}\n")
			if _, err := io.WriteString(w, sb.String()); err != nil {
				return err
			}
			*rows++
		}
		if f != nil {
			f.Flush()
		}
	}
}

func writeCSV(w io.Writer, schema *arrow.Schema, next func() (arrow.RecordBatch, bool), rows *int64, f http.Flusher) error {
	cw := csv.NewWriter(w)
	header := make([]string, schema.NumFields())
	for i, fld := range schema.Fields() {
		header[i] = fld.Name
	}
	if err := cw.Write(header); err != nil {
		return err
	}
	record := make([]string, len(header))
	for {
		rec, ok := next()
		if !ok {
			cw.Flush()
			return cw.Error()
		}
		for i := range int(rec.NumRows()) {
			for c := range int(rec.NumCols()) {
				record[c] = textValue(rec.Column(c), i)
			}
			if err := cw.Write(record); err != nil {
				return err
			}
			*rows++
		}
		cw.Flush()
		if f != nil {
			f.Flush()
		}
	}
}

func writeArrow(w io.Writer, schema *arrow.Schema, next func() (arrow.RecordBatch, bool), rows *int64, f http.Flusher) error {
	iw := ipc.NewWriter(w, ipc.WithSchema(schema))
	for {
		rec, ok := next()
		if !ok {
			return iw.Close()
		}
		if err := iw.Write(rec); err != nil {
			return err
		}
		*rows += rec.NumRows()
		if f != nil {
			f.Flush()
		}
	}
}

// jsonValue is the JSON form of one cell: numbers as numbers, decimals as
// strings (no precision lost), dates as YYYY-MM-DD, timestamps as ISO 8601,
// bytes as base64.
func jsonValue(a arrow.Array, i int) any {
	if a.IsNull(i) {
		return nil
	}
	switch a := a.(type) {
	case *array.Boolean:
		return a.Value(i)
	case *array.Int8:
		return a.Value(i)
	case *array.Int16:
		return a.Value(i)
	case *array.Int32:
		return a.Value(i)
	case *array.Int64:
		return a.Value(i)
	case *array.Uint8:
		return a.Value(i)
	case *array.Uint16:
		return a.Value(i)
	case *array.Uint32:
		return a.Value(i)
	case *array.Uint64:
		return a.Value(i)
	case *array.Float32:
		return jsonFloat(float64(a.Value(i)))
	case *array.Float64:
		return jsonFloat(a.Value(i))
	case array.ListLike, *array.Struct:
		return nested(a, i)
	}
	return textValue(a, i)
}

// jsonFloat is a float as JSON has it: a number, or for the values JSON
// has no number for (DuckDB's x / 0 gives one) the strings "NaN",
// "Infinity" and "-Infinity", as Trino's clients and JavaScript name them.
func jsonFloat(f float64) any {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return f
}

// nested is a list, struct or map cell as JSON-ready values.
func nested(a arrow.Array, i int) any {
	return json.RawMessage(mustJSON(a.GetOneForMarshal(i)))
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte("null")
	}
	return b
}

// textValue is the text form of one cell, "" for NULL.
func textValue(a arrow.Array, i int) string {
	if a.IsNull(i) {
		return ""
	}
	switch a := a.(type) {
	case *array.String:
		return a.Value(i)
	case *array.Decimal128:
		return a.Value(i).ToString(a.DataType().(*arrow.Decimal128Type).Scale)
	case *array.Date32:
		return a.Value(i).ToTime().Format(time.DateOnly)
	case *array.Timestamp:
		t := a.DataType().(*arrow.TimestampType)
		tm := a.Value(i).ToTime(t.Unit)
		if t.TimeZone != "" {
			return tm.UTC().Format("2006-01-02T15:04:05.999999Z07:00")
		}
		return tm.UTC().Format("2006-01-02T15:04:05.999999")
	case *array.Binary:
		return base64.StdEncoding.EncodeToString(a.Value(i))
	case *array.Boolean:
		return strconv.FormatBool(a.Value(i))
	case *array.Float64:
		return strconv.FormatFloat(a.Value(i), 'g', -1, 64)
	case array.ListLike, *array.Struct:
		return string(mustJSON(a.GetOneForMarshal(i)))
	}
	return a.ValueStr(i)
}
