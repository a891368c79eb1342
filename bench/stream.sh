#!/usr/bin/env bash
# The streaming memory test on its own:  bash bench/stream.sh
# (bench/run.sh runs it too, after the wrk runs, unless BENCH_STREAM=0.)
#
# Starts the upstream and keyrelay, sends BENCH_STREAM_BYTES (default 1 GiB)
# through keyrelay's proxy each way while sampling keyrelay's RSS every 100 ms,
# writes bench/results/stream.txt and regenerates docs/benchmark.md from it and
# the last bench/results/latest.txt.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$BENCH_DIR/stream_lib.sh"

bench_init
install_deps
build_all
start_upstream
start_keyrelay
setup_keyrelay
check_keyrelay_proxy
((KEYRELAY_PROXY_OK)) || die "keyrelay has no proxy yet: nothing to stream through"

measure_stream "$RESULTS_DIR/stream.txt"

if [[ -f "$RESULTS_DIR/latest.txt" ]]; then
    python3 "$BENCH_DIR/report.py" "$RESULTS_DIR/latest.txt" --stream "$RESULTS_DIR/stream.txt" \
        --out "$REPO_ROOT/docs/benchmark.md"
    log "updated docs/benchmark.md"
else
    cat "$RESULTS_DIR/stream.txt"
    log "no bench/results/latest.txt yet: run bench/run.sh for the full report"
fi
