//! `postern admin client …`

use super::Ctx;
use crate::UsageError;
use crate::cli::{ClientCommand, IdTokenAlgArg, TokenFormatArg};
use crate::output::{emit, table, time};
use postern_core::client::{AccessTokenFormat, ClientType, GrantType, RedirectUri};
use postern_core::scope::Scope;
use postern_core::signing::Algorithm;
use postern_server::clients::{self, ClientError, Registered, Registration};
use postern_store::{Client, ClientPolicy, ClientUpdate};
use serde_json::json;

fn to_json(c: &Client) -> serde_json::Value {
    json!({
        "client_id": c.client_id,
        "name": c.name,
        "client_type": c.client_type.as_str(),
        "redirect_uris": c.redirect_uris,
        "post_logout_redirect_uris": c.post_logout_redirect_uris,
        "grant_types": c.grant_types,
        "scopes": c.allowed_scopes,
        "resources": c.resources,
        "first_party": c.first_party,
        "require_state": c.policy.require_state,
        "id_token_alg": c.policy.id_token_alg.as_str(),
        "always_refresh_token": c.policy.always_refresh,
        "id_token_on_refresh": c.policy.id_token_on_refresh,
        "require_verified_email": c.policy.require_verified_email,
        "require_mfa": c.policy.require_mfa,
        "access_token_format": c.access_token_format.as_str(),
        "access_token_alg": c.policy.access_token_alg.as_str(),
        "access_token_ttl": c.access_token_ttl,
        "refresh_token_ttl": c.refresh_token_ttl,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
    })
}

fn describe(c: &Client) -> String {
    let list = |items: Vec<String>| {
        if items.is_empty() { "-".to_owned() } else { items.join(" ") }
    };
    format!(
        "client_id:    {}\nname:         {}\ntype:         {}\nredirect_uris: {}\ngrant_types:  {}\nscopes:       {}\nresources:    {}\nfirst_party:  {}\naccess_token: {} ({} s)\nrefresh_ttl:  {} s\ncreated:      {}\nupdated:      {}\n",
        c.client_id,
        c.name,
        c.client_type.as_str(),
        list(c.redirect_uris.iter().map(|r| r.as_str().to_owned()).collect()),
        list(c.grant_types.iter().map(|g| g.as_str().to_owned()).collect()),
        list(c.allowed_scopes.iter().map(|s| s.as_str().to_owned()).collect()),
        list(c.resources.clone()),
        c.first_party,
        c.access_token_format.as_str(),
        c.access_token_ttl,
        c.refresh_token_ttl,
        time(c.created_at),
        time(c.updated_at),
    )
}

fn alg_of(arg: IdTokenAlgArg) -> Algorithm {
    match arg {
        IdTokenAlgArg::Rs256 => Algorithm::RS256,
        IdTokenAlgArg::EdDsa => Algorithm::EdDSA,
        IdTokenAlgArg::Es256 => Algorithm::ES256,
    }
}

fn format_of(arg: TokenFormatArg) -> AccessTokenFormat {
    match arg {
        TokenFormatArg::Jwt => AccessTokenFormat::Jwt,
        TokenFormatArg::Opaque => AccessTokenFormat::Opaque,
    }
}

fn usage(e: impl std::fmt::Display) -> anyhow::Error {
    UsageError(e.to_string()).into()
}

fn parse_redirects(uris: &[String]) -> anyhow::Result<Vec<RedirectUri>> {
    uris.iter().map(|u| RedirectUri::parse(u).map_err(usage)).collect()
}

fn parse_grants(grants: &[String]) -> anyhow::Result<Vec<GrantType>> {
    let mut out: Vec<GrantType> = Vec::new();
    for g in grants {
        let grant = GrantType::parse(g).ok_or_else(|| {
            usage(format!(
                "--grant-type {g:?}: expected authorization_code, refresh_token, client_credentials or device_code"
            ))
        })?;
        if !out.contains(&grant) {
            out.push(grant);
        }
    }
    Ok(out)
}

fn parse_scopes(scopes: &[String]) -> anyhow::Result<Vec<Scope>> {
    let mut out: Vec<Scope> = Vec::new();
    for s in scopes.iter().flat_map(|s| s.split_whitespace()) {
        let scope = Scope::parse(s).map_err(usage)?;
        if !out.contains(&scope) {
            out.push(scope);
        }
    }
    Ok(out)
}

/// A registration refused for its settings is the caller's mistake (exit code 2).
fn client_error(e: ClientError) -> anyhow::Error {
    match e {
        ClientError::Invalid(m) => usage(m),
        other => other.into(),
    }
}

/// Replaces the resources a client may ask for; an unregistered one is the caller's mistake.
async fn allow_resources(ctx: &Ctx, client_id: &str, resources: &[String]) -> anyhow::Result<Client> {
    postern_server::resources::allow(&ctx.store, client_id, resources).await.map_err(|e| match e {
        postern_server::resources::ResourceError::Store(e) => e.into(),
        other => usage(format!("--resource: {other}")),
    })?;
    find(ctx, client_id).await
}

async fn find(ctx: &Ctx, client_id: &str) -> anyhow::Result<Client> {
    ctx.store.client_by_id(client_id).await?.ok_or_else(|| anyhow::anyhow!("no client {client_id:?}"))
}

pub async fn run(ctx: &Ctx, command: ClientCommand) -> anyhow::Result<()> {
    match command {
        ClientCommand::Create {
            name,
            public,
            redirect_uris,
            post_logout_redirect_uris,
            grant_types,
            scopes,
            resources,
            first_party,
            require_state,
            id_token_alg,
            always_refresh_token,
            id_token_on_refresh,
            require_verified_email,
            require_mfa,
            access_token_format,
            access_token_alg,
            access_token_ttl,
            refresh_token_ttl,
        } => {
            for r in &resources {
                if ctx.store.resource(r).await?.is_none() {
                    return Err(usage(format!("--resource: no resource {r} is registered")));
                }
            }
            let client_type = if public { ClientType::Public } else { ClientType::Confidential };
            let registration = Registration {
                redirect_uris: parse_redirects(&redirect_uris)?,
                post_logout_redirect_uris: parse_redirects(&post_logout_redirect_uris)?,
                grant_types: parse_grants(&grant_types)?,
                allowed_scopes: parse_scopes(&scopes)?,
                first_party,
                policy: ClientPolicy {
                    require_state,
                    id_token_alg: alg_of(id_token_alg),
                    always_refresh: always_refresh_token,
                    id_token_on_refresh,
                    require_verified_email,
                    require_mfa,
                    access_token_alg: alg_of(access_token_alg),
                },
                access_token_format: format_of(access_token_format),
                access_token_ttl,
                refresh_token_ttl,
                ..Registration::new(&name, client_type)
            };
            let Registered { mut client, secret } =
                clients::register(&ctx.store, &ctx.config.tokens, registration, ctx.now).await.map_err(client_error)?;
            if !resources.is_empty() {
                client = allow_resources(ctx, client.client_id.as_str(), &resources).await?;
            }
            ctx.audit("client.create", &client.client_id, json!({ "name": client.name, "type": client_type.as_str() }))
                .await?;
            let mut value = to_json(&client);
            if let Some(secret) = &secret {
                value["client_secret"] = json!(secret.expose());
            }
            emit(ctx.json, &value, || {
                let mut out = format!(
                    "created client {} ({})\nclient_id:     {}\n",
                    client.name,
                    client_type.as_str(),
                    client.client_id
                );
                if let Some(secret) = &secret {
                    out += &format!("client_secret: {}\n(shown once: store it now)\n", secret.expose());
                }
                out
            });
        }
        ClientCommand::List => {
            let clients = ctx.store.list_clients().await?;
            let value = json!(clients.iter().map(to_json).collect::<Vec<_>>());
            emit(ctx.json, &value, || {
                let rows: Vec<Vec<String>> = clients
                    .iter()
                    .map(|c| {
                        vec![
                            c.client_id.to_string(),
                            c.name.clone(),
                            c.client_type.as_str().to_owned(),
                            c.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>().join(","),
                        ]
                    })
                    .collect();
                table(&["CLIENT_ID", "NAME", "TYPE", "GRANTS"], &rows)
            });
        }
        ClientCommand::Show { client_id } => {
            let c = find(ctx, &client_id).await?;
            emit(ctx.json, &to_json(&c), || describe(&c));
        }
        ClientCommand::Update {
            client_id,
            name,
            redirect_uris,
            post_logout_redirect_uris,
            grant_types,
            scopes,
            first_party,
            require_state,
            id_token_alg,
            always_refresh_token,
            id_token_on_refresh,
            require_verified_email,
            require_mfa,
            access_token_format,
            access_token_alg,
            access_token_ttl,
            refresh_token_ttl,
            resources,
            no_resources,
        } => {
            let redirect_uris = (!redirect_uris.is_empty()).then(|| parse_redirects(&redirect_uris)).transpose()?;
            let post_logout = (!post_logout_redirect_uris.is_empty())
                .then(|| parse_redirects(&post_logout_redirect_uris))
                .transpose()?;
            let grant_types = (!grant_types.is_empty()).then(|| parse_grants(&grant_types)).transpose()?;
            let scopes = (!scopes.is_empty()).then(|| parse_scopes(&scopes)).transpose()?;
            let change = |u: &mut ClientUpdate| {
                if let Some(name) = name {
                    u.name = name;
                }
                if let Some(r) = redirect_uris {
                    u.redirect_uris = r;
                }
                if let Some(r) = post_logout {
                    u.post_logout_redirect_uris = r;
                }
                if let Some(g) = grant_types {
                    u.grant_types = g;
                }
                if let Some(s) = scopes {
                    u.allowed_scopes = s;
                }
                if let Some(fp) = first_party {
                    u.first_party = fp;
                }
                if let Some(v) = require_state {
                    u.policy.require_state = v;
                }
                if let Some(a) = id_token_alg {
                    u.policy.id_token_alg = alg_of(a);
                }
                if let Some(v) = always_refresh_token {
                    u.policy.always_refresh = v;
                }
                if let Some(v) = id_token_on_refresh {
                    u.policy.id_token_on_refresh = v;
                }
                if let Some(v) = require_verified_email {
                    u.policy.require_verified_email = v;
                }
                if let Some(v) = require_mfa {
                    u.policy.require_mfa = v;
                }
                if let Some(f) = access_token_format {
                    u.access_token_format = format_of(f);
                }
                if let Some(a) = access_token_alg {
                    u.policy.access_token_alg = alg_of(a);
                }
                if let Some(t) = access_token_ttl {
                    u.access_token_ttl = t;
                }
                if let Some(t) = refresh_token_ttl {
                    u.refresh_token_ttl = t;
                }
            };
            let mut c = clients::update(&ctx.store, &client_id, change, ctx.now).await.map_err(|e| match e {
                ClientError::NotFound => anyhow::anyhow!("no client {client_id:?}"),
                other => client_error(other),
            })?;
            if !resources.is_empty() || no_resources {
                c = allow_resources(ctx, &client_id, &resources).await?;
            }
            ctx.audit("client.update", &c.client_id, json!({ "name": c.name, "resources": c.resources })).await?;
            emit(ctx.json, &to_json(&c), || format!("updated client {}", c.client_id));
        }
        ClientCommand::Delete { client_id } => {
            let c = find(ctx, &client_id).await?;
            ctx.store.delete_client(&client_id).await?;
            ctx.audit("client.delete", &client_id, json!({ "name": c.name })).await?;
            emit(ctx.json, &json!({ "client_id": client_id, "deleted": true }), || {
                format!("deleted client {client_id}")
            });
        }
        ClientCommand::RotateSecret { client_id } => {
            let (c, secret) = clients::rotate_secret(&ctx.store, &client_id, ctx.now).await.map_err(|e| match e {
                ClientError::NotFound => anyhow::anyhow!("no client {client_id:?}"),
                ClientError::Public => usage(format!("client {client_id} is public: it has no secret")),
                other => client_error(other),
            })?;
            ctx.audit("client.rotate_secret", &client_id, json!({ "name": c.name })).await?;
            emit(ctx.json, &json!({ "client_id": client_id, "client_secret": secret.expose() }), || {
                format!(
                    "new secret for {client_id}\nclient_secret: {}\n(shown once: store it now; the old secret no longer works)\n",
                    secret.expose()
                )
            });
        }
    }
    Ok(())
}
