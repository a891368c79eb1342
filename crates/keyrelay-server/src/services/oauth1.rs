//! What the connect flow and the proxy share for OAuth 1.0a providers: the
//! consumer's signer and the three endpoints made concrete for one
//! connection.

use keyrelay_catalog::{AuthMode, ProviderDefinition, SignatureMethod as CatalogMethod};
use keyrelay_oauth::oauth1::{Oauth1Error, Oauth1Signer, SignatureMethod};
use keyrelay_vault::ClientSecret;
use serde_json::{Map, Value};

use crate::app::App;
use crate::error::{ServiceError, ServiceResult};
use crate::services::integrations::{self, IntegrationView};
use crate::services::providers::substitute;

/// The three endpoints of the flow (RFC 5849 §2).
pub struct Endpoints {
    pub request_token: String,
    pub authorization: String,
    pub access_token: String,
}

impl Endpoints {
    /// The definition's endpoints with `{connection_config.…}` filled in.
    pub fn resolve(def: &ProviderDefinition, config: &Map<String, Value>) -> ServiceResult<Self> {
        let need = |value: &Option<String>, name: &str| {
            let template = value.as_deref().ok_or_else(|| {
                ServiceError::invalid(
                    "integration_misconfigured",
                    format!("this OAuth 1.0a provider has no {name}; add it to the definition"),
                )
            })?;
            substitute(template, config)
        };
        Ok(Endpoints {
            request_token: need(&def.request_token_endpoint, "request_token_endpoint")?,
            authorization: need(&def.authorization_endpoint, "authorization_endpoint")?,
            access_token: need(&def.access_token_endpoint, "access_token_endpoint")?,
        })
    }
}

/// The consumer's signer for `view`: its client id is the consumer key, its
/// client secret the consumer secret, or for RSA-SHA1 the PEM private key.
pub async fn consumer_signer(app: &App, view: &IntegrationView) -> ServiceResult<Oauth1Signer> {
    let secret = integrations::open_client_secret(app, &view.record).await?;
    signer_from(view, secret)
}

/// [`consumer_signer`] with the secret already opened.
pub fn signer_from(
    view: &IntegrationView,
    secret: Option<ClientSecret>,
) -> ServiceResult<Oauth1Signer> {
    let key = &view.record.key;
    let consumer_key = view.record.client_id.clone().unwrap_or_default();
    let secret = secret.ok_or_else(|| {
        ServiceError::invalid(
            "integration_misconfigured",
            format!(
                "integration {key:?} has no client secret; set the consumer secret (or, for \
                 RSA-SHA1, the PEM private key) with PATCH /v1/integrations/{key}"
            ),
        )
    })?;
    let built = match view.definition.signature_method() {
        CatalogMethod::RsaSha1 => Oauth1Signer::rsa_sha1(consumer_key, secret.expose_secret()),
        CatalogMethod::HmacSha1 => {
            Oauth1Signer::new(SignatureMethod::HmacSha1, consumer_key, secret)
        }
        CatalogMethod::HmacSha256 => {
            Oauth1Signer::new(SignatureMethod::HmacSha256, consumer_key, secret)
        }
        CatalogMethod::Plaintext => {
            Oauth1Signer::new(SignatureMethod::Plaintext, consumer_key, secret)
        }
    };
    built.map_err(|e| misconfigured(key, &e))
}

/// A signing failure that comes from the integration's settings.
pub fn misconfigured(key: &str, err: &Oauth1Error) -> ServiceError {
    ServiceError::invalid(
        "integration_misconfigured",
        format!("integration {key:?} cannot sign OAuth 1.0a requests: {err}"),
    )
}

/// For RSA-SHA1 providers, checks when it is set that the client secret is
/// a private key this build can sign with, so a wrong key (or a build
/// without RSA-SHA1) shows at once rather than at the first connection.
pub fn check_consumer_secret(
    def: &ProviderDefinition,
    secret: Option<&ClientSecret>,
) -> ServiceResult<()> {
    let (AuthMode::OAuth1, CatalogMethod::RsaSha1, Some(secret)) =
        (def.auth_mode, def.signature_method(), secret)
    else {
        return Ok(());
    };
    Oauth1Signer::rsa_sha1("", secret.expose_secret())
        .map(|_| ())
        .map_err(|e| {
            ServiceError::invalid(
                "invalid_request",
                format!(
                    "client_secret: RSA-SHA1 providers take the consumer's PEM private key here: {e}"
                ),
            )
        })
}
