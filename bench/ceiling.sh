#!/usr/bin/env bash
# How close is keyrelay's proxy to what its HTTP stack allows?  bash bench/ceiling.sh
#
# Runs the same wrk load as bench/run.sh through nginx, through keyrelay, and
# through bench/ceiling's three minimal hyper proxies (no key check, no
# lookups: forward and set one header; see bench/ceiling/src/main.rs for the
# modes), in alternating rounds, and prints req/s per round and the means.
# Raw wrk output goes to bench/results/ceiling.txt.
#
# Settings (environment): BENCH_DURATION=10s BENCH_CONNECTIONS=64
# BENCH_THREADS=2 BENCH_ROUNDS=3 BENCH_SKIP_BUILD=1 (as in bench/run.sh).
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION="${BENCH_DURATION:-10s}"
CONNECTIONS="${BENCH_CONNECTIONS:-64}"
THREADS="${BENCH_THREADS:-2}"
ROUNDS="${BENCH_ROUNDS:-3}"
REQ_PATH="/api/items?page=1&per_page=10"
CEILING_BIN="$BENCH_DIR/ceiling/target/release/bench-ceiling"

bench_init
install_deps
build_all
if [[ -z "${BENCH_SKIP_BUILD:-}" ]]; then
    log "building bench-ceiling (release)"
    cargo build --release -q --manifest-path "$BENCH_DIR/ceiling/Cargo.toml"
fi
[[ -x "$CEILING_BIN" ]] || die "no bench-ceiling binary at $CEILING_BIN"

start_upstream
start_nginx
start_keyrelay
setup_keyrelay
check_keyrelay_proxy
((KEYRELAY_PROXY_OK)) || die "$KEYRELAY_PROXY_NOTE"

declare -A PORT
for mode in mt tpc direct; do
    PORT[$mode]="$(free_port)"
    "$CEILING_BIN" "$mode" "127.0.0.1:${PORT[$mode]}" "127.0.0.1:$UPSTREAM_PORT" \
        2>"$BENCH_TMP/ceiling-$mode.log" &
    BENCH_PIDS+=($!)
    wait_port "${PORT[$mode]}" $! "bench-ceiling $mode" "$BENCH_TMP/ceiling-$mode.log"
done

TARGETS=(nginx keyrelay mt tpc direct)
target_cmd() {
    CMD=(wrk "-t$THREADS" "-c$CONNECTIONS" "-d$1" --latency)
    case "$2" in
        nginx) CMD+=("http://127.0.0.1:$NGINX_PORT$REQ_PATH") ;;
        keyrelay) CMD+=("${KR_HEADERS[@]}" "$KEYRELAY_URL/v1/proxy$REQ_PATH") ;;
        *) CMD+=("http://127.0.0.1:${PORT[$2]}/v1/proxy$REQ_PATH") ;;
    esac
}

RAW="$RESULTS_DIR/ceiling.txt"
: >"$RAW"
declare -A SUM
for t in "${TARGETS[@]}"; do
    target_cmd 3s "$t"
    "${CMD[@]}" >/dev/null
    SUM[$t]=0
done
printf '%-10s' round; printf '%12s' "${TARGETS[@]}"; echo
for ((r = 1; r <= ROUNDS; r++)); do
    printf '%-10s' "$r"
    for t in "${TARGETS[@]}"; do
        target_cmd "$DURATION" "$t"
        out=$("${CMD[@]}")
        printf '## round %d %s\n%s\n' "$r" "$t" "$out" >>"$RAW"
        rps=$(awk '/^Requests\/sec:/ {printf "%d", $2}' <<<"$out")
        SUM[$t]=$((SUM[$t] + rps))
        printf '%12s' "$rps"
    done
    echo
done
printf '%-10s' mean
for t in "${TARGETS[@]}"; do printf '%12s' $((SUM[$t] / ROUNDS)); done
echo
log "raw wrk output: $RAW"
