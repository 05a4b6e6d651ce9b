#!/usr/bin/env bash
# make bench: generate data, start the gateway, time every scenario against
# its floor measured in the same run, and write BENCHMARKS.md.
# See bench/README.md. Everything talks to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

RUNS=${BENCH_RUNS:-5}
COUNCILS=${BENCH_COUNCILS:-3}
ROWS=${BENCH_ROWS:-1000000}
FULL=${BENCH_FULL:-0}               # 1: also the 32 councils × 250k rows run
SKIP_GEN=${BENCH_SKIP_GEN:-0}       # 1: reuse bench/out/<run> data
PROFILE=${BENCH_PROFILE:-auto}      # auto: perf profiles of S1/S2/S4 when perf exists
REPORT_ONLY=${BENCH_REPORT_ONLY:-0} # 1: only rewrite BENCHMARKS.md from bench/out/*/results
BIG_ROWS=${BENCH_BIG_ROWS:-10000000} # S8's table; 0 skips S8
GATEWAY=${BENCH_GATEWAY:-./bin/gateway} # another build of the gateway, to compare (A/B)
S8_RUNS=${BENCH_S8_RUNS:-2}         # S8's runs per client (no warm-up: the first is the one that counts)
RSS_BOUND_MB=512                    # S8's target for the gateway's peak RSS
PGHOST=127.0.0.1 PGPORT=5432 PGUSER=postgres
PGDSN=${BENCH_PG:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
MYARGS=(-h 127.0.0.1 -P 3306 -u root)
HTTP_ADDR=127.0.0.1:18080 FLIGHT_ADDR=127.0.0.1:18815
PHTTP_ADDR=127.0.0.1:18081 PFLIGHT_ADDR=127.0.0.1:18816
KEY=bench-key
OUT=$ROOT/bench/out
BIN=$OUT/bin
export PGHOST PGPORT PGUSER

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }

# --- build --------------------------------------------------------------
log "building bin/gateway and the bench tools"
make -s build >/dev/null
mkdir -p "$BIN"
go build -tags duckdb_arrow -o "$BIN/benchgen" ./bench/cmd/benchgen
go build -o "$BIN/flightpull" ./bench/cmd/flightpull
go build -o "$BIN/loadgen" ./bench/cmd/loadgen

GW_PID=
stop_gateway() {
  if [[ -n "$GW_PID" ]]; then kill "$GW_PID" 2>/dev/null || true; wait "$GW_PID" 2>/dev/null || true; GW_PID=; fi
}
trap stop_gateway EXIT

start_gateway() { # config http flight logfile
  "$GATEWAY" serve --config "$1" --http "$2" --flight "$3" --admin off >"$4" 2>&1 &
  GW_PID=$!
  for _ in $(seq 1 120); do
    if curl -sf "http://$2/readyz" >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$GW_PID" 2>/dev/null; then cat "$4" >&2; echo "gateway exited" >&2; exit 1; fi
    sleep 0.5
  done
  echo "gateway not ready after 60s" >&2; cat "$4" >&2; exit 1
}

# wait_copies ADDR LOG: until /readyz says every accelerated council answers from its copies
wait_copies() {
  for _ in $(seq 1 1200); do
    if curl -sf "http://$1/readyz" | jq -e '[.sources[] | select(.copies) | .copies.serving == "all"] | length > 0 and all' >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "copies not loaded after 600s" >&2; curl -s "http://$1/readyz" >&2; tail -20 "$2" >&2; exit 1
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# proc_kb FIELD: a kB field of the gateway's /proc status (VmRSS, VmHWM: its peak so far)
proc_kb() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$GW_PID/status" 2>/dev/null; }

# timeit LABEL CMD... : one warm-up, then RUNS timed runs; ms per line in $RES/LABEL
timeit() {
  local label=$1; shift
  local n=${TIMEIT_RUNS:-$RUNS}
  "$@" >/dev/null || { echo "FAILED: $label: $*" >&2; exit 1; }
  : >"$RES/$label"
  for _ in $(seq 1 "$n"); do
    local t0; t0=$(now_ms)
    "$@" >/dev/null || { echo "FAILED: $label: $*" >&2; exit 1; }
    echo $(( $(now_ms) - t0 )) >>"$RES/$label"
  done
  log "$label: $(stat_of "$label")"
}
# median min max of a label
med() { sort -n "$RES/$1" | awk '{a[NR]=$1} END{ if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
mn()  { sort -n "$RES/$1" | sed -n 1p; }
mx()  { sort -n "$RES/$1" | tail -n 1; }
stat_of() { echo "median $(med "$1") ms ($(mn "$1")–$(mx "$1"))"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "n/a" }'; }
fmt_s() { awk -v a="$1" 'BEGIN{ printf "%.2f s", a/1000 }'; }
cell() { echo "$(fmt_s "$(med "$1")") ($(fmt_s "$(mn "$1")" | sed 's/ s//')–$(fmt_s "$(mx "$1")"))"; }

# Clients
gw_http() { # accept sql
  curl -sf -o /dev/null "http://$HTTP_ADDR/v1/query" -H "Authorization: Bearer $KEY" -H "Accept: $1" \
    --data-binary "$(jq_body "$2")"
}
jq_body() { # JSON body for a query (escape \ and ")
  local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '{"purpose":"research","sql":"%s"}' "$s"
}
gw_flight() { "$BIN/flightpull" --addr "$FLIGHT_ADDR" --key "$KEY" --sql "$1"; }
pg_copy() { psql -X -q -d postgres -c "\\copy ($1) to /dev/null"; }
pg_run()  { psql -X -q -d postgres -Atc "$1" >/dev/null; }
my_pull() { mysql "${MYARGS[@]}" --quick -N -e "$1" >/dev/null; }

# all_db KEY: every PostgreSQL and MariaDB council runs its own C<i>_KEY statement, all at
# once, as the gateway asks them all at once; the time is the last one's end. The Parquet and
# CSV councils are left out, so this floor is lower than the work the gateway has to wait for.
all_db() {
  local i st q pids=()
  for ((i = 0; i < N_COUNCILS; i++)); do
    eval "st=\${C${i}_STORE:-}; q=\${C${i}_$1:-}"
    [[ -n $q ]] || continue
    case $st in
      postgres) pg_copy "$q" & pids+=($!) ;;
      mysql) my_pull "$q" & pids+=($!) ;;
    esac
  done
  local rc=0
  for i in "${pids[@]}"; do wait "$i" || rc=1; done
  return $rc
}

# components FILE: a flat perf report summed by component
components() {
  awk '/^ +[0-9.]+%/ { p=$1; sub(/%/,"",p); s=$0
    c="other"
    if (s ~ /\[k\]/) c="kernel"
    else if (s ~ /duckdb::|duckdb_/) c="DuckDB (C++)"
    else if (s ~ /jackc\/pgx/) c="pgx (PostgreSQL driver)"
    else if (s ~ /go-sql-driver/) c="MySQL driver"
    else if (s ~ /councildata\/gateway/) c="gateway Go code (adapters, engine, output)"
    else if (s ~ /arrow-go|apache\/arrow/) c="arrow-go"
    else if (s ~ /math\/big|strconv|encoding\/|compress\//) c="Go std (math/big, strconv, encoding)"
    else if (s ~ /runtime\.|gcDrain|scanobject|mallocgc/) c="Go runtime (GC, malloc, scheduler)"
    else if (s ~ /grpc|protobuf/) c="gRPC/protobuf"
    else if (s ~ /libc|memmove|memcpy/) c="libc (memmove)"
    t[c]+=p }
    END { for (c in t) printf "%6.1f%%  %s\n", t[c], c }' "$1" | sort -rn
}

have_perf=0
if [[ $PROFILE == 1 || ( $PROFILE == auto && -x "$(command -v perf || true)" ) ]]; then have_perf=1; fi
profile() { # label sql client(http|flight)
  [[ $have_perf == 1 ]] || return 0
  local data="$RES/perf-$1.data"
  perf record -F 499 -g -p "$GW_PID" -o "$data" -- sleep 600 >/dev/null 2>&1 &
  local ppid=$!
  sleep 0.5
  if [[ $3 == flight ]]; then gw_flight "$2" >/dev/null; else gw_http application/json "$2"; fi
  kill -INT "$ppid" 2>/dev/null || true; wait "$ppid" 2>/dev/null || true
  perf report -i "$data" --no-children --sort symbol -g none --stdio 2>/dev/null >"$RES/perf-$1.txt" || true
  grep -E '^ +[0-9.]+%' "$RES/perf-$1.txt" | sed -n 1,40p >"$RES/profile-$1.txt" || true
  components "$RES/perf-$1.txt" >"$RES/profile-$1-dso.txt" || true
  rm -f "$data" "$data.old"
  log "profile $1 → $RES/profile-$1.txt"
}

# --- one run: N councils × M rows -----------------------------------------
bench_run() { # name councils rows
  local name=$1 n=$2 rows=$3
  local dir=$OUT/$name
  RES=$dir/results; mkdir -p "$RES"
  if [[ $REPORT_ONLY != 1 ]] && [[ $SKIP_GEN != 1 || ! -f $dir/bench.env ]]; then
    log "[$name] generating $n councils × $rows rows (PostgreSQL, MariaDB, Parquet/CSV)"
    local t0; t0=$(now_ms)
    "$BIN/benchgen" --out "$dir" --councils "$n" --rows "$rows" --postgres "$PGDSN" \
      --http "$HTTP_ADDR" --flight "$FLIGHT_ADDR" --policies "$ROOT/policies" 2>"$dir.gen.log" || { cat "$dir.gen.log"; exit 1; }
    echo $(( $(now_ms) - t0 )) >"$RES/gen_ms"
  fi
  # shellcheck disable=SC1091
  source "$dir/bench.env"
  local pg=-1 my=-1 pq=-1 i
  for ((i = 0; i < N_COUNCILS; i++)); do
    local st; eval "st=\$C${i}_STORE"
    [[ $st == postgres && $pg == -1 ]] && pg=$i
    [[ $st == mysql && $my == -1 ]] && my=$i
    [[ $st == parquet && $pq == -1 ]] && pq=$i
  done
  v() { eval "echo \"\${C$1_$2:-}\""; }
  local pgid mytab pgtab pqid myid
  pgid=$(v $pg ID); pgtab=$(v $pg TABLE); myid=$(v $my ID); pqid=$(v $pq ID)

  if [[ $REPORT_ONLY == 1 ]]; then
    write_section "$name" "$n" "$rows" "$pg" "$my" "$pq" >"$dir/section.md"
    return 0
  fi
  start_gateway "$dir/gateway.yaml" "$HTTP_ADDR" "$FLIGHT_ADDR" "$dir/gateway.log"
  log "[$name] gateway up (pid $GW_PID); $RUNS runs per scenario after one warm-up"

  local S1="SELECT council, count(*), sum(amount) FROM std.spend_over_500 GROUP BY council"
  local S3="SELECT * FROM std.spend_over_500 WHERE expense_type = '${S3_VALUE//\'/\'\'}'"
  local S4="SELECT * FROM std.spend_over_500 ORDER BY amount DESC LIMIT 10"

  # S1
  timeit s1_gateway gw_http application/json "$S1"
  timeit s1_pg_pull pg_copy "$(v $pg SQL_PULL_AMOUNT)"
  timeit s1_my_pull my_pull "$(v $my SQL_PULL_AMOUNT)"
  timeit s1_pg_agg pg_run "$(v $pg SQL_AGG)"
  timeit s1_my_agg my_pull "$(v $my SQL_AGG)"
  timeit s1_all_pull all_db SQL_PULL_AMOUNT
  timeit s1_all_agg all_db SQL_AGG
  # S3
  timeit s3_gateway gw_http application/json "$S3"
  timeit s3_pg pg_copy "$(v $pg SQL_FILTER)"
  timeit s3_my my_pull "$(v $my SQL_FILTER)"
  timeit s3_all all_db SQL_FILTER
  # S4
  timeit s4_gateway gw_http application/json "$S4"
  timeit s4_pg pg_run "$(v $pg SQL_TOPN)"
  timeit s4_my my_pull "$(v $my SQL_TOPN)"
  # S5J: the spend joined to a lookup of its expense types (each to one of four regions),
  # grouped by region; with table aliases and with the tables' own names. Split below the
  # join, each council sends its groups by expense type, so it should cost about what S1
  # does (issue 12's S5). The lookup is made from the data's own expense types.
  local types lookup=""
  types=$(curl -sf "http://$HTTP_ADDR/v1/query" -H "Authorization: Bearer $KEY" -H "Accept: text/csv" \
    --data-binary "$(jq_body "SELECT DISTINCT expense_type FROM std.spend_over_500 WHERE expense_type IS NOT NULL ORDER BY 1")" | tail -n +2)
  local i=0 t
  while IFS= read -r t; do
    t=${t%$'\r'}; t=${t#\"}; t=${t%\"}; t=${t//\"\"/\"}
    t=${t//"'"/"''"}
    lookup+="${lookup:+, }('$t', 'region $((i % 4))')"
    i=$((i + 1))
  done <<<"$types"
  echo "$i" >"$RES/s5j_lookup_rows"
  local S5J="SELECT l.region, count(*), sum(s.amount) FROM std.spend_over_500 s JOIN (VALUES $lookup) AS l(expense_type, region) ON s.expense_type = l.expense_type GROUP BY l.region"
  local S5JN="SELECT lookup.region, count(*), sum(spend_over_500.amount) FROM std.spend_over_500 JOIN (VALUES $lookup) AS lookup(expense_type, region) ON spend_over_500.expense_type = lookup.expense_type GROUP BY lookup.region"
  timeit s5j_alias gw_http application/json "$S5J"
  timeit s5j_names gw_http application/json "$S5JN"

  if [[ $name == default ]]; then
    local S2="SELECT * FROM $pgid.$pgtab"
    # S2: the PostgreSQL council's whole table, as psql \copy sees it
    timeit s2_flight gw_flight "$S2"
    timeit s2_http_arrow gw_http application/vnd.apache.arrow.stream "$S2"
    timeit s2_pg_copy pg_copy "$(v $pg SQL_PULL_ALL)"
    timeit s2_my_pull my_pull "$(v $my SQL_PULL_ALL)"
    # S5: output formats over the Parquet council's 1M standard rows
    local S5="SELECT * FROM std.spend_over_500 WHERE council = '$pqid'"
    TIMEIT_RUNS=3 timeit s5_arrow gw_http application/vnd.apache.arrow.stream "$S5"
    TIMEIT_RUNS=3 timeit s5_csv gw_http text/csv "$S5"
    TIMEIT_RUNS=3 timeit s5_ndjson gw_http application/x-ndjson "$S5"
    TIMEIT_RUNS=3 timeit s5_json gw_http application/json "$S5"
    # S6: 50 analysts × 4 queries of a mixed set
    local v3=${S3_VALUE//\'/\'\'}
    log "[$name] S6: 50 analysts × 4 queries"
    # each analyst a requester of their own (benchgen's bench-NN@edinburgh)
    local s6keys; s6keys=$(seq -f "$KEY-%02g" -s, 1 50)
    "$BIN/loadgen" --base "http://$HTTP_ADDR" --key "$s6keys" --analysts 50 --per 4 --deadline 5m \
      --query "SELECT * FROM std.spend_over_500 WHERE council = '$pgid' LIMIT 100" \
      --query "SELECT council, count(*), sum(amount) FROM std.spend_over_500 WHERE expense_type = '$v3' GROUP BY council" \
      --query "SELECT * FROM $myid.$(v $my TABLE) LIMIT 10" \
      --query "SELECT council, count(*), sum(amount) FROM std.spend_over_500 WHERE council = '$pqid' GROUP BY council" \
      --query "SELECT * FROM std.spend_over_500 WHERE council = '$myid' AND expense_type = '$v3' LIMIT 50" \
      >"$RES/s6.txt"
    log "S6: $(cat "$RES/s6.txt")"
    # S6P: 32 clients, each asking for one day's payments of the PostgreSQL council (about
    # 0.4% of its rows, by an indexed column), passed straight to PostgreSQL (whole-query
    # pushdown), CSV out; the floor is the same load run on PostgreSQL itself with pgx.
    local dcol pgdb day; dcol=$(v $pg DATE_COL); pgdb=$(v $pg DB)
    if [[ -n $dcol ]]; then
      pg_run "CREATE INDEX IF NOT EXISTS s6p_date ON \"$pgdb\".\"$pgtab\" (\"$dcol\")"
      day=$(psql -X -At -d postgres -c "SELECT \"$dcol\" FROM \"$pgdb\".\"$pgtab\" GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")
      psql -X -At -d postgres -c "SELECT count(*) FROM \"$pgdb\".\"$pgtab\" WHERE \"$dcol\" = '$day'" >"$RES/s6p_rows"
      log "[$name] S6P: 32 clients × 20 s, $(cat "$RES/s6p_rows") rows each, gateway then PostgreSQL"
      "$BIN/loadgen" --base "http://$HTTP_ADDR" --key "$s6keys" --clients 32 --duration 20s --timeout 30s --accept text/csv \
        --query "SELECT * FROM $pgid.$pgtab WHERE \"$dcol\" = '$day'" >"$RES/s6p_gateway.txt"
      "$BIN/loadgen" --pg "$PGDSN" --clients 32 --duration 20s --timeout 30s \
        --query "SELECT * FROM \"$pgdb\".\"$pgtab\" WHERE \"$dcol\" = '$day'" >"$RES/s6p_pg.txt"
      log "S6P gateway: $(cat "$RES/s6p_gateway.txt")"
      log "S6P PostgreSQL: $(cat "$RES/s6p_pg.txt")"
    fi
    # S10: small queries, one client at a time for 5 s each (no process start in the
    # timing): p50 and p99 of a whole-query LIMIT 10, one council's count and a
    # selective cross-council aggregate
    local q10
    for q10 in "limit|SELECT * FROM $pgid.$pgtab LIMIT 10" \
      "count|SELECT count(*) FROM std.spend_over_500 WHERE council = '$pgid'" \
      "agg|SELECT council, count(*) FROM std.spend_over_500 WHERE expense_type = '$v3' GROUP BY council"; do
      "$BIN/loadgen" --base "http://$HTTP_ADDR" --key "$KEY" --clients 1 --duration 5s --timeout 30s \
        --query "${q10#*|}" >"$RES/s10_${q10%%|*}.txt"
      log "S10 ${q10%%|*}: $(cat "$RES/s10_${q10%%|*}.txt")"
    done
    # S7: a small query, policy off (this gateway)
    SMALL="SELECT * FROM std.spend_over_500 WHERE council = '$myid' LIMIT 10"
    TIMEIT_RUNS=20 timeit s7_small_nopolicy gw_http application/json "$SMALL"
    # profiles of what misses
    profile S1 "$S1" http
    profile S2 "$S2" flight
    profile S4 "$S4" http
  fi
  stop_gateway

  # S9: the same S1, S3 and S4 with every council answered from its local copy
  # (sources[].accelerate); the first copies are read from the stores, timed.
  if [[ -f $dir/gateway-accelerated.yaml ]]; then
    rm -rf "$dir/accelerated"
    local t9; t9=$(now_ms)
    start_gateway "$dir/gateway-accelerated.yaml" "$HTTP_ADDR" "$FLIGHT_ADDR" "$dir/gateway-accelerated.log"
    wait_copies "$HTTP_ADDR" "$dir/gateway-accelerated.log"
    echo $(( $(now_ms) - t9 )) >"$RES/s9_load_ms"
    log "[$name] S9: every copy loaded in $(fmt_s "$(cat "$RES/s9_load_ms")")"
    timeit s9_s1 gw_http application/json "$S1"
    timeit s9_s3 gw_http application/json "$S3"
    timeit s9_s4 gw_http application/json "$S4"
    stop_gateway
  fi

  if [[ $name == default ]]; then
    # S7: policy decision time, and a small query under the repository's policy
    log "[$name] S7: go test -bench BenchmarkDecide ./gateway/policy/"
    go test -tags duckdb_arrow -run '^$' -bench 'BenchmarkDecide' -benchtime 2000x ./gateway/policy/ >"$RES/s7_decide.txt" 2>&1
    start_gateway "$dir/gateway-policy.yaml" "$PHTTP_ADDR" "$PFLIGHT_ADDR" "$dir/gateway-policy.log"
    HTTP_ADDR_SAVE=$HTTP_ADDR; HTTP_ADDR=$PHTTP_ADDR
    TIMEIT_RUNS=20 timeit s7_small_policy gw_http application/json "$SMALL"
    HTTP_ADDR=$HTTP_ADDR_SAVE
    stop_gateway
    rm -f "$RES"/s8*
    if ((BIG_ROWS > 0)); then s8 "$dir"; fi
  fi
  write_section "$name" "$n" "$rows" "$pg" "$my" "$pq" >"$dir/section.md"
}

# S8: SELECT * of one BIG_ROWS-row Parquet table (bench/out/big/<rows>, written once and
# kept), over Flight and HTTP Arrow, each client on a gateway started for it alone, so the
# gateway's VmHWM (its lifetime peak RSS) is that client's runs and nothing else.
s8() { # dir
  local dir=$1 big=$OUT/big/$BIG_ROWS
  if [[ ! -f $big/big.env ]]; then
    log "[S8] writing the $BIG_ROWS-row Parquet table (once; kept in $big)"
    mkdir -p "$OUT/big"
    "$BIN/benchgen" --big-out "$big" --big-rows "$BIG_ROWS" --key "$KEY" \
      --http "$HTTP_ADDR" --flight "$FLIGHT_ADDR" 2>"$big.gen.log" || { cat "$big.gen.log"; exit 1; }
  fi
  # shellcheck disable=SC1091
  source "$big/big.env"
  cp "$big/big.env" "$RES/s8.env"
  local n=$S8_RUNS
  # the floor: the store reading every column by itself (also warms the page cache)
  TIMEIT_RUNS=$n timeit s8_store_scan "$BIN/benchgen" --big-scan "$BIG_FILE"
  : >"$RES/s8.txt"
  local client run t0 out rows bytes got ms first code hwm
  for client in flight http; do
    start_gateway "$big/gateway.yaml" "$HTTP_ADDR" "$FLIGHT_ADDR" "$dir/gateway-s8-$client.log"
    echo "$(proc_kb VmRSS)" >"$RES/s8_${client}_idle_kb"
    : >"$RES/s8_$client"; : >"$RES/s8_${client}_first"; : >"$RES/s8_${client}_hwm_kb"
    # VmRSS every 0.2 s while this gateway runs: ms since it was ready, kB
    t0=$(now_ms)
    (while kill -0 "$GW_PID" 2>/dev/null; do
      echo "$(($(now_ms) - t0)) $(proc_kb VmRSS)"; sleep 0.2
    done) >"$RES/s8_${client}_rss.txt" &
    local sampler=$!
    for run in $(seq 1 "$n"); do
      local at=$(($(now_ms) - t0))
      if [[ $client == flight ]]; then
        out=$(gw_flight "$BIG_SQL") || { echo "FAILED: s8_flight" >&2; exit 1; }
        rows=$(sed -n 's/.*rows=\([0-9]*\).*/\1/p' <<<"$out")
        ms=$(sed -n 's/.* ms=\([0-9]*\).*/\1/p' <<<"$out")
        first=$(sed -n 's/.*first_ms=\(-*[0-9]*\).*/\1/p' <<<"$out")
        if [[ $rows != "$BIG_ROWS" ]]; then echo "FAILED: s8_flight: $rows rows, want $BIG_ROWS ($out)" >&2; exit 1; fi
        got="rows=$rows"
      else
        # curl's clock: time_starttransfer is the first byte (the gateway sends its status
        # after the first batch), time_total the last; rows are not counted, bytes are
        out=$(curl -sS -o /dev/null -w '%{http_code} %{time_starttransfer} %{time_total} %{size_download}' \
          "http://$HTTP_ADDR/v1/query" -H "Authorization: Bearer $KEY" \
          -H "Accept: application/vnd.apache.arrow.stream" --data-binary "$(jq_body "$BIG_SQL")") ||
          { echo "FAILED: s8_http: $out" >&2; exit 1; }
        read -r code first ms bytes <<<"$out"
        if [[ $code != 200 ]]; then echo "FAILED: s8_http: status $code" >&2; exit 1; fi
        first=$(awk -v s="$first" 'BEGIN{ printf "%d", s*1000 }')
        ms=$(awk -v s="$ms" 'BEGIN{ printf "%d", s*1000 }')
        got="bytes=$bytes"
      fi
      hwm=$(proc_kb VmHWM)
      echo "$ms" >>"$RES/s8_$client"; echo "$first" >>"$RES/s8_${client}_first"; echo "$hwm" >>"$RES/s8_${client}_hwm_kb"
      echo "client=$client run=$run at_ms=$at $got ms=$ms first_ms=$first vmhwm_kb=$hwm vmrss_after_kb=$(proc_kb VmRSS)" >>"$RES/s8.txt"
    done
    stop_gateway
    kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true
    log "s8_$client: total $(stat_of "s8_$client"); first batch/byte $(stat_of "s8_${client}_first"); peak RSS $(($(mx "s8_${client}_hwm_kb") / 1024)) MB (idle $(($(cat "$RES/s8_${client}_idle_kb") / 1024)) MB)"
  done
}

decide() { # subbench metric
  awk -v b="BenchmarkDecide/$1" -v m="$2" '$1 ~ b { for (i=2;i<=NF;i++) if ($(i)==m) print $(i-1) }' "$RES/s7_decide.txt" | sed -n 1p
}
met() { awk -v r="$1" -v t="$2" 'BEGIN{ if (r<=t) print "**met**"; else printf "**missed** (%.1f× over)", r/t }'; }

write_section() { # name n rows pg my pq
  local name=$1 n=$2 rows=$3 pg=$4 my=$5
  v() { eval "echo \"\${C$1_$2:-}\""; }
  local slow=s1_pg_pull slowstore="PostgreSQL ($(v $pg ID))" agg=s1_pg_agg
  if (( $(med s1_my_pull | cut -d. -f1) > $(med s1_pg_pull | cut -d. -f1) )); then
    slow=s1_my_pull; slowstore="MariaDB ($(v $my ID))"; agg=s1_my_agg
  fi
  local s3slow=s3_pg; (( $(med s3_my | cut -d. -f1) > $(med s3_pg | cut -d. -f1) )) && s3slow=s3_my
  local s4slow=s4_pg; (( $(med s4_my | cut -d. -f1) > $(med s4_pg | cut -d. -f1) )) && s4slow=s4_my
  local r1 r1a r3 r4; r1=$(ratio "$(med s1_gateway)" "$(med $slow)"); r1a=$(ratio "$(med s1_gateway)" "$(med $agg)")
  r3=$(ratio "$(med s3_gateway)" "$(med $s3slow)"); r4=$(ratio "$(med s4_gateway)" "$(med $s4slow)")
  echo "### Run \`$name\`: $n councils × $rows spend rows"
  echo
  echo -n "Stores: "
  local i; for ((i = 0; i < N_COUNCILS && i < 6; i++)); do echo -n "$(v $i ID) → $(v $i STORE); "; done
  ((N_COUNCILS > 6)) && echo -n "… (round-robin PostgreSQL, MariaDB, Parquet, CSV/Parquet)"
  echo
  [[ -f $RES/gen_ms ]] && echo "Data generated and loaded in $(fmt_s "$(cat "$RES/gen_ms")")."
  echo "Medians of $RUNS runs after one warm-up, with min–max. Gateway over HTTP (JSON) unless said; policy disabled (\`policy: {disabled: true}\`) for S1–S6."
  echo
  echo "| scenario | gateway | floor (same run) | ratio | target |"
  echo "|---|---|---|---|---|"
  echo "| S1 cross-council aggregate vs slowest raw pull: $slowstore, amount column | $(cell s1_gateway) | $(cell $slow) | $r1× | ≤ 1.5× $(met "$r1" 1.5) |"
  echo "| S1 … vs that store running its share of the aggregate | | $(cell $agg) | $r1a× | (info) |"
  echo "| S1 floors: PostgreSQL pull / MariaDB pull / PostgreSQL agg / MariaDB agg | | $(cell s1_pg_pull) / $(cell s1_my_pull) / $(cell s1_pg_agg) / $(cell s1_my_agg) | | |"
  if [[ -s $RES/s1_all_pull ]]; then
    echo "| S1 … vs every database council's raw pull at once (Parquet/CSV councils left out) | | $(cell s1_all_pull) | $(ratio "$(med s1_gateway)" "$(med s1_all_pull)")× | (info) |"
    echo "| S1 … vs every database council's own aggregate at once | | $(cell s1_all_agg) | $(ratio "$(med s1_gateway)" "$(med s1_all_agg)")× | (info) |"
  fi
  if [[ -f $RES/s2_flight ]]; then
    local r2f r2h; r2f=$(ratio "$(med s2_flight)" "$(med s2_pg_copy)"); r2h=$(ratio "$(med s2_http_arrow)" "$(med s2_pg_copy)")
    echo "| S2 full scan, 1M rows × all columns, Flight SQL (ADBC) vs \`psql \\copy\` | $(cell s2_flight) | $(cell s2_pg_copy) | $r2f× | ≤ 1.0× $(met "$r2f" 1.0) |"
    echo "| S2 same over HTTP Arrow (curl) vs \`psql \\copy\` | $(cell s2_http_arrow) | $(cell s2_pg_copy) | $r2h× | (info) |"
    echo "| S2 (info) MariaDB \`mysql --quick\` of its 1M rows | | $(cell s2_my_pull) | | |"
  fi
  echo "| S3 1% filter (\`expense_type = '$S3_VALUE'\`, $(awk -v s="$S3_SHARE" 'BEGIN{printf "%.2f%%", s*100}') of rows) vs slowest store's direct filter | $(cell s3_gateway) | $(cell $s3slow) | $r3× | ≤ 1.3× $(met "$r3" 1.3) |"
  echo "| S3 floors: PostgreSQL / MariaDB direct | | $(cell s3_pg) / $(cell s3_my) | | |"
  if [[ -s $RES/s3_all ]]; then
    echo "| S3 … vs every database council's direct filter at once (Parquet/CSV councils left out) | | $(cell s3_all) | $(ratio "$(med s3_gateway)" "$(med s3_all)")× | (info) |"
  fi
  echo "| S4 top-10 by amount across all councils vs slowest store's own top-10 | $(cell s4_gateway) | $(cell $s4slow) | $r4× | (none) |"
  if [[ -s $RES/s5j_alias ]]; then
    local r5j; r5j=$(ratio "$(med s5j_alias)" "$(med s1_all_agg)")
    echo "| S5J spend joined to a $(cat "$RES/s5j_lookup_rows")-row lookup, by region, table aliases, vs every database council's own aggregate at once | $(cell s5j_alias) | $(cell s1_all_agg) | $r5j× | ≤ 1.3× $(met "$r5j" 1.3) |"
    echo "| S5J … with the tables' own names / vs S1 itself | $(cell s5j_names) | $(cell s1_gateway) | $(ratio "$(med s5j_names)" "$(med s1_all_agg)")× / $(ratio "$(med s5j_alias)" "$(med s1_gateway)")× | (info) |"
  fi
  if [[ -s $RES/s9_s1 ]]; then
    local r9; r9=$(ratio "$(med s9_s1)" "$(med s1_all_agg)")
    echo "| S9 accelerated (every council from its local copy; first copies read in $(fmt_s "$(cat "$RES/s9_load_ms")")): S1 vs every database council's own aggregate at once | $(cell s9_s1) | $(cell s1_all_agg) | $r9× | ≤ 1.2× $(met "$r9" 1.2) |"
    echo "| S9 … S1 vs the same query live | | $(cell s1_gateway) | $(ratio "$(med s9_s1)" "$(med s1_gateway)")× | (info) |"
    echo "| S9 … S3 vs the slowest store's direct filter / vs live | $(cell s9_s3) | $(cell $s3slow) / $(cell s3_gateway) | $(ratio "$(med s9_s3)" "$(med $s3slow)")× / $(ratio "$(med s9_s3)" "$(med s3_gateway)")× | (info) |"
    echo "| S9 … S4 vs the slowest store's own top-10 / vs live | $(cell s9_s4) | $(cell $s4slow) / $(cell s4_gateway) | $(ratio "$(med s9_s4)" "$(med $s4slow)")× / $(ratio "$(med s9_s4)" "$(med s4_gateway)")× | ≤ 1.3× $(met "$(ratio "$(med s9_s4)" "$(med $s4slow)")" 1.3) |"
  fi
  if [[ -f $RES/s5_arrow ]]; then
    local f; for f in arrow csv ndjson json; do
      echo "| S5 HTTP $f, 1M rows (Parquet council, std columns) | $(cell s5_$f) | | $(awk -v m="$(med s5_$f)" 'BEGIN{printf "%.0f rows/s", 1e6/(m/1000)}') | (none) |"
    done
  fi
  if [[ -s $RES/s6p_gateway.txt && -s $RES/s6p_pg.txt ]]; then
    kv() { tr ' ' '\n' <"$RES/$1" | awk -F= -v k="$2" '$1 == k { print $2 }'; }
    local gq pq g99 p99 rq r99
    gq=$(kv s6p_gateway.txt qps_ok); pq=$(kv s6p_pg.txt qps_ok); g99=$(kv s6p_gateway.txt p99_ms); p99=$(kv s6p_pg.txt p99_ms)
    rq=$(ratio "$gq" "$pq"); r99=$(ratio "$g99" "$p99")
    echo "| S6P pass-through: 32 clients, one day's $(cat "$RES/s6p_rows") rows of the PostgreSQL council (indexed), CSV, vs the same load on PostgreSQL (pgx) | $gq q/s, p50 $(kv s6p_gateway.txt p50_ms) ms, p99 $g99 ms | $pq q/s, p50 $(kv s6p_pg.txt p50_ms) ms, p99 $p99 ms | $rq× q/s, $r99× p99 | ≥ 0.8× q/s $(awk -v r="$rq" 'BEGIN{ if (r>=0.8) print "**met**"; else print "**missed**" }'), p99 ≤ 2× $(met "$r99" 2) |"
  fi
  if [[ -s $RES/s10_limit.txt ]]; then
    local k10 w10
    for k10 in "limit|\`SELECT * … LIMIT 10\` from one council (whole query)|10" "count|one council's \`count(*)\` of std.spend_over_500|" "agg|cross-council \`GROUP BY council\` under a 1% filter|"; do
      w10=${k10%%|*}
      local tgt=${k10##*|} desc=${k10#*|}; desc=${desc%|*}
      local p50; p50=$(tr ' ' '\n' <"$RES/s10_$w10.txt" | awk -F= '$1 == "p50_ms" { print $2 }')
      echo "| S10 small query, one client: $desc | p50 $p50 ms, p99 $(tr ' ' '\n' <"$RES/s10_$w10.txt" | awk -F= '$1 == "p99_ms" { print $2 }') ms | | | $( [[ -n $tgt ]] && echo "p50 < $tgt ms $(awk -v r="$p50" -v t="$tgt" 'BEGIN{ if (r<t) print "**met**"; else print "**missed**" }')" || echo "(info)") |"
    done
  fi
  if [[ -f $RES/s6.txt ]]; then
    echo "| S6 50 concurrent analysts × 4 mixed queries | \`$(cat "$RES/s6.txt" | sed 's/ first_error=""//')\` | | | (none) |"
  fi
  if [[ -f $RES/s7_decide.txt ]]; then
    local dm dp d1 share
    dm=$(decide 6-tables median-µs); dp=$(decide 6-tables p99-µs); d1=$(decide 1-table median-µs)
    share=$(awk -v d="$dm" -v q="$(med s7_small_policy)" -v o="$(med s7_small_nopolicy)" 'BEGIN{ printf "%.3f%% of it (%.2f%% of the policy-off time)", d/1000/q*100, d/1000/o*100 }')
    echo "| S7 policy decision, 6 tables (BenchmarkDecide, demo policies) | median ${dm} µs, p99 ${dp} µs (1 table: ${d1} µs) | | | median < 1 ms $(awk -v d="$dm" 'BEGIN{ if (d<1000) print "**met**"; else print "**missed**" }') |"
    echo "| S7 small query (\`LIMIT 10\` from one council), policy on vs off | $(cell s7_small_policy) | $(cell s7_small_nopolicy) | $(ratio "$(med s7_small_policy)" "$(med s7_small_nopolicy)")× | decision = $share |"
  fi
  if [[ -f $RES/s8.txt ]]; then
    # shellcheck disable=SC1091
    source "$RES/s8.env"
    local hf hh what floor
    hf=$(($(mx s8_flight_hwm_kb) / 1024)); hh=$(($(mx s8_http_hwm_kb) / 1024))
    what="S8 \`$BIG_SQL\`, $BIG_ROWS rows × $BIG_COLUMNS columns (one Parquet file, $((BIG_BYTES >> 20)) MB)"
    floor="the store reading every column itself (DuckDB over the file)"
    echo "| $what, Flight SQL (ADBC): all rows vs $floor | $(cell s8_flight) | $(cell s8_store_scan) | $(ratio "$(med s8_flight)" "$(med s8_store_scan)")× | (info) |"
    echo "| S8 … Flight: time to the first record batch vs the store's whole read | $(cell s8_flight_first) | $(cell s8_store_scan) | $(ratio "$(med s8_flight_first)" "$(med s8_store_scan)")× | first rows before the last leave the store $(first_met s8_flight_first) |"
    echo "| S8 … HTTP Arrow (curl): all rows / time to first byte | $(cell s8_http) / $(cell s8_http_first) | $(cell s8_store_scan) | $(ratio "$(med s8_http_first)" "$(med s8_store_scan)")× (first byte) | first rows before the last leave the store $(first_met s8_http_first) |"
    echo "| S8 gateway peak RSS (VmHWM; a fresh gateway per client, $(wc -l <"$RES/s8_flight") run(s) each): Flight / HTTP | $hf MB / $hh MB (idle $(($(cat "$RES/s8_flight_idle_kb") / 1024)) MB) | | | ≤ $RSS_BOUND_MB MB $(met "$((hf > hh ? hf : hh))" "$RSS_BOUND_MB") |"
  fi
  echo
}

# first_met LABEL: the first batch (median) came before the store could have read the
# whole table (its own full read, median); otherwise the result waited for it
first_met() {
  awk -v f="$(med "$1")" -v s="$(med s8_store_scan)" 'BEGIN{ if (f < s) print "**met**"; else print "**missed**" }'
}

machine() {
  echo "| | |"
  echo "|---|---|"
  echo "| date | $(date -u '+%Y-%m-%d %H:%M UTC') |"
  echo "| CPU | $(lscpu | awk -F: '/Model name/ && !n {gsub(/^ +/,"",$2); print $2; n=1}'), $(nproc) cores |"
  echo "| RAM | $(free -g | awk '/Mem:/{print $2}') GiB |"
  echo "| OS | $(uname -sr) |"
  echo "| Go | $(go version | awk '{print $3}') |"
  echo "| PostgreSQL | $(psql -X -d postgres -Atc 'SHOW server_version') |"
  echo "| MariaDB | $(mysql "${MYARGS[@]}" -N -e 'SELECT VERSION()') |"
  echo "| gateway | $(git describe --tags --always --dirty 2>/dev/null || echo dev) |"
  echo "| load average at start | $(cut -d' ' -f1-3 /proc/loadavg) |"
}

MACHINE=$(machine)
bench_run default "$COUNCILS" "$ROWS"
if [[ $FULL == 1 ]]; then
  bench_run full 32 250000
fi

# --- BENCHMARKS.md: regenerated above the analysis marker, kept below ---
MARK='<!-- analysis: written by hand below this line; make bench keeps it -->'
{
  echo "# Benchmarks"
  echo
  echo "Written by \`make bench\` (bench/bench.sh; see bench/README.md). The data is generated by the"
  echo "project's generator (gateway/synth) and never committed. Everything ran on one machine over"
  echo "127.0.0.1; the machine's 2 cores were shared with another engineer's test runs, which adds noise."
  echo
  echo "## Machine"
  echo
  echo "$MACHINE"
  echo
  echo "## Results"
  echo
  cat "$OUT/default/section.md"
  if [[ $FULL == 1 ]]; then cat "$OUT/full/section.md"; else
    echo "The 32 councils × 250k rows run is optional (\`BENCH_FULL=1 make bench\`) and was not part of this run."
    echo
  fi
  if ls "$OUT"/default/results/profile-*-dso.txt >/dev/null 2>&1; then
    echo "## CPU profiles (perf, whole gateway process, one query each)"
    echo
    for f in "$OUT"/default/results/profile-*-dso.txt; do
      s=$(basename "$f" -dso.txt); s=${s#profile-}
      echo "$s, by component (flat perf samples summed):"
      echo; echo '```'; sed 's/[[:space:]]*$//' "$f" | sed -n 1,10p; echo '```'; echo
      echo "$s, top symbols:"
      echo; echo '```'; sed 's/[[:space:]]*$//' "$OUT/default/results/profile-$s.txt" | sed -n 1,15p; echo '```'; echo
    done
  fi
  echo "$MARK"
  if [[ -f BENCHMARKS.md ]] && grep -qF "$MARK" BENCHMARKS.md; then
    sed -n "/$(printf '%s' "$MARK" | sed 's/[][\/.*^$]/\\&/g')/,\$p" BENCHMARKS.md | tail -n +2
  fi
} >"$OUT/BENCHMARKS.md.new"
mv "$OUT/BENCHMARKS.md.new" BENCHMARKS.md
log "wrote BENCHMARKS.md"
cat "$OUT/default/section.md"
[[ $FULL == 1 ]] && cat "$OUT/full/section.md"
exit 0
