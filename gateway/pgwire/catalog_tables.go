package pgwire

// The emulated pg_catalog and information_schema: the tables and columns
// PostgreSQL's clients read (psql's \d commands, pgJDBC's and psqlODBC's
// DatabaseMetaData/SQLTables, Npgsql's type loading, DBeaver's and
// Metabase's sync), created empty in each catalog database and filled
// from the requester's listing. Columns a client might read but the
// gateway has nothing for are there with PostgreSQL's defaults.

// catalogTables are the pg_catalog relations, in DuckDB's column syntax.
var catalogTables = map[string]string{
	"pg_namespace": `oid BIGINT, nspname VARCHAR, nspowner BIGINT, nspacl VARCHAR[]`,
	"pg_class": `oid BIGINT, relname VARCHAR, relnamespace BIGINT, reltype BIGINT, reloftype BIGINT, relowner BIGINT,
		relam BIGINT, relfilenode BIGINT, reltablespace BIGINT, relpages INTEGER, reltuples FLOAT, relallvisible INTEGER,
		reltoastrelid BIGINT, relhasindex BOOLEAN, relisshared BOOLEAN, relpersistence VARCHAR, relkind VARCHAR,
		relnatts SMALLINT, relchecks SMALLINT, relhasrules BOOLEAN, relhastriggers BOOLEAN, relhassubclass BOOLEAN,
		relrowsecurity BOOLEAN, relforcerowsecurity BOOLEAN, relispopulated BOOLEAN, relreplident VARCHAR,
		relispartition BOOLEAN, relrewrite BIGINT, relfrozenxid BIGINT, relminmxid BIGINT, relacl VARCHAR[],
		reloptions VARCHAR[], relpartbound VARCHAR, relhasoids BOOLEAN`,
	"pg_attribute": `attrelid BIGINT, attname VARCHAR, atttypid BIGINT, attstattarget INTEGER, attlen SMALLINT,
		attnum SMALLINT, attndims INTEGER, attcacheoff INTEGER, atttypmod INTEGER, attbyval BOOLEAN, attalign VARCHAR,
		attstorage VARCHAR, attcompression VARCHAR, attnotnull BOOLEAN, atthasdef BOOLEAN, atthasmissing BOOLEAN,
		attidentity VARCHAR, attgenerated VARCHAR, attisdropped BOOLEAN, attislocal BOOLEAN, attinhcount INTEGER,
		attcollation BIGINT, attacl VARCHAR[], attoptions VARCHAR[], attfdwoptions VARCHAR[]`,
	"pg_type": `oid BIGINT, typname VARCHAR, typnamespace BIGINT, typowner BIGINT, typlen SMALLINT, typbyval BOOLEAN,
		typtype VARCHAR, typcategory VARCHAR, typispreferred BOOLEAN, typisdefined BOOLEAN, typdelim VARCHAR,
		typrelid BIGINT, typsubscript VARCHAR, typelem BIGINT, typarray BIGINT, typinput BIGINT, typoutput BIGINT,
		typreceive BIGINT, typsend BIGINT, typmodin BIGINT, typmodout BIGINT, typanalyze BIGINT, typalign VARCHAR,
		typstorage VARCHAR, typnotnull BOOLEAN, typbasetype BIGINT, typtypmod INTEGER, typndims INTEGER,
		typcollation BIGINT, typdefaultbin VARCHAR, typdefault VARCHAR, typacl VARCHAR[]`,
	"pg_description":   `objoid BIGINT, classoid BIGINT, objsubid INTEGER, description VARCHAR`,
	"pg_shdescription": `objoid BIGINT, classoid BIGINT, description VARCHAR`,
	"pg_database": `oid BIGINT, datname VARCHAR, datdba BIGINT, encoding INTEGER, datlocprovider VARCHAR,
		datistemplate BOOLEAN, datallowconn BOOLEAN, datconnlimit INTEGER, datfrozenxid BIGINT, datminmxid BIGINT,
		dattablespace BIGINT, datcollate VARCHAR, datctype VARCHAR, daticulocale VARCHAR, datcollversion VARCHAR,
		datacl VARCHAR[]`,
	"pg_roles": `oid BIGINT, rolname VARCHAR, rolsuper BOOLEAN, rolinherit BOOLEAN, rolcreaterole BOOLEAN,
		rolcreatedb BOOLEAN, rolcanlogin BOOLEAN, rolreplication BOOLEAN, rolconnlimit INTEGER, rolpassword VARCHAR,
		rolvaliduntil TIMESTAMP, rolbypassrls BOOLEAN, rolconfig VARCHAR[]`,
	"pg_user": `usename VARCHAR, usesysid BIGINT, usecreatedb BOOLEAN, usesuper BOOLEAN, userepl BOOLEAN,
		usebypassrls BOOLEAN, passwd VARCHAR, valuntil TIMESTAMP, useconfig VARCHAR[]`,
	"pg_settings": `name VARCHAR, setting VARCHAR, unit VARCHAR, category VARCHAR, short_desc VARCHAR,
		extra_desc VARCHAR, context VARCHAR, vartype VARCHAR, source VARCHAR, min_val VARCHAR, max_val VARCHAR,
		enumvals VARCHAR[], boot_val VARCHAR, reset_val VARCHAR, sourcefile VARCHAR, sourceline INTEGER,
		pending_restart BOOLEAN`,
	"pg_am":         `oid BIGINT, amname VARCHAR, amhandler VARCHAR, amtype VARCHAR`,
	"pg_tablespace": `oid BIGINT, spcname VARCHAR, spcowner BIGINT, spcacl VARCHAR[], spcoptions VARCHAR[]`,
	"pg_attrdef":    `oid BIGINT, adrelid BIGINT, adnum SMALLINT, adbin VARCHAR`,
	"pg_collation": `oid BIGINT, collname VARCHAR, collnamespace BIGINT, collowner BIGINT, collprovider VARCHAR,
		collisdeterministic BOOLEAN, collencoding INTEGER, collcollate VARCHAR, collctype VARCHAR`,
	"pg_policy": `oid BIGINT, polname VARCHAR, polrelid BIGINT, polcmd VARCHAR, polpermissive BOOLEAN,
		polroles BIGINT[], polqual VARCHAR, polwithcheck VARCHAR`,
	"pg_statistic_ext": `oid BIGINT, stxrelid BIGINT, stxname VARCHAR, stxnamespace BIGINT, stxowner BIGINT,
		stxstattarget INTEGER, stxkeys SMALLINT[], stxkind VARCHAR[], stxexprs VARCHAR`,
	"pg_publication": `oid BIGINT, pubname VARCHAR, pubowner BIGINT, puballtables BOOLEAN, pubinsert BOOLEAN,
		pubupdate BOOLEAN, pubdelete BOOLEAN, pubtruncate BOOLEAN, pubviaroot BOOLEAN`,
	"pg_publication_namespace": `oid BIGINT, pnpubid BIGINT, pnnspid BIGINT`,
	"pg_publication_rel":       `oid BIGINT, prpubid BIGINT, prrelid BIGINT, prqual VARCHAR, prattrs SMALLINT[]`,
	"pg_inherits":              `inhrelid BIGINT, inhparent BIGINT, inhseqno INTEGER, inhdetachpending BOOLEAN`,
	"pg_index": `indexrelid BIGINT, indrelid BIGINT, indnatts SMALLINT, indnkeyatts SMALLINT, indisunique BOOLEAN,
		indisprimary BOOLEAN, indisexclusion BOOLEAN, indimmediate BOOLEAN, indisclustered BOOLEAN, indisvalid BOOLEAN,
		indcheckxmin BOOLEAN, indisready BOOLEAN, indislive BOOLEAN, indisreplident BOOLEAN, indkey SMALLINT[],
		indcollation BIGINT[], indclass BIGINT[], indoption SMALLINT[], indexprs VARCHAR, indpred VARCHAR`,
	"pg_constraint": `oid BIGINT, conname VARCHAR, connamespace BIGINT, contype VARCHAR, condeferrable BOOLEAN,
		condeferred BOOLEAN, convalidated BOOLEAN, conrelid BIGINT, contypid BIGINT, conindid BIGINT,
		conparentid BIGINT, confrelid BIGINT, confupdtype VARCHAR, confdeltype VARCHAR, confmatchtype VARCHAR,
		conislocal BOOLEAN, coninhcount INTEGER, connoinherit BOOLEAN, conkey SMALLINT[], confkey SMALLINT[],
		conbin VARCHAR`,
	"pg_proc": `oid BIGINT, proname VARCHAR, pronamespace BIGINT, proowner BIGINT, prolang BIGINT, prokind VARCHAR,
		proretset BOOLEAN, prorettype BIGINT, pronargs SMALLINT, proargtypes BIGINT[], proargnames VARCHAR[],
		prosrc VARCHAR`,
	"pg_trigger":              `oid BIGINT, tgrelid BIGINT, tgname VARCHAR, tgenabled VARCHAR, tgisinternal BOOLEAN`,
	"pg_rewrite":              `oid BIGINT, rulename VARCHAR, ev_class BIGINT, ev_type VARCHAR`,
	"pg_extension":            `oid BIGINT, extname VARCHAR, extowner BIGINT, extnamespace BIGINT, extrelocatable BOOLEAN, extversion VARCHAR`,
	"pg_depend":               `classid BIGINT, objid BIGINT, objsubid INTEGER, refclassid BIGINT, refobjid BIGINT, refobjsubid INTEGER, deptype VARCHAR`,
	"pg_enum":                 `oid BIGINT, enumtypid BIGINT, enumsortorder FLOAT, enumlabel VARCHAR`,
	"pg_range":                `rngtypid BIGINT, rngsubtype BIGINT, rngmultitypid BIGINT`,
	"pg_foreign_table":        `ftrelid BIGINT, ftserver BIGINT, ftoptions VARCHAR[]`,
	"pg_sequence":             `seqrelid BIGINT`,
	"pg_auth_members":         `roleid BIGINT, member BIGINT, grantor BIGINT, admin_option BOOLEAN`,
	"pg_event_trigger":        `oid BIGINT, evtname VARCHAR`,
	"pg_cast":                 `oid BIGINT, castsource BIGINT, casttarget BIGINT, castfunc BIGINT, castcontext VARCHAR, castmethod VARCHAR`,
	"pg_operator":             `oid BIGINT, oprname VARCHAR, oprnamespace BIGINT, oprleft BIGINT, oprright BIGINT, oprresult BIGINT`,
	"pg_language":             `oid BIGINT, lanname VARCHAR`,
	"pg_aggregate":            `aggfnoid BIGINT`,
	"pg_matviews":             `schemaname VARCHAR, matviewname VARCHAR, matviewowner VARCHAR, definition VARCHAR`,
	"pg_views":                `schemaname VARCHAR, viewname VARCHAR, viewowner VARCHAR, definition VARCHAR`,
	"pg_tables":               `schemaname VARCHAR, tablename VARCHAR, tableowner VARCHAR, tablespace VARCHAR, hasindexes BOOLEAN, hasrules BOOLEAN, hastriggers BOOLEAN, rowsecurity BOOLEAN`,
	"pg_stat_activity":        `datid BIGINT, datname VARCHAR, pid INTEGER, usename VARCHAR, application_name VARCHAR, client_addr VARCHAR, state VARCHAR, query VARCHAR`,
	"pg_locks":                `locktype VARCHAR, relation BIGINT, pid INTEGER, mode VARCHAR, granted BOOLEAN`,
	"pg_foreign_server":       `oid BIGINT, srvname VARCHAR`,
	"pg_foreign_data_wrapper": `oid BIGINT, fdwname VARCHAR`,
	"pg_opclass":              `oid BIGINT, opcname VARCHAR, opcnamespace BIGINT`,
	"pg_conversion":           `oid BIGINT, conname VARCHAR`,
	"pg_available_extensions": `name VARCHAR, default_version VARCHAR, installed_version VARCHAR, comment VARCHAR`,
	"pg_default_acl":          `oid BIGINT, defaclrole BIGINT, defaclnamespace BIGINT, defaclobjtype VARCHAR, defaclacl VARCHAR[]`,
	"pg_timezone_names":       `name VARCHAR, abbrev VARCHAR, utc_offset INTERVAL, is_dst BOOLEAN`,
}

// infoTables are the information_schema views, created in schema
// infoSchema.
var infoTables = map[string]string{
	"schemata": `catalog_name VARCHAR, schema_name VARCHAR, schema_owner VARCHAR, default_character_set_catalog VARCHAR,
		default_character_set_schema VARCHAR, default_character_set_name VARCHAR, sql_path VARCHAR`,
	"tables": `table_catalog VARCHAR, table_schema VARCHAR, table_name VARCHAR, table_type VARCHAR,
		self_referencing_column_name VARCHAR, reference_generation VARCHAR, user_defined_type_catalog VARCHAR,
		user_defined_type_schema VARCHAR, user_defined_type_name VARCHAR, is_insertable_into VARCHAR, is_typed VARCHAR,
		commit_action VARCHAR`,
	"columns": `table_catalog VARCHAR, table_schema VARCHAR, table_name VARCHAR, column_name VARCHAR,
		ordinal_position INTEGER, column_default VARCHAR, is_nullable VARCHAR, data_type VARCHAR,
		character_maximum_length INTEGER, character_octet_length INTEGER, numeric_precision INTEGER,
		numeric_precision_radix INTEGER, numeric_scale INTEGER, datetime_precision INTEGER, interval_type VARCHAR,
		interval_precision INTEGER, character_set_catalog VARCHAR, character_set_schema VARCHAR,
		character_set_name VARCHAR, collation_catalog VARCHAR, collation_schema VARCHAR, collation_name VARCHAR,
		domain_catalog VARCHAR, domain_schema VARCHAR, domain_name VARCHAR, udt_catalog VARCHAR, udt_schema VARCHAR,
		udt_name VARCHAR, dtd_identifier VARCHAR, is_self_referencing VARCHAR, is_identity VARCHAR,
		is_generated VARCHAR, generation_expression VARCHAR, is_updatable VARCHAR`,
	"views":                   `table_catalog VARCHAR, table_schema VARCHAR, table_name VARCHAR, view_definition VARCHAR, check_option VARCHAR, is_updatable VARCHAR`,
	"table_constraints":       `constraint_catalog VARCHAR, constraint_schema VARCHAR, constraint_name VARCHAR, table_catalog VARCHAR, table_schema VARCHAR, table_name VARCHAR, constraint_type VARCHAR`,
	"key_column_usage":        `constraint_catalog VARCHAR, constraint_schema VARCHAR, constraint_name VARCHAR, table_catalog VARCHAR, table_schema VARCHAR, table_name VARCHAR, column_name VARCHAR, ordinal_position INTEGER`,
	"referential_constraints": `constraint_catalog VARCHAR, constraint_schema VARCHAR, constraint_name VARCHAR, unique_constraint_catalog VARCHAR, unique_constraint_schema VARCHAR, unique_constraint_name VARCHAR`,
	"routines":                `specific_catalog VARCHAR, specific_schema VARCHAR, specific_name VARCHAR, routine_name VARCHAR, routine_type VARCHAR`,
	"parameters":              `specific_catalog VARCHAR, specific_schema VARCHAR, specific_name VARCHAR, parameter_name VARCHAR`,
	"character_sets":          `character_set_catalog VARCHAR, character_set_schema VARCHAR, character_set_name VARCHAR`,
	"enabled_roles":           `role_name VARCHAR`,
}

// infoSchema is where the information_schema views are created: DuckDB
// keeps that name (and pg_catalog) for its own, so references are renamed.
const infoSchema = "pg_information_schema"

// typeRows are pg_type's rows: oid, name, length, by value, category,
// element (arrays), array type, and the I/O function stem.
var typeRows = []struct {
	oid       uint32
	name      string
	len       int
	byval     bool
	cat       string
	elem, arr uint32
	io        string
}{
	{oidBool, "bool", 1, true, "B", 0, oidBoolArr, "bool"},
	{oidBytea, "bytea", -1, false, "U", 0, 1001, "bytea"},
	{oidChar, "char", 1, true, "Z", 0, 1002, "char"},
	{oidName, "name", 64, false, "S", 0, 1003, "name"},
	{oidInt8, "int8", 8, true, "N", 0, oidInt8Arr, "int8"},
	{oidInt2, "int2", 2, true, "N", 0, oidInt2Arr, "int2"},
	{oidInt4, "int4", 4, true, "N", 0, oidInt4Arr, "int4"},
	{oidText, "text", -1, false, "S", 0, oidTextArr, "text"},
	{oidOID, "oid", 4, true, "N", 0, 1028, "oid"},
	{oidJSON, "json", -1, false, "U", 0, 199, "json"},
	{oidFloat4, "float4", 4, true, "N", 0, oidFloat4Arr, "float4"},
	{oidFloat8, "float8", 8, true, "N", 0, oidFloat8Arr, "float8"},
	{oidUnknown, "unknown", -2, false, "X", 0, 0, "unknown"},
	{oidBpchar, "bpchar", -1, false, "S", 0, 1014, "bpchar"},
	{oidVarchar, "varchar", -1, false, "S", 0, oidVarcharArr, "varchar"},
	{oidDate, "date", 4, true, "D", 0, oidDateArr, "date"},
	{oidTime, "time", 8, true, "D", 0, 1183, "time"},
	{oidTimestamp, "timestamp", 8, true, "D", 0, oidTimestampAr, "timestamp"},
	{oidTimestamptz, "timestamptz", 8, true, "D", 0, 1185, "timestamptz"},
	{oidInterval, "interval", 16, false, "T", 0, 1187, "interval"},
	{oidNumeric, "numeric", -1, false, "N", 0, oidNumericArr, "numeric"},
	{oidUUID, "uuid", 16, false, "U", 0, 2951, "uuid"},
	{oidBoolArr, "_bool", -1, false, "A", oidBool, 0, "array"},
	{oidInt2Arr, "_int2", -1, false, "A", oidInt2, 0, "array"},
	{oidInt4Arr, "_int4", -1, false, "A", oidInt4, 0, "array"},
	{oidTextArr, "_text", -1, false, "A", oidText, 0, "array"},
	{oidVarcharArr, "_varchar", -1, false, "A", oidVarchar, 0, "array"},
	{oidInt8Arr, "_int8", -1, false, "A", oidInt8, 0, "array"},
	{oidFloat4Arr, "_float4", -1, false, "A", oidFloat4, 0, "array"},
	{oidFloat8Arr, "_float8", -1, false, "A", oidFloat8, 0, "array"},
	{oidDateArr, "_date", -1, false, "A", oidDate, 0, "array"},
	{oidTimestampAr, "_timestamp", -1, false, "A", oidTimestamp, 0, "array"},
	{oidNumericArr, "_numeric", -1, false, "A", oidNumeric, 0, "array"},
}

// catalogOIDs are PostgreSQL's own oids of the catalog relations clients
// name as 'pg_class'::regclass.
var catalogOIDs = map[string]uint32{"pg_type": 1247, "pg_attribute": 1249, "pg_proc": 1255, "pg_class": 1259,
	"pg_namespace": 2615, "pg_database": 1262, "pg_description": 2609, "pg_constraint": 2606, "pg_index": 2610,
	"pg_trigger": 2620, "pg_rewrite": 2618, "pg_attrdef": 2604, "pg_am": 2601, "pg_roles": 1260, "pg_authid": 1260}

// firstProcOID is where the oids of pg_proc's rows (the types' I/O
// functions, which pg_type's typinput... columns name, as regproc does)
// start.
const firstProcOID = 12000

// Fixed oids: the schemas PostgreSQL always has, the owner, the heap
// access method, and where the gateway's own oids start.
const (
	oidPgCatalog  = 11
	oidPublic     = 2200
	oidInfoSchema = 13000
	oidOwner      = 10
	oidHeap       = 2
	oidDefaultTS  = 1663
	oidDatabase   = 16384
	firstOwnOID   = 16385
)
