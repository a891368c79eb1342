//! The statements of the `Store` trait, written once for both backends.
//!
//! sqlx has no dialect-neutral query type short of its `Any` driver (which we
//! avoid: it erases types and needs runtime driver installation), so the
//! implementation body is a macro expanded for each pool type. The SQL text is
//! the common subset of SQLite and PostgreSQL: `$N` parameters (sqlx-sqlite
//! binds them by number), `ON CONFLICT`, `RETURNING`.

macro_rules! impl_store_queries {
    ($store:ty) => {
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
                     client_secret, scopes, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
                     client_secret = $4, scopes = $5, updated_at = $6 WHERE id = $7 AND project_id = $8",
                )
                .bind(&i.provider_name)
                .bind(provider)
                .bind(&i.client_id)
                .bind(&i.client_secret)
                .bind($crate::rows::json(&i.scopes)?)
                .bind(i.updated_at)
                .bind(&i.id)
                .bind(&i.project_id)
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
        }
    };
}

pub(crate) use impl_store_queries;
