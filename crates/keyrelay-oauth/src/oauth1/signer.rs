//! The request signer and the `Authorization: OAuth …` header (RFC 5849
//! §3.1, §3.5.1).

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use keyrelay_vault::{ClientSecret, TokenSecret, Zeroizing};
use rand::RngCore as _;
use rand::rngs::OsRng;

use super::Oauth1Error;
use super::base_string::signature_base_string;
use super::encode::percent_encode;
use super::sign::{SignatureMethod, hmac_signature, shared_key};

/// `oauth_nonce` and `oauth_timestamp` of one request; injectable so that
/// tests can reproduce published signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningParams {
    /// Unique per timestamp (§3.3); any string, encoded where it is sent.
    pub nonce: String,
    /// Seconds since the Unix epoch.
    pub timestamp: u64,
}

impl SigningParams {
    /// A fresh nonce (128 random bits from the OS as 32 lowercase hex
    /// digits, unreserved so it reads the same encoded or not) and the current time.
    pub fn generate() -> Result<Self, Oauth1Error> {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| Oauth1Error::Clock)?
            .as_secs();
        Ok(SigningParams {
            nonce: new_nonce(),
            timestamp,
        })
    }
}

fn new_nonce() -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    bytes
        .iter()
        .flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0x0F)]])
        .map(char::from)
        .collect()
}

/// An `Authorization` header value (`OAuth realm="…", oauth_…="…"`).
///
/// Not `Display`, and `Debug` is redacted: with PLAINTEXT the signature *is*
/// the consumer and token secrets, and with any method the header lets its
/// holder replay the request. Zeroized on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedHeader(Zeroizing<String>);

impl SignedHeader {
    /// The header value. Call only where the request is sent.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SignedHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SignedHeader([redacted])")
    }
}

/// Where the signing key comes from.
#[derive(Clone)]
enum ConsumerKey {
    /// HMAC-SHA1, HMAC-SHA256 or PLAINTEXT with the consumer secret.
    Shared {
        method: SignatureMethod,
        secret: ClientSecret,
    },
    /// RSA-SHA1 with the consumer's private key (boxed: it is large).
    #[cfg(feature = "rsa-sha1")]
    Rsa(Box<super::rsa_sha1::RsaKey>),
}

/// Signs OAuth 1.0a requests for one consumer (provider app) and, once
/// authorized, one token.
///
/// `Debug` shows the consumer key, the method, the realm and whether a token
/// is set; never the secrets, the private key or the token.
#[derive(Clone)]
pub struct Oauth1Signer {
    consumer_key: String,
    key: ConsumerKey,
    token: Option<(String, TokenSecret)>,
    realm: Option<String>,
    send_version: bool,
}

impl fmt::Debug for Oauth1Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Oauth1Signer")
            .field("consumer_key", &self.consumer_key)
            .field("method", &self.signature_method())
            .field("has_token", &self.token.is_some())
            .field("realm", &self.realm)
            .field("send_version", &self.send_version)
            .finish_non_exhaustive()
    }
}

/// `oauth_*` names the signer sets itself; extra protocol parameters may not
/// take them.
const SIGNER_PARAMS: &[&str] = &[
    "oauth_consumer_key",
    "oauth_token",
    "oauth_signature_method",
    "oauth_timestamp",
    "oauth_nonce",
    "oauth_version",
    "oauth_signature",
];

impl Oauth1Signer {
    /// A signer with a consumer secret: HMAC-SHA1, HMAC-SHA256 or PLAINTEXT.
    ///
    /// RSA-SHA1 takes a private key instead: see [`Oauth1Signer::rsa_sha1`]
    /// ([`Oauth1Error::RsaKeyRequired`] here).
    pub fn new(
        method: SignatureMethod,
        consumer_key: impl Into<String>,
        consumer_secret: ClientSecret,
    ) -> Result<Self, Oauth1Error> {
        if method == SignatureMethod::RsaSha1 {
            return Err(Oauth1Error::RsaKeyRequired);
        }
        Ok(Self::with_key(
            consumer_key.into(),
            ConsumerKey::Shared {
                method,
                secret: consumer_secret,
            },
        ))
    }

    /// An RSA-SHA1 signer with the consumer's PEM private key (PKCS#8 or
    /// PKCS#1, unencrypted).
    ///
    /// Without the `rsa-sha1` feature this always fails with
    /// [`Oauth1Error::RsaSha1Unavailable`].
    #[cfg(feature = "rsa-sha1")]
    pub fn rsa_sha1(
        consumer_key: impl Into<String>,
        private_key_pem: &str,
    ) -> Result<Self, Oauth1Error> {
        let key = super::rsa_sha1::parse_private_key(private_key_pem)?;
        Ok(Self::with_key(
            consumer_key.into(),
            ConsumerKey::Rsa(Box::new(key)),
        ))
    }

    /// An RSA-SHA1 signer with the consumer's PEM private key (PKCS#8 or
    /// PKCS#1, unencrypted).
    ///
    /// Without the `rsa-sha1` feature this always fails with
    /// [`Oauth1Error::RsaSha1Unavailable`].
    #[cfg(not(feature = "rsa-sha1"))]
    pub fn rsa_sha1(
        consumer_key: impl Into<String>,
        private_key_pem: &str,
    ) -> Result<Self, Oauth1Error> {
        let _ = (consumer_key.into(), private_key_pem);
        Err(Oauth1Error::RsaSha1Unavailable)
    }

    fn with_key(consumer_key: String, key: ConsumerKey) -> Self {
        Oauth1Signer {
            consumer_key,
            key,
            token: None,
            realm: None,
            send_version: false,
        }
    }

    /// Signs with a token (temporary or access) and its secret from now on.
    pub fn with_token(mut self, token: impl Into<String>, token_secret: TokenSecret) -> Self {
        self.token = Some((token.into(), token_secret));
        self
    }

    /// Sends `realm="…"` first in the header (§3.5.1); it is never signed.
    pub fn with_realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = Some(realm.into());
        self
    }

    /// Whether to send (and sign) `oauth_version="1.0"`. Off by default: it
    /// is optional (§3.1), but some providers' examples include it (X's
    /// signature walk-through) and a few old servers require it.
    pub fn with_oauth_version(mut self, send: bool) -> Self {
        self.send_version = send;
        self
    }

    /// The signature method.
    pub fn signature_method(&self) -> SignatureMethod {
        match &self.key {
            ConsumerKey::Shared { method, .. } => *method,
            #[cfg(feature = "rsa-sha1")]
            ConsumerKey::Rsa(_) => SignatureMethod::RsaSha1,
        }
    }

    /// The consumer key (`oauth_consumer_key`), which is not a secret.
    pub fn consumer_key(&self) -> &str {
        &self.consumer_key
    }

    /// The `Authorization` header value for a request, with the given nonce
    /// and timestamp.
    ///
    /// - `method`: the HTTP method (uppercased for signing);
    /// - `url`: the full request URL; its query is signed;
    /// - `form_body`: the body when it is `application/x-www-form-urlencoded`
    ///   (see [`form_body_for_signing`](super::form_body_for_signing)), else
    ///   `None`;
    /// - `extra_oauth`: more protocol parameters, e.g. `oauth_callback` or
    ///   `oauth_verifier`; each name must start with `oauth_` and not be one
    ///   the signer sets (consumer key, token, signature method, timestamp,
    ///   nonce, version, signature).
    ///
    /// The header lists `realm` (if set), `oauth_consumer_key`, `oauth_token`
    /// (if set), `oauth_signature_method`, `oauth_timestamp`, `oauth_nonce`,
    /// `oauth_version` (if enabled), the extras in order, then
    /// `oauth_signature`: `name="encoded value"` joined by `", "`.
    pub fn authorization_header(
        &self,
        method: &str,
        url: &str,
        form_body: Option<&[u8]>,
        extra_oauth: &[(&str, &str)],
        params: &SigningParams,
    ) -> Result<SignedHeader, Oauth1Error> {
        let token = self.token.as_ref().map(|(t, s)| (t.as_str(), s));
        self.header_with_token(token, method, url, form_body, extra_oauth, params)
    }

    /// [`authorization_header`](Self::authorization_header) with a fresh
    /// nonce and the current time.
    pub fn authorize(
        &self,
        method: &str,
        url: &str,
        form_body: Option<&[u8]>,
        extra_oauth: &[(&str, &str)],
    ) -> Result<SignedHeader, Oauth1Error> {
        self.authorization_header(
            method,
            url,
            form_body,
            extra_oauth,
            &SigningParams::generate()?,
        )
    }

    /// The signature base string [`authorization_header`](Self::authorization_header)
    /// signs for the same arguments. Not secret; compare it with the
    /// provider's when it answers `signature_invalid`.
    pub fn base_string(
        &self,
        method: &str,
        url: &str,
        form_body: Option<&[u8]>,
        extra_oauth: &[(&str, &str)],
        params: &SigningParams,
    ) -> Result<String, Oauth1Error> {
        let token = self.token.as_ref().map(|(t, _)| t.as_str());
        let protocol = self.protocol_params(token, extra_oauth, params)?;
        signature_base_string(method, url, form_body, &as_refs(&protocol))
    }

    /// Signs with an explicit token instead of the signer's own (the flow
    /// signs with no token, then with the temporary one).
    pub(crate) fn header_with_token(
        &self,
        token: Option<(&str, &TokenSecret)>,
        method: &str,
        url: &str,
        form_body: Option<&[u8]>,
        extra_oauth: &[(&str, &str)],
        params: &SigningParams,
    ) -> Result<SignedHeader, Oauth1Error> {
        let protocol = self.protocol_params(token.map(|(t, _)| t), extra_oauth, params)?;
        let base = signature_base_string(method, url, form_body, &as_refs(&protocol))?;
        let token_secret = token.map(|(_, s)| s.expose_secret()).unwrap_or_default();
        let signature = Zeroizing::new(self.sign(&base, token_secret)?);

        let mut header = Zeroizing::new(String::from("OAuth "));
        let mut push = |name: &str, value: &str| {
            if header.len() > "OAuth ".len() {
                header.push_str(", ");
            }
            header.push_str(name);
            header.push_str("=\"");
            header.push_str(&percent_encode(value));
            header.push('"');
        };
        if let Some(realm) = &self.realm {
            push("realm", realm);
        }
        for (name, value) in &protocol {
            push(name, value);
        }
        push("oauth_signature", &signature);
        Ok(SignedHeader(header))
    }

    /// The protocol parameters in header order (without the signature).
    fn protocol_params<'a>(
        &'a self,
        token: Option<&'a str>,
        extra_oauth: &[(&'a str, &'a str)],
        params: &'a SigningParams,
    ) -> Result<Vec<(&'a str, String)>, Oauth1Error> {
        if params.nonce.is_empty() {
            return Err(Oauth1Error::InvalidParameter(
                "oauth_nonce must not be empty".to_owned(),
            ));
        }
        for (i, (name, _)) in extra_oauth.iter().enumerate() {
            if !name.starts_with("oauth_") || name.len() == "oauth_".len() {
                return Err(Oauth1Error::InvalidParameter(format!(
                    "extra protocol parameter `{}` must be named oauth_…; send other parameters in the query or body",
                    crate::lenient::sanitize(name, 40)
                )));
            }
            if SIGNER_PARAMS.contains(name) || extra_oauth[..i].iter().any(|(n, _)| n == name) {
                return Err(Oauth1Error::InvalidParameter(format!(
                    "protocol parameter `{}` is set twice; the signer sets consumer key, token, \
                     signature method, timestamp, nonce, version and signature itself",
                    crate::lenient::sanitize(name, 40)
                )));
            }
        }
        let mut out: Vec<(&str, String)> = Vec::with_capacity(6 + extra_oauth.len());
        out.push(("oauth_consumer_key", self.consumer_key.clone()));
        if let Some(token) = token {
            out.push(("oauth_token", token.to_owned()));
        }
        out.push((
            "oauth_signature_method",
            self.signature_method().name().to_owned(),
        ));
        out.push(("oauth_timestamp", params.timestamp.to_string()));
        out.push(("oauth_nonce", params.nonce.clone()));
        if self.send_version {
            out.push(("oauth_version", "1.0".to_owned()));
        }
        for (name, value) in extra_oauth {
            out.push((name, (*value).to_owned()));
        }
        Ok(out)
    }

    /// The `oauth_signature` value (before header encoding).
    fn sign(&self, base_string: &str, token_secret: &str) -> Result<String, Oauth1Error> {
        match &self.key {
            ConsumerKey::Shared { method, secret } => {
                let key = shared_key(secret.expose_secret(), token_secret);
                match method {
                    SignatureMethod::Plaintext => Ok(key.to_string()),
                    _ => hmac_signature(*method, &key, base_string),
                }
            }
            #[cfg(feature = "rsa-sha1")]
            ConsumerKey::Rsa(key) => super::rsa_sha1::sign(key, base_string),
        }
    }
}

fn as_refs<'a>(params: &'a [(&'a str, String)]) -> Vec<(&'a str, &'a str)> {
    params.iter().map(|(n, v)| (*n, v.as_str())).collect()
}
