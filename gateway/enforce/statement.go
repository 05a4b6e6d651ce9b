package enforce

import (
	"strings"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/sqltree"
)

// SafeTableFunctions may appear in FROM: they read no data outside the
// query.
var SafeTableFunctions = map[string]bool{"range": true, "generate_series": true, "unnest": true}

// DeniedFunctionNames are DuckDB functions that read the database's own
// state rather than the query's data: settings, variables, the catalog,
// the session, sequences, the plan, logs and statistics, and sleeping (a
// timing channel). DeniedFunctionsSQL finds the rest: every function of
// the pg_catalog schema and every duckdb_* and pragma_* function.
var DeniedFunctionNames = []string{
	"current_setting", "getvariable", "current_database", "current_catalog", "current_schema", "current_schemas",
	"current_query", "current_query_id", "current_connection_id", "current_transaction_id", "current_user",
	"current_role", "session_user", "user", "in_search_path", "nextval", "currval", "txid_current",
	"json_serialize_sql", "json_serialize_plan", "json_deserialize_sql", "json_execute_serialized_sql",
	"write_log", "stats", "sleep_ms", "pg_sleep", "get_block_size", "which_secret", "version",
	"duckdb_api", "platform", "user_agent", "alias", "parse_duckdb_log_message", "icu_calendar_names",
}

// DeniedFunctionsSQL lists, in a DuckDB, the denied functions beyond
// DeniedFunctionNames, lower-cased.
const DeniedFunctionsSQL = `SELECT DISTINCT lower(function_name) FROM duckdb_functions()
	WHERE schema_name = 'pg_catalog' OR function_name LIKE 'duckdb\_%' ESCAPE '\' OR function_name LIKE 'pragma\_%' ESCAPE '\'`

// ReservedNamesSQL lists, in a fresh DuckDB, the relations an unqualified
// name can reach (DuckDB's own views in main and pg_catalog, such as
// pg_settings and duckdb_tables), lower-cased: no CTE may take one of
// those names, so a mistake in scoping can never bind one in its place.
const ReservedNamesSQL = `SELECT DISTINCT lower(view_name) FROM duckdb_views() WHERE schema_name IN ('main', 'pg_catalog')
	UNION SELECT DISTINCT lower(table_name) FROM duckdb_tables() WHERE schema_name IN ('main', 'pg_catalog')`

// Names are what Statement refuses by name.
type Names struct {
	// Functions no query may call: DeniedFunctionNames and what
	// DeniedFunctionsSQL finds.
	Denied map[string]bool
	// Relations no CTE may be named after: what ReservedNamesSQL finds.
	Reserved map[string]bool
}

// Statement refuses what no query may name or call (see the package doc).
// Unqualified names that are not CTEs in scope are refused by the planner,
// which can say what exists.
func Statement(a *sqltree.Analysis, names Names) error {
	for _, name := range sqltree.CTENames(a.Statement()) {
		switch {
		case strings.HasPrefix(name, "__"):
			return gateway.Errorf(gateway.CodeBadRequest, "WITH %s: names starting with __ are reserved for the gateway", name)
		case names.Reserved[strings.ToLower(name)]:
			return gateway.Errorf(gateway.CodeBadRequest, "WITH %s: the name is one of DuckDB's own views; choose another", name)
		}
	}
	for _, r := range a.Refs {
		if r.Catalog != "" {
			return gateway.Errorf(gateway.CodeNotFound, "table %s.%s.%s: name tables as <source>.<table> or std.<dataset>, without a catalog", r.Catalog, r.Schema, r.Table)
		}
	}
	var err error
	sqltree.Walk(a.Statement(), false, func(n sqltree.Node, _ bool) bool {
		switch {
		case err != nil:
		case n["type"] == "TABLE_FUNCTION":
			name := strings.ToLower(sqltree.Str(sqltree.AsNode(n["function"])["function_name"]))
			if !SafeTableFunctions[name] {
				err = gateway.Errorf(gateway.CodeBadRequest, "table function %s() is not available: data is read only from the catalog's tables (GET /v1/catalog lists them)", name)
			}
		case n["class"] == "FUNCTION":
			err = function(n, names.Denied)
		case n["type"] == "SHOW_REF" && n["query"] == nil:
			// SHOW TABLES, SHOW ALL TABLES, SHOW DATABASES, DESCRIBE of a
			// name: they list the query database's own catalog. DESCRIBE
			// and SUMMARIZE of a query are checked as the query is.
			err = gateway.Errorf(gateway.CodeBadRequest, "SHOW and DESCRIBE of a name are not available: GET /v1/catalog lists the tables you may read (DESCRIBE SELECT ... works)")
		}
		if err == nil {
			err = reservedAlias(n)
		}
		return err == nil
	})
	return err
}

// reservedAlias refuses a name starting with "__" given to a select item,
// a table, a column of a table or a CTE's column: the gateway's own
// rewrites use such names (__gw_rows, __combined).
func reservedAlias(n sqltree.Node) error {
	names := []string{sqltree.Str(n["alias"])}
	for _, k := range []string{"column_name_alias", "aliases"} {
		for _, c := range sqltree.AsSlice(n[k]) {
			names = append(names, sqltree.Str(c))
		}
	}
	for _, name := range names {
		if strings.HasPrefix(name, "__") {
			return gateway.Errorf(gateway.CodeBadRequest, "AS %s: names starting with __ are reserved for the gateway", name)
		}
	}
	return nil
}

// function refuses a function call no query may make: one qualified by a
// schema or catalog (which could name the database's internal functions),
// or one of the denied functions.
func function(n sqltree.Node, denied map[string]bool) error {
	name := sqltree.Str(n["function_name"])
	// DuckDB writes some of its own rewrites as main.f() (a list literal
	// is main.list_value); any other schema or catalog is refused.
	if schema := strings.ToLower(sqltree.Str(n["schema"])); (schema != "" && schema != "main") || sqltree.Str(n["catalog"]) != "" {
		q := sqltree.Str(n["schema"])
		if q == "" {
			q = sqltree.Str(n["catalog"])
		}
		return gateway.Errorf(gateway.CodeBadRequest, "function %s.%s(): call functions by their name alone, without a schema", q, name)
	}
	if denied[strings.ToLower(name)] {
		return gateway.Errorf(gateway.CodeBadRequest, "function %s() is not available: it reads the query engine's own state, not the catalog's data", name)
	}
	return nil
}
