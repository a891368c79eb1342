//! What the server needs to know about where it runs. The binary fills this
//! from flags, environment and the config file.

use std::net::SocketAddr;
use std::time::Duration;

/// Settings the services and HTTP layer read.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// The URL browsers and providers reach keyrelay at, without a trailing slash.
    pub public_url: String,
    /// Permits http:// and private addresses for provider endpoints (tests, development).
    pub allow_local_providers: bool,
    /// Largest JSON body the API accepts.
    pub max_body_bytes: usize,
    /// Requests per minute one client IP may make to the public,
    /// unauthenticated routes (`/connect/…`, the OAuth callbacks).
    pub public_rate_per_minute: u32,
    /// Proxy: how long to wait for a TCP (and TLS) connection upstream.
    pub proxy_connect_timeout: std::time::Duration,
    /// Proxy: how long to wait for the upstream's response head.
    pub proxy_timeout: std::time::Duration,
    /// PEM certificates trusted for provider TLS besides the public roots
    /// (providers behind a private CA, such as a self-hosted GitLab).
    pub extra_ca_pem: Option<Vec<u8>>,
    /// Largest request body the proxy forwards; `None`: no limit.
    pub proxy_max_body_bytes: Option<u64>,
    /// When and how tokens are refreshed.
    pub refresh: RefreshConfig,
}

/// The refresh engine's settings.
#[derive(Debug, Clone)]
pub struct RefreshConfig {
    /// Refresh this long before expiry (never more than half a token's
    /// lifetime).
    pub margin: Duration,
    /// Refresh a refresh token unused for this long, so that providers
    /// whose refresh tokens expire from disuse keep honouring it.
    pub idle: Duration,
    /// How long one instance may hold a connection's refresh before others
    /// may take it over (it must outlast a token call).
    pub lease: Duration,
    /// Whether this instance runs the background scheduler.
    pub scheduler: bool,
    /// How often the scheduler looks for due connections.
    pub scheduler_interval: Duration,
    /// Refreshes the scheduler runs at once.
    pub scheduler_concurrency: usize,
}

impl Default for RefreshConfig {
    fn default() -> Self {
        RefreshConfig {
            margin: Duration::from_secs(300),
            idle: Duration::from_secs(7 * 24 * 3600),
            lease: Duration::from_secs(30),
            scheduler: true,
            scheduler_interval: Duration::from_secs(1),
            scheduler_concurrency: 32,
        }
    }
}

impl ServerConfig {
    /// The redirect URI app developers register at OAuth2 providers.
    pub fn oauth_callback_url(&self) -> String {
        format!("{}/oauth/callback", self.public_url)
    }

    /// The callback for OAuth 1.0a providers.
    pub fn oauth1_callback_url(&self) -> String {
        format!("{}/oauth1/callback", self.public_url)
    }
}
