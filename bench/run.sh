#!/usr/bin/env bash
# The proxy benchmark, in one command:  bash bench/run.sh
#
# Measures the same request three ways against the same tiny upstream
# (bench/upstream), with the same wrk settings:
#   direct    wrk -> upstream                       (the floor)
#   nginx     wrk -> nginx -> upstream              (a plain header-stamping proxy)
#   keyrelay  wrk -> keyrelay /v1/proxy -> upstream (key check, credential lookup, stamping)
# then writes docs/benchmark.md and the raw wrk output to bench/results/latest.txt.
#
# Settings (environment):
#   BENCH_DURATION=15s  BENCH_CONNECTIONS=64  BENCH_THREADS=2   per measured wrk run
#   BENCH_ROUNDS=2      rounds of (direct, nginx, keyrelay), alternating so
#                       drift (thermal, noisy neighbours) hits every target alike
#   BENCH_WARMUP=3s     unrecorded wrk run per target first (JIT-free, but pools,
#                       caches, TCP connections and allocator arenas fill up)
#   BENCH_STREAM=1      also run the 1 GiB streaming memory test (bench/stream.sh); 0 skips
#   BENCH_STREAM_BYTES=1073741824
#   BENCH_SKIP_BUILD=1  use the binaries already built
#   BENCH_KEYRELAY_REF=HEAD  build keyrelay from that commit, not the working tree
#   BENCH_REQUIRE_KEYRELAY=1  fail (instead of skipping keyrelay) when /v1/proxy is missing
#   BENCH_KEEP_TMP=1    keep the temp dir (configs, logs, data dir) for inspection
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION="${BENCH_DURATION:-15s}"
CONNECTIONS="${BENCH_CONNECTIONS:-64}"
THREADS="${BENCH_THREADS:-2}"
ROUNDS="${BENCH_ROUNDS:-2}"
WARMUP="${BENCH_WARMUP:-3s}"
# The request path and query every target sends to the upstream: a typical
# small API GET.
REQ_PATH="/api/items?page=1&per_page=10"

bench_init
install_deps
build_all

start_upstream
start_nginx
start_keyrelay
setup_keyrelay

# --- 1. every path must really stamp the header, or its numbers mean nothing --
expect_200() {
    local what="$1"; shift
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' "$@")
    [[ "$code" == 200 ]] || die "$what: /check-auth answered $code, expected 200"
    log "$what: /check-auth -> 200"
}
# The upstream refuses a missing header, so the checks are not vacuous:
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$UPSTREAM_PORT/check-auth")
[[ "$code" == 401 ]] || die "upstream answered $code without Authorization; expected 401"
expect_200 "direct (header sent by the client)" -H "Authorization: Bearer $PROVIDER_TOKEN" "http://127.0.0.1:$UPSTREAM_PORT/check-auth"
expect_200 "nginx (header stamped by nginx)" "http://127.0.0.1:$NGINX_PORT/check-auth"
check_keyrelay_proxy

# --- 2. load ---------------------------------------------------------------------
TARGETS=(direct nginx)
((KEYRELAY_PROXY_OK)) && TARGETS+=(keyrelay)

# The wrk command line for a target, as an array in WRK_CMD.
wrk_cmd() {
    local target="$1" duration="$2"
    WRK_CMD=(wrk "-t$THREADS" "-c$CONNECTIONS" "-d$duration" --latency)
    case "$target" in
        # The direct client sends the provider token itself, as an app without
        # keyrelay would; same header count and size class as the others.
        direct) WRK_CMD+=(-H "Authorization: Bearer $PROVIDER_TOKEN" "http://127.0.0.1:$UPSTREAM_PORT$REQ_PATH") ;;
        nginx) WRK_CMD+=("http://127.0.0.1:$NGINX_PORT$REQ_PATH") ;;
        # /v1/proxy/{path}: keyrelay forwards {path} and the query unchanged.
        keyrelay) WRK_CMD+=("${KR_HEADERS[@]}" "$KEYRELAY_URL/v1/proxy$REQ_PATH") ;;
    esac
}

# The printable form of a command, with secrets replaced by placeholders.
# Each argument is single-quoted when it holds anything but plain characters,
# so the report shows a command that can be pasted back into a shell.
redact() {
    local s="" a
    for a in "$@"; do
        if [[ "$a" =~ ^[A-Za-z0-9_./:=@,+-]+$ ]]; then s+="$a "; else s+="'$a' "; fi
    done
    s="${s% }"
    s="${s//"$PROVIDER_TOKEN"/<provider-token>}"
    s="${s//"$SECRET_KEY"/kr_sk_<secret>}"
    printf '%s\n' "$s"
}

RAW="$BENCH_TMP/latest.txt"
KEYRELAY_RSS_IDLE=$(rss_kib "$KEYRELAY_PID")
{
    # Header lines ("# key: value") carry the context report.py needs.
    echo "# date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "# nproc: $(nproc)"
    echo "# cpu: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "# kernel: $(uname -srm)"
    echo "# os: $(. /etc/os-release && echo "$PRETTY_NAME")"
    echo "# nginx: $(nginx -v 2>&1 | sed 's/^nginx version: //')"
    echo "# wrk: $(wrk -v 2>&1 | head -1 | sed 's/ Copyright.*//')"   # e.g. "wrk debian/4.1.0-3+b2 [epoll]"
    echo "# rustc: $(rustc -V)"
    echo "# keyrelay_commit: $KEYRELAY_DESC"
    echo "# keyrelay_auth_mode: $KEYRELAY_AUTH_MODE"
    echo "# keyrelay_proxy: $KEYRELAY_PROXY_NOTE"
    echo "# settings: threads=$THREADS connections=$CONNECTIONS duration=$DURATION rounds=$ROUNDS warmup=$WARMUP"
    echo "# request: GET $REQ_PATH (upstream answers 200, 97-byte JSON)"
    echo "# keyrelay_rss_idle_kib: $KEYRELAY_RSS_IDLE"
    # Other work on the box (a compiler, say) skews everything: record it.
    echo "# loadavg_before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$RAW"

log "warm-up: $WARMUP per target (not recorded)"
for t in "${TARGETS[@]}"; do
    wrk_cmd "$t" "$WARMUP"
    "${WRK_CMD[@]}" >/dev/null
done

for round in $(seq 1 "$ROUNDS"); do
    for t in "${TARGETS[@]}"; do
        wrk_cmd "$t" "$DURATION"
        log "round $round/$ROUNDS: $t ($DURATION, $CONNECTIONS connections)"
        one="$BENCH_TMP/wrk.out"
        {
            echo "### target=$t round=$round"
            echo "\$ $(redact "${WRK_CMD[@]}")"
            "${WRK_CMD[@]}"
        } >"$one" 2>&1
        cat "$one" >>"$RAW"
        # Show the headline, and any errors: a fast run of 4xx/5xx is no result.
        grep -E 'Requests/sec|Non-2xx|Socket errors' "$one" >&2 || true
    done
done

{
    echo "### end"
    echo "# loadavg_after: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# keyrelay_rss_after_kib: $(rss_kib "$KEYRELAY_PID")"
    # nginx: master plus its workers, for comparison.
    echo "# nginx_rss_after_kib: $(( $(rss_kib "$NGINX_PID") + $(ps -o rss= --ppid "$NGINX_PID" | awk '{s+=$1} END {print s+0}') ))"
    echo "# upstream_rss_after_kib: $(rss_kib "$UPSTREAM_PID")"
} >>"$RAW"
cp "$RAW" "$RESULTS_DIR/latest.txt"

# --- 3. streaming memory test (reuses the running servers) ---------------------
STREAM_OUT=""
if [[ "${BENCH_STREAM:-1}" != 0 ]] && ((KEYRELAY_PROXY_OK)); then
    source "$BENCH_DIR/stream_lib.sh"
    measure_stream "$RESULTS_DIR/stream.txt"
    STREAM_OUT="$RESULTS_DIR/stream.txt"
elif [[ "${BENCH_STREAM:-1}" != 0 ]]; then
    log "streaming test skipped: keyrelay has no proxy yet"
    rm -f "$RESULTS_DIR/stream.txt"   # never report stale numbers from another build
fi

# --- 4. the report -------------------------------------------------------------------
python3 "$BENCH_DIR/report.py" "$RESULTS_DIR/latest.txt" ${STREAM_OUT:+--stream "$STREAM_OUT"} \
    --out "$REPO_ROOT/docs/benchmark.md"
log "wrote docs/benchmark.md and bench/results/latest.txt"
