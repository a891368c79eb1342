//! The lenient token-response parser (RFC 6749 §5.1, §5.2, and what
//! providers actually send).

use std::fmt;

use keyrelay_catalog::TokenResponsePointers;
use keyrelay_vault::{AccessToken, RefreshToken};
use serde_json::{Map, Value};
use url::form_urlencoded;

use crate::lenient;

/// Tokens from a successful token endpoint reply.
#[derive(Clone, PartialEq)]
pub struct TokenSet {
    pub access_token: AccessToken,
    /// As given (`"bearer"`, `"Bearer"`, Slack's `"bot"`/`"user"`, …).
    pub token_type: Option<String>,
    pub refresh_token: Option<RefreshToken>,
    /// Lifetime of the access token in seconds, when the provider says.
    pub expires_in: Option<u64>,
    /// Granted scopes, when the reply lists them (RFC 6749 §5.1: absent means
    /// the requested ones).
    pub scopes: Option<Vec<String>>,
    /// Every other top-level field of the reply (e.g. `instance_url`,
    /// `id_token`, `team`, `authed_user`, `expires_at`, and also the raw
    /// `token_type`/`expires_in`/`scope`), EXCLUDING `access_token` and
    /// `refresh_token`: any key with one of those names is removed at every
    /// depth, so nested copies (Slack's `authed_user.access_token`) are gone
    /// too. Values may still be sensitive (`id_token`, Slack's incoming
    /// webhook URL): callers store `extra` encrypted.
    pub extra: Map<String, Value>,
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let extra_keys: Vec<&str> = self.extra.keys().map(String::as_str).collect();
        f.debug_struct("TokenSet")
            .field("access_token", &self.access_token)
            .field("token_type", &self.token_type)
            .field("refresh_token", &self.refresh_token)
            .field("expires_in", &self.expires_in)
            .field("scopes", &self.scopes)
            .field("extra_keys", &extra_keys)
            .finish()
    }
}

/// A token endpoint reply that is not a usable token set.
///
/// `Display` never includes token values or the raw body; the provider's
/// error code and description are included, stripped of control characters
/// and shortened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The provider returned an OAuth error (RFC 6749 §5.2), with a 4xx
    /// status or inside a 200 (Slack's `{"ok": false, "error": "invalid_code"}`,
    /// GitHub's `error=bad_verification_code&…`).
    #[error(
        "provider returned OAuth error `{error}` (HTTP {status}){}",
        describe(description)
    )]
    OAuth {
        status: u16,
        error: String,
        description: Option<String>,
    },
    /// The reply is not a token reply; `reason` says briefly what was wrong.
    #[error("invalid token response (HTTP {status}): {reason}")]
    Malformed { status: u16, reason: String },
}

fn describe(description: &Option<String>) -> String {
    description
        .as_deref()
        .map(|d| format!(": {d}"))
        .unwrap_or_default()
}

impl TokenError {
    /// The OAuth error code (`invalid_grant`, `bad_verification_code`, …), or
    /// `"invalid_token_response"` for a malformed reply.
    pub fn code(&self) -> &str {
        match self {
            TokenError::OAuth { error, .. } => error,
            TokenError::Malformed { .. } => "invalid_token_response",
        }
    }

    /// The HTTP status of the reply.
    pub fn status(&self) -> u16 {
        match self {
            TokenError::OAuth { status, .. } | TokenError::Malformed { status, .. } => *status,
        }
    }

    fn malformed(status: u16, reason: impl Into<String>) -> Self {
        TokenError::Malformed {
            status,
            reason: reason.into(),
        }
    }
}

const MAX_ERROR_CODE_CHARS: usize = 100;
const MAX_DESCRIPTION_CHARS: usize = 300;

/// Parses a token endpoint reply, accepting what real providers send.
///
/// - Body: a JSON object (whatever the content type says, `text/plain`,
///   `text/javascript` or none) when it starts with `{` after whitespace;
///   otherwise `application/x-www-form-urlencoded` (GitHub without an
///   `Accept` header). Anything else (HTML, plain text, empty) is
///   [`TokenError::Malformed`]. `content_type` is only used to word errors.
/// - Errors: a string `error` field is a [`TokenError::OAuth`] whatever the
///   status, including a 200 (with Slack's `"ok": false`, too). An object
///   `error` (Facebook, Google APIs) is read as well. `"ok": false` without an
///   error, or a non-2xx status without an error, is `Malformed`.
/// - `access_token` must be a non-empty string, else `Malformed` ("no
///   access_token in the reply"). Tokens are only ever strings.
/// - `expires_in` (or Facebook's legacy `expires` when it is absent) may be an
///   integer, a float or a numeric string; a negative, zero or unparseable
///   value is ignored (`None`, i.e. unknown: some providers use 0 for
///   "does not expire").
/// - `scope` may be a string, split on `scope_separator` and also on spaces
///   and commas (empties dropped, duplicates removed), or an array of strings.
/// - `pointers` (RFC 6901 JSON pointers) override where each field is read
///   from; a pointer that resolves to nothing usable falls back to the
///   standard top-level field. When the access token is taken from a nested
///   object, `token_type` is read from that object first (Slack's
///   `authed_user.token_type` is `"user"`).
pub fn parse_token_response(
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
    pointers: Option<&TokenResponsePointers>,
    scope_separator: &str,
) -> Result<TokenSet, TokenError> {
    let obj = parse_body(status, content_type, body)?;
    check_error(status, &obj)?;
    if !(200..300).contains(&status) {
        return Err(TokenError::malformed(
            status,
            "error status without an OAuth error in the reply",
        ));
    }

    let root = Value::Object(obj);
    let ptrs = pointers.cloned().unwrap_or_default();

    let (access_token, access_ptr) = lookup(
        &root,
        pointer(ptrs.access_token.as_ref()),
        "access_token",
        |v| lenient::non_empty_str(v).map(str::to_owned),
    );
    let Some(access_token) = access_token else {
        return Err(TokenError::malformed(
            status,
            "no access_token in the reply",
        ));
    };

    // token_type next to the access token it describes, then top level.
    let token_type = access_ptr
        .and_then(|p| p.rsplit_once('/'))
        .filter(|(parent, _)| !parent.is_empty())
        .and_then(|(parent, _)| root.pointer(&format!("{parent}/token_type")))
        .and_then(lenient::non_empty_str)
        .or_else(|| root.get("token_type").and_then(lenient::non_empty_str))
        .map(str::to_owned);

    let (refresh_token, _) = lookup(
        &root,
        pointer(ptrs.refresh_token.as_ref()),
        "refresh_token",
        |v| lenient::non_empty_str(v).map(str::to_owned),
    );

    let expires = |v: &Value| lenient::non_negative_int(v).filter(|n| *n > 0);
    let (mut expires_in, _) = lookup(
        &root,
        pointer(ptrs.expires_in.as_ref()),
        "expires_in",
        expires,
    );
    if expires_in.is_none() && root.get("expires_in").is_none() {
        expires_in = root.get("expires").and_then(expires);
    }

    let (scopes, _) = lookup(&root, pointer(ptrs.scope.as_ref()), "scope", |v| {
        parse_scopes(v, scope_separator)
    });

    let Value::Object(mut extra) = root else {
        return Err(TokenError::malformed(status, "reply is not an object"));
    };
    extra.remove("access_token");
    extra.remove("refresh_token");
    for v in extra.values_mut() {
        strip_tokens(v);
    }

    Ok(TokenSet {
        access_token: AccessToken::new(access_token),
        token_type,
        refresh_token: refresh_token.map(RefreshToken::new),
        expires_in,
        scopes,
        extra,
    })
}

fn pointer(p: Option<&String>) -> Option<&str> {
    p.map(String::as_str).filter(|p| !p.is_empty())
}

/// Reads a field through its pointer, falling back to the top-level field
/// when the pointer is absent or yields nothing usable. Also returns the
/// pointer that was used, if any.
fn lookup<'p, T>(
    root: &Value,
    pointer: Option<&'p str>,
    field: &str,
    read: impl Fn(&Value) -> Option<T>,
) -> (Option<T>, Option<&'p str>) {
    if let Some(p) = pointer
        && let Some(found) = root.pointer(p).and_then(&read)
    {
        return (Some(found), Some(p));
    }
    (root.get(field).and_then(&read), None)
}

fn parse_body(
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Map<String, Value>, TokenError> {
    // A UTF-8 byte order mark is not JSON whitespace, but some servers send one.
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let trimmed = body.trim_ascii();
    if trimmed.is_empty() {
        return Err(TokenError::malformed(status, "empty body"));
    }
    if trimmed.first() == Some(&b'{') {
        return match serde_json::from_slice::<Value>(trimmed) {
            Ok(Value::Object(obj)) => Ok(obj),
            Ok(_) => Err(TokenError::malformed(status, "JSON body is not an object")),
            Err(_) => Err(TokenError::malformed(status, "body is not valid JSON")),
        };
    }
    if trimmed.first() == Some(&b'[') && serde_json::from_slice::<Value>(trimmed).is_ok() {
        return Err(TokenError::malformed(status, "JSON body is not an object"));
    }
    match parse_form(trimmed) {
        Some(obj) => Ok(obj),
        None => {
            let what = content_type
                .and_then(|ct| ct.split(';').next())
                .map(|ct| lenient::sanitize(ct.trim(), 60))
                .filter(|ct| !ct.is_empty());
            let reason = match what {
                Some(ct) => format!("body ({ct}) is neither JSON nor form-encoded"),
                None => "body is neither JSON nor form-encoded".to_owned(),
            };
            Err(TokenError::malformed(status, reason))
        }
    }
}

/// A form-urlencoded body as a map of string values (first occurrence of a
/// name wins), or `None` when the body does not look form-encoded: it must
/// have no whitespace, controls or HTML/JSON punctuation, and every
/// `&`-separated part must be `name=value` with a non-empty name.
fn parse_form(body: &[u8]) -> Option<Map<String, Value>> {
    let plausible = body.iter().all(|&b| {
        b >= 0x80 || (b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"' | b'{' | b'}' | b'`'))
    });
    if !plausible {
        return None;
    }
    let parts_ok = body
        .split(|&b| b == b'&')
        .filter(|part| !part.is_empty())
        .all(|part| part.iter().position(|&b| b == b'=').is_some_and(|i| i > 0));
    if !parts_ok {
        return None;
    }
    let mut obj = Map::new();
    for (k, v) in form_urlencoded::parse(body) {
        if !obj.contains_key(k.as_ref()) {
            obj.insert(k.into_owned(), Value::String(v.into_owned()));
        }
    }
    (!obj.is_empty()).then_some(obj)
}

/// An OAuth error in the reply, whatever the status.
fn check_error(status: u16, obj: &Map<String, Value>) -> Result<(), TokenError> {
    let oauth = |error: &str, description: Option<&str>| TokenError::OAuth {
        status,
        error: lenient::sanitize(error.trim(), MAX_ERROR_CODE_CHARS),
        description: description
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(|d| lenient::sanitize(d, MAX_DESCRIPTION_CHARS)),
    };
    let str_field = |o: &Map<String, Value>, k: &str| {
        o.get(k).and_then(lenient::non_empty_str).map(str::to_owned)
    };
    match obj.get("error") {
        Some(Value::String(e)) if !e.trim().is_empty() => {
            let desc = str_field(obj, "error_description").or_else(|| str_field(obj, "message"));
            return Err(oauth(e, desc.as_deref()));
        }
        // Facebook: {"error": {"message", "type": "OAuthException", "code"}};
        // Google APIs: {"error": {"code": 401, "message", "status"}}.
        Some(Value::Object(e)) => {
            let code = ["error", "type", "status", "code"]
                .iter()
                .find_map(|k| match e.get(*k) {
                    Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
                    Some(Value::Number(n)) => Some(n.to_string()),
                    _ => None,
                })
                .unwrap_or_else(|| "server_error".to_owned());
            let desc = str_field(e, "message").or_else(|| str_field(e, "error_description"));
            return Err(oauth(&code, desc.as_deref()));
        }
        _ => {}
    }
    if obj.get("ok").and_then(lenient::boolean) == Some(false) {
        return Err(TokenError::malformed(
            status,
            "reply has \"ok\": false without an error code",
        ));
    }
    Ok(())
}

fn parse_scopes(v: &Value, separator: &str) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: &str| {
        let s = s.trim();
        if !s.is_empty() && !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    };
    match v {
        Value::String(s) => {
            let pieces: Vec<&str> = if separator.is_empty() {
                vec![s.as_str()]
            } else {
                s.split(separator).collect()
            };
            for piece in pieces {
                for scope in piece.split(|c: char| c == ',' || c.is_whitespace()) {
                    push(scope);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                if let Value::String(s) = item {
                    push(s);
                }
            }
        }
        _ => return None,
    }
    Some(out)
}

/// Removes every `access_token`/`refresh_token` key at any depth.
fn strip_tokens(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.remove("access_token");
            map.remove("refresh_token");
            for child in map.values_mut() {
                strip_tokens(child);
            }
        }
        Value::Array(items) => {
            for child in items {
                strip_tokens(child);
            }
        }
        _ => {}
    }
}
