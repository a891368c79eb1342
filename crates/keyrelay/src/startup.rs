//! Start-up: data dir, database, keys, catalog, admin token, listener.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use keyrelay_catalog::{Catalog, ValidationOptions};
use keyrelay_server::services::auth;
use keyrelay_server::vault::Vault;
use keyrelay_server::{App, ServerConfig};
use keyrelay_store::Store;
use keyrelay_vault::{AdminToken, Keyring, keyfile};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::settings::{MasterKeys, Settings};

/// Makes the data dir (mode 0700) if it is missing.
pub fn ensure_data_dir(settings: &Settings) -> Result<()> {
    let dir = &settings.data_dir;
    if dir.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the data dir {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot set permissions of {}", dir.display()))?;
    }
    Ok(())
}

/// Opens the configured database and applies pending migrations.
pub async fn open_store(settings: &Settings) -> Result<Arc<dyn Store>> {
    ensure_data_dir(settings)?;
    let store = keyrelay_store::open(&settings.database_url).await?;
    store.migrate().await.context("migrating the database")?;
    Ok(store)
}

/// The master keys, with the key file they came from (generated on first use
/// when it is the data dir's default file).
pub fn load_keyring(settings: &Settings) -> Result<(Keyring, Option<PathBuf>)> {
    match &settings.master_keys {
        MasterKeys::Env(keys) => Ok((Keyring::new(keys.clone())?, None)),
        MasterKeys::File { path, generate } => {
            let keys = if *generate {
                ensure_data_dir(settings)?;
                keyfile::load_or_create(path)?.0
            } else {
                keyfile::load(path)?
            };
            Ok((Keyring::new(keys)?, Some(path.clone())))
        }
    }
}

/// The bundled catalog plus the providers file, if any.
pub fn load_catalog(settings: &Settings) -> Result<Catalog> {
    let opts = ValidationOptions {
        allow_local: settings.allow_local_providers,
    };
    let mut catalog = Catalog::bundled()?;
    if let Some(path) = &settings.providers_file {
        catalog.merge(Catalog::load_file(path, &opts)?);
    }
    Ok(catalog)
}

/// Everything but the listener: the shared `App`, and the admin token when
/// this start generated it.
pub async fn build_app(settings: &Settings) -> Result<(Arc<App>, Option<AdminToken>)> {
    let store = open_store(settings).await?;
    let (keyring, key_file) = load_keyring(settings)?;
    let vault = Vault::open(store.clone(), keyring, key_file)
        .await
        .map_err(|e| anyhow!("cannot open the vault: {e}"))?;
    let catalog = Arc::new(load_catalog(settings)?);
    let (admin_hash, generated) =
        auth::ensure_admin_token(store.as_ref(), settings.admin_token.as_ref())
            .await
            .map_err(|e| anyhow!("cannot set up the admin token: {e}"))?;
    let config = ServerConfig {
        listen: settings.listen,
        public_url: settings.public_url.clone(),
        allow_local_providers: settings.allow_local_providers,
        max_body_bytes: settings.max_body_bytes,
        public_rate_per_minute: settings.public_rate_per_minute,
        proxy_connect_timeout: settings.proxy_connect_timeout,
        proxy_timeout: settings.proxy_timeout,
        proxy_max_body_bytes: settings.proxy_max_body_bytes,
        refresh: settings.refresh.clone(),
        extra_ca_pem: match &settings.extra_ca_file {
            Some(path) => Some(
                std::fs::read(path)
                    .with_context(|| format!("cannot read the extra CA file {}", path.display()))?,
            ),
            None => None,
        },
    };
    let app = App::new(store, vault, catalog, config, admin_hash)
        .map_err(|e| anyhow!("cannot build the HTTP clients for provider calls: {e}"))?;
    Ok((app, generated))
}

/// A server that is accepting requests.
pub struct Running {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    /// The admin token, when this start generated it (shown once).
    pub generated_admin_token: Option<AdminToken>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stops accepting, lets in-flight requests finish, and returns.
    pub async fn shutdown(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.wait().await
    }

    /// Waits until the server stops (after `shutdown` or a failure).
    pub async fn wait(self) -> Result<()> {
        self.task.await.context("the server task failed")??;
        Ok(())
    }

    /// A handle that stops the server when sent to.
    pub fn take_stop(&mut self) -> Option<oneshot::Sender<()>> {
        self.stop.take()
    }
}

/// Starts a server as `keyrelay serve` does (the listen port may be 0).
pub async fn start(settings: &Settings) -> Result<Running> {
    let (app, generated_admin_token) = build_app(settings).await?;
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    // The scheduler runs beside the server. On shutdown it stops claiming
    // and finishes the refreshes in flight (within a lease), so that tokens
    // a provider has just issued are stored, not dropped.
    let (stop_scheduler, scheduler_stop) = tokio::sync::watch::channel(false);
    let scheduler = app.config.refresh.scheduler.then(|| {
        tokio::spawn(keyrelay_server::services::scheduler::run(
            app.clone(),
            scheduler_stop,
        ))
    });
    let grace = app.config.refresh.lease;
    let serving = keyrelay_server::http::serve(listener, app.clone(), async {
        let _ = stopped.await;
    });
    let task = tokio::spawn(async move {
        let result = serving.await;
        let _ = stop_scheduler.send(true);
        if let Some(mut scheduler) = scheduler
            && tokio::time::timeout(grace, &mut scheduler).await.is_err()
        {
            scheduler.abort();
        }
        result
    });
    Ok(Running {
        addr,
        app,
        generated_admin_token,
        stop: Some(stop),
        task,
    })
}
