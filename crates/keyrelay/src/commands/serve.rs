//! `keyrelay serve`: start, print what an operator needs, stop gracefully.

use std::process::ExitCode;

use anyhow::Result;

use crate::settings::Settings;
use crate::startup;

pub async fn run(settings: &Settings) -> Result<ExitCode> {
    let mut running = startup::start(settings).await?;
    let public = &settings.public_url;
    println!("keyrelay {} is running", env!("CARGO_PKG_VERSION"));
    println!("  listening on:     http://{}", running.addr);
    println!("  public URL:       {public}");
    println!(
        "  database:         {}",
        keyrelay_store::redact_url(&settings.database_url)
    );
    println!("  data dir:         {}", settings.data_dir.display());
    println!(
        "  OAuth callback:   {public}/oauth/callback   (register this redirect URL at your providers)"
    );
    println!("  OAuth1 callback:  {public}/oauth1/callback");
    if let Some(token) = &running.generated_admin_token {
        println!();
        println!("  This is the admin token. It is shown only this once; keep it safe:");
        println!("  admin token: {}", token.expose_secret());
    }
    println!();
    println!("Ready. Stop with Ctrl-C or SIGTERM (requests in flight are finished first).");
    tracing::info!(addr = %running.addr, "keyrelay listening");

    let stop = running.take_stop();
    let server = running.wait();
    tokio::pin!(server);
    tokio::select! {
        () = shutdown_signal() => {
            tracing::info!("shutting down: finishing in-flight requests");
            if let Some(stop) = stop {
                let _ = stop.send(());
            }
            server.await?;
        }
        result = &mut server => result?,
    }
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
