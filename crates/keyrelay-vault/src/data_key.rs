//! Data keys (DEKs) and the AES-256-GCM primitive shared with the keyring.
//!
//! Fields are encrypted under data keys, and data keys under the master key
//! (envelope encryption), so rotating the master key only rewraps a few data
//! keys instead of re-encrypting every row.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use rand::rngs::OsRng;
use zeroize::Zeroizing;

use crate::error::VaultError;

/// Length of the random AES-GCM nonce prefixed to every ciphertext.
pub(crate) const NONCE_LEN: usize = 12;
/// Length of the AES-GCM authentication tag.
pub(crate) const TAG_LEN: usize = 16;

/// Encrypts with a fresh random nonce; returns `nonce || ciphertext || tag`.
///
/// Random 96-bit nonces are safe for far more messages than one data key
/// will ever seal.
pub(crate) fn aead_seal(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(key.into());
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(&nonce);
    let payload = Payload {
        msg: plaintext,
        aad,
    };
    // AES-GCM only fails for plaintexts over 64 GiB, which cannot occur here.
    // Rather than panic, fail closed: a bare nonce never opens, so nothing is
    // ever stored unencrypted.
    if let Ok(ct) = cipher.encrypt(Nonce::from_slice(&nonce), payload) {
        out.extend_from_slice(&ct);
    }
    out
}

/// Inverse of [`aead_seal`]. Any tampering, wrong key or wrong AAD gives
/// [`VaultError::Decrypt`]; the causes are indistinguishable by design.
pub(crate) fn aead_open(
    key: &[u8; 32],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(VaultError::Malformed(format!(
            "ciphertext is {} bytes, shorter than nonce and tag",
            sealed.len()
        )));
    }
    let (nonce, ct) = sealed.split_at(NONCE_LEN);
    let cipher = Aes256Gcm::new(key.into());
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .map(Zeroizing::new)
        .map_err(|_| VaultError::Decrypt)
}

/// A 256-bit data encryption key. Stored only wrapped by a master key.
#[derive(Clone)]
pub struct DataKey(Zeroizing<[u8; 32]>);

impl DataKey {
    /// A fresh random key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(key.as_mut());
        Self(key)
    }

    /// Rebuilds a key from unwrapped bytes; `None` unless exactly 32 bytes.
    pub(crate) fn from_slice(bytes: &[u8]) -> Option<Self> {
        let key: [u8; 32] = bytes.try_into().ok()?;
        Some(Self(Zeroizing::new(key)))
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Encrypts `plaintext` bound to `aad`; returns `nonce || ciphertext || tag`.
    pub fn seal(&self, aad: &Aad, plaintext: &[u8]) -> Vec<u8> {
        aead_seal(&self.0, aad.as_bytes(), plaintext)
    }

    /// Decrypts what [`DataKey::seal`] produced with the same `aad`.
    pub fn open(&self, aad: &Aad, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        aead_open(&self.0, aad.as_bytes(), sealed)
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey([redacted])")
    }
}

/// Associated data binding a ciphertext to where it is stored.
///
/// Without it, someone with database write access could swap the encrypted
/// refresh token of one connection into another row (or another column) and
/// have it decrypt fine there. Parts are length-prefixed so that
/// `("a", "bc")` and `("ab", "c")` never encode the same.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Aad(Vec<u8>);

impl Aad {
    const PREFIX: &'static [u8] = b"keyrelay v1";

    /// AAD for `field` of row `row_id` in `table`.
    pub fn new(table: &str, row_id: &str, field: &str) -> Self {
        let mut out =
            Vec::with_capacity(Self::PREFIX.len() + 12 + table.len() + row_id.len() + field.len());
        out.extend_from_slice(Self::PREFIX);
        for part in [table, row_id, field] {
            // Table, id and field names are short; saturating keeps this total.
            let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
        Self(out)
    }

    /// The encoded bytes passed to AES-GCM.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip() {
        let dek = DataKey::generate();
        let aad = Aad::new("connections", "con_1", "refresh_token");
        let sealed = dek.seal(&aad, b"hello");
        assert_eq!(sealed.len(), NONCE_LEN + 5 + TAG_LEN);
        assert_eq!(dek.open(&aad, &sealed).unwrap().as_slice(), b"hello");
        // Fresh nonce each time.
        assert_ne!(dek.seal(&aad, b"hello"), sealed);
        let empty = dek.seal(&aad, b"");
        assert!(dek.open(&aad, &empty).unwrap().is_empty());
    }

    #[test]
    fn wrong_key_or_aad_fails() {
        let dek = DataKey::generate();
        let aad = Aad::new("t", "r", "f");
        let sealed = dek.seal(&aad, b"x");
        assert!(matches!(
            DataKey::generate().open(&aad, &sealed),
            Err(VaultError::Decrypt)
        ));
        assert!(matches!(
            dek.open(&Aad::new("t", "r", "g"), &sealed),
            Err(VaultError::Decrypt)
        ));
        assert!(matches!(
            dek.open(&aad, &sealed[..10]),
            Err(VaultError::Malformed(_))
        ));
    }

    #[test]
    fn aad_encoding_is_unambiguous() {
        assert_ne!(Aad::new("a", "bc", "d"), Aad::new("ab", "c", "d"));
        assert_ne!(Aad::new("a", "", "bc"), Aad::new("a", "bc", ""));
        let aad = Aad::new("t", "id", "");
        assert_eq!(
            aad.as_bytes(),
            b"keyrelay v1\0\0\0\x01t\0\0\0\x02id\0\0\0\0".as_slice()
        );
    }

    #[test]
    fn debug_is_redacted() {
        assert_eq!(format!("{:?}", DataKey::generate()), "DataKey([redacted])");
    }
}
