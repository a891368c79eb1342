//! A connection's credential set: what the token vault seals as one JSON
//! document per connection, bound to the connection's row.

use chrono::{DateTime, Utc};
use keyrelay_vault::{AccessToken, ApiKey, Password, RefreshToken, TokenSecret, Zeroizing};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::app::App;
use crate::error::{ServiceError, ServiceResult};
use crate::vault::Field;

/// The credentials of one connection, by auth mode.
pub enum Credentials {
    OAuth2 {
        access_token: AccessToken,
        refresh_token: Option<RefreshToken>,
        token_type: Option<String>,
        expires_at: Option<DateTime<Utc>>,
        /// The provider's other reply fields (instance_url, id_token, …).
        extra: Map<String, Value>,
    },
    OAuth1 {
        token: AccessToken,
        token_secret: TokenSecret,
        extra: Map<String, Value>,
    },
    ApiKey {
        api_key: ApiKey,
    },
    Basic {
        username: String,
        password: Password,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kind, extra_keys): (&str, Vec<&String>) = match self {
            Credentials::OAuth2 { extra, .. } => ("OAuth2", extra.keys().collect()),
            Credentials::OAuth1 { extra, .. } => ("OAuth1", extra.keys().collect()),
            Credentials::ApiKey { .. } => ("ApiKey", vec![]),
            Credentials::Basic { .. } => ("Basic", vec![]),
        };
        f.debug_struct("Credentials")
            .field("kind", &kind)
            .field("secrets", &"[redacted]")
            .field("extra_keys", &extra_keys)
            .finish()
    }
}

/// The sealed JSON form. Lives only while sealing or opening; its strings
/// are zeroized on drop.
#[derive(Serialize, Deserialize, Default)]
struct Doc {
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access_token: Option<Zeroizing<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token: Option<Zeroizing<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token_secret: Option<Zeroizing<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    api_key: Option<Zeroizing<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    password: Option<Zeroizing<String>>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    extra: Map<String, Value>,
}

fn z(s: &str) -> Zeroizing<String> {
    Zeroizing::new(s.to_string())
}

impl Credentials {
    fn to_doc(&self) -> Doc {
        match self {
            Credentials::OAuth2 {
                access_token,
                refresh_token,
                token_type,
                expires_at,
                extra,
            } => Doc {
                kind: "oauth2".into(),
                access_token: Some(z(access_token.expose_secret())),
                refresh_token: refresh_token.as_ref().map(|t| z(t.expose_secret())),
                token_type: token_type.clone(),
                expires_at: *expires_at,
                extra: extra.clone(),
                ..Doc::default()
            },
            Credentials::OAuth1 {
                token,
                token_secret,
                extra,
            } => Doc {
                kind: "oauth1".into(),
                access_token: Some(z(token.expose_secret())),
                token_secret: Some(z(token_secret.expose_secret())),
                extra: extra.clone(),
                ..Doc::default()
            },
            Credentials::ApiKey { api_key } => Doc {
                kind: "api_key".into(),
                api_key: Some(z(api_key.expose_secret())),
                ..Doc::default()
            },
            Credentials::Basic { username, password } => Doc {
                kind: "basic".into(),
                username: Some(username.clone()),
                password: Some(z(password.expose_secret())),
                ..Doc::default()
            },
        }
    }

    fn from_doc(doc: Doc) -> ServiceResult<Self> {
        let missing = |what: &str| {
            ServiceError::Store(keyrelay_store::StoreError::Corrupt(format!(
                "stored {} credentials have no {what}",
                doc.kind
            )))
        };
        Ok(match doc.kind.as_str() {
            "oauth2" => Credentials::OAuth2 {
                access_token: AccessToken::new(
                    doc.access_token
                        .as_deref()
                        .ok_or_else(|| missing("access token"))?
                        .as_str(),
                ),
                refresh_token: doc
                    .refresh_token
                    .as_deref()
                    .map(|t| RefreshToken::new(t.as_str())),
                token_type: doc.token_type.clone(),
                expires_at: doc.expires_at,
                extra: doc.extra.clone(),
            },
            "oauth1" => Credentials::OAuth1 {
                token: AccessToken::new(
                    doc.access_token
                        .as_deref()
                        .ok_or_else(|| missing("token"))?
                        .as_str(),
                ),
                token_secret: TokenSecret::new(
                    doc.token_secret
                        .as_deref()
                        .ok_or_else(|| missing("token secret"))?
                        .as_str(),
                ),
                extra: doc.extra.clone(),
            },
            "api_key" => Credentials::ApiKey {
                api_key: ApiKey::new(
                    doc.api_key
                        .as_deref()
                        .ok_or_else(|| missing("API key"))?
                        .as_str(),
                ),
            },
            "basic" => Credentials::Basic {
                username: doc.username.clone().ok_or_else(|| missing("user name"))?,
                password: Password::new(
                    doc.password
                        .as_deref()
                        .ok_or_else(|| missing("password"))?
                        .as_str(),
                ),
            },
            other => {
                return Err(ServiceError::Store(keyrelay_store::StoreError::Corrupt(
                    format!("unknown credential kind {other:?}"),
                )));
            }
        })
    }

    /// Seals the credentials for the connection row `connection_id`.
    pub fn seal(&self, app: &App, connection_id: &str) -> ServiceResult<Vec<u8>> {
        let json = Zeroizing::new(
            serde_json::to_vec(&self.to_doc())
                .map_err(|e| keyrelay_vault::VaultError::Malformed(e.to_string()))?,
        );
        Ok(app.vault.seal(field(connection_id), &json))
    }

    /// Opens what `seal` stored for `connection_id`.
    pub async fn open(app: &App, connection_id: &str, sealed: &[u8]) -> ServiceResult<Self> {
        let json = app.vault.open_field(field(connection_id), sealed).await?;
        let doc: Doc = serde_json::from_slice(&json).map_err(|e| {
            keyrelay_store::StoreError::Corrupt(format!("stored credentials are not valid: {e}"))
        })?;
        Self::from_doc(doc)
    }

    /// The access-token expiry, for OAuth2 credentials.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Credentials::OAuth2 { expires_at, .. } => *expires_at,
            _ => None,
        }
    }
}

fn field(connection_id: &str) -> Field<'_> {
    Field::new("connections", connection_id, "credentials")
}
