package pgwire

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/catalog"
	"github.com/councildata/gateway/gateway/enforce"
	"github.com/councildata/gateway/gateway/engine"
	"github.com/councildata/gateway/gateway/exec"
	"github.com/councildata/gateway/gateway/sqltext"
	"github.com/councildata/gateway/gateway/sqltree"
)

// A catalog database answers a session's questions about the catalog:
// the pg_catalog and information_schema queries clients send, and the
// types of a statement's parameters and columns before it runs. It is an
// in-memory DuckDB under the query sandbox's settings (no files, no
// network, no extensions) holding nothing but names: the emulated catalog
// tables, filled from what the requester may see listed (engine.Listing),
// and, for typing statements, an empty table of the same columns per
// listed table. No council's data is ever in it.

// catalogDB is one requester's catalog, for one purpose.
type catalogDB struct {
	mu      sync.Mutex
	conn    *sql.Conn
	closeDB func()
	parser  *sqltree.Parser
	// rels are the oids of the listed tables ("schema.table") and of the
	// schemas; types of pg_type's names.
	rels, schemas map[string]uint32
	types, procs  map[string]uint32
	// denied are DuckDB's functions no catalog query may call, found in
	// this database before the emulation's own were made
	// (enforce.DeniedFunctionsSQL).
	denied map[string]bool
}

// catalogInfo is what a catalog shows of the session.
type catalogInfo struct {
	database, user, version string
	pid                     uint32
	started                 time.Time
	settings                map[string]string
}

func literalOf(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case string:
		return "'" + strings.ReplaceAll(x, "'", "''") + "'"
	case bool:
		if x {
			return "true"
		}
		return "false"
	case int:
		return strconv.Itoa(x)
	case int32:
		return strconv.FormatInt(int64(x), 10)
	case int16:
		return strconv.FormatInt(int64(x), 10)
	case uint32:
		return strconv.FormatUint(uint64(x), 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	panic(fmt.Sprintf("pgwire: no literal for %T", v))
}

// rowsInsert is an INSERT of rows into table, each row's values in the
// table's column order, the rest NULL.
func rowsInsert(table string, cols []string, rows [][]any) string {
	var b strings.Builder
	fmt.Fprintf(&b, "INSERT INTO %s (%s) VALUES ", table, strings.Join(cols, ", "))
	for i, r := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(")
		for j, v := range r {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString(literalOf(v))
		}
		b.WriteString(")")
	}
	return b.String()
}

// macros shadow DuckDB's functions of the same names and add PostgreSQL's
// catalog functions; %[n]s are filled by buildCatalog. The privilege
// functions say what the gateway allows on what a requester sees listed:
// SELECT (and USAGE of its schemas, CONNECT to the database), never a
// write, so tools such as Metabase do not offer to change data.
const macros = `
CREATE MACRO version() AS %[1]s;
CREATE MACRO current_database() AS %[2]s;
CREATE MACRO current_catalog() AS %[2]s;
CREATE MACRO current_schema() AS 'std';
CREATE MACRO current_schemas(b) AS CASE WHEN b THEN ['pg_catalog', 'std'] ELSE ['std'] END;
CREATE MACRO current_user() AS %[3]s;
CREATE MACRO session_user() AS %[3]s;
CREATE MACRO current_role() AS %[3]s;
CREATE MACRO "user"() AS %[3]s;
CREATE MACRO pg_backend_pid() AS %[4]s;
CREATE MACRO pg_postmaster_start_time() AS TIMESTAMPTZ %[5]s;
CREATE MACRO current_setting(n) AS (SELECT first(setting) FROM main.pg_settings WHERE lower(name) = lower(n)),
	(n, missing_ok) AS (SELECT first(setting) FROM main.pg_settings WHERE lower(name) = lower(n));
CREATE MACRO pg_get_userbyid(x) AS 'gateway';
CREATE MACRO pg_get_expr(a, b) AS CAST(NULL AS VARCHAR), (a, b, c) AS CAST(NULL AS VARCHAR);
CREATE MACRO pg_table_is_visible(x) AS true;
CREATE MACRO pg_type_is_visible(x) AS true;
CREATE MACRO pg_function_is_visible(x) AS true;
CREATE MACRO pg_relation_is_publishable(x) AS false;
CREATE MACRO pg_encoding_to_char(x) AS 'UTF8';
CREATE MACRO pg_char_to_encoding(x) AS 6;
CREATE MACRO pg_get_statisticsobjdef_columns(x) AS CAST(NULL AS VARCHAR);
CREATE MACRO obj_description(o) AS (SELECT first(description) FROM main.pg_description WHERE objoid = o AND objsubid = 0),
	(o, c) AS (SELECT first(description) FROM main.pg_description WHERE objoid = o AND objsubid = 0);
CREATE MACRO col_description(o, n) AS (SELECT first(description) FROM main.pg_description WHERE objoid = o AND objsubid = n);
CREATE MACRO shobj_description(o, c) AS CAST(NULL AS VARCHAR);
CREATE MACRO has_table_privilege(a, b) AS contains(upper(b), 'SELECT'), (a, b, c) AS contains(upper(c), 'SELECT');
CREATE MACRO has_schema_privilege(a, b) AS contains(upper(b), 'USAGE'), (a, b, c) AS contains(upper(c), 'USAGE');
CREATE MACRO has_database_privilege(a, b) AS contains(upper(b), 'CONNECT'), (a, b, c) AS contains(upper(c), 'CONNECT');
CREATE MACRO has_column_privilege(a, b, c) AS contains(upper(c), 'SELECT'), (a, b, c, d) AS contains(upper(d), 'SELECT');
CREATE MACRO has_any_column_privilege(a, b) AS contains(upper(b), 'SELECT'), (a, b, c) AS contains(upper(c), 'SELECT');
CREATE MACRO has_function_privilege(a, b) AS true, (a, b, c) AS true;
CREATE MACRO has_sequence_privilege(a, b) AS false, (a, b, c) AS false;
CREATE MACRO pg_has_role(a, b) AS false, (a, b, c) AS false;
CREATE MACRO pg_get_constraintdef(o) AS CAST(NULL AS VARCHAR), (o, b) AS CAST(NULL AS VARCHAR);
CREATE MACRO pg_get_indexdef(o) AS CAST(NULL AS VARCHAR), (o, c, b) AS CAST(NULL AS VARCHAR);
CREATE MACRO pg_get_viewdef(o) AS CAST(NULL AS VARCHAR), (o, b) AS CAST(NULL AS VARCHAR);
CREATE MACRO pg_get_triggerdef(o) AS CAST(NULL AS VARCHAR), (o, b) AS CAST(NULL AS VARCHAR);
CREATE MACRO pg_get_function_identity_arguments(o) AS '';
CREATE MACRO pg_get_function_arguments(o) AS '';
CREATE MACRO pg_get_function_result(o) AS CAST(NULL AS VARCHAR);
CREATE MACRO pg_get_partkeydef(o) AS CAST(NULL AS VARCHAR);
CREATE MACRO pg_stat_get_numscans(o) AS 0;
CREATE MACRO pg_get_serial_sequence(t, c) AS CAST(NULL AS VARCHAR);
CREATE MACRO pg_get_ruledef(o) AS CAST(NULL AS VARCHAR), (o, b) AS CAST(NULL AS VARCHAR);
CREATE MACRO pg_total_relation_size(o) AS 0;
CREATE MACRO pg_relation_size(o) AS 0, (o, f) AS 0;
CREATE MACRO pg_table_size(o) AS 0;
CREATE MACRO pg_indexes_size(o) AS 0;
CREATE MACRO pg_database_size(o) AS 0;
CREATE MACRO pg_size_pretty(x) AS format_bytes(CAST(x AS BIGINT));
CREATE MACRO pg_is_in_recovery() AS false;
CREATE MACRO txid_current() AS 1;
CREATE MACRO inet_server_addr() AS CAST(NULL AS VARCHAR);
CREATE MACRO inet_server_port() AS CAST(NULL AS INTEGER);
CREATE MACRO inet_client_addr() AS CAST(NULL AS VARCHAR);
CREATE MACRO pg_tablespace_location(o) AS '';
CREATE MACRO quote_ident(x) AS '"' || replace(x, '"', '""') || '"';
CREATE MACRO array_upper(a, d) AS CASE WHEN len(a) = 0 THEN NULL ELSE len(a) END;
CREATE MACRO array_lower(a, d) AS CASE WHEN len(a) = 0 THEN NULL ELSE 1 END;
CREATE MACRO regexp_full_match(a, b) AS regexp_matches(a, b);
CREATE MACRO to_regclass(x) AS (SELECT first(c.oid) FROM main.pg_class c JOIN main.pg_namespace n ON n.oid = c.relnamespace
	WHERE c.relname = x OR n.nspname || '.' || c.relname = x);
CREATE MACRO format_type(t, m) AS CASE t
	WHEN 16 THEN 'boolean' WHEN 17 THEN 'bytea' WHEN 18 THEN '"char"' WHEN 19 THEN 'name' WHEN 20 THEN 'bigint'
	WHEN 21 THEN 'smallint' WHEN 23 THEN 'integer' WHEN 25 THEN 'text' WHEN 26 THEN 'oid' WHEN 114 THEN 'json'
	WHEN 700 THEN 'real' WHEN 701 THEN 'double precision' WHEN 1042 THEN 'character'
	WHEN 1043 THEN CASE WHEN m > 4 THEN 'character varying(' || (m - 4) || ')' ELSE 'character varying' END
	WHEN 1082 THEN 'date' WHEN 1083 THEN 'time without time zone' WHEN 1114 THEN 'timestamp without time zone'
	WHEN 1184 THEN 'timestamp with time zone' WHEN 1186 THEN 'interval' WHEN 2950 THEN 'uuid'
	WHEN 1700 THEN CASE WHEN m >= 4 THEN 'numeric(' || ((m - 4) >> 16) || ',' || ((m - 4) & 65535) || ')' ELSE 'numeric' END
	ELSE (SELECT first(CASE WHEN starts_with(typname, '_') THEN substr(typname, 2) || '[]' ELSE typname END)
		FROM main.pg_type WHERE oid = t) END;
CREATE TYPE regclass AS BIGINT;
CREATE TYPE regtype AS BIGINT;
CREATE TYPE regnamespace AS BIGINT;
CREATE TYPE regrole AS BIGINT;
CREATE TYPE regproc AS BIGINT;
CREATE TYPE regprocedure AS BIGINT;
CREATE TYPE "name" AS VARCHAR;
CREATE TYPE int2vector AS SMALLINT[];
CREATE TYPE oidvector AS BIGINT[];
CREATE TYPE xid AS BIGINT;
CREATE TYPE aclitem AS VARCHAR;
CREATE TYPE pg_node_tree AS VARCHAR;
`

// catalogFunctions are the function names a statement without tables is
// sent to the catalog database for (SELECT version(), current_schema()).
var catalogFunctions = map[string]bool{}

func init() {
	for _, line := range strings.Split(macros, "\n") {
		if name, ok := strings.CutPrefix(line, "CREATE MACRO "); ok {
			name, _, _ = strings.Cut(name, "(")
			catalogFunctions[strings.Trim(name, `"`)] = true
		}
	}
}

// buildCatalog makes the catalog database for a listing.
func buildCatalog(ctx context.Context, listed []engine.Listed, info catalogInfo) (*catalogDB, error) {
	conn, closeDB, err := exec.OpenSandbox(ctx, "64MB", 1)
	if err != nil {
		return nil, err
	}
	c := &catalogDB{conn: conn, closeDB: closeDB, parser: sqltree.NewParser(conn),
		rels: map[string]uint32{}, schemas: map[string]uint32{}, types: map[string]uint32{}, procs: map[string]uint32{}}
	if err := c.fill(ctx, listed, info); err != nil {
		c.close()
		return nil, fmt.Errorf("pgwire: build the catalog: %w", err)
	}
	return c, nil
}

func (c *catalogDB) close() { c.closeDB() }

func (c *catalogDB) exec(ctx context.Context, stmts ...string) error {
	for _, s := range stmts {
		if strings.TrimSpace(s) == "" {
			continue
		}
		if _, err := c.conn.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%.80s: %w", s, err)
		}
	}
	return nil
}

func createAll(schema string, tables map[string]string) []string {
	names := make([]string, 0, len(tables))
	for n := range tables {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, fmt.Sprintf("CREATE TABLE %s.%s (%s)", schema, n, tables[n]))
	}
	return out
}

func colNames(def string) []string {
	var out []string
	for _, part := range strings.Split(def, ",") {
		if f := strings.Fields(part); len(f) > 0 {
			out = append(out, f[0])
		}
	}
	return out
}

func (c *catalogDB) fill(ctx context.Context, listed []engine.Listed, info catalogInfo) error {
	c.denied = map[string]bool{}
	for _, n := range enforce.DeniedFunctionNames {
		c.denied[n] = true
	}
	rows, err := c.conn.QueryContext(ctx, enforce.DeniedFunctionsSQL)
	if err != nil {
		return err
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return err
		}
		c.denied[n] = true
	}
	rows.Close()
	stmts := createAll("main", catalogTables)
	stmts = append(stmts, "CREATE SCHEMA "+infoSchema)
	stmts = append(stmts, createAll(infoSchema, infoTables)...)
	stmts = append(stmts, strings.Split(fmt.Sprintf(macros, literalOf(info.version), literalOf(info.database),
		literalOf(info.user), literalOf(info.pid), literalOf(info.started.UTC().Format("2006-01-02 15:04:05+00"))), ";\n")...)
	if err := c.exec(ctx, stmts...); err != nil {
		return err
	}
	insert := func(table string, rows [][]any, cols ...string) {
		if len(rows) > 0 {
			stmts = append(stmts, rowsInsert(table, cols, rows))
		}
	}
	stmts = stmts[:0]
	// Types, and the I/O functions pg_type names (by oid, as regproc
	// is): Npgsql tells arrays by typreceive's proname, array_recv.
	var types, procs [][]any
	proc := func(name string, ret uint32) uint32 {
		if oid, ok := c.procs[name]; ok {
			return oid
		}
		oid := uint32(firstProcOID + len(c.procs))
		c.procs[name] = oid
		procs = append(procs, []any{oid, name, uint32(oidPgCatalog), uint32(oidOwner), uint32(12), "f", false, ret, int16(1), name})
		return oid
	}
	for _, t := range typeRows {
		c.types[t.name] = t.oid
		sep := "" // int4in, int4recv; array_in, array_recv
		if t.io == "array" {
			sep = "_"
		}
		typtype := "b"
		if t.cat == "X" {
			typtype = "p"
		}
		types = append(types, []any{t.oid, t.name, uint32(oidPgCatalog), uint32(oidOwner), int16(t.len), t.byval, typtype, t.cat,
			false, true, ",", uint32(0), t.elem, t.arr, proc(t.io+sep+"in", t.oid), proc(t.io+sep+"out", 2275), proc(t.io+sep+"recv", t.oid),
			proc(t.io+sep+"send", oidBytea), uint32(0), int32(-1), 0, false, uint32(0)})
	}
	insert("main.pg_type", types, "oid", "typname", "typnamespace", "typowner", "typlen", "typbyval", "typtype", "typcategory",
		"typispreferred", "typisdefined", "typdelim", "typrelid", "typelem", "typarray", "typinput", "typoutput", "typreceive",
		"typsend", "typbasetype", "typtypmod", "typndims", "typnotnull", "typcollation")
	insert("main.pg_proc", procs, "oid", "proname", "pronamespace", "proowner", "prolang", "prokind", "proretset", "prorettype",
		"pronargs", "prosrc")
	// Schemas: PostgreSQL's own, then the listed ones.
	next := uint32(firstOwnOID)
	nsps := [][]any{{uint32(oidPgCatalog), "pg_catalog"}, {uint32(oidInfoSchema), "information_schema"}, {uint32(oidPublic), "public"}}
	c.schemas["pg_catalog"], c.schemas["information_schema"], c.schemas["public"] = oidPgCatalog, oidInfoSchema, oidPublic
	schemata := [][]any{{info.database, "pg_catalog", "gateway"}, {info.database, "information_schema", "gateway"}, {info.database, "public", "gateway"}}
	for _, l := range listed {
		if _, ok := c.schemas[l.Schema]; !ok {
			c.schemas[l.Schema] = next
			nsps = append(nsps, []any{next, l.Schema})
			schemata = append(schemata, []any{info.database, l.Schema, "gateway"})
			next++
		}
	}
	for i := range nsps {
		nsps[i] = append(nsps[i], uint32(oidOwner))
	}
	insert("main.pg_namespace", nsps, "oid", "nspname", "nspowner")
	insert(infoSchema+".schemata", schemata, "catalog_name", "schema_name", "schema_owner")
	// Tables, columns and descriptions.
	var classes, attrs, descs, tables, columns, pgTables [][]any
	var shapes []string
	for _, l := range listed {
		oid := next
		next++
		c.rels[l.Schema+"."+l.Name] = oid
		fields := l.Fields.Fields()
		classes = append(classes, []any{oid, l.Name, c.schemas[l.Schema], uint32(0), uint32(0), uint32(oidOwner), uint32(oidHeap),
			oid, uint32(0), 0, -1.0, 0, uint32(0), false, false, "p", "r", int16(len(fields)), int16(0), false, false, false,
			false, false, true, "d", false, uint32(0), false})
		tables = append(tables, []any{info.database, l.Schema, l.Name, "BASE TABLE", "NO", "NO"})
		pgTables = append(pgTables, []any{l.Schema, l.Name, "gateway", false, false, false, false})
		if l.Description != "" {
			descs = append(descs, []any{oid, uint32(catalogOIDs["pg_class"]), 0, l.Description})
		}
		var defs []string
		for i, f := range fields {
			typ, size, mod := typeOf(f.Type)
			attrs = append(attrs, []any{oid, f.Name, typ, int32(-1), size, int16(i + 1), 0, int32(-1), mod, size > 0 && size <= 8,
				"i", "p", "", false, false, false, "", "", false, true, 0, uint32(0)})
			if d, ok := f.Metadata.GetValue("description"); ok && d != "" {
				descs = append(descs, []any{oid, uint32(catalogOIDs["pg_class"]), int32(i + 1), d})
			}
			columns = append(columns, columnRow(info.database, l.Schema, l.Name, i+1, f))
			defs = append(defs, sqltree.Ident(f.Name)+" "+catalog.SQLType(f.Type))
		}
		if l.Schema != "main" && l.Schema != infoSchema {
			shapes = append(shapes, "CREATE SCHEMA IF NOT EXISTS "+sqltree.Ident(l.Schema),
				fmt.Sprintf("CREATE TABLE %s.%s (%s)", sqltree.Ident(l.Schema), sqltree.Ident(l.Name), strings.Join(defs, ", ")))
		}
	}
	insert("main.pg_class", classes, colNames(`oid, relname, relnamespace, reltype, reloftype, relowner, relam, relfilenode,
		reltablespace, relpages, reltuples, relallvisible, reltoastrelid, relhasindex, relisshared, relpersistence, relkind,
		relnatts, relchecks, relhasrules, relhastriggers, relhassubclass, relrowsecurity, relforcerowsecurity,
		relispopulated, relreplident, relispartition, relrewrite, relhasoids`)...)
	insert("main.pg_attribute", attrs, colNames(`attrelid, attname, atttypid, attstattarget, attlen, attnum, attndims,
		attcacheoff, atttypmod, attbyval, attalign, attstorage, attcompression, attnotnull, atthasdef, atthasmissing,
		attidentity, attgenerated, attisdropped, attislocal, attinhcount, attcollation`)...)
	insert("main.pg_description", descs, "objoid", "classoid", "objsubid", "description")
	insert(infoSchema+".tables", tables, "table_catalog", "table_schema", "table_name", "table_type", "is_insertable_into", "is_typed")
	insert(infoSchema+".columns", columns, colNames(`table_catalog, table_schema, table_name, column_name, ordinal_position,
		is_nullable, data_type, numeric_precision, numeric_precision_radix, numeric_scale, udt_catalog, udt_schema, udt_name,
		is_identity, is_generated, is_updatable`)...)
	insert("main.pg_tables", pgTables, "schemaname", "tablename", "tableowner", "hasindexes", "hasrules", "hastriggers", "rowsecurity")
	insert("main.pg_database", [][]any{{uint32(oidDatabase), info.database, uint32(oidOwner), 6, "c", false, true, -1,
		uint32(oidDefaultTS), "C", "C"}}, "oid", "datname", "datdba", "encoding", "datlocprovider", "datistemplate",
		"datallowconn", "datconnlimit", "dattablespace", "datcollate", "datctype")
	insert("main.pg_roles", [][]any{{uint32(oidOwner), info.user, false, true, false, false, true, false, -1, "********", false}},
		"oid", "rolname", "rolsuper", "rolinherit", "rolcreaterole", "rolcreatedb", "rolcanlogin", "rolreplication",
		"rolconnlimit", "rolpassword", "rolbypassrls")
	insert("main.pg_user", [][]any{{info.user, uint32(oidOwner), false, false, false, false, "********"}},
		"usename", "usesysid", "usecreatedb", "usesuper", "userepl", "usebypassrls", "passwd")
	insert("main.pg_am", [][]any{{uint32(oidHeap), "heap", "heap_tableam_handler", "t"}}, "oid", "amname", "amhandler", "amtype")
	insert("main.pg_tablespace", [][]any{{uint32(oidDefaultTS), "pg_default", uint32(oidOwner)}}, "oid", "spcname", "spcowner")
	var settings [][]any
	names := make([]string, 0, len(info.settings))
	for n := range info.settings {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		settings = append(settings, []any{n, info.settings[n], "Client Connection Defaults", "user", "string", "default",
			info.settings[n], info.settings[n]})
	}
	insert("main.pg_settings", settings, "name", "setting", "category", "context", "vartype", "source", "boot_val", "reset_val")
	stmts = append(stmts, shapes...)
	// Nothing the catalog's queries run may change its settings.
	stmts = append(stmts, "SET lock_configuration = true")
	return c.exec(ctx, stmts...)
}

// columnRow is a column's information_schema.columns row.
func columnRow(db, schema, table string, pos int, f arrow.Field) []any {
	oid, _, _ := typeOf(f.Type)
	name := "text"
	for _, t := range typeRows {
		if t.oid == oid {
			name = t.name
		}
	}
	dataType := map[string]string{"bool": "boolean", "int2": "smallint", "int4": "integer", "int8": "bigint",
		"float4": "real", "float8": "double precision", "numeric": "numeric", "text": "text", "bytea": "bytea",
		"date": "date", "time": "time without time zone", "timestamp": "timestamp without time zone",
		"timestamptz": "timestamp with time zone", "interval": "interval"}[name]
	if dataType == "" {
		dataType = "ARRAY"
	}
	var prec, radix, scale any
	if d, ok := f.Type.(arrow.DecimalType); ok {
		prec, radix, scale = int32(d.GetPrecision()), 10, int32(d.GetScale())
	}
	return []any{db, schema, table, f.Name, pos, "YES", dataType, prec, radix, scale, db, "pg_catalog", name, "NO", "NEVER", "NO"}
}

// catalogTable says whether an unqualified name is an emulated pg_catalog
// relation.
func catalogTable(name string) bool { _, ok := catalogTables[name]; return ok }

// mentionsCatalog is a quick look at a statement's words: only one that
// names pg_catalog, information_schema, a pg_ relation or one of the
// catalog functions can be a catalog query.
func mentionsCatalog(toks []sqltext.Token) bool {
	for _, t := range toks {
		if t.Kind != sqltext.Word && t.Kind != sqltext.QuotedName {
			continue
		}
		n := t.Name()
		if n == "pg_catalog" || n == "information_schema" || strings.HasPrefix(n, "pg_") || catalogFunctions[n] {
			return true
		}
	}
	return false
}

// prefix rewrites what DuckDB's parser does not take from PostgreSQL's
// catalog queries: OPERATOR(pg_catalog.~) becomes ~, COLLATE
// pg_catalog.default (or "C", "POSIX", "default") goes, pg_catalog.
// qualifiers go (the emulated relations and functions are found
// unqualified), and information_schema becomes infoSchema.
func prefix(toks []sqltext.Token) string {
	var b strings.Builder
	sig := func(i int) (int, sqltext.Token) { // the next significant token from i
		for ; i < len(toks); i++ {
			if toks[i].Significant() {
				return i, toks[i]
			}
		}
		return i, sqltext.Token{}
	}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch {
		case t.Is("operator"):
			j, open := sig(i + 1)
			if open.Text == "(" {
				j, q := sig(j + 1)
				if q.Name() == "pg_catalog" {
					j, _ = sig(j + 1) // the dot
					j++
				}
				var op strings.Builder
				for ; j < len(toks) && toks[j].Text != ")"; j++ {
					if toks[j].Significant() {
						op.WriteString(toks[j].Text)
					}
				}
				if j < len(toks) {
					b.WriteString(" " + op.String() + " ")
					i = j
					continue
				}
			}
		case t.Is("collate"):
			j, n := sig(i + 1)
			if n.Name() == "pg_catalog" {
				j, _ = sig(j + 1)
				j, n = sig(j + 1)
			}
			switch n.Name() {
			case "default", "c", "posix", "C", "POSIX":
				i = j
				continue
			}
		case (t.Kind == sqltext.Word || t.Kind == sqltext.QuotedName) && (t.Name() == "pg_catalog" || t.Name() == "information_schema"):
			if j, dot := sig(i + 1); dot.Text == "." {
				if t.Name() == "information_schema" {
					b.WriteString(infoSchema + ".")
				}
				i = j
				continue
			}
		}
		b.WriteString(t.Text)
	}
	return b.String()
}

// errNotCatalog: the statement reads the councils' tables, not the
// catalog.
var errNotCatalog = errors.New("not a catalog query")

// rewrite turns a catalog statement into the SQL its catalog database
// runs, or errNotCatalog for a statement of council tables. It refuses a
// statement that mixes the two, and anything the query sandbox refuses:
// other tables, table functions, and functions that read DuckDB's state.
func (c *catalogDB) rewrite(ctx context.Context, q string, toks []sqltext.Token) (string, error) {
	fixed := prefix(toks)
	serialized, err := c.parser.Serialize(ctx, fixed)
	if err != nil {
		return "", err
	}
	a, err := sqltree.Analyze(serialized, fixed, false, sqltree.Limits{MaxDepth: 200})
	if err != nil {
		return "", errNotCatalog // the engine says what is wrong with it
	}
	var cat, other []string
	for _, r := range a.Refs {
		name := strings.ToLower(r.Table)
		switch schema := strings.ToLower(r.Schema); {
		case r.CTE: // a common table expression in scope where it is named
		case r.Catalog == "" && schema == "" && catalogTable(name):
			cat = append(cat, name)
		case r.Catalog == "" && schema == infoSchema:
			if _, ok := infoTables[name]; !ok {
				return "", gateway.Errorf(gateway.CodeNotFound, "relation \"information_schema.%s\" does not exist in the gateway's catalog", name)
			}
			cat = append(cat, name)
		default:
			other = append(other, r.Name())
		}
	}
	switch {
	case len(cat) > 0 && len(other) > 0:
		return "", gateway.Errorf(gateway.CodeBadRequest, "a query may read the catalog (%s) or the councils' tables (%s), not both at once", cat[0], other[0])
	case len(other) > 0:
		return "", errNotCatalog
	case len(cat) == 0 && !callsCatalogFunction(a.Statement()):
		return "", errNotCatalog
	}
	if err := c.sandbox(a.Statement()); err != nil {
		return "", err
	}
	if err := c.castConstants(a.Statement()); err != nil {
		return "", err
	}
	nameColumns(a.Root)
	return c.parser.Deserialize(ctx, a.Doc)
}

// nameColumns names a statement's unnamed result columns as PostgreSQL
// does: a function call after the function (version, not "version"()),
// a cast after what it casts.
func nameColumns(root sqltree.Node) {
	for _, item := range sqltree.AsSlice(root["select_list"]) {
		e := sqltree.AsNode(item)
		if e == nil || sqltree.Str(e["alias"]) != "" {
			continue
		}
		if name := pgColumnName(e); name != "" {
			e["alias"] = name
		}
	}
}

func pgColumnName(e sqltree.Node) string {
	switch e["class"] {
	case "FUNCTION":
		switch name := sqltree.Str(e["function_name"]); {
		case e["is_operator"] == true:
			return "?column?"
		case name == "count_star":
			return "count"
		default:
			return name
		}
	case "CASE":
		return "case"
	case "CONSTANT", "OPERATOR", "COMPARISON", "CONJUNCTION":
		return "?column?"
	case "CAST":
		return pgColumnName(sqltree.AsNode(e["child"]))
	}
	return ""
}

func callsCatalogFunction(st any) bool {
	found := false
	sqltree.Walk(st, false, func(n sqltree.Node, _ bool) bool {
		if n["class"] == "FUNCTION" && catalogFunctions[strings.ToLower(sqltree.Str(n["function_name"]))] {
			found = true
		}
		return !found
	})
	return found
}

// sandbox refuses what a catalog statement may not call: table functions
// beyond the safe ones, schema-qualified functions, and the functions
// that read DuckDB's own state (those the catalog emulates are its own
// macros, and allowed).
func (c *catalogDB) sandbox(st any) error {
	var err error
	sqltree.Walk(st, false, func(n sqltree.Node, _ bool) bool {
		switch {
		case n["type"] == "TABLE_FUNCTION":
			name := strings.ToLower(sqltree.Str(sqltree.AsNode(n["function"])["function_name"]))
			if !enforce.SafeTableFunctions[name] {
				err = gateway.Errorf(gateway.CodeBadRequest, "table function %s() is not available in catalog queries", name)
			}
			// PostgreSQL names the one column of generate_series(...) s
			// after its alias; DuckDB names the row.
			if al := sqltree.Str(n["alias"]); al != "" && len(sqltree.AsSlice(n["column_name_alias"])) == 0 {
				n["column_name_alias"] = []any{al}
			}
		case n["class"] == "FUNCTION":
			name := strings.ToLower(sqltree.Str(n["function_name"]))
			schema := strings.ToLower(sqltree.Str(n["schema"]))
			switch {
			case catalogFunctions[name]:
			case schema != "" && schema != "main" || sqltree.Str(n["catalog"]) != "":
				err = gateway.Errorf(gateway.CodeBadRequest, "function %s.%s() is not available in catalog queries", schema, name)
			case c.denied[name] || strings.HasPrefix(name, "duckdb_") || strings.HasPrefix(name, "pragma_"):
				err = gateway.Errorf(gateway.CodeBadRequest, "function %s() is not available: it reads the query engine's own state", name)
			}
		case n["type"] == "SHOW_REF":
			err = gateway.Errorf(gateway.CodeBadRequest, "SHOW and DESCRIBE of a name are not available in catalog queries")
		}
		return err == nil
	})
	return err
}

// castConstants replaces 'name'::regclass (and regtype, regnamespace,
// regproc) with what PostgreSQL would compute: the oid of the named
// relation, type or schema, or the function's name.
func (c *catalogDB) castConstants(st any) error {
	var err error
	sqltree.Walk(st, false, func(n sqltree.Node, _ bool) bool {
		if n["class"] != "CAST" || err != nil {
			return err == nil
		}
		ti := sqltree.AsNode(sqltree.AsNode(n["cast_type"])["type_info"])
		kind := strings.ToLower(sqltree.Str(ti["name"]))
		child := sqltree.AsNode(n["child"])
		if child["class"] != "CONSTANT" {
			return true
		}
		val := sqltree.AsNode(child["value"])
		text, isText := val["value"].(string)
		if !isText || kind == "" {
			return true
		}
		var v any
		switch kind {
		case "regclass":
			if _, numeric := strconv.ParseUint(text, 10, 32); numeric == nil {
				return true
			}
			name := strings.Trim(strings.TrimPrefix(strings.ToLower(text), "pg_catalog."), `"`)
			if oid, ok := catalogOIDs[name]; ok {
				v = oid
			} else if oid, ok := c.rels[name]; ok {
				v = oid
			} else if oid, ok := c.rels["std."+name]; ok {
				v = oid
			} else {
				err = gateway.Errorf(gateway.CodeNotFound, "relation %q does not exist", text)
				return false
			}
		case "regtype":
			name := strings.TrimPrefix(strings.ToLower(text), "pg_catalog.")
			oid, ok := c.types[name]
			if !ok {
				err = gateway.Errorf(gateway.CodeNotFound, "type %q does not exist", text)
				return false
			}
			v = oid
		case "regnamespace":
			oid, ok := c.schemas[strings.ToLower(text)]
			if !ok {
				err = gateway.Errorf(gateway.CodeNotFound, "schema %q does not exist", text)
				return false
			}
			v = oid
		case "regproc", "regprocedure":
			name, _, _ := strings.Cut(strings.TrimPrefix(strings.ToLower(text), "pg_catalog."), "(")
			v = c.procs[name] // 0, as PostgreSQL's '-', where there is none
		default:
			return true
		}
		for k := range n {
			delete(n, k)
		}
		n["class"], n["type"], n["alias"], n["query_location"] = "CONSTANT", "VALUE_CONSTANT", "", child["query_location"]
		if s, ok := v.(string); ok {
			n["value"] = sqltree.Node{"is_null": false, "type": sqltree.Node{"id": "VARCHAR", "type_info": nil}, "value": s}
		} else {
			n["value"] = sqltree.Node{"is_null": false, "type": sqltree.Node{"id": "BIGINT", "type_info": nil}, "value": v}
		}
		return false
	})
	return err
}

// query runs a catalog statement (rewritten) and returns its rows.
func (c *catalogDB) query(ctx context.Context, q string) (*arrow.Schema, []arrow.RecordBatch, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var schema *arrow.Schema
	var recs []arrow.RecordBatch
	err := c.conn.Raw(func(dc any) error {
		ar, err := duckdb.NewArrowFromConn(dc.(driver.Conn))
		if err != nil {
			return err
		}
		rdr, err := ar.QueryContext(ctx, q)
		if err != nil {
			return err
		}
		defer rdr.Release()
		schema = rdr.Schema()
		rows, size := 0, int64(0)
		for rdr.Next() {
			rec := rdr.RecordBatch()
			rows += int(rec.NumRows())
			size += gateway.RecordBytes(rec)
			if rows > maxCatalogRows || size > maxCatalogBytes {
				return gateway.Errorf(gateway.CodeTooLarge, "a catalog query may return at most %d rows and %d MiB", maxCatalogRows, maxCatalogBytes>>20)
			}
			rec.Retain()
			recs = append(recs, rec)
		}
		return rdr.Err()
	})
	if err != nil {
		for _, r := range recs {
			r.Release()
		}
		switch {
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			return nil, nil, gateway.Wrap(gateway.CodeTimeout, err, "the catalog query did not finish within its timeout")
		case ctx.Err() != nil:
			return nil, nil, gateway.Wrap(gateway.CodeCanceled, err, "the query was cancelled")
		}
		var ge *gateway.Error
		if errors.As(err, &ge) {
			return nil, nil, err
		}
		return nil, nil, gateway.Wrap(gateway.CodeQueryFailed, err, "catalog query failed: %s", duckMessage(err))
	}
	return schema, recs, nil
}

// What one catalog query may return.
const (
	maxCatalogRows  = 1_000_000
	maxCatalogBytes = 64 << 20
)

// duckMessage is DuckDB's error without its position marker lines.
func duckMessage(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "\n"); i >= 0 {
		msg = msg[:i]
	}
	return msg
}

// checked is a statement of council tables as the catalog database may
// prepare it: parsed (one SELECT), refused if it calls what a catalog
// query may not, and written back from the parse tree, so that nothing
// but that one statement reaches DuckDB.
func (c *catalogDB) checked(ctx context.Context, q string) (string, error) {
	serialized, err := c.parser.Serialize(ctx, q)
	if err != nil {
		return "", err
	}
	a, err := sqltree.Analyze(serialized, q, false, sqltree.Limits{MaxDepth: 200})
	if err != nil {
		return "", err
	}
	if err := c.sandbox(a.Statement()); err != nil {
		return "", err
	}
	return c.parser.Deserialize(ctx, a.Doc)
}

// describe types a statement without running it (q as checked or
// rewrite made it): its parameters' types and its columns', as DuckDB
// infers them over empty tables of the listed tables' columns.
func (c *catalogDB) describe(ctx context.Context, q string) (params []uint32, cols []column, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	err = c.conn.Raw(func(dc any) error {
		pc, ok := dc.(driver.ConnPrepareContext)
		if !ok {
			return errors.New("the DuckDB connection cannot prepare")
		}
		st, err := pc.PrepareContext(ctx, q)
		if err != nil {
			return err
		}
		defer st.Close()
		ds, ok := st.(*duckdb.Stmt)
		if !ok {
			return errors.New("not a DuckDB statement")
		}
		for i := 1; i <= ds.NumInput(); i++ {
			t, err := ds.ParamType(i)
			if err != nil {
				return err
			}
			params = append(params, duckOID(t))
		}
		n, err := ds.ColumnCount()
		if err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			name, err := ds.ColumnName(i)
			if err != nil {
				return err
			}
			info, err := ds.ColumnTypeInfo(i)
			if err != nil {
				return err
			}
			col := column{name: name, oid: oidText, size: -1, mod: -1}
			if dt, ok := arrowOfDuck(info); ok {
				col.oid, col.size, col.mod = typeOf(dt)
			}
			cols = append(cols, col)
		}
		return nil
	})
	return params, cols, err
}

// duckOID is the PostgreSQL type of a DuckDB parameter type; text where
// DuckDB could not infer one (as PostgreSQL says for an untyped $1).
func duckOID(t duckdb.Type) uint32 {
	switch t {
	case duckdb.TYPE_BOOLEAN:
		return oidBool
	case duckdb.TYPE_TINYINT, duckdb.TYPE_SMALLINT, duckdb.TYPE_UTINYINT:
		return oidInt2
	case duckdb.TYPE_INTEGER, duckdb.TYPE_USMALLINT:
		return oidInt4
	case duckdb.TYPE_BIGINT, duckdb.TYPE_UINTEGER:
		return oidInt8
	case duckdb.TYPE_FLOAT:
		return oidFloat4
	case duckdb.TYPE_DOUBLE:
		return oidFloat8
	case duckdb.TYPE_DECIMAL, duckdb.TYPE_HUGEINT, duckdb.TYPE_UBIGINT:
		return oidNumeric
	case duckdb.TYPE_DATE:
		return oidDate
	case duckdb.TYPE_TIMESTAMP:
		return oidTimestamp
	case duckdb.TYPE_TIMESTAMP_TZ:
		return oidTimestamptz
	case duckdb.TYPE_TIME:
		return oidTime
	case duckdb.TYPE_BLOB:
		return oidBytea
	case duckdb.TYPE_INTERVAL:
		return oidInterval
	}
	return oidText
}

// arrowOfDuck is the Arrow type a DuckDB column type leaves the query
// engine as.
func arrowOfDuck(info duckdb.TypeInfo) (arrow.DataType, bool) {
	switch info.InternalType() {
	case duckdb.TYPE_DECIMAL:
		if d, ok := info.Details().(*duckdb.DecimalDetails); ok {
			return &arrow.Decimal128Type{Precision: int32(d.Width), Scale: int32(d.Scale)}, true
		}
	case duckdb.TYPE_VARCHAR:
		return arrow.BinaryTypes.String, true
	case duckdb.TYPE_LIST, duckdb.TYPE_ARRAY:
		if d, ok := info.Details().(*duckdb.ListDetails); ok {
			if el, ok := arrowOfDuck(d.Child); ok {
				return arrow.ListOf(el), true
			}
		}
		return arrow.ListOf(arrow.BinaryTypes.String), true
	}
	name := map[duckdb.Type]string{duckdb.TYPE_BOOLEAN: "BOOLEAN", duckdb.TYPE_TINYINT: "TINYINT", duckdb.TYPE_SMALLINT: "SMALLINT",
		duckdb.TYPE_INTEGER: "INTEGER", duckdb.TYPE_BIGINT: "BIGINT", duckdb.TYPE_FLOAT: "FLOAT", duckdb.TYPE_DOUBLE: "DOUBLE",
		duckdb.TYPE_DATE: "DATE", duckdb.TYPE_TIMESTAMP: "TIMESTAMP", duckdb.TYPE_TIMESTAMP_TZ: "TIMESTAMPTZ",
		duckdb.TYPE_TIME: "TIME", duckdb.TYPE_BLOB: "BLOB", duckdb.TYPE_HUGEINT: "HUGEINT", duckdb.TYPE_INTERVAL: "INTERVAL",
		duckdb.TYPE_UTINYINT: "UTINYINT", duckdb.TYPE_USMALLINT: "USMALLINT", duckdb.TYPE_UINTEGER: "UINTEGER",
		duckdb.TYPE_UBIGINT: "UBIGINT"}[info.InternalType()]
	if name == "" {
		return nil, false
	}
	return catalog.ArrowType(name)
}
