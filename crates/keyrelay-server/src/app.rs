//! The one shared state: store, vault, catalog and settings.

use std::sync::Arc;

use keyrelay_catalog::Catalog;
use keyrelay_store::Store;
use keyrelay_vault::TokenHash;

use crate::config::ServerConfig;
use crate::vault::Vault;

/// Everything a request handler or service needs, built once at start-up.
pub struct App {
    pub store: Arc<dyn Store>,
    pub vault: Vault,
    pub catalog: Arc<Catalog>,
    pub config: ServerConfig,
    /// SHA-256 of the operator's admin token; the token itself is never kept.
    pub(crate) admin_token_hash: TokenHash,
}

impl App {
    pub fn new(
        store: Arc<dyn Store>,
        vault: Vault,
        catalog: Arc<Catalog>,
        config: ServerConfig,
        admin_token_hash: TokenHash,
    ) -> Arc<Self> {
        Arc::new(App {
            store,
            vault,
            catalog,
            config,
            admin_token_hash,
        })
    }
}
