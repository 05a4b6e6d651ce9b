package flightapi

import (
	"encoding/json"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc/metadata"

	"github.com/councildata/gateway/gateway/engine"
)

// Nothing cut silently, as over HTTP: a statement under a row cap names
// it in RowCapHeader, in the response headers of the call that plans it
// and in its DoGet's trailers; the DoGet's trailers say in
// TruncatedTrailer whether the cap cut the result ("true" or "false");
// and a result the cap cut ends with an empty record batch whose
// FlightData app_metadata is the JSON TruncatedMarker.
const (
	RowCapHeader     = "x-gateway-row-cap"
	TruncatedTrailer = "x-gateway-truncated"
	// FilesHeader: once per file-backed table read, the files its scan
	// found and their latest modification time, as over HTTP.
	FilesHeader = "x-gateway-files"
	// CopyHeader: once per accelerated table read from the gateway's
	// copy, how fresh the copy is, as over HTTP.
	CopyHeader = "x-gateway-copy"
)

// TruncatedMarker is the app_metadata of the last FlightData of a result
// the row cap cut: {"_gateway":{"truncated":true,"row_cap":N,"rows":N}}.
type TruncatedMarker struct {
	Gateway struct {
		Truncated bool  `json:"truncated"`
		RowCap    int64 `json:"row_cap"`
		Rows      int64 `json:"rows"` // rows sent: the cap
	} `json:"_gateway"`
}

// rowCapMD is the row cap the result is under, and the files each
// file-backed table's scan found (FilesHeader) and the freshness of each
// local copy read (CopyHeader), as the planning call's response headers.
func rowCapMD(res *engine.Result) metadata.MD {
	md := metadata.MD{}
	if c := res.RowCap(); c > 0 {
		md.Append(RowCapHeader, strconv.FormatInt(c, 10))
	}
	for _, s := range res.Sources() {
		if n := s.FilesNote(); n != "" {
			md.Append(FilesHeader, asciiOnly(n))
		}
		if n := s.CopyNote(); n != "" {
			md.Append(CopyHeader, asciiOnly(n))
		}
	}
	return md
}

// truncationMD adds to a DoGet's trailers the cap and whether it cut.
func truncationMD(md metadata.MD, res *engine.Result) {
	if c := res.RowCap(); c > 0 {
		md.Append(RowCapHeader, strconv.FormatInt(c, 10))
		md.Append(TruncatedTrailer, strconv.FormatBool(res.Truncated()))
	}
}

// markerChunk is the empty batch that ends a result the cap cut, with
// the TruncatedMarker as its app_metadata; ok is false when the result
// was not cut.
func markerChunk(mem memory.Allocator, schema *arrow.Schema, res *engine.Result) (flight.StreamChunk, bool) {
	if !res.Truncated() {
		return flight.StreamChunk{}, false
	}
	var m TruncatedMarker
	m.Gateway.Truncated, m.Gateway.RowCap, m.Gateway.Rows = true, res.RowCap(), res.RowCap()
	b, _ := json.Marshal(m)
	cols := make([]arrow.Array, schema.NumFields())
	for i, f := range schema.Fields() {
		cols[i] = array.MakeArrayOfNull(mem, f.Type, 0)
	}
	rec := array.NewRecordBatch(schema, cols, 0)
	for _, c := range cols {
		c.Release()
	}
	return flight.StreamChunk{Data: rec, AppMetadata: b}, true
}
