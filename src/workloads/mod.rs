//! Workload characterization (issue 5): finds the request shapes in the window, names them and
//! describes each (shares, lengths, burstiness, diurnal profile, prefix sharing, session depth) for
//! the simulator and the report.
//!
//! Two streaming passes over `sql/workloads/requests.sql` (arrival order):
//! 1. per-request [`FeatureVector`]s; a deterministic sample of at most [`SAMPLE_SIZE`] requests (the
//!    smallest hashes of (seed, request_id), independent of batch boundaries) is clustered by
//!    [`kmeans::cluster`] with k in [`K_RANGE`];
//! 2. every request is assigned to its class and folded into per-class accumulators; nothing
//!    per-request is kept, so memory does not grow with the number of requests.
//!
//! The prefix share of a request is the largest of: its `cached_tokens`; the leading
//! `prefix_block_hashes` blocks already seen earlier in the window (Mooncake chains); its
//! `prefix_tokens` when its `prefix_hash` was already seen earlier in the window — all over its
//! prompt tokens. "Seen earlier" makes a one-off prefix count as unshared, which is what a prefix
//! cache can exploit. Sources without any of these columns (Azure) get 0.

pub mod kmeans;
pub mod naming;
pub mod resample;
mod stats;

use std::collections::HashSet;
use std::ops::RangeInclusive;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use serde::Serialize;

use crate::config::Window;
use crate::contracts;
use crate::error::{Context, Error, Result};
use crate::features::Table;
use crate::simulation::rng::hash64;
use crate::simulation::trace::Trace;

pub use kmeans::{FeatureVector, Model, adjusted_rand_index, cluster};
pub use stats::{AppShare, Burstiness, Diurnal, Percentiles, WorkloadClass};

/// Most requests clustered to choose k and the centroids.
pub const SAMPLE_SIZE: usize = 100_000;
/// Candidate numbers of classes.
pub const K_RANGE: RangeInclusive<usize> = 2..=10;

/// What the stage hands on: the model (to classify other traffic), typed classes, and the tables
/// `workload_classes`, `app_workload_shares` and `app_workload_mix` for the sinks.
#[derive(Debug, Clone)]
pub struct Workloads {
    pub model: Model,
    pub classes: Vec<WorkloadClass>,
    pub tables: Vec<Table>,
}

/// One request as the passes see it.
pub(crate) struct Row<'a> {
    pub request_id: &'a str,
    pub ts: i64,
    pub app_id: &'a str,
    pub supply_id: &'a str,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// Prompt tokens in an already-seen prefix (see the module doc), ≤ prompt tokens.
    pub shared_tokens: i64,
    pub turn: i64,
    pub depth: i64,
}

impl Row<'_> {
    pub fn features(&self) -> FeatureVector {
        let share = if self.prompt_tokens > 0 {
            self.shared_tokens as f64 / self.prompt_tokens as f64
        } else {
            0.0
        };
        FeatureVector::new(self.prompt_tokens, self.completion_tokens, share, self.turn)
    }
}

/// FNV-1a of a string id, stable across Rust releases.
fn hash_str(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Prefixes seen so far in the pass.
#[derive(Default)]
struct SeenPrefixes {
    chains: HashSet<i64>,
    prefixes: HashSet<u64>,
}

const QUERY_CONTEXT: &str = "workloads query sql/workloads/requests.sql";

/// The per-request query with the window bound.
async fn requests_frame(
    ctx: &SessionContext,
    window: &Window,
) -> Result<datafusion::dataframe::DataFrame> {
    let at = |t: chrono::DateTime<chrono::Utc>| {
        ScalarValue::TimestampMicrosecond(Some(t.timestamp_micros()), Some(contracts::UTC.into()))
    };
    let params = ParamValues::from(vec![
        ("window_start", at(window.start)),
        ("window_end", at(window.end)),
    ]);
    ctx.sql(crate::sql::WORKLOAD_REQUESTS)
        .await
        .and_then(|df| df.with_param_values(params))
        .context(QUERY_CONTEXT)
}

/// Calls `visit` for every request of the window in arrival order, one batch in memory at a time.
async fn scan(ctx: &SessionContext, window: &Window, mut visit: impl FnMut(&Row)) -> Result<()> {
    let mut stream = requests_frame(ctx, window)
        .await?
        .execute_stream()
        .await
        .context(QUERY_CONTEXT)?;
    let mut seen = SeenPrefixes::default();
    while let Some(batch) = stream.next().await {
        let batch = batch.context(QUERY_CONTEXT)?;
        visit_batch(&batch, &mut seen, &mut visit)?;
    }
    Ok(())
}

fn visit_batch(
    batch: &RecordBatch,
    seen: &mut SeenPrefixes,
    visit: &mut impl FnMut(&Row),
) -> Result<()> {
    let col = |name: &str| {
        batch.column_by_name(name).ok_or_else(|| Error::Setting {
            key: "workloads".into(),
            message: format!("requests stream lacks the `{name}` column"),
        })
    };
    let id = col("request_id")?.as_string::<i32>();
    let ts = col("ts")?.as_primitive::<TimestampMicrosecondType>();
    let app = col("app_id")?.as_string::<i32>();
    let supply = col("supply_id")?.as_string::<i32>();
    let prompt = col("prompt_tokens")?.as_primitive::<Int64Type>();
    let completion = col("completion_tokens")?.as_primitive::<Int64Type>();
    let cached = col("cached_tokens")?.as_primitive::<Int64Type>();
    let prefix_hash = col("prefix_hash")?.as_string::<i32>();
    let prefix_tokens = col("prefix_tokens")?.as_primitive::<Int64Type>();
    let chains = col("prefix_block_hashes")?.as_list::<i32>();
    let chain_block = col("prefix_block_tokens")?.as_primitive::<Int64Type>();
    let turn = col("turn")?.as_primitive::<Int64Type>();
    let depth = col("depth")?.as_primitive::<Int64Type>();
    for r in 0..batch.num_rows() {
        let prompt_tokens = prompt.value(r).max(0);
        let mut shared = if cached.is_valid(r) {
            cached.value(r)
        } else {
            0
        };
        if chains.is_valid(r) && chain_block.is_valid(r) && chain_block.value(r) > 0 {
            let ids = chains.value(r);
            let ids = ids.as_primitive::<Int64Type>();
            let leading = ids
                .iter()
                .take_while(|id| id.is_some_and(|id| seen.chains.contains(&id)))
                .count() as i64;
            shared = shared.max(leading.saturating_mul(chain_block.value(r)));
            seen.chains.extend(ids.iter().flatten());
        }
        if prefix_hash.is_valid(r) && prefix_tokens.is_valid(r) {
            let h = hash_str(prefix_hash.value(r));
            if !seen.prefixes.insert(h) {
                shared = shared.max(prefix_tokens.value(r));
            }
        }
        visit(&Row {
            request_id: id.value(r),
            ts: ts.value(r),
            app_id: app.value(r),
            supply_id: supply.value(r),
            prompt_tokens,
            completion_tokens: completion.value(r).max(0),
            shared_tokens: shared.clamp(0, prompt_tokens),
            turn: if turn.is_valid(r) { turn.value(r) } else { 1 },
            depth: if depth.is_valid(r) { depth.value(r) } else { 1 },
        });
    }
    Ok(())
}

/// The deterministic clustering sample: the [`SAMPLE_SIZE`] requests with the smallest
/// hash of (seed, request_id), in that hash order. Bounded memory: the candidate list is pruned to
/// the current bottom-k whenever it doubles.
struct Sample {
    seed: u64,
    rows: Vec<(u64, u64, FeatureVector)>,
    threshold: u64,
    seq: u64,
}

impl Sample {
    fn new(seed: u64) -> Sample {
        Sample {
            seed,
            rows: Vec::new(),
            threshold: u64::MAX,
            seq: 0,
        }
    }

    fn offer(&mut self, row: &Row) {
        let h = hash64(hash_str(row.request_id) ^ hash64(self.seed));
        self.seq += 1;
        if h <= self.threshold {
            self.rows.push((h, self.seq, row.features()));
            if self.rows.len() >= 2 * SAMPLE_SIZE {
                self.prune();
            }
        }
    }

    fn prune(&mut self) {
        self.rows.sort_by_key(|&(h, seq, _)| (h, seq));
        self.rows.truncate(SAMPLE_SIZE);
        if self.rows.len() == SAMPLE_SIZE {
            self.threshold = self.rows[SAMPLE_SIZE - 1].0;
        }
    }

    fn finish(mut self) -> Vec<FeatureVector> {
        self.prune();
        self.rows.into_iter().map(|(_, _, f)| f).collect()
    }
}

/// Characterizes the window's `requests` in `ctx`: clusters, names and describes the workload
/// classes. Every random draw derives from `seed`.
pub async fn characterize(ctx: &SessionContext, window: &Window, seed: u64) -> Result<Workloads> {
    let mut sample = Sample::new(seed);
    scan(ctx, window, |row| sample.offer(row)).await?;
    let sample = sample.finish();
    if sample.is_empty() {
        return Ok(Workloads {
            model: Model::empty(),
            classes: Vec::new(),
            tables: stats::tables(&[], &stats::Mix::default()),
        });
    }
    let model = cluster(&sample, K_RANGE, seed)?;
    let mut acc = stats::Accumulator::new(&model);
    scan(ctx, window, |row| {
        acc.add(row, model.assign(&row.features()))
    })
    .await?;
    let (classes, mix) = acc.finish(&model);
    let tables = stats::tables(&classes, &mix);
    Ok(Workloads {
        model,
        classes,
        tables,
    })
}

/// The window's requests as a simulator trace (the real arrivals), each request tagged with its
/// class, for the search to replay. Holds the window's requests in memory, as any trace does.
pub async fn window_trace(
    ctx: &SessionContext,
    window: &Window,
    model: &Model,
    block_size: u32,
) -> Result<Trace> {
    let batches = requests_frame(ctx, window)
        .await?
        .collect()
        .await
        .context(QUERY_CONTEXT)?;
    let mut classes = Vec::new();
    let mut seen = SeenPrefixes::default();
    for batch in &batches {
        visit_batch(batch, &mut seen, &mut |row: &Row| {
            classes.push(model.assign(&row.features()))
        })?;
    }
    // The query's arrival order is kept by `from_requests` (a stable sort of sorted input).
    let mut requests = Trace::from_requests(&batches, block_size)?.into_inner();
    for (r, class) in requests.iter_mut().zip(classes) {
        r.class = class;
    }
    Trace::new(requests)
}

/// Serializable summary of the stage for manifests and reports.
#[derive(Debug, Clone, Serialize)]
pub struct Summary<'a> {
    pub k: usize,
    pub silhouettes: &'a [(usize, f64)],
    pub labels: Vec<&'a str>,
}

impl Workloads {
    pub fn summary(&self) -> Summary<'_> {
        Summary {
            k: self.model.k(),
            silhouettes: &self.model.silhouettes,
            labels: self.classes.iter().map(|c| c.label.as_str()).collect(),
        }
    }
}
