//! `postern admin scope …`, `postern admin service-account …`, `postern admin key …`, and the
//! entitlement grants of users and service accounts.

use super::Ctx;
use crate::UsageError;
use crate::cli::{KeyCommand, ScopeCommand, ServiceAccountCommand};
use crate::output::{emit, table, time};
use postern_core::scope::Scope;
use postern_server::apikeys::{self, CreateError, Expiry, KeyRequest};
use postern_server::entitlements::{self, GrantError, Grantor};
use postern_store::{ApiKeyRecord, KeyOwner, RegisteredScope, ServiceAccount, StoreError};
use serde_json::json;

pub async fn scope(ctx: &Ctx, command: ScopeCommand) -> anyhow::Result<()> {
    match command {
        ScopeCommand::Add { name, description, takes_values } => {
            let parsed = Scope::parse(&name).map_err(|e| UsageError(e.to_string()))?;
            if takes_values && (name.contains(':') || name.contains('*')) {
                return Err(UsageError(
                    "a scope that takes values is registered by its bare name (project, not project:*)".into(),
                )
                .into());
            }
            let description = description.trim().to_owned();
            if description.is_empty() || description.chars().count() > 200 {
                return Err(UsageError("--description: 1 to 200 characters".into()).into());
            }
            let scope = RegisteredScope { name: parsed.to_string(), description, takes_values, created_at: ctx.now };
            match ctx.store.add_scope(&scope).await {
                Err(StoreError::Conflict(_)) => {
                    return Err(UsageError(format!("the scope {name:?} already exists")).into());
                }
                other => other?,
            }
            ctx.audit("scope.added", &name, json!({ "takes_values": takes_values })).await?;
            emit(ctx.json, &scope_json(&scope), || format!("added scope {name}"));
        }
        ScopeCommand::List => {
            let scopes = ctx.store.scopes().await?;
            let value = json!(scopes.iter().map(scope_json).collect::<Vec<_>>());
            emit(ctx.json, &value, || {
                let rows: Vec<Vec<String>> = scopes
                    .iter()
                    .map(|s| {
                        let name = if s.takes_values { format!("{}:{{value}}", s.name) } else { s.name.clone() };
                        vec![name, s.description.clone()]
                    })
                    .collect();
                table(&["SCOPE", "DESCRIPTION"], &rows)
            });
        }
        ScopeCommand::Remove { name } => {
            ctx.store.remove_scope(&name).await.map_err(|e| not_found(e, &format!("no scope {name:?}")))?;
            ctx.audit("scope.removed", &name, json!({})).await?;
            emit(ctx.json, &json!({ "removed": name }), || format!("removed scope {name}"));
        }
    }
    Ok(())
}

fn scope_json(s: &RegisteredScope) -> serde_json::Value {
    json!({ "name": s.name, "description": s.description, "takes_values": s.takes_values, "created_at": s.created_at })
}

fn not_found(e: StoreError, message: &str) -> anyhow::Error {
    match e {
        StoreError::NotFound(_) => anyhow::anyhow!("{message}"),
        other => other.into(),
    }
}

/// The service account `name`, of `owner` when given. Names are unique per owner only, so a
/// name several owners use needs `--owner`.
async fn find_service_account(ctx: &Ctx, name: &str, owner: Option<&str>) -> anyhow::Result<ServiceAccount> {
    let mut named = ctx.store.service_accounts_named(name).await?;
    if let Some(owner) = owner {
        let owner = super::user::find(ctx, owner).await?;
        named.retain(|s| s.owner_id == owner.id);
    }
    match named.len() {
        0 => Err(anyhow::anyhow!(
            "no service account {name:?}{}",
            owner.map(|o| format!(" owned by {o}")).unwrap_or_default()
        )),
        1 => Ok(named.remove(0)),
        n => {
            let owners: Vec<&str> = named.iter().map(|s| s.owner_email.as_str()).collect();
            Err(UsageError(format!(
                "{n} service accounts are named {name:?} (owned by {}); say whose with --owner",
                owners.join(", ")
            ))
            .into())
        }
    }
}

fn service_account_json(s: &ServiceAccount) -> serde_json::Value {
    json!({
        "id": s.id, "name": s.name, "description": s.description,
        "owner_id": s.owner_id, "owner_email": s.owner_email, "created_at": s.created_at,
    })
}

pub async fn service_account(ctx: &Ctx, command: ServiceAccountCommand) -> anyhow::Result<()> {
    match command {
        ServiceAccountCommand::Create { name, owner, description } => {
            let owner = super::user::find(ctx, &owner).await?;
            let sa = match apikeys::create_service_account(&ctx.store, &owner.id, &name, &description, ctx.now).await {
                Err(apikeys::CreateError::Invalid(m)) => return Err(UsageError(m).into()),
                other => other?,
            };
            ctx.audit("service_account.created", &sa.id, json!({ "name": name, "owner": owner.id })).await?;
            emit(ctx.json, &service_account_json(&sa), || format!("created service account {name} (id {})", sa.id));
        }
        ServiceAccountCommand::List => {
            let accounts = ctx.store.service_accounts().await?;
            let value = json!(accounts.iter().map(service_account_json).collect::<Vec<_>>());
            emit(ctx.json, &value, || {
                let rows: Vec<Vec<String>> = accounts
                    .iter()
                    .map(|s| vec![s.name.clone(), s.owner_email.clone(), time(s.created_at), s.description.clone()])
                    .collect();
                table(&["NAME", "OWNER", "CREATED", "DESCRIPTION"], &rows)
            });
        }
        ServiceAccountCommand::Delete { account } => {
            let sa = find_service_account(ctx, &account.name, account.owner.as_deref()).await?;
            ctx.store.delete_service_account(&sa.id).await?;
            let name = sa.name;
            ctx.audit("service_account.deleted", &sa.id, json!({ "name": name, "owner": sa.owner_id })).await?;
            let value = json!({ "deleted": name, "owner_email": sa.owner_email });
            emit(ctx.json, &value, || format!("deleted service account {name} of {} and its keys", sa.owner_email));
        }
        ServiceAccountCommand::Grant { account, scopes } => {
            let sa = find_service_account(ctx, &account.name, account.owner.as_deref()).await?;
            grant_scopes(ctx, KeyOwner::ServiceAccount(&sa.id), &scopes).await?;
        }
        ServiceAccountCommand::Revoke { account, scopes } => {
            let sa = find_service_account(ctx, &account.name, account.owner.as_deref()).await?;
            revoke_scopes(ctx, KeyOwner::ServiceAccount(&sa.id), &scopes).await?;
        }
    }
    Ok(())
}

/// `… grant`: entitles a user or service account (as an admin), audited; prints what it now holds.
pub(super) async fn grant_scopes(ctx: &Ctx, owner: KeyOwner<'_>, scopes: &[String]) -> anyhow::Result<()> {
    match entitlements::grant(&ctx.store, owner, scopes, Grantor::Admin, ctx.now).await {
        Err(GrantError::Invalid(m)) => return Err(UsageError(m).into()),
        other => other?,
    }
    let principal = entitlements::principal(owner);
    ctx.audit("entitlement.granted", &principal, json!({ "scopes": scopes })).await?;
    show_entitlements(ctx, &principal, &[]).await
}

/// `… revoke`: takes scopes away, audited; prints what is left and the keys revoked.
pub(super) async fn revoke_scopes(ctx: &Ctx, owner: KeyOwner<'_>, scopes: &[String]) -> anyhow::Result<()> {
    let revoked = entitlements::revoke(&ctx.store, owner, scopes, ctx.now).await?;
    let principal = entitlements::principal(owner);
    ctx.audit("entitlement.revoked", &principal, json!({ "scopes": scopes, "revoked_keys": revoked })).await?;
    show_entitlements(ctx, &principal, &revoked).await
}

async fn show_entitlements(ctx: &Ctx, principal: &str, revoked_keys: &[String]) -> anyhow::Result<()> {
    let held: Vec<String> = ctx.store.entitlements(principal).await?.into_iter().map(|e| e.scope).collect();
    let value = json!({ "principal": principal, "scopes": held, "revoked_keys": revoked_keys });
    emit(ctx.json, &value, || {
        let mut text =
            format!("{principal} may hold: {}", if held.is_empty() { "nothing".into() } else { held.join(" ") });
        if !revoked_keys.is_empty() {
            text.push_str(&format!("\nrevoked keys: {}", revoked_keys.join(" ")));
        }
        text
    });
    Ok(())
}

/// `--expires-in`: a duration (`30d`, `12h`) or `never`.
fn expiry(arg: Option<&str>) -> anyhow::Result<Expiry> {
    Ok(match arg {
        None => Expiry::Default,
        Some("never") => Expiry::Never,
        Some(d) => {
            let d = humantime::parse_duration(d).map_err(|e| UsageError(format!("--expires-in: {e}")))?;
            Expiry::After(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        }
    })
}

fn key_json(k: &ApiKeyRecord) -> serde_json::Value {
    json!({
        "id": k.id,
        "public_prefix": k.public_prefix,
        "kind": k.kind().as_str(),
        "user_id": k.user_id,
        "user_email": k.user_email,
        "service_account": k.service_account_name,
        "name": k.name,
        "scope": k.scope,
        "created_at": k.created_at,
        "expires_at": k.expires_at,
        "last_used_at": k.last_used_at,
        "last_used_ip": k.last_used_ip,
        "revoked_at": k.revoked_at,
    })
}

pub async fn key(ctx: &Ctx, command: KeyCommand) -> anyhow::Result<()> {
    match command {
        KeyCommand::Create { user, service_account, owner, name, scopes, expires_in } => {
            let expiry = expiry(expires_in.as_deref())?;
            let (owner_id, sa) = match (&user, &service_account) {
                (Some(u), _) => (super::user::find(ctx, u).await?.id.into(), false),
                (None, Some(s)) => (find_service_account(ctx, s, owner.as_deref()).await?.id, true),
                (None, None) => return Err(UsageError("--user or --service-account is required".into()).into()),
            };
            let owner = if sa { KeyOwner::ServiceAccount(&owner_id) } else { KeyOwner::User(&owner_id) };
            let request = KeyRequest { owner, name: &name, scopes: &scopes, expiry, within: None };
            let (key, record) = match apikeys::create(&ctx.store, &ctx.config.api_keys, &request, ctx.now).await {
                Err(CreateError::Invalid(m)) => return Err(UsageError(m).into()),
                other => other?,
            };
            let details =
                json!({ "public_prefix": record.public_prefix, "kind": record.kind().as_str(), "scope": record.scope });
            ctx.audit("api_key.created", &record.id, details).await?;
            let mut value = key_json(&record);
            value["key"] = json!(key.expose());
            emit(ctx.json, &value, || {
                format!(
                    "{}\n\nThis is the only time the key is shown. Store it now.\nid {}, scopes {}, expires {}\n",
                    key.expose(),
                    record.id,
                    record.scope,
                    record.expires_at.map(time).unwrap_or_else(|| "never".into())
                )
            });
        }
        KeyCommand::List { user, service_account, owner } => {
            let owner_id = match (&user, &service_account) {
                (Some(u), _) => Some((super::user::find(ctx, u).await?.id.into(), false)),
                (None, Some(s)) => Some((find_service_account(ctx, s, owner.as_deref()).await?.id, true)),
                (None, None) => None,
            };
            let owner =
                owner_id.as_ref().map(|(id, sa)| if *sa { KeyOwner::ServiceAccount(id) } else { KeyOwner::User(id) });
            let keys = ctx.store.api_keys(owner).await?;
            let value = json!(keys.iter().map(key_json).collect::<Vec<_>>());
            emit(ctx.json, &value, || {
                let rows: Vec<Vec<String>> = keys
                    .iter()
                    .map(|k| {
                        let owner = k.user_email.clone().or_else(|| k.service_account_name.clone()).unwrap_or_default();
                        let state = match (k.revoked_at, k.expires_at) {
                            (Some(_), _) => "revoked".to_owned(),
                            (None, Some(e)) if e <= ctx.now => "expired".to_owned(),
                            _ => "active".to_owned(),
                        };
                        vec![
                            k.id.clone(),
                            postern_core::apikey::display_prefix(&k.public_prefix),
                            owner,
                            k.name.clone(),
                            k.scope.clone(),
                            k.expires_at.map(time).unwrap_or_else(|| "never".into()),
                            k.last_used_at.map(time).unwrap_or_else(|| "-".into()),
                            state,
                        ]
                    })
                    .collect();
                table(&["ID", "KEY", "OWNER", "NAME", "SCOPES", "EXPIRES", "LAST USED", "STATE"], &rows)
            });
        }
        KeyCommand::Revoke { id } => {
            if ctx.store.api_key(&id).await?.is_none() {
                return Err(anyhow::anyhow!("no API key {id:?}"));
            }
            let revoked = ctx.store.revoke_api_key(&id, ctx.now).await?;
            if revoked {
                ctx.audit("api_key.revoked", &id, json!({})).await?;
            }
            let text =
                if revoked { format!("revoked API key {id}") } else { format!("API key {id} was already revoked") };
            emit(ctx.json, &json!({ "id": id, "revoked": revoked }), || text);
        }
    }
    Ok(())
}
