//! A provider definition made concrete for one connection: placeholders
//! filled from its `connection_config`, and endpoints the definition leaves
//! out discovered from the issuer's metadata (RFC 8414, then OpenID), cached.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keyrelay_catalog::ProviderDefinition;
use keyrelay_oauth::{ServerMetadata, discovery_urls, parse_metadata};
use serde_json::{Map, Value};

use crate::app::App;
use crate::error::{ServiceError, ServiceResult};

const DISCOVERY_TTL: Duration = Duration::from_secs(3600);

/// Discovered metadata by issuer. Failures are not cached, so a provider
/// that was down is asked again on the next attempt.
#[derive(Default)]
pub struct DiscoveryCache {
    entries: Mutex<HashMap<String, (Instant, Arc<ServerMetadata>)>>,
}

/// Where to send each OAuth request for one connection.
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    pub issuer: Option<String>,
    pub authorization: Option<String>,
    pub token: Option<String>,
    pub revocation: Option<String>,
    pub introspection: Option<String>,
    pub userinfo: Option<String>,
    pub api_base_url: Option<String>,
    /// Send PKCE (S256): the definition allows it and, when discovered, the
    /// server lists S256.
    pub pkce: bool,
    /// The server promises `iss` on the callback (RFC 9207).
    pub iss_parameter_supported: bool,
}

/// Checks a connection's `connection_config` against the definition: every
/// declared name must be given, nothing else, and values must be safe to put
/// into a host name or path.
pub fn check_connection_config(
    def: &ProviderDefinition,
    config: &Map<String, Value>,
) -> ServiceResult<()> {
    for (name, value) in config {
        if !def.connection_config.contains(name) {
            return Err(ServiceError::invalid(
                "invalid_connection_config",
                format!(
                    "connection_config.{name}: this provider takes no such value (it takes: {})",
                    list_or_none(&def.connection_config)
                ),
            ));
        }
        let ok = value.as_str().is_some_and(is_safe_value);
        if !ok {
            return Err(ServiceError::invalid(
                "invalid_connection_config",
                format!(
                    "connection_config.{name}: must be a string of letters, digits, '-' and '.' \
                     (e.g. a subdomain), at most 253 characters"
                ),
            ));
        }
    }
    let missing: Vec<&String> = def
        .connection_config
        .iter()
        .filter(|n| !config.contains_key(*n))
        .collect();
    if !missing.is_empty() {
        return Err(ServiceError::invalid(
            "missing_connection_config",
            format!(
                "this provider needs connection_config values for: {}",
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    Ok(())
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

fn is_safe_value(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 253
        && !value.contains("..")
        && !value.starts_with(['.', '-'])
        && !value.ends_with(['.', '-'])
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// Fills `{connection_config.NAME}` placeholders.
pub fn substitute(template: &str, config: &Map<String, Value>) -> ServiceResult<String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{connection_config.") {
        out.push_str(&rest[..start]);
        let after = &rest[start + "{connection_config.".len()..];
        let end = after.find('}').ok_or_else(|| {
            ServiceError::invalid("invalid_provider", "an unterminated placeholder")
        })?;
        let name = &after[..end];
        let value = config.get(name).and_then(Value::as_str).ok_or_else(|| {
            ServiceError::invalid(
                "missing_connection_config",
                format!("this provider needs connection_config.{name}"),
            )
        })?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The endpoints for `def` with `config`, discovering what is missing.
pub async fn resolve(
    app: &App,
    def: &ProviderDefinition,
    config: &Map<String, Value>,
) -> ServiceResult<Endpoints> {
    let fill = |v: &Option<String>| v.as_deref().map(|t| substitute(t, config)).transpose();
    let mut endpoints = Endpoints {
        issuer: fill(&def.issuer)?,
        authorization: fill(&def.authorization_endpoint)?,
        token: fill(&def.token_endpoint)?,
        revocation: fill(&def.revocation_endpoint)?,
        introspection: fill(&def.introspection_endpoint)?,
        userinfo: None,
        api_base_url: fill(&def.api_base_url)?,
        pkce: def.pkce,
        iss_parameter_supported: false,
    };
    let needs_discovery = endpoints.token.is_none()
        || (def.auth_mode == keyrelay_catalog::AuthMode::OAuth2
            && endpoints.authorization.is_none());
    if let (true, Some(issuer)) = (needs_discovery, endpoints.issuer.clone()) {
        let meta = discover(app, &issuer).await?;
        let or = |mine: &mut Option<String>, theirs: &Option<String>| {
            if mine.is_none() {
                mine.clone_from(theirs);
            }
        };
        or(&mut endpoints.authorization, &meta.authorization_endpoint);
        or(&mut endpoints.token, &meta.token_endpoint);
        or(&mut endpoints.revocation, &meta.revocation_endpoint);
        or(&mut endpoints.introspection, &meta.introspection_endpoint);
        endpoints.userinfo.clone_from(&meta.userinfo_endpoint);
        endpoints.pkce = def.pkce && meta.supports_s256();
        endpoints.iss_parameter_supported = meta.authorization_response_iss_parameter_supported;
    }
    Ok(endpoints)
}

/// The issuer's metadata, from the cache or fetched.
pub async fn discover(app: &App, issuer: &str) -> ServiceResult<Arc<ServerMetadata>> {
    if let Some((at, meta)) = lock(&app.discovery.entries).get(issuer)
        && at.elapsed() < DISCOVERY_TTL
    {
        return Ok(meta.clone());
    }
    let urls = discovery_urls(issuer).map_err(|e| discovery_error(issuer, &e.to_string()))?;
    let mut last = String::from("no discovery document found");
    for url in urls {
        match fetch_metadata(app, &url, issuer).await {
            Ok(meta) => {
                let meta = Arc::new(meta);
                lock(&app.discovery.entries)
                    .insert(issuer.to_string(), (Instant::now(), meta.clone()));
                return Ok(meta);
            }
            Err(reason) => last = format!("{url}: {reason}"),
        }
    }
    Err(discovery_error(issuer, &last))
}

async fn fetch_metadata(app: &App, url: &str, issuer: &str) -> Result<ServerMetadata, String> {
    let parsed = url::Url::parse(url).map_err(|e| e.to_string())?;
    crate::net::check_url(&parsed, app.config.allow_local_providers)?;
    let resp = app
        .http
        .get(parsed)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| crate::services::outbound::describe(&e))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!("answered HTTP {}", status.as_u16()));
    }
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    parse_metadata(&body, issuer).map_err(|e| e.to_string())
}

fn discovery_error(issuer: &str, reason: &str) -> ServiceError {
    ServiceError::Upstream {
        code: "discovery_failed",
        message: format!(
            "could not discover the OAuth endpoints of {issuer} ({reason}); check the provider's \
             issuer, or give its endpoints in the definition"
        ),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
