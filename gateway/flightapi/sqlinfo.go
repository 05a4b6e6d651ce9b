package flightapi

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql/schema_ref"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ServerName is what GetSqlInfo reports as the server's name.
const ServerName = "Council Data Gateway"

// sqlInfo is what GetSqlInfo answers: the facts JDBC and ODBC drivers ask
// for at connect time, for DuckDB's SQL behind a read-only gateway.
func (s *Server) sqlInfo() flightsql.SqlInfoResultMap {
	return flightsql.SqlInfoResultMap{
		uint32(flightsql.SqlInfoFlightSqlServerName):                        ServerName,
		uint32(flightsql.SqlInfoFlightSqlServerVersion):                     s.cfg.Version,
		uint32(flightsql.SqlInfoFlightSqlServerArrowVersion):                arrow.PkgVersion,
		uint32(flightsql.SqlInfoFlightSqlServerReadOnly):                    true,
		uint32(flightsql.SqlInfoFlightSqlServerSql):                         true,
		uint32(flightsql.SqlInfoFlightSqlServerSubstrait):                   false,
		uint32(flightsql.SqlInfoFlightSqlServerTransaction):                 int32(flightsql.SqlTransactionNone),
		uint32(flightsql.SqlInfoFlightSqlServerCancel):                      true,
		uint32(flightsql.SqlInfoFlightSqlServerBulkIngestion):               false,
		uint32(flightsql.SqlInfoFlightSqlServerIngestTransactionsSupported): false,
		uint32(flightsql.SqlInfoFlightSqlServerStatementTimeout):            int32(0),
		uint32(flightsql.SqlInfoFlightSqlServerTransactionTimeout):          int32(0),
		uint32(flightsql.SqlInfoDDLCatalog):                                 false,
		uint32(flightsql.SqlInfoDDLSchema):                                  false,
		uint32(flightsql.SqlInfoDDLTable):                                   false,
		// DuckDB folds neither unquoted nor quoted identifiers, and matches
		// both ignoring case.
		uint32(flightsql.SqlInfoIdentifierCase):                          int64(flightsql.SqlCaseSensitivityCaseInsensitive),
		uint32(flightsql.SqlInfoIdentifierQuoteChar):                     `"`,
		uint32(flightsql.SqlInfoQuotedIdentifierCase):                    int64(flightsql.SqlCaseSensitivityCaseInsensitive),
		uint32(flightsql.SqlInfoAllTablesAreASelectable):                 true, // listings are filtered to what may be read
		uint32(flightsql.SqlInfoNullOrdering):                            int64(flightsql.SqlNullOrderingSortAtEnd),
		uint32(flightsql.SqlInfoKeywords):                                duckKeywords,
		uint32(flightsql.SqlInfoNumericFunctions):                        []string{"abs", "ceil", "floor", "round", "sqrt", "ln", "log10", "power", "sign", "trunc", "pi", "random"},
		uint32(flightsql.SqlInfoStringFunctions):                         []string{"concat", "length", "lower", "upper", "trim", "ltrim", "rtrim", "substring", "replace", "strpos", "left", "right", "lpad", "rpad", "regexp_matches", "regexp_replace"},
		uint32(flightsql.SqlInfoSystemFunctions):                         []string{"coalesce", "ifnull", "nullif"},
		uint32(flightsql.SqlInfoDateTimeFunctions):                       []string{"current_date", "current_timestamp", "date_trunc", "date_part", "extract", "strftime", "strptime", "year", "month", "day"},
		uint32(flightsql.SqlInfoSearchStringEscape):                      `\`,
		uint32(flightsql.SqlInfoExtraNameChars):                          "",
		uint32(flightsql.SqlInfoSupportsColumnAliasing):                  true,
		uint32(flightsql.SqlInfoNullPlusNullIsNull):                      true,
		uint32(flightsql.SqlInfoSupportsTableCorrelationNames):           true,
		uint32(flightsql.SqlInfoSupportsDifferentTableCorrelationNames):  false,
		uint32(flightsql.SqlInfoSupportsExpressionsInOrderBy):            true,
		uint32(flightsql.SqlInfoSupportsOrderByUnrelated):                true,
		uint32(flightsql.SqlInfoSupportedGroupBy):                        int32(0b11), // unrelated, beyond select
		uint32(flightsql.SqlInfoSupportsLikeEscapeClause):                true,
		uint32(flightsql.SqlInfoSupportsNonNullableColumns):              true,
		uint32(flightsql.SqlInfoSupportedGrammar):                        int32(0b011), // minimum, core
		uint32(flightsql.SqlInfoANSI92SupportedLevel):                    int32(0b011), // entry, intermediate
		uint32(flightsql.SqlInfoSupportsIntegrityEnhancementFacility):    false,
		uint32(flightsql.SqlInfoOuterJoinsSupportLevel):                  int32(2), // full
		uint32(flightsql.SqlInfoSchemaTerm):                              "schema",
		uint32(flightsql.SqlInfoProcedureTerm):                           "procedure",
		uint32(flightsql.SqlInfoCatalogTerm):                             "catalog",
		uint32(flightsql.SqlInfoCatalogAtStart):                          true,
		uint32(flightsql.SqlInfoSchemasSupportedActions):                 int32(0),
		uint32(flightsql.SqlInfoCatalogsSupportedActions):                int32(0),
		uint32(flightsql.SqlInfoSupportedPositionedCommands):             int32(0),
		uint32(flightsql.SqlInfoSelectForUpdateSupported):                false,
		uint32(flightsql.SqlInfoStoredProceduresSupported):               false,
		uint32(flightsql.SqlInfoSupportedSubqueries):                     int32(0b1111), // comparisons, exists, in, quantified
		uint32(flightsql.SqlInfoCorrelatedSubqueriesSupported):           true,
		uint32(flightsql.SqlInfoSupportedUnions):                         int32(0b11), // union, union all
		uint32(flightsql.SqlInfoMaxBinaryLiteralLen):                     int64(0),
		uint32(flightsql.SqlInfoMaxCharLiteralLen):                       int64(0),
		uint32(flightsql.SqlInfoMaxColumnNameLen):                        int64(0),
		uint32(flightsql.SqlInfoMaxColumnsInGroupBy):                     int64(0),
		uint32(flightsql.SqlInfoMaxColumnsInIndex):                       int64(0),
		uint32(flightsql.SqlInfoMaxColumnsInOrderBy):                     int64(0),
		uint32(flightsql.SqlInfoMaxColumnsInSelect):                      int64(0),
		uint32(flightsql.SqlInfoMaxColumnsInTable):                       int64(0),
		uint32(flightsql.SqlInfoMaxConnections):                          int64(0),
		uint32(flightsql.SqlInfoMaxCursorNameLen):                        int64(0),
		uint32(flightsql.SqlInfoMaxIndexLen):                             int64(0),
		uint32(flightsql.SqlInfoDBSchemaNameLen):                         int64(0),
		uint32(flightsql.SqlInfoMaxProcedureNameLen):                     int64(0),
		uint32(flightsql.SqlInfoMaxCatalogNameLen):                       int64(0),
		uint32(flightsql.SqlInfoMaxRowSize):                              int64(0),
		uint32(flightsql.SqlInfoMaxRowSizeIncludesBlobs):                 false,
		uint32(flightsql.SqlInfoMaxStatementLen):                         int64(0),
		uint32(flightsql.SqlInfoMaxStatements):                           int64(0),
		uint32(flightsql.SqlInfoMaxTableNameLen):                         int64(0),
		uint32(flightsql.SqlInfoMaxTablesInSelect):                       int64(0),
		uint32(flightsql.SqlInfoMaxUsernameLen):                          int64(0),
		uint32(flightsql.SqlInfoDefaultTransactionIsolation):             int64(0), // none
		uint32(flightsql.SqlInfoTransactionsSupported):                   false,
		uint32(flightsql.SqlInfoSupportedTransactionsIsolationlevels):    int32(0),
		uint32(flightsql.SqlInfoDataDefinitionCausesTransactionCommit):   false,
		uint32(flightsql.SqlInfoDataDefinitionsInTransactionsIgnored):    false,
		uint32(flightsql.SqlInfoSupportedResultSetTypes):                 int32(0b10), // forward only
		uint32(flightsql.SqlInfoBatchUpdatesSupported):                   false,
		uint32(flightsql.SqlInfoSavePointsSupported):                     false,
		uint32(flightsql.SqlInfoNamedParametersSupported):                false,
		uint32(flightsql.SqlInfoLocatorsUpdateCopy):                      false,
		uint32(flightsql.SqlInfoStoredFunctionsUsingCallSyntaxSupported): false,
	}
}

// duckKeywords are DuckDB's reserved words beyond SQL:2003's, as JDBC's
// getSQLKeywords wants them.
var duckKeywords = []string{"ANALYSE", "ANALYZE", "ASOF", "DESCRIBE", "GLOB", "ILIKE", "LIMIT", "OFFSET", "PIVOT", "PIVOT_LONGER", "PIVOT_WIDER", "POSITIONAL", "QUALIFY", "RETURNING", "SEMI", "ANTI", "SUMMARIZE", "UNPIVOT", "VARIADIC"}

func (s *Server) registerSqlInfo() error {
	for id, v := range s.sqlInfo() {
		if err := s.RegisterSqlInfo(flightsql.SqlInfo(id), v); err != nil {
			return err
		}
	}
	return nil
}

type sqlInfoIDs []uint32

func (i sqlInfoIDs) GetInfo() []uint32 { return i }

// DoGetSqlInfo answers the ids it knows and leaves out the others, rather
// than failing the whole call as the base implementation does: drivers ask
// for ids newer than this server.
func (s *Server) DoGetSqlInfo(ctx context.Context, cmd flightsql.GetSqlInfo) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	asked := cmd.GetInfo()
	if len(asked) == 0 {
		return s.BaseServer.DoGetSqlInfo(ctx, cmd)
	}
	known := s.sqlInfo()
	var ids sqlInfoIDs
	for _, id := range asked {
		if _, ok := known[id]; ok {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return s.empty(ctx, schema_ref.SqlInfo)
	}
	return s.BaseServer.DoGetSqlInfo(ctx, ids)
}

// XDBC (JDBC/ODBC) type codes and attributes.
const (
	xdbcBit       = -7
	xdbcTinyint   = -6
	xdbcBigint    = -5
	xdbcVarbinary = -3
	xdbcDecimal   = 3
	xdbcInteger   = 4
	xdbcSmallint  = 5
	xdbcReal      = 7
	xdbcDouble    = 8
	xdbcDatetime  = 9
	xdbcVarchar   = 12
	xdbcDate      = 91
	xdbcTime      = 92
	xdbcTimestamp = 93

	xdbcNullable       = 1
	xdbcSearchableFull = 3
)

type xdbcType struct {
	TypeName         string   `json:"type_name"`
	DataType         int32    `json:"data_type"`
	ColumnSize       *int32   `json:"column_size"`
	LiteralPrefix    *string  `json:"literal_prefix"`
	LiteralSuffix    *string  `json:"literal_suffix"`
	CreateParams     []string `json:"create_params"`
	Nullable         int32    `json:"nullable"`
	CaseSensitive    bool     `json:"case_sensitive"`
	Searchable       int32    `json:"searchable"`
	Unsigned         *bool    `json:"unsigned_attribute"`
	FixedPrecScale   bool     `json:"fixed_prec_scale"`
	AutoIncrement    *bool    `json:"auto_increment"`
	LocalTypeName    *string  `json:"local_type_name"`
	MinimumScale     *int32   `json:"minimum_scale"`
	MaximumScale     *int32   `json:"maximum_scale"`
	SQLDataType      int32    `json:"sql_data_type"`
	DatetimeSubcode  *int32   `json:"datetime_subcode"`
	NumPrecRadix     *int32   `json:"num_prec_radix"`
	IntervalPrecison *int32   `json:"interval_precision"`
}

func ptr[T any](v T) *T { return &v }

// xdbcTypes are DuckDB's types as the gateway returns them, ordered by
// data type as ODBC's SQLGetTypeInfo requires.
func xdbcTypes() []xdbcType {
	num := func(name string, code, size int32) xdbcType {
		return xdbcType{TypeName: name, DataType: code, ColumnSize: ptr(size), Nullable: xdbcNullable, Searchable: xdbcSearchableFull,
			Unsigned: ptr(false), AutoIncrement: ptr(false), LocalTypeName: ptr(name), MinimumScale: ptr(int32(0)), MaximumScale: ptr(int32(0)),
			SQLDataType: code, NumPrecRadix: ptr(int32(10))}
	}
	date := func(name string, code, sub, size int32, prefix string) xdbcType {
		return xdbcType{TypeName: name, DataType: code, ColumnSize: ptr(size), LiteralPrefix: ptr(prefix), LiteralSuffix: ptr("'"),
			Nullable: xdbcNullable, Searchable: xdbcSearchableFull, LocalTypeName: ptr(name), SQLDataType: xdbcDatetime, DatetimeSubcode: ptr(sub)}
	}
	dec := num("DECIMAL", xdbcDecimal, 38)
	dec.CreateParams, dec.FixedPrecScale, dec.MaximumScale = []string{"precision", "scale"}, true, ptr(int32(38))
	return []xdbcType{
		{TypeName: "BOOLEAN", DataType: xdbcBit, ColumnSize: ptr(int32(1)), Nullable: xdbcNullable, Searchable: xdbcSearchableFull, LocalTypeName: ptr("BOOLEAN"), SQLDataType: xdbcBit},
		num("TINYINT", xdbcTinyint, 3),
		num("BIGINT", xdbcBigint, 19),
		{TypeName: "BLOB", DataType: xdbcVarbinary, ColumnSize: ptr(int32(2147483647)), LiteralPrefix: ptr("'"), LiteralSuffix: ptr("'::BLOB"),
			Nullable: xdbcNullable, Searchable: xdbcSearchableFull, LocalTypeName: ptr("BLOB"), SQLDataType: xdbcVarbinary},
		dec,
		num("INTEGER", xdbcInteger, 10),
		num("SMALLINT", xdbcSmallint, 5),
		num("FLOAT", xdbcReal, 7),
		num("DOUBLE", xdbcDouble, 15),
		{TypeName: "VARCHAR", DataType: xdbcVarchar, ColumnSize: ptr(int32(2147483647)), LiteralPrefix: ptr("'"), LiteralSuffix: ptr("'"),
			Nullable: xdbcNullable, CaseSensitive: true, Searchable: xdbcSearchableFull, LocalTypeName: ptr("VARCHAR"), SQLDataType: xdbcVarchar},
		date("DATE", xdbcDate, 1, 10, "DATE '"),
		date("TIME", xdbcTime, 2, 15, "TIME '"),
		date("TIMESTAMP", xdbcTimestamp, 3, 26, "TIMESTAMP '"),
		date("TIMESTAMP WITH TIME ZONE", xdbcTimestamp, 3, 32, "TIMESTAMPTZ '"),
	}
}

func (s *Server) GetFlightInfoXdbcTypeInfo(_ context.Context, _ flightsql.GetXdbcTypeInfo, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	return s.metaInfo(desc, schema_ref.XdbcTypeInfo), nil
}

func (s *Server) DoGetXdbcTypeInfo(ctx context.Context, cmd flightsql.GetXdbcTypeInfo) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	var rows []xdbcType
	for _, t := range xdbcTypes() {
		if dt := cmd.GetDataType(); dt == nil || *dt == t.DataType {
			rows = append(rows, t)
		}
	}
	if len(rows) == 0 {
		return s.empty(ctx, schema_ref.XdbcTypeInfo)
	}
	raw, err := json.Marshal(rows)
	if err != nil {
		return nil, nil, status.Errorf(codes.Internal, "type info: %v", err)
	}
	rec, _, err := array.RecordFromJSON(s.mem, schema_ref.XdbcTypeInfo, strings.NewReader(string(raw)))
	if err != nil {
		return nil, nil, status.Errorf(codes.Internal, "type info: %v", err)
	}
	return s.send(ctx, rec)
}

// CancelQuery is the older form of CancelFlightInfo, still sent by some
// drivers.
func (s *Server) CancelQuery(ctx context.Context, req flightsql.ActionCancelQueryRequest) (flightsql.CancelResult, error) {
	res, err := s.CancelFlightInfo(ctx, &flight.CancelFlightInfoRequest{Info: req.GetInfo()})
	if err != nil {
		return flightsql.CancelResultUnspecified, err
	}
	switch res.Status {
	case flight.CancelStatusCancelled:
		return flightsql.CancelResultCancelled, nil
	case flight.CancelStatusCancelling:
		return flightsql.CancelResultCancelling, nil
	}
	return flightsql.CancelResultNotCancellable, nil
}
