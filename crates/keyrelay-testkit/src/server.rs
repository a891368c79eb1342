//! A real keyrelay, started in-process exactly as `keyrelay serve` starts,
//! on 127.0.0.1 with a free port.

use std::sync::Arc;

use keyrelay::settings::{LogFormat, MasterKeys};
use keyrelay::{Running, Settings};
use keyrelay_store::testing::TestDatabase;
use keyrelay_vault::{AdminToken, MasterKey};
use reqwest::Method;
use serde_json::{Value, json};

/// Which database a test server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A response, with the body parsed as JSON when it is JSON.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Response {
    /// `error.code` of a keyrelay error body, or "".
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// `error.message` of a keyrelay error body, or "".
    pub fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }
}

pub struct TestServerBuilder {
    backend: Backend,
    database_url: Option<String>,
    master_keys: Option<MasterKeys>,
    public_rate_per_minute: Option<u32>,
    proxy_timeout: Option<std::time::Duration>,
    extra_ca_file: Option<std::path::PathBuf>,
    proxy_max_body_bytes: Option<u64>,
    refresh: Option<keyrelay_server::config::RefreshConfig>,
}

impl TestServerBuilder {
    /// The refresh engine's settings. Test servers run without the
    /// background scheduler unless these turn it on, so that a test sees
    /// only the refreshes it causes.
    pub fn refresh(mut self, refresh: keyrelay_server::config::RefreshConfig) -> Self {
        self.refresh = Some(refresh);
        self
    }

    /// The largest request body the proxy forwards.
    pub fn proxy_max_body_bytes(mut self, limit: u64) -> Self {
        self.proxy_max_body_bytes = Some(limit);
        self
    }

    /// Trust the CA certificates in this PEM file for provider TLS.
    pub fn extra_ca_file(mut self, path: std::path::PathBuf) -> Self {
        self.extra_ca_file = Some(path);
        self
    }

    /// How long the proxy waits for an upstream's response head.
    pub fn proxy_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.proxy_timeout = Some(timeout);
        self
    }

    /// Per-IP limit of the public routes (tests default to a high one).
    pub fn public_rate_per_minute(mut self, rate: u32) -> Self {
        self.public_rate_per_minute = Some(rate);
        self
    }

    /// Use this database URL instead of a fresh database (e.g. through a `TcpProxy`).
    pub fn database_url(mut self, url: impl Into<String>) -> Self {
        self.database_url = Some(url.into());
        self
    }

    pub fn master_keys(mut self, keys: MasterKeys) -> Self {
        self.master_keys = Some(keys);
        self
    }

    /// Starts the server; `None` when the backend is PostgreSQL and
    /// `KEYRELAY_TEST_DATABASE_URL` is not set (the skip is announced).
    pub async fn start(self) -> Option<TestServer> {
        let db = match self.backend {
            Backend::Sqlite => TestDatabase::sqlite().unwrap(),
            Backend::Postgres => TestDatabase::postgres().await.unwrap()?,
        };
        let data_dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let settings = Settings {
            listen: format!("127.0.0.1:{port}").parse().unwrap(),
            public_url: format!("http://127.0.0.1:{port}"),
            data_dir: data_dir.path().join("data"),
            database_url: self.database_url.unwrap_or_else(|| db.url.clone()),
            master_keys: self
                .master_keys
                .unwrap_or_else(|| MasterKeys::Env(vec![MasterKey::generate()])),
            admin_token: Some(AdminToken::new(keyrelay_vault::generate_token("kr_admin_"))),
            allow_local_providers: true,
            providers_file: None,
            log_format: LogFormat::Pretty,
            max_body_bytes: 64 * 1024,
            public_rate_per_minute: self.public_rate_per_minute.unwrap_or(10_000),
            proxy_connect_timeout: std::time::Duration::from_secs(2),
            proxy_timeout: self
                .proxy_timeout
                .unwrap_or(std::time::Duration::from_secs(10)),
            extra_ca_file: self.extra_ca_file,
            proxy_max_body_bytes: self.proxy_max_body_bytes,
            refresh: self
                .refresh
                .unwrap_or_else(|| keyrelay_server::config::RefreshConfig {
                    scheduler: false,
                    ..Default::default()
                }),
        };
        let mut server = TestServer {
            backend: self.backend,
            base_url: String::new(),
            admin_token: settings
                .admin_token
                .as_ref()
                .unwrap()
                .expose_secret()
                .to_string(),
            settings,
            db,
            _data_dir: data_dir,
            running: None,
            client: reqwest::Client::new(),
        };
        server.boot().await;
        Some(server)
    }
}

/// A running keyrelay and the database under it.
pub struct TestServer {
    pub backend: Backend,
    pub base_url: String,
    pub admin_token: String,
    pub settings: Settings,
    pub db: TestDatabase,
    _data_dir: tempfile::TempDir,
    running: Option<Running>,
    pub client: reqwest::Client,
}

impl TestServer {
    pub fn builder(backend: Backend) -> TestServerBuilder {
        TestServerBuilder {
            backend,
            database_url: None,
            master_keys: None,
            public_rate_per_minute: None,
            proxy_timeout: None,
            extra_ca_file: None,
            proxy_max_body_bytes: None,
            refresh: None,
        }
    }

    pub async fn start(backend: Backend) -> Option<TestServer> {
        Self::builder(backend).start().await
    }

    async fn boot(&mut self) {
        let running = keyrelay::start(&self.settings).await.unwrap();
        self.base_url = format!("http://{}", running.addr);
        self.running = Some(running);
    }

    /// The in-process application, for tests that call services directly.
    pub fn app(&self) -> &Arc<keyrelay_server::App> {
        &self.running.as_ref().unwrap().app
    }

    /// Stops the server gracefully and starts it again on the same database.
    pub async fn restart(&mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await.unwrap();
        }
        self.boot().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// Sends raw bytes with an optional content type.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Response {
        let mut req = self.client.request(method, self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let resp = req.body(body).send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Response {
            status,
            headers,
            text,
            body,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        match body {
            Some(body) => {
                self.raw(
                    method,
                    path,
                    token,
                    Some("application/json"),
                    serde_json::to_vec(&body).unwrap(),
                )
                .await
            }
            None => self.raw(method, path, token, None, Vec::new()).await,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Response {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Response {
        self.call(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Response {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Creates a project through the admin API; returns (id, secret key).
    pub async fn create_project(&self, name: &str) -> (String, String) {
        let resp = self
            .post(
                "/v1/admin/projects",
                &self.admin_token,
                json!({"name": name, "allowed_redirect_urls": ["https://app.example.com/done"]}),
            )
            .await;
        assert_eq!(resp.status, 201, "{}", resp.text);
        (
            resp.body["id"].as_str().unwrap().to_string(),
            resp.body["secret_key"].as_str().unwrap().to_string(),
        )
    }

    /// Creates a GitHub integration with the given client secret.
    pub async fn create_integration(&self, key: &str, secret_key: &str, client_secret: &str) {
        let resp = self
            .post(
                "/v1/integrations",
                secret_key,
                json!({"key": key, "provider": "github", "client_id": "client-123",
                       "client_secret": client_secret, "scopes": ["repo"]}),
            )
            .await;
        assert_eq!(resp.status, 201, "{}", resp.text);
    }

    /// Runs one statement straight on the server's database (to age or
    /// tamper with rows the API would never let a test touch), with an
    /// optional timestamp bound as `$1`.
    pub async fn raw_sql(&self, sql: &str, time: Option<chrono::DateTime<chrono::Utc>>) {
        use sqlx::Connection;
        match self.backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.db.url).await.unwrap();
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()));
                if let Some(t) = time {
                    query = query.bind(t);
                }
                query.execute(&mut conn).await.unwrap();
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.db.url).await.unwrap();
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()));
                if let Some(t) = time {
                    query = query.bind(t);
                }
                query.execute(&mut conn).await.unwrap();
            }
        }
    }

    /// Stops the server gracefully.
    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await.unwrap();
        }
    }
}

/// A port that was free a moment ago. The server keeps it across restarts,
/// so its public URL (and so its callback URL) stays the same.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
