package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/councildata/gateway/gateway/engine"
)

// Nothing cut silently: a response whose query is under a row cap says so
// before its first row (RowCapHeader), declares the TruncatedTrailer, and
// ends with it: "true" when the cap cut the result, "false" when every row
// came. A result the cap cut also ends, in its own format, with a marker
// a client that cannot read trailers still sees: NDJSON a last line
// {"_gateway": {...}}, Arrow a last, empty record batch whose custom
// metadata holds the ArrowTruncatedKey, JSON stats.truncated. They carry
// the cap and the rows sent, which the requester has anyway, and nothing
// per council.
const (
	RowCapHeader     = "X-Gateway-Row-Cap"
	TruncatedTrailer = "X-Gateway-Truncated"
	// FilesHeader names, once per file-backed table a query read, how
	// many files the scan found and the latest modification time among
	// them, so a missing monthly file shows.
	FilesHeader = "X-Gateway-Files"
	// CopyHeader says, once per accelerated table the query read from the
	// gateway's local copy, the copy's mode, when it was last known to
	// match the store and how many seconds ago that was.
	CopyHeader = "X-Gateway-Copy"
	// ArrowTruncatedKey and ArrowRowCapKey are the custom metadata of the
	// empty record batch that ends an Arrow stream the cap cut.
	ArrowTruncatedKey = "gateway.truncated"
	ArrowRowCapKey    = "gateway.row_cap"
	ArrowRowsKey      = "gateway.rows"
)

// truncationHeaders declares what a capped response will say at its end,
// and names the files each file-backed table's scan read. It runs before
// the status is sent.
func truncationHeaders(h http.Header, res *engine.Result) {
	if c := res.RowCap(); c > 0 {
		h.Set(RowCapHeader, strconv.FormatInt(c, 10))
		h.Add("Trailer", TruncatedTrailer)
	}
	for _, s := range res.Sources() {
		if n := s.FilesNote(); n != "" {
			h.Add(FilesHeader, trimmed(n))
		}
		if n := s.CopyNote(); n != "" {
			h.Add(CopyHeader, trimmed(n))
		}
	}
}

// truncationTrailer sets the trailer truncationHeaders declared, once the
// result has been read to its end.
func truncationTrailer(h http.Header, res *engine.Result) {
	if res.RowCap() > 0 {
		h.Set(TruncatedTrailer, strconv.FormatBool(res.Truncated()))
	}
}

// cutAt is the cap that cut the result, and false when it was not cut
// (then no format adds a marker); final once the reader is exhausted.
func cutAt(res *engine.Result) (int64, bool) {
	if !res.Truncated() {
		return 0, false
	}
	return res.RowCap(), true
}

// ndjsonMarker is the last line of an NDJSON stream the cap cut.
func ndjsonMarker(capRows, sent int64) []byte {
	b, _ := json.Marshal(map[string]any{"_gateway": map[string]any{"truncated": true, "row_cap": capRows, "rows": sent}})
	return append(b, '\n')
}

// arrowMarker is the custom metadata of the empty batch that ends an
// Arrow stream the cap cut.
func arrowMarker(capRows, sent int64) arrow.Metadata {
	return arrow.NewMetadata([]string{ArrowTruncatedKey, ArrowRowCapKey, ArrowRowsKey},
		[]string{"true", strconv.FormatInt(capRows, 10), strconv.FormatInt(sent, 10)})
}

// writeMarkerBatch writes an empty record batch carrying md as its
// message's custom metadata (pyarrow: read_next_batch_with_custom_metadata).
func writeMarkerBatch(iw *ipc.Writer, schema *arrow.Schema, md arrow.Metadata) error {
	cols := make([]arrow.Array, schema.NumFields())
	for i, f := range schema.Fields() {
		cols[i] = array.MakeArrayOfNull(memory.DefaultAllocator, f.Type, 0)
		defer cols[i].Release()
	}
	rec := array.NewRecordBatchWithMetadata(schema, cols, 0, md)
	defer rec.Release()
	return iw.Write(rec)
}

// truncationStats adds to JSON stats the cap the result is under and
// whether it cut it.
func truncationStats(stats map[string]any, res *engine.Result) {
	stats["truncated"] = res.Truncated()
	if c := res.RowCap(); c > 0 {
		stats["row_cap"] = c
	}
}

// trimmed keeps a header value on one line.
func trimmed(s string) string { return strings.NewReplacer("\r", " ", "\n", " ").Replace(s) }
