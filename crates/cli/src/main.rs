//! `postern`: the server (`serve`, `migrate`, `config show`), its administration from the
//! shell (`admin …`), and logging in to a server (`login`, `logout`, `whoami`, `status`,
//! `token`). Admin commands work on the database named by the same configuration as `serve`,
//! whether or not a server is running; the login commands read no server configuration.
//!
//! Exit codes: 0 success, 1 failure, 2 bad usage or bad configuration; for the login commands
//! also 3 not logged in, 4 access denied, 5 expired before approval, 6 server unreachable.

mod admin;
mod cli;
mod login;
mod output;

use clap::Parser;
use cli::{Cli, Command, ConfigCommand};
use postern_core::system::{Clock, SystemClock};
use postern_server::config::{self, Config, Sources};
use std::process::ExitCode;

/// An error that is the caller's mistake (exit code 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if let Some(e) = e.downcast_ref::<postern_login::Error>() {
                ExitCode::from(login::exit_code(e))
            } else if e.downcast_ref::<UsageError>().is_some() || e.downcast_ref::<config::ConfigError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn load_config(file: Option<&std::path::Path>) -> anyhow::Result<Config> {
    let sources = Sources { file, env: Sources::process_env() };
    Ok(config::load(&sources)?)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Login(command) = cli.command {
        // No server configuration here; the login kit's warnings go to stderr.
        login::init_logging();
        return Ok(login::run(command, SystemClock.now()).await?);
    }
    let config = load_config(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            postern_server::telemetry::init(&config.log);
            let (_, report) = postern_server::open_store(&config, SystemClock.now()).await?;
            if report.applied.is_empty() {
                println!("database schema is current (version {})", report.version);
            } else {
                println!("applied migrations {:?}; schema is at version {}", report.applied, report.version);
            }
            Ok(())
        }
        Command::Config { command: ConfigCommand::Show } => {
            print!("{}", config.to_redacted_toml());
            Ok(())
        }
        Command::Admin(args) => admin::run(config, args).await,
        Command::Login(_) => Ok(()), // run above
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    postern_server::telemetry::init(&config.log);
    let app = postern_server::Application::build(config).await?;
    println!("{}", app.banner());
    tracing::info!(issuer = app.issuer(), port = app.port(), "ready");
    app.run_until_stopped(postern_server::startup::shutdown_signal()).await?;
    Ok(())
}
