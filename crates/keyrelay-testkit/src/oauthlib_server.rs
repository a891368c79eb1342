//! A real, independently written OAuth 1.0a provider for tests: Python's
//! `oauthlib` (its `RequestTokenEndpoint`, `AuthorizationEndpoint`,
//! `AccessTokenEndpoint` and `ResourceEndpoint`), served on 127.0.0.1 with a
//! free port by `oauth1/server.py`.
//!
//! There is no browser: `GET /authorize?oauth_token=…` approves at once as
//! the configured user and answers `302` to the callback with `oauth_token`
//! and `oauth_verifier`. Endpoints: `POST /request_token`, `GET /authorize`,
//! `POST /access_token`, and the protected resources `GET /api/me` and any
//! method on `/api/echo[/…]` (which answers what arrived: method, path, query,
//! form body); a request whose signature does not verify gets `401` with
//! JSON `{"error", "reason", "validator_log", "base_string"}`, the last being
//! the signature base string oauthlib computed. `GET /stats` counts what
//! happened ([`OauthlibStats`]).
//!
//! Needs `python3` with its `venv` module (and PyPI the first time): the
//! pinned, hashed `oauth1/requirements.txt` is installed into `oauth1/.venv`
//! once per machine, guarded against concurrent test processes. Without
//! them, [`OauthlibServer::start`] announces the skip and returns `None`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::child::{drain, lock_install};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// `python3 -m venv` is killed after this long.
const VENV_TIMEOUT: Duration = Duration::from_secs(2 * 60);
/// `pip install` is killed after this long.
const PIP_TIMEOUT: Duration = Duration::from_secs(8 * 60);
/// `pip`'s own socket timeout, in seconds.
const PIP_SOCKET_TIMEOUT: &str = "60";
/// How long to wait for another process's install before giving up (longer
/// than an install may take).
const INSTALL_WAIT: Duration = Duration::from_secs(12 * 60);
/// The virtual environment, in the `oauth1` folder (git-ignored).
const VENV: &str = ".venv";
/// Written into the venv once `pip install` has succeeded; holds what the
/// install was made from (see [`stamp_contents`]).
const STAMP: &str = ".keyrelay-pip-stamp";
const LOCK: &str = ".pip-install.lock";

/// How the provider is configured: one consumer (client) and the user the
/// authorization step approves as.
#[derive(Debug, Clone)]
pub struct OauthlibOptions {
    pub consumer_key: String,
    /// Unused with RSA-SHA1.
    pub consumer_secret: String,
    /// `"HMAC-SHA1"`, `"HMAC-SHA256"`, `"PLAINTEXT"` or `"RSA-SHA1"`: the
    /// only method the provider accepts from this consumer.
    pub signature_method: String,
    /// The consumer's RSA public key (PEM, `BEGIN PUBLIC KEY`); required
    /// with RSA-SHA1.
    pub rsa_public_key_pem: Option<String>,
    /// Returned by `/api/me` and `/api/echo` and in the access token reply
    /// (`user_id`, `screen_name`, as X does).
    pub user_id: String,
    pub screen_name: String,
}

impl Default for OauthlibOptions {
    fn default() -> Self {
        Self {
            consumer_key: "keyrelay-test-consumer".into(),
            consumer_secret: "keyrelay-test-consumer-secret".into(),
            signature_method: "HMAC-SHA1".into(),
            rsa_public_key_pem: None,
            user_id: "12345".into(),
            screen_name: "test-user".into(),
        }
    }
}

impl OauthlibOptions {
    /// A consumer with a shared secret: HMAC-SHA1, HMAC-SHA256 or PLAINTEXT.
    pub fn new(consumer_key: &str, consumer_secret: &str, signature_method: &str) -> Self {
        Self {
            consumer_key: consumer_key.into(),
            consumer_secret: consumer_secret.into(),
            signature_method: signature_method.into(),
            ..Self::default()
        }
    }

    /// An RSA-SHA1 consumer with its public key (PEM).
    pub fn rsa_sha1(consumer_key: &str, public_key_pem: &str) -> Self {
        Self {
            consumer_key: consumer_key.into(),
            consumer_secret: String::new(),
            signature_method: "RSA-SHA1".into(),
            rsa_public_key_pem: Some(public_key_pem.into()),
            ..Self::default()
        }
    }

    /// The same options approving as another user.
    pub fn with_user(mut self, user_id: &str, screen_name: &str) -> Self {
        self.user_id = user_id.into();
        self.screen_name = screen_name.into();
        self
    }
}

/// The provider's counters (`GET /stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OauthlibStats {
    /// Temporary credentials issued (`/request_token` answered 200).
    pub request_tokens_issued: u64,
    /// Verifiers issued (`/authorize` redirected to the callback).
    pub authorizations: u64,
    /// Token credentials issued (`/access_token` answered 200).
    pub access_tokens_issued: u64,
    /// `/api/*` requests whose signature, consumer and token verified.
    pub resource_requests_verified: u64,
    /// Requests refused by any of the endpoints (bad signature, unknown
    /// consumer or token, reused nonce, malformed request, …).
    pub requests_rejected: u64,
    /// Of those, how many reused a nonce (same consumer, timestamp and token).
    pub nonces_rejected: u64,
}

/// A running provider; the Python process is killed on drop (and exits by
/// itself if this process dies, when its stdin closes).
pub struct OauthlibServer {
    base_url: String,
    port: u16,
    child: Child,
    _stdin: ChildStdin,
    stderr: Arc<Mutex<String>>,
}

impl std::fmt::Debug for OauthlibServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OauthlibServer")
            .field("base_url", &self.base_url)
            .field("pid", &self.child.id())
            .finish_non_exhaustive()
    }
}

impl OauthlibServer {
    /// Starts a provider, or returns `None` (announcing the skip on stderr)
    /// when `python3` or its `venv` module is not installed. Installs
    /// `oauth1/requirements.txt` into `oauth1/.venv` first when that is
    /// missing or was made from another requirements file or interpreter
    /// (once per machine, guarded against concurrent test processes).
    /// Panics, with the server's stderr, when it does not come up.
    pub async fn start(options: OauthlibOptions) -> Option<OauthlibServer> {
        match tokio::task::spawn_blocking(move || start_blocking(&options)).await {
            Ok(server) => server,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("OAuth 1.0a provider start-up task failed: {e}"),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// An absolute URL on the provider: `url("/api/me")`.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with('/') {
            format!("{}{path}", self.base_url)
        } else {
            format!("{}/{path}", self.base_url)
        }
    }

    /// The temporary credentials endpoint, `{base}/request_token`.
    pub fn request_token_url(&self) -> String {
        self.url("/request_token")
    }

    /// The resource owner authorization endpoint, `{base}/authorize`.
    pub fn authorize_url(&self) -> String {
        self.url("/authorize")
    }

    /// The token credentials endpoint, `{base}/access_token`.
    pub fn access_token_url(&self) -> String {
        self.url("/access_token")
    }

    /// `{base}/api`: `/me` and `/echo[/…]` below it are protected resources.
    pub fn api_base_url(&self) -> String {
        self.url("/api")
    }

    /// The provider's counters so far.
    pub async fn stats(&self) -> OauthlibStats {
        let resp = reqwest::get(self.url("/stats"))
            .await
            .unwrap_or_else(|e| panic!("GET /stats on the OAuth 1.0a provider failed: {e}"));
        assert!(
            resp.status().is_success(),
            "GET /stats answered {}",
            resp.status()
        );
        let v: Value = resp.json().await.expect("/stats is JSON");
        let n = |name: &str| {
            v[name]
                .as_u64()
                .unwrap_or_else(|| panic!("/stats has no count {name:?}: {v}"))
        };
        OauthlibStats {
            request_tokens_issued: n("request_tokens_issued"),
            authorizations: n("authorizations"),
            access_tokens_issued: n("access_tokens_issued"),
            resource_requests_verified: n("resource_requests_verified"),
            requests_rejected: n("requests_rejected"),
            nonces_rejected: n("nonces_rejected"),
        }
    }

    /// Everything the server wrote to stderr so far: one line per request,
    /// and oauthlib's signature base string for each refused one.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for OauthlibServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn oauth1_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("oauth1")
}

fn venv_python(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python")
    }
}

/// What the system `python3` is, when it exists and can make a venv with
/// pip (`venv` and `ensurepip`; Debian ships those apart, as python3-venv).
enum Python {
    Missing,
    NoVenv,
    /// `sys.version` and `sys.executable`: part of the install stamp.
    Ready(String),
}

fn probe_python() -> Python {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys\n\
             try:\n    import venv, ensurepip\n\
             except ImportError:\n    sys.exit(3)\n\
             print(sys.version.replace('\\n', ' '), sys.executable)",
        ])
        .stdin(Stdio::null())
        .output();
    match out {
        Err(_) => Python::Missing,
        Ok(out) if out.status.success() => {
            Python::Ready(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        }
        Ok(out) if out.status.code() == Some(3) => Python::NoVenv,
        Ok(_) => Python::Missing,
    }
}

fn start_blocking(options: &OauthlibOptions) -> Option<OauthlibServer> {
    let identity = match probe_python() {
        Python::Ready(identity) => identity,
        Python::Missing => {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED (OAuth 1.0a provider): python3 is not installed"
            );
            return None;
        }
        Python::NoVenv => {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED (OAuth 1.0a provider): python3 has no venv/ensurepip module \
                 (on Debian: apt-get install python3-venv)"
            );
            return None;
        }
    };
    let dir = oauth1_dir();
    ensure_installed(&dir, &identity);
    Some(spawn(&dir, options))
}

fn config_json(options: &OauthlibOptions) -> String {
    json!({
        "clients": [{
            "consumer_key": options.consumer_key,
            "consumer_secret": options.consumer_secret,
            "signature_methods": [options.signature_method],
            "rsa_public_key": options.rsa_public_key_pem,
        }],
        "user_id": options.user_id,
        "screen_name": options.screen_name,
    })
    .to_string()
}

fn spawn(dir: &Path, options: &OauthlibOptions) -> OauthlibServer {
    let python = venv_python(&dir.join(VENV));
    // -I: isolated from PYTHON* variables and the user's site-packages;
    // -B: no __pycache__ in the source tree; -u: unbuffered output.
    let mut child = Command::new(&python)
        .args(["-I", "-B", "-u", "server.py", "--port", "0"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `{} server.py` in {}: {e}",
                python.display(),
                dir.display()
            )
        });
    let mut stdin = child.stdin.take().expect("child stdin");
    let stderr_pipe = child.stderr.take().expect("child stderr");

    let stderr = Arc::new(Mutex::new(String::new()));
    let stderr_thread = drain(stderr_pipe, Arc::clone(&stderr));

    // The configuration is stdin's first line (secrets stay off the command
    // line); the server then runs until stdin closes.
    let config = config_json(options) + "\n";
    if let Err(e) = stdin
        .write_all(config.as_bytes())
        .and_then(|()| stdin.flush())
    {
        let status = child.wait();
        let _ = stderr_thread.join();
        panic!(
            "cannot send the OAuth 1.0a provider its configuration ({e}; {status:?}); its stderr:\n{}",
            stderr.lock().unwrap_or_else(|e| e.into_inner())
        );
    }

    let port = crate::child::wait_ready(&mut child, "OAuth 1.0a provider", &stderr, stderr_thread);

    OauthlibServer {
        base_url: format!("http://127.0.0.1:{port}"),
        port,
        child,
        _stdin: stdin,
        stderr,
    }
}

/// What an install is made from: the requirements file's SHA-256 and the
/// interpreter the venv was created with. A change of either reinstalls.
fn stamp_contents(dir: &Path, python_identity: &str) -> String {
    let path = dir.join("requirements.txt");
    let requirements =
        fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let digest: String = Sha256::digest(&requirements)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("requirements.txt sha256 {digest}\npython {python_identity}\n")
}

/// The venv exists and was installed (by us) from the current requirements
/// with the current interpreter.
fn install_fresh(dir: &Path, stamp: &str) -> bool {
    let venv = dir.join(VENV);
    venv_python(&venv).is_file()
        && fs::read_to_string(venv.join(STAMP)).is_ok_and(|found| found == stamp)
}

/// Runs a command to completion, killing it after `timeout`; panics with
/// its output when it cannot run, times out or fails.
fn run(what: &str, cmd: &mut Command, timeout: Duration) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let out = Arc::new(Mutex::new(String::new()));
    let err = Arc::new(Mutex::new(String::new()));
    let out_thread = drain(child.stdout.take().expect("stdout"), Arc::clone(&out));
    let err_thread = drain(child.stderr.take().expect("stderr"), Arc::clone(&err));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(100)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = (out_thread.join(), err_thread.join());
                panic!(
                    "{what} did not finish within {timeout:?}; its output:\n{}\n{}",
                    out.lock().unwrap_or_else(|e| e.into_inner()),
                    err.lock().unwrap_or_else(|e| e.into_inner())
                );
            }
            Err(e) => panic!("cannot wait for {what}: {e}"),
        }
    };
    let _ = (out_thread.join(), err_thread.join());
    if !status.success() {
        panic!(
            "{what} failed ({status}):\n{}\n{}",
            out.lock().unwrap_or_else(|e| e.into_inner()),
            err.lock().unwrap_or_else(|e| e.into_inner())
        );
    }
}

/// Creates `oauth1/.venv` and installs `requirements.txt` into it unless it
/// is up to date.
fn ensure_installed(dir: &Path, python_identity: &str) {
    // Threads of this process queue here; other processes on the lock file.
    static IN_PROCESS: Mutex<()> = Mutex::new(());
    let _guard = IN_PROCESS.lock().unwrap_or_else(|e| e.into_inner());
    let stamp = stamp_contents(dir, python_identity);
    if install_fresh(dir, &stamp) {
        return;
    }
    let _lock = lock_install(dir.join(LOCK), INSTALL_WAIT, "oauthlib install");
    if install_fresh(dir, &stamp) {
        return; // another process installed it while we waited
    }
    let venv = dir.join(VENV);
    let started = Instant::now();
    let _ = writeln!(
        std::io::stderr(),
        "OAuth 1.0a provider: installing oauthlib into {} (once)",
        venv.display()
    );
    if venv.exists() {
        fs::remove_dir_all(&venv)
            .unwrap_or_else(|e| panic!("cannot remove the stale {}: {e}", venv.display()));
    }
    run(
        "`python3 -m venv`",
        Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .current_dir(dir),
        VENV_TIMEOUT,
    );
    run(
        "`pip install --require-hashes -r requirements.txt`",
        Command::new(venv_python(&venv))
            .args([
                "-m",
                "pip",
                "install",
                "--require-hashes",
                "--no-input",
                "--disable-pip-version-check",
                "--timeout",
                PIP_SOCKET_TIMEOUT,
                "-r",
                "requirements.txt",
            ])
            .current_dir(dir),
        PIP_TIMEOUT,
    );
    fs::write(venv.join(STAMP), &stamp)
        .unwrap_or_else(|e| panic!("cannot write the pip install stamp: {e}"));
    let _ = writeln!(
        std::io::stderr(),
        "OAuth 1.0a provider: installed in {:.1?}",
        started.elapsed()
    );
}
