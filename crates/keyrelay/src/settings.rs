//! Settings: flag > environment (`KEYRELAY_*`) > config file > default.
//! Flags and environment come through clap; the file is TOML with unknown
//! keys refused, so a typo is an error rather than a silently ignored setting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use keyrelay_server::config::RefreshConfig;
use keyrelay_vault::{AdminToken, MasterKey};
use serde::Deserialize;

/// Options every command takes (each also read from its environment variable).
#[derive(Clone, Default, Args)]
pub struct GlobalArgs {
    /// TOML config file (keys as in the table of the README, e.g. `listen = "…"`).
    #[arg(long, global = true, env = "KEYRELAY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8844].
    #[arg(long, global = true, env = "KEYRELAY_LISTEN")]
    pub listen: Option<String>,
    /// URL browsers and providers reach keyrelay at [default: http://LISTEN].
    #[arg(long, global = true, env = "KEYRELAY_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Where the embedded database and generated key live [default: ./keyrelay-data].
    #[arg(long, global = true, env = "KEYRELAY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// `sqlite:PATH` or `postgres://…` [default: sqlite in the data dir].
    #[arg(
        long,
        global = true,
        env = "KEYRELAY_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// A key file (one base64 key a line, newest last) instead of the generated one.
    #[arg(long, global = true, env = "KEYRELAY_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Permit http:// and private addresses for providers (development and tests only).
    #[arg(long, global = true, env = "KEYRELAY_ALLOW_LOCAL_PROVIDERS")]
    pub allow_local_providers: Option<bool>,
    /// Extra or overriding provider definitions (TOML or JSON).
    #[arg(long, global = true, env = "KEYRELAY_PROVIDERS_FILE")]
    pub providers_file: Option<PathBuf>,
    /// `pretty` or `json` [default: pretty on a terminal, else json].
    #[arg(long, global = true, env = "KEYRELAY_LOG_FORMAT")]
    pub log_format: Option<String>,
}

/// The config file's keys: the same settings as the flags. Secrets (master
/// keys, admin token) are not accepted here; they come from the environment
/// or key files only.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    public_url: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    master_key_file: Option<PathBuf>,
    allow_local_providers: Option<bool>,
    providers_file: Option<PathBuf>,
    log_format: Option<String>,
    max_body_bytes: Option<usize>,
    public_rate_per_minute: Option<u32>,
    proxy_connect_timeout_ms: Option<u64>,
    proxy_timeout_ms: Option<u64>,
    extra_ca_file: Option<PathBuf>,
    proxy_max_body_bytes: Option<u64>,
    refresh_margin_seconds: Option<u64>,
    refresh_idle_seconds: Option<u64>,
    refresh_lease_seconds: Option<u64>,
    scheduler: Option<bool>,
    scheduler_interval_ms: Option<u64>,
    scheduler_concurrency: Option<usize>,
}

/// Where the master keys come from.
#[derive(Debug, Clone)]
pub enum MasterKeys {
    /// `KEYRELAY_MASTER_KEY`: fixed by the operator; the first encrypts.
    Env(Vec<MasterKey>),
    /// A key file (given, or generated in the data dir); the newest encrypts.
    File { path: PathBuf, generate: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Every setting, resolved. Its Debug output hides the database password.
#[derive(Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub public_url: String,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub master_keys: MasterKeys,
    pub admin_token: Option<AdminToken>,
    pub allow_local_providers: bool,
    pub providers_file: Option<PathBuf>,
    pub log_format: LogFormat,
    pub max_body_bytes: usize,
    /// Per-IP requests per minute on the public routes (connect, callbacks).
    pub public_rate_per_minute: u32,
    /// Proxy: TCP/TLS connect timeout upstream.
    pub proxy_connect_timeout: std::time::Duration,
    /// Proxy: how long to wait for the upstream's response head.
    pub proxy_timeout: std::time::Duration,
    /// PEM file of extra CA certificates trusted for provider TLS.
    pub extra_ca_file: Option<PathBuf>,
    /// Largest request body the proxy forwards (none by default).
    pub proxy_max_body_bytes: Option<u64>,
    /// The refresh engine and its scheduler.
    pub refresh: RefreshConfig,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("public_url", &self.public_url)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &keyrelay_store::redact_url(&self.database_url),
            )
            .field("master_keys", &self.master_keys)
            .field("admin_token", &self.admin_token)
            .field("allow_local_providers", &self.allow_local_providers)
            .field("providers_file", &self.providers_file)
            .field("log_format", &self.log_format)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("public_rate_per_minute", &self.public_rate_per_minute)
            .field("proxy_connect_timeout", &self.proxy_connect_timeout)
            .field("proxy_timeout", &self.proxy_timeout)
            .field("refresh", &self.refresh)
            .field("extra_ca_file", &self.extra_ca_file)
            .field("proxy_max_body_bytes", &self.proxy_max_body_bytes)
            .finish()
    }
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8844";
pub const MASTER_KEY_FILE_NAME: &str = "master.key";

impl Settings {
    /// Resolves settings from parsed flags/environment and the config file.
    pub fn resolve(args: &GlobalArgs) -> Result<Settings> {
        let file = match &args.config {
            Some(path) => read_config_file(path)?,
            None => FileConfig::default(),
        };
        let refresh = refresh_config(&file)?;
        let listen_text = pick(args.listen.clone(), file.listen, DEFAULT_LISTEN.to_string());
        let listen: SocketAddr = listen_text.parse().with_context(|| {
            format!("listen: {listen_text:?} is not an address such as 127.0.0.1:8844")
        })?;
        let public_url = match args.public_url.clone().or(file.public_url) {
            Some(url) => check_public_url(&url)?,
            None => default_public_url(listen),
        };
        let data_dir = pick(
            args.data_dir.clone(),
            file.data_dir,
            PathBuf::from("keyrelay-data"),
        );
        let database_url = args
            .database_url
            .clone()
            .or(file.database_url)
            .unwrap_or_else(|| format!("sqlite:{}", data_dir.join("keyrelay.db").display()));
        let master_key_file = args.master_key_file.clone().or(file.master_key_file);
        let master_keys = master_keys_from_env(master_key_file, &data_dir)?;
        let admin_token = match std::env::var("KEYRELAY_ADMIN_TOKEN") {
            Ok(token) if !token.is_empty() => {
                if token.len() < 24 {
                    bail!(
                        "KEYRELAY_ADMIN_TOKEN is too short: use at least 24 random characters (e.g. `openssl rand -hex 24`)"
                    );
                }
                Some(AdminToken::new(token))
            }
            _ => None,
        };
        let log_format = match args.log_format.clone().or(file.log_format).as_deref() {
            Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            Some(other) => bail!("log format {other:?} is not `pretty` or `json`"),
            None if std::io::IsTerminal::is_terminal(&std::io::stderr()) => LogFormat::Pretty,
            None => LogFormat::Json,
        };
        Ok(Settings {
            listen,
            public_url,
            data_dir,
            database_url,
            master_keys,
            admin_token,
            allow_local_providers: args
                .allow_local_providers
                .or(file.allow_local_providers)
                .unwrap_or(false),
            providers_file: args.providers_file.clone().or(file.providers_file),
            log_format,
            max_body_bytes: file.max_body_bytes.unwrap_or(1024 * 1024),
            public_rate_per_minute: file.public_rate_per_minute.unwrap_or(60),
            proxy_connect_timeout: std::time::Duration::from_millis(
                file.proxy_connect_timeout_ms.unwrap_or(5_000),
            ),
            proxy_timeout: std::time::Duration::from_millis(
                file.proxy_timeout_ms.unwrap_or(60_000),
            ),
            extra_ca_file: std::env::var_os("KEYRELAY_EXTRA_CA_FILE")
                .map(PathBuf::from)
                .or(file.extra_ca_file),
            proxy_max_body_bytes: file.proxy_max_body_bytes,
            refresh,
        })
    }
}

/// The refresh settings from the file, over the defaults.
fn refresh_config(file: &FileConfig) -> Result<RefreshConfig> {
    let d = RefreshConfig::default();
    let secs = std::time::Duration::from_secs;
    let cfg = RefreshConfig {
        margin: file.refresh_margin_seconds.map_or(d.margin, secs),
        idle: file.refresh_idle_seconds.map_or(d.idle, secs),
        lease: file.refresh_lease_seconds.map_or(d.lease, secs),
        scheduler: file.scheduler.unwrap_or(d.scheduler),
        scheduler_interval: file
            .scheduler_interval_ms
            .map_or(d.scheduler_interval, std::time::Duration::from_millis),
        scheduler_concurrency: file
            .scheduler_concurrency
            .unwrap_or(d.scheduler_concurrency),
    };
    if cfg.lease.is_zero() || cfg.scheduler_interval.is_zero() || cfg.scheduler_concurrency == 0 {
        bail!(
            "refresh_lease_seconds, scheduler_interval_ms and scheduler_concurrency must be greater than 0"
        );
    }
    Ok(cfg)
}

fn pick<T>(flag_or_env: Option<T>, file: Option<T>, default: T) -> T {
    flag_or_env.or(file).unwrap_or(default)
}

fn read_config_file(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("config file {} is invalid", path.display()))
}

fn check_public_url(url: &str) -> Result<String> {
    let parsed = url::Url::parse(url)
        .with_context(|| format!("public URL {url:?} is not an absolute URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        bail!("public URL {url:?} must be an http(s) URL with a host");
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        bail!("public URL {url:?} must not have a query or fragment");
    }
    Ok(url.trim_end_matches('/').to_string())
}

fn default_public_url(listen: SocketAddr) -> String {
    let host = match listen.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    format!("http://{host}:{}", listen.port())
}

/// `KEYRELAY_MASTER_KEY` (comma-separated, first encrypts) wins over a key file.
fn master_keys_from_env(file: Option<PathBuf>, data_dir: &Path) -> Result<MasterKeys> {
    if let Ok(value) = std::env::var("KEYRELAY_MASTER_KEY")
        && !value.trim().is_empty()
    {
        let keys = value
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .enumerate()
            .map(|(i, k)| {
                MasterKey::from_base64(k)
                    .with_context(|| format!("KEYRELAY_MASTER_KEY: key #{} is invalid", i + 1))
            })
            .collect::<Result<Vec<_>>>()?;
        return Ok(MasterKeys::Env(keys));
    }
    Ok(match file {
        Some(path) => MasterKeys::File {
            path,
            generate: false,
        },
        None => MasterKeys::File {
            path: data_dir.join(MASTER_KEY_FILE_NAME),
            generate: true,
        },
    })
}
