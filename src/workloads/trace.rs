//! From a `requests` table (contract columns) to the simulator's [`Trace`]: the one place Arrow rows
//! become simulated requests, so the simulator itself stays free of Arrow.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, TimestampMicrosecondType};

use crate::error::{Context, Error, Result};
use crate::hash::stable_hash64;
use crate::rng::hash64;
use crate::simulation::{Trace, TraceRequest};

/// The trace of a `requests` table (contract columns): arrivals relative to the first request,
/// outputs of at least one token (a request that produced none still cost its prefill), and the
/// prompt's reusable prefix as one hash per full KV block of `block_size` tokens. A Mooncake chain
/// (`prefix_block_hashes` of `prefix_block_tokens`-token blocks) or a shared prefix
/// (`prefix_hash` + `prefix_tokens`) both map onto the engine's blocks: engine block `i` inherits
/// the id of the source block that contains its last token, mixed with `i`.
pub fn from_requests(batches: &[RecordBatch], block_size: u32) -> Result<Trace> {
    let block = u64::from(block_size.max(1));
    let mut requests = Vec::with_capacity(batches.iter().map(RecordBatch::num_rows).sum());
    let mut first_ts = i64::MAX;
    for batch in batches {
        let col = |name: &str| {
            batch
                .column_by_name(name)
                .ok_or_else(|| Error::Simulation(format!("trace batch lacks the `{name}` column")))
        };
        let ts = col("ts")?.as_primitive::<TimestampMicrosecondType>();
        let prompt = col("prompt_tokens")?.as_primitive::<Int64Type>();
        let output = col("completion_tokens")?.as_primitive::<Int64Type>();
        let cached = col("cached_tokens")?.as_primitive::<Int64Type>();
        let session = col("session_id")?.as_string::<i32>();
        let prefix_hash = col("prefix_hash")?.as_string::<i32>();
        let prefix_tokens = col("prefix_tokens")?.as_primitive::<Int64Type>();
        let chains = col("prefix_block_hashes")?.as_list::<i32>();
        let chain_block = col("prefix_block_tokens")?.as_primitive::<Int64Type>();
        for row in 0..batch.num_rows() {
            let prompt_tokens = prompt.value(row).clamp(1, i64::from(u32::MAX)) as u32;
            let full_blocks = u64::from(prompt_tokens) / block;
            let mut hashes = Vec::new();
            if chains.is_valid(row) && chain_block.is_valid(row) && chain_block.value(row) > 0 {
                let ids = chains.value(row);
                let ids = ids.as_primitive::<Int64Type>();
                let source = chain_block.value(row) as u64;
                for i in 0..full_blocks {
                    let Some(j) = usize::try_from(((i + 1) * block - 1) / source)
                        .ok()
                        .filter(|&j| j < ids.len())
                    else {
                        break;
                    };
                    hashes.push(hash64(ids.value(j) as u64 ^ hash64(i)));
                }
            } else if prefix_hash.is_valid(row) && prefix_tokens.is_valid(row) {
                let id = stable_hash64(prefix_hash.value(row));
                let shared = (prefix_tokens.value(row).max(0) as u64 / block).min(full_blocks);
                hashes.extend((0..shared).map(|i| hash64(id ^ hash64(i))));
            }
            first_ts = first_ts.min(ts.value(row));
            requests.push((
                ts.value(row),
                TraceRequest {
                    arrival_s: 0.0,
                    prompt_tokens,
                    output_tokens: output.value(row).clamp(1, i64::from(u32::MAX)) as u32,
                    prefix_hashes: hashes,
                    cached_tokens: if cached.is_valid(row) {
                        cached.value(row).max(0) as u32
                    } else {
                        0
                    },
                    session_id: session
                        .is_valid(row)
                        .then(|| stable_hash64(session.value(row))),
                    class: 0,
                    preloaded_tokens: 0,
                },
            ));
        }
    }
    Trace::new(
        requests
            .into_iter()
            .map(|(ts, mut r)| {
                r.arrival_s = (ts - first_ts) as f64 / 1e6;
                r
            })
            .collect(),
    )
}

/// The requests whose `supply_id` is `id`.
pub fn of_supply(batches: &[RecordBatch], id: &str) -> Result<Vec<RecordBatch>> {
    batches
        .iter()
        .map(|batch| {
            let supply = batch
                .column_by_name("supply_id")
                .and_then(|c| c.as_string_opt::<i32>())
                .ok_or_else(|| {
                    Error::Internal("a conformed requests batch has no string `supply_id`".into())
                })?;
            let mask = arrow::compute::kernels::cmp::eq(
                supply,
                &arrow::array::StringArray::new_scalar(id),
            )
            .context(format!("selecting the requests of supply {id}"))?;
            arrow::compute::filter_record_batch(batch, &mask)
                .context(format!("selecting the requests of supply {id}"))
        })
        .collect()
}
