//! A real, independently written OAuth 2.0 / OpenID Connect authorization
//! server for tests: panva's certified `oidc-provider` (npm), run by Node on
//! 127.0.0.1 with a free port (see `oidc/server.mjs`).
//!
//! There is no browser: the provider's login/consent interaction completes
//! automatically as the configured account and grants everything asked for,
//! so a plain HTTP client that follows redirects (keeping cookies) goes
//! `GET /auth?…` → `/interaction/UID` → `/auth/UID` → `redirect_uri?code=…&state=…&iss=…`.
//!
//! Endpoints (also in discovery, `/.well-known/openid-configuration`):
//! `/auth`, `/token`, `/me` (userinfo), `/token/introspection`,
//! `/token/revocation`, `/jwks`.
//!
//! Needs `node` (and `npm` the first time): without `node` on `PATH`,
//! [`OidcServer::start`] announces the skip and returns `None`.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::child::{drain, lock_install, mtime};
use serde_json::json;

/// How long to wait for another process's `npm ci` before giving up.
const INSTALL_WAIT: Duration = Duration::from_secs(10 * 60);
/// Written into `node_modules` once `npm ci` has succeeded.
const STAMP: &str = ".keyrelay-npm-ci-stamp";
const LOCK: &str = ".npm-install.lock";

/// A client registered with the provider.
#[derive(Debug, Clone)]
pub struct OidcClient {
    pub client_id: String,
    pub client_secret: String,
    /// `"client_secret_basic"` or `"client_secret_post"`: the only method the
    /// token, introspection and revocation endpoints accept from this client.
    pub auth_method: &'static str,
    pub redirect_uris: Vec<String>,
    /// `["authorization_code", "refresh_token"]` and/or `["client_credentials"]`.
    pub grant_types: Vec<&'static str>,
    /// The scopes this client may ask for (space separated). Every scope of
    /// every client is made known to the provider.
    pub scope: String,
}

impl OidcClient {
    /// An authorization-code (+ refresh token) client using
    /// `client_secret_basic`, allowed `openid email profile offline_access`.
    pub fn web(client_id: &str, client_secret: &str, redirect_uri: &str) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            auth_method: "client_secret_basic",
            redirect_uris: vec![redirect_uri.into()],
            grant_types: vec!["authorization_code", "refresh_token"],
            scope: "openid email profile offline_access".into(),
        }
    }

    /// A `client_credentials` client using `client_secret_basic`.
    pub fn service(client_id: &str, client_secret: &str, scope: &str) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            auth_method: "client_secret_basic",
            redirect_uris: Vec::new(),
            grant_types: vec!["client_credentials"],
            scope: scope.into(),
        }
    }

    /// The same client with another token endpoint auth method.
    pub fn with_auth_method(mut self, auth_method: &'static str) -> Self {
        self.auth_method = auth_method;
        self
    }
}

/// How the provider is configured.
#[derive(Debug, Clone)]
pub struct OidcOptions {
    pub clients: Vec<OidcClient>,
    /// Access token lifetime in seconds (also for `client_credentials` tokens).
    pub access_token_ttl: u64,
    /// Every refresh returns a new refresh token and consumes the old one;
    /// presenting a consumed one fails with `invalid_grant` and revokes the
    /// whole grant (all its access and refresh tokens).
    pub rotate_refresh_tokens: bool,
    /// Authorization requests without an S256 `code_challenge` are refused.
    pub pkce_required: bool,
    /// The subject everyone is logged in as. Claims: `email`
    /// `<account>@example.test` (verified), `name` "Test User".
    pub account: String,
}

impl Default for OidcOptions {
    fn default() -> Self {
        Self {
            clients: Vec::new(),
            access_token_ttl: 3600,
            rotate_refresh_tokens: true,
            pkce_required: true,
            account: "test-user".into(),
        }
    }
}

/// A running provider; the Node process is killed on drop (and exits by
/// itself if this process dies, when its stdin closes).
pub struct OidcServer {
    /// `http://127.0.0.1:PORT`, exactly as the provider spells its issuer.
    pub issuer: String,
    pub port: u16,
    child: Child,
    _stdin: ChildStdin,
    stderr: Arc<Mutex<String>>,
}

impl std::fmt::Debug for OidcServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcServer")
            .field("issuer", &self.issuer)
            .field("pid", &self.child.id())
            .finish_non_exhaustive()
    }
}

impl OidcServer {
    /// Starts a provider, or returns `None` (announcing the skip on stderr)
    /// when `node` is not installed. Runs `npm ci` in the `oidc` folder first
    /// when its `node_modules` is missing or older than `package-lock.json`
    /// (once per machine, guarded against concurrent test processes).
    /// Panics, with the server's stderr, when it does not come up.
    pub async fn start(options: OidcOptions) -> Option<OidcServer> {
        match tokio::task::spawn_blocking(move || start_blocking(&options)).await {
            Ok(server) => server,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("OIDC provider start-up task failed: {e}"),
        }
    }

    /// An absolute URL on the provider: `url("/token")`.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with('/') {
            format!("{}{path}", self.issuer)
        } else {
            format!("{}/{path}", self.issuer)
        }
    }

    /// Everything the server wrote to stderr so far (its error log).
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for OidcServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn oidc_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("oidc")
}

fn node_installed() -> bool {
    Command::new("node")
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn start_blocking(options: &OidcOptions) -> Option<OidcServer> {
    if !node_installed() {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED (OIDC provider): node is not installed"
        );
        return None;
    }
    let dir = oidc_dir();
    ensure_installed(&dir);
    Some(spawn(&dir, options))
}

fn config_json(options: &OidcOptions) -> String {
    let clients: Vec<_> = options
        .clients
        .iter()
        .map(|c| {
            json!({
                "client_id": c.client_id,
                "client_secret": c.client_secret,
                "redirect_uris": c.redirect_uris,
                "token_endpoint_auth_method": c.auth_method,
                "grant_types": c.grant_types,
                "scope": c.scope,
            })
        })
        .collect();
    json!({
        "clients": clients,
        "access_token_ttl": options.access_token_ttl,
        "rotate_refresh_tokens": options.rotate_refresh_tokens,
        "pkce_required": options.pkce_required,
        "account": options.account,
    })
    .to_string()
}

fn spawn(dir: &Path, options: &OidcOptions) -> OidcServer {
    let mut child = Command::new("node")
        .arg("server.mjs")
        .current_dir(dir)
        .env("PORT", "0")
        .env("OIDC_CONFIG", config_json(options))
        .env("OIDC_EXIT_ON_STDIN_EOF", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `node server.mjs` in {}: {e}", dir.display()));
    let stdin = child.stdin.take().expect("child stdin");
    let stderr_pipe = child.stderr.take().expect("child stderr");

    let stderr = Arc::new(Mutex::new(String::new()));
    let stderr_thread = drain(stderr_pipe, Arc::clone(&stderr));

    let port = crate::child::wait_ready(&mut child, "OIDC provider", &stderr, stderr_thread);

    OidcServer {
        issuer: format!("http://127.0.0.1:{port}"),
        port,
        child,
        _stdin: stdin,
        stderr,
    }
}

/// `node_modules` exists and was installed (by us) after the lock file last changed.
fn install_fresh(dir: &Path) -> bool {
    let Some(stamp) = mtime(&dir.join("node_modules").join(STAMP)) else {
        return false;
    };
    match mtime(&dir.join("package-lock.json")) {
        Some(lock) => stamp >= lock,
        None => false,
    }
}

/// Runs `npm ci` in `dir` unless its `node_modules` is up to date.
fn ensure_installed(dir: &Path) {
    // Threads of this process queue here; other processes on the lock file.
    static IN_PROCESS: Mutex<()> = Mutex::new(());
    let _guard = IN_PROCESS.lock().unwrap_or_else(|e| e.into_inner());
    if install_fresh(dir) {
        return;
    }
    let _lock = lock_install(dir.join(LOCK), INSTALL_WAIT, "`npm ci`");
    if install_fresh(dir) {
        return; // another process installed it while we waited
    }
    let _ = writeln!(
        std::io::stderr(),
        "OIDC provider: running `npm ci` in {} (once)",
        dir.display()
    );
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "node is installed but `npm ci` could not run in {}: {e}",
                dir.display()
            )
        });
    if !out.status.success() {
        panic!(
            "`npm ci` failed in {} ({}):\n{}\n{}",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    File::create(dir.join("node_modules").join(STAMP))
        .unwrap_or_else(|e| panic!("cannot write the npm ci stamp: {e}"));
}
