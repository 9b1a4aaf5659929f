//! `postern admin …`: each command opens the database of the configuration, does one thing,
//! records an audit event for every change, and prints the result (JSON with `--json`).

mod apikeys;
mod audit;
mod client;
mod keys;
mod registration;
mod resource;
mod user;

use crate::cli::{AdminArgs, AdminCommand};
use postern_core::system::{Clock, SystemClock};
use postern_server::config::Config;
use postern_store::{NewAuditEvent, Store};

/// What every admin command needs.
pub struct Ctx {
    pub store: Store,
    pub config: Config,
    pub json: bool,
    pub now: i64,
    actor: String,
}

impl Ctx {
    /// Records a successful change in the audit log.
    pub async fn audit(&self, action: &str, target: &str, details: serde_json::Value) -> anyhow::Result<()> {
        let event = NewAuditEvent {
            actor: &self.actor,
            action,
            target: Some(target),
            outcome: "success",
            details: Some(details),
            ..Default::default()
        };
        self.store.record_audit(&event, self.now).await?;
        Ok(())
    }
}

pub async fn run(config: Config, args: AdminArgs) -> anyhow::Result<()> {
    let now = SystemClock.now();
    let (store, _) = postern_server::open_store(&config, now).await?;
    let actor = match std::env::var("USER") {
        Ok(user) if !user.is_empty() => format!("cli:{user}"),
        _ => "cli".to_owned(),
    };
    let ctx = Ctx { store, config, json: args.json, now, actor };
    let result = match args.command {
        AdminCommand::User { command } => user::run(&ctx, command).await,
        AdminCommand::Client { command } => client::run(&ctx, command).await,
        AdminCommand::Keys { command } => keys::run(&ctx, command).await,
        AdminCommand::Resource { command } => resource::run(&ctx, command).await,
        AdminCommand::RegistrationToken { command } => registration::run(&ctx, command).await,
        AdminCommand::Scope { command } => apikeys::scope(&ctx, command).await,
        AdminCommand::ServiceAccount { command } => apikeys::service_account(&ctx, command).await,
        AdminCommand::Key { command } => apikeys::key(&ctx, command).await,
        AdminCommand::Audit { since, action, limit } => audit::run(&ctx, since, action, limit).await,
    };
    ctx.store.close().await;
    result
}

/// Reads one line (the password) from standard input; the trailing newline is not part of it.
pub fn read_password_stdin() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    if password.is_empty() {
        return Err(crate::UsageError("--password-stdin: no password on standard input".into()).into());
    }
    Ok(password)
}
