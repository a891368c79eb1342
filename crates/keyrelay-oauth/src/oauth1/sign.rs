//! Signature methods (RFC 5849 §3.4.2–§3.4.4, plus HMAC-SHA256).

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use keyrelay_vault::Zeroizing;
use sha1::Sha1;
use sha2::Sha256;

use super::Oauth1Error;
use super::encode::percent_encode;
use crate::lenient;

/// How requests are signed (`oauth_signature_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureMethod {
    /// RFC 5849 §3.4.2; what nearly every provider uses.
    HmacSha1,
    /// HMAC with SHA-256, the same construction as HMAC-SHA1 (not in RFC
    /// 5849, but offered by some providers, e.g. NetSuite).
    HmacSha256,
    /// §3.4.4: the signature is the key itself, so it is only safe over TLS.
    Plaintext,
    /// §3.4.3: PKCS#1 v1.5 with SHA-1 and the consumer's RSA private key.
    /// Needs the `rsa-sha1` feature.
    RsaSha1,
}

impl SignatureMethod {
    /// The `oauth_signature_method` value.
    pub const fn name(self) -> &'static str {
        match self {
            SignatureMethod::HmacSha1 => "HMAC-SHA1",
            SignatureMethod::HmacSha256 => "HMAC-SHA256",
            SignatureMethod::Plaintext => "PLAINTEXT",
            SignatureMethod::RsaSha1 => "RSA-SHA1",
        }
    }
}

impl fmt::Display for SignatureMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SignatureMethod {
    type Err = Oauth1Error;

    /// Parses an `oauth_signature_method` name, ignoring ASCII case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        [
            SignatureMethod::HmacSha1,
            SignatureMethod::HmacSha256,
            SignatureMethod::Plaintext,
            SignatureMethod::RsaSha1,
        ]
        .into_iter()
        .find(|m| m.name().eq_ignore_ascii_case(s))
        .ok_or_else(|| Oauth1Error::UnsupportedSignatureMethod(lenient::sanitize(s, 40)))
    }
}

/// The shared-secret key (§3.4.2, §3.4.4): `encode(consumer_secret) "&"
/// encode(token_secret)`, the `&` present even when the token secret is empty.
pub(crate) fn shared_key(consumer_secret: &str, token_secret: &str) -> Zeroizing<String> {
    let mut key = Zeroizing::new(percent_encode(consumer_secret));
    key.push('&');
    key.push_str(&Zeroizing::new(percent_encode(token_secret)));
    key
}

/// HMAC-SHA1 or HMAC-SHA256 over the base string, base64 with padding.
pub(crate) fn hmac_signature(
    method: SignatureMethod,
    key: &str,
    base_string: &str,
) -> Result<String, Oauth1Error> {
    fn mac<M: Mac + hmac::digest::KeyInit>(key: &str, data: &str) -> Result<Vec<u8>, Oauth1Error> {
        // HMAC takes keys of any length; the error cannot happen.
        let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key.as_bytes())
            .map_err(|_| Oauth1Error::Signing("HMAC rejected the key".to_owned()))?;
        mac.update(data.as_bytes());
        Ok(mac.finalize().into_bytes().to_vec())
    }
    let digest = match method {
        SignatureMethod::HmacSha1 => mac::<Hmac<Sha1>>(key, base_string)?,
        SignatureMethod::HmacSha256 => mac::<Hmac<Sha256>>(key, base_string)?,
        SignatureMethod::Plaintext | SignatureMethod::RsaSha1 => {
            return Err(Oauth1Error::Signing(format!(
                "{method} is not an HMAC method"
            )));
        }
    };
    Ok(STANDARD.encode(digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_names_round_trip() {
        for m in [
            SignatureMethod::HmacSha1,
            SignatureMethod::HmacSha256,
            SignatureMethod::Plaintext,
            SignatureMethod::RsaSha1,
        ] {
            assert_eq!(m.name().parse::<SignatureMethod>().unwrap(), m);
            assert_eq!(m.to_string(), m.name());
        }
        assert_eq!(
            " hmac-sha1 ".parse::<SignatureMethod>().unwrap(),
            SignatureMethod::HmacSha1
        );
        let err = "HMAC-MD5".parse::<SignatureMethod>().unwrap_err();
        assert!(err.to_string().contains("HMAC-MD5"), "{err}");
    }

    #[test]
    fn shared_key_encodes_both_halves() {
        assert_eq!(*shared_key("a b&c", ""), "a%20b%26c&");
        assert_eq!(*shared_key("", "x~y+"), "&x~y%2B");
    }
}
