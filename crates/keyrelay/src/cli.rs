//! The command line. Every command works directly on the configured database.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands;
use crate::settings::{GlobalArgs, LogFormat, Settings};

#[derive(Parser)]
#[command(
    name = "keyrelay",
    version,
    about = "A self-hosted OAuth token manager and API proxy"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage projects.
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Inspect the provider catalog.
    #[command(subcommand)]
    Providers(ProvidersCommand),
    /// Manage master keys.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Create a project; prints its id, secret key and webhook secret as JSON.
    Create {
        name: String,
        /// A URL connect sessions may return to (repeatable).
        #[arg(long = "redirect-url")]
        redirect_urls: Vec<String>,
        #[arg(long)]
        webhook_url: Option<String>,
    },
    /// List projects.
    List,
}

#[derive(Debug, Subcommand)]
pub enum ProvidersCommand {
    /// One provider a line: name, auth mode, display name.
    List,
    /// A provider's definition as JSON.
    Show { name: String },
    /// Validate a providers file; exit 1 with the reasons when it is wrong.
    Check { file: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// The configured master keys and how many data keys each wraps.
    List,
    /// Add a new master key (key file) and re-wrap every data key under the encrypting key.
    Rotate,
    /// Remove a master key once no data key is wrapped by it.
    Retire { kid: String },
    /// Decrypt every stored secret and report any that fail.
    Verify,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // `providers check` and `show` need no database or keys.
    if let Command::Providers(cmd) = &cli.command {
        let settings = Settings::resolve(&cli.global).ok();
        return commands::providers::run(cmd, settings.as_ref());
    }
    let settings = Settings::resolve(&cli.global)?;
    init_logging(settings.log_format);
    match cli.command {
        Command::Serve => commands::serve::run(&settings).await,
        Command::Migrate => commands::admin::migrate(&settings).await,
        Command::Project(cmd) => commands::admin::project(&settings, cmd).await,
        Command::Keys(cmd) => commands::keys::run(&settings, cmd).await,
        Command::Providers(_) => Ok(ExitCode::SUCCESS),
    }
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("KEYRELAY_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}
