package flightapi

import (
	"context"
	"regexp"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql/schema_ref"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/councildata/gateway/gateway/catalog"
	"github.com/councildata/gateway/gateway/engine"
)

// The tree a BI tool shows: one catalog; one schema per council source
// (and "gateway" for the audit log), whose tables are TABLEs; and "std",
// whose standard datasets are VIEWs over the councils. Everything is
// filtered by Engine.Visible for the caller and the purpose the call
// declares, as GET /v1/catalog is. Metadata tickets are the command
// itself: a metadata call carries no query, and each DoGet is answered
// for whoever makes it.

// CatalogName is the one catalog.
const CatalogName = "councils"

// Table types.
const (
	TypeTable = "TABLE"
	TypeView  = "VIEW"
)

type tableEntry struct {
	schema, name, typ string
	fields            *arrow.Schema
}

// tables lists what the caller may see, in schema then table order
// (engine.Listing).
func (s *Server) tables(ctx context.Context) ([]tableEntry, error) {
	listed, err := s.cfg.Engine.Listing(ctx, s.request(ctx, "", engine.NewQueryID()))
	if err != nil {
		s.log.Warn("flight catalog: policy could not decide; showing nothing", "err", err)
	}
	out := make([]tableEntry, 0, len(listed))
	for _, l := range listed {
		typ := TypeTable
		if l.Dataset {
			typ = TypeView
		}
		out = append(out, tableEntry{schema: l.Schema, name: l.Name, typ: typ, fields: l.Fields})
	}
	return out, nil
}

// plainType replaces view types, which many clients cannot read, with the
// plain ones, as the query results have.
func plainType(t arrow.DataType) arrow.DataType {
	switch t.ID() {
	case arrow.STRING_VIEW:
		return arrow.BinaryTypes.String
	case arrow.BINARY_VIEW:
		return arrow.BinaryTypes.Binary
	}
	return t
}

// describe adds the Flight SQL column metadata JDBC and ODBC drivers read.
func describe(e tableEntry) *arrow.Schema {
	fields := make([]arrow.Field, len(e.fields.Fields()))
	for i, f := range e.fields.Fields() {
		t := plainType(f.Type)
		b := flightsql.NewColumnMetadataBuilder().CatalogName(CatalogName).SchemaName(e.schema).TableName(e.name).
			TypeName(catalog.SQLType(t)).IsReadOnly(true).IsAutoIncrement(false).IsSearchable(true).
			IsCaseSensitive(t.ID() == arrow.STRING || t.ID() == arrow.LARGE_STRING)
		if d, ok := t.(arrow.DecimalType); ok {
			b.Precision(d.GetPrecision()).Scale(d.GetScale())
		}
		if desc, ok := f.Metadata.GetValue("description"); ok {
			b.Remarks(desc)
		}
		fields[i] = arrow.Field{Name: f.Name, Type: t, Nullable: f.Nullable, Metadata: b.Metadata()}
	}
	return arrow.NewSchema(fields, nil)
}

// likePattern turns a JDBC/ODBC search pattern (% and _, \ escapes) into a
// case-insensitive matcher; nil or empty matches everything.
func likePattern(p *string) func(string) bool {
	if p == nil || *p == "" || *p == "%" {
		return func(string) bool { return true }
	}
	var b strings.Builder
	b.WriteString("(?is)^")
	esc := false
	for _, r := range *p {
		switch {
		case esc:
			b.WriteString(regexp.QuoteMeta(string(r)))
			esc = false
		case r == '\\':
			esc = true
		case r == '%':
			b.WriteString(".*")
		case r == '_':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	re := regexp.MustCompile(b.String())
	return re.MatchString
}

func catalogMatches(c *string) bool {
	return c == nil || *c == "" || strings.EqualFold(*c, CatalogName)
}

// metaInfo is the FlightInfo of a metadata call: its ticket is the command.
func (s *Server) metaInfo(desc *flight.FlightDescriptor, schema *arrow.Schema) *flight.FlightInfo {
	return &flight.FlightInfo{
		Schema:           flight.SerializeSchema(schema, s.mem),
		FlightDescriptor: desc,
		Endpoint:         []*flight.FlightEndpoint{{Ticket: &flight.Ticket{Ticket: desc.Cmd}}},
		TotalRecords:     -1,
		TotalBytes:       -1,
	}
}

// send streams one record (which it releases when sent).
func (s *Server) send(ctx context.Context, rec arrow.RecordBatch) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	defer rec.Release()
	rdr, err := array.NewRecordReader(rec.Schema(), []arrow.RecordBatch{rec})
	if err != nil {
		return nil, nil, status.Errorf(codes.Internal, "building the result: %v", err)
	}
	ch := make(chan flight.StreamChunk, 1)
	go flight.StreamChunksFromReader(ctx, rdr, ch)
	return rec.Schema(), ch, nil
}

func (s *Server) empty(ctx context.Context, schema *arrow.Schema) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	b := array.NewRecordBuilder(s.mem, schema)
	defer b.Release()
	return s.send(ctx, b.NewRecordBatch())
}

// GetFlightInfoCatalogs and DoGetCatalogs: the one catalog.
func (s *Server) GetFlightInfoCatalogs(_ context.Context, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	return s.metaInfo(desc, schema_ref.Catalogs), nil
}

func (s *Server) DoGetCatalogs(ctx context.Context) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	b := array.NewRecordBuilder(s.mem, schema_ref.Catalogs)
	defer b.Release()
	b.Field(0).(*array.StringBuilder).Append(CatalogName)
	return s.send(ctx, b.NewRecordBatch())
}

// GetFlightInfoSchemas and DoGetDBSchemas: the schemas with a visible table.
func (s *Server) GetFlightInfoSchemas(_ context.Context, _ flightsql.GetDBSchemas, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	return s.metaInfo(desc, schema_ref.DBSchemas), nil
}

func (s *Server) DoGetDBSchemas(ctx context.Context, cmd flightsql.GetDBSchemas) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	b := array.NewRecordBuilder(s.mem, schema_ref.DBSchemas)
	defer b.Release()
	if catalogMatches(cmd.GetCatalog()) {
		entries, _ := s.tables(ctx)
		match := likePattern(cmd.GetDBSchemaFilterPattern())
		seen := map[string]bool{}
		for _, e := range entries {
			if seen[e.schema] || !match(e.schema) {
				continue
			}
			seen[e.schema] = true
			b.Field(0).(*array.StringBuilder).Append(CatalogName)
			b.Field(1).(*array.StringBuilder).Append(e.schema)
		}
	}
	return s.send(ctx, b.NewRecordBatch())
}

// GetFlightInfoTables and DoGetTables: visible tables, with their Arrow
// schemas and column metadata when asked.
func (s *Server) GetFlightInfoTables(_ context.Context, cmd flightsql.GetTables, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	if cmd.GetIncludeSchema() {
		return s.metaInfo(desc, schema_ref.TablesWithIncludedSchema), nil
	}
	return s.metaInfo(desc, schema_ref.Tables), nil
}

func (s *Server) DoGetTables(ctx context.Context, cmd flightsql.GetTables) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	schema := schema_ref.Tables
	if cmd.GetIncludeSchema() {
		schema = schema_ref.TablesWithIncludedSchema
	}
	b := array.NewRecordBuilder(s.mem, schema)
	defer b.Release()
	if catalogMatches(cmd.GetCatalog()) {
		entries, _ := s.tables(ctx)
		schemaMatch, tableMatch := likePattern(cmd.GetDBSchemaFilterPattern()), likePattern(cmd.GetTableNameFilterPattern())
		types := map[string]bool{}
		for _, t := range cmd.GetTableTypes() {
			types[strings.ToUpper(t)] = true
		}
		for _, e := range entries {
			if !schemaMatch(e.schema) || !tableMatch(e.name) || len(types) > 0 && !types[e.typ] {
				continue
			}
			b.Field(0).(*array.StringBuilder).Append(CatalogName)
			b.Field(1).(*array.StringBuilder).Append(e.schema)
			b.Field(2).(*array.StringBuilder).Append(e.name)
			b.Field(3).(*array.StringBuilder).Append(e.typ)
			if cmd.GetIncludeSchema() {
				b.Field(4).(*array.BinaryBuilder).Append(flight.SerializeSchema(describe(e), s.mem))
			}
		}
	}
	return s.send(ctx, b.NewRecordBatch())
}

// GetFlightInfoTableTypes and DoGetTableTypes: TABLE and VIEW.
func (s *Server) GetFlightInfoTableTypes(_ context.Context, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	return s.metaInfo(desc, schema_ref.TableTypes), nil
}

func (s *Server) DoGetTableTypes(ctx context.Context) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	b := array.NewRecordBuilder(s.mem, schema_ref.TableTypes)
	defer b.Release()
	b.Field(0).(*array.StringBuilder).AppendValues([]string{TypeTable, TypeView}, nil)
	return s.send(ctx, b.NewRecordBatch())
}

// Keys: the councils' stores declare none to the gateway, so these are
// empty, with the shape the spec gives them.

func (s *Server) GetFlightInfoPrimaryKeys(_ context.Context, _ flightsql.TableRef, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	return s.metaInfo(desc, schema_ref.PrimaryKeys), nil
}

func (s *Server) DoGetPrimaryKeys(ctx context.Context, _ flightsql.TableRef) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	return s.empty(ctx, schema_ref.PrimaryKeys)
}

func (s *Server) GetFlightInfoExportedKeys(_ context.Context, _ flightsql.TableRef, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	return s.metaInfo(desc, schema_ref.ExportedKeys), nil
}

func (s *Server) DoGetExportedKeys(ctx context.Context, _ flightsql.TableRef) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	return s.empty(ctx, schema_ref.ExportedKeys)
}

func (s *Server) GetFlightInfoImportedKeys(_ context.Context, _ flightsql.TableRef, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	return s.metaInfo(desc, schema_ref.ImportedKeys), nil
}

func (s *Server) DoGetImportedKeys(ctx context.Context, _ flightsql.TableRef) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	return s.empty(ctx, schema_ref.ImportedKeys)
}

func (s *Server) GetFlightInfoCrossReference(_ context.Context, _ flightsql.CrossTableRef, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	return s.metaInfo(desc, schema_ref.CrossReference), nil
}

func (s *Server) DoGetCrossReference(ctx context.Context, _ flightsql.CrossTableRef) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	return s.empty(ctx, schema_ref.CrossReference)
}
