//! The generated master-key file in the data directory.
//!
//! Used when no key is given in the environment, so a fresh install works
//! without setup. Format: UTF-8 text; lines starting with `#` are comments;
//! every other non-empty line is one base64 master key. Keys are listed in
//! order of creation and the LAST one encrypts, so rotating is appending.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

use zeroize::Zeroizing;

use crate::error::VaultError;
use crate::master_key::MasterKey;
use crate::token::generate_id;

const HEADER: &str = "\
# keyrelay master keys. KEEP THIS FILE SECRET AND BACKED UP.
#
# These keys encrypt every OAuth token and client secret keyrelay stores.
# If this file is lost, that data cannot be recovered; anyone who reads it
# (together with the database) can decrypt everything.
#
# One base64 key per line, oldest first. The last key encrypts new data;
# older keys are kept only to decrypt data that has not been re-encrypted.
";

fn key_file_error(path: &Path, message: impl Into<String>) -> VaultError {
    VaultError::KeyFile {
        path: path.display().to_string(),
        message: message.into(),
    }
}

fn io_error(path: &Path, action: &str, e: &io::Error) -> VaultError {
    key_file_error(path, format!("{action}: {e}"))
}

/// One line of the file; comments are kept so rewrites preserve them.
enum Entry {
    Text(String),
    Key(MasterKey),
}

/// Opens a new file that is private from its first byte (no window in which
/// another user could open it before a later chmod).
fn create_private(path: &Path) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

#[cfg(unix)]
fn check_permissions(path: &Path, file: &File) -> Result<(), VaultError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = file
        .metadata()
        .map_err(|e| io_error(path, "cannot stat", &e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(key_file_error(
            path,
            format!(
                "is readable or writable by other users (mode {:03o}); run `chmod 600 {}`",
                mode & 0o777,
                path.display()
            ),
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path, _file: &File) -> Result<(), VaultError> {
    Ok(())
}

/// Makes a rename or creation in `dir` durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn read_entries(path: &Path) -> Result<Vec<Entry>, VaultError> {
    let mut file = File::open(path).map_err(|e| io_error(path, "cannot open", &e))?;
    check_permissions(path, &file)?;
    // Pre-sized so reading does not reallocate and leave key copies behind.
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut text = Zeroizing::new(String::with_capacity(
        usize::try_from(size).unwrap_or(0).saturating_add(1),
    ));
    file.read_to_string(&mut text)
        .map_err(|e| io_error(path, "cannot read", &e))?;
    let mut entries = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            entries.push(Entry::Text(line.to_owned()));
        } else {
            let key = MasterKey::from_base64(trimmed)
                .map_err(|e| key_file_error(path, format!("line {}: {e}", n + 1)))?;
            entries.push(Entry::Key(key));
        }
    }
    Ok(entries)
}

/// Keys in file order (oldest first); errors if there is none.
fn keys_oldest_first(path: &Path, entries: &[Entry]) -> Result<Vec<MasterKey>, VaultError> {
    let keys: Vec<MasterKey> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::Key(k) => Some(k.clone()),
            Entry::Text(_) => None,
        })
        .collect();
    if keys.is_empty() {
        return Err(key_file_error(path, "contains no master key"));
    }
    Ok(keys)
}

fn render(entries: &[Entry]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(
        entries
            .iter()
            .map(|e| match e {
                Entry::Text(t) => t.len() + 1,
                Entry::Key(_) => 45,
            })
            .sum(),
    ));
    for entry in entries {
        match entry {
            Entry::Text(t) => out.push_str(t),
            Entry::Key(k) => out.push_str(&k.to_base64()),
        }
        out.push('\n');
    }
    out
}

fn write_and_sync(file: &mut File, contents: &str) -> io::Result<()> {
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

/// Replaces `path` atomically: readers see the old or the new file, never a
/// partial one, even after a crash.
fn write_atomic(path: &Path, contents: &str) -> Result<(), VaultError> {
    let dir = parent_dir(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", generate_id("")));
    let result = create_private(&tmp)
        .and_then(|mut f| write_and_sync(&mut f, contents))
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(io_error(path, "cannot write", &e));
    }
    sync_dir(dir).map_err(|e| io_error(path, "cannot sync directory", &e))
}

/// Creates the file with a new key; `None` if it already exists.
fn try_create(path: &Path) -> Result<Option<MasterKey>, VaultError> {
    let dir = parent_dir(path);
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| io_error(path, "cannot create directory", &e))?;
    let mut file = match create_private(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(None),
        Err(e) => return Err(io_error(path, "cannot create", &e)),
    };
    let key = MasterKey::generate();
    let contents = render(&[Entry::Text(HEADER.to_owned()), Entry::Key(key.clone())]);
    if let Err(e) = write_and_sync(&mut file, &contents) {
        drop(file);
        // A half-written key file would be worse than none.
        let _ = fs::remove_file(path);
        return Err(io_error(path, "cannot write", &e));
    }
    sync_dir(dir).map_err(|e| io_error(path, "cannot sync directory", &e))?;
    Ok(Some(key))
}

/// Loads the keys, newest (encrypting) FIRST, ready for `Keyring::new`.
///
/// On unix, refuses a file that group or others may access.
pub fn load(path: &Path) -> Result<Vec<MasterKey>, VaultError> {
    let entries = read_entries(path)?;
    let mut keys = keys_oldest_first(path, &entries)?;
    keys.reverse();
    Ok(keys)
}

/// Writes a new file (mode 0600) holding one freshly generated key.
/// Never overwrites an existing file.
pub fn create(path: &Path) -> Result<MasterKey, VaultError> {
    try_create(path)?.ok_or_else(|| {
        key_file_error(
            path,
            "already exists; refusing to overwrite a master key file",
        )
    })
}

/// Loads the file, creating it first if it does not exist. The flag says
/// whether it was created (worth logging: a new key means no old data can be
/// decrypted).
pub fn load_or_create(path: &Path) -> Result<(Vec<MasterKey>, bool), VaultError> {
    let exists = path
        .try_exists()
        .map_err(|e| io_error(path, "cannot check", &e))?;
    if !exists {
        // Another process may create it between the check and here; then load theirs.
        if let Some(key) = try_create(path)? {
            return Ok((vec![key], true));
        }
    }
    Ok((load(path)?, false))
}

/// Adds `key` as the newest key, which then encrypts new data.
pub fn append(path: &Path, key: &MasterKey) -> Result<(), VaultError> {
    let mut entries = read_entries(path)?;
    let present = entries
        .iter()
        .any(|e| matches!(e, Entry::Key(k) if k.kid() == key.kid()));
    if present {
        return Err(key_file_error(
            path,
            format!("master key {} is already in the file", key.kid()),
        ));
    }
    entries.push(Entry::Key(key.clone()));
    write_atomic(path, &render(&entries))
}

/// Removes the key `kid`. Refuses to remove the newest key, which encrypts.
///
/// Only remove a key after all data wrapped by it has been rewrapped: data
/// under a removed key is unreadable.
pub fn remove(path: &Path, kid: &str) -> Result<(), VaultError> {
    let mut entries = read_entries(path)?;
    let keys = keys_oldest_first(path, &entries)?;
    if !keys.iter().any(|k| k.kid() == kid) {
        return Err(VaultError::UnknownKid {
            kid: kid.to_owned(),
        });
    }
    if keys.last().is_some_and(|k| k.kid() == kid) {
        return Err(VaultError::RetireCurrent {
            kid: kid.to_owned(),
        });
    }
    entries.retain(|e| !matches!(e, Entry::Key(k) if k.kid() == kid));
    write_atomic(path, &render(&entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn kids(keys: &[MasterKey]) -> Vec<&str> {
        keys.iter().map(MasterKey::kid).collect()
    }

    #[test]
    fn create_then_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("master.key");
        let key = create(&path).unwrap();
        #[cfg(unix)]
        assert_eq!(mode(&path), 0o600);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# keyrelay master keys"));
        assert!(text.contains(key.to_base64().as_str()));
        assert_eq!(kids(&load(&path).unwrap()), vec![key.kid()]);
        assert!(matches!(create(&path), Err(VaultError::KeyFile { .. })));
    }

    #[test]
    fn load_or_create_creates_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let (first, created) = load_or_create(&path).unwrap();
        assert!(created);
        let (second, created) = load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(kids(&first), kids(&second));
    }

    #[test]
    fn append_puts_newest_first_and_remove_retires() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let a = create(&path).unwrap();
        let b = MasterKey::generate();
        let c = MasterKey::generate();
        append(&path, &b).unwrap();
        append(&path, &c).unwrap();
        #[cfg(unix)]
        assert_eq!(mode(&path), 0o600);
        assert_eq!(kids(&load(&path).unwrap()), vec![c.kid(), b.kid(), a.kid()]);
        assert!(matches!(append(&path, &b), Err(VaultError::KeyFile { .. })));

        assert!(matches!(
            remove(&path, c.kid()),
            Err(VaultError::RetireCurrent { .. })
        ));
        assert!(matches!(
            remove(&path, "mk_0000000000000000"),
            Err(VaultError::UnknownKid { .. })
        ));
        remove(&path, a.kid()).unwrap();
        assert_eq!(kids(&load(&path).unwrap()), vec![c.kid(), b.kid()]);
        // The explanatory header survives rewrites; no temp files are left.
        assert!(
            fs::read_to_string(&path)
                .unwrap()
                .contains("KEEP THIS FILE SECRET")
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    fn write_private(path: &Path, contents: &str) {
        let mut f = create_private(path).unwrap();
        f.write_all(contents.as_bytes()).unwrap();
    }

    #[test]
    fn bad_content_names_path_not_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let short = "c2VjcmV0LWJ1dC10b28tc2hvcnQ=";
        write_private(&path, &format!("# comment\n\n{short}\n"));
        let msg = load(&path).unwrap_err().to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("line 3"), "{msg}");
        assert!(msg.contains("32 bytes"), "{msg}");
        assert!(!msg.contains(short), "{msg}");

        let empty = dir.path().join("empty.key");
        write_private(&empty, "# only comments\n");
        let msg = load(&empty).unwrap_err().to_string();
        assert!(msg.contains("no master key"), "{msg}");

        let missing = load(&dir.path().join("missing.key")).unwrap_err();
        assert!(matches!(missing, VaultError::KeyFile { .. }));
    }

    #[cfg(unix)]
    #[test]
    fn rejects_loose_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let key = create(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let msg = load(&path).unwrap_err().to_string();
        assert!(msg.contains("chmod 600"), "{msg}");
        assert!(!msg.contains(key.to_base64().as_str()));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(load(&path).is_ok());
    }
}
