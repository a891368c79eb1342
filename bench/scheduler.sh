#!/usr/bin/env bash
# The refresh scheduler benchmark, in one command:  bash bench/scheduler.sh
#
# Goal (from the issue): with 100,000 connections due within the same minute,
# at least 500 refreshes/s against a local fake provider on a 2-core machine,
# without starving proxy traffic.
#
#   1. Starts the fake provider (bench/upstream: POST /token, GET /stats) and
#      keyrelay with the scheduler off; imports N oauth2 connections through
#      the API (bench/sched_tool.py import) and one api_key connection for
#      the proxy; runs wrk against the proxy with the scheduler idle.
#   2. One round per entry of BENCH_SCHED_ROUNDS ("SCHEMA:CONCURRENCY[:SPREAD_MS[:strace]]"):
#      stops keyrelay, makes every oauth2 connection due within the next
#      SPREAD_MS (default BENCH_SCHED_SPREAD_MS) with the sqlite3 CLI,
#      restarts keyrelay with the scheduler on, samples the provider's
#      refresh counter and CPU/memory
#      every second until all N are refreshed (or BENCH_SCHED_TIMEOUT), runs
#      the same wrk against the proxy BENCH_SCHED_WRK_AT seconds into the
#      storm, stops keyrelay and checks the database against a snapshot taken
#      before the round (each connection refreshed at most once, exactly once
#      when the round completed; one `refreshed` event per refresh; no failure,
#      no lease left) and keyrelay's log. A round marked ":strace" also
#      traces keyrelay's system calls for a few seconds (to see where the
#      refreshes wait); that slows it, so its rate is not compared.
#   3. Runs wrk once more with the scheduler on but idle, then writes the raw
#      output to bench/results/scheduler.txt and the report to
#      docs/scheduler-benchmark.md (bench/sched_tool.py report).
#
# SCHEMA: keyrelay looks connections up by (project_id, integration_key,
# user_id). Up to 0c5e306 its schema had no index for that: SQLite scanned
# every connection of the project (connections_listing), so each import and
# each refresh cost O(connections); 1e21386 added the index. A round's schema
# is "shipped" (the database as keyrelay's migrations make it) or
# "lookup-index" (plus CREATE INDEX bench_connections_lookup ON
# connections(project_id, integration_key, user_id), made by the benchmark),
# so that a commit without the index can be measured both ways
# (bench/results/scheduler-0c5e306.txt). The bulk import always runs with
# that index (without it, it takes over an hour at N=100,000; it is dropped
# again afterwards); the import rate as shipped is measured on
# BENCH_SCHED_IMPORT_PROBE extra connections. No keyrelay code is changed.
#
# Settings (environment):
#   BENCH_SCHED_N=100000            connections (use e.g. 2000 while developing)
#   BENCH_SCHED_ROUNDS="shipped:32 shipped:32:1000 shipped:128:1000 shipped:32:1000:strace"
#                                   rounds, SCHEMA:scheduler_concurrency[:SPREAD_MS[:strace]]
#                                   (32 is keyrelay's default concurrency; a 1000 ms
#                                   spread makes all due at once: the capacity;
#                                   strace rounds are skipped when strace is missing;
#                                   bench/results/scheduler-0c5e306.txt used
#                                   "lookup-index:32 lookup-index:32:1000 lookup-index:128:1000
#                                    lookup-index:32:1000:strace shipped:32")
#   BENCH_SCHED_INTERVAL_MS=200     scheduler_interval_ms
#   BENCH_SCHED_SPREAD_MS=60000     due times spread over this window from the restart
#                                   (the issue's "due within the same minute")
#   BENCH_SCHED_TIMEOUT=300         end a round after this many seconds, done or not
#   BENCH_SCHED_IMPORT_THREADS=8    client threads for the import
#   BENCH_SCHED_IMPORT_PROBE=300    connections imported with the schema as shipped (0: skip)
#   BENCH_SCHED_WRK_AT=20           start the storm's wrk run this many seconds in
#   BENCH_SCHED_WRK="-t2 -c16 -d10s"  wrk load (same for the idle and storm runs)
#   BENCH_SCHED_PERF=0              1: also profile keyrelay with perf (if installed)
#                                   for BENCH_SCHED_PERF_SECONDS (10) after each storm's wrk run
#   BENCH_SCHED_WAIT_IDLE=1         wait (up to 20 min) until no rustc/cargo runs
#   BENCH_KEYRELAY_BIN=PATH         measure this keyrelay binary (implies BENCH_SKIP_BUILD);
#                                   BENCH_KEYRELAY_DESC says in the report what it was built from
#   BENCH_SKIP_BUILD=1, BENCH_KEYRELAY_REF=..., BENCH_KEEP_TMP=1   as in bench/run.sh
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N="${BENCH_SCHED_N:-100000}"
# (A round that cannot finish within the timeout goes last: the tokens it
# abandons when stopped would show as reused refresh tokens in a later round.)
read -r -a ROUNDS <<<"${BENCH_SCHED_ROUNDS:-shipped:32 shipped:32:1000 shipped:128:1000 shipped:32:1000:strace}"
INTERVAL_MS="${BENCH_SCHED_INTERVAL_MS:-200}"
SPREAD_MS="${BENCH_SCHED_SPREAD_MS:-60000}"
TIMEOUT="${BENCH_SCHED_TIMEOUT:-300}"
IMPORT_THREADS="${BENCH_SCHED_IMPORT_THREADS:-8}"
IMPORT_PROBE="${BENCH_SCHED_IMPORT_PROBE:-300}"
WRK_AT="${BENCH_SCHED_WRK_AT:-20}"
read -r -a WRK_LOAD <<<"${BENCH_SCHED_WRK:--t2 -c16 -d10s}"
PERF="${BENCH_SCHED_PERF:-0}"
PERF_SECONDS="${BENCH_SCHED_PERF_SECONDS:-10}"
TOOL="$BENCH_DIR/sched_tool.py"
OAUTH_INTEGRATION=sched   # the N refreshable connections
LOOKUP_INDEX=bench_connections_lookup
RAW_OUT="$RESULTS_DIR/scheduler.txt"
REPORT_OUT="$REPO_ROOT/docs/scheduler-benchmark.md"
if [[ -n "${BENCH_KEYRELAY_BIN:-}" ]]; then
    KEYRELAY_BIN="$BENCH_KEYRELAY_BIN"
    export BENCH_SKIP_BUILD=1
fi
# --- helpers -------------------------------------------------------------------

# sqlite3 (for the due times and the checks), wrk and curl; only when missing.
install_sched_deps() {
    local missing=()
    command -v sqlite3 >/dev/null || missing+=(sqlite3)
    command -v wrk >/dev/null || missing+=(wrk)
    command -v curl >/dev/null || missing+=(curl)
    command -v python3 >/dev/null || missing+=(python3)
    if ((${#missing[@]})); then
        log "installing ${missing[*]}"
        local sudo=""
        [[ $(id -u) -ne 0 ]] && sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# A compiler running next to the benchmark halves the CPU it gets: wait for
# it to finish (checking every 15 s, up to 20 minutes), then go on regardless
# and let the load average in the report tell.
wait_for_idle_machine() {
    [[ "${BENCH_SCHED_WAIT_IDLE:-1}" == 1 ]] || return 0
    local waited=0
    while pgrep -x rustc >/dev/null || pgrep -x cargo >/dev/null; do
        if ((waited >= 1200)); then
            log "a compiler is still running after 20 min; measuring anyway (see the load average)"
            return 0
        fi
        ((waited == 0)) && log "waiting for rustc/cargo to finish (up to 20 min)"
        sleep 15
        waited=$((waited + 15))
    done
    ((waited == 0)) || log "no compiler running any more (waited ${waited} s)"
}

# Removes a pid from BENCH_PIDS (once it has been stopped or has exited).
forget_pid() {
    local keep=() pid
    for pid in "${BENCH_PIDS[@]}"; do
        [[ "$pid" == "$1" ]] || keep+=("$pid")
    done
    BENCH_PIDS=("${keep[@]}")
}

# Stops keyrelay (SIGTERM, then SIGKILL after 10 s) and forgets its pid, so
# that the database can be changed under it and it can be restarted.
stop_keyrelay() {
    kill "$KEYRELAY_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$KEYRELAY_PID" 2>/dev/null || break
        sleep 0.2
    done
    kill -9 "$KEYRELAY_PID" 2>/dev/null || true
    wait "$KEYRELAY_PID" 2>/dev/null || true
    forget_pid "$KEYRELAY_PID"
}

# keyrelay with the given scheduler settings (a config file through
# KEYRELAY_CONFIG; the rest as lib.sh's start_keyrelay sets it).
start_keyrelay_with() {
    local scheduler="$1" concurrency="${2:-32}"
    cat >"$BENCH_TMP/keyrelay.toml" <<EOF
# Generated by bench/scheduler.sh.
scheduler = $scheduler
scheduler_interval_ms = $INTERVAL_MS
scheduler_concurrency = $concurrency
EOF
    KEYRELAY_CONFIG="$BENCH_TMP/keyrelay.toml" start_keyrelay
}

# sqlite3 on keyrelay's database: db [OPTIONS...] SQL
db() { sqlite3 -batch -bail "${@:1:$#-1}" "$DB" "${@: -1}"; }

# SQL for the unix time (with fraction) of an RFC 3339 text column.
epoch_of() { echo "(julianday($1) - 2440587.5) * 86400.0"; }

# Adds ("lookup-index") or removes ("shipped") the connection lookup index
# that keyrelay's schema lacks (see the top of this file). keyrelay must be
# stopped.
set_schema() {
    case "$1" in
        shipped) db "DROP INDEX IF EXISTS $LOOKUP_INDEX;" ;;
        lookup-index) db "CREATE INDEX IF NOT EXISTS $LOOKUP_INDEX ON connections(project_id, integration_key, user_id);" ;;
        *) die "unknown schema $1 (shipped or lookup-index)" ;;
    esac
}

provider_refreshed() {
    curl -sf "http://127.0.0.1:$UPSTREAM_PORT/stats" | json_field refresh_grants
}

# One wrk run against keyrelay's proxy, appended to the raw output as a
# "### wrk phase=…" block with its start and end times.
proxy_wrk() {
    local phase="$1" out="$BENCH_TMP/wrk-$1.txt" start end
    local cmd=(wrk "${WRK_LOAD[@]}" --latency "${KR_HEADERS[@]}" "$KEYRELAY_URL/v1/proxy/check-auth")
    log "wrk ($phase): ${WRK_LOAD[*]}"
    start=$(date +%s.%N)
    "${cmd[@]}" >"$out" 2>&1 || die "wrk failed: $(cat "$out")"
    end=$(date +%s.%N)
    {
        echo "### wrk phase=$phase"
        # The command as run (secrets replaced), quoted as lib.sh's callers do.
        echo "\$ $(quote_args "${cmd[@]}" | sed "s/$SECRET_KEY/kr_sk_<secret>/g")"
        echo "start=$start"
        echo "end=$end"
        cat "$out"
    } >>"$RAW"
    grep -E 'Requests/sec|Non-2xx|Socket errors' "$out" >&2 || true
}

# The arguments as one line a shell would read back: each single-quoted
# unless it is plain.
quote_args() {
    local out="" a
    for a in "$@"; do
        if [[ "$a" =~ ^[A-Za-z0-9_./:=@,+-]+$ ]]; then out+="$a "; else out+="'$a' "; fi
    done
    printf '%s\n' "${out% }"
}

# keyrelay's warnings and errors (JSON log lines), counted by level and message.
log_summary() {
    python3 - "$1" <<'EOF'
import collections, json, sys
counts = collections.Counter()
for line in open(sys.argv[1], errors="replace"):
    try:
        rec = json.loads(line)
    except ValueError:
        # The startup banner is plain text; anything else (a panic) counts.
        if "panic" in line or "error" in line.lower():
            counts[("RAW", line.strip()[:160])] += 1
        continue
    fields = rec.get("fields", {})
    msg = fields.get("message", "")
    if "summary" in fields:  # sqlx's slow statement warnings
        msg += f" [{fields['summary']}]"
    if "error" in fields:
        msg += f" (error: {str(fields['error'])[:120]})"
    if rec.get("level") in ("WARN", "ERROR"):
        counts[(rec.get("level"), msg)] += 1
for (level, msg), n in counts.most_common():
    print(f"{n:7d} x {level} {msg}")
EOF
}

# --- 0. preparation --------------------------------------------------------------

bench_init
install_sched_deps
build_all
if [[ -n "${BENCH_KEYRELAY_BIN:-}" ]]; then
    KEYRELAY_DESC="${BENCH_KEYRELAY_DESC:-$("$KEYRELAY_BIN" --version 2>/dev/null | head -1)} (binary given as BENCH_KEYRELAY_BIN, built $(date -u -r "$BENCH_KEYRELAY_BIN" +%Y-%m-%dT%H:%MZ))"
fi
DB="$BENCH_TMP/keyrelay-data/keyrelay.db"
SNAP="$BENCH_TMP/snapshot.db"   # per-round "before" state, outside keyrelay's database
RAW="$BENCH_TMP/scheduler.txt"

wait_for_idle_machine   # the import rate is reported too
LOADAVG_START="$(cut -d' ' -f1-3 /proc/loadavg)"
start_upstream
curl -sf "http://127.0.0.1:$UPSTREAM_PORT/stats" >/dev/null \
    || die "bench-upstream has no /stats: rebuild it (cargo build --release --manifest-path bench/upstream/Cargo.toml)"

# --- 1. import with the scheduler off ------------------------------------------------

# A first start creates the database; the lookup index goes in while keyrelay
# is stopped, so the bulk import does not scan the table for every row.
start_keyrelay_with false
stop_keyrelay
set_schema lookup-index
start_keyrelay_with false
setup_keyrelay          # project, api_key integration "bench" + connection u1 (the proxy runs)
check_keyrelay_proxy
((KEYRELAY_PROXY_OK)) || die "keyrelay has no proxy: the proxy runs cannot be made"
base="http://127.0.0.1:$UPSTREAM_PORT"
api_post "$SECRET_KEY" /v1/integrations "{\"key\":\"$OAUTH_INTEGRATION\",\"provider\":{\"auth_mode\":\"oauth2\",\"authorization_endpoint\":\"$base/authorize\",\"token_endpoint\":\"$base/token\",\"api_base_url\":\"$base\"},\"client_id\":\"c\",\"client_secret\":\"s\"}" >/dev/null \
    || die "could not create the oauth2 integration"

log "importing $N connections ($IMPORT_THREADS threads, with the lookup index)"
IMPORT_JSON=$(python3 "$TOOL" import --url "$KEYRELAY_URL" --key "$SECRET_KEY" \
    --integration "$OAUTH_INTEGRATION" --n "$N" --threads "$IMPORT_THREADS") \
    || die "the import failed: $IMPORT_JSON"
log "import: $IMPORT_JSON"

# The import rate with the schema as shipped, at N connections: a few more
# (api_key connections of the proxy's integration, never refreshed).
stop_keyrelay
set_schema shipped
start_keyrelay_with false
# How SQLite runs keyrelay's connection lookup, as shipped (for the report).
lookup_plan() {
    db "EXPLAIN QUERY PLAN SELECT * FROM connections
        WHERE project_id = 'p' AND integration_key = 'i' AND user_id = 'u';" | tail -1 | sed -E 's/^[|`-]+//'
}
SHIPPED_PLAN=$(lookup_plan)
PROBE_JSON='{}'
if ((IMPORT_PROBE > 0)); then
    log "importing $IMPORT_PROBE more without the lookup index (the schema as shipped)"
    PROBE_JSON=$(python3 "$TOOL" import --url "$KEYRELAY_URL" --key "$SECRET_KEY" --api-key \
        --integration bench --user-prefix probe --n "$IMPORT_PROBE" --threads "$IMPORT_THREADS") \
        || die "the probe import failed: $PROBE_JSON"
    log "import probe: $PROBE_JSON"
fi

wait_for_idle_machine

{
    echo "# date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "# nproc: $(nproc)"
    echo "# cpu: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "# mem: $(awk '/^MemTotal/ {printf "%.0f GiB RAM", $2 / 1048576}' /proc/meminfo)"
    echo "# kernel: $(uname -srm)"
    echo "# os: $(. /etc/os-release && echo "$PRETTY_NAME")"
    echo "# data_fs: $(df -T "$BENCH_TMP" | awk 'NR == 2 {print $2}') ($BENCH_TMP)"
    echo "# wrk: $(wrk -v 2>&1 | head -1 | sed 's/ Copyright.*//')"
    echo "# sqlite3_cli: $(sqlite3 --version | cut -d' ' -f1)"
    echo "# keyrelay_commit: $KEYRELAY_DESC"
    echo "# head: $(git -C "$REPO_ROOT" rev-parse --short HEAD)"
    echo "# settings: N=$N rounds=[${ROUNDS[*]}] interval_ms=$INTERVAL_MS spread_ms=$SPREAD_MS timeout=${TIMEOUT}s wrk=[${WRK_LOAD[*]}]"
    echo "# n: $N"
    echo "# spread_ms: $SPREAD_MS"
    echo "# loadavg_start: $LOADAVG_START"
    echo "# timeout: $TIMEOUT"
    echo "# wrk_at: $WRK_AT"
    echo "# perf_seconds: $PERF_SECONDS"
    echo "# shipped_lookup_plan: $SHIPPED_PLAN"
    echo "# db_size_mib: $(du -cm "$DB"* | awk 'END {print $1}')"
    echo "# loadavg_before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "### import"
    python3 -c 'import json,sys; [print(f"{k}={v}") for k, v in json.loads(sys.argv[1]).items()]' "$IMPORT_JSON"
    echo "### import-probe"
    python3 -c 'import json,sys; [print(f"{k}={v}") for k, v in json.loads(sys.argv[1]).items()]' "$PROBE_JSON"
} >"$RAW"

# Proxy traffic with the scheduler off, the baselines: one per schema, as
# the proxy looks its connection up again whenever its 10-second cache entry
# lapses (keyrelay runs as shipped here, after the probe).
wrk -t2 -c16 -d3s "${KR_HEADERS[@]}" "$KEYRELAY_URL/v1/proxy/check-auth" >/dev/null
proxy_wrk idle-shipped
stop_keyrelay
set_schema lookup-index
start_keyrelay_with false
wrk -t2 -c16 -d3s "${KR_HEADERS[@]}" "$KEYRELAY_URL/v1/proxy/check-auth" >/dev/null
proxy_wrk idle-lookup-index

# --- 2. the storms ----------------------------------------------------------------------

round=0
for spec in "${ROUNDS[@]}"; do
    round=$((round + 1))
    IFS=: read -r schema concurrency spread trace <<<"$spec"
    spread="${spread:-$SPREAD_MS}"
    trace="${trace:-}"
    if [[ "$trace" == strace ]] && ! command -v strace >/dev/null; then
        log "round $spec skipped: strace is not installed"
        round=$((round - 1))
        continue
    fi
    ((spread > 0)) || die "round $spec: the spread must be at least 1 ms"
    wait_for_idle_machine   # a build started meanwhile would skew the round
    stop_keyrelay
    set_schema "$schema"

    # Every oauth2 connection falls due within the next $spread ms; the state
    # before the round is kept aside to check the round against.
    now_ms=$(date +%s%3N)
    db "UPDATE connections SET next_refresh_at = $now_ms + abs(random()) % $spread,
           lease_owner = NULL, lease_until = NULL
        WHERE integration_key = '$OAUTH_INTEGRATION';"
    rm -f "$SNAP"
    db "ATTACH '$SNAP' AS snap;
        CREATE TABLE snap.before AS SELECT id, user_id, refresh_count FROM connections
          WHERE integration_key = '$OAUTH_INTEGRATION';
        CREATE UNIQUE INDEX snap.before_id ON before(id);"
    events_rowid=$(db "SELECT coalesce(max(rowid), 0) FROM events;")
    baseline=$(provider_refreshed)
    reused_before=$(curl -sf "http://127.0.0.1:$UPSTREAM_PORT/stats" | json_field reused_refresh_tokens)

    log "round $round ($schema): $N connections due within $spread ms, scheduler_concurrency=$concurrency"
    started=$(date +%s.%N)   # the scheduler's first tick comes right after the start
    start_keyrelay_with true "$concurrency"
    rss_before=$(rss_kib "$KEYRELAY_PID")
    python3 "$TOOL" sample --provider "http://127.0.0.1:$UPSTREAM_PORT" \
        --keyrelay-pid "$KEYRELAY_PID" --provider-pid "$UPSTREAM_PID" \
        --baseline "$baseline" --target "$N" --timeout "$TIMEOUT" \
        --out "$BENCH_TMP/samples-$round.csv" &
    SAMPLER_PID=$!
    BENCH_PIDS+=("$SAMPLER_PID")

    # Proxy traffic in the middle of the storm, then (optionally) a profile.
    sleep "$WRK_AT"
    proxy_wrk "storm-$round"
    if [[ "$PERF" == 1 ]] && command -v perf >/dev/null && kill -0 "$SAMPLER_PID" 2>/dev/null; then
        log "perf record of keyrelay for ${PERF_SECONDS} s"
        perf record -q -F 499 -p "$KEYRELAY_PID" -o "$BENCH_TMP/perf-$round.data" -- sleep "$PERF_SECONDS" \
            >/dev/null 2>&1 || log "perf record failed"
    fi
    # Where the refreshes wait: a count of keyrelay's system calls, then
    # which threads sleep, and for how long (SQLite's busy handler sleeps).
    if [[ "$trace" == strace ]] && kill -0 "$SAMPLER_PID" 2>/dev/null; then
        log "strace of keyrelay for 5 s"
        for t in /proc/"$KEYRELAY_PID"/task/*; do echo "${t##*/} $(cat "$t/comm")"; done >"$BENCH_TMP/tids-$round.txt"
        timeout -s INT 3 strace -f -c -p "$KEYRELAY_PID" -o "$BENCH_TMP/strace-c-$round.txt" 2>/dev/null || true
        timeout -s INT 2 strace -f -e trace=clock_nanosleep,nanosleep -p "$KEYRELAY_PID" \
            -o "$BENCH_TMP/strace-sleep-$round.txt" 2>/dev/null || true
    fi

    sampler_rc=0
    wait "$SAMPLER_PID" || sampler_rc=$?
    forget_pid "$SAMPLER_PID"
    complete=1
    if ((sampler_rc != 0)); then
        complete=0
        log "round $round ended before all connections were refreshed (sampler exit $sampler_rc)"
    else
        # The provider counts a refresh before keyrelay commits it: let the
        # last commits land before keyrelay is stopped.
        for _ in $(seq 1 50); do
            left=$(db "ATTACH '$SNAP' AS snap;
                       SELECT count(*) FROM connections c JOIN snap.before b USING (id)
                       WHERE c.refresh_count = b.refresh_count;")
            ((left == 0)) && break
            sleep 0.2
        done
    fi
    # Stopped before the checks, so that nothing changes under them (a round
    # that timed out is stopped mid-storm: its in-flight refreshes finish or
    # are abandoned with their leases, which then lapse).
    stop_keyrelay
    stats=$(curl -sf "http://127.0.0.1:$UPSTREAM_PORT/stats")
    provider_done=$(( $(json_field refresh_grants <<<"$stats") - baseline ))
    reused=$(( $(json_field reused_refresh_tokens <<<"$stats") - reused_before ))
    ended_ms=$(date +%s%3N)

    # The round's refreshes: d = refresh_count now minus before the round.
    check=$(db -line "
        ATTACH '$SNAP' AS snap;
        CREATE TEMP VIEW d AS
          SELECT c.*, c.refresh_count - b.refresh_count AS d
          FROM connections c JOIN snap.before b USING (id);
        SELECT
          sum(d = 1) AS refreshed_once,
          sum(d = 0) AS not_refreshed,
          sum(d > 1 OR d < 0) AS refreshed_more,
          sum(lease_owner IS NOT NULL) AS leases_left,
          sum(refresh_failures > 0 OR last_error IS NOT NULL) AS failures,
          sum(status <> 'active') AS not_active,
          printf('%.3f', min(CASE WHEN d > 0 THEN $(epoch_of last_refresh_at) END)) AS first_refresh,
          printf('%.3f', max(CASE WHEN d > 0 THEN $(epoch_of last_refresh_at) END)) AS last_refresh,
          (min(CASE WHEN d > 0 THEN next_refresh_at END) - $ended_ms) / 1000 AS next_min_s,
          (max(CASE WHEN d > 0 THEN next_refresh_at END) - $ended_ms) / 1000 AS next_max_s
        FROM d;
        SELECT count(*) AS events_refreshed FROM events
          WHERE rowid > $events_rowid AND type = 'refreshed' AND integration_key = '$OAUTH_INTEGRATION';
        SELECT count(*) AS events_wrong FROM d LEFT JOIN (
            SELECT user_id, count(*) AS n FROM events
            WHERE rowid > $events_rowid AND type = 'refreshed' AND integration_key = '$OAUTH_INTEGRATION'
            GROUP BY user_id) e USING (user_id)
          WHERE coalesce(e.n, 0) <> d.d;
        SELECT count(*) AS events_other FROM events
          WHERE rowid > $events_rowid AND type <> 'refreshed' AND integration_key = '$OAUTH_INTEGRATION';" \
        | sed -nE 's/^ *([a-z_]+) = (.*)$/\1=\2/p')
    value() { sed -n "s/^$1=//p" <<<"$check"; }

    cp "$BENCH_TMP/keyrelay.log" "$BENCH_TMP/keyrelay-round-$round.log"
    log_counts=$(log_summary "$BENCH_TMP/keyrelay-round-$round.log")
    # Log lines by level (log_counts is "COUNT x LEVEL message" per message).
    log_warn=$(awk '$3 == "WARN" {s += $1} END {print s + 0}' <<<"$log_counts")
    log_error=$(awk '$3 == "ERROR" || $3 == "RAW" {s += $1} END {print s + 0}' <<<"$log_counts")

    # Correct whether or not the round completed: nothing refreshed twice,
    # one event per refresh, no failure, no refresh token used twice; when
    # complete, also: every one refreshed, the provider saw exactly those, no
    # lease left. A round stopped mid-storm may leave tokens the provider
    # issued but keyrelay never stored ("lost"), reported on their own.
    ok=1
    [[ "$(value refreshed_more)" == 0 && "$(value events_wrong)" == 0 && "$(value failures)" == 0 ]] || ok=0
    [[ "$(value events_refreshed)" == "$(value refreshed_once)" && "$reused" == 0 ]] || ok=0
    lost=$((provider_done - $(value refreshed_once)))
    if ((complete)); then
        [[ "$(value refreshed_once)" == "$N" && "$lost" == 0 && "$(value leases_left)" == 0 ]] || ok=0
    else
        ((lost >= 0)) || ok=0
    fi
    if ((ok)); then
        log "round $round checks passed ($(value refreshed_once) of $N refreshed)"
    else
        log "round $round: CHECKS FAILED: $(tr '\n' ' ' <<<"$check") provider=$provider_done reused=$reused"
    fi

    {
        echo "### round r=$round"
        echo "n=$N"
        echo "schema=$schema"
        echo "concurrency=$concurrency"
        echo "spread_ms=$spread"
        echo "traced=${trace:+1}"
        echo "interval_ms=$INTERVAL_MS"
        echo "due_from=$(awk -v ms="$now_ms" 'BEGIN {printf "%.3f", ms / 1000}')"
        echo "keyrelay_started=$started"
        echo "rss_before_kib=$rss_before"
        echo "complete=$complete"
        echo "provider_refreshed=$provider_done"
        echo "reused_refresh_tokens=$reused"
        echo "lost_at_stop=$lost"
        echo "$check"
        echo "log_warn=$log_warn"
        echo "log_error=$log_error"
        echo "check_ok=$ok"
        echo "### samples r=$round"
        cat "$BENCH_TMP/samples-$round.csv"
        echo "### log r=$round"
        echo "$log_counts"
        if [[ -f "$BENCH_TMP/perf-$round.data" ]]; then
            echo "### perf r=$round"
            # Samples taken, then self time by thread (sqlx runs SQLite on its
            # own worker threads), by library, and by symbol.
            perf report -i "$BENCH_TMP/perf-$round.data" --stdio --no-children --sort comm 2>/dev/null \
                | grep -E '^# Samples' | sed -E 's/^# //' || true
            perf report -i "$BENCH_TMP/perf-$round.data" --stdio --no-children --sort comm 2>/dev/null \
                | grep -E '^ +[0-9]' | sed -E 's/ +$//' | head -6 || true
            echo
            perf report -i "$BENCH_TMP/perf-$round.data" --stdio --no-children --sort dso 2>/dev/null \
                | grep -E '^ +[0-9]' | sed -E 's/ +$//' | head -6 || true
            echo
            perf report -i "$BENCH_TMP/perf-$round.data" --stdio --no-children --sort dso,symbol \
                --percent-limit 0.7 2>/dev/null | grep -E '^ +[0-9]' | sed -E 's/[ -]+$//' | head -40 || true
        fi
        if [[ -f "$BENCH_TMP/strace-c-$round.txt" ]]; then
            echo "### strace r=$round"
            # strace -c's table (its top rows), then the sleeps by thread
            # name and by length.
            grep -E '^ *[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9]+' "$BENCH_TMP/strace-c-$round.txt" | head -8 || true
            echo
            python3 - "$BENCH_TMP/tids-$round.txt" "$BENCH_TMP/strace-sleep-$round.txt" <<'PY'
import collections, re, sys
names = dict(line.split(None, 1) for line in open(sys.argv[1]).read().splitlines() if line.strip())
by_thread, by_len = collections.Counter(), collections.Counter()
for line in open(sys.argv[2], errors="replace"):
    m = re.match(r"^(\d+)\s+clock_nanosleep\(.*tv_sec=(\d+), tv_nsec=(\d+)", line) or \
        re.match(r"^(\d+)\s+nanosleep\(.*tv_sec=(\d+), tv_nsec=(\d+)", line)
    if m:
        by_thread[names.get(m.group(1), "?").strip()] += 1
        by_len[int(m.group(2)) * 1000 + int(m.group(3)) / 1e6] += 1
print("sleeps in 2 s by thread: " + ", ".join(f"{t} {n}" for t, n in by_thread.most_common()))
print("sleeps by length (ms): " + ", ".join(f"{l:g} x{n}" for l, n in sorted(by_len.items())))
PY
        fi
    } >>"$RAW"
done

# --- 3. proxy traffic again, scheduler on and idle; the report ------------------------------

# Nothing due (a round that timed out left some): the scheduler only ticks.
now_ms=$(date +%s%3N)
db "UPDATE connections SET next_refresh_at = $now_ms + 3600000
    WHERE integration_key = '$OAUTH_INTEGRATION' AND next_refresh_at < $now_ms + 120000;"
start_keyrelay_with true 32
wrk -t2 -c16 -d3s "${KR_HEADERS[@]}" "$KEYRELAY_URL/v1/proxy/check-auth" >/dev/null
proxy_wrk "idle-after-$schema"
echo "# loadavg_after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RAW"

cp "$RAW" "$RAW_OUT"
python3 "$TOOL" report "$RAW_OUT" --out "$REPORT_OUT"
log "wrote $REPORT_OUT and $RAW_OUT"
