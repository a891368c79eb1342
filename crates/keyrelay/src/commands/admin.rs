//! `keyrelay migrate` and `keyrelay project …`.

use std::process::ExitCode;

use anyhow::{Result, anyhow};
use keyrelay_server::http::created_project_json;
use keyrelay_server::services::projects::{self, NewProject};
use serde_json::json;

use crate::cli::ProjectCommand;
use crate::settings::Settings;
use crate::startup;

pub async fn migrate(settings: &Settings) -> Result<ExitCode> {
    startup::open_store(settings).await?;
    println!(
        "database {} is up to date",
        keyrelay_store::redact_url(&settings.database_url)
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn project(settings: &Settings, cmd: ProjectCommand) -> Result<ExitCode> {
    let (app, generated) = startup::build_app(settings).await?;
    if let Some(token) = generated {
        eprintln!(
            "admin token (generated now, shown only this once; keep it safe): {}",
            token.expose_secret()
        );
    }
    match cmd {
        ProjectCommand::Create {
            name,
            redirect_urls,
            webhook_url,
        } => {
            let created = projects::create(
                &app,
                NewProject {
                    name,
                    allowed_redirect_urls: redirect_urls,
                    webhook_url,
                },
            )
            .await
            .map_err(|e| anyhow!("{e}"))?;
            println!("{:#}", created_project_json(&created));
        }
        ProjectCommand::List => {
            for p in projects::list(&app).await.map_err(|e| anyhow!("{e}"))? {
                println!(
                    "{}",
                    json!({"id": p.id, "name": p.name, "allowed_redirect_urls": p.allowed_redirect_urls,
                           "webhook_url": p.webhook_url})
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
