//! `postern admin resource …`: the protected resources tokens are minted for (RFC 8707), and
//! the client each one's resource server introspects with.

use super::Ctx;
use crate::UsageError;
use crate::cli::ResourceCommand;
use crate::output::{emit, table, time};
use postern_core::secret::BearerSecret;
use postern_server::resources::{self, Introspector, ResourceError};
use postern_store::{ClientId, Resource};
use serde_json::json;

fn to_json(r: &Resource) -> serde_json::Value {
    json!({
        "identifier": r.identifier,
        "name": r.name,
        "scopes": r.scopes.split_whitespace().collect::<Vec<_>>(),
        "introspector_id": r.introspector_id,
        "open_to_self_registered": r.open_to_self_registered,
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
        ResourceCommand::Add { identifier, name, scopes, introspector, open_to_self_registered } => {
            let mut r = resources::add(&ctx.store, &identifier, &name, &scopes, ctx.now).await.map_err(refused)?;
            if open_to_self_registered {
                ctx.store.set_resource_open(&identifier, true, ctx.now).await?;
                r.open_to_self_registered = true;
            }
            let who = introspector.as_deref().map_or(Introspector::New, Introspector::Existing);
            let linked = link(ctx, &identifier, who).await;
            let (client_id, secret) = match linked {
                Ok(done) => done,
                Err(e) => {
                    // Nothing half-made stays behind.
                    resources::remove(&ctx.store, &identifier).await.map_err(refused)?;
                    return Err(e);
                }
            };
            r.introspector_id = Some(client_id.to_string());
            ctx.audit(
                "resource.add",
                &r.identifier,
                json!({ "name": r.name, "scopes": r.scopes, "introspector_id": client_id, "open_to_self_registered": r.open_to_self_registered }),
            )
            .await?;
            emit(ctx.json, &with_secret(to_json(&r), secret.as_ref()), || {
                format!("added resource {} ({})\n{}", r.identifier, r.name, credentials(&client_id, secret.as_ref()))
            });
        }
        ResourceCommand::List => {
            let all = ctx.store.resources().await?;
            let value = json!(all.iter().map(to_json).collect::<Vec<_>>());
            emit(ctx.json, &value, || {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|r| {
                        let introspector = r.introspector_id.clone().unwrap_or_else(|| "-".into());
                        vec![r.identifier.clone(), r.name.clone(), r.scopes.clone(), introspector, time(r.created_at)]
                    })
                    .collect();
                table(&["IDENTIFIER", "NAME", "SCOPES", "INTROSPECTOR", "CREATED"], &rows)
            });
        }
        ResourceCommand::Update {
            identifier,
            name,
            scopes,
            introspector,
            new_introspector,
            open_to_self_registered,
        } => {
            let scopes = (!scopes.is_empty()).then_some(scopes);
            let mut r = resources::update(&ctx.store, &identifier, name.as_deref(), scopes.as_deref(), ctx.now)
                .await
                .map_err(refused)?;
            if let Some(open) = open_to_self_registered {
                ctx.store.set_resource_open(&identifier, open, ctx.now).await?;
                r.open_to_self_registered = open;
            }
            let who = match (introspector.as_deref(), new_introspector) {
                (Some(id), _) => Some(Introspector::Existing(id)),
                (None, true) => Some(Introspector::New),
                (None, false) => None,
            };
            let mut secret = None;
            if let Some(who) = who {
                let (client_id, made) = link(ctx, &identifier, who).await?;
                r.introspector_id = Some(client_id.to_string());
                secret = made;
            }
            ctx.audit(
                "resource.update",
                &r.identifier,
                json!({
                    "name": r.name,
                    "scopes": r.scopes,
                    "introspector_id": r.introspector_id,
                    "open_to_self_registered": r.open_to_self_registered,
                }),
            )
            .await?;
            emit(ctx.json, &with_secret(to_json(&r), secret.as_ref()), || match (&r.introspector_id, who) {
                (Some(id), Some(_)) => {
                    format!(
                        "updated resource {}\n{}",
                        r.identifier,
                        credentials(&ClientId::new(id.clone()), secret.as_ref())
                    )
                }
                _ => format!("updated resource {}", r.identifier),
            });
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

async fn link(ctx: &Ctx, identifier: &str, who: Introspector<'_>) -> anyhow::Result<(ClientId, Option<BearerSecret>)> {
    resources::set_introspector(&ctx.store, &ctx.config.tokens, identifier, who, ctx.now).await.map_err(refused)
}

fn with_secret(mut value: serde_json::Value, secret: Option<&BearerSecret>) -> serde_json::Value {
    if let Some(secret) = secret {
        value["introspector_secret"] = json!(secret.expose());
    }
    value
}

/// What the resource server introspects with, for the text output.
fn credentials(client_id: &ClientId, secret: Option<&BearerSecret>) -> String {
    match secret {
        Some(secret) => format!(
            "introspection client_id: {client_id}\nintrospection client_secret: {}\n(shown once: store it now)",
            secret.expose()
        ),
        None => format!("introspects with the client {client_id}"),
    }
}
