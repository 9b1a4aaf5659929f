//! `postern admin keys …`

use super::Ctx;
use crate::cli::{AlgArg, KeysCommand};
use crate::output::{emit, table, time};
use postern_core::signing::Algorithm;
use postern_server::{kek, keyring};
use postern_store::StoredKey;
use serde_json::json;

fn status(k: &StoredKey, now: i64) -> String {
    match (k.active, k.publish_until) {
        (true, _) => "active".to_owned(),
        (false, Some(until)) if until > now => format!("published until {}", time(until)),
        _ => "retired".to_owned(),
    }
}

fn to_json(k: &StoredKey, now: i64) -> serde_json::Value {
    json!({
        "kid": k.kid,
        "alg": k.alg,
        "active": k.active,
        "published": k.active || k.publish_until.is_some_and(|u| u > now),
        "created_at": k.created_at,
        "rotated_at": k.rotated_at,
        "publish_until": k.publish_until,
    })
}

pub async fn run(ctx: &Ctx, command: KeysCommand) -> anyhow::Result<()> {
    let (kek, _) = kek::resolve(&ctx.config, ctx.store.backend())?;
    kek::verify(&ctx.store, &kek, ctx.now).await?;
    match command {
        KeysCommand::List => {
            keyring::ensure_keys(&ctx.store, &kek, ctx.now).await?;
        }
        KeysCommand::Rotate { alg } => {
            let algs: Vec<Algorithm> = match alg {
                AlgArg::Rs256 => vec![Algorithm::RS256],
                AlgArg::EdDsa => vec![Algorithm::EdDSA],
                AlgArg::Es256 => vec![Algorithm::ES256],
                AlgArg::All => Algorithm::ALL.to_vec(),
            };
            keyring::ensure_keys(&ctx.store, &kek, ctx.now).await?;
            let publish = ctx.config.tokens.key_publish_secs(ctx.store.longest_access_token_ttl().await?);
            let mut rotated = Vec::new();
            for alg in algs {
                let kid = keyring::rotate(&ctx.store, &kek, alg, ctx.now, publish).await?;
                ctx.audit("keys.rotate", &kid, json!({ "alg": alg.as_str() })).await?;
                rotated.push(json!({ "alg": alg.as_str(), "kid": kid }));
            }
            if !ctx.json {
                for r in &rotated {
                    println!("new active {} key {}", r["alg"].as_str().unwrap_or(""), r["kid"].as_str().unwrap_or(""));
                }
                println!(
                    "previous keys stay published for {publish} s; running servers pick up the change within maintenance.interval_secs"
                );
            }
        }
    }
    let keys = ctx.store.all_keys().await?;
    let value = json!(keys.iter().map(|k| to_json(k, ctx.now)).collect::<Vec<_>>());
    emit(ctx.json, &value, || {
        let rows: Vec<Vec<String>> =
            keys.iter().map(|k| vec![k.kid.clone(), k.alg.clone(), status(k, ctx.now), time(k.created_at)]).collect();
        table(&["KID", "ALG", "STATUS", "CREATED"], &rows)
    });
    Ok(())
}
