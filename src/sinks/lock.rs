//! One writer per run id: a lock object under `<out>/_locks/run_id=<id>/`, taken with a
//! conditional PUT, so that two schedulers (an Airflow retry beside a manual backfill, cron on two
//! hosts) never interleave the writes of one run.
//!
//! Each attempt to take the lock creates the next *generation*, `<n>.json` with `n` one above the
//! highest there, using `PutMode::Create` (`If-None-Match: *` on S3, a no-clobber link on local
//! disk). Generation names are never reused, so of two writers that saw the same state exactly one
//! creates the next name: the lock needs nothing but create-if-absent from the store. A generation
//! holds the lock while it is neither released nor expired: its holder rewrites `expires_at` every
//! third of the TTL, so a holder that died (killed, host lost) frees the lock one TTL later. Expiry
//! compares wall clocks, so hosts sharing a lock need clocks within a small fraction of the TTL.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::storage::Location;

/// What a generation file holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Holder {
    run_id: String,
    /// Who took it: process id and host, for the message the loser prints.
    owner: String,
    acquired_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    released: bool,
}

impl Holder {
    fn holds(&self, now: DateTime<Utc>) -> bool {
        !self.released && self.expires_at > now
    }
}

/// A held lock. Release it with [`RunLock::release`]; dropping it stops the heartbeat, so the lock
/// then expires one TTL later.
pub struct RunLock {
    out: Location,
    dir: Path,
    path: Path,
    generation: u64,
    holder: Holder,
    heartbeat: JoinHandle<()>,
}

impl Drop for RunLock {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

fn lock_dir(out: &Location, run_id: &str) -> Path {
    out.child(&format!("_locks/run_id={run_id}"))
}

fn generation_path(dir: &Path, generation: u64) -> Path {
    dir.clone().join(format!("{generation:020}.json"))
}

/// Takes the lock of `run_id` under `out` for `ttl`, or fails with [`Error::RunLocked`] naming the
/// holder when a live generation exists.
pub async fn acquire(out: &Location, run_id: &str, ttl: Duration) -> Result<RunLock> {
    let dir = lock_dir(out, run_id);
    let ttl_chrono = chrono::Duration::from_std(ttl).map_err(|e| Error::Setting {
        key: "run.lock_ttl_s".into(),
        message: e.to_string(),
    })?;
    // Each lost race means another writer created a generation; after a few, one of them holds it.
    for _ in 0..8 {
        let next = match latest(out, &dir).await? {
            Some((_, holder)) if holder.holds(Utc::now()) => {
                return Err(Error::RunLocked {
                    run_id: run_id.to_string(),
                    owner: holder.owner,
                    expires_at: holder.expires_at,
                });
            }
            Some((generation, _)) => generation + 1,
            None => 0,
        };
        let now = Utc::now();
        let holder = Holder {
            run_id: run_id.to_string(),
            owner: owner(),
            acquired_at: now,
            expires_at: now + ttl_chrono,
            released: false,
        };
        let path = generation_path(&dir, next);
        let put = out
            .store
            .put_opts(&path, payload(&holder), PutOptions::from(PutMode::Create))
            .await;
        match put {
            Ok(_) => {
                tracing::info!(run_id, generation = next, "run lock taken");
                let heartbeat =
                    tokio::spawn(heartbeat(out.clone(), path.clone(), holder.clone(), ttl));
                return Ok(RunLock {
                    out: out.clone(),
                    dir,
                    path,
                    generation: next,
                    holder,
                    heartbeat,
                });
            }
            // Another writer created this generation first: look again.
            Err(object_store::Error::AlreadyExists { .. }) => continue,
            Err(e) => return Err(out.storage_error(e)),
        }
    }
    Err(Error::Internal(format!(
        "could not take or refuse the lock of run {run_id}: its generations keep changing"
    )))
}

impl RunLock {
    /// Fails with [`Error::RunLocked`] if another writer took the lock since (this holder stalled
    /// past its TTL): called before the commit, so a stale holder never publishes.
    pub async fn confirm(&self) -> Result<()> {
        match latest(&self.out, &self.dir).await? {
            Some((generation, _)) if generation == self.generation => Ok(()),
            Some((_, holder)) => Err(Error::RunLocked {
                run_id: self.holder.run_id.clone(),
                owner: holder.owner,
                expires_at: holder.expires_at,
            }),
            None => Err(Error::Internal(format!(
                "the lock of run {} vanished while held",
                self.holder.run_id
            ))),
        }
    }

    /// Marks the generation released, so the next writer need not wait for it to expire.
    pub async fn release(self) -> Result<()> {
        self.heartbeat.abort();
        let released = Holder {
            released: true,
            ..self.holder.clone()
        };
        self.out
            .store
            .put(&self.path, payload(&released))
            .await
            .map_err(|e| self.out.storage_error(e))?;
        tracing::info!(run_id = %self.holder.run_id, "run lock released");
        Ok(())
    }
}

/// The highest generation and its holder, if any.
async fn latest(out: &Location, dir: &Path) -> Result<Option<(u64, Holder)>> {
    let listed: Vec<Path> = out
        .store
        .list(Some(dir))
        .map_ok(|m| m.location)
        .try_collect()
        .await
        .map_err(|e| out.storage_error(e))?;
    let Some((generation, path)) = listed
        .into_iter()
        .filter_map(|p| {
            let generation = p.filename()?.strip_suffix(".json")?.parse::<u64>().ok()?;
            Some((generation, p))
        })
        .max_by_key(|(generation, _)| *generation)
    else {
        return Ok(None);
    };
    let holder = serde_json::from_slice(&out.get(&path).await?).map_err(|source| Error::Json {
        context: format!("lock {}", out.url_of(&path)),
        source,
    })?;
    Ok(Some((generation, holder)))
}

/// Rewrites the generation with a later `expires_at` every third of the TTL until aborted. A
/// failed write is logged and retried at the next beat; the lock expires only if every beat of a
/// whole TTL fails.
async fn heartbeat(out: Location, path: Path, mut holder: Holder, ttl: Duration) {
    let ttl_chrono = chrono::Duration::from_std(ttl).expect("checked by acquire");
    loop {
        tokio::time::sleep(ttl / 3).await;
        holder.expires_at = Utc::now() + ttl_chrono;
        if let Err(e) = out.store.put(&path, payload(&holder)).await {
            tracing::warn!(error = %e, "could not extend the run lock");
        }
    }
}

fn payload(holder: &Holder) -> PutPayload {
    serde_json::to_vec(holder)
        .expect("lock bodies serialise")
        .into()
}

/// `pid N on HOST`, for the loser's message.
fn owner() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::env::var("HOSTNAME"))
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "an unknown host".into());
    format!("pid {} on {host}", std::process::id())
}
