//! What the runners of real providers in other languages (oidc.rs,
//! oauthlib_server.rs) share: a lock around their one-time install, draining
//! a child's pipes, and waiting for the `READY <port>` line it prints once
//! it listens.

use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

/// Copies a pipe into `buf` until EOF, so the child never blocks on it.
pub(crate) fn drain(pipe: impl Read + Send + 'static, buf: Arc<Mutex<String>>) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => buf
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_str(&String::from_utf8_lossy(&line)),
            }
        }
    })
}

pub(crate) fn mtime(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// An install lock older than this is left over from a killed process (as
/// is one whose process is gone, where that can be told).
const STALE_LOCK: Duration = Duration::from_secs(15 * 60);

/// An install lock file, held by this process; removed when dropped (even
/// on panic).
pub(crate) struct InstallLock(PathBuf);

impl Drop for InstallLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// The lock was left by a process that is gone: too old, or (on Linux) its
/// pid has no `/proc` entry.
fn lock_is_stale(path: &Path) -> bool {
    let too_old = mtime(path)
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > STALE_LOCK);
    let owner_gone = Path::new("/proc/self").exists()
        && fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
    too_old || owner_gone
}

/// Takes the lock file `path` (created exclusively, holding our pid),
/// waiting up to `wait` for another process's install (`what`, in the
/// message) to finish. A stale lock is taken over.
pub(crate) fn lock_install(path: PathBuf, wait: Duration, what: &str) -> InstallLock {
    let started = Instant::now();
    loop {
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut f) => {
                let _ = writeln!(f, "{}", std::process::id());
                return InstallLock(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if lock_is_stale(&path) {
                    let _ = fs::remove_file(&path);
                    continue;
                }
                if started.elapsed() > wait {
                    panic!(
                        "waited {wait:?} for another {what} ({}); remove it if no install is running",
                        path.display()
                    );
                }
                thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("cannot create {}: {e}", path.display()),
        }
    }
}

/// How long a child may take to print `READY <port>`. Generous: on a loaded
/// two-core CI machine a cold Node or Python start has been seen to take
/// well over 30 s, and this only bounds how long a broken start hangs.
const READY_TIMEOUT: Duration = Duration::from_secs(180);

/// Reads the child's stdout until it prints `READY <port>` and returns the
/// port; the rest of stdout is drained. Panics (with the child's stderr)
/// when it exits first or takes longer than [`READY_TIMEOUT`]. `what` names
/// the child in messages.
pub(crate) fn wait_ready(
    child: &mut Child,
    what: &str,
    stderr: &Mutex<String>,
    stderr_thread: JoinHandle<()>,
) -> u16 {
    let timeout = READY_TIMEOUT;
    let stdout = child.stdout.take().expect("child stdout");
    let (tx, rx) = mpsc::channel::<String>();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(port) = line.strip_prefix("READY ") {
                    return port
                        .trim()
                        .parse::<u16>()
                        .unwrap_or_else(|_| panic!("{what} printed a bad READY line: {line:?}"));
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = stderr_thread.join();
                panic!(
                    "{what} did not print READY within {timeout:?}; its stderr:\n{}",
                    stderr.lock().unwrap_or_else(|e| e.into_inner())
                );
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait();
                let _ = stderr_thread.join();
                panic!(
                    "{what} exited before READY ({status:?}); its stderr:\n{}",
                    stderr.lock().unwrap_or_else(|e| e.into_inner())
                );
            }
        }
    }
}
