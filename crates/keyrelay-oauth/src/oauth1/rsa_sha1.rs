//! RSA-SHA1 (RFC 5849 §3.4.3), compiled only with the `rsa-sha1` feature.
//!
//! The feature is off by default because the `rsa` crate carries an unfixed
//! advisory, RUSTSEC-2023-0071 (the "Marvin" timing side channel: its
//! private-key arithmetic is not constant time). The attack targets RSA
//! decryption, which keyrelay never does, and signing here uses the crate's
//! random blinding; still, a build that does not need RSA-SHA1 providers
//! should not carry the crate (or its audit warning) at all.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::rngs::OsRng;
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use sha1::{Digest as _, Sha1};

use super::Oauth1Error;

/// A consumer's RSA private key. `Debug` is redacted (the `rsa` crate's own
/// `Debug` prints the private exponent and primes).
#[derive(Clone)]
pub(crate) struct RsaKey(RsaPrivateKey);

impl fmt::Debug for RsaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RsaKey([redacted])")
    }
}

/// Parses a PEM private key: PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1 (`BEGIN
/// RSA PRIVATE KEY`). Errors never quote the input.
pub(crate) fn parse_private_key(pem: &str) -> Result<RsaKey, Oauth1Error> {
    let pem = pem.trim();
    if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err(Oauth1Error::InvalidRsaKey(
            "the key is encrypted; store it decrypted (`openssl pkcs8 -topk8 -nocrypt`)".to_owned(),
        ));
    }
    let key = RsaPrivateKey::from_pkcs8_pem(pem)
        .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
        .map_err(|_| {
            Oauth1Error::InvalidRsaKey(
                "expected a PEM RSA private key, PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1 \
                 (`BEGIN RSA PRIVATE KEY`)"
                    .to_owned(),
            )
        })?;
    key.validate().map_err(|_| {
        Oauth1Error::InvalidRsaKey("the RSA key is inconsistent (failed validation)".to_owned())
    })?;
    Ok(RsaKey(key))
}

/// `base64(RSASSA-PKCS1-v1_5-SIGN(key, SHA1(base_string)))`.
pub(crate) fn sign(key: &RsaKey, base_string: &str) -> Result<String, Oauth1Error> {
    let digest = Sha1::digest(base_string.as_bytes());
    // PKCS#1 v1.5 signatures are deterministic: the RNG only blinds the
    // private-key operation against timing measurements.
    let signature = key
        .0
        .sign_with_rng(&mut OsRng, Pkcs1v15Sign::new::<Sha1>(), &digest)
        .map_err(|e| Oauth1Error::Signing(format!("RSA-SHA1 signing failed: {e}")))?;
    Ok(STANDARD.encode(signature))
}
