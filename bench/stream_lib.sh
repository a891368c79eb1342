# The streaming memory test; sourced by run.sh (servers already running) and
# by stream.sh (which starts them). Needs lib.sh's variables: UPSTREAM_PORT,
# KEYRELAY_URL, KEYRELAY_PID, KR_HEADERS, PROVIDER_TOKEN, BENCH_TMP.
#
# Why: a proxy that buffers bodies instead of streaming them grows by the body
# size. Sending 1 GiB each way while sampling keyrelay's RSS every 100 ms shows
# whether memory stays flat (streaming) or follows the body (buffering).

STREAM_BYTES="${BENCH_STREAM_BYTES:-1073741824}"

# Sample VmRSS of $1 every 100 ms until file $2 exists; write the peak (KiB) to $3.
# Reads /proc with the shell's own `read`, so sampling forks nothing but sleep.
sample_peak_rss() {
    local pid="$1" stop="$2" out="$3" peak=0 k v
    while [[ ! -e "$stop" ]]; do
        while read -r k v _; do
            if [[ "$k" == VmRSS: ]] && ((v > peak)); then peak=$v; fi
        done <"/proc/$pid/status" 2>/dev/null || break
        sleep 0.1
    done
    echo "$peak" >"$out"
}

# One transfer: $1 name, $2 via (direct|keyrelay), then the curl arguments.
# Appends a "stream:" line to $STREAM_FILE.
stream_one() {
    local name="$1" via="$2"; shift 2
    local stop="$BENCH_TMP/stream.stop" peakf="$BENCH_TMP/stream.peak" body="$BENCH_TMP/stream.body"
    local base w status down up bytes secs peak=0 sampler=""
    rm -f "$stop" "$peakf"
    base=$(rss_kib "$KEYRELAY_PID")
    if [[ "$via" == keyrelay ]]; then
        sample_peak_rss "$KEYRELAY_PID" "$stop" "$peakf" &
        sampler=$!
    fi
    log "stream: $name via $via ($STREAM_BYTES bytes)"
    # -o: the download goes to /dev/null (counted by curl); the upload's answer
    # (the sink's byte count) goes to a file.
    w=$(curl -s -o "$body" -w '%{http_code} %{size_download} %{size_upload} %{time_total}' "$@") || true
    touch "$stop"
    if [[ -n "$sampler" ]]; then wait "$sampler" || true; peak=$(cat "$peakf"); fi
    read -r status down up secs <<<"$w"
    if [[ "$name" == download ]]; then
        bytes="$down"
    else
        # What the upstream really received, not what curl thinks it sent.
        bytes=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("bytes", 0))' "$body" 2>/dev/null || echo 0)
    fi
    echo "stream: name=$name via=$via status=$status bytes=$bytes expected=$STREAM_BYTES seconds=$secs rss_before_kib=$base peak_rss_kib=$peak" >>"$STREAM_FILE"
    [[ "$status" == 200 && "$bytes" == "$STREAM_BYTES" ]] || log "stream: $name via $via: status $status, $bytes of $STREAM_BYTES bytes"
}

measure_stream() {
    STREAM_FILE="$1"
    local up="http://127.0.0.1:$UPSTREAM_PORT" kr="$KEYRELAY_URL/v1/proxy"
    {
        echo "# stream_date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "# stream_bytes: $STREAM_BYTES"
        echo "# stream_keyrelay_commit: $KEYRELAY_DESC"
    } >"$STREAM_FILE"
    # Downloads: the upstream streams zeros in 64 KiB chunks (with Content-Length).
    stream_one download direct -H "Authorization: Bearer $PROVIDER_TOKEN" "$up/bytes/$STREAM_BYTES"
    stream_one download keyrelay "${KR_HEADERS[@]}" "$kr/bytes/$STREAM_BYTES"
    # Uploads: a pipe, so curl sends it chunked (no Content-Length) and never
    # holds it; "Expect:" stops curl waiting for a 100-continue.
    stream_one upload direct -T - -X POST -H 'Expect:' -H 'Content-Type: application/octet-stream' \
        -H "Authorization: Bearer $PROVIDER_TOKEN" "$up/sink" < <(head -c "$STREAM_BYTES" /dev/zero)
    stream_one upload keyrelay -T - -X POST -H 'Expect:' -H 'Content-Type: application/octet-stream' \
        "${KR_HEADERS[@]}" "$kr/sink" < <(head -c "$STREAM_BYTES" /dev/zero)
    echo "# keyrelay_rss_after_stream_kib: $(rss_kib "$KEYRELAY_PID")" >>"$STREAM_FILE"
}
