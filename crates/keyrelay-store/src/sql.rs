//! The statements of the `Store` trait, written once for both backends.
//!
//! sqlx has no dialect-neutral query type short of its `Any` driver (which we
//! avoid: it erases types and needs runtime driver installation), so the
//! implementation body is a macro expanded for each pool type. The SQL text is
//! the common subset of SQLite and PostgreSQL: `$N` parameters (sqlx-sqlite
//! binds them by number), `ON CONFLICT`, `RETURNING`.

macro_rules! impl_store_queries {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Inserts an event with any executor (the pool, or the
            /// transaction of the write it records).
            async fn insert_event_in<'e, E>(
                exec: E,
                e: &$crate::model::Event,
            ) -> $crate::error::StoreResult<()>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                sqlx::query(
                    "INSERT INTO events (id, project_id, integration_key, user_id, type, detail, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&e.id)
                .bind(&e.project_id)
                .bind(&e.integration_key)
                .bind(&e.user_id)
                .bind(&e.kind)
                .bind($crate::rows::json(&e.detail)?)
                .bind(e.created_at)
                .execute(exec)
                .await?;
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            fn backend(&self) -> $crate::store::Backend {
                Self::BACKEND
            }

            async fn migrate(&self) -> $crate::error::StoreResult<()> {
                Self::MIGRATOR.run(&self.pool).await?;
                Ok(())
            }

            async fn ping(&self) -> $crate::error::StoreResult<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn get_meta(&self, key: &str) -> $crate::error::StoreResult<Option<String>> {
                let row: Option<(String,)> = sqlx::query_as("SELECT value FROM meta WHERE key = $1")
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.map(|r| r.0))
            }

            async fn set_meta_if_absent(
                &self,
                key: &str,
                value: &str,
            ) -> $crate::error::StoreResult<bool> {
                let done = sqlx::query(
                    "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                )
                .bind(key)
                .bind(value)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn insert_data_key(
                &self,
                key: &$crate::model::DataKeyRecord,
            ) -> $crate::error::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO data_keys (id, master_kid, wrapped, created_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(&key.id)
                .bind(&key.master_kid)
                .bind(&key.wrapped)
                .bind(key.created_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn get_data_key(
                &self,
                id: &str,
            ) -> $crate::error::StoreResult<Option<$crate::model::DataKeyRecord>> {
                let row: Option<$crate::rows::DataKeyRow> =
                    sqlx::query_as("SELECT * FROM data_keys WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(row.map(Into::into))
            }

            async fn list_data_keys(
                &self,
            ) -> $crate::error::StoreResult<Vec<$crate::model::DataKeyRecord>> {
                let rows: Vec<$crate::rows::DataKeyRow> =
                    sqlx::query_as("SELECT * FROM data_keys ORDER BY created_at, id")
                        .fetch_all(&self.pool)
                        .await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn rewrap_data_key(
                &self,
                id: &str,
                old_kid: &str,
                new_kid: &str,
                wrapped: &[u8],
            ) -> $crate::error::StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE data_keys SET master_kid = $1, wrapped = $2 WHERE id = $3 AND master_kid = $4",
                )
                .bind(new_kid)
                .bind(wrapped)
                .bind(id)
                .bind(old_kid)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn insert_project(
                &self,
                p: &$crate::model::Project,
            ) -> $crate::error::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO projects (id, name, allowed_redirect_urls, webhook_url, webhook_secret, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&p.id)
                .bind(&p.name)
                .bind($crate::rows::json(&p.allowed_redirect_urls)?)
                .bind(&p.webhook_url)
                .bind(&p.webhook_secret)
                .bind(p.created_at)
                .bind(p.updated_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn get_project(
                &self,
                id: &str,
            ) -> $crate::error::StoreResult<Option<$crate::model::Project>> {
                let row: Option<$crate::rows::ProjectRow> =
                    sqlx::query_as("SELECT * FROM projects WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?;
                row.map(|r| r.into_record()).transpose()
            }

            async fn list_projects(
                &self,
            ) -> $crate::error::StoreResult<Vec<$crate::model::Project>> {
                let rows: Vec<$crate::rows::ProjectRow> =
                    sqlx::query_as("SELECT * FROM projects ORDER BY created_at, id")
                        .fetch_all(&self.pool)
                        .await?;
                $crate::rows::collect(rows, |r| r.into_record())
            }

            async fn update_project(
                &self,
                p: &$crate::model::Project,
            ) -> $crate::error::StoreResult<()> {
                sqlx::query(
                    "UPDATE projects SET name = $1, allowed_redirect_urls = $2, webhook_url = $3, \
                     webhook_secret = $4, updated_at = $5 WHERE id = $6",
                )
                .bind(&p.name)
                .bind($crate::rows::json(&p.allowed_redirect_urls)?)
                .bind(&p.webhook_url)
                .bind(&p.webhook_secret)
                .bind(p.updated_at)
                .bind(&p.id)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn insert_secret_key(
                &self,
                k: &$crate::model::SecretKeyRecord,
            ) -> $crate::error::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO secret_keys (id, project_id, hash, created_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(&k.id)
                .bind(&k.project_id)
                .bind(&k.hash)
                .bind(k.created_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn find_secret_key(
                &self,
                hash: &[u8],
            ) -> $crate::error::StoreResult<Option<$crate::model::SecretKeyRecord>> {
                let row: Option<$crate::rows::SecretKeyRow> =
                    sqlx::query_as("SELECT * FROM secret_keys WHERE hash = $1")
                        .bind(hash)
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(row.map(Into::into))
            }

            async fn list_secret_keys(
                &self,
                project_id: &str,
            ) -> $crate::error::StoreResult<Vec<$crate::model::SecretKeyRecord>> {
                let rows: Vec<$crate::rows::SecretKeyRow> = sqlx::query_as(
                    "SELECT * FROM secret_keys WHERE project_id = $1 ORDER BY created_at, id",
                )
                .bind(project_id)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn delete_secret_key(
                &self,
                project_id: &str,
                key_id: &str,
            ) -> $crate::error::StoreResult<bool> {
                let done = sqlx::query("DELETE FROM secret_keys WHERE project_id = $1 AND id = $2")
                    .bind(project_id)
                    .bind(key_id)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn insert_integration(
                &self,
                i: &$crate::model::Integration,
            ) -> $crate::error::StoreResult<()> {
                let provider = i.provider.as_ref().map($crate::rows::json).transpose()?;
                sqlx::query(
                    "INSERT INTO integrations (id, project_id, key, provider_name, provider, client_id, \
                     client_secret, scopes, created_at, updated_at, problem) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(&i.id)
                .bind(&i.project_id)
                .bind(&i.key)
                .bind(&i.provider_name)
                .bind(provider)
                .bind(&i.client_id)
                .bind(&i.client_secret)
                .bind($crate::rows::json(&i.scopes)?)
                .bind(i.created_at)
                .bind(i.updated_at)
                .bind(i.problem.as_ref().map($crate::rows::json).transpose()?)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn get_integration(
                &self,
                project_id: &str,
                key: &str,
            ) -> $crate::error::StoreResult<Option<$crate::model::Integration>> {
                let row: Option<$crate::rows::IntegrationRow> =
                    sqlx::query_as("SELECT * FROM integrations WHERE project_id = $1 AND key = $2")
                        .bind(project_id)
                        .bind(key)
                        .fetch_optional(&self.pool)
                        .await?;
                row.map(|r| r.into_record()).transpose()
            }

            async fn list_integrations(
                &self,
                project_id: &str,
            ) -> $crate::error::StoreResult<Vec<$crate::model::Integration>> {
                let rows: Vec<$crate::rows::IntegrationRow> = sqlx::query_as(
                    "SELECT * FROM integrations WHERE project_id = $1 ORDER BY key",
                )
                .bind(project_id)
                .fetch_all(&self.pool)
                .await?;
                $crate::rows::collect(rows, |r| r.into_record())
            }

            async fn list_all_integrations(
                &self,
            ) -> $crate::error::StoreResult<Vec<$crate::model::Integration>> {
                let rows: Vec<$crate::rows::IntegrationRow> =
                    sqlx::query_as("SELECT * FROM integrations ORDER BY project_id, key")
                        .fetch_all(&self.pool)
                        .await?;
                $crate::rows::collect(rows, |r| r.into_record())
            }

            async fn update_integration(
                &self,
                i: &$crate::model::Integration,
            ) -> $crate::error::StoreResult<()> {
                let provider = i.provider.as_ref().map($crate::rows::json).transpose()?;
                sqlx::query(
                    "UPDATE integrations SET provider_name = $1, provider = $2, client_id = $3, \
                     client_secret = $4, scopes = $5, updated_at = $6, problem = $9 \
                     WHERE id = $7 AND project_id = $8",
                )
                .bind(&i.provider_name)
                .bind(provider)
                .bind(&i.client_id)
                .bind(&i.client_secret)
                .bind($crate::rows::json(&i.scopes)?)
                .bind(i.updated_at)
                .bind(&i.id)
                .bind(&i.project_id)
                .bind(i.problem.as_ref().map($crate::rows::json).transpose()?)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn delete_integration(
                &self,
                project_id: &str,
                key: &str,
            ) -> $crate::error::StoreResult<bool> {
                let done = sqlx::query("DELETE FROM integrations WHERE project_id = $1 AND key = $2")
                    .bind(project_id)
                    .bind(key)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn insert_connect_session(
                &self,
                s: &$crate::model::ConnectSession,
            ) -> $crate::error::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO connect_sessions (token_hash, id, project_id, integration_id, integration_key, \
                     user_id, redirect_url, scopes, connection_config, expires_at, created_at, used_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                )
                .bind(&s.token_hash)
                .bind(&s.id)
                .bind(&s.project_id)
                .bind(&s.integration_id)
                .bind(&s.integration_key)
                .bind(&s.user_id)
                .bind(&s.redirect_url)
                .bind($crate::rows::json(&s.scopes)?)
                .bind($crate::rows::json(&s.connection_config)?)
                .bind(s.expires_at)
                .bind(s.created_at)
                .bind(s.used_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn take_connect_session(
                &self,
                token_hash: &[u8],
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::error::StoreResult<Option<$crate::model::ConnectSession>> {
                let row: Option<$crate::rows::ConnectSessionRow> = sqlx::query_as(
                    "UPDATE connect_sessions SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL RETURNING *",
                )
                .bind(now)
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| r.into_record()).transpose()
            }

            async fn insert_oauth_flow(
                &self,
                f: &$crate::model::OAuthFlow,
            ) -> $crate::error::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO oauth_states (state_hash, session_id, binding_hash, project_id, integration_id, \
                     integration_key, user_id, redirect_url, redirect_uri, scopes, connection_config, \
                     pkce_verifier, expected_issuer, expires_at, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
                )
                .bind(&f.state_hash)
                .bind(&f.session_id)
                .bind(&f.binding_hash)
                .bind(&f.project_id)
                .bind(&f.integration_id)
                .bind(&f.integration_key)
                .bind(&f.user_id)
                .bind(&f.redirect_url)
                .bind(&f.redirect_uri)
                .bind($crate::rows::json(&f.scopes)?)
                .bind($crate::rows::json(&f.connection_config)?)
                .bind(&f.pkce_verifier)
                .bind(&f.expected_issuer)
                .bind(f.expires_at)
                .bind(f.created_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn get_oauth_flow(
                &self,
                state_hash: &[u8],
            ) -> $crate::error::StoreResult<Option<$crate::model::OAuthFlow>> {
                let row: Option<$crate::rows::OAuthFlowRow> =
                    sqlx::query_as("SELECT * FROM oauth_states WHERE state_hash = $1")
                        .bind(state_hash)
                        .fetch_optional(&self.pool)
                        .await?;
                row.map(|r| r.into_record()).transpose()
            }

            async fn take_oauth_flow(
                &self,
                state_hash: &[u8],
            ) -> $crate::error::StoreResult<Option<$crate::model::OAuthFlow>> {
                let row: Option<$crate::rows::OAuthFlowRow> =
                    sqlx::query_as("DELETE FROM oauth_states WHERE state_hash = $1 RETURNING *")
                        .bind(state_hash)
                        .fetch_optional(&self.pool)
                        .await?;
                row.map(|r| r.into_record()).transpose()
            }

            async fn delete_expired_flows(
                &self,
                before: chrono::DateTime<chrono::Utc>,
            ) -> $crate::error::StoreResult<u64> {
                let states = sqlx::query("DELETE FROM oauth_states WHERE expires_at < $1")
                    .bind(before)
                    .execute(&self.pool)
                    .await?;
                let sessions = sqlx::query("DELETE FROM connect_sessions WHERE expires_at < $1")
                    .bind(before)
                    .execute(&self.pool)
                    .await?;
                Ok(states.rows_affected() + sessions.rows_affected())
            }

            async fn insert_connection(
                &self,
                c: &$crate::model::Connection,
            ) -> $crate::error::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO connections (id, project_id, integration_id, integration_key, user_id, auth_mode, \
                     status, scopes, expires_at, credentials, connection_config, created_at, updated_at, \
                     last_refresh_at, refresh_count, last_error, version, next_refresh_at, refresh_failures) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
                )
                .bind(&c.id)
                .bind(&c.project_id)
                .bind(&c.integration_id)
                .bind(&c.integration_key)
                .bind(&c.user_id)
                .bind(&c.auth_mode)
                .bind(&c.status)
                .bind($crate::rows::json(&c.scopes)?)
                .bind(c.expires_at)
                .bind(&c.credentials)
                .bind($crate::rows::json(&c.connection_config)?)
                .bind(c.created_at)
                .bind(c.updated_at)
                .bind(c.last_refresh_at)
                .bind(c.refresh_count)
                .bind(c.last_error.as_ref().map($crate::rows::json).transpose()?)
                .bind(c.version)
                .bind(c.next_refresh_at.map($crate::rows::millis))
                .bind(c.refresh_failures)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn get_connection(
                &self,
                project_id: &str,
                integration_key: &str,
                user_id: &str,
            ) -> $crate::error::StoreResult<Option<$crate::model::Connection>> {
                let row: Option<$crate::rows::ConnectionRow> = sqlx::query_as(
                    "SELECT * FROM connections WHERE project_id = $1 AND integration_key = $2 AND user_id = $3",
                )
                .bind(project_id)
                .bind(integration_key)
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| r.into_record()).transpose()
            }

            async fn update_connection(
                &self,
                c: &$crate::model::Connection,
                expected_version: i64,
                event: Option<&$crate::model::Event>,
            ) -> $crate::error::StoreResult<bool> {
                let mut tx = self.pool.begin().await?;
                let done = sqlx::query(
                    "UPDATE connections SET status = $1, scopes = $2, expires_at = $3, credentials = $4, \
                     connection_config = $5, updated_at = $6, last_refresh_at = $7, refresh_count = $8, \
                     last_error = $9, next_refresh_at = $12, refresh_failures = $13, \
                     lease_owner = NULL, lease_until = NULL, version = version + 1 \
                     WHERE id = $10 AND version = $11",
                )
                .bind(&c.status)
                .bind($crate::rows::json(&c.scopes)?)
                .bind(c.expires_at)
                .bind(&c.credentials)
                .bind($crate::rows::json(&c.connection_config)?)
                .bind(c.updated_at)
                .bind(c.last_refresh_at)
                .bind(c.refresh_count)
                .bind(c.last_error.as_ref().map($crate::rows::json).transpose()?)
                .bind(&c.id)
                .bind(expected_version)
                .bind(c.next_refresh_at.map($crate::rows::millis))
                .bind(c.refresh_failures)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    return Ok(false);
                }
                if let Some(e) = event {
                    Self::insert_event_in(&mut *tx, e).await?;
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn lease_connection(
                &self,
                id: &str,
                version: i64,
                owner: &str,
                now: chrono::DateTime<chrono::Utc>,
                until: chrono::DateTime<chrono::Utc>,
            ) -> $crate::error::StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE connections SET lease_owner = $1, lease_until = $2 WHERE id = $3 \
                     AND version = $5 AND (lease_until IS NULL OR lease_until < $4 OR lease_owner = $1)",
                )
                .bind(owner)
                .bind($crate::rows::millis(until))
                .bind(id)
                .bind($crate::rows::millis(now))
                .bind(version)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn release_connection_lease(
                &self,
                id: &str,
                owner: &str,
            ) -> $crate::error::StoreResult<()> {
                sqlx::query(
                    "UPDATE connections SET lease_owner = NULL, lease_until = NULL \
                     WHERE id = $1 AND lease_owner = $2",
                )
                .bind(id)
                .bind(owner)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn reschedule_connection(
                &self,
                id: &str,
                owner: &str,
                next_refresh_at: Option<chrono::DateTime<chrono::Utc>>,
            ) -> $crate::error::StoreResult<()> {
                sqlx::query(
                    "UPDATE connections SET next_refresh_at = $1, lease_owner = NULL, lease_until = NULL \
                     WHERE id = $2 AND lease_owner = $3",
                )
                .bind(next_refresh_at.map($crate::rows::millis))
                .bind(id)
                .bind(owner)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn claim_due_connections(
                &self,
                owner: &str,
                now: chrono::DateTime<chrono::Utc>,
                until: chrono::DateTime<chrono::Utc>,
                limit: i64,
            ) -> $crate::error::StoreResult<Vec<$crate::model::Connection>> {
                // The outer condition is checked again on each row as it is
                // locked, so two instances never claim the same connection.
                let rows: Vec<$crate::rows::ConnectionRow> = sqlx::query_as(
                    "UPDATE connections SET lease_owner = $1, lease_until = $2 WHERE id IN ( \
                       SELECT id FROM connections WHERE status = 'active' AND next_refresh_at <= $3 \
                       AND (lease_until IS NULL OR lease_until < $3) ORDER BY next_refresh_at LIMIT $4) \
                     AND status = 'active' AND (lease_until IS NULL OR lease_until < $3) RETURNING *",
                )
                .bind(owner)
                .bind($crate::rows::millis(until))
                .bind($crate::rows::millis(now))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                $crate::rows::collect(rows, |r| r.into_record())
            }

            async fn set_integration_problem(
                &self,
                id: &str,
                problem: Option<&serde_json::Value>,
            ) -> $crate::error::StoreResult<()> {
                sqlx::query("UPDATE integrations SET problem = $1 WHERE id = $2")
                    .bind(problem.map($crate::rows::json).transpose()?)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn insert_event(
                &self,
                e: &$crate::model::Event,
            ) -> $crate::error::StoreResult<()> {
                Self::insert_event_in(&self.pool, e).await
            }

            async fn list_events(
                &self,
                project_id: &str,
                f: &$crate::model::EventFilter,
            ) -> $crate::error::StoreResult<Vec<$crate::model::Event>> {
                let (after_at, after_id) = match &f.after {
                    Some((at, id)) => (Some(*at), Some(id.clone())),
                    None => (None, None),
                };
                let rows: Vec<$crate::rows::EventRow> = sqlx::query_as(
                    "SELECT * FROM events WHERE project_id = $1 \
                     AND ($2 IS NULL OR integration_key = $2) \
                     AND ($3 IS NULL OR user_id = $3) \
                     AND ($4 IS NULL OR type = $4) \
                     AND ($5 IS NULL OR created_at < $5 OR (created_at = $5 AND id < $6)) \
                     ORDER BY created_at DESC, id DESC LIMIT $7",
                )
                .bind(project_id)
                .bind(&f.integration_key)
                .bind(&f.user_id)
                .bind(&f.kind)
                .bind(after_at)
                .bind(after_id)
                .bind(f.limit)
                .fetch_all(&self.pool)
                .await?;
                $crate::rows::collect(rows, |r| r.into_record())
            }

            async fn insert_revocation(
                &self,
                r: &$crate::model::Revocation,
            ) -> $crate::error::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO revocations (id, project_id, integration_id, integration_key, user_id, \
                     tokens, reason, attempts, next_attempt_at, last_error, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(&r.id)
                .bind(&r.project_id)
                .bind(&r.integration_id)
                .bind(&r.integration_key)
                .bind(&r.user_id)
                .bind(&r.tokens)
                .bind(&r.reason)
                .bind(r.attempts)
                .bind($crate::rows::millis(r.next_attempt_at))
                .bind(&r.last_error)
                .bind(r.created_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn claim_due_revocations(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                until: chrono::DateTime<chrono::Utc>,
                limit: i64,
            ) -> $crate::error::StoreResult<Vec<$crate::model::Revocation>> {
                let rows: Vec<$crate::rows::RevocationRow> = sqlx::query_as(
                    "UPDATE revocations SET lease_until = $1 WHERE id IN ( \
                       SELECT id FROM revocations WHERE next_attempt_at <= $2 \
                       AND (lease_until IS NULL OR lease_until < $2) ORDER BY next_attempt_at LIMIT $3) \
                     AND (lease_until IS NULL OR lease_until < $2) RETURNING *",
                )
                .bind($crate::rows::millis(until))
                .bind($crate::rows::millis(now))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                $crate::rows::collect(rows, |r| r.into_record())
            }

            async fn reschedule_revocation(
                &self,
                id: &str,
                attempts: i64,
                next_attempt_at: chrono::DateTime<chrono::Utc>,
                last_error: &str,
            ) -> $crate::error::StoreResult<()> {
                sqlx::query(
                    "UPDATE revocations SET attempts = $1, next_attempt_at = $2, last_error = $3, \
                     lease_until = NULL WHERE id = $4",
                )
                .bind(attempts)
                .bind($crate::rows::millis(next_attempt_at))
                .bind(last_error)
                .bind(id)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn delete_revocation(&self, id: &str) -> $crate::error::StoreResult<()> {
                sqlx::query("DELETE FROM revocations WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn list_connections(
                &self,
                project_id: &str,
                f: &$crate::model::ConnectionFilter,
            ) -> $crate::error::StoreResult<Vec<$crate::model::Connection>> {
                let (after_at, after_id) = match &f.after {
                    Some((at, id)) => (Some(*at), Some(id.clone())),
                    None => (None, None),
                };
                let rows: Vec<$crate::rows::ConnectionRow> = sqlx::query_as(
                    "SELECT * FROM connections WHERE project_id = $1 \
                     AND ($2 IS NULL OR integration_key = $2) \
                     AND ($3 IS NULL OR user_id = $3) \
                     AND ($4 IS NULL OR status = $4) \
                     AND ($5 IS NULL OR created_at < $5 OR (created_at = $5 AND id < $6)) \
                     ORDER BY created_at DESC, id DESC LIMIT $7",
                )
                .bind(project_id)
                .bind(&f.integration_key)
                .bind(&f.user_id)
                .bind(&f.status)
                .bind(after_at)
                .bind(after_id)
                .bind(f.limit)
                .fetch_all(&self.pool)
                .await?;
                $crate::rows::collect(rows, |r| r.into_record())
            }

            async fn count_connections(
                &self,
                integration_id: &str,
            ) -> $crate::error::StoreResult<i64> {
                let row: (i64,) =
                    sqlx::query_as("SELECT COUNT(*) FROM connections WHERE integration_id = $1")
                        .bind(integration_id)
                        .fetch_one(&self.pool)
                        .await?;
                Ok(row.0)
            }

            async fn delete_connection(&self, id: &str) -> $crate::error::StoreResult<bool> {
                let done = sqlx::query("DELETE FROM connections WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}

pub(crate) use impl_store_queries;
