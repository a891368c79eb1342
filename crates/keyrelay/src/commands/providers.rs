//! `keyrelay providers list|show|check`.

use std::process::ExitCode;

use anyhow::{Result, anyhow};
use keyrelay_catalog::{Catalog, ValidationOptions};

use crate::cli::ProvidersCommand;
use crate::settings::Settings;
use crate::startup;

pub fn run(cmd: &ProvidersCommand, settings: Option<&Settings>) -> Result<ExitCode> {
    let allow_local = settings.is_some_and(|s| s.allow_local_providers);
    let catalog = || match settings {
        Some(s) => startup::load_catalog(s),
        None => Ok(Catalog::bundled()?),
    };
    match cmd {
        ProvidersCommand::List => {
            for (name, def) in catalog()?.iter() {
                println!(
                    "{name}\t{}\t{}",
                    def.auth_mode,
                    def.display_name.as_deref().unwrap_or(name)
                );
            }
        }
        ProvidersCommand::Show { name } => {
            let catalog = catalog()?;
            let def = catalog.get(name).ok_or_else(|| {
                anyhow!("no provider named {name:?}; `keyrelay providers list` shows them")
            })?;
            println!("{}", serde_json::to_string_pretty(def)?);
        }
        ProvidersCommand::Check { file } => {
            match Catalog::load_file(file, &ValidationOptions { allow_local }) {
                Ok(checked) => println!(
                    "{}: {} provider definitions, all valid",
                    file.display(),
                    checked.len()
                ),
                Err(e) => {
                    eprintln!("{}: {e}", file.display());
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
