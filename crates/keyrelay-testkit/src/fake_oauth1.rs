//! A fake OAuth 1.0a provider (RFC 5849) written here for tests: the
//! three-legged flow (temporary credentials, authorization, token
//! credentials) and a protected API, verifying every signature on its own.
//!
//! It checks what a real provider checks: the consumer key, the configured
//! signature method (HMAC-SHA1, HMAC-SHA256, PLAINTEXT or RSA-SHA1), the
//! signature over the request as received, a timestamp within the window,
//! single-use nonces, the kind of token (temporary or access), the
//! `oauth_verifier`, single-use temporary tokens. The signature base string
//! (§3.4.1) is built here from the raw request, independently of keyrelay's
//! own signer in `keyrelay-oauth`, so the two check each other.
//!
//! Failures answer with the OAuth Problem Reporting extension
//! (`oauth_problem=…` in a form body), 400 or 401 as RFC 5849 §3.2 says:
//! 400 for a missing, duplicated or unsupported parameter or signature
//! method, 401 (with `WWW-Authenticate: OAuth realm="…"`) for bad consumer
//! credentials, tokens, signatures, timestamps and nonces. A request with no
//! `Authorization: OAuth …` header at all is a 401 `parameter_absent`.
//! A `signature_invalid` body also carries `debug_base_string`, the base
//! string this fake signed, to compare with the client's.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode};
use rand::Rng;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use serde_json::{Value, json};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use url::form_urlencoded;

/// TEST ONLY, NEVER USE FOR ANYTHING REAL: a 2048-bit RSA private key (PKCS#8
/// PEM) generated once with `openssl genpkey -algorithm RSA -pkeyopt
/// rsa_keygen_bits:2048` and published here, so that RSA-SHA1 tests need
/// not generate keys at run time (slow in debug builds). Register it as the
/// consumer's private key (keyrelay's "client secret" for RSA-SHA1).
pub const TEST_RSA_PRIVATE_KEY_PEM: &str = r"-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCC52Q9W/xxX4m+
EvxJ8pvOApPyUL1py7T78y+RFci20TjnYXrmXR1YrF+yiYXNIgH8LYAf0FZIwRaQ
Oty7DDjVa3WZeLtufndG8AAq5/usbkj9xXHseQXyrC0xMD16euQknwgeUB3TTT00
FjzAqymuKTg6nC5UHKrH4YIca0Cc6Wxdc1gcILSRQRfSLxYAWhmYM5HHNqFEUlWs
DPsOyjrP7NoBUmCjCIZFAiiFu+Dg11QTY35ydq96+PXosDuzoRHzLKs04Uk3O5by
kjZcRQDTcJr5b3/f8hzAmKDFEjoobpulR4VouOeegKzXX3g8tUv3YCHpZ7BxIJD+
2KWN9x1ZAgMBAAECggEADUiNG8uKzre4KDPlqrIAwiNG1LmsDuFJ/fXL0jguBEcv
iWM978Rr0ZoO9/S2ltNS9OkVGFAG1skpO1I4deP5Rxw+yb0Tn/8bUXUnPzNdOZPT
ZP+1M3QweKikyVoGKGNHZWPx6fQ39+oy7LyDm7WCvEFDNcdazX7p4ZtDnb37HNuk
fnkjrGdrW+hIp0StnHWvsgDqfltdsRyQm7xi8y1WvCepeXws3XPhygYhjET/z/Mh
v+36rckT8aY3SkkwBkc0tBtsWWPq8Klf5q50Y+XC7RShlQcErcYLUPZ5ZPodkgty
vDdViDlgF56SIZsR5lxCmWtGZwDiIaG0IkLkYSlStQKBgQC4WSWCWBh4Oky84Wm5
MsLkj572zs4Nq2CKdr5hQm8LNdoNEs89aLgmywWUaoRzYjBTcT4WVhhxV0v/U3Wd
GjvHLcm0BmJw3bi3Cb1ReU9yDE+cWjrH4lS3UXPfPwsDe3MroIA6zVIHxo1rdNaS
lHA1cmvdvw4zTLPMEZBaNPDGmwKBgQC1yHjq1vfBpU3fFUN8wsm386eQXG9ZhE06
gmYEdQbzcSA5P7+s+YmrOV7e+aQofT44PhJDsQEIYtn6bQXEiWLQ+c+axtvIiCd6
9mF4+TP9TRSZf2Y71DFaIR+pNBRvPkwn4WL/bov1OI7pC+boCku/wLB4yg0s0sWf
hkvZgVOxGwKBgFZl2XGETjuSv0JKtt0IUFUEhrEPbXz0k/NxAXrdwuNTItW7ugsC
2EO+JOhRH7BgFVwWF84qHZyJGGIawGWX1OpdqEnKMDrLf3Wxh9v2aeh+opUZqLDj
f2bHMvIvPr8sDWcl+tMURVzFjqQNBz99eDVkYe90Snh6e02p8aiFZU7/AoGAViCs
wb+mVXaHxbmiZxs3TdPAwZI6I7Sejqk3wsbbyz3/IYDFxSPaCWk+PPEUySZF84nd
R3s23Q1Q7+j1wZ/CVPb3WQL9IS75XbYcip+v9USvDOcivhgUZfqpsJZ/VBG1LXQJ
XrK21zG77Ej6V1iBeVHHiwNYaLNYdPPBPkWbLJ8CgYEAkJjdos1BWSNcr0NDn5Iy
Z1NcmB5Fp5ZN4KN57NTOnLQPZkHdGjCKwGv+QsaKtZvHxjmW5QzSp4JV+/Ywhvmx
RFtbR0BlsSA/gFu+Zk339OVlncn3TgRPEgrn3QKVAa5orJIItLzWsoy2+ihlwiJl
lJhUWv6uKS7xodhqqlPdsNY=
-----END PRIVATE KEY-----
";

/// TEST ONLY: the public half of [`TEST_RSA_PRIVATE_KEY_PEM`] (SPKI PEM), the
/// default [`FakeOauth1Options::rsa_public_key_pem`].
pub const TEST_RSA_PUBLIC_KEY_PEM: &str = r"-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAgudkPVv8cV+JvhL8SfKb
zgKT8lC9acu0+/MvkRXIttE452F65l0dWKxfsomFzSIB/C2AH9BWSMEWkDrcuww4
1Wt1mXi7bn53RvAAKuf7rG5I/cVx7HkF8qwtMTA9enrkJJ8IHlAd0009NBY8wKsp
rik4OpwuVByqx+GCHGtAnOlsXXNYHCC0kUEX0i8WAFoZmDORxzahRFJVrAz7Dso6
z+zaAVJgowiGRQIohbvg4NdUE2N+cnavevj16LA7s6ER8yyrNOFJNzuW8pI2XEUA
03Ca+W9/3/IcwJigxRI6KG6bpUeFaLjnnoCs1194PLVL92Ah6WewcSCQ/tiljfcd
WQIDAQAB
-----END PUBLIC KEY-----
";

/// The `oauth_signature_method` the fake accepts (only the configured one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Oauth1SignatureMethod {
    HmacSha1,
    HmacSha256,
    Plaintext,
    RsaSha1,
}

impl Oauth1SignatureMethod {
    /// The wire name: `HMAC-SHA1`, `HMAC-SHA256`, `PLAINTEXT`, `RSA-SHA1`.
    pub const fn name(self) -> &'static str {
        match self {
            Oauth1SignatureMethod::HmacSha1 => "HMAC-SHA1",
            Oauth1SignatureMethod::HmacSha256 => "HMAC-SHA256",
            Oauth1SignatureMethod::Plaintext => "PLAINTEXT",
            Oauth1SignatureMethod::RsaSha1 => "RSA-SHA1",
        }
    }

    /// All four, for tests that loop over them.
    pub const ALL: [Oauth1SignatureMethod; 4] = [
        Oauth1SignatureMethod::HmacSha1,
        Oauth1SignatureMethod::HmacSha256,
        Oauth1SignatureMethod::Plaintext,
        Oauth1SignatureMethod::RsaSha1,
    ];
}

impl std::str::FromStr for Oauth1SignatureMethod {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Oauth1SignatureMethod::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown OAuth 1.0a signature method `{s}`"))
    }
}

impl std::fmt::Display for Oauth1SignatureMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How `GET /oauth/authorize` answers (there is no UI: it decides at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Oauth1AuthorizeMode {
    /// Approve as the configured user: `{callback}?oauth_token=T&oauth_verifier=V`.
    Approve,
    /// Deny X-style: `{callback}?denied=T`.
    DenyDenied,
    /// Deny with Problem Reporting: `{callback}?oauth_token=T&oauth_problem=user_refused`.
    DenyProblem,
}

#[derive(Debug, Clone)]
pub struct FakeOauth1Options {
    pub consumer_key: String,
    /// The shared secret for HMAC-SHA1, HMAC-SHA256 and PLAINTEXT.
    pub consumer_secret: String,
    /// The consumer's public key for RSA-SHA1 (SPKI `BEGIN PUBLIC KEY` or
    /// PKCS#1 `BEGIN RSA PUBLIC KEY` PEM).
    pub rsa_public_key_pem: String,
    /// The only method accepted; others get 400 `signature_method_rejected`.
    pub signature_method: Oauth1SignatureMethod,
    /// `realm` of `WWW-Authenticate` on 401s.
    pub realm: String,
    /// Who approves at `/oauth/authorize`; returned by the access token
    /// endpoint (`user_id`, `screen_name`) and by `/api/me`.
    pub user_id: String,
    pub screen_name: String,
    pub authorize: Oauth1AuthorizeMode,
    /// Send `oauth_callback_confirmed=true` in the temporary credentials
    /// (false: behave as an OAuth 1.0, not 1.0a, provider).
    pub callback_confirmed: bool,
    /// Answer every token-credentials request with 401
    /// `oauth_problem=token_rejected`.
    pub reject_token_exchange: bool,
    /// Accepted clock difference, in seconds, either way.
    pub timestamp_window_secs: u64,
}

impl Default for FakeOauth1Options {
    fn default() -> Self {
        FakeOauth1Options {
            consumer_key: "fake-consumer-key".into(),
            consumer_secret: "fake-consumer-secret".into(),
            rsa_public_key_pem: TEST_RSA_PUBLIC_KEY_PEM.into(),
            signature_method: Oauth1SignatureMethod::HmacSha1,
            realm: "fake-oauth1".into(),
            user_id: "783214".into(),
            screen_name: "fake_user".into(),
            authorize: Oauth1AuthorizeMode::Approve,
            callback_confirmed: true,
            reject_token_exchange: false,
            timestamp_window_secs: 300,
        }
    }
}

/// A request received on the protected API (`/api/…`), verified or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Oauth1ApiRequest {
    /// `None` when the signature verified (200), else the `oauth_problem`
    /// it was refused with.
    pub problem: Option<String>,
    pub method: String,
    /// The raw path as received, e.g. `/api/items/a%20b`.
    pub path: String,
    /// The raw query as received, without `?`.
    pub raw_query: Option<String>,
    /// The query decoded by form rules (`+` is a space), in order.
    pub query: Vec<(String, String)>,
    /// The decoded body parameters when the body is
    /// `application/x-www-form-urlencoded`, else empty.
    pub form: Vec<(String, String)>,
    /// The parameters of the `Authorization: OAuth` header, decoded,
    /// without `oauth_signature` (empty when it could not be parsed).
    pub oauth_params: Vec<(String, String)>,
    /// The access token's user; empty when refused.
    pub user_id: String,
}

struct Temporary {
    secret: String,
    callback: String,
    /// Set once the user approved.
    verifier: Option<String>,
}

struct AccessGrant {
    secret: String,
    user_id: String,
    revoked: bool,
}

#[derive(Default)]
struct Shared {
    temporary: HashMap<String, Temporary>,
    /// Temporary tokens already exchanged (or denied).
    spent_temporary: HashSet<String>,
    access: HashMap<String, AccessGrant>,
    /// Access tokens issued, oldest first.
    issued: Vec<String>,
    /// (consumer key, timestamp, nonce) seen in verified requests.
    nonces: HashSet<(String, u64, String)>,
    request_token_calls: usize,
    authorize_calls: usize,
    access_token_calls: usize,
    verified_api: usize,
    /// `oauth_problem` of every rejected request, oldest first.
    problems: Vec<String>,
    last_base_string: Option<String>,
    api_requests: Vec<Oauth1ApiRequest>,
}

struct Inner {
    options: Mutex<FakeOauth1Options>,
    shared: Mutex<Shared>,
}

/// A running fake OAuth 1.0a provider on `127.0.0.1` and a free port.
#[derive(Clone)]
pub struct FakeOauth1Provider {
    base_url: String,
    inner: Arc<Inner>,
}

impl FakeOauth1Provider {
    pub async fn start(options: FakeOauth1Options) -> FakeOauth1Provider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let inner = Arc::new(Inner {
            options: Mutex::new(options),
            shared: Mutex::new(Shared::default()),
        });
        let app = Router::new()
            .route("/oauth/request_token", post(request_token))
            .route("/oauth/authorize", get(authorize))
            .route("/oauth/access_token", post(access_token))
            .route("/api/{*path}", any(api))
            .with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeOauth1Provider {
            base_url: format!("http://{addr}"),
            inner,
        }
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn request_token_url(&self) -> String {
        self.url("/oauth/request_token")
    }

    pub fn authorize_url(&self) -> String {
        self.url("/oauth/authorize")
    }

    pub fn access_token_url(&self) -> String {
        self.url("/oauth/access_token")
    }

    /// `{base_url}/api`: every method on `/api/…` is the protected API
    /// (`/api/me` answers who the token belongs to, anything else echoes).
    pub fn api_base_url(&self) -> String {
        self.url("/api")
    }

    /// An inline keyrelay provider definition (`auth_mode: oauth1`) that
    /// points here; verification is `GET {api_base_url}/me`.
    pub fn definition(&self) -> Value {
        json!({
            "auth_mode": "oauth1",
            "display_name": "Fake OAuth 1.0a",
            "request_token_endpoint": self.request_token_url(),
            "authorization_endpoint": self.authorize_url(),
            "access_token_endpoint": self.access_token_url(),
            "signature_method": self.options().signature_method.name(),
            "api_base_url": self.api_base_url(),
            "verification": {"method": "GET", "path": "/me"},
        })
    }

    pub fn options(&self) -> FakeOauth1Options {
        self.inner.options.lock().unwrap().clone()
    }

    pub fn set_options(&self, f: impl FnOnce(&mut FakeOauth1Options)) {
        f(&mut self.inner.options.lock().unwrap());
    }

    /// Protected API requests that passed verification.
    pub fn verified_api_requests(&self) -> usize {
        self.shared().verified_api
    }

    /// Requests refused with an `oauth_problem`, at any endpoint.
    pub fn rejected_requests(&self) -> usize {
        self.shared().problems.len()
    }

    /// The `oauth_problem` of the last refused request.
    pub fn last_problem(&self) -> Option<String> {
        self.shared().problems.last().cloned()
    }

    /// The `oauth_problem` of every refused request, oldest first.
    pub fn problems(&self) -> Vec<String> {
        self.shared().problems.clone()
    }

    /// The base string this fake computed for the last `signature_invalid`.
    pub fn last_rejected_base_string(&self) -> Option<String> {
        self.shared().last_base_string.clone()
    }

    /// Access tokens issued (token strings only), oldest first.
    pub fn issued_access_tokens(&self) -> Vec<String> {
        self.shared().issued.clone()
    }

    /// Whether this access token is issued and not revoked.
    pub fn access_token_active(&self, token: &str) -> bool {
        self.shared().access.get(token).is_some_and(|g| !g.revoked)
    }

    /// Revokes an access token: requests signed with it get 401
    /// `oauth_problem=token_revoked` from now on. False if unknown.
    pub fn revoke_access_token(&self, token: &str) -> bool {
        match self.shared().access.get_mut(token) {
            Some(grant) => {
                grant.revoked = true;
                true
            }
            None => false,
        }
    }

    /// Issues an access token and secret for the configured user without the
    /// flow (for tests that import credentials into keyrelay).
    pub fn mint_access_token(&self) -> (String, String) {
        let user_id = self.options().user_id;
        issue_access(&mut self.shared(), &user_id)
    }

    /// Every request received on the protected API, verified or refused
    /// (see [`Oauth1ApiRequest::problem`]), oldest first.
    pub fn api_requests(&self) -> Vec<Oauth1ApiRequest> {
        self.shared().api_requests.clone()
    }

    pub fn request_token_calls(&self) -> usize {
        self.shared().request_token_calls
    }

    pub fn authorize_calls(&self) -> usize {
        self.shared().authorize_calls
    }

    pub fn access_token_calls(&self) -> usize {
        self.shared().access_token_calls
    }

    fn shared(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.inner.shared.lock().unwrap()
    }
}

fn random() -> String {
    let bytes: [u8; 24] = rand::thread_rng().r#gen();
    URL_SAFE_NO_PAD.encode(bytes)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn issue_access(shared: &mut Shared, user_id: &str) -> (String, String) {
    let token = format!("{user_id}-{}", random());
    let secret = random();
    shared.access.insert(
        token.clone(),
        AccessGrant {
            secret: secret.clone(),
            user_id: user_id.to_owned(),
            revoked: false,
        },
    );
    shared.issued.push(token.clone());
    (token, secret)
}

fn form_reply(status: StatusCode, pairs: &[(&str, &str)]) -> Response {
    let mut body = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        body.append_pair(k, v);
    }
    (
        status,
        [(header::CONTENT_TYPE, "application/x-www-form-urlencoded")],
        body.finish(),
    )
        .into_response()
}

// ---------------------------------------------------------------------------
// RFC 5849 §3.4.1 and §3.6, written independently of keyrelay-oauth.

/// §3.6: everything but ALPHA, DIGIT, `-`, `.`, `_`, `~` is `%XX` (uppercase).
const RFC5849_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn encode(bytes: &[u8]) -> String {
    percent_encoding::percent_encode(bytes, RFC5849_ENCODE).to_string()
}

/// Form decoding to bytes (`+` is a space, then `%XX`), so that non-UTF-8
/// sequences are signed as the bytes they stand for.
fn form_decode(raw: &[u8]) -> Vec<u8> {
    let plus_as_space: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    percent_decode(&plus_as_space).collect()
}

fn form_pairs_bytes(raw: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    raw.split(|&b| b == b'&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (name, value) = match part.iter().position(|&b| b == b'=') {
                Some(i) => (&part[..i], &part[i + 1..]),
                None => (part, &[][..]),
            };
            (form_decode(name), form_decode(value))
        })
        .collect()
}

fn lossy_pairs(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(k).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect()
}

/// A request as received, before any verification.
struct Received {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    /// The body when it is `application/x-www-form-urlencoded` (§3.4.1.3.1).
    fn form_body(&self) -> Option<&[u8]> {
        let content_type = self.headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
        let media_type = content_type.split(';').next()?.trim();
        media_type
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            .then_some(&self.body[..])
    }

    fn query_pairs(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.uri
            .query()
            .map(|q| form_pairs_bytes(q.as_bytes()))
            .unwrap_or_default()
    }

    fn form_pairs(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.form_body().map(form_pairs_bytes).unwrap_or_default()
    }

    /// §3.4.1.2: `http://host[:port]/path`; the host from the request
    /// (HTTP/2 authority or the `Host` header), lowercased, `:80` dropped.
    fn base_string_uri(&self) -> String {
        let host = self
            .uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| {
                self.headers
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_owned)
            })
            .unwrap_or_default()
            .to_ascii_lowercase();
        let host = host.strip_suffix(":80").unwrap_or(&host);
        format!("http://{host}{}", self.uri.path())
    }

    /// §3.4.1: method, base string URI and normalized parameters (query,
    /// form body, protocol parameters except `realm` and `oauth_signature`).
    fn signature_base_string(&self, protocol: &[(String, String)]) -> String {
        let mut params: Vec<(String, String)> = self
            .query_pairs()
            .into_iter()
            .chain(self.form_pairs())
            .filter(|(name, _)| name.as_slice() != b"oauth_signature")
            .map(|(name, value)| (encode(&name), encode(&value)))
            .chain(
                protocol
                    .iter()
                    .filter(|(name, _)| name != "realm" && name != "oauth_signature")
                    .map(|(name, value)| (encode(name.as_bytes()), encode(value.as_bytes()))),
            )
            .collect();
        params.sort();
        let normalized = params
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("&");
        format!(
            "{}&{}&{}",
            encode(self.method.as_str().to_ascii_uppercase().as_bytes()),
            encode(self.base_string_uri().as_bytes()),
            encode(normalized.as_bytes())
        )
    }
}

/// Why a request was refused.
struct Problem {
    status: StatusCode,
    code: &'static str,
    /// More Problem Reporting fields, e.g. `oauth_parameters_absent`.
    extra: Vec<(&'static str, String)>,
}

impl Problem {
    fn new(status: StatusCode, code: &'static str) -> Problem {
        Problem {
            status,
            code,
            extra: Vec::new(),
        }
    }

    fn with(mut self, name: &'static str, value: impl Into<String>) -> Problem {
        self.extra.push((name, value.into()));
        self
    }
}

/// Records the refusal and answers it.
fn reject(inner: &Inner, problem: Problem) -> Response {
    let realm = inner.options.lock().unwrap().realm.clone();
    {
        let mut shared = inner.shared.lock().unwrap();
        shared.problems.push(problem.code.to_owned());
        if let Some((_, base)) = problem
            .extra
            .iter()
            .find(|(name, _)| *name == "debug_base_string")
        {
            shared.last_base_string = Some(base.clone());
        }
    }
    let mut pairs: Vec<(&str, &str)> = vec![("oauth_problem", problem.code)];
    pairs.extend(problem.extra.iter().map(|(k, v)| (*k, v.as_str())));
    let mut response = form_reply(problem.status, &pairs);
    if problem.status == StatusCode::UNAUTHORIZED {
        let challenge = format!("OAuth realm=\"{realm}\"");
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, challenge.parse().unwrap());
    }
    response
}

/// The `Authorization: OAuth …` parameters, decoded (§3.5.1).
fn authorization_params(headers: &HeaderMap) -> Result<Vec<(String, String)>, Problem> {
    let value = headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let v = v.trim_start();
            let (scheme, rest) = v.split_at_checked(5)?;
            (scheme.eq_ignore_ascii_case("OAuth") && (rest.is_empty() || rest.starts_with(' ')))
                .then_some(rest)
        });
    let Some(rest) = value else {
        return Err(
            Problem::new(StatusCode::UNAUTHORIZED, "parameter_absent").with(
                "oauth_problem_advice",
                "send the protocol parameters in an Authorization: OAuth header",
            ),
        );
    };
    let rejected = |what: &str| {
        Problem::new(StatusCode::BAD_REQUEST, "parameter_rejected")
            .with("oauth_problem_advice", what.to_owned())
    };
    let mut out: Vec<(String, String)> = Vec::new();
    for part in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((name, value)) = part.split_once('=') else {
            return Err(rejected("Authorization header parameter without `=`"));
        };
        let Some(value) = value
            .trim()
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
        else {
            return Err(rejected("Authorization header value not in double quotes"));
        };
        let decode = |s: &str| {
            percent_decode(s.as_bytes())
                .decode_utf8()
                .map(|c| c.into_owned())
        };
        let (Ok(name), Ok(value)) = (decode(name.trim()), decode(value)) else {
            return Err(rejected("Authorization header parameter is not UTF-8"));
        };
        if out.iter().any(|(n, _)| *n == name) {
            return Err(Problem::new(StatusCode::BAD_REQUEST, "parameter_rejected")
                .with("oauth_parameters_rejected", name));
        }
        out.push((name, value));
    }
    Ok(out)
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Which token a request must be signed with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TokenKind {
    /// None (temporary credentials request).
    None,
    Temporary,
    Access,
}

/// A verified request: its protocol parameters and token.
struct Verified {
    params: Vec<(String, String)>,
    token: Option<String>,
}

/// Verifies a signed request (RFC 5849 §3.2). `required` are protocol
/// parameters the endpoint needs besides the usual ones.
fn verify(
    inner: &Inner,
    req: &Received,
    kind: TokenKind,
    required: &[&'static str],
) -> Result<Verified, Problem> {
    let o = inner.options.lock().unwrap().clone();
    let params = authorization_params(&req.headers)?;
    let get = |name: &str| param(&params, name);
    let plaintext = get("oauth_signature_method") == Some("PLAINTEXT");

    let mut needed = vec![
        "oauth_consumer_key",
        "oauth_signature_method",
        "oauth_signature",
    ];
    // §3.1: timestamp and nonce MAY be omitted with PLAINTEXT.
    if !plaintext {
        needed.extend(["oauth_timestamp", "oauth_nonce"]);
    }
    if kind != TokenKind::None {
        needed.push("oauth_token");
    }
    needed.extend(required);
    let absent: Vec<&str> = needed.into_iter().filter(|n| get(n).is_none()).collect();
    if !absent.is_empty() {
        return Err(Problem::new(StatusCode::BAD_REQUEST, "parameter_absent")
            .with("oauth_parameters_absent", absent.join("&")));
    }
    if get("oauth_version").is_some_and(|v| v != "1.0") {
        return Err(Problem::new(StatusCode::BAD_REQUEST, "version_rejected")
            .with("oauth_acceptable_versions", "1.0-1.0"));
    }
    if get("oauth_consumer_key") != Some(o.consumer_key.as_str()) {
        return Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "consumer_key_unknown",
        ));
    }
    if get("oauth_signature_method") != Some(o.signature_method.name()) {
        return Err(
            Problem::new(StatusCode::BAD_REQUEST, "signature_method_rejected").with(
                "oauth_problem_advice",
                format!("this provider signs with {}", o.signature_method),
            ),
        );
    }
    let timestamp = match get("oauth_timestamp") {
        None => None,
        Some(t) => match t.parse::<u64>() {
            Ok(t) => Some(t),
            Err(_) => {
                return Err(Problem::new(StatusCode::BAD_REQUEST, "parameter_rejected")
                    .with("oauth_parameters_rejected", "oauth_timestamp"));
            }
        },
    };
    if let Some(t) = timestamp {
        let now = now_secs();
        if t.abs_diff(now) > o.timestamp_window_secs {
            return Err(
                Problem::new(StatusCode::UNAUTHORIZED, "timestamp_refused").with(
                    "oauth_acceptable_timestamps",
                    format!(
                        "{}-{}",
                        now.saturating_sub(o.timestamp_window_secs),
                        now + o.timestamp_window_secs
                    ),
                ),
            );
        }
    }

    let token = get("oauth_token").map(str::to_owned);
    let token_secret = {
        let shared = inner.shared.lock().unwrap();
        match (kind, token.as_deref()) {
            (TokenKind::None, None | Some("")) => String::new(),
            (TokenKind::None, Some(_)) => {
                return Err(Problem::new(StatusCode::BAD_REQUEST, "parameter_rejected")
                    .with("oauth_parameters_rejected", "oauth_token"));
            }
            (TokenKind::Temporary, Some(t)) => match shared.temporary.get(t) {
                Some(temp) => temp.secret.clone(),
                None if shared.spent_temporary.contains(t) => {
                    return Err(Problem::new(StatusCode::UNAUTHORIZED, "token_used"));
                }
                None => return Err(Problem::new(StatusCode::UNAUTHORIZED, "token_rejected")),
            },
            (TokenKind::Access, Some(t)) => match shared.access.get(t) {
                Some(grant) if grant.revoked => {
                    return Err(Problem::new(StatusCode::UNAUTHORIZED, "token_revoked"));
                }
                Some(grant) => grant.secret.clone(),
                None => return Err(Problem::new(StatusCode::UNAUTHORIZED, "token_rejected")),
            },
            (_, None) => unreachable!("oauth_token was checked above"),
        }
    };

    let base = req.signature_base_string(&params);
    let signature = get("oauth_signature").unwrap_or_default();
    let ok = match o.signature_method {
        Oauth1SignatureMethod::HmacSha1 => {
            hmac_ok::<Hmac<Sha1>>(&o.consumer_secret, &token_secret, &base, signature)
        }
        Oauth1SignatureMethod::HmacSha256 => {
            hmac_ok::<Hmac<Sha256>>(&o.consumer_secret, &token_secret, &base, signature)
        }
        Oauth1SignatureMethod::Plaintext => {
            let expected = signing_key(&o.consumer_secret, &token_secret);
            bool::from(expected.as_bytes().ct_eq(signature.as_bytes()))
        }
        Oauth1SignatureMethod::RsaSha1 => rsa_ok(&o.rsa_public_key_pem, &base, signature),
    };
    if !ok {
        return Err(Problem::new(StatusCode::UNAUTHORIZED, "signature_invalid")
            .with("debug_base_string", base));
    }

    // Nonces are remembered only for requests that verified, so forged
    // requests cannot use them up.
    if let (Some(t), Some(nonce)) = (timestamp, get("oauth_nonce")) {
        let fresh = inner.shared.lock().unwrap().nonces.insert((
            o.consumer_key.clone(),
            t,
            nonce.to_owned(),
        ));
        if !fresh {
            return Err(Problem::new(StatusCode::UNAUTHORIZED, "nonce_used"));
        }
    }
    Ok(Verified { params, token })
}

/// §3.4.2: `encode(consumer secret) & encode(token secret)`; the PLAINTEXT
/// signature (§3.4.4) too.
fn signing_key(consumer_secret: &str, token_secret: &str) -> String {
    format!(
        "{}&{}",
        encode(consumer_secret.as_bytes()),
        encode(token_secret.as_bytes())
    )
}

fn hmac_ok<M: Mac + hmac::digest::KeyInit>(
    consumer_secret: &str,
    token_secret: &str,
    base: &str,
    signature: &str,
) -> bool {
    let Ok(provided) = STANDARD.decode(signature) else {
        return false;
    };
    let key = signing_key(consumer_secret, token_secret);
    let mut mac = <M as Mac>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(base.as_bytes());
    // Constant time.
    mac.verify_slice(&provided).is_ok()
}

/// §3.4.3: RSASSA-PKCS1-v1_5 with SHA-1 under the consumer's public key.
fn rsa_ok(public_key_pem: &str, base: &str, signature: &str) -> bool {
    let pem = public_key_pem.trim();
    let Ok(key) =
        RsaPublicKey::from_public_key_pem(pem).or_else(|_| RsaPublicKey::from_pkcs1_pem(pem))
    else {
        return false;
    };
    let Ok(provided) = STANDARD.decode(signature) else {
        return false;
    };
    let digest = Sha1::digest(base.as_bytes());
    key.verify(Pkcs1v15Sign::new::<Sha1>(), &digest, &provided)
        .is_ok()
}

// ---------------------------------------------------------------------------
// Endpoints.

async fn request_token(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    inner.shared.lock().unwrap().request_token_calls += 1;
    let req = Received {
        method,
        uri,
        headers,
        body,
    };
    let verified = match verify(&inner, &req, TokenKind::None, &["oauth_callback"]) {
        Ok(v) => v,
        Err(problem) => return reject(&inner, problem),
    };
    let callback = param(&verified.params, "oauth_callback")
        .unwrap_or_default()
        .to_owned();
    let callback_ok = callback == "oob"
        || url::Url::parse(&callback).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
    if !callback_ok {
        return reject(
            &inner,
            Problem::new(StatusCode::BAD_REQUEST, "parameter_rejected")
                .with("oauth_parameters_rejected", "oauth_callback"),
        );
    }
    let token = format!("tmp-{}", random());
    let secret = random();
    inner.shared.lock().unwrap().temporary.insert(
        token.clone(),
        Temporary {
            secret: secret.clone(),
            callback,
            verifier: None,
        },
    );
    let mut pairs = vec![
        ("oauth_token", token.as_str()),
        ("oauth_token_secret", secret.as_str()),
    ];
    if inner.options.lock().unwrap().callback_confirmed {
        pairs.push(("oauth_callback_confirmed", "true"));
    }
    form_reply(StatusCode::OK, &pairs)
}

async fn authorize(
    State(inner): State<Arc<Inner>>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let mode = inner.options.lock().unwrap().authorize;
    let mut shared = inner.shared.lock().unwrap();
    shared.authorize_calls += 1;
    let Some(token) = query
        .iter()
        .find(|(k, _)| k == "oauth_token")
        .map(|(_, v)| v.clone())
    else {
        return (StatusCode::BAD_REQUEST, "oauth_token is required").into_response();
    };
    let Some(temp) = shared.temporary.get_mut(&token) else {
        return (StatusCode::BAD_REQUEST, "unknown or used oauth_token").into_response();
    };
    let callback = temp.callback.clone();
    let verifier = random();
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    match mode {
        Oauth1AuthorizeMode::Approve => {
            temp.verifier = Some(verifier.clone());
            pairs.push(("oauth_token", &token));
            pairs.push(("oauth_verifier", &verifier));
        }
        Oauth1AuthorizeMode::DenyDenied | Oauth1AuthorizeMode::DenyProblem => {
            shared.temporary.remove(&token);
            shared.spent_temporary.insert(token.clone());
            if mode == Oauth1AuthorizeMode::DenyDenied {
                pairs.push(("denied", &token));
            } else {
                pairs.push(("oauth_token", &token));
                pairs.push(("oauth_problem", "user_refused"));
            }
        }
    }
    if callback == "oob" {
        // Out of band: the user would copy the verifier from this page.
        return form_reply(StatusCode::OK, &pairs);
    }
    let mut target = url::Url::parse(&callback).unwrap();
    {
        let mut q = target.query_pairs_mut();
        for (k, v) in &pairs {
            q.append_pair(k, v);
        }
    }
    (StatusCode::FOUND, [(header::LOCATION, target.to_string())]).into_response()
}

async fn access_token(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    inner.shared.lock().unwrap().access_token_calls += 1;
    let o = inner.options.lock().unwrap().clone();
    if o.reject_token_exchange {
        return reject(
            &inner,
            Problem::new(StatusCode::UNAUTHORIZED, "token_rejected"),
        );
    }
    let req = Received {
        method,
        uri,
        headers,
        body,
    };
    let verified = match verify(&inner, &req, TokenKind::Temporary, &["oauth_verifier"]) {
        Ok(v) => v,
        Err(problem) => return reject(&inner, problem),
    };
    let token = verified.token.unwrap_or_default();
    let given = param(&verified.params, "oauth_verifier").unwrap_or_default();
    let mut shared = inner.shared.lock().unwrap();
    let problem = match shared.temporary.get(&token) {
        // Spent by a concurrent exchange since `verify`.
        None => Some(Problem::new(StatusCode::UNAUTHORIZED, "token_used")),
        Some(Temporary { verifier: None, .. }) => Some(
            Problem::new(StatusCode::UNAUTHORIZED, "permission_unknown").with(
                "oauth_problem_advice",
                "the user has not authorized this token yet",
            ),
        ),
        Some(Temporary {
            verifier: Some(expected),
            ..
        }) if !bool::from(expected.as_bytes().ct_eq(given.as_bytes())) => Some(
            Problem::new(StatusCode::UNAUTHORIZED, "parameter_rejected")
                .with("oauth_parameters_rejected", "oauth_verifier"),
        ),
        Some(_) => None,
    };
    if let Some(problem) = problem {
        drop(shared);
        return reject(&inner, problem);
    }
    shared.temporary.remove(&token);
    shared.spent_temporary.insert(token);
    let (access, secret) = issue_access(&mut shared, &o.user_id);
    drop(shared);
    form_reply(
        StatusCode::OK,
        &[
            ("oauth_token", &access),
            ("oauth_token_secret", &secret),
            ("user_id", &o.user_id),
            ("screen_name", &o.screen_name),
        ],
    )
}

async fn api(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = Received {
        method,
        uri,
        headers,
        body,
    };
    let verified = verify(&inner, &req, TokenKind::Access, &[]);
    let oauth_params = match &verified {
        Ok(v) => v.params.clone(),
        Err(_) => authorization_params(&req.headers).unwrap_or_default(),
    };
    let user_id = match &verified {
        Ok(v) => {
            let shared = inner.shared.lock().unwrap();
            let token = v.token.as_deref().unwrap_or_default();
            shared
                .access
                .get(token)
                .map(|g| g.user_id.clone())
                .unwrap_or_default()
        }
        Err(_) => String::new(),
    };
    let recorded = Oauth1ApiRequest {
        problem: verified.as_ref().err().map(|p| p.code.to_owned()),
        method: req.method.as_str().to_owned(),
        path: req.uri.path().to_owned(),
        raw_query: req.uri.query().map(str::to_owned),
        query: lossy_pairs(&req.query_pairs()),
        form: lossy_pairs(&req.form_pairs()),
        oauth_params: oauth_params
            .into_iter()
            .filter(|(n, _)| n != "oauth_signature")
            .collect(),
        user_id,
    };
    {
        let mut shared = inner.shared.lock().unwrap();
        shared.api_requests.push(recorded.clone());
        if verified.is_ok() {
            shared.verified_api += 1;
        }
    }
    if let Err(problem) = verified {
        return reject(&inner, problem);
    }
    let screen_name = inner.options.lock().unwrap().screen_name.clone();
    if recorded.path == "/api/me" && req.method == Method::GET {
        return Json(json!({"user_id": recorded.user_id, "screen_name": screen_name}))
            .into_response();
    }
    let pairs =
        |p: &[(String, String)]| -> Value { p.iter().map(|(k, v)| json!([k, v])).collect() };
    let body_sha256: String = Sha256::digest(&req.body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Json(json!({
        "method": recorded.method,
        "path": recorded.path,
        "query": pairs(&recorded.query),
        "form": pairs(&recorded.form),
        "user": recorded.user_id,
        "body_sha256": body_sha256,
    }))
    .into_response()
}
