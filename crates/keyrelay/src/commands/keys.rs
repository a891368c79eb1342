//! `keyrelay keys list|rotate|retire|verify`: master-key management that
//! works while servers run. Rotation re-wraps data keys only; the secrets
//! themselves stay as they are, so it is quick and safe to repeat.

use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};
use keyrelay_server::services::keys::verify_secrets;
use keyrelay_server::vault::Vault;
use keyrelay_vault::{Keyring, MasterKey, keyfile};

use crate::cli::KeysCommand;
use crate::settings::{MasterKeys, Settings};
use crate::startup;

pub async fn run(settings: &Settings, cmd: KeysCommand) -> Result<ExitCode> {
    match cmd {
        KeysCommand::List => list(settings).await,
        KeysCommand::Rotate => rotate(settings).await,
        KeysCommand::Retire { kid } => retire(settings, &kid).await,
        KeysCommand::Verify => verify(settings).await,
    }
}

async fn open_vault(settings: &Settings) -> Result<Vault> {
    let store = startup::open_store(settings).await?;
    let (keyring, key_file) = startup::load_keyring(settings)?;
    Vault::open(store, keyring, key_file)
        .await
        .map_err(|e| anyhow!("cannot open the vault: {e}"))
}

async fn list(settings: &Settings) -> Result<ExitCode> {
    let vault = open_vault(settings).await?;
    let current = vault.current_kid();
    println!("KID\tROLE\tDATA_KEYS");
    for (kid, count) in vault.usage().await.map_err(|e| anyhow!("{e}"))? {
        let role = if kid == current {
            "encrypts"
        } else {
            "decrypts"
        };
        println!("{kid}\t{role}\t{count}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn rotate(settings: &Settings) -> Result<ExitCode> {
    if let MasterKeys::File { path, .. } = &settings.master_keys {
        // Check the current keys work before adding one.
        open_vault(settings).await?;
        let key = MasterKey::generate();
        keyfile::append(path, &key)?;
        println!("added master key {} to {}", key.kid(), path.display());
    } else {
        println!(
            "keys come from KEYRELAY_MASTER_KEY: re-wrapping under its first key (put a new key first to rotate)"
        );
    }
    let vault = open_vault(settings).await?;
    let count = vault.rewrap_all().await.map_err(|e| anyhow!("{e}"))?;
    println!(
        "re-wrapped {count} data keys under master key {}",
        vault.current_kid()
    );
    Ok(ExitCode::SUCCESS)
}

async fn retire(settings: &Settings, kid: &str) -> Result<ExitCode> {
    let vault = open_vault(settings).await?;
    let usage = vault.usage().await.map_err(|e| anyhow!("{e}"))?;
    let Some(count) = usage.get(kid) else {
        bail!("no master key {kid} is configured; `keyrelay keys list` shows the key ids");
    };
    if kid == vault.current_kid() {
        bail!("master key {kid} is the one that encrypts; rotate to a new key first");
    }
    if *count > 0 {
        bail!("master key {kid} still wraps {count} data keys; run `keyrelay keys rotate` first");
    }
    match &settings.master_keys {
        MasterKeys::File { path, .. } => {
            keyfile::remove(path, kid)?;
            // Prove that what remains still opens everything.
            let (keys, _) = startup::load_keyring(settings)?;
            Keyring::new(
                keys.kids()
                    .iter()
                    .filter_map(|k| keys.get(k).cloned())
                    .collect(),
            )?;
            println!("retired master key {kid}: removed from {}", path.display());
        }
        MasterKeys::Env(_) => println!(
            "no data key is wrapped by {kid}; remove it from KEYRELAY_MASTER_KEY to retire it"
        ),
    }
    Ok(ExitCode::SUCCESS)
}

async fn verify(settings: &Settings) -> Result<ExitCode> {
    let (app, _) = startup::build_app(settings).await?;
    let report = verify_secrets(&app).await.map_err(|e| anyhow!("{e}"))?;
    if report.failed.is_empty() {
        println!("all {} stored secrets decrypt", report.checked);
        Ok(ExitCode::SUCCESS)
    } else {
        for failed in &report.failed {
            eprintln!("does not decrypt: {failed}");
        }
        eprintln!(
            "{} of {} stored secrets do not decrypt",
            report.failed.len(),
            report.checked
        );
        Ok(ExitCode::FAILURE)
    }
}
