package httpapi

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/catalog"
	"github.com/councildata/gateway/gateway/engine"
)

// Output formats.
const (
	formatJSON = "application/json"
	formatCSV  = "text/csv"
	// formatCSVBOM is CSV for Excel (asked for as text/csv; bom=true): it
	// opens with a UTF-8 byte order mark, which Excel needs to read
	// UTF-8, and a text cell Excel would evaluate as a formula starts with
	// an apostrophe (excelCells).
	formatCSVBOM = "text/csv; charset=utf-8"
	// formatParquet is one Parquet file (zstd), written as the result
	// streams: row groups as they fill, the footer at the end.
	formatParquet = "application/vnd.apache.parquet"
	formatNDJSON  = "application/x-ndjson"
	formatArrow   = "application/vnd.apache.arrow.stream"
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
			mt, params, _ := mime.ParseMediaType(strings.TrimSpace(part))
			if mt == formatCSV && strings.EqualFold(params["bom"], "true") {
				return formatCSVBOM, nil
			}
			return formatCSV, nil
		case formatParquet, "application/x-parquet":
			return formatParquet, nil
		case formatNDJSON, "application/jsonl", "application/json-seq":
			return formatNDJSON, nil
		case formatArrow, "application/vnd.apache.arrow.file":
			return formatArrow, nil
		}
	}
	return "", gateway.Errorf(gateway.CodeNotAcceptable, "cannot produce %q; ask for application/json, text/csv (text/csv; bom=true for Excel), application/x-ndjson, application/vnd.apache.arrow.stream or application/vnd.apache.parquet", accept)
}

// output is a response being streamed. Each batch is given the write
// timeout to leave: its write deadline is set before it is written, and it
// is flushed after, so a client that stops reading makes the write fail
// within the timeout rather than hold the query (and its slot) for as long
// as it likes. The first failed write is kept and stops the stream.
//
// Writes go through a buffer of its own, flushed with each batch: the
// formats write many small pieces (a comma, a value), and each would
// otherwise take the response writer's whole path (and, for a string, a
// copy to bytes) on its own.
type output struct {
	buf     *bufio.Writer
	rc      *http.ResponseController
	timeout time.Duration
	err     error
}

func newOutput(w http.ResponseWriter, timeout time.Duration) *output {
	return &output{buf: bufio.NewWriterSize(w, 64<<10), rc: http.NewResponseController(w), timeout: timeout}
}

func (o *output) Write(p []byte) (int, error) {
	if o.err != nil {
		return 0, o.err
	}
	n, err := o.buf.Write(p)
	if err != nil {
		o.err = err
	}
	return n, err
}

// WriteString writes s without copying it to bytes (io.WriteString finds it).
func (o *output) WriteString(s string) (int, error) {
	if o.err != nil {
		return 0, o.err
	}
	n, err := o.buf.WriteString(s)
	if err != nil {
		o.err = err
	}
	return n, err
}

// batch starts writing a batch: from now the client has the timeout to
// take it.
func (o *output) batch() {
	if o.timeout > 0 {
		_ = o.rc.SetWriteDeadline(time.Now().Add(o.timeout))
	}
}

// flush sends what is buffered; it reports the first failed write.
func (o *output) flush() error {
	if o.err == nil {
		if err := o.buf.Flush(); err != nil {
			o.err = err
		} else if err := o.rc.Flush(); err != nil {
			o.err = err
		}
	}
	return o.err
}

// stopped is the error of a result the client did not take.
func (o *output) stopped() error {
	return gateway.Wrap(gateway.CodeCanceled, o.err, "the result could not be written to the client within server.write_timeout (%s): the client stopped reading or went away, so the query was cancelled", o.timeout)
}

// stream writes the result. The first batch is read before the status is
// sent, so errors found early still get their proper status; an error after
// that ends the stream (JSON with an "error" member, NDJSON with an error
// line, CSV and Arrow by aborting the response so the client sees it
// truncated). Each batch is flushed as it is written, within the write
// timeout; a client that does not take one in time has its query
// cancelled, and the Result records it so (the audit log says cancelled).
func stream(w http.ResponseWriter, log *slog.Logger, format string, res *engine.Result, writeTimeout time.Duration) (int64, error) {
	rd := res.Reader
	has := rd.Next()
	if !has {
		if err := rd.Err(); err != nil {
			err = res.Err(err)
			writeError(w, log, err, res.QueryID)
			return 0, err
		}
	}
	if format == formatParquet {
		// A column Parquet cannot hold is said before the answer starts,
		// not found halfway through a file.
		if _, err := pqarrow.ToParquet(rd.Schema(), nil, pqarrow.DefaultWriterProps()); err != nil {
			err = gateway.Wrap(gateway.CodeNotAcceptable, err, "the result has a column Parquet cannot hold (%v); ask for application/vnd.apache.arrow.stream, or cast the column", err)
			writeError(w, log, err, res.QueryID)
			return 0, err
		}
	}
	out := newOutput(w, writeTimeout)
	out.batch()
	truncationHeaders(w.Header(), res)
	w.Header().Set("Content-Type", format)
	w.WriteHeader(http.StatusOK)
	var rows int64
	next := func() (arrow.RecordBatch, bool) {
		if out.flush() != nil {
			return nil, false // the client is not taking the result
		}
		if has {
			has = false
			return rd.RecordBatch(), true
		}
		if rd.Next() {
			out.batch()
			return rd.RecordBatch(), true
		}
		return nil, false
	}
	var err error
	switch format {
	case formatCSV:
		err = writeCSV(out, rd.Schema(), next, &rows, false)
	case formatCSVBOM:
		out.Write([]byte("\xEF\xBB\xBF"))
		err = writeCSV(out, rd.Schema(), next, &rows, true)
	case formatParquet:
		err = writeParquet(out, rd.Schema(), next, &rows, func() (arrow.Metadata, bool) {
			c, ok := cutAt(res)
			return arrowMarker(c, rows), ok && rd.Err() == nil
		})
	case formatNDJSON:
		err = writeNDJSON(out, rd.Schema(), next, &rows)
		if c, ok := cutAt(res); ok && err == nil && rd.Err() == nil {
			out.Write(ndjsonMarker(c, rows))
		}
	case formatArrow:
		err = writeArrow(out, rd.Schema(), next, &rows, func() (arrow.Metadata, bool) {
			c, ok := cutAt(res)
			return arrowMarker(c, rows), ok && rd.Err() == nil
		})
	default:
		err = writeJSONResult(out, log, res, next, &rows)
	}
	truncationTrailer(w.Header(), res)
	if out.flush() != nil {
		// Nothing more can reach the client: the query ends cancelled.
		return rows, res.Err(out.stopped())
	}
	if format == formatJSON {
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
			out.Write(append(b, '\n'))
			out.flush()
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
	var buf []byte
	for {
		rec, ok := next()
		if !ok {
			break
		}
		enc := columnCells(rec, jsonCells)
		for i := range int(rec.NumRows()) {
			if !first {
				buf = append(buf, ',')
			}
			first = false
			buf = append(appendRow(append(buf, '['), enc, nil, i), ']')
			*rows++
			buf = spill(w, buf)
		}
		buf = drain(w, buf)
	}
	io.WriteString(w, "]")
	if rerr := res.Reader.Err(); rerr != nil {
		err = res.Err(rerr)
		_, d := detail(log, err, res.QueryID)
		b, _ := json.Marshal(d)
		fmt.Fprintf(w, `,"error":%s`, b)
	}
	stats := map[string]any{"rows": *rows, "sources": res.Sources(), "suppressed": res.Suppressed(), "excluded": nonNil(res.Excluded()), "failed": nonNil(res.Failed())}
	if !res.Hides() {
		// Not where the policy filters or masks rows: the time grows with
		// rows the requester may not see.
		stats["elapsed_ms"] = res.Elapsed().Milliseconds()
	}
	truncationStats(stats, res)
	sb, _ := json.Marshal(stats)
	wb, _ := json.Marshal(res.Warnings())
	fmt.Fprintf(w, `,"stats":%s,"warnings":%s}`+"\n", sb, wb)
	return err
}

func writeNDJSON(w io.Writer, schema *arrow.Schema, next func() (arrow.RecordBatch, bool), rows *int64) error {
	names := make([][]byte, schema.NumFields())
	for i, fld := range schema.Fields() {
		names[i] = append(appendJSONString(nil, fld.Name), ':')
	}
	var buf []byte
	for {
		rec, ok := next()
		if !ok {
			return nil
		}
		enc := columnCells(rec, jsonCells)
		for i := range int(rec.NumRows()) {
			buf = append(appendRow(append(buf, '{'), enc, names, i), "}\n"...)
			*rows++
			buf = spill(w, buf)
		}
		buf = drain(w, buf)
	}
}

func writeCSV(w io.Writer, schema *arrow.Schema, next func() (arrow.RecordBatch, bool), rows *int64, excel bool) error {
	cellsOf := csvCells
	if excel {
		cellsOf = excelCells
	}
	var buf []byte
	for i, fld := range schema.Fields() {
		if i > 0 {
			buf = append(buf, ',')
		}
		name := fld.Name
		if excel && name != "" && excelFormula(name[0]) {
			name = "'" + name
		}
		buf = appendCSVField(buf, name)
	}
	buf = append(buf, '\n')
	for {
		rec, ok := next()
		if !ok {
			_, err := w.Write(buf)
			return err
		}
		enc := columnCells(rec, cellsOf)
		for i := range int(rec.NumRows()) {
			buf = append(appendRow(buf, enc, nil, i), '\n')
			*rows++
			buf = spill(w, buf)
		}
		buf = drain(w, buf)
	}
}

// appendRow appends row i's cells separated by commas, each after its
// name when names are given (an NDJSON object's members).
func appendRow(buf []byte, enc []cells, names [][]byte, i int) []byte {
	for c, cell := range enc {
		if c > 0 {
			buf = append(buf, ',')
		}
		if names != nil {
			buf = append(buf, names[c]...)
		}
		buf = cell(buf, i)
	}
	return buf
}

// columnCells picks each column's encoder for one batch.
func columnCells(rec arrow.RecordBatch, enc func(arrow.Array) cells) []cells {
	out := make([]cells, rec.NumCols())
	for c := range out {
		out[c] = enc(rec.Column(c))
	}
	return out
}

// spillAt is how much encoded text a writer holds before handing it on.
const spillAt = 32 << 10

// spill hands buf to w once it holds spillAt bytes, and returns it empty
// for reuse; a failed write is kept by the output and ends the stream at
// the batch's flush.
func spill(w io.Writer, buf []byte) []byte {
	if len(buf) < spillAt {
		return buf
	}
	return drain(w, buf)
}

// drain hands all of buf to w; a failed write is kept by the output.
func drain(w io.Writer, buf []byte) []byte {
	w.Write(buf)
	return buf[:0]
}

// writeArrow writes the result as an Arrow IPC stream; when end says so,
// its last batch is an empty one carrying end's metadata (the truncation
// marker).
func writeArrow(w io.Writer, schema *arrow.Schema, next func() (arrow.RecordBatch, bool), rows *int64, end func() (arrow.Metadata, bool)) error {
	iw := ipc.NewWriter(w, ipc.WithSchema(schema))
	for {
		rec, ok := next()
		if !ok {
			if md, ok := end(); ok {
				if err := writeMarkerBatch(iw, schema, md); err != nil {
					return err
				}
			}
			return iw.Close()
		}
		if err := iw.Write(rec); err != nil {
			return err
		}
		*rows += rec.NumRows()
	}
}

// writeParquet writes the result as one Parquet file, zstd-compressed, in
// row groups of up to 122,880 rows (DuckDB's own) as the batches come; a
// result the row cap cut carries the same markers as Arrow's, in the
// file's key-value metadata.
func writeParquet(w io.Writer, schema *arrow.Schema, next func() (arrow.RecordBatch, bool), rows *int64, end func() (arrow.Metadata, bool)) error {
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd), parquet.WithMaxRowGroupLength(122880))
	fw, err := pqarrow.NewFileWriter(schema, nopCloser{w}, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return fmt.Errorf("the result cannot be written as Parquet: %w", err)
	}
	for {
		rec, ok := next()
		if !ok {
			if md, ok := end(); ok {
				for i, k := range md.Keys() {
					if err := fw.AppendKeyValueMetadata(k, md.Values()[i]); err != nil {
						return err
					}
				}
			}
			return fw.Close()
		}
		if err := fw.WriteBuffered(rec); err != nil {
			return err
		}
		*rows += rec.NumRows()
	}
}

// nopCloser keeps the Parquet writer from closing the response.
type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte("null")
	}
	return b
}

// nonNil is s, or an empty slice for nil, so JSON says [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
