#!/usr/bin/env python3
"""A real, independently written OAuth 1.0a provider (Python's oauthlib) on
127.0.0.1 for keyrelay's tests. No browser: the authorization step approves
at once as the configured user.

    python server.py [--port N] [--exit-on-stdin-eof] [CONFIG_JSON]

Without CONFIG_JSON the configuration is the first line of stdin, and the
server then exits when stdin closes (so a test's child dies with the test);
--exit-on-stdin-eof does the same when the configuration is an argument.
Prints exactly one line `READY <port>` on stdout once it is listening;
everything else (the request log, errors, oauthlib's base string when a
signature does not verify) goes to stderr.

Configuration (JSON, every field optional but `clients`):
  clients: [{ consumer_key, consumer_secret,
              signature_methods: ["HMAC-SHA1", "HMAC-SHA256", "PLAINTEXT", "RSA-SHA1"],
              rsa_public_key: PEM (for RSA-SHA1) }]
  user_id, screen_name: who the authorization step approves as
                        (default "12345" and "test-user")

Endpoints:
  POST /request_token  temporary credentials (RFC 5849 §2.1), oauthlib's
                       RequestTokenEndpoint; needs oauth_callback, which must
                       be `oob` or an http(s) URL on a loopback host
  GET  /authorize?oauth_token=…
                       approves as the configured user: 302 to the callback
                       with oauth_token and oauth_verifier
                       (AuthorizationEndpoint.create_authorization_response)
  POST /access_token   token credentials (§2.3), AccessTokenEndpoint; the
                       reply adds user_id and screen_name, as X's does
  GET  /api/me         {"user_id", "screen_name"} of the token's user
  ANY  /api/echo[/…]   {"method", "path", "query", "form", "body",
                       "content_type", "user_id", "screen_name"}; query and
                       form map each name to the list of its values
  GET  /stats          counters (no authentication)
/api/* requests are verified by ResourceEndpoint; a failure is 401 with JSON
{"error", "reason", "validator_log", "base_string"} where base_string is the
signature base string oauthlib computed.
"""

import argparse
import hmac
import json
import os
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from oauthlib.oauth1 import (
    AccessTokenEndpoint,
    AuthorizationEndpoint,
    RequestTokenEndpoint,
    RequestValidator,
    ResourceEndpoint,
)
from oauthlib.oauth1.rfc5849 import errors, signature

SUPPORTED_METHODS = ("HMAC-SHA1", "HMAC-SHA256", "PLAINTEXT", "RSA-SHA1")
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
FORM = "application/x-www-form-urlencoded"
# Unreserved characters (RFC 3986): what generated keys, tokens and nonces use.
SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")


def log(message):
    sys.stderr.write(f"[oauth1] {message}\n")
    sys.stderr.flush()


def fail(message):
    log(f"fatal: {message}")
    sys.exit(1)


class Store:
    """Everything the provider knows, in memory, behind one lock."""

    def __init__(self, config):
        self.lock = threading.Lock()
        self.clients = {}
        for c in config.get("clients") or []:
            key = c.get("consumer_key")
            if not isinstance(key, str) or not key:
                fail(f"a client has no consumer_key: {c!r}")
            methods = c.get("signature_methods") or ["HMAC-SHA1"]
            unknown = [m for m in methods if m not in SUPPORTED_METHODS]
            if unknown:
                fail(f"client {key}: unsupported signature methods {unknown}")
            if "RSA-SHA1" in methods and not c.get("rsa_public_key"):
                fail(f"client {key}: RSA-SHA1 needs rsa_public_key")
            self.clients[key] = {
                "secret": c.get("consumer_secret") or "",
                "methods": list(methods),
                "rsa_public_key": c.get("rsa_public_key"),
            }
        self.user_id = str(config.get("user_id") or "12345")
        self.screen_name = str(config.get("screen_name") or "test-user")
        # token -> {client_key, secret, callback, realms, verifier}
        self.request_tokens = {}
        # token -> {client_key, secret, realms, user_id, screen_name}
        self.access_tokens = {}
        # (client_key, timestamp, nonce, token)
        self.nonces = set()
        self.stats = {
            "request_tokens_issued": 0,
            "authorizations": 0,
            "access_tokens_issued": 0,
            "resource_requests_verified": 0,
            "requests_rejected": 0,
            "nonces_rejected": 0,
        }
        self._dummy_rsa = None

    def count(self, name):
        with self.lock:
            self.stats[name] += 1

    def dummy_rsa_public_key(self):
        """A key no client holds, for RSA-SHA1 requests from unknown clients."""
        with self.lock:
            if self._dummy_rsa is None:
                from cryptography.hazmat.primitives import serialization
                from cryptography.hazmat.primitives.asymmetric import rsa

                key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                self._dummy_rsa = (
                    key.public_key()
                    .public_bytes(
                        serialization.Encoding.PEM,
                        serialization.PublicFormat.SubjectPublicKeyInfo,
                    )
                    .decode("ascii")
                )
            return self._dummy_rsa


def loopback_callback(uri):
    if uri == "oob":
        return True
    try:
        parts = urlsplit(uri)
        return parts.scheme in ("http", "https") and parts.hostname in LOOPBACK_HOSTS
    except ValueError:
        return False


class Validator(RequestValidator):
    """oauthlib's storage and policy hooks, over a Store."""

    def __init__(self, store):
        super().__init__()
        self.store = store

    # -- policy ---------------------------------------------------------------

    enforce_ssl = False  # plain http on loopback
    allowed_signature_methods = SUPPORTED_METHODS
    safe_characters = SAFE
    client_key_length = (1, 256)
    request_token_length = (20, 256)
    access_token_length = (20, 256)
    nonce_length = (8, 256)
    verifier_length = (20, 256)
    realms = []

    def check_realms(self, realms):
        return True  # any realm may be asked for (and it is granted)

    dummy_client = "dummy-client-key"
    dummy_request_token = "dummy-request-token-000000000000"
    dummy_access_token = "dummy-access-token-0000000000000"

    # -- lookups --------------------------------------------------------------

    def _client(self, client_key):
        return self.store.clients.get(client_key)

    def get_client_secret(self, client_key, request):
        client = self._client(client_key)
        return client["secret"] if client else "dummy-secret"

    def get_rsa_key(self, client_key, request):
        client = self._client(client_key)
        if client and client["rsa_public_key"]:
            return client["rsa_public_key"]
        return self.store.dummy_rsa_public_key()

    def get_request_token_secret(self, client_key, token, request):
        with self.store.lock:
            t = self.store.request_tokens.get(token)
        if t and t["client_key"] == client_key:
            return t["secret"]
        return "dummy-secret"

    def get_access_token_secret(self, client_key, token, request):
        with self.store.lock:
            t = self.store.access_tokens.get(token)
        if t and t["client_key"] == client_key:
            return t["secret"]
        return "dummy-secret"

    def get_default_realms(self, client_key, request):
        return []

    def get_realms(self, token, request):
        with self.store.lock:
            t = self.store.request_tokens.get(token)
        return list(t["realms"]) if t else []

    def get_redirect_uri(self, token, request):
        with self.store.lock:
            return self.store.request_tokens[token]["callback"]

    # -- validation -----------------------------------------------------------

    def validate_client_key(self, client_key, request):
        client = self._client(client_key)
        return bool(client) and request.signature_method in client["methods"]

    def validate_request_token(self, client_key, token, request):
        with self.store.lock:
            t = self.store.request_tokens.get(token)
        return bool(t) and t["client_key"] == client_key

    def validate_access_token(self, client_key, token, request):
        with self.store.lock:
            t = self.store.access_tokens.get(token)
        return bool(t) and t["client_key"] == client_key

    def validate_timestamp_and_nonce(
        self, client_key, timestamp, nonce, request, request_token=None, access_token=None
    ):
        key = (client_key, timestamp, nonce, request_token or access_token or "")
        with self.store.lock:
            if key in self.store.nonces:
                self.store.stats["nonces_rejected"] += 1
                request.keyrelay_reason = "nonce already used"
                return False
            self.store.nonces.add(key)
        return True

    def validate_redirect_uri(self, client_key, redirect_uri, request):
        return loopback_callback(redirect_uri)

    def validate_requested_realms(self, client_key, realms, request):
        return True

    def validate_realms(self, client_key, token, request, uri=None, realms=None):
        return True

    def validate_verifier(self, client_key, token, verifier, request):
        with self.store.lock:
            t = self.store.request_tokens.get(token)
        if not t or t["client_key"] != client_key or not t["verifier"]:
            return False
        return hmac.compare_digest(t["verifier"].encode(), verifier.encode())

    def verify_request_token(self, token, request):
        with self.store.lock:
            return token in self.store.request_tokens

    def verify_realms(self, token, realms, request):
        return True

    # -- persistence ----------------------------------------------------------

    def save_request_token(self, token, request):
        with self.store.lock:
            self.store.request_tokens[token["oauth_token"]] = {
                "client_key": request.client_key,
                "secret": token["oauth_token_secret"],
                "callback": request.redirect_uri,
                "realms": list(request.realms or []),
                "verifier": None,
            }

    def save_verifier(self, token, verifier, request):
        with self.store.lock:
            self.store.request_tokens[token]["verifier"] = verifier["oauth_verifier"]

    def save_access_token(self, token, request):
        with self.store.lock:
            self.store.access_tokens[token["oauth_token"]] = {
                "client_key": request.client_key,
                "secret": token["oauth_token_secret"],
                "realms": list(request.realms or []),
                "user_id": self.store.user_id,
                "screen_name": self.store.screen_name,
            }

    def invalidate_request_token(self, client_key, request_token, request):
        with self.store.lock:
            self.store.request_tokens.pop(request_token, None)


def base_string_of(request):
    """The signature base string oauthlib computes for a parsed request."""
    if request is None:
        return None
    try:
        return signature.signature_base_string(
            request.http_method,
            signature.base_string_uri(request.uri),
            signature.normalize_parameters(request.params),
        )
    except Exception as e:  # diagnostics only
        return f"(cannot compute: {e})"


def multi_dict(pairs):
    out = {}
    for k, v in pairs:
        out.setdefault(k, []).append(v)
    return out


class Provider:
    def __init__(self, store):
        self.store = store
        validator = Validator(store)
        self.request_token = RequestTokenEndpoint(validator)
        self.authorization = AuthorizationEndpoint(validator)
        self.access_token = AccessTokenEndpoint(validator)
        self.resource = ResourceEndpoint(validator)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "keyrelay-testkit-oauthlib"
    provider = None  # set on the class before serving

    def log_message(self, format, *args):
        log(f"{self.command} {self.path} -> " + (format % args))

    def log_request(self, code="-", size="-"):
        log(f"{self.command} {self.path} -> {code}")

    # Every method goes through dispatch.
    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def do_HEAD(self):
        self.dispatch()

    # -- plumbing -------------------------------------------------------------

    def read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def reply(self, status, body=b"", headers=None):
        if isinstance(body, str):
            body = body.encode("utf-8")
        body = body or b""
        self.send_response(status)
        for k, v in (headers or {}).items():
            if k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def reply_json(self, status, value, headers=None):
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        self.reply(status, json.dumps(value, ensure_ascii=False), h)

    def reply_oauthlib(self, triple, ok_stat):
        headers, body, status = triple
        if 200 <= status < 400:
            self.provider.store.count(ok_stat)
        else:
            self.provider.store.count("requests_rejected")
        self.reply(status, body or b"", headers)

    def dispatch(self):
        try:
            body_bytes = self.read_body()
        except (ValueError, OSError) as e:
            self.close_connection = True
            self.reply(400, f"bad request body: {e}\n", {"Content-Type": "text/plain"})
            return
        host = self.headers.get("Host") or f"127.0.0.1:{self.server.server_address[1]}"
        uri = f"http://{host}{self.path}"
        parts = urlsplit(self.path)
        path = parts.path
        method = self.command
        headers = dict(self.headers.items())
        body = body_bytes.decode("utf-8", errors="replace")
        try:
            self.route(method, path, parts.query, uri, body, headers)
        except errors.OAuth1Error as e:
            self.provider.store.count("requests_rejected")
            self.reply(e.status_code, e.urlencoded, {"Content-Type": FORM})
        except ValueError as e:
            # oauthlib raises ValueError for what it cannot parse (a query
            # with characters outside its form-encoding alphabet, a
            # malformed Authorization header).
            log(f"rejected {method} {self.path}: {e}")
            self.provider.store.count("requests_rejected")
            self.reply(400, f"error=invalid_request&description={e}", {"Content-Type": FORM})
        except Exception:
            log(f"internal error on {method} {self.path}:\n{traceback.format_exc()}")
            self.reply(500, "internal error\n", {"Content-Type": "text/plain"})

    def route(self, method, path, query, uri, body, headers):
        p = self.provider
        if path == "/stats" and method == "GET":
            with p.store.lock:
                stats = dict(p.store.stats)
            return self.reply_json(200, stats)
        if path == "/request_token":
            if method != "POST":
                return self.reply(405, b"", {"Allow": "POST"})
            triple = p.request_token.create_request_token_response(uri, method, body, headers)
            if triple[2] == 401:
                self.log_failure("request_token", p.request_token, uri, method, body, headers)
            return self.reply_oauthlib(triple, "request_tokens_issued")
        if path == "/authorize":
            if method != "GET":
                return self.reply(405, b"", {"Allow": "GET"})
            triple = p.authorization.create_authorization_response(uri, method, body, headers)
            return self.reply_oauthlib(triple, "authorizations")
        if path == "/access_token":
            if method != "POST":
                return self.reply(405, b"", {"Allow": "POST"})
            triple = p.access_token.create_access_token_response(
                uri,
                method,
                body,
                headers,
                credentials={"user_id": p.store.user_id, "screen_name": p.store.screen_name},
            )
            if triple[2] == 401:
                self.log_failure("access_token", p.access_token, uri, method, body, headers)
            return self.reply_oauthlib(triple, "access_tokens_issued")
        if path == "/api/me" or path == "/api/echo" or path.startswith("/api/echo/"):
            if path == "/api/me" and method != "GET":
                return self.reply(405, b"", {"Allow": "GET"})
            return self.resource_request(method, path, query, uri, body, headers)
        return self.reply(404, b"not found\n", {"Content-Type": "text/plain"})

    def log_failure(self, what, endpoint, uri, method, body, headers):
        try:
            request = endpoint._create_request(uri, method, body, headers)
            log(f"{what} refused; oauthlib's base string: {base_string_of(request)}")
        except Exception as e:
            log(f"{what} refused ({e})")

    def resource_request(self, method, path, query, uri, body, headers):
        p = self.provider
        valid, request = p.resource.validate_protected_resource_request(
            uri, http_method=method, body=body, headers=headers, realms=[]
        )
        if not valid:
            p.store.count("requests_rejected")
            reason = getattr(request, "keyrelay_reason", None) if request else None
            if request is None:
                reason = "malformed request (no or duplicated OAuth parameters)"
            elif reason is None:
                try:
                    p.resource._check_mandatory_parameters(request)
                except errors.OAuth1Error as e:
                    reason = e.description
            log_entries = dict(getattr(request, "validator_log", {}) or {})
            if reason is None:
                failed = [k for k, ok in log_entries.items() if not ok]
                reason = "invalid " + ", ".join(failed) if failed else "rejected"
            base = base_string_of(request)
            log(f"{method} {path} refused ({reason}); oauthlib's base string: {base}")
            return self.reply_json(
                401,
                {
                    "error": "invalid_request",
                    "reason": reason,
                    "validator_log": log_entries,
                    "base_string": base,
                },
                {"WWW-Authenticate": 'OAuth realm="keyrelay-testkit"'},
            )
        p.store.count("resource_requests_verified")
        with p.store.lock:
            token = dict(p.store.access_tokens[request.resource_owner_key])
        if path == "/api/me":
            return self.reply_json(
                200, {"user_id": token["user_id"], "screen_name": token["screen_name"]}
            )
        content_type = headers.get("Content-Type") or headers.get("content-type") or ""
        is_form = content_type.split(";")[0].strip().lower() == FORM
        return self.reply_json(
            200,
            {
                "method": method,
                "path": path,
                "query": multi_dict(parse_qsl(query, keep_blank_values=True)),
                "form": multi_dict(parse_qsl(body, keep_blank_values=True)) if is_form else {},
                "body": body,
                "content_type": content_type or None,
                "user_id": token["user_id"],
                "screen_name": token["screen_name"],
            },
        )


def watch_stdin():
    """Exits the process when stdin closes (the parent went away)."""

    def run():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except Exception:
            pass
        os._exit(0)

    threading.Thread(target=run, name="stdin-watch", daemon=True).start()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", nargs="?", help="JSON configuration (default: stdin's first line)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    parser.add_argument(
        "--exit-on-stdin-eof", action="store_true", help="exit when stdin closes"
    )
    args = parser.parse_args()

    raw = args.config
    exit_on_eof = args.exit_on_stdin_eof
    if raw is None:
        raw = sys.stdin.readline()
        exit_on_eof = True
    try:
        config = json.loads(raw or "{}")
    except json.JSONDecodeError as e:
        fail(f"the configuration is not valid JSON: {e}")
    if not isinstance(config, dict):
        fail("the configuration must be a JSON object")
    if not 0 <= args.port <= 65535:
        fail(f"--port is not a port number: {args.port}")

    Handler.provider = Provider(Store(config))
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    if exit_on_eof:
        watch_stdin()
    sys.stdout.write(f"READY {server.server_address[1]}\n")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
