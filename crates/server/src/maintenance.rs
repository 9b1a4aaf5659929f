//! The background task: deletes expired rows in bounded batches and re-reads the signing keys,
//! on a fixed interval, until shutdown.

use crate::keyring::KeyRing;
use postern_core::system::Clock;
use postern_store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// One pass: clean-up, then key refresh. Returns the number of rows deleted.
pub async fn run_once(store: &Store, keys: &KeyRing, clock: &dyn Clock, batch: i64) -> u64 {
    let mut deleted = 0;
    // Bounded batches; stop after a few hundred so one pass never runs away.
    for _ in 0..200 {
        match store.delete_expired(clock.now(), batch).await {
            Ok(0) => break,
            Ok(n) => deleted += n,
            Err(e) => {
                tracing::warn!(error = %e, "clean-up of expired rows failed");
                break;
            }
        }
    }
    if let Err(e) = keys.refresh(store, clock.now()).await {
        tracing::warn!(error = %e, "could not refresh the signing keys");
    }
    if deleted > 0 {
        tracing::debug!(deleted, "deleted expired rows");
    }
    deleted
}

/// Runs [`run_once`] every `interval` until `stop` turns true.
pub async fn run(
    store: Store,
    keys: KeyRing,
    clock: Arc<dyn Clock>,
    interval: Duration,
    batch: i64,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is immediate; start-up has just done this work
    loop {
        tokio::select! {
            _ = ticker.tick() => { run_once(&store, &keys, clock.as_ref(), batch).await; }
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
    }
}
