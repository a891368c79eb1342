//! The three-legged flow (RFC 5849 §2): temporary credentials, the user's
//! authorization, token credentials. Requests are built and replies parsed
//! here; the server sends and receives.

use std::collections::BTreeMap;
use std::fmt;

use keyrelay_vault::{AccessToken, AuthorizationCode, TokenSecret};
use serde_json::Value;
use url::{Url, form_urlencoded};

use super::Oauth1Error;
use super::base_string::parse_request_url;
use super::signer::{Oauth1Signer, SigningParams};
use crate::lenient;
use crate::token::FormRequest;

const FORM: &str = "application/x-www-form-urlencoded";

/// The temporary-credentials request (§2.1): a signed `POST` to the request
/// token endpoint with `oauth_callback` among the signed protocol parameters.
///
/// It is signed with the consumer credentials only (a token set on `signer`
/// is not used). `callback` is keyrelay's callback URL, or `oob` for
/// out-of-band. The provider's `extra_params` (e.g. X's
/// `x_auth_access_type`, a `scope`) go in the form body, in key order, and
/// are signed; names starting with `oauth_` are skipped, as those are
/// protocol parameters.
pub fn temporary_credentials_request(
    signer: &Oauth1Signer,
    request_token_endpoint: &str,
    callback: &str,
    extra_params: &BTreeMap<String, String>,
    params: &SigningParams,
) -> Result<FormRequest, Oauth1Error> {
    let url = parse_request_url(request_token_endpoint)?;
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (k, v) in extra_params
        .iter()
        .filter(|(k, _)| !k.starts_with("oauth_"))
    {
        form.append_pair(k, v);
    }
    let body = form.finish();
    let header = signer.header_with_token(
        None,
        "POST",
        url.as_str(),
        Some(body.as_bytes()),
        &[("oauth_callback", callback)],
        params,
    )?;
    Ok(signed_post(url, header.expose_secret(), body))
}

/// The URL to send the user's browser to (§2.2):
/// `{authorization_endpoint}?oauth_token=…`, keeping the endpoint's own query
/// parameters, then the provider's `extra_params` in key order (e.g.
/// Flickr's `perms`, Trello's `scope` and `expiration`).
///
/// `oauth_token` appears once: one already in the endpoint's query is
/// replaced, and extra params named `oauth_token` or already in the query are
/// skipped. Fails when the endpoint is not an absolute `http(s)` URL or has a
/// fragment.
pub fn authorization_redirect_url(
    authorization_endpoint: &str,
    temporary_token: &str,
    extra_params: &BTreeMap<String, String>,
) -> Result<Url, Oauth1Error> {
    let mut url = parse_request_url(authorization_endpoint)?;
    if url.fragment().is_some() {
        return Err(Oauth1Error::InvalidUrl(
            "authorization endpoint must not have a fragment".to_owned(),
        ));
    }
    let existing: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    // Rewritten only when an `oauth_token` must go, so the endpoint's own
    // encoding is otherwise left untouched.
    if existing.iter().any(|(k, _)| k == "oauth_token") {
        url.set_query(None);
        let mut q = url.query_pairs_mut();
        for (k, v) in existing.iter().filter(|(k, _)| k != "oauth_token") {
            q.append_pair(k, v);
        }
    }
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("oauth_token", temporary_token);
        for (k, v) in extra_params {
            if k == "oauth_token" || existing.iter().any(|(e, _)| e == k) {
                continue;
            }
            q.append_pair(k, v);
        }
    }
    Ok(url)
}

/// The token-credentials request (§2.3): a signed `POST` to the access token
/// endpoint with the temporary credentials and `oauth_verifier`, empty body.
pub fn token_credentials_request(
    signer: &Oauth1Signer,
    access_token_endpoint: &str,
    temporary_token: &str,
    temporary_secret: &TokenSecret,
    verifier: &AuthorizationCode,
    params: &SigningParams,
) -> Result<FormRequest, Oauth1Error> {
    let url = parse_request_url(access_token_endpoint)?;
    let header = signer.header_with_token(
        Some((temporary_token, temporary_secret)),
        "POST",
        url.as_str(),
        Some(b""),
        &[("oauth_verifier", verifier.expose_secret())],
        params,
    )?;
    Ok(signed_post(url, header.expose_secret(), String::new()))
}

fn signed_post(url: Url, authorization: &str, body: String) -> FormRequest {
    FormRequest {
        url: url.into(),
        headers: vec![
            ("Content-Type", FORM.to_owned()),
            ("Authorization", authorization.to_owned()),
        ],
        body,
    }
}

/// A temporary-credentials reply (§2.1).
#[derive(Clone, PartialEq, Eq)]
pub struct TemporaryCredentials {
    /// Goes into the authorization URL and comes back in the callback.
    pub token: String,
    pub token_secret: TokenSecret,
    /// Every other field except `oauth_callback_confirmed`.
    pub extra: BTreeMap<String, String>,
}

impl fmt::Debug for TemporaryCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let extra_keys: Vec<&str> = self.extra.keys().map(String::as_str).collect();
        f.debug_struct("TemporaryCredentials")
            .field("token", &"[redacted]")
            .field("token_secret", &self.token_secret)
            .field("extra_keys", &extra_keys)
            .finish()
    }
}

/// A token-credentials reply (§2.3): the access token and its secret.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenCredentials {
    pub token: AccessToken,
    pub token_secret: TokenSecret,
    /// The provider's other fields (X's `user_id` and `screen_name`, Xero's
    /// `oauth_session_handle` and `oauth_expires_in`, …). Values may be
    /// sensitive (a session handle renews the token): store them encrypted.
    pub extra: BTreeMap<String, String>,
}

impl fmt::Debug for TokenCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let extra_keys: Vec<&str> = self.extra.keys().map(String::as_str).collect();
        f.debug_struct("TokenCredentials")
            .field("token", &self.token)
            .field("token_secret", &self.token_secret)
            .field("extra_keys", &extra_keys)
            .finish()
    }
}

/// Parses the temporary-credentials reply.
///
/// Needs `oauth_token`, `oauth_token_secret` and
/// `oauth_callback_confirmed=true` (§2.1; without it the provider speaks
/// OAuth 1.0, whose flow allows session fixation:
/// [`Oauth1Error::CallbackNotConfirmed`]). See [`parse_token_credentials`]
/// for the accepted bodies and errors.
pub fn parse_temporary_credentials(
    status: u16,
    body: &[u8],
) -> Result<TemporaryCredentials, Oauth1Error> {
    let mut fields = parse_reply(status, body)?;
    let (token, token_secret) = take_credentials(status, &mut fields)?;
    let confirmed = fields
        .remove("oauth_callback_confirmed")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if !confirmed {
        return Err(Oauth1Error::CallbackNotConfirmed);
    }
    Ok(TemporaryCredentials {
        token,
        token_secret,
        extra: fields,
    })
}

/// Parses the token-credentials reply: `oauth_token` and
/// `oauth_token_secret`, every other field kept in `extra`.
///
/// The body is form-encoded (a JSON object of strings and numbers is accepted
/// too); the first occurrence of a name wins. An `oauth_problem` is
/// [`Oauth1Error::Problem`] whatever the status; another non-2xx reply is
/// [`Oauth1Error::Rejected`]; a 2xx body that is neither is
/// [`Oauth1Error::MalformedReply`]; an empty `oauth_token` or a missing
/// `oauth_token_secret` is [`Oauth1Error::MissingField`].
pub fn parse_token_credentials(status: u16, body: &[u8]) -> Result<TokenCredentials, Oauth1Error> {
    let mut fields = parse_reply(status, body)?;
    let (token, token_secret) = take_credentials(status, &mut fields)?;
    Ok(TokenCredentials {
        token: AccessToken::new(token),
        token_secret,
        extra: fields,
    })
}

fn take_credentials(
    status: u16,
    fields: &mut BTreeMap<String, String>,
) -> Result<(String, TokenSecret), Oauth1Error> {
    let token = fields
        .remove("oauth_token")
        .filter(|t| !t.trim().is_empty())
        .ok_or(Oauth1Error::MissingField {
            status,
            field: "oauth_token",
        })?;
    // May be empty: RSA-SHA1 does not use it.
    let secret = fields
        .remove("oauth_token_secret")
        .ok_or(Oauth1Error::MissingField {
            status,
            field: "oauth_token_secret",
        })?;
    Ok((token, TokenSecret::new(secret)))
}

/// The reply's fields, or the error it carries.
fn parse_reply(status: u16, body: &[u8]) -> Result<BTreeMap<String, String>, Oauth1Error> {
    let body = body
        .strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(body)
        .trim_ascii();
    let fields = if body.first() == Some(&b'{') {
        json_fields(body)
    } else {
        form_fields(body)
    };
    if let Some(fields) = &fields
        && let Some(problem) = fields.get("oauth_problem").filter(|p| !p.trim().is_empty())
    {
        let advice = fields.get("oauth_problem_advice").map(String::as_str);
        return Err(Oauth1Error::problem(status, problem, advice));
    }
    if !(200..300).contains(&status) {
        return Err(Oauth1Error::Rejected { status });
    }
    fields.ok_or_else(|| Oauth1Error::MalformedReply {
        status,
        reason: if body.is_empty() {
            "empty body".to_owned()
        } else {
            "the body is not form-encoded; check the endpoint URL".to_owned()
        },
    })
}

/// A form body as a map (first occurrence wins), or `None` when it does not
/// look form-encoded (whitespace, controls, HTML or JSON punctuation, or a
/// part without a name).
fn form_fields(body: &[u8]) -> Option<BTreeMap<String, String>> {
    let plausible = body.iter().all(|&b| {
        b >= 0x80 || (b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"' | b'{' | b'}'))
    }) && body
        .split(|&b| b == b'&')
        .filter(|part| !part.is_empty())
        .all(|part| part.first() != Some(&b'='));
    if !plausible {
        return None;
    }
    let mut out = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(body) {
        out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    (!out.is_empty()).then_some(out)
}

/// A JSON object's string and number fields.
fn json_fields(body: &[u8]) -> Option<BTreeMap<String, String>> {
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    let out: BTreeMap<String, String> = obj
        .into_iter()
        .filter_map(|(k, v)| match v {
            Value::String(s) => Some((k, s)),
            Value::Number(n) => Some((k, n.to_string())),
            Value::Bool(b) => Some((k, b.to_string())),
            _ => None,
        })
        .collect();
    (!out.is_empty()).then_some(out)
}

/// The provider's redirect back to keyrelay (§2.2).
#[derive(Clone, PartialEq, Eq)]
pub struct Oauth1Callback {
    /// The temporary token; the caller must match it to its pending flow.
    pub token: String,
    /// `oauth_verifier`, a one-time code exchanged at the token endpoint
    /// like an OAuth 2 authorization code, hence the type.
    pub verifier: AuthorizationCode,
}

impl fmt::Debug for Oauth1Callback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Oauth1Callback")
            .field("token", &"[redacted]")
            .field("verifier", &self.verifier)
            .finish()
    }
}

/// Parses the callback's query string (a leading `?` is ignored).
///
/// `denied=…` (X) or `oauth_problem=user_refused` / `permission_denied` is
/// [`Oauth1Error::AccessDenied`]; another `oauth_problem`, or a missing
/// `oauth_token` or `oauth_verifier`, is [`Oauth1Error::InvalidCallback`].
pub fn parse_callback(query: &str) -> Result<Oauth1Callback, Oauth1Error> {
    let query = query.strip_prefix('?').unwrap_or(query);
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        fields
            .entry(k.into_owned())
            .or_insert_with(|| v.into_owned());
    }
    if fields.contains_key("denied") {
        return Err(Oauth1Error::AccessDenied);
    }
    if let Some(problem) = fields.get("oauth_problem").map(|p| p.trim()) {
        if matches!(problem, "user_refused" | "permission_denied") {
            return Err(Oauth1Error::AccessDenied);
        }
        return Err(Oauth1Error::InvalidCallback(format!(
            "the provider reported oauth_problem `{}`",
            lenient::sanitize(problem, super::error::MAX_PROBLEM_CHARS)
        )));
    }
    let token = fields
        .remove("oauth_token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Oauth1Error::InvalidCallback("the callback has no oauth_token".to_owned())
        })?;
    let verifier = fields
        .remove("oauth_verifier")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            Oauth1Error::InvalidCallback(
                "the callback has no oauth_verifier; the provider may speak OAuth 1.0 rather than 1.0a"
                    .to_owned(),
            )
        })?;
    Ok(Oauth1Callback {
        token,
        verifier: AuthorizationCode::new(verifier),
    })
}
