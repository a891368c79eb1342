//! The set of configured master keys.
//!
//! Rotation works by configuring a new key first and keeping the old ones:
//! the first key wraps new data keys, every configured key can still unwrap.

use std::fmt;

use crate::data_key::{DataKey, aead_open, aead_seal};
use crate::error::VaultError;
use crate::master_key::MasterKey;

/// Domain separation for wrapped data keys, followed by the data key's id.
const WRAP_AAD_PREFIX: &[u8] = b"keyrelay data key v1\0";

fn wrap_aad(dek_id: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(WRAP_AAD_PREFIX.len() + dek_id.len());
    aad.extend_from_slice(WRAP_AAD_PREFIX);
    aad.extend_from_slice(dek_id.as_bytes());
    aad
}

/// A data key encrypted under a master key. Ciphertext, so not secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedDataKey {
    /// Key id of the master key that wrapped it.
    pub kid: String,
    /// `nonce(12) || ciphertext || tag(16)`.
    pub bytes: Vec<u8>,
}

/// Configured master keys; the current one encrypts, all of them decrypt.
#[derive(Clone)]
pub struct Keyring {
    current: MasterKey,
    older: Vec<MasterKey>,
}

impl Keyring {
    /// Builds a keyring whose FIRST key encrypts. Keys with the same kid are
    /// collapsed (the same key given twice); an empty list is an error.
    pub fn new(keys: Vec<MasterKey>) -> Result<Self, VaultError> {
        let mut keys = keys.into_iter();
        let current = keys.next().ok_or_else(|| {
            VaultError::InvalidMasterKey(
                "no master key configured: set KEYRELAY_MASTER_KEY or use a key file".to_owned(),
            )
        })?;
        let mut older: Vec<MasterKey> = Vec::new();
        for key in keys {
            if key.kid() != current.kid() && !older.iter().any(|k| k.kid() == key.kid()) {
                older.push(key);
            }
        }
        Ok(Self { current, older })
    }

    /// The key that wraps new data keys.
    pub fn current(&self) -> &MasterKey {
        &self.current
    }

    /// Key id of [`Keyring::current`].
    pub fn current_kid(&self) -> &str {
        self.current.kid()
    }

    /// All key ids, current first.
    pub fn kids(&self) -> Vec<String> {
        self.iter().map(|k| k.kid().to_owned()).collect()
    }

    /// Whether a key with this id is configured.
    pub fn contains(&self, kid: &str) -> bool {
        self.get(kid).is_some()
    }

    /// The configured key with this id.
    pub fn get(&self, kid: &str) -> Option<&MasterKey> {
        self.iter().find(|k| k.kid() == kid)
    }

    fn iter(&self) -> impl Iterator<Item = &MasterKey> {
        std::iter::once(&self.current).chain(self.older.iter())
    }

    /// Wraps `dek` under the current master key, bound to `dek_id` so the
    /// wrapped key cannot be moved to another data key row.
    pub fn wrap(&self, dek: &DataKey, dek_id: &str) -> WrappedDataKey {
        WrappedDataKey {
            kid: self.current.kid().to_owned(),
            bytes: aead_seal(self.current.bytes(), &wrap_aad(dek_id), dek.bytes()),
        }
    }

    /// Unwraps a data key with whichever configured master key wrapped it.
    pub fn unwrap(&self, wrapped: &WrappedDataKey, dek_id: &str) -> Result<DataKey, VaultError> {
        let key = self
            .get(&wrapped.kid)
            .ok_or_else(|| VaultError::UnknownMasterKey {
                kid: wrapped.kid.clone(),
            })?;
        let plain = aead_open(key.bytes(), &wrap_aad(dek_id), &wrapped.bytes)?;
        DataKey::from_slice(&plain)
            .ok_or_else(|| VaultError::Malformed("unwrapped data key is not 32 bytes".to_owned()))
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current_kid())
            .field("kids", &self.kids())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data_key::Aad;

    #[test]
    fn empty_is_an_error() {
        assert!(matches!(
            Keyring::new(vec![]),
            Err(VaultError::InvalidMasterKey(_))
        ));
    }

    #[test]
    fn first_key_encrypts_and_duplicates_collapse() {
        let a = MasterKey::generate();
        let b = MasterKey::generate();
        let ring = Keyring::new(vec![a.clone(), b.clone(), a.clone(), b.clone()]).unwrap();
        assert_eq!(ring.current_kid(), a.kid());
        assert_eq!(ring.current().kid(), a.kid());
        assert_eq!(ring.kids(), vec![a.kid().to_owned(), b.kid().to_owned()]);
        assert!(ring.contains(b.kid()));
        assert!(!ring.contains("mk_0000000000000000"));
        assert_eq!(ring.get(b.kid()).unwrap().kid(), b.kid());
    }

    #[test]
    fn wrap_unwrap_round_trip_and_rotation() {
        let old = MasterKey::generate();
        let ring = Keyring::new(vec![old.clone()]).unwrap();
        let dek = DataKey::generate();
        let wrapped = ring.wrap(&dek, "dek_1");
        assert_eq!(wrapped.kid, old.kid());
        assert_eq!(wrapped.bytes.len(), 12 + 32 + 16);

        let aad = Aad::new("t", "r", "f");
        let sealed = dek.seal(&aad, b"payload");

        // After rotation the new key encrypts but the old one still unwraps.
        let new = MasterKey::generate();
        let rotated = Keyring::new(vec![new.clone(), old]).unwrap();
        let unwrapped = rotated.unwrap(&wrapped, "dek_1").unwrap();
        assert_eq!(
            unwrapped.open(&aad, &sealed).unwrap().as_slice(),
            b"payload"
        );
        let rewrapped = rotated.wrap(&unwrapped, "dek_1");
        assert_eq!(rewrapped.kid, new.kid());

        // Without the old key, the error names the missing kid.
        let only_new = Keyring::new(vec![new]).unwrap();
        match only_new.unwrap(&wrapped, "dek_1") {
            Err(VaultError::UnknownMasterKey { kid }) => assert_eq!(kid, wrapped.kid),
            other => panic!("unexpected {other:?}"),
        }
        assert!(only_new.unwrap(&rewrapped, "dek_1").is_ok());
    }

    #[test]
    fn wrapped_key_is_bound_to_its_id_and_authenticated() {
        let ring = Keyring::new(vec![MasterKey::generate()]).unwrap();
        let wrapped = ring.wrap(&DataKey::generate(), "dek_1");
        assert!(matches!(
            ring.unwrap(&wrapped, "dek_2"),
            Err(VaultError::Decrypt)
        ));
        for i in 0..wrapped.bytes.len() {
            let mut bad = wrapped.clone();
            bad.bytes[i] ^= 1;
            assert!(matches!(
                ring.unwrap(&bad, "dek_1"),
                Err(VaultError::Decrypt)
            ));
        }
        // Same kid string but a different key cannot happen; a wrong key
        // under a forged kid still fails authentication.
        let other = Keyring::new(vec![MasterKey::generate()]).unwrap();
        let forged = WrappedDataKey {
            kid: other.current_kid().to_owned(),
            bytes: wrapped.bytes.clone(),
        };
        assert!(matches!(
            other.unwrap(&forged, "dek_1"),
            Err(VaultError::Decrypt)
        ));
    }

    #[test]
    fn debug_lists_kids_only() {
        let key = MasterKey::generate();
        let ring = Keyring::new(vec![key.clone()]).unwrap();
        let dbg = format!("{ring:?}");
        assert!(dbg.contains(key.kid()));
        assert!(!dbg.contains(key.to_base64().as_str()));
    }
}
