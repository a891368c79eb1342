//! The storage traits. The server only ever talks to `dyn Store`; the binary
//! alone picks SQLite or PostgreSQL.

use async_trait::async_trait;

use crate::error::StoreResult;
use chrono::{DateTime, Utc};

use crate::model::{
    ConnectSession, Connection, ConnectionFilter, DataKeyRecord, Event, EventFilter, Integration,
    OAuthFlow, Project, Revocation, SecretKeyRecord,
};

/// Which database a store runs on (for messages and metrics, not for logic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Everything keyrelay persists. Every method is one short statement or
/// transaction, so that a database that goes away fails a request, not the process.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn backend(&self) -> Backend;
    /// Applies the embedded migrations that have not run yet.
    async fn migrate(&self) -> StoreResult<()>;
    /// One round trip, for readiness checks.
    async fn ping(&self) -> StoreResult<()>;

    async fn get_meta(&self, key: &str) -> StoreResult<Option<String>>;
    /// Sets `key` unless it is set; true when this call set it. Several
    /// instances starting at once agree on one value this way.
    async fn set_meta_if_absent(&self, key: &str, value: &str) -> StoreResult<bool>;

    async fn insert_data_key(&self, key: &DataKeyRecord) -> StoreResult<()>;
    async fn get_data_key(&self, id: &str) -> StoreResult<Option<DataKeyRecord>>;
    /// All data keys, oldest first.
    async fn list_data_keys(&self) -> StoreResult<Vec<DataKeyRecord>>;
    /// Replaces a data key's wrapping if it is still wrapped by `old_kid`;
    /// false when another rotation got there first.
    async fn rewrap_data_key(
        &self,
        id: &str,
        old_kid: &str,
        new_kid: &str,
        wrapped: &[u8],
    ) -> StoreResult<bool>;

    async fn insert_project(&self, project: &Project) -> StoreResult<()>;
    async fn get_project(&self, id: &str) -> StoreResult<Option<Project>>;
    async fn list_projects(&self) -> StoreResult<Vec<Project>>;
    async fn update_project(&self, project: &Project) -> StoreResult<()>;

    async fn insert_secret_key(&self, key: &SecretKeyRecord) -> StoreResult<()>;
    async fn find_secret_key(&self, hash: &[u8]) -> StoreResult<Option<SecretKeyRecord>>;
    async fn list_secret_keys(&self, project_id: &str) -> StoreResult<Vec<SecretKeyRecord>>;
    /// True when the key existed in that project.
    async fn delete_secret_key(&self, project_id: &str, key_id: &str) -> StoreResult<bool>;

    async fn insert_integration(&self, integration: &Integration) -> StoreResult<()>;
    async fn get_integration(
        &self,
        project_id: &str,
        key: &str,
    ) -> StoreResult<Option<Integration>>;
    async fn list_integrations(&self, project_id: &str) -> StoreResult<Vec<Integration>>;
    /// Every integration of every project (for key checks and audits).
    async fn list_all_integrations(&self) -> StoreResult<Vec<Integration>>;
    async fn update_integration(&self, integration: &Integration) -> StoreResult<()>;
    /// True when it existed.
    async fn delete_integration(&self, project_id: &str, key: &str) -> StoreResult<bool>;

    async fn insert_connect_session(&self, session: &ConnectSession) -> StoreResult<()>;
    /// Marks an unused session used and returns it; `None` when it does not
    /// exist or was used already. Expiry is the caller's to check.
    async fn take_connect_session(
        &self,
        token_hash: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<ConnectSession>>;

    async fn insert_oauth_flow(&self, flow: &OAuthFlow) -> StoreResult<()>;
    async fn get_oauth_flow(&self, state_hash: &[u8]) -> StoreResult<Option<OAuthFlow>>;
    /// Deletes and returns the flow: a state can be used once, even by
    /// concurrent callbacks.
    async fn take_oauth_flow(&self, state_hash: &[u8]) -> StoreResult<Option<OAuthFlow>>;
    /// Removes sessions and flows that expired before `before`.
    async fn delete_expired_flows(&self, before: DateTime<Utc>) -> StoreResult<u64>;

    async fn insert_connection(&self, connection: &Connection) -> StoreResult<()>;
    async fn get_connection(
        &self,
        project_id: &str,
        integration_key: &str,
        user_id: &str,
    ) -> StoreResult<Option<Connection>>;
    /// Writes every mutable field if the stored version is `expected_version`,
    /// bumps the version and releases any refresh lease; false when someone
    /// else wrote first. `event`, when given, is recorded in the same
    /// transaction.
    async fn update_connection(
        &self,
        connection: &Connection,
        expected_version: i64,
        event: Option<&Event>,
    ) -> StoreResult<bool>;
    /// Takes the refresh lease of a connection for `owner` until `until`,
    /// with one conditional UPDATE: true when nobody else holds a live lease
    /// and the row is still at `version` (so a refresh never starts from
    /// credentials another instance has already replaced).
    async fn lease_connection(
        &self,
        id: &str,
        version: i64,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Gives the lease back without writing (the refresh did not happen).
    async fn release_connection_lease(&self, id: &str, owner: &str) -> StoreResult<()>;
    /// Sets when the scheduler looks at a connection next and gives back
    /// `owner`'s lease (a claim that did not lead to a write).
    async fn reschedule_connection(
        &self,
        id: &str,
        owner: &str,
        next_refresh_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()>;
    /// Leases up to `limit` active connections whose `next_refresh_at` has
    /// come, earliest first, and returns them.
    async fn claim_due_connections(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<Connection>>;
    async fn set_integration_problem(
        &self,
        id: &str,
        problem: Option<&serde_json::Value>,
    ) -> StoreResult<()>;
    async fn insert_event(&self, event: &Event) -> StoreResult<()>;
    async fn list_events(&self, project_id: &str, filter: &EventFilter) -> StoreResult<Vec<Event>>;
    async fn insert_revocation(&self, revocation: &Revocation) -> StoreResult<()>;
    /// Leases up to `limit` revocations whose next attempt has come.
    async fn claim_due_revocations(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<Revocation>>;
    async fn reschedule_revocation(
        &self,
        id: &str,
        attempts: i64,
        next_attempt_at: DateTime<Utc>,
        last_error: &str,
    ) -> StoreResult<()>;
    async fn delete_revocation(&self, id: &str) -> StoreResult<()>;
    async fn list_connections(
        &self,
        project_id: &str,
        filter: &ConnectionFilter,
    ) -> StoreResult<Vec<Connection>>;
    async fn count_connections(&self, integration_id: &str) -> StoreResult<i64>;
    async fn delete_connection(&self, id: &str) -> StoreResult<bool>;
}
