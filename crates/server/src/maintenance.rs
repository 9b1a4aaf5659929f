//! The background task: deletes expired rows in bounded batches, trims refresh-token families
//! (successors after their grace window, spent tokens down to their hash, ended families),
//! deletes clients that registered themselves and went unused, and re-reads the signing keys, on
//! a fixed interval, until shutdown. Beside it, smaller tasks on their own timers: API keys'
//! last uses, revocations from other nodes, and the password pool's working memory.

use crate::state::AppState;
use std::time::Duration;
use tokio::sync::watch;

/// One pass. Returns the number of expired rows deleted or trimmed.
pub async fn run_once(state: &AppState) -> u64 {
    let (store, batch) = (&state.store, state.config.maintenance.cleanup_batch);
    let mut deleted = 0;
    // Bounded batches; stop after a few hundred so one pass never runs away.
    for _ in 0..200 {
        match store.delete_expired(state.now(), batch).await {
            Ok(0) => break,
            Ok(n) => deleted += n,
            Err(e) => {
                tracing::warn!(error = %e, "clean-up of expired rows failed");
                break;
            }
        }
    }
    // Refresh families: successor pairs only for the reuse grace window, then only what reuse
    // detection needs, and nothing once the family has ended.
    let grace = state.config.tokens.refresh_reuse_grace_secs;
    for _ in 0..200 {
        match store.trim_refresh(state.now(), grace, batch).await {
            Ok(0) => break,
            Ok(n) => deleted += n,
            Err(e) => {
                tracing::warn!(error = %e, "could not trim refresh-token families");
                break;
            }
        }
    }
    // Clients that registered themselves: this node's record of their use first, then those
    // unused for long go (audited), with the initial access tokens that have expired.
    if let Err(e) = state.node.client_uses.flush(store).await {
        tracing::warn!(error = %e, "could not record clients' last use");
    }
    match crate::client_registration::delete_unused(store, &state.config, state.now()).await {
        Ok(gone) => {
            for id in gone {
                let event = postern_store::NewAuditEvent {
                    actor: "maintenance",
                    action: "client.expired",
                    target: Some(&id),
                    ip: None,
                    user_agent: None,
                    outcome: "success",
                    details: None,
                };
                crate::audit::record(state, &event).await;
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not delete unused self-registered clients"),
    }
    if let Err(e) = store.delete_expired_registration_tokens(state.now()).await {
        tracing::warn!(error = %e, "could not delete expired registration tokens");
    }
    if let Err(e) = state.keys.refresh(store, state.now()).await {
        tracing::warn!(error = %e, "could not refresh the signing keys");
    }
    if deleted > 0 {
        tracing::debug!(deleted, "deleted expired rows");
    }
    deleted
}

/// Calls `work` every `secs` seconds (not at once: start-up has just done the same work) until
/// `stop` turns true.
async fn every<F, Fut>(secs: u64, mut stop: watch::Receiver<bool>, mut work: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut ticker = tokio::time::interval(Duration::from_secs(secs.max(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is immediate
    loop {
        tokio::select! {
            _ = ticker.tick() => work().await,
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
    }
}

/// Runs [`run_once`] every `maintenance.interval_secs` until `stop` turns true.
pub async fn run(state: AppState, stop: watch::Receiver<bool>) {
    every(state.config.maintenance.interval_secs, stop, || async {
        run_once(&state).await;
    })
    .await
}

/// Writes API keys' last uses every `api_keys.last_used_flush_secs` until `stop` (start-up
/// writes the last ones after the final request).
pub async fn flush_key_uses(state: AppState, stop: watch::Receiver<bool>) {
    every(state.config.api_keys.last_used_flush_secs, stop, || async {
        if let Err(e) = state.node.api_keys.flush(&state.store).await {
            tracing::warn!(error = %e, "could not record API keys' last use");
        }
    })
    .await
}

/// How often the Argon2id working memory is offered back: it goes between one and two of these
/// after the last sign-in ([`crate::passwords::PasswordPool::release_if_idle`]).
pub const PASSWORD_MEMORY_RELEASE_SECS: u64 = 5;

/// Gives the password pool's working memory (19 MiB per core with the default parameters) back
/// to the system a few seconds after sign-ins stop, until `stop`. On its own short timer rather
/// than the maintenance pass's minute: a sign-in every few seconds keeps it, and a quiet server
/// does not carry it for minutes after the last one.
pub async fn release_password_memory(state: AppState, stop: watch::Receiver<bool>) {
    every(PASSWORD_MEMORY_RELEASE_SECS, stop, || async {
        state.node.passwords.release_if_idle();
    })
    .await
}

/// Reads revocations made on other nodes every `tokens.revocation_sync_secs` until `stop`.
pub async fn sync_revocations(state: AppState, stop: watch::Receiver<bool>) {
    every(state.config.tokens.revocation_sync_secs, stop, || async {
        if let Err(e) = state.node.revoked.sync(&state.store, state.now()).await {
            tracing::warn!(error = %e, "could not read token revocations");
        }
    })
    .await
}
