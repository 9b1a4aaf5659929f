//! `postern admin resource …`: the protected resources tokens are minted for (RFC 8707).

use super::Ctx;
use crate::UsageError;
use crate::cli::ResourceCommand;
use crate::output::{emit, table, time};
use postern_server::resources::{self, ResourceError};
use postern_store::Resource;
use serde_json::json;

fn to_json(r: &Resource) -> serde_json::Value {
    json!({
        "identifier": r.identifier,
        "name": r.name,
        "scopes": r.scopes.split_whitespace().collect::<Vec<_>>(),
        "created_at": r.created_at,
        "updated_at": r.updated_at,
    })
}

/// A refusal for the arguments is the caller's mistake (exit code 2).
fn refused(e: ResourceError) -> anyhow::Error {
    match e {
        ResourceError::Store(e) => e.into(),
        other => UsageError(other.to_string()).into(),
    }
}

pub async fn run(ctx: &Ctx, command: ResourceCommand) -> anyhow::Result<()> {
    match command {
        ResourceCommand::Add { identifier, name, scopes } => {
            let r = resources::add(&ctx.store, &identifier, &name, &scopes, ctx.now).await.map_err(refused)?;
            ctx.audit("resource.add", &r.identifier, json!({ "name": r.name, "scopes": r.scopes })).await?;
            emit(ctx.json, &to_json(&r), || format!("added resource {} ({})", r.identifier, r.name));
        }
        ResourceCommand::List => {
            let all = ctx.store.resources().await?;
            let value = json!(all.iter().map(to_json).collect::<Vec<_>>());
            emit(ctx.json, &value, || {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|r| vec![r.identifier.clone(), r.name.clone(), r.scopes.clone(), time(r.created_at)])
                    .collect();
                table(&["IDENTIFIER", "NAME", "SCOPES", "CREATED"], &rows)
            });
        }
        ResourceCommand::Update { identifier, name, scopes } => {
            let scopes = (!scopes.is_empty()).then_some(scopes);
            let r = resources::update(&ctx.store, &identifier, name.as_deref(), scopes.as_deref(), ctx.now)
                .await
                .map_err(refused)?;
            ctx.audit("resource.update", &r.identifier, json!({ "name": r.name, "scopes": r.scopes })).await?;
            emit(ctx.json, &to_json(&r), || format!("updated resource {}", r.identifier));
        }
        ResourceCommand::Remove { identifier } => {
            resources::remove(&ctx.store, &identifier).await.map_err(refused)?;
            ctx.audit("resource.remove", &identifier, json!({})).await?;
            emit(ctx.json, &json!({ "identifier": identifier, "removed": true }), || {
                format!("removed resource {identifier}")
            });
        }
    }
    Ok(())
}
