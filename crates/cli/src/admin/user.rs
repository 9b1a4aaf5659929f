//! `postern admin user …`

use super::{Ctx, read_password_stdin};
use crate::UsageError;
use crate::cli::UserCommand;
use crate::output::{emit, table, time};
use postern_core::email::Email;
use postern_server::accounts::{self, AccountError, NewAccount};
use postern_store::User;
use serde_json::json;

fn to_json(u: &User) -> serde_json::Value {
    json!({
        "id": u.id,
        "email": u.email,
        "email_verified": u.email_verified,
        "display_name": u.display_name,
        "disabled": u.disabled,
        "is_admin": u.is_admin,
        "has_password": u.password_hash.is_some(),
        "created_at": u.created_at,
        "updated_at": u.updated_at,
    })
}

fn describe(u: &User) -> String {
    format!(
        "id:        {}\nemail:     {}{}\nname:      {}\nadmin:     {}\ndisabled:  {}\npassword:  {}\ncreated:   {}\nupdated:   {}\n",
        u.id,
        u.email,
        if u.email_verified { " (verified)" } else { "" },
        u.display_name.as_deref().unwrap_or("-"),
        if u.is_admin { "yes" } else { "no" },
        if u.disabled { "yes" } else { "no" },
        if u.password_hash.is_some() { "set" } else { "not set" },
        time(u.created_at),
        time(u.updated_at),
    )
}

/// Finds a user by email (when the argument has an `@`) or by id.
pub(super) async fn find(ctx: &Ctx, who: &str) -> anyhow::Result<User> {
    let found = if who.contains('@') {
        let email = Email::parse(who).map_err(|_| UsageError(format!("{who:?} is not a valid email address")))?;
        ctx.store.user_by_email(&email).await?
    } else {
        ctx.store.user_by_id(who).await?
    };
    found.ok_or_else(|| anyhow::anyhow!("no user {who:?}"))
}

pub async fn run(ctx: &Ctx, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Create { email, password_stdin, admin, verified, name } => {
            let password = if password_stdin { Some(read_password_stdin()?) } else { None };
            let account = NewAccount {
                email: &email,
                password: password.as_deref(),
                display_name: name.as_deref(),
                email_verified: verified,
                is_admin: admin,
            };
            let user = match accounts::create_user(&ctx.store, ctx.config.password, &account, ctx.now).await {
                Ok(user) => user,
                Err(AccountError::Email) => {
                    return Err(UsageError(format!("--email: {email:?} is not a valid email address")).into());
                }
                Err(AccountError::Name) => {
                    return Err(UsageError("--name: at most 200 characters, without control characters".into()).into());
                }
                Err(AccountError::Password(e)) => return Err(UsageError(e.to_string()).into()),
                Err(AccountError::Exists) => return Err(anyhow::anyhow!("a user with email {email} exists already")),
                Err(e) => return Err(e.into()),
            };
            ctx.audit("user.create", &user.id, json!({ "email": user.email, "is_admin": user.is_admin })).await?;
            emit(ctx.json, &to_json(&user), || format!("created user {} ({})", user.email, user.id));
        }
        UserCommand::List => {
            let users = ctx.store.list_users(i64::MAX, 0).await?;
            let value = json!(users.iter().map(to_json).collect::<Vec<_>>());
            emit(ctx.json, &value, || {
                let rows: Vec<Vec<String>> = users
                    .iter()
                    .map(|u| {
                        vec![
                            u.email.clone(),
                            u.id.to_string(),
                            (if u.is_admin { "admin" } else { "" }).to_owned(),
                            (if u.disabled { "disabled" } else { "" }).to_owned(),
                            time(u.created_at),
                        ]
                    })
                    .collect();
                table(&["EMAIL", "ID", "ROLE", "STATUS", "CREATED"], &rows)
            });
        }
        UserCommand::Show { user } => {
            let u = find(ctx, &user).await?;
            emit(ctx.json, &to_json(&u), || describe(&u));
        }
        UserCommand::Invite { email, scopes } => invite(ctx, &email, &scopes).await?,
        UserCommand::Delete { user } => {
            let u = find(ctx, &user).await?;
            accounts::delete_user(&ctx.store, None, &u.id, ctx.now).await?;
            ctx.audit("user.delete", &u.id, json!({})).await?;
            let sent = postern_server::mail::send_now(&ctx.config.email, vec![letters(ctx).account_deleted(&u.email)])
                .await
                .map_err(|e| UsageError(e.to_string()))?;
            emit(ctx.json, &json!({ "deleted": u.id, "email_sent": sent > 0 }), || {
                format!("deleted user {} ({})", u.email, u.id)
            });
        }
        UserCommand::ResetMfa { user } => {
            let u = find(ctx, &user).await?;
            let had = ctx.store.totp_factor(&u.id).await?.is_some();
            ctx.store.remove_totp(&u.id).await?;
            let passkeys = ctx.store.remove_passkeys(&u.id).await?;
            let details = json!({ "email": u.email, "had_totp": had, "passkeys_removed": passkeys });
            ctx.audit("user.reset_mfa", &u.id, details).await?;
            emit(ctx.json, &json!({ "user": u.id, "had_totp": had, "passkeys_removed": passkeys }), || {
                if had || passkeys > 0 {
                    format!(
                        "two-step verification of {} is off ({passkeys} passkeys removed); they sign in with the password alone",
                        u.email
                    )
                } else {
                    format!("{} had no two-step verification", u.email)
                }
            });
        }
        UserCommand::Sessions { user } => {
            let u = find(ctx, &user).await?;
            let sessions = postern_server::access::sessions(&ctx.store, &u.id, None, ctx.now).await?;
            emit(ctx.json, &json!(sessions), || {
                let rows: Vec<Vec<String>> = sessions
                    .iter()
                    .map(|s| {
                        vec![
                            s.id.clone(),
                            s.device.clone(),
                            s.ip.clone().unwrap_or_else(|| "-".into()),
                            time(s.signed_in_at),
                            time(s.last_active_at),
                        ]
                    })
                    .collect();
                table(&["ID", "DEVICE", "IP", "SIGNED IN", "LAST ACTIVE"], &rows)
            });
        }
        UserCommand::RevokeSessions { user } => {
            let u = find(ctx, &user).await?;
            let ended = ctx.store.end_user_sessions(&u.id, None).await?;
            ctx.audit("user.revoke_sessions", &u.id, json!({ "email": u.email, "ended": ended })).await?;
            emit(ctx.json, &json!({ "user": u.id, "ended": ended }), || {
                format!("{ended} session(s) of {} ended", u.email)
            });
        }
        UserCommand::Disable { user } => set_disabled(ctx, &user, true).await?,
        UserCommand::Enable { user } => set_disabled(ctx, &user, false).await?,
        UserCommand::Grant { user, scopes } => {
            let u = find(ctx, &user).await?;
            super::apikeys::grant_scopes(ctx, postern_store::KeyOwner::User(&u.id), &scopes).await?;
        }
        UserCommand::Revoke { user, scopes } => {
            let u = find(ctx, &user).await?;
            super::apikeys::revoke_scopes(ctx, postern_store::KeyOwner::User(&u.id), &scopes).await?;
        }
        UserCommand::SetPassword { user, password_stdin: _ } => {
            let u = find(ctx, &user).await?;
            let password = read_password_stdin()?;
            // Every session and refresh family of the user ends with the old password.
            let params = ctx.config.password;
            match accounts::set_password(&ctx.store, None, params, &u, &password, None, ctx.now).await {
                Err(AccountError::Password(e)) => return Err(UsageError(e.to_string()).into()),
                other => other?,
            }
            ctx.audit("user.set_password", &u.id, json!({ "email": u.email })).await?;
            let u = find(ctx, &u.id).await?;
            emit(ctx.json, &to_json(&u), || format!("password set for {}", u.email));
        }
    }
    Ok(())
}

async fn set_disabled(ctx: &Ctx, who: &str, disabled: bool) -> anyhow::Result<()> {
    let u = find(ctx, who).await?;
    // Disabling cuts the user off everywhere (sessions, tokens, keys); running servers pick up
    // the JWT deny-list within `tokens.revocation_sync_secs`. Enabling brings none of it back.
    if disabled {
        accounts::disable_user(&ctx.store, None, &u.id, ctx.now).await?;
    } else {
        ctx.store.enable_user(&u.id, ctx.now).await?;
    }
    let action = if disabled { "user.disable" } else { "user.enable" };
    ctx.audit(action, &u.id, json!({ "email": u.email })).await?;
    let u = find(ctx, &u.id).await?;
    emit(ctx.json, &to_json(&u), || format!("{} {}", if disabled { "disabled" } else { "enabled" }, u.email));
    Ok(())
}

fn letters(ctx: &Ctx) -> postern_server::letters::Sender {
    postern_server::letters::Sender::new(&ctx.config.issuer_for(ctx.config.server.listen))
}

/// `user invite`: the account and the link, emailed (or printed when email is not set up).
async fn invite(ctx: &Ctx, email: &str, scopes: &[String]) -> anyhow::Result<()> {
    use postern_server::invitations::{self, INVITE_SECS, InviteError};
    let invited = match invitations::invite(&ctx.store, email, scopes, ctx.now).await {
        Ok(i) => i,
        Err(InviteError::Email) => return Err(UsageError(format!("{email:?} is not a valid email address")).into()),
        Err(InviteError::Scopes(m)) => return Err(UsageError(format!("--scope: {m}")).into()),
        Err(e @ InviteError::Exists(_)) => return Err(anyhow::anyhow!("{e}")),
        Err(InviteError::Store(e)) => return Err(e.into()),
    };
    let u = &invited.user;
    ctx.audit("user.invite", &u.id, json!({ "email": u.email, "scopes": scopes })).await?;
    let mail = letters(ctx).invitation(&u.email, invited.token.expose(), INVITE_SECS / 86_400);
    let link =
        format!("{}/invitation?token={}", ctx.config.issuer_for(ctx.config.server.listen), invited.token.expose());
    let sent = if ctx.config.email.smtp_url.is_some() {
        postern_server::mail::send_now(&ctx.config.email, vec![mail]).await.map_err(|e| UsageError(e.to_string()))? > 0
    } else {
        false
    };
    let mut value = json!({ "user": to_json(u), "expires_at": invited.expires_at, "email_sent": sent });
    if !sent {
        // Not emailed: the admin passes the link on (it is shown here and nowhere else).
        value["link"] = json!(link);
    }
    emit(ctx.json, &value, || {
        if sent {
            format!("invited {} ({}); the link was emailed, valid 7 days", u.email, u.id)
        } else {
            format!(
                "invited {} ({}); the link was NOT emailed (no email.smtp_url, or sending failed). Send it yourself:\n{link}",
                u.email, u.id
            )
        }
    });
    Ok(())
}
