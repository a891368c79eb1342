//! What the server needs to know about where it runs. The binary fills this
//! from flags, environment and the config file.

use std::net::SocketAddr;

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
