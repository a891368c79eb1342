//! Random API tokens, ids and webhook secrets, and how tokens are stored.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::rngs::OsRng;
use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::secret::WebhookSecret;

fn random_32() -> Zeroizing<[u8; 32]> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(bytes.as_mut());
    bytes
}

/// A new bearer token: `prefix` + 43 base64url chars of 256 random bits.
///
/// The prefix (e.g. `kr_sk_`) makes leaked tokens recognisable to secret
/// scanners and to humans.
pub fn generate_token(prefix: &str) -> String {
    let bytes = random_32();
    let mut out = String::with_capacity(prefix.len() + 43);
    out.push_str(prefix);
    URL_SAFE_NO_PAD.encode_string(bytes.as_ref(), &mut out);
    out
}

/// A new public identifier: `prefix` + 20 random `[a-z0-9]` chars (~103 bits,
/// enough to never collide; not a secret).
pub fn generate_id(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = OsRng;
    let mut out = String::with_capacity(prefix.len() + 20);
    out.push_str(prefix);
    for _ in 0..20 {
        let i = rng.gen_range(0..ALPHABET.len());
        out.push(char::from(ALPHABET.get(i).copied().unwrap_or(b'0')));
    }
    out
}

/// A new webhook signing secret in the Standard Webhooks format:
/// `whsec_` + standard base64 of 32 random bytes.
pub fn webhook_secret() -> WebhookSecret {
    let bytes = random_32();
    let mut out = String::with_capacity(6 + 44);
    out.push_str("whsec_");
    STANDARD.encode_string(bytes.as_ref(), &mut out);
    WebhookSecret::new(out)
}

/// SHA-256 of a whole token string, the only form in which tokens are stored.
///
/// Tokens carry 256 bits of randomness, so they cannot be guessed or
/// brute-forced from the hash; a slow password hash (argon2, bcrypt) would
/// add cost to every request and no security. A fast hash also allows a
/// direct indexed lookup by hash.
#[derive(Clone, Copy)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// Hashes a presented or newly generated token (prefix included).
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Rebuilds a stored hash; `None` unless exactly 32 bytes.
    pub fn from_slice(b: &[u8]) -> Option<Self> {
        b.try_into().ok().map(Self)
    }

    /// The raw hash, for storage.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Constant-time comparison, so timing does not reveal matching prefixes.
    pub fn ct_eq(&self, other: &TokenHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl PartialEq for TokenHash {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other)
    }
}

impl Eq for TokenHash {}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let head = self.0.get(..4).unwrap_or_default();
        write!(f, "TokenHash({}…)", hex::encode(head))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_prefix_and_length() {
        let t = generate_token("kr_sk_");
        assert!(t.starts_with("kr_sk_"));
        assert_eq!(t.len(), 6 + 43);
        let body = &t[6..];
        assert!(
            body.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_eq!(URL_SAFE_NO_PAD.decode(body).unwrap().len(), 32);
        assert_ne!(generate_token("kr_sk_"), t);
    }

    #[test]
    fn ids_are_lowercase_alphanumeric() {
        let id = generate_id("prj_");
        assert_eq!(id.len(), 4 + 20);
        assert!(
            id[4..]
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        assert_ne!(generate_id("prj_"), id);
    }

    #[test]
    fn hashes() {
        let t = generate_token("kr_sk_");
        let h = TokenHash::of(&t);
        assert_eq!(
            h.as_bytes().as_slice(),
            Sha256::digest(t.as_bytes()).as_slice()
        );
        assert!(h.ct_eq(&TokenHash::of(&t)));
        assert!(!h.ct_eq(&TokenHash::of("kr_sk_other")));
        assert_eq!(TokenHash::from_slice(h.as_bytes()), Some(h));
        assert_eq!(TokenHash::from_slice(&[0u8; 31]), None);
        let dbg = format!("{h:?}");
        assert_eq!(
            dbg,
            format!("TokenHash({}…)", hex::encode(&h.as_bytes()[..4]))
        );
        assert!(!dbg.contains(&hex::encode(h.as_bytes())));
    }

    #[test]
    fn webhook_secret_format() {
        let s = webhook_secret();
        let v = s.expose_secret();
        assert!(v.starts_with("whsec_"));
        assert_eq!(STANDARD.decode(&v[6..]).unwrap().len(), 32);
        assert_ne!(webhook_secret(), s);
    }
}
