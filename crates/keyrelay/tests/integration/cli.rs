//! The `keyrelay` binary as an operator runs it: `serve` in an empty
//! directory, restarts, graceful shutdown, key rotation while serving, a
//! wrong key refused at start-up, and the project/providers commands.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use keyrelay_testkit::{TestDatabase, free_port};
use serde_json::{Value, json};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_keyrelay");

/// A command in `dir` with a clean environment (no inherited KEYRELAY_*).
pub(crate) fn keyrelay(dir: &Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("KEYRELAY_LOG_FORMAT", "json");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn run(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> (bool, String, String) {
    let out = keyrelay(dir, env).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A running `keyrelay serve`, killed if the test drops it.
pub(crate) struct Served {
    child: Child,
    pub(crate) base: String,
    banner: String,
}

impl Served {
    pub(crate) fn start(dir: &Path, env: &[(&str, &str)]) -> Served {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut env = env.to_vec();
        env.push(("KEYRELAY_LISTEN", &listen));
        let mut child = keyrelay(dir, &env)
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut banner = String::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                banner.push_str(&line);
                banner.push('\n');
                if line.starts_with("Ready.") {
                    let _ = tx.send(banner.clone());
                }
            }
        });
        let banner = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(banner) => banner,
            Err(_) => {
                let _ = child.kill();
                let mut err = String::new();
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                panic!("keyrelay serve did not start: {err}");
            }
        };
        Served {
            child,
            base: format!("http://{listen}"),
            banner,
        }
    }

    fn admin_token(&self) -> Option<String> {
        self.banner
            .lines()
            .find_map(|l| l.trim().strip_prefix("admin token: "))
            .map(str::to_string)
    }

    /// SIGKILL: the process dies where it stands.
    pub(crate) fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then the exit status.
    fn terminate(mut self) -> bool {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("keyrelay did not stop on SIGTERM");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn http(method: &str, url: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut req = client
        .request(method.parse().unwrap(), url)
        .bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn serve_in_an_empty_directory_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    serve_and_restart(dir.path(), &[]).await;
    let data = dir.path().join("keyrelay-data");
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("master.key")), 0o600);
    assert_eq!(mode(&data.join("keyrelay.db")), 0o600);
}

#[tokio::test]
async fn serve_on_postgres() {
    let Some(db) = TestDatabase::postgres().await.unwrap() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    serve_and_restart(dir.path(), &[("KEYRELAY_DATABASE_URL", &db.url)]).await;
    assert!(!dir.path().join("keyrelay-data/keyrelay.db").exists());
}

/// Starts `serve`, uses the API, restarts, and checks that every key and
/// record survived and no new admin token was made.
async fn serve_and_restart(dir: &Path, env: &[(&str, &str)]) {
    let served = Served::start(dir, env);
    assert!(
        served.banner.contains("/oauth/callback"),
        "{}",
        served.banner
    );
    let admin = served
        .admin_token()
        .expect("first start prints the admin token");
    assert!(admin.starts_with("kr_admin_"));
    let health = reqwest::get(format!("{}/healthz", served.base))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let (status, project) = http(
        "POST",
        &format!("{}/v1/admin/projects", served.base),
        &admin,
        Some(json!({"name": "cli"})),
    )
    .await;
    assert_eq!(status, 201, "{project}");
    let key = project["secret_key"].as_str().unwrap().to_string();
    let (status, _) = http(
        "POST",
        &format!("{}/v1/integrations", served.base),
        &key,
        Some(json!({"key": "gh", "provider": "github", "client_id": "a", "client_secret": "b"})),
    )
    .await;
    assert_eq!(status, 201);
    let key_file = dir.join("keyrelay-data/master.key");
    let key_bytes = std::fs::read(&key_file).unwrap();
    assert!(served.terminate(), "SIGTERM ends serve with success");

    let again = Served::start(dir, env);
    assert!(
        again.admin_token().is_none(),
        "the admin token is printed once"
    );
    assert_eq!(
        std::fs::read(&key_file).unwrap(),
        key_bytes,
        "same master key"
    );
    let (status, _) = http(
        "GET",
        &format!("{}/v1/admin/projects", again.base),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 200, "the same admin token works after a restart");
    let (status, list) = http(
        "GET",
        &format!("{}/v1/integrations", again.base),
        &key,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list["integrations"][0]["key"], "gh");
    let (ok, out, err) = run(dir, env, &["keys", "verify"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("all 2 stored secrets decrypt"), "{out}");
    assert!(again.terminate());
}

#[test]
fn graceful_shutdown_finishes_in_flight_requests() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(dir.path(), &[]);
    let admin = served.admin_token().unwrap();
    let addr = served.base.trim_start_matches("http://").to_string();
    let body = br#"{"name": "in-flight"}"#;
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "POST /v1/admin/projects HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {admin}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&body[..5]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let pid = served.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // The request in flight is still served after SIGTERM…
    stream.write_all(&body[5..]).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    // …and then the server exits cleanly, refusing new connections.
    assert!(served.terminate());
    assert!(std::net::TcpStream::connect(&addr).is_err());
}

fn kids(dir: &Path, env: &[(&str, &str)]) -> Vec<(String, String, usize)> {
    let (ok, out, err) = run(dir, env, &["keys", "list"]);
    assert!(ok, "{err}");
    out.lines()
        .skip(1)
        .map(|l| {
            let parts: Vec<&str> = l.split('\t').collect();
            (parts[0].into(), parts[1].into(), parts[2].parse().unwrap())
        })
        .collect()
}

#[tokio::test]
async fn keys_rotate_and_retire_while_serving() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(dir.path(), &[]);
    let admin = served.admin_token().unwrap();
    let (_, project) = http(
        "POST",
        &format!("{}/v1/admin/projects", served.base),
        &admin,
        Some(json!({"name": "rot"})),
    )
    .await;
    let key = project["secret_key"].as_str().unwrap().to_string();
    let integration = |name: &str| json!({"key": name, "provider": "github", "client_id": "a", "client_secret": format!("secret-{name}")});
    let url = format!("{}/v1/integrations", served.base);
    assert_eq!(
        http("POST", &url, &key, Some(integration("one"))).await.0,
        201
    );

    let before = kids(dir.path(), &[]);
    assert_eq!(before.len(), 1);
    let old = before[0].0.clone();

    let (ok, out, err) = run(dir.path(), &[], &["keys", "rotate"]);
    assert!(ok, "{out}{err}");
    let after = kids(dir.path(), &[]);
    assert_eq!(after.len(), 2, "{after:?}");
    let new = after.iter().find(|k| k.1 == "encrypts").unwrap().clone();
    assert_ne!(new.0, old);
    assert!(
        new.2 >= 1,
        "data keys now wrapped by the new key: {after:?}"
    );
    assert!(after.iter().any(|k| k.0 == old && k.2 == 0));

    // The running server keeps working across the rotation.
    assert_eq!(
        http("POST", &url, &key, Some(integration("two"))).await.0,
        201
    );

    // Retiring the encrypting key is refused; retiring the old one works.
    let (ok, _, err) = run(dir.path(), &[], &["keys", "retire", &new.0]);
    assert!(!ok && err.contains("encrypts"), "{err}");
    let (ok, out, err) = run(dir.path(), &[], &["keys", "retire", &old]);
    assert!(ok, "{out}{err}");
    assert_eq!(kids(dir.path(), &[]).len(), 1);

    let (ok, out, err) = run(dir.path(), &[], &["keys", "verify"]);
    assert!(
        ok && out.contains("all 3 stored secrets decrypt"),
        "{out}{err}"
    );
    assert!(served.terminate());
    let again = Served::start(dir.path(), &[]);
    assert_eq!(
        http(
            "GET",
            &url.replace(&served_base(&url), &again.base),
            &key,
            None
        )
        .await
        .0,
        200
    );
    assert!(again.terminate());
}

fn served_base(url: &str) -> String {
    url.trim_end_matches("/v1/integrations").to_string()
}

#[test]
fn a_wrong_master_key_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = run(dir.path(), &[], &["migrate"]);
    assert!(ok, "{err}");
    // The first start binds the database to the generated key.
    let served = Served::start(dir.path(), &[]);
    assert!(served.terminate());

    let wrong = keyrelay_vault::MasterKey::generate();
    let wrong_b64 = wrong.to_base64();
    let out = keyrelay(dir.path(), &[("KEYRELAY_MASTER_KEY", wrong_b64.as_str())])
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not configured"), "{err}");
    assert!(err.contains("KEYRELAY_MASTER_KEY"), "{err}");
    assert!(
        !err.contains(wrong_b64.as_str()),
        "the key itself is never printed"
    );

    // A key file holding a different key: refused too.
    let other_file = dir.path().join("other.key");
    std::fs::write(&other_file, format!("{}\n", wrong_b64.as_str())).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&other_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let path = other_file.to_string_lossy().into_owned();
    let (ok, _, err) = run(
        dir.path(),
        &[("KEYRELAY_MASTER_KEY_FILE", &path)],
        &["serve"],
    );
    assert!(!ok && err.contains("not configured"), "{err}");

    // A malformed key: a clear message.
    let (ok, _, err) = run(dir.path(), &[("KEYRELAY_MASTER_KEY", "short")], &["serve"]);
    assert!(!ok && err.contains("32 bytes"), "{err}");
}

#[test]
fn project_and_provider_commands() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = run(
        dir.path(),
        &[],
        &[
            "project",
            "create",
            "shop",
            "--redirect-url",
            "https://shop.example/cb",
        ],
    );
    assert!(ok, "{err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    assert!(created["id"].as_str().unwrap().starts_with("prj_"));
    assert!(
        created["secret_key"]
            .as_str()
            .unwrap()
            .starts_with("kr_sk_")
    );
    assert!(
        created["webhook_secret"]
            .as_str()
            .unwrap()
            .starts_with("whsec_")
    );
    assert_eq!(
        created["allowed_redirect_urls"][0],
        "https://shop.example/cb"
    );
    assert!(
        err.contains("admin token"),
        "the first command that makes one shows it"
    );
    let (ok, out, _) = run(dir.path(), &[], &["project", "list"]);
    assert!(
        ok && out.contains("\"shop\"") && !out.contains("kr_sk_"),
        "{out}"
    );
    let (ok, _, err) = run(dir.path(), &[], &["project", "create", "shop"]);
    assert!(!ok && err.contains("exists already"), "{err}");

    let (ok, out, _) = run(dir.path(), &[], &["providers", "list"]);
    assert!(
        ok && out.lines().any(|l| l.starts_with("github\toauth2\t")),
        "{out}"
    );
    let (ok, out, _) = run(dir.path(), &[], &["providers", "show", "github"]);
    assert!(ok);
    let def: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(def["auth_mode"], "oauth2");
    let (ok, _, err) = run(dir.path(), &[], &["providers", "show", "nope"]);
    assert!(!ok && err.contains("providers list"), "{err}");

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "version = 1\n[providers.acme]\nauth_mode = \"oauth2\"\ntoken_endpoint = \"http://x.example/t\"\n",
    )
    .unwrap();
    let (ok, _, err) = run(
        dir.path(),
        &[],
        &["providers", "check", bad.to_str().unwrap()],
    );
    assert!(!ok, "an invalid file fails the check");
    assert!(err.contains("acme"), "{err}");
    let good: PathBuf = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "version = 1\n[providers.acme]\nauth_mode = \"oauth2\"\nauthorization_endpoint = \"https://x.example/a\"\ntoken_endpoint = \"https://x.example/t\"\n",
    )
    .unwrap();
    let (ok, out, err) = run(
        dir.path(),
        &[],
        &["providers", "check", good.to_str().unwrap()],
    );
    assert!(ok, "{out}{err}");
}

#[test]
fn settings_come_from_flag_then_environment_then_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("keyrelay.toml");
    std::fs::write(&config, "data_dir = \"from-file\"\n").unwrap();
    let config = config.to_str().unwrap();

    let (ok, _, err) = run(dir.path(), &[], &["--config", config, "migrate"]);
    assert!(ok, "{err}");
    assert!(dir.path().join("from-file/keyrelay.db").exists());

    let env = [("KEYRELAY_DATA_DIR", "from-env")];
    let (ok, _, err) = run(dir.path(), &env, &["--config", config, "migrate"]);
    assert!(ok, "{err}");
    assert!(dir.path().join("from-env/keyrelay.db").exists());

    let (ok, _, err) = run(
        dir.path(),
        &env,
        &["--config", config, "--data-dir", "from-flag", "migrate"],
    );
    assert!(ok, "{err}");
    assert!(dir.path().join("from-flag/keyrelay.db").exists());
    assert!(!dir.path().join("keyrelay-data").exists());

    // A typo in the file is an error, not a silently ignored setting.
    std::fs::write(dir.path().join("typo.toml"), "data_dri = \"x\"\n").unwrap();
    let (ok, _, err) = run(dir.path(), &[], &["--config", "typo.toml", "migrate"]);
    assert!(!ok && err.contains("data_dri"), "{err}");
    // Secrets are not accepted in the file.
    std::fs::write(dir.path().join("secret.toml"), "admin_token = \"x\"\n").unwrap();
    let (ok, _, err) = run(dir.path(), &[], &["--config", "secret.toml", "migrate"]);
    assert!(!ok && err.contains("admin_token"), "{err}");
}
