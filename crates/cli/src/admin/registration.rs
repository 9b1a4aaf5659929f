//! `postern admin registration-token …`: initial access tokens (RFC 7591 §3), which let
//! clients register themselves when `registration.dynamic = "token"`.

use super::Ctx;
use crate::UsageError;
use crate::cli::RegistrationTokenCommand;
use crate::output::{emit, table, time};
use postern_server::client_registration::{self, RegistrationError};
use postern_store::RegistrationToken;
use serde_json::json;

fn to_json(t: &RegistrationToken) -> serde_json::Value {
    json!({
        "id": t.id,
        "name": t.name,
        "created_at": t.created_at,
        "expires_at": t.expires_at,
        "uses_left": t.uses_left,
        "revoked_at": t.revoked_at,
    })
}

pub async fn run(ctx: &Ctx, command: RegistrationTokenCommand) -> anyhow::Result<()> {
    match command {
        RegistrationTokenCommand::Create { name, expires_in, uses } => {
            let ttl = i64::try_from(expires_in.as_secs()).unwrap_or(i64::MAX);
            let (t, secret) = client_registration::create_token(&ctx.store, &name, ttl, uses, ctx.now).await.map_err(
                |e| match e {
                    RegistrationError::Store(e) => anyhow::Error::from(e),
                    other => UsageError(other.to_string()).into(),
                },
            )?;
            ctx.audit("registration_token.create", &t.id, json!({ "name": t.name, "uses": t.uses_left })).await?;
            let mut value = to_json(&t);
            value["token"] = json!(secret.expose());
            emit(ctx.json, &value, || {
                format!(
                    "initial access token {} ({}), until {}\ntoken: {}\n(shown once: give it to the client's developer; it goes in Authorization: Bearer on POST /oauth/register)",
                    t.id,
                    t.name,
                    time(t.expires_at),
                    secret.expose()
                )
            });
        }
        RegistrationTokenCommand::List => {
            let all = ctx.store.registration_tokens().await?;
            emit(ctx.json, &json!(all.iter().map(to_json).collect::<Vec<_>>()), || {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|t| {
                        let uses = t.uses_left.map_or_else(|| "any".to_owned(), |n| n.to_string());
                        let state = if t.revoked_at.is_some() { "revoked" } else { "" };
                        vec![t.id.clone(), t.name.clone(), time(t.expires_at), uses, state.to_owned()]
                    })
                    .collect();
                table(&["ID", "NAME", "EXPIRES", "USES LEFT", ""], &rows)
            });
        }
        RegistrationTokenCommand::Revoke { id } => {
            if !ctx.store.revoke_registration_token(&id, ctx.now).await? {
                return Err(UsageError(format!("no live registration token {id}")).into());
            }
            ctx.audit("registration_token.revoke", &id, json!({})).await?;
            emit(ctx.json, &json!({ "id": id, "revoked": true }), || format!("revoked registration token {id}"));
        }
    }
    Ok(())
}
