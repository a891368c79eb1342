# Shared helpers for bench/run.sh and bench/stream.sh. Source it; do not run it.
#
# Everything started here is recorded in BENCH_PIDS and stopped by
# bench_cleanup (installed as an EXIT trap by bench_init), so an interrupted
# run never leaves an upstream, nginx or keyrelay listening behind.

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$BENCH_DIR/.." && pwd)"
RESULTS_DIR="$BENCH_DIR/results"
UPSTREAM_BIN="$BENCH_DIR/upstream/target/release/bench-upstream"
# The keyrelay binary; CARGO_TARGET_DIR is honoured like cargo does.
KEYRELAY_BIN="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/keyrelay"

# The credential the "provider" expects. nginx is configured with it, keyrelay
# holds it in the benchmark connection; /check-auth proves both stamp it.
PROVIDER_TOKEN="bench-provider-token-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"

BENCH_PIDS=()
BENCH_TMP=""

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

bench_cleanup() {
    local pid
    # Stop in reverse start order (keyrelay before its upstream).
    for ((i = ${#BENCH_PIDS[@]} - 1; i >= 0; i--)); do
        pid="${BENCH_PIDS[$i]}"
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${BENCH_PIDS[@]}"; do
        # Give each a moment to exit cleanly, then insist.
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    BENCH_PIDS=()
    if [[ -n "$BENCH_TMP" && -d "$BENCH_TMP" && -z "${BENCH_KEEP_TMP:-}" ]]; then
        rm -rf "$BENCH_TMP"
    fi
}

bench_init() {
    BENCH_TMP="$(mktemp -d /tmp/keyrelay-bench.XXXXXX)"
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
    mkdir -p "$RESULTS_DIR"
}

# A free TCP port on 127.0.0.1 (the kernel picks one; tiny race, fine here).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Wait until something accepts connections on 127.0.0.1:$1 (the process $2
# must stay alive); on failure show the end of its log ($4).
wait_port() {
    local port="$1" pid="$2" what="$3" logfile="${4:-}"
    for _ in $(seq 1 300); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then
            [[ -n "$logfile" ]] && tail -20 "$logfile" >&2
            die "$what exited before listening on $port"
        fi
        sleep 0.1
    done
    [[ -n "$logfile" ]] && tail -20 "$logfile" >&2
    die "$what did not listen on $port within 30 s"
}

# --- installation and builds -------------------------------------------------

# nginx and wrk are the comparison and the load generator; curl drives the
# setup. Only installed when missing, so re-runs are fast and offline-safe.
install_deps() {
    local missing=()
    command -v nginx >/dev/null || missing+=(nginx-light)
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

# Builds keyrelay (release) and the upstream. By default keyrelay is built
# from the working tree. BENCH_KEYRELAY_REF=<commit> builds that commit instead,
# from a `git archive` export (the working tree is untouched), e.g. to measure
# the last commit while the working tree does not compile, or to compare two
# commits. The shared target/ dir is used so dependencies are not rebuilt; the
# binary is copied out so the working tree's target/release/keyrelay is the
# only thing overwritten.
build_all() {
    local ref="${BENCH_KEYRELAY_REF:-}" src="$REPO_ROOT"
    if [[ -n "$ref" ]]; then
        local sha
        sha=$(git -C "$REPO_ROOT" rev-parse --short "$ref") || die "unknown commit $ref"
        src="$BENCH_TMP/keyrelay-src"
        mkdir -p "$src"
        git -C "$REPO_ROOT" archive "$sha" | tar -x -C "$src"
        KEYRELAY_DESC="$sha (BENCH_KEYRELAY_REF=$ref)"
    else
        KEYRELAY_DESC="$(git -C "$REPO_ROOT" rev-parse --short HEAD)"
        git -C "$REPO_ROOT" diff --quiet HEAD -- crates Cargo.lock Cargo.toml 2>/dev/null \
            || KEYRELAY_DESC+=" + uncommitted changes in the working tree"
    fi
    if [[ -n "${BENCH_SKIP_BUILD:-}" ]]; then
        log "BENCH_SKIP_BUILD set: using existing binaries"
        # Which commit it came from is unknown: say so rather than guess.
        KEYRELAY_DESC="an existing binary (BENCH_SKIP_BUILD; built $(date -u -r "$KEYRELAY_BIN" +%Y-%m-%dT%H:%MZ 2>/dev/null || echo '?'))"
    else
        log "building keyrelay (release) from ${ref:-the working tree}"
        (cd "$src" && CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}" cargo build --release -q -p keyrelay) \
            || die "keyrelay does not build (from ${ref:-the working tree}; BENCH_KEYRELAY_REF=HEAD measures the last commit)"
        log "building bench-upstream (release)"
        cargo build --release -q --manifest-path "$BENCH_DIR/upstream/Cargo.toml"
    fi
    [[ -x "$KEYRELAY_BIN" ]] || die "no keyrelay binary at $KEYRELAY_BIN"
    [[ -x "$UPSTREAM_BIN" ]] || die "no upstream binary at $UPSTREAM_BIN"
    # Run a private copy: a concurrent build cannot replace it mid-benchmark.
    cp "$KEYRELAY_BIN" "$BENCH_TMP/keyrelay"
    KEYRELAY_BIN="$BENCH_TMP/keyrelay"
}

# --- the three servers ---------------------------------------------------------

start_upstream() {
    UPSTREAM_PORT="$(free_port)"
    "$UPSTREAM_BIN" "$UPSTREAM_PORT" "Bearer $PROVIDER_TOKEN" 2>"$BENCH_TMP/upstream.log" &
    UPSTREAM_PID=$!
    BENCH_PIDS+=("$UPSTREAM_PID")
    wait_port "$UPSTREAM_PORT" "$UPSTREAM_PID" "upstream" "$BENCH_TMP/upstream.log"
    log "upstream on 127.0.0.1:$UPSTREAM_PORT (pid $UPSTREAM_PID)"
}

# nginx as the reference: a plain reverse proxy with pooled keep-alive
# connections to the upstream that sets the same Authorization header keyrelay
# sets. This is the cheapest a header-stamping proxy can reasonably be.
start_nginx() {
    NGINX_PORT="$(free_port)"
    local dir="$BENCH_TMP/nginx"
    mkdir -p "$dir/logs" "$dir/tmp"
    cat >"$dir/nginx.conf" <<EOF
# Generated by bench/lib.sh for one benchmark run.
worker_processes auto;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    upstream provider {
        server 127.0.0.1:$UPSTREAM_PORT;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://provider;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Authorization "Bearer $PROVIDER_TOKEN";
        }
    }
}
EOF
    # daemon off: nginx stays our child, so its pid is known and the trap stops
    # it (the master stops its workers). -e: the startup error log must not go
    # to /var/log/nginx.
    nginx -e "$dir/logs/error.log" -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' &
    NGINX_PID=$!
    BENCH_PIDS+=("$NGINX_PID")
    wait_port "$NGINX_PORT" "$NGINX_PID" "nginx" "$dir/logs/error.log"
    log "nginx on 127.0.0.1:$NGINX_PORT (pid $NGINX_PID)"
}

# keyrelay with its defaults (embedded SQLite in a fresh data dir), allowed to
# reach the loopback upstream, quiet logs so logging is not what we measure.
start_keyrelay() {
    KEYRELAY_PORT="$(free_port)"
    KEYRELAY_URL="http://127.0.0.1:$KEYRELAY_PORT"
    ADMIN_TOKEN="kr_admin_bench_$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    mkdir -p "$BENCH_TMP/keyrelay-data"
    KEYRELAY_LISTEN="127.0.0.1:$KEYRELAY_PORT" \
    KEYRELAY_PUBLIC_URL="$KEYRELAY_URL" \
    KEYRELAY_DATA_DIR="$BENCH_TMP/keyrelay-data" \
    KEYRELAY_ALLOW_LOCAL_PROVIDERS=true \
    KEYRELAY_ADMIN_TOKEN="$ADMIN_TOKEN" \
    KEYRELAY_LOG=warn \
    KEYRELAY_LOG_FORMAT=json \
        "$KEYRELAY_BIN" serve >"$BENCH_TMP/keyrelay.log" 2>&1 &
    KEYRELAY_PID=$!
    BENCH_PIDS+=("$KEYRELAY_PID")
    wait_port "$KEYRELAY_PORT" "$KEYRELAY_PID" "keyrelay" "$BENCH_TMP/keyrelay.log"
    log "keyrelay on $KEYRELAY_URL (pid $KEYRELAY_PID)"
}

# POST JSON with a bearer key; prints the body, fails loudly on non-2xx.
api_post() {
    local key="$1" path="$2" body="$3" out code
    out="$BENCH_TMP/api.out"
    code=$(curl -s -o "$out" -w '%{http_code}' -X POST -H "Authorization: Bearer $key" \
        -H 'Content-Type: application/json' --data "$body" "$KEYRELAY_URL$path")
    if [[ "$code" != 2* ]]; then
        log "POST $path -> $code: $(cat "$out")"
        return 1
    fi
    cat "$out"
}

json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# Project -> integration -> connection holding PROVIDER_TOKEN.
setup_keyrelay() {
    local base="http://127.0.0.1:$UPSTREAM_PORT"
    SECRET_KEY=$(api_post "$ADMIN_TOKEN" /v1/admin/projects '{"name":"bench"}' | json_field secret_key) \
        || die "could not create the bench project"
    # Preferred: an api_key integration whose injection writes exactly what
    # nginx writes. If validation refuses that header, fall back to an oauth2
    # integration with an imported token (default bearer injection: same header).
    if api_post "$SECRET_KEY" /v1/integrations "{\"key\":\"bench\",\"provider\":{\"auth_mode\":\"api_key\",\"api_base_url\":\"$base\",\"auth_injection\":{\"type\":\"header\",\"name\":\"Authorization\",\"format\":\"Bearer {api_key}\"}}}" >/dev/null; then
        KEYRELAY_AUTH_MODE=api_key
        api_post "$SECRET_KEY" /v1/connections "{\"integration\":\"bench\",\"user_id\":\"u1\",\"credentials\":{\"api_key\":\"$PROVIDER_TOKEN\"}}" >/dev/null \
            || die "could not import the api_key connection"
    else
        log "api_key header injection refused; using oauth2 with an imported token"
        KEYRELAY_AUTH_MODE=oauth2
        api_post "$SECRET_KEY" /v1/integrations "{\"key\":\"bench\",\"provider\":{\"auth_mode\":\"oauth2\",\"authorization_endpoint\":\"$base/a\",\"token_endpoint\":\"$base/t\",\"api_base_url\":\"$base\"},\"client_id\":\"c\",\"client_secret\":\"s\"}" >/dev/null \
            || die "could not create the oauth2 integration"
        api_post "$SECRET_KEY" /v1/connections "{\"integration\":\"bench\",\"user_id\":\"u1\",\"credentials\":{\"access_token\":\"$PROVIDER_TOKEN\",\"expires_in\":86400}}" >/dev/null \
            || die "could not import the oauth2 connection"
    fi
    KR_HEADERS=(-H "Authorization: Bearer $SECRET_KEY" -H "Keyrelay-Integration: bench" -H "Keyrelay-User: u1")
    log "keyrelay set up: project, integration 'bench' ($KEYRELAY_AUTH_MODE), connection u1"
}

# Does keyrelay have a working proxy? Sets KEYRELAY_PROXY_OK=1/0 and
# KEYRELAY_PROXY_NOTE. A 404 without a Keyrelay-Error header is the router's
# "no such route": the proxy has not landed yet, which is not a failure of the
# benchmark. Anything else but 200 means keyrelay did not stamp the header.
check_keyrelay_proxy() {
    local hdrs="$BENCH_TMP/kr.h" body="$BENCH_TMP/kr.b" code
    code=$(curl -s -D "$hdrs" -o "$body" -w '%{http_code}' "${KR_HEADERS[@]}" "$KEYRELAY_URL/v1/proxy/check-auth")
    if [[ "$code" == 200 ]]; then
        KEYRELAY_PROXY_OK=1
        KEYRELAY_PROXY_NOTE="GET /v1/proxy/check-auth -> 200: keyrelay stamps the provider's Authorization header"
    elif [[ "$code" == 404 ]] && ! grep -qi '^keyrelay-error:' "$hdrs"; then
        KEYRELAY_PROXY_OK=0
        KEYRELAY_PROXY_NOTE="keyrelay has no /v1/proxy route yet (404 from the router): keyrelay not measured"
        if [[ -n "${BENCH_REQUIRE_KEYRELAY:-}" ]]; then die "$KEYRELAY_PROXY_NOTE"; fi
    else
        die "keyrelay proxy check-auth -> $code ($(grep -i '^keyrelay-error:' "$hdrs" | tr -d '\r') $(head -c 300 "$body"))"
    fi
    log "$KEYRELAY_PROXY_NOTE"
}

# VmRSS of a pid in KiB.
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
