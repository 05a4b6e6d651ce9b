package engine

import (
	"context"
	"sort"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/councildata/gateway/gateway/catalog"
)

// Listed is one table a requester may see listed: a council's table (in
// the schema named after its source) or a standard dataset (in "std").
type Listed struct {
	Schema, Name string
	// Dataset is true for a standard dataset: one name over many councils.
	Dataset bool
	// Fields are the columns as a query of the table returns them, each
	// with its "description" metadata where the dataset gives one.
	Fields *arrow.Schema
	// Description is the dataset's own, if any.
	Description string
}

// Listing is the tables the requester may see, for the declared purpose,
// as Visible decides, in schema then table order: what every door's
// catalog (Flight SQL's GetTables, the PostgreSQL door's pg_catalog)
// shows. An error from the policy lists nothing.
func (e *Engine) Listing(ctx context.Context, req Request) ([]Listed, error) {
	visible, err := e.Visible(ctx, req)
	if err != nil {
		return nil, err
	}
	cat := e.Catalog()
	var out []Listed
	for _, src := range cat.Sources() {
		ts, err := src.Tables(ctx)
		if err != nil {
			continue
		}
		for _, t := range ts {
			if visible[src.Config.ID+"."+t.Name] {
				out = append(out, Listed{Schema: src.Config.ID, Name: t.Name, Fields: t.Schema})
			}
		}
	}
	for _, d := range cat.Datasets() {
		for _, m := range d.Members {
			if visible["std."+d.Config.Name+"/"+m.Source.Config.ID] {
				out = append(out, Listed{Schema: "std", Name: d.Config.Name, Dataset: true, Fields: DatasetSchema(d), Description: d.Config.Description})
				break
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Schema < out[j].Schema })
	return out, nil
}

// DatasetSchema is a standard dataset's columns as the engine returns
// them: council and council_gss, then the configured columns.
func DatasetSchema(d *catalog.Dataset) *arrow.Schema {
	fields := []arrow.Field{
		{Name: "council", Type: arrow.BinaryTypes.String, Nullable: true, Metadata: arrow.NewMetadata([]string{"description"}, []string{"source id of the council"})},
		{Name: "council_gss", Type: arrow.BinaryTypes.String, Nullable: true, Metadata: arrow.NewMetadata([]string{"description"}, []string{"GSS code of the council"})},
	}
	for _, c := range d.Config.Columns {
		t, ok := catalog.ArrowType(c.Type)
		if !ok {
			t = arrow.BinaryTypes.String
		}
		f := arrow.Field{Name: c.Name, Type: t, Nullable: true}
		if c.Description != "" {
			f.Metadata = arrow.NewMetadata([]string{"description"}, []string{c.Description})
		}
		fields = append(fields, f)
	}
	return arrow.NewSchema(fields, nil)
}
