//! The token vault's key management: envelope encryption of stored fields.
//!
//! Each secret is sealed with AES-256-GCM under a data key, bound (associated
//! data) to its table, row and field. Data keys live in the database wrapped
//! by a master key; only master keys live outside it (key file or
//! environment). Rotation re-wraps data keys, not every secret, so it is quick
//! and can run while servers are up: a data key's material never changes, so
//! a running server's cached keys stay valid.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use chrono::Utc;
use keyrelay_store::{DataKeyRecord, Store};
use keyrelay_vault::{
    Aad, DataKey, Keyring, Sealed, VaultError, WrappedDataKey, Zeroizing, keyfile, token,
};

use crate::error::{ServiceError, ServiceResult};

/// Where a stored ciphertext lives; it is bound to exactly this place.
#[derive(Debug, Clone, Copy)]
pub struct Field<'a> {
    pub table: &'a str,
    pub row_id: &'a str,
    pub field: &'a str,
}

impl<'a> Field<'a> {
    pub fn new(table: &'a str, row_id: &'a str, field: &'a str) -> Self {
        Field {
            table,
            row_id,
            field,
        }
    }

    fn aad(&self) -> Aad {
        Aad::new(self.table, self.row_id, self.field)
    }
}

/// Encrypts and decrypts stored fields; caches unwrapped data keys.
pub struct Vault {
    store: Arc<dyn Store>,
    keyring: RwLock<Arc<Keyring>>,
    /// The key file the keyring came from, re-read when another process
    /// rotated in a key this one has not seen yet.
    key_file: Option<PathBuf>,
    deks: RwLock<HashMap<String, Arc<DataKey>>>,
    current: (String, Arc<DataKey>),
}

/// How many data keys each master key wraps.
pub type KeyUsage = BTreeMap<String, usize>;

impl Vault {
    /// Opens the vault: unwraps every data key (so a wrong or missing master
    /// key stops start-up instead of failing requests later) and makes the
    /// first data key on a new database.
    pub async fn open(
        store: Arc<dyn Store>,
        keyring: Keyring,
        key_file: Option<PathBuf>,
    ) -> ServiceResult<Self> {
        let records = store.list_data_keys().await?;
        let mut deks = HashMap::new();
        for record in &records {
            let dek = unwrap_record(&keyring, record).map_err(|e| match e {
                VaultError::UnknownMasterKey { kid } => ServiceError::Vault(VaultError::InvalidMasterKey(format!(
                    "data key {} is wrapped by master key {kid}, which is not configured (configured: {}); \
                     set KEYRELAY_MASTER_KEY or KEYRELAY_MASTER_KEY_FILE to the keys this database was encrypted with",
                    record.id,
                    keyring.kids().join(", ")
                ))),
                VaultError::Decrypt => ServiceError::Vault(VaultError::InvalidMasterKey(format!(
                    "data key {} does not decrypt with master key {}: the key material is wrong or the database was altered",
                    record.id, record.master_kid
                ))),
                other => ServiceError::Vault(other),
            })?;
            deks.insert(record.id.clone(), Arc::new(dek));
        }
        let current = match records.last() {
            Some(record) => {
                let dek = deks
                    .get(&record.id)
                    .cloned()
                    .ok_or_else(|| VaultError::Malformed("data key vanished".into()))?;
                (record.id.clone(), dek)
            }
            None => {
                let id = token::generate_id("dk_");
                let dek = DataKey::generate();
                let wrapped = keyring.wrap(&dek, &id);
                store
                    .insert_data_key(&DataKeyRecord {
                        id: id.clone(),
                        master_kid: wrapped.kid,
                        wrapped: wrapped.bytes,
                        created_at: Utc::now(),
                    })
                    .await?;
                let dek = Arc::new(dek);
                deks.insert(id.clone(), dek.clone());
                (id, dek)
            }
        };
        Ok(Vault {
            store,
            keyring: RwLock::new(Arc::new(keyring)),
            key_file,
            deks: RwLock::new(deks),
            current,
        })
    }

    /// Encrypts `plaintext` for storage at `field`.
    pub fn seal(&self, field: Field<'_>, plaintext: &[u8]) -> Vec<u8> {
        let (id, dek) = &self.current;
        keyrelay_vault::seal_with(id, dek, &field.aad(), plaintext).to_bytes()
    }

    /// Decrypts what `seal` stored at `field`; fails if the bytes were moved
    /// from another row or field, or altered.
    pub async fn open_field(
        &self,
        field: Field<'_>,
        stored: &[u8],
    ) -> ServiceResult<Zeroizing<Vec<u8>>> {
        let sealed = Sealed::from_bytes(stored)?;
        let dek = self.data_key(&sealed.dek_id).await?;
        Ok(keyrelay_vault::open_with(&dek, &field.aad(), &sealed)?)
    }

    /// Decrypts a field that holds UTF-8 text.
    pub async fn open_string(
        &self,
        field: Field<'_>,
        stored: &[u8],
    ) -> ServiceResult<Zeroizing<String>> {
        let bytes = self.open_field(field, stored).await?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| VaultError::Malformed("decrypted field is not UTF-8".into()))?;
        Ok(Zeroizing::new(text.to_string()))
    }

    async fn data_key(&self, id: &str) -> ServiceResult<Arc<DataKey>> {
        if let Some(dek) = read(&self.deks).get(id) {
            return Ok(dek.clone());
        }
        let record = self.store.get_data_key(id).await?.ok_or_else(|| {
            VaultError::Malformed(format!("data key {id} does not exist in the database"))
        })?;
        let keyring = read(&self.keyring).clone();
        let dek = match unwrap_record(&keyring, &record) {
            Err(VaultError::UnknownMasterKey { .. }) if self.key_file.is_some() => {
                // Another process may have rotated in a key: re-read the file once.
                let reloaded = self.reload_key_file()?;
                unwrap_record(&reloaded, &record)?
            }
            other => other?,
        };
        let dek = Arc::new(dek);
        write(&self.deks).insert(id.to_string(), dek.clone());
        Ok(dek)
    }

    fn reload_key_file(&self) -> ServiceResult<Arc<Keyring>> {
        let path = self
            .key_file
            .as_ref()
            .ok_or_else(|| VaultError::Malformed("no key file".into()))?;
        let keyring = Arc::new(Keyring::new(keyfile::load(path)?)?);
        *write(&self.keyring) = keyring.clone();
        Ok(keyring)
    }

    /// The kid of the master key that wraps new data keys.
    pub fn current_kid(&self) -> String {
        read(&self.keyring).current_kid().to_string()
    }

    /// Re-wraps every data key not yet under the current master key.
    /// Returns how many were re-wrapped.
    pub async fn rewrap_all(&self) -> ServiceResult<usize> {
        let keyring = read(&self.keyring).clone();
        let mut count = 0;
        for record in self.store.list_data_keys().await? {
            if record.master_kid == keyring.current_kid() {
                continue;
            }
            let dek = unwrap_record(&keyring, &record)?;
            let wrapped = keyring.wrap(&dek, &record.id);
            if self
                .store
                .rewrap_data_key(&record.id, &record.master_kid, &wrapped.kid, &wrapped.bytes)
                .await?
            {
                count += 1;
            }
        }
        Ok(count)
    }

    /// How many data keys each master key wraps (configured keys with none included).
    pub async fn usage(&self) -> ServiceResult<KeyUsage> {
        let mut usage: KeyUsage = read(&self.keyring)
            .kids()
            .into_iter()
            .map(|kid| (kid, 0))
            .collect();
        for record in self.store.list_data_keys().await? {
            *usage.entry(record.master_kid).or_default() += 1;
        }
        Ok(usage)
    }
}

fn unwrap_record(keyring: &Keyring, record: &DataKeyRecord) -> Result<DataKey, VaultError> {
    keyring.unwrap(
        &WrappedDataKey {
            kid: record.master_kid.clone(),
            bytes: record.wrapped.clone(),
        },
        &record.id,
    )
}

// A poisoned lock only means another thread panicked mid-update of a cache
// whose every state is valid, so keep going with the data.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}
