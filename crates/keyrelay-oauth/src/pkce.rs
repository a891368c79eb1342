//! PKCE (RFC 7636) with the `S256` method, and `state` values.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyrelay_vault::{OAuthState, PkceVerifier};
use rand::RngCore as _;
use rand::rngs::OsRng;
use sha2::{Digest as _, Sha256};

/// A PKCE verifier and its `S256` challenge.
///
/// The verifier is kept server-side (it is a secret until the code is
/// exchanged); the challenge goes into the authorization URL.
#[derive(Debug, Clone)]
pub struct Pkce {
    pub verifier: PkceVerifier,
    /// `BASE64URL-NOPAD(SHA256(verifier))`; not a secret.
    pub challenge: String,
}

/// 32 bytes from the OS RNG, base64url without padding (43 characters).
fn random_b64url_32() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let out = URL_SAFE_NO_PAD.encode(bytes);
    bytes.fill(0);
    out
}

/// A new PKCE pair: the verifier is 43 base64url characters of 256 random
/// bits (RFC 7636 §4.1), the challenge its `S256` transform (§4.2).
pub fn pkce_s256() -> Pkce {
    let verifier = random_b64url_32();
    let challenge = s256_challenge(&verifier);
    Pkce {
        verifier: PkceVerifier::new(verifier),
        challenge,
    }
}

/// The `S256` code challenge of a verifier: `BASE64URL-NOPAD(SHA256(ASCII(verifier)))`.
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A new `state` value: 256 random bits, base64url without padding.
pub fn new_state() -> OAuthState {
    OAuthState::new(random_b64url_32())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_shape() {
        let p = pkce_s256();
        let v = p.verifier.expose_secret();
        assert_eq!(v.len(), 43);
        assert_eq!(URL_SAFE_NO_PAD.decode(v).unwrap().len(), 32);
        assert_eq!(p.challenge, s256_challenge(v));
        assert_ne!(pkce_s256().verifier, p.verifier);
    }
}
