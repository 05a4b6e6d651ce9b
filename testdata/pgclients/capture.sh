#!/usr/bin/env bash
# Records the catalog and startup queries real PostgreSQL clients send, as
# the golden fixtures the PostgreSQL door is tested against
# (TestPostgresCapturedQueries). It runs psql, pgJDBC (JdbcCheck.java),
# psqlODBC (isql) and psycopg2 against a real PostgreSQL (127.0.0.1:5432,
# user postgres) with log_statement=all on a scratch database shaped like
# the gateway's std schema, and extracts each client's statements from the
# server log into captured/<client>.sql, one statement per "-- next" block.
#
#   testdata/pgclients/capture.sh [path/to/postgresql.log]
set -euo pipefail
cd "$(dirname "$0")"
LOG=${1:-$(ls /var/log/postgresql/postgresql-*-main.log | head -1)}
DB=pgcapture
PSQL="psql -X -q -h 127.0.0.1 -U postgres"
$PSQL -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
$PSQL -d $DB -c "CREATE SCHEMA std; CREATE TABLE std.spend_over_500 (council text, transaction_id text, amount numeric(14,2), payment_date date, vcse_grant boolean); INSERT INTO std.spend_over_500 VALUES ('edinburgh', 'T1', 2000.00, '2024-08-06', false), ('fife', 'T2', 600.50, NULL, true); COMMENT ON COLUMN std.spend_over_500.amount IS 'Net amount in pounds'"
$PSQL -c "ALTER DATABASE $DB SET log_statement = 'all'"
mkdir -p captured
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; $PSQL -c "DROP DATABASE IF EXISTS $DB" >/dev/null' EXIT

# capture NAME COMMAND...: runs the client and keeps its statements.
capture() {
  local name=$1; shift
  local from; from=$(wc -l < "$LOG")
  "$@" > "$tmp/$name.out" 2>&1 || { cat "$tmp/$name.out"; exit 1; }
  sleep 0.5
  tail -n +"$((from + 1))" "$LOG" | awk -v db="$DB" '
    /LOG:  (statement|execute [^:]*): / && index($0, "@" db " ") {
      if (stmt != "") print stmt "\n-- next"
      sub(/^.*LOG:  (statement|execute [^:]*): /, ""); stmt = $0; keep = 1; next }
    /^\t/ && keep { stmt = stmt "\n" $0; next }
    { keep = 0 }
    END { if (stmt != "") print stmt }' > "captured/$name.sql"
  echo "captured/$name.sql: $(grep -c -- '-- next' "captured/$name.sql") statements"
}

export PGPASSWORD=x
capture psql bash -c "for c in '\dn' '\dt std.*' '\dt' '\d std.spend_over_500' '\d+ std.spend_over_500' '\l'; do psql -X -h 127.0.0.1 -U postgres -d $DB -c \"\$c\"; done"
javac -d "$tmp" JdbcCheck.java
capture jdbc java -cp /usr/share/java/postgresql.jar:"$tmp" JdbcCheck "jdbc:postgresql://127.0.0.1:5432/$DB" postgres x
cat > "$tmp/odbc.ini" <<INI
[capture]
Driver=/usr/lib/x86_64-linux-gnu/odbc/psqlodbcw.so
Servername=127.0.0.1
Port=5432
Database=$DB
INI
capture odbc bash -c "printf 'help\nhelp spend_over_500\nSELECT council, amount FROM std.spend_over_500\n' | ODBCINI=$tmp/odbc.ini isql -v -b capture postgres x"
capture psycopg2 /usr/bin/python3 psycopg2_check.py 127.0.0.1 5432 $DB x postgres
