//! Errors of the vault. No variant ever carries key material or plaintext:
//! these messages end up in logs and HTTP responses.

/// Everything that can go wrong while handling keys and ciphertexts.
#[derive(Debug, Clone, thiserror::Error)]
pub enum VaultError {
    /// A configured master key could not be parsed; the message says why.
    #[error("{0}")]
    InvalidMasterKey(String),

    /// Data was wrapped by a master key that is no longer (or not yet) configured.
    #[error(
        "data is wrapped by master key {kid}, which is not configured; add it to KEYRELAY_MASTER_KEY or the key file"
    )]
    UnknownMasterKey {
        /// Key id of the missing master key.
        kid: String,
    },

    /// AEAD authentication failed. Deliberately vague: the cause cannot be told apart.
    #[error(
        "decryption failed: the ciphertext was altered, moved to another row or field, or encrypted under a different key"
    )]
    Decrypt,

    /// A stored blob does not have the expected structure.
    #[error("malformed sealed data: {0}")]
    Malformed(String),

    /// The master key file could not be read, written or parsed.
    #[error("key file {path}: {message}")]
    KeyFile {
        /// Path of the key file.
        path: String,
        /// What went wrong.
        message: String,
    },

    /// Refused to remove the key that currently encrypts new data.
    #[error(
        "master key {kid} is the current (newest) key and encrypts new data; append a new key before retiring it"
    )]
    RetireCurrent {
        /// Key id of the current master key.
        kid: String,
    },

    /// No key with this id exists in the key file.
    #[error("no master key with id {kid} in the key file")]
    UnknownKid {
        /// The key id that was asked for.
        kid: String,
    },
}
