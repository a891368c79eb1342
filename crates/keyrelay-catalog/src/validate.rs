//! Semantic validation of provider definitions.
//!
//! Definitions can arrive inline from API callers, so validation is also a
//! security boundary: it keeps the proxy and token exchange off plain http and
//! off obviously internal hosts unless the operator opted in with
//! `KEYRELAY_ALLOW_LOCAL_PROVIDERS=true`. Only IP literals and `localhost` can
//! be caught here; a public name resolving to a private address must still be
//! refused at connect time by the caller.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

use crate::definition::{AuthInjection, AuthMode, ProviderDefinition, TokenEndpointAuthMethod};
use crate::error::ValidationError;

/// Knobs for [`ProviderDefinition::validate`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ValidationOptions {
    /// Allow `http://` URLs and loopback/private/link-local hosts, for local
    /// development and tests (`KEYRELAY_ALLOW_LOCAL_PROVIDERS=true`).
    pub allow_local: bool,
}

const ALLOW_LOCAL_HINT: &str = "only allowed with KEYRELAY_ALLOW_LOCAL_PROVIDERS=true";

/// Parameters keyrelay sets itself in the OAuth 2.0 authorization request;
/// letting a definition override them would break state/PKCE protection.
const RESERVED_AUTHORIZATION_PARAMS: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "state",
    "scope",
    "code_challenge",
    "code_challenge_method",
];

/// OAuth 1.0a protocol parameter names (RFC 5849) start with this;
/// keyrelay sets `oauth_token` on the authorization redirect itself. Other
/// names, including `scope` (Trello) or `perms` (Flickr), are provider
/// parameters there and may be given.
const OAUTH1_PROTOCOL_PARAM_PREFIX: &str = "oauth_";

/// Parameters keyrelay sets itself in token requests.
const RESERVED_TOKEN_PARAMS: &[&str] = &[
    "grant_type",
    "code",
    "redirect_uri",
    "client_id",
    "client_secret",
    "code_verifier",
    "refresh_token",
];

/// Headers the proxy must own: overriding them would redirect or corrupt the
/// request.
const FORBIDDEN_INJECTION_HEADERS: &[&str] =
    &["host", "content-length", "transfer-encoding", "connection"];

impl ProviderDefinition {
    /// Checks the definition, collecting every problem rather than stopping
    /// at the first.
    pub fn validate(&self, opts: &ValidationOptions) -> Result<(), ValidationError> {
        let mut problems = Vec::new();
        let declared = self.check_connection_config(&mut problems);

        let url_fields = [
            ("issuer", &self.issuer, UrlKind::Issuer),
            (
                "authorization_endpoint",
                &self.authorization_endpoint,
                UrlKind::Endpoint,
            ),
            ("token_endpoint", &self.token_endpoint, UrlKind::Endpoint),
            (
                "revocation_endpoint",
                &self.revocation_endpoint,
                UrlKind::Endpoint,
            ),
            (
                "introspection_endpoint",
                &self.introspection_endpoint,
                UrlKind::Endpoint,
            ),
            (
                "request_token_endpoint",
                &self.request_token_endpoint,
                UrlKind::Endpoint,
            ),
            (
                "access_token_endpoint",
                &self.access_token_endpoint,
                UrlKind::Endpoint,
            ),
            ("api_base_url", &self.api_base_url, UrlKind::ApiBase),
        ];
        for (field, value, kind) in url_fields {
            if let Some(value) = value {
                check_url(field, value, kind, &declared, opts, &mut problems);
            }
        }

        self.check_auth_mode(&mut problems);
        self.check_people_fields(&mut problems);
        self.check_oauth_extras(&mut problems);
        self.check_allowed_hosts(opts, &mut problems);
        self.check_auth_injection(&mut problems);
        self.check_verification(&mut problems);

        if problems.is_empty() {
            Ok(())
        } else {
            Err(ValidationError { problems })
        }
    }

    /// Returns the set of well-formed declared names (used to check
    /// placeholders).
    fn check_connection_config(&self, problems: &mut Vec<String>) -> BTreeSet<&str> {
        let mut declared = BTreeSet::new();
        for name in &self.connection_config {
            if !is_config_name(name) {
                problems.push(format!(
                    "connection_config: {name:?} is not a valid name; use 1-64 characters of a-z, 0-9 and _"
                ));
            } else if !declared.insert(name.as_str()) {
                problems.push(format!(
                    "connection_config: {name:?} is listed twice; remove the duplicate"
                ));
            }
        }
        declared
    }

    fn check_auth_mode(&self, problems: &mut Vec<String>) {
        let mode = self.auth_mode;
        let oauth2_fields = [
            ("issuer", self.issuer.is_some()),
            ("token_endpoint", self.token_endpoint.is_some()),
            ("revocation_endpoint", self.revocation_endpoint.is_some()),
            (
                "introspection_endpoint",
                self.introspection_endpoint.is_some(),
            ),
        ];
        let oauth1_fields = [
            (
                "request_token_endpoint",
                self.request_token_endpoint.is_some(),
            ),
            (
                "access_token_endpoint",
                self.access_token_endpoint.is_some(),
            ),
        ];
        let mut refuse = |fields: &[(&str, bool)], why: &str| {
            for (field, set) in fields {
                if *set {
                    problems.push(format!(
                        "{field}: not used with auth_mode {mode} ({why}); remove it or change auth_mode"
                    ));
                }
            }
        };
        match mode {
            AuthMode::OAuth2 => {
                refuse(&oauth1_fields, "it is an OAuth 1.0a field");
            }
            AuthMode::OAuth2ClientCredentials => {
                refuse(&oauth1_fields, "it is an OAuth 1.0a field");
            }
            AuthMode::OAuth1 => {
                refuse(
                    &oauth2_fields,
                    "OAuth 1.0a uses request_token_endpoint and access_token_endpoint",
                );
                if self.token_response.is_some() {
                    refuse(
                        &[("token_response", true)],
                        "OAuth 1.0a token responses are form-encoded",
                    );
                }
                // `pkce` and `token_endpoint_auth_method` have defaults, so
                // only a non-default value shows that one was set.
                refuse(
                    &[
                        ("pkce", !self.pkce),
                        (
                            "token_endpoint_auth_method",
                            self.token_endpoint_auth_method != TokenEndpointAuthMethod::default(),
                        ),
                    ],
                    "it is an OAuth 2.0 field",
                );
                if self.auth_injection.is_some() {
                    refuse(
                        &[("auth_injection", true)],
                        "the proxy always signs OAuth 1.0a requests",
                    );
                }
            }
            AuthMode::ApiKey | AuthMode::Basic => {
                let mut fields = Vec::new();
                fields.extend_from_slice(&oauth2_fields);
                fields.extend_from_slice(&oauth1_fields);
                fields.extend_from_slice(&[
                    (
                        "authorization_endpoint",
                        self.authorization_endpoint.is_some(),
                    ),
                    ("token_response", self.token_response.is_some()),
                    ("default_scopes", !self.default_scopes.is_empty()),
                    (
                        "authorization_params",
                        !self.authorization_params.is_empty(),
                    ),
                    ("token_params", !self.token_params.is_empty()),
                    ("scope_separator", self.scope_separator.is_some()),
                    (
                        "token_lifetime_seconds",
                        self.token_lifetime_seconds.is_some(),
                    ),
                ]);
                refuse(&fields, "it has no OAuth flow");
            }
        }
        if mode == AuthMode::Basic && self.auth_injection.is_some() {
            problems.push(
                "auth_injection: not used with auth_mode basic (the proxy always sends Authorization: Basic); remove it or use auth_mode api_key"
                    .to_owned(),
            );
        }
        if self.signature_method.is_some() && mode != AuthMode::OAuth1 {
            problems.push(format!(
                "signature_method: only used with auth_mode oauth1 (got auth_mode {mode}); remove it"
            ));
        }

        let mut require = |field: &str, set: bool, alternative: &str| {
            if !set {
                problems.push(format!(
                    "{field}: required for auth_mode {mode}{alternative}; add it"
                ));
            }
        };
        let via_issuer = " unless issuer is set (endpoints are then discovered)";
        match mode {
            AuthMode::OAuth2 if self.issuer.is_none() => {
                require(
                    "authorization_endpoint",
                    self.authorization_endpoint.is_some(),
                    via_issuer,
                );
                require("token_endpoint", self.token_endpoint.is_some(), via_issuer);
            }
            AuthMode::OAuth2ClientCredentials if self.issuer.is_none() => {
                require("token_endpoint", self.token_endpoint.is_some(), via_issuer);
            }
            AuthMode::OAuth1 => {
                require(
                    "request_token_endpoint",
                    self.request_token_endpoint.is_some(),
                    "",
                );
                require(
                    "authorization_endpoint",
                    self.authorization_endpoint.is_some(),
                    "",
                );
                require(
                    "access_token_endpoint",
                    self.access_token_endpoint.is_some(),
                    "",
                );
            }
            _ => {}
        }
    }

    fn check_people_fields(&self, problems: &mut Vec<String>) {
        if self
            .display_name
            .as_deref()
            .is_some_and(|n| n.trim().is_empty())
        {
            problems.push("display_name: must not be empty; remove it or give a name".to_owned());
        }
        if let Some(docs) = &self.docs_url {
            let ok = Url::parse(docs)
                .map(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .unwrap_or(false);
            if !ok {
                problems.push(format!(
                    "docs_url: must be an http(s) URL such as https://example.com/docs (got {})",
                    shorten(docs)
                ));
            }
        }
        for category in &self.categories {
            if category.trim().is_empty() {
                problems.push(
                    "categories: entries must not be empty; remove the empty entry".to_owned(),
                );
            }
        }
    }

    fn check_oauth_extras(&self, problems: &mut Vec<String>) {
        if self.scope_separator.as_deref() == Some("") {
            problems.push(
                "scope_separator: must not be empty; remove it to use a space, or set e.g. \",\""
                    .to_owned(),
            );
        }
        let separator = self.scope_separator();
        for scope in &self.default_scopes {
            if scope.is_empty() {
                problems.push(
                    "default_scopes: entries must not be empty; remove the empty entry".to_owned(),
                );
            } else if !separator.is_empty() && scope.contains(separator) {
                problems.push(format!(
                    "default_scopes: {scope:?} contains the scope separator {separator:?}; list each scope as its own entry"
                ));
            }
        }
        if self.auth_mode == AuthMode::OAuth1 {
            check_oauth1_authorization_params(&self.authorization_params, problems);
        } else {
            check_params(
                "authorization_params",
                &self.authorization_params,
                RESERVED_AUTHORIZATION_PARAMS,
                problems,
            );
        }
        check_params(
            "token_params",
            &self.token_params,
            RESERVED_TOKEN_PARAMS,
            problems,
        );
        if let Some(pointers) = &self.token_response {
            let fields = [
                ("access_token", &pointers.access_token),
                ("refresh_token", &pointers.refresh_token),
                ("expires_in", &pointers.expires_in),
                ("scope", &pointers.scope),
            ];
            for (name, pointer) in fields {
                if let Some(pointer) = pointer
                    && !is_json_pointer(pointer)
                {
                    problems.push(format!(
                        "token_response.{name}: {pointer:?} is not a JSON pointer; write it like \"/authed_user/{name}\" (start with /, escape ~ as ~0 and / as ~1)"
                    ));
                }
            }
        }
        if self.token_lifetime_seconds == Some(0) {
            problems.push(
                "token_lifetime_seconds: must be greater than 0; remove it if tokens do not expire"
                    .to_owned(),
            );
        }
    }

    fn check_allowed_hosts(&self, opts: &ValidationOptions, problems: &mut Vec<String>) {
        for host in &self.allowed_hosts {
            if let Some(why) = bare_host_problem(host) {
                problems.push(format!(
                    "allowed_hosts: {host:?} {why}; write a bare lowercase hostname like api.example.com (no scheme, port, path or wildcard)"
                ));
                continue;
            }
            let local = Host::parse(host)
                .map(|h| host_is_local(&h))
                .unwrap_or(false);
            if local && !opts.allow_local {
                problems.push(format!(
                    "allowed_hosts: {host:?} is a local, loopback or private address; such hosts are {ALLOW_LOCAL_HINT}"
                ));
            }
        }
    }

    fn check_auth_injection(&self, problems: &mut Vec<String>) {
        match &self.auth_injection {
            None | Some(AuthInjection::Bearer) => {}
            Some(AuthInjection::Header { name, format }) => {
                if !is_header_token(name) {
                    problems.push(format!(
                        "auth_injection.name: {name:?} is not a valid HTTP header name; use letters, digits and - (e.g. X-Api-Key)"
                    ));
                } else if FORBIDDEN_INJECTION_HEADERS.contains(&name.to_ascii_lowercase().as_str())
                {
                    problems.push(format!(
                        "auth_injection.name: the proxy sets {name} itself; choose the header the provider reads the credential from (e.g. Authorization or X-Api-Key)"
                    ));
                }
                if let Some(format) = format {
                    check_header_format(format, problems);
                }
            }
            Some(AuthInjection::Query { name }) => {
                if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    problems.push(format!(
                        "auth_injection.name: {name:?} is not a usable query parameter name; give a non-empty name without spaces (e.g. access_token)"
                    ));
                }
            }
        }
    }

    fn check_verification(&self, problems: &mut Vec<String>) {
        let Some(verification) = &self.verification else {
            return;
        };
        if !matches!(verification.method.as_str(), "GET" | "POST" | "HEAD") {
            problems.push(format!(
                "verification.method: {:?} is not supported; use GET, POST or HEAD (uppercase)",
                verification.method
            ));
        }
        let path = &verification.path;
        let bad_char = path
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '#' | '\\' | '{' | '}'));
        if !path.starts_with('/') || path.starts_with("//") || bad_char {
            problems.push(format!(
                "verification.path: {path:?} must be a path relative to api_base_url starting with a single / (e.g. \"/user\"), without spaces, #, \\ or placeholders"
            ));
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum UrlKind {
    Endpoint,
    /// RFC 8414 §2: no query or fragment.
    Issuer,
    /// The proxy appends request paths and queries to it.
    ApiBase,
}

fn check_url(
    field: &str,
    value: &str,
    kind: UrlKind,
    declared: &BTreeSet<&str>,
    opts: &ValidationOptions,
    problems: &mut Vec<String>,
) {
    let Some(substituted) = substitute_placeholders(field, value, declared, problems) else {
        return;
    };
    let url = match Url::parse(&substituted) {
        Ok(url) => url,
        Err(err) => {
            problems.push(format!(
                "{field}: not an absolute URL ({err}; got {}); write it like https://provider.example.com/path",
                shorten(value)
            ));
            return;
        }
    };
    match url.scheme() {
        "https" => {}
        "http" if opts.allow_local => {}
        "http" => problems.push(format!(
            "{field}: must be an https:// URL (got {}); http is {ALLOW_LOCAL_HINT}",
            shorten(value)
        )),
        _ => problems.push(format!(
            "{field}: must be an https:// URL (got {})",
            shorten(value)
        )),
    }
    if !url.username().is_empty() || url.password().is_some() {
        problems.push(format!(
            "{field}: must not contain user:password@ credentials; configure client credentials on the app instead"
        ));
    }
    if url.fragment().is_some() {
        problems.push(format!("{field}: must not contain a #fragment; remove it"));
    }
    if url.query().is_some() && kind != UrlKind::Endpoint {
        let fix = if kind == UrlKind::Issuer {
            "an issuer has no query (RFC 8414)"
        } else {
            "the proxy appends the request's own query"
        };
        problems.push(format!(
            "{field}: must not contain a ?query ({fix}); remove it"
        ));
    }
    match url.host() {
        None => problems.push(format!(
            "{field}: has no host (got {}); write it like https://provider.example.com/path",
            shorten(value)
        )),
        Some(host) if !opts.allow_local && host_is_local(&host) => problems.push(format!(
            "{field}: host {host} is a local, loopback or private address; such hosts are {ALLOW_LOCAL_HINT}"
        )),
        Some(_) => {}
    }
}

/// Replaces each `{connection_config.NAME}` with a dummy DNS label so the URL
/// can be parsed, reporting malformed, undeclared or misplaced placeholders.
/// Returns `None` when the template is too broken to parse meaningfully.
fn substitute_placeholders(
    field: &str,
    value: &str,
    declared: &BTreeSet<&str>,
    problems: &mut Vec<String>,
) -> Option<String> {
    let placeholders = match scan_placeholders(value) {
        Ok(p) => p,
        Err(why) => {
            problems.push(format!(
                "{field}: {why}; placeholders look like {{connection_config.NAME}}"
            ));
            return None;
        }
    };
    if placeholders.is_empty() {
        return Some(value.to_owned());
    }

    // Byte offsets of the URL parts in the raw template. Placeholders never
    // contain '/', '?', '#', ':' or '@', so these are found correctly.
    let authority_start = value.find("://").map(|i| i + 3);
    let authority_end = authority_start.map(|start| {
        value[start..]
            .find(['/', '?', '#'])
            .map_or(value.len(), |i| start + i)
    });
    let query_start = value.find(['?', '#']);
    let port_start = match (authority_start, authority_end) {
        (Some(s), Some(e)) => value[s..e].rfind(':').map(|i| s + i),
        _ => None,
    };

    let mut ok = true;
    let mut out = String::with_capacity(value.len());
    let mut last = 0;
    for p in &placeholders {
        let Some(name) = p.inner.strip_prefix("connection_config.") else {
            problems.push(format!(
                "{field}: unknown placeholder {{{}}}; only {{connection_config.NAME}} is supported",
                p.inner
            ));
            ok = false;
            continue;
        };
        if !declared.contains(name) {
            problems.push(format!(
                "{field}: placeholder {{{}}} names {name:?}, which is not declared in connection_config; add {name:?} to connection_config",
                p.inner
            ));
            ok = false;
        }
        let misplaced = if authority_start.is_none_or(|s| p.start < s) {
            Some("the scheme")
        } else if port_start.is_some_and(|s| p.start > s)
            && authority_end.is_some_and(|e| p.start < e)
        {
            Some("the port")
        } else if query_start.is_some_and(|q| p.start > q) {
            Some("the query or fragment")
        } else {
            None
        };
        if let Some(part) = misplaced {
            problems.push(format!(
                "{field}: placeholder {{{}}} is in {part}; placeholders may only appear in the host or path",
                p.inner
            ));
            ok = false;
        }
        out.push_str(&value[last..p.start]);
        out.push('x');
        last = p.end;
    }
    out.push_str(&value[last..]);
    ok.then_some(out)
}

struct Placeholder<'a> {
    /// Byte offset of `{`.
    start: usize,
    /// Byte offset just past `}`.
    end: usize,
    inner: &'a str,
}

/// Finds `{...}` groups; unbalanced or nested braces are an error.
fn scan_placeholders(value: &str) -> Result<Vec<Placeholder<'_>>, String> {
    let mut found = Vec::new();
    let mut open: Option<usize> = None;
    for (i, c) in value.char_indices() {
        match (c, open) {
            ('{', None) => open = Some(i),
            ('{', Some(_)) => return Err("nested '{'".to_owned()),
            ('}', Some(start)) => {
                found.push(Placeholder {
                    start,
                    end: i + 1,
                    inner: &value[start + 1..i],
                });
                open = None;
            }
            ('}', None) => return Err("'}' without a matching '{'".to_owned()),
            _ => {}
        }
    }
    if open.is_some() {
        return Err("'{' without a matching '}'".to_owned());
    }
    Ok(found)
}

fn check_header_format(format: &str, problems: &mut Vec<String>) {
    if format.chars().any(|c| c.is_control()) {
        problems.push(
            "auth_injection.format: must not contain control characters such as line breaks"
                .to_owned(),
        );
    }
    match scan_placeholders(format) {
        Err(why) => problems.push(format!(
            "auth_injection.format: {why}; use {{access_token}} or {{api_key}} where the credential goes"
        )),
        Ok(placeholders) => {
            for p in &placeholders {
                if !matches!(p.inner, "access_token" | "api_key") {
                    problems.push(format!(
                        "auth_injection.format: unknown placeholder {{{}}}; use {{access_token}} or {{api_key}}",
                        p.inner
                    ));
                }
            }
            if placeholders.is_empty() {
                problems.push(format!(
                    "auth_injection.format: {format:?} does not contain the credential; include {{access_token}} or {{api_key}}, e.g. \"Token {{api_key}}\""
                ));
            }
        }
    }
}

fn check_params(
    field: &str,
    params: &std::collections::BTreeMap<String, String>,
    reserved: &[&str],
    problems: &mut Vec<String>,
) {
    for key in params.keys() {
        if key.is_empty() {
            problems.push(format!(
                "{field}: parameter names must not be empty; remove the empty key"
            ));
        } else if reserved.contains(&key.as_str()) {
            problems.push(format!(
                "{field}.{key}: set by keyrelay itself and cannot be overridden; remove it"
            ));
        }
    }
}

/// OAuth 1.0a authorization redirects carry `oauth_token` (set by keyrelay)
/// and provider parameters; `oauth_`-prefixed names are protocol parameters.
fn check_oauth1_authorization_params(
    params: &std::collections::BTreeMap<String, String>,
    problems: &mut Vec<String>,
) {
    for key in params.keys() {
        if key.is_empty() {
            problems.push(
                "authorization_params: parameter names must not be empty; remove the empty key"
                    .to_owned(),
            );
        } else if key.starts_with(OAUTH1_PROTOCOL_PARAM_PREFIX) {
            problems.push(format!(
                "authorization_params.{key}: names starting with {OAUTH1_PROTOCOL_PARAM_PREFIX:?} are OAuth 1.0a protocol parameters set by keyrelay; remove it"
            ));
        }
    }
}

/// `[a-z0-9_]{1,64}`.
pub(crate) fn is_config_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// RFC 6901: empty (whole document) or `/`-prefixed with `~0`/`~1` escapes.
fn is_json_pointer(pointer: &str) -> bool {
    if pointer.is_empty() {
        return true;
    }
    if !pointer.starts_with('/') {
        return false;
    }
    let mut chars = pointer.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return false;
        }
    }
    true
}

/// RFC 9110 `token`.
fn is_header_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Why `host` is not a bare lowercase hostname, if it is not.
fn bare_host_problem(host: &str) -> Option<&'static str> {
    if host.is_empty() {
        return Some("is empty");
    }
    if host.contains("://") {
        return Some("has a scheme");
    }
    if !host
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return Some("contains characters not allowed in a hostname");
    }
    let labels_ok = host.len() <= 253
        && host.split('.').all(|label| {
            (1..=63).contains(&label.len()) && !label.starts_with('-') && !label.ends_with('-')
        });
    if !labels_ok {
        return Some("is not a valid hostname");
    }
    None
}

fn host_is_local<S: AsRef<str>>(host: &Host<S>) -> bool {
    match host {
        Host::Domain(domain) => {
            let domain = domain.as_ref().trim_end_matches('.').to_ascii_lowercase();
            domain == "localhost" || domain.ends_with(".localhost")
        }
        Host::Ipv4(ip) => ipv4_is_local(ip),
        Host::Ipv6(ip) => ipv6_is_local(ip),
    }
}

fn ipv4_is_local(ip: &Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        // 100.64.0.0/10, carrier-grade NAT (RFC 6598), often internal.
        || (a == 100 && (b & 0xc0) == 64)
}

fn ipv6_is_local(ip: &Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        // fc00::/7 unique local, fe80::/10 link-local.
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || ip.to_ipv4_mapped().is_some_and(|v4| ipv4_is_local(&v4))
}

/// Keeps error messages readable when a caller sends something huge.
fn shorten(value: &str) -> String {
    const MAX: usize = 120;
    if value.chars().count() <= MAX {
        value.to_owned()
    } else {
        let head: String = value.chars().take(MAX).collect();
        format!("{head}…")
    }
}
