//! The hot path's memory: which project a secret key belongs to, each
//! integration, and each connection's decrypted credentials. A proxied call
//! on a fresh connection touches no database.
//!
//! Entries are bounded in number and live briefly (keys and integrations 30
//! s, connections 10 s), so changes made by another instance are seen within
//! seconds; changes made by this one (refresh, reconnect, delete) replace
//! the entry at once. When an upstream answers 401, the proxy goes to the
//! database before refreshing, so a newer version written elsewhere wins.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use keyrelay_store::Connection;
use keyrelay_vault::TokenHash;
use moka::sync::Cache;

use crate::proxy::stamp::Stamp;
use crate::proxy::target::Base;
use crate::services::credentials::Credentials;
use crate::services::integrations::IntegrationView;

/// A connection ready to use: its record and decrypted credentials.
pub struct Live {
    pub connection: Connection,
    pub creds: Credentials,
    /// What every request on this connection reuses (target and stamp),
    /// built on first use.
    prepared: OnceLock<Arc<Prepared>>,
}

/// The per-connection work the proxy would otherwise redo on every request.
pub struct Prepared {
    /// The integration these were built for: an updated integration is a
    /// new view, and then they are built again.
    pub view: Arc<IntegrationView>,
    /// The provider's `api_base_url` with the connection's placeholders
    /// filled, parsed and checked.
    pub base: Base,
    pub stamp: Stamp,
}

impl Live {
    pub fn new(connection: Connection, creds: Credentials) -> Live {
        Live {
            connection,
            creds,
            prepared: OnceLock::new(),
        }
    }

    /// The prepared target and stamp, when they were built for `view`.
    pub fn prepared(&self, view: &Arc<IntegrationView>) -> Option<Arc<Prepared>> {
        self.prepared
            .get()
            .filter(|p| Arc::ptr_eq(&p.view, view))
            .cloned()
    }

    /// Keeps what was built for the next requests. A concurrent request may
    /// have kept its own first; both are equal.
    pub fn keep_prepared(&self, built: Prepared) -> Arc<Prepared> {
        let built = Arc::new(built);
        let _ = self.prepared.set(built.clone());
        built
    }
}

/// One allocation per lookup: the three names joined by a byte no name
/// can contain.
fn connection_key(project_id: &str, key: &str, user_id: &str) -> String {
    let mut k = String::with_capacity(project_id.len() + key.len() + user_id.len() + 2);
    k.push_str(project_id);
    k.push('\0');
    k.push_str(key);
    k.push('\0');
    k.push_str(user_id);
    k
}

pub struct ProxyCache {
    keys: Cache<[u8; 32], String>,
    integrations: Cache<(String, String), Arc<IntegrationView>>,
    connections: Cache<String, Arc<Live>>,
}

impl Default for ProxyCache {
    fn default() -> Self {
        ProxyCache {
            keys: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(30))
                .build(),
            integrations: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(30))
                .build(),
            connections: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(10))
                .build(),
        }
    }
}

impl ProxyCache {
    pub fn project(&self, key: &TokenHash) -> Option<String> {
        self.keys.get(key.as_bytes())
    }

    pub fn put_project(&self, key: &TokenHash, project_id: String) {
        self.keys.insert(*key.as_bytes(), project_id);
    }

    /// Forgets every cached secret key (one was deleted).
    pub fn forget_keys(&self) {
        self.keys.invalidate_all();
    }

    pub fn integration(&self, project_id: &str, key: &str) -> Option<Arc<IntegrationView>> {
        self.integrations
            .get(&(project_id.to_string(), key.to_string()))
    }

    pub fn put_integration(&self, view: Arc<IntegrationView>) {
        let k = (view.record.project_id.clone(), view.record.key.clone());
        self.integrations.insert(k, view);
    }

    pub fn forget_integration(&self, project_id: &str, key: &str) {
        self.integrations
            .invalidate(&(project_id.to_string(), key.to_string()));
    }

    pub fn connection(&self, project_id: &str, key: &str, user_id: &str) -> Option<Arc<Live>> {
        self.connections
            .get(&connection_key(project_id, key, user_id))
    }

    pub fn put_connection(&self, live: Arc<Live>) {
        let c = &live.connection;
        let k = connection_key(&c.project_id, &c.integration_key, &c.user_id);
        self.connections.insert(k, live);
    }

    pub fn forget_connection(&self, project_id: &str, key: &str, user_id: &str) {
        self.connections
            .invalidate(&connection_key(project_id, key, user_id));
    }
}
