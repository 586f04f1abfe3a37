//! Workload characterization (issue 5): finds the request shapes in the window, names them and
//! describes each (shares, lengths, burstiness, diurnal profile, prefix sharing, session depth) for
//! the simulator and the report.
//!
//! Two streaming passes over `sql/workloads/requests.sql` (over the ingested window, in memory), one
//! batch at a time per partition of the plan, the partitions in parallel and in any order (neither
//! pass depends on it, so the query's sort is skipped; each partition folds its own state and the
//! states merge into the same result for any split):
//! 1. collect the window's prefix ids (the shared ones are those that repeat), and keep a
//!    deterministic sample of at most [`SAMPLE_SIZE`] requests (the smallest hashes of (seed,
//!    request_id), independent of batch boundaries and thread count); its [`FeatureVector`]s are
//!    clustered by [`gmm::cluster`]: a full-covariance Gaussian mixture with the number of
//!    components chosen by BIC in [`K_RANGE`], components grouped into classes by the modes of the
//!    density (see [`gmm`] for why not k-means);
//! 2. every request is assigned to its class and folded into per-class accumulators; only its
//!    arrival time is kept (to measure inter-arrival times in order). [`Workloads::traffic`]
//!    assigns the same classes (same model, same window-wide shared prefixes) to a supply's
//!    requests for the search.
//!
//! **Shared prefix.** A request's shared-prefix tokens are the largest of: its `cached_tokens`; its
//! leading `prefix_block_hashes` blocks that at least one other request of the window also carries
//! (Mooncake chains; × block size); its `prefix_tokens` when another request of the window has the
//! same `prefix_hash` — capped at its prompt. "Carried by another request" (not "seen earlier")
//! keeps the feature symmetric: the first request of a popular document looks like the others, so
//! it lands in the same class. The per-class prefix-sharing ratio is therefore an upper bound on
//! what a prefix cache saves (one prefill per distinct prefix is unavoidable). Sources without any
//! of these columns (Azure) get 0. Memory: one entry per prefix id carried, while pass 1 sorts
//! them; then one per shared id.
//!
//! **Session feature.** The fourth feature is the depth (number of requests) of the request's
//! session rather than its turn index: a class should be a kind of traffic, and the turn index
//! splits one conversation into a "first turn" and a "later turns" class (observed on the generated
//! chat app), whereas every turn of a session shares its depth.

pub mod gmm;
mod kmeans;
pub mod naming;
pub mod resample;
mod stats;
pub mod trace;
pub mod vector;

use std::ops::RangeInclusive;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{DataFrame, SessionContext};
use futures::StreamExt;
use serde::Serialize;

use crate::config::Window;
use crate::error::{Context, Error, Result};
use crate::hash::{IdSet, repeated, stable_hash64};
use crate::rng::hash64;
use crate::simulation::trace::Trace;

pub use gmm::{Model, cluster};
pub use stats::{AppShare, Burstiness, Diurnal, Mix, MixCell, Percentiles, WorkloadClass};
pub use vector::{FeatureVector, adjusted_rand_index};

/// Most requests clustered to choose k and the centroids.
pub const SAMPLE_SIZE: usize = 100_000;
/// Candidate numbers of mixture components (the classes are their modes: at most that many).
pub const K_RANGE: RangeInclusive<usize> = 2..=10;

/// What the stage hands on: the model (to classify other traffic), typed classes, and the class
/// mix per app, supply and hour.
#[derive(Debug, Clone)]
pub struct Workloads {
    pub model: Model,
    pub classes: Vec<WorkloadClass>,
    pub mix: Mix,
    /// The window-wide prefix counts the classes were assigned with: [`Workloads::traffic`] reuses
    /// them, so a request's class does not depend on which supply's traffic it is read with.
    counts: Arc<PrefixCounts>,
}

/// One request as the passes see it, borrowed from its batch.
pub(crate) struct Row<'a> {
    pub request_id: &'a str,
    pub ts: i64,
    pub app_id: &'a str,
    pub supply_id: &'a str,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cached_tokens: i64,
    /// (hash of `prefix_hash`, `prefix_tokens`).
    pub prefix: Option<(u64, i64)>,
    /// (`prefix_block_hashes`, `prefix_block_tokens`).
    pub chain: Option<(&'a [i64], i64)>,
    /// Requests in the request's session (1 without a session).
    pub depth: i64,
}

/// The prefix ids (Mooncake block ids, hashes of `prefix_hash`) that at least two requests of the
/// window carry: only "shared or not" matters.
#[derive(Debug, Clone, Default)]
pub(crate) struct PrefixCounts {
    chains: IdSet<i64>,
    prefixes: IdSet<u64>,
}

/// Every prefix id of the requests of one part of the window, one entry per request carrying it.
#[derive(Debug, Default)]
struct PrefixIds {
    chains: Vec<i64>,
    prefixes: Vec<u64>,
}

impl PrefixIds {
    fn add(&mut self, row: &Row) {
        if let Some((ids, _)) = row.chain {
            self.chains.extend_from_slice(ids);
        }
        if let Some((h, _)) = row.prefix {
            self.prefixes.push(h);
        }
    }
}

impl PrefixCounts {
    /// The shared ids of the whole window from the ids of its parts: those that repeat.
    fn of(parts: Vec<PrefixIds>) -> PrefixCounts {
        let (chains, prefixes): (Vec<_>, Vec<_>) =
            parts.into_iter().map(|p| (p.chains, p.prefixes)).unzip();
        PrefixCounts {
            chains: repeated(chains.concat()),
            prefixes: repeated(prefixes.concat()),
        }
    }

    /// Prompt tokens of `row` in a shared prefix (see the module doc), in 0..=prompt tokens.
    pub fn shared_tokens(&self, row: &Row) -> i64 {
        let mut shared = row.cached_tokens;
        if let Some((ids, block)) = row.chain {
            let leading = ids.iter().take_while(|id| self.chains.contains(id)).count() as i64;
            shared = shared.max(leading.saturating_mul(block));
        }
        if let Some((h, tokens)) = row.prefix
            && self.prefixes.contains(&h)
        {
            shared = shared.max(tokens);
        }
        shared.clamp(0, row.prompt_tokens)
    }

    pub fn features(&self, row: &Row) -> FeatureVector {
        let share = if row.prompt_tokens > 0 {
            self.shared_tokens(row) as f64 / row.prompt_tokens as f64
        } else {
            0.0
        };
        FeatureVector::new(row.prompt_tokens, row.completion_tokens, share, row.depth)
    }
}

const QUERY: crate::sql::Query = crate::sql::WORKLOAD_REQUESTS;

/// The per-request query with the window bound.
async fn requests_frame(ctx: &SessionContext, window: &Window) -> Result<DataFrame> {
    QUERY
        .frame(ctx, crate::sql::window_params(window.start, window.end))
        .await
}

/// Folds every request of the window into a state, one state per partition of the query's plan,
/// each partition on its own task (in parallel), and returns the states. One batch is in memory at
/// a time per partition. The query's final sort (by arrival) is skipped: nothing in the
/// characterization depends on the order (the sample keeps the smallest hashes; the accumulators
/// sort what they need), so the states merge into the same result however the rows were split.
async fn scan<S, V>(
    ctx: &SessionContext,
    window: &Window,
    init: impl Fn() -> S,
    visit: V,
) -> Result<Vec<S>>
where
    S: Send + 'static,
    V: Fn(&mut S, &Row) + Send + Sync + 'static,
{
    let (state, plan) = requests_frame(ctx, window).await?.into_parts();
    let plan = match plan {
        LogicalPlan::Sort(sort) => Arc::unwrap_or_clone(sort.input),
        plan => plan,
    };
    let streams = DataFrame::new(state, plan)
        .execute_stream_partitioned()
        .await
        .context(QUERY.path)?;
    let visit = Arc::new(visit);
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            let (visit, mut folded) = (visit.clone(), init());
            tokio::spawn(async move {
                while let Some(batch) = stream.next().await {
                    visit_batch(&batch.context(QUERY.path)?, &mut |row: &Row| {
                        visit(&mut folded, row)
                    })?;
                }
                Ok::<S, Error>(folded)
            })
        })
        .collect();
    let mut states = Vec::with_capacity(tasks.len());
    for task in tasks {
        states.push(
            task.await
                .map_err(|e| Error::Internal(format!("workloads scan: {e}")))??,
        );
    }
    Ok(states)
}

/// Calls `visit` for every row of one batch of the query; a column of an unexpected type is an
/// error, not a panic.
fn visit_batch(batch: &RecordBatch, visit: &mut impl FnMut(&Row)) -> Result<()> {
    let missing = |name: &str, kind: &str| {
        Error::Internal(format!(
            "requests stream: column `{name}` is missing or not {kind}"
        ))
    };
    let col = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| missing(name, "present"))
    };
    let int = |name: &str| {
        col(name)?
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| missing(name, "Int64"))
    };
    let text = |name: &str| {
        col(name)?
            .as_string_opt::<i32>()
            .ok_or_else(|| missing(name, "Utf8"))
    };
    let id = text("request_id")?;
    let ts = col("ts")?
        .as_primitive_opt::<TimestampMicrosecondType>()
        .ok_or_else(|| missing("ts", "a microsecond timestamp"))?;
    let app = text("app_id")?;
    let supply = text("supply_id")?;
    let prompt = int("prompt_tokens")?;
    let completion = int("completion_tokens")?;
    let cached = int("cached_tokens")?;
    let prefix_hash = text("prefix_hash")?;
    let prefix_tokens = int("prefix_tokens")?;
    let chains = col("prefix_block_hashes")?
        .as_list_opt::<i32>()
        .ok_or_else(|| missing("prefix_block_hashes", "a list"))?;
    let chain_ids = chains
        .values()
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| missing("prefix_block_hashes", "a list of Int64"))?
        .values();
    let offsets = chains.value_offsets();
    let chain_block = int("prefix_block_tokens")?;
    let depth = int("depth")?;
    let int_or = |a: &arrow::array::Int64Array, r: usize, default: i64| {
        if a.is_valid(r) { a.value(r) } else { default }
    };
    for r in 0..batch.num_rows() {
        let chain = (chains.is_valid(r) && chain_block.is_valid(r) && chain_block.value(r) > 0)
            .then(|| {
                let (from, to) = (offsets[r].max(0) as usize, offsets[r + 1].max(0) as usize);
                (
                    chain_ids.get(from..to).unwrap_or_default(),
                    chain_block.value(r),
                )
            });
        visit(&Row {
            request_id: id.value(r),
            ts: ts.value(r),
            app_id: app.value(r),
            supply_id: supply.value(r),
            prompt_tokens: prompt.value(r).max(0),
            completion_tokens: completion.value(r).max(0),
            cached_tokens: int_or(cached, r, 0),
            prefix: (prefix_hash.is_valid(r) && prefix_tokens.is_valid(r))
                .then(|| (stable_hash64(prefix_hash.value(r)), prefix_tokens.value(r))),
            chain,
            depth: int_or(depth, r, 1).max(1),
        });
    }
    Ok(())
}

/// What a sampled request keeps until the prefix counts are complete.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct SampledRow {
    prompt_tokens: i64,
    completion_tokens: i64,
    cached_tokens: i64,
    prefix: Option<(u64, i64)>,
    chain: Option<(Vec<i64>, i64)>,
    depth: i64,
}

/// The deterministic clustering sample: the [`SAMPLE_SIZE`] requests with the smallest hash of
/// (seed, request_id), in that hash order. Bounded memory: the candidate list is pruned to the
/// current bottom-k whenever it doubles. Samples of parts of the window merge into the sample of
/// the whole.
struct Sample {
    seed: u64,
    rows: Vec<(u64, SampledRow)>,
    threshold: u64,
}

impl Sample {
    fn new(seed: u64) -> Sample {
        Sample {
            seed,
            rows: Vec::new(),
            threshold: u64::MAX,
        }
    }

    fn offer(&mut self, row: &Row) {
        let h = hash64(stable_hash64(row.request_id) ^ hash64(self.seed));
        if h <= self.threshold {
            let kept = SampledRow {
                prompt_tokens: row.prompt_tokens,
                completion_tokens: row.completion_tokens,
                cached_tokens: row.cached_tokens,
                prefix: row.prefix,
                chain: row.chain.map(|(ids, block)| (ids.to_vec(), block)),
                depth: row.depth,
            };
            self.rows.push((h, kept));
            if self.rows.len() >= 2 * SAMPLE_SIZE {
                self.prune();
            }
        }
    }

    fn merge(&mut self, other: Sample) {
        self.rows.extend(other.rows);
        self.prune();
    }

    /// Keeps the bottom [`SAMPLE_SIZE`]; equal hashes (a 64-bit collision) are ordered by the
    /// row's content, so the sample does not depend on the order rows arrived in.
    fn prune(&mut self) {
        self.rows.sort_unstable();
        self.rows.truncate(SAMPLE_SIZE);
        if self.rows.len() == SAMPLE_SIZE {
            self.threshold = self.rows[SAMPLE_SIZE - 1].0;
        }
    }

    fn features(mut self, counts: &PrefixCounts) -> Vec<FeatureVector> {
        self.prune();
        self.rows
            .iter()
            .map(|(_, s)| {
                counts.features(&Row {
                    request_id: "",
                    ts: 0,
                    app_id: "",
                    supply_id: "",
                    prompt_tokens: s.prompt_tokens,
                    completion_tokens: s.completion_tokens,
                    cached_tokens: s.cached_tokens,
                    prefix: s.prefix,
                    chain: s.chain.as_ref().map(|(ids, b)| (ids.as_slice(), *b)),
                    depth: s.depth,
                })
            })
            .collect()
    }
}

/// Characterizes the window's `requests` in `ctx`: clusters, names and describes the workload
/// classes, with k chosen automatically in [`K_RANGE`]. Every random draw derives from `seed`.
pub async fn characterize(ctx: &SessionContext, window: &Window, seed: u64) -> Result<Workloads> {
    characterize_with(ctx, window, seed, K_RANGE).await
}

/// [`characterize`] with the candidate numbers of mixture components given (e.g. `4..=4` to fix
/// it; components with one mode still form one class).
pub async fn characterize_with(
    ctx: &SessionContext,
    window: &Window,
    seed: u64,
    k_range: RangeInclusive<usize>,
) -> Result<Workloads> {
    let parts = scan(
        ctx,
        window,
        || (PrefixIds::default(), Sample::new(seed)),
        |(ids, sample), row| {
            ids.add(row);
            sample.offer(row);
        },
    )
    .await?;
    let mut sample = Sample::new(seed);
    let mut ids = Vec::with_capacity(parts.len());
    for (part_ids, part_sample) in parts {
        ids.push(part_ids);
        sample.merge(part_sample);
    }
    let counts = Arc::new(PrefixCounts::of(ids));
    let sample = sample.features(&counts);
    if sample.is_empty() {
        return Ok(Workloads {
            model: Model::empty(),
            classes: Vec::new(),
            mix: Mix::default(),
            counts,
        });
    }
    let model = Arc::new(cluster(&sample, k_range, seed)?);
    let parts = scan(ctx, window, || stats::Accumulator::new(&model), {
        let (model, counts) = (model.clone(), counts.clone());
        move |acc: &mut stats::Accumulator, row| {
            let shared = counts.shared_tokens(row);
            acc.add(row, shared, model.assign(&counts.features(row)));
        }
    })
    .await?;
    let mut acc = stats::Accumulator::new(&model);
    for part in parts {
        acc.merge(part);
    }
    let model = Arc::unwrap_or_clone(model);
    let (classes, mix) = acc.finish(&model);
    Ok(Workloads {
        model,
        classes,
        mix,
        counts,
    })
}

/// The window's requests (of one supply, or all), each with its workload class, in arrival order:
/// what the search replays. Holds the requests in memory, as any trace does.
#[derive(Debug, Clone)]
pub struct Traffic {
    pub batches: Vec<RecordBatch>,
    /// Class of each request, in batch order.
    pub classes: Vec<u16>,
    /// Seconds from the window start to the first request.
    pub offset_s: f64,
}

impl Traffic {
    pub fn len(&self) -> usize {
        self.classes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    /// The requests as a simulator trace for an engine with `block_size`-token KV blocks (prefix
    /// hashes depend on it), each tagged with its class. Request `i` of the trace is request `i` of
    /// the batches.
    pub fn trace(&self, block_size: u32) -> Result<Trace> {
        // The query's arrival order is kept by `from_requests` (a stable sort of sorted input).
        let mut requests = trace::from_requests(&self.batches, block_size)?.into_inner();
        for (r, class) in requests.iter_mut().zip(&self.classes) {
            r.class = *class;
        }
        Trace::new(requests)
    }

    /// Seconds from the window start of each request, in batch order.
    pub fn clock_s(&self) -> Result<Vec<f64>> {
        let ts = self.timestamps()?;
        let first = ts.iter().copied().min().unwrap_or(0);
        Ok(ts
            .iter()
            .map(|t| self.offset_s + (t - first) as f64 / 1e6)
            .collect())
    }

    /// The requests whose [`Traffic::clock_s`] `keep` accepts, classes and clock kept.
    pub fn filter(&self, keep: impl Fn(f64) -> bool) -> Result<Traffic> {
        let clock = self.clock_s()?;
        let mut at = 0;
        let mut batches = Vec::new();
        let mut classes = Vec::new();
        let mut offset_s = None;
        for b in &self.batches {
            let mask: arrow::array::BooleanArray = clock[at..at + b.num_rows()]
                .iter()
                .map(|c| Some(keep(*c)))
                .collect();
            for (i, kept) in mask.iter().enumerate() {
                if kept == Some(true) {
                    offset_s.get_or_insert(clock[at + i]);
                    classes.push(self.classes[at + i]);
                }
            }
            at += b.num_rows();
            batches.push(
                arrow::compute::filter_record_batch(b, &mask).context("filtering the traffic")?,
            );
        }
        Ok(Traffic {
            batches,
            classes,
            offset_s: offset_s.unwrap_or(0.0),
        })
    }

    fn timestamps(&self) -> Result<Vec<i64>> {
        let mut out = Vec::with_capacity(self.len());
        for b in &self.batches {
            let ts = b
                .column_by_name("ts")
                .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>())
                .ok_or_else(|| Error::Internal(format!("{} lacks ts", QUERY.path)))?;
            out.extend(ts.values().iter().copied());
        }
        Ok(out)
    }
}

impl Workloads {
    /// The window's requests (of `supply_id` only, when given), each with the class the
    /// characterization assigned it: same model, same window-wide prefix counts and session depths.
    pub async fn traffic(
        &self,
        ctx: &SessionContext,
        window: &Window,
        supply_id: Option<&str>,
    ) -> Result<Traffic> {
        let mut frame = requests_frame(ctx, window).await?;
        if let Some(id) = supply_id {
            // On the requests side of the query's session join only: depths stay window-wide.
            frame = frame
                .filter(datafusion::prelude::col("supply_id").eq(datafusion::prelude::lit(id)))
                .context(QUERY.path)?;
        }
        let batches = frame.collect().await.context(QUERY.path)?;
        let mut first_ts = i64::MAX;
        let mut classes = Vec::new();
        for batch in &batches {
            visit_batch(batch, &mut |row: &Row| {
                first_ts = first_ts.min(row.ts);
                classes.push(self.model.assign(&self.counts.features(row)));
            })?;
        }
        let offset_s = if classes.is_empty() {
            0.0
        } else {
            (first_ts - window.start.timestamp_micros()) as f64 / 1e6
        };
        Ok(Traffic {
            batches,
            classes,
            offset_s,
        })
    }

    /// The stage in brief, for manifests and reports.
    pub fn summary(&self) -> Summary<'_> {
        Summary {
            k: self.model.k(),
            bic: &self.model.bic,
            labels: self.classes.iter().map(|c| c.label.as_str()).collect(),
        }
    }

    /// The window's requests as a simulator trace (the real arrivals), each tagged with its class.
    pub async fn window_trace(
        &self,
        ctx: &SessionContext,
        window: &Window,
        block_size: u32,
    ) -> Result<Trace> {
        self.traffic(ctx, window, None).await?.trace(block_size)
    }
}

/// Serializable summary of the stage for manifests and reports.
#[derive(Debug, Clone, Serialize)]
pub struct Summary<'a> {
    pub k: usize,
    /// BIC of every k tried (the lowest was kept).
    pub bic: &'a [(usize, f64)],
    pub labels: Vec<&'a str>,
}
