//! The master key: the root secret that wraps every data key.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::VaultError;

/// Domain separation for the key id hash, so the id cannot collide with any
/// other SHA-256 use of the key.
const KID_DOMAIN: &[u8] = b"keyrelay master key id v1\0";

const LENGTH_HINT: &str =
    "master key must be the base64 of exactly 32 bytes (make one with `openssl rand -base64 32`)";

/// A 256-bit master key together with its public key id.
///
/// The key id (`mk_` + 16 hex chars) is derived from the key so it needs no
/// separate storage and always matches; it is a truncated, domain-separated
/// SHA-256 of a 256-bit random key, so it reveals nothing usable about it.
#[derive(Clone)]
pub struct MasterKey {
    key: Zeroizing<[u8; 32]>,
    kid: String,
}

impl MasterKey {
    /// A fresh random key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(key.as_mut());
        Self::from_array(key)
    }

    /// Parses standard (padded) base64 of exactly 32 bytes; surrounding
    /// whitespace is ignored. Errors never echo the input.
    pub fn from_base64(s: &str) -> Result<Self, VaultError> {
        let decoded = Zeroizing::new(STANDARD.decode(s.trim()).map_err(|_| {
            VaultError::InvalidMasterKey(format!("{LENGTH_HINT}; it is not valid base64"))
        })?);
        let key: [u8; 32] = decoded.as_slice().try_into().map_err(|_| {
            VaultError::InvalidMasterKey(format!(
                "{LENGTH_HINT}; it decodes to {} bytes",
                decoded.len()
            ))
        })?;
        Ok(Self::from_array(Zeroizing::new(key)))
    }

    /// The key as standard base64, the form used in config and the key file.
    pub fn to_base64(&self) -> Zeroizing<String> {
        // Sized up front so encoding never reallocates and leaves copies behind.
        let mut out = Zeroizing::new(String::with_capacity(44));
        STANDARD.encode_string(self.key.as_ref(), &mut out);
        out
    }

    /// Public identifier of this key (`mk_…`), stored next to wrapped data keys.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Raw key bytes, for the keyring's cipher only.
    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.key
    }

    fn from_array(key: Zeroizing<[u8; 32]>) -> Self {
        let digest = Sha256::new()
            .chain_update(KID_DOMAIN)
            .chain_update(key.as_ref())
            .finalize();
        let kid = format!("mk_{}", hex::encode(&digest[..8]));
        Self { key, kid }
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey").field("kid", &self.kid).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn base64_round_trip_and_stable_kid() {
        let k = MasterKey::from_base64(B64).unwrap();
        assert_eq!(k.to_base64().as_str(), B64);
        let again = MasterKey::from_base64(&format!("  {B64}\n")).unwrap();
        assert_eq!(again.kid(), k.kid());
        // Pinned so a change of derivation (which would orphan stored data) is caught.
        let digest = Sha256::new()
            .chain_update(b"keyrelay master key id v1\0")
            .chain_update((0u8..32).collect::<Vec<_>>())
            .finalize();
        assert_eq!(k.kid(), format!("mk_{}", hex::encode(&digest[..8])));
        assert_eq!(k.kid().len(), 3 + 16);
    }

    #[test]
    fn generated_keys_differ() {
        let a = MasterKey::generate();
        let b = MasterKey::generate();
        assert_ne!(a.kid(), b.kid());
        assert_ne!(a.to_base64(), b.to_base64());
        let parsed = MasterKey::from_base64(&a.to_base64()).unwrap();
        assert_eq!(parsed.kid(), a.kid());
    }

    #[test]
    fn rejects_bad_input_without_echoing_it() {
        let short = STANDARD.encode([7u8; 31]);
        let long = STANDARD.encode([7u8; 33]);
        for bad in [
            "",
            "not base64!!",
            short.as_str(),
            long.as_str(),
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
        ] {
            let err = MasterKey::from_base64(bad).unwrap_err();
            assert!(matches!(err, VaultError::InvalidMasterKey(_)));
            let msg = err.to_string();
            assert!(msg.contains("exactly 32 bytes"), "{msg}");
            if !bad.is_empty() {
                assert!(!msg.contains(bad), "{msg}");
            }
        }
        let msg = MasterKey::from_base64(&short).unwrap_err().to_string();
        assert!(msg.contains("31 bytes"), "{msg}");
    }

    #[test]
    fn debug_shows_only_kid() {
        let k = MasterKey::from_base64(B64).unwrap();
        let dbg = format!("{k:?}");
        assert_eq!(dbg, format!("MasterKey {{ kid: {:?} }}", k.kid()));
        assert!(!dbg.contains(B64));
    }
}
