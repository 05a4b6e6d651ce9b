#!/usr/bin/env bash
# make bench-overload: issue 9's overload measurement. The demo gateway on
# loopback, loaded by 20, 200 and 500 clients that each give a request up
# after 5 s; reports the useful throughput (200 answers read in full per
# second), their p50/p99, and the counts of 429s, 503s and client timeouts
# for each. Bounded: at most 500 clients, each level OVERLOAD_DURATION long.
# See bench/README.md. Everything talks to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DURATION=${OVERLOAD_DURATION:-30s}     # each level
LEVELS=${OVERLOAD_LEVELS:-"20 200 500"}
TIMEOUT=${OVERLOAD_TIMEOUT:-5s}        # the clients' timeout
REQUESTERS=${OVERLOAD_REQUESTERS:-100} # analysts the clients take in turn
EXTRA=${OVERLOAD_EXTRA:-1}             # 1: also 500 clients sending timeout_ms, and 500 ignoring Retry-After
GATEWAY=${OVERLOAD_GATEWAY:-./bin/gateway} # another build of the gateway, to compare
OUT=$ROOT/bench/out/overload
HTTP_ADDR=127.0.0.1:18090 FLIGHT_ADDR=127.0.0.1:18825

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }

log "building bin/gateway, bin/councilgen and loadgen"
make -s build >/dev/null
mkdir -p "$OUT/bin"
go build -o "$OUT/bin/loadgen" ./bench/cmd/loadgen

# The demo's data and config, with the policies resolved from here and
# REQUESTERS analysts of the City of Edinburgh Council (keys load-key-NNN)
# besides the demo's four, so the clients are many requesters, as many
# people would be, rather than four.
rm -rf "$OUT/data" "$OUT/audit"
./bin/councilgen demo --out "$OUT/data" --seed 42 >/dev/null
./bin/gateway secrets init --out "$OUT/data/secrets" >/dev/null
sed -e "s#dir: ../../policies#dir: $ROOT/policies#" deploy/demo/gateway.yaml >"$OUT/gateway.yaml"
KEYS=
for i in $(seq -w 1 "$REQUESTERS"); do
  key=load-key-$i
  printf '  - id: load-%s@edinburgh\n    organisation: The City of Edinburgh Council\n    roles: [analyst]\n    purposes: [research]\n    key_sha256: %s\n' \
    "$i" "$(printf %s "$key" | sha256sum | cut -d' ' -f1)" >>"$OUT/gateway.yaml"
  KEYS=${KEYS:+$KEYS,}$key
done

"$GATEWAY" serve --config "$OUT/gateway.yaml" --http "$HTTP_ADDR" --flight "$FLIGHT_ADDR" --admin off >"$OUT/gateway.log" 2>&1 &
GW_PID=$!
trap 'kill $GW_PID 2>/dev/null || true; wait $GW_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  curl -sf "http://$HTTP_ADDR/readyz" >/dev/null 2>&1 && break
  kill -0 "$GW_PID" 2>/dev/null || { cat "$OUT/gateway.log" >&2; exit 1; }
  sleep 0.5
done

# The mix: cross-council aggregates over both standard datasets (each a
# DuckDB per query over six councils), a masked top-5 from one council,
# and a query one store answers whole.
QUERIES=(
  "SELECT council, count(*) AS payments, sum(amount) AS total FROM std.spend_over_500 GROUP BY council ORDER BY council"
  "SELECT council, beneficiary_name, amount FROM std.spend_over_500 WHERE council = 'fife' ORDER BY amount DESC LIMIT 5"
  "SELECT council, decision, count(*) FROM std.planning_applications GROUP BY ALL ORDER BY ALL"
  "SELECT * FROM edinburgh.payments_over_500 LIMIT 5"
)
QARGS=()
for q in "${QUERIES[@]}"; do QARGS+=(--query "$q"); done

run() { # clients [loadgen flags...]
  local n=$1; shift
  "$OUT/bin/loadgen" --base "http://$HTTP_ADDR" --key "$KEYS" --clients "$n" --duration "$DURATION" --timeout "$TIMEOUT" "$@" "${QARGS[@]}"
}
hwm() { awk '$1 == "VmHWM:" { print $2 }' "/proc/$GW_PID/status" 2>/dev/null; }
rss() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$GW_PID/status" 2>/dev/null; }
# cpu_ticks: the gateway's user+system CPU so far, in clock ticks
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$GW_PID/stat" 2>/dev/null; }
TICKS=$(getconf CLK_TCK)
# with_cpu LINE TICKS_BEFORE: LINE plus the gateway's CPU seconds over the
# level and per useful answer (what the refusals cost shows as the latter)
with_cpu() {
  local used ok
  used=$(( $(cpu_ticks) - $2 ))
  ok=$(sed -nE 's/.* ok=([0-9]+) .*/\1/p' <<<"$1")
  awk -v l="$1" -v u="$used" -v t="$TICKS" -v ok="${ok:-0}" -v h="$(hwm)" -v r="$(rss)" 'BEGIN {
    printf "%s gw_cpu_s=%.1f gw_cpu_ms_per_ok=%.1f vmrss_kb=%s vmhwm_kb=%s\n", l, u/t, (ok > 0 ? 1000*u/t/ok : 0), r, h }'
}

RES=$OUT/results.txt
{
  echo "# $(date -u '+%Y-%m-%d %H:%M UTC') $(git describe --always --dirty) gateway=$GATEWAY nproc=$(nproc) duration=$DURATION timeout=$TIMEOUT requesters=$REQUESTERS"
} >"$RES"
log "warm-up: 20 clients for 5s"
DURATION=5s run 20 >/dev/null
for n in $LEVELS; do
  log "$n clients for $DURATION"
  before=$(cpu_ticks)
  line=$(run "$n")
  with_cpu "$line" "$before" | tee -a "$RES"
  sleep 6 # let what the clients gave up on drain
done
if [[ $EXTRA == 1 ]]; then
  log "500 clients telling the gateway their timeout (timeout_ms)"
  before=$(cpu_ticks)
  with_cpu "$(run 500 --send-timeout)" "$before" | tee -a "$RES"
  sleep 6
  log "500 clients ignoring Retry-After"
  before=$(cpu_ticks)
  with_cpu "$(run 500 --no-backoff)" "$before" | tee -a "$RES"
fi
curl -s "http://$HTTP_ADDR/readyz" >"$OUT/readyz.json" || true
log "results in $RES"
