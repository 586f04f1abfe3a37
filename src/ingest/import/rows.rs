//! Column builders for the `requests` and `gpu_metrics` contracts, shared by the importers and the
//! synthetic generator. Rows are appended one at a time into Arrow builders (no per-row allocation
//! besides what the caller formats), and `finish` yields a batch with exactly the contract's schema.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Builder, Int64Builder, ListBuilder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};

use crate::contracts::{self, UTC};
use crate::error::{Context, Result};

/// One request row; `None` is a null. Fields follow the `requests` contract.
#[derive(Debug, Clone, Default)]
pub struct Request<'a> {
    pub request_id: Option<&'a str>,
    /// Microseconds since the Unix epoch, UTC.
    pub ts_us: Option<i64>,
    pub app_id: Option<&'a str>,
    pub supply_id: Option<&'a str>,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub session_id: Option<&'a str>,
    pub cached_tokens: Option<i64>,
    pub prefix_hash: Option<&'a str>,
    pub prefix_tokens: Option<i64>,
    pub prefix_block_hashes: Option<&'a [i64]>,
    pub prefix_block_tokens: Option<i64>,
    pub prompt_hash: Option<&'a str>,
    pub max_tokens: Option<i64>,
    pub temperature: Option<f64>,
    pub queue_ms: Option<f64>,
    pub ttft_ms: Option<f64>,
    pub e2e_ms: Option<f64>,
    pub status: Option<&'a str>,
    pub finish_reason: Option<&'a str>,
    pub cost_usd: Option<f64>,
    pub feedback: Option<f64>,
}

/// Builders for the `requests` contract. String columns are public so that callers can `write!`
/// into them (then `append_value("")` completes the value) and skip an intermediate `String`.
pub struct RequestRows {
    pub request_id: StringBuilder,
    pub ts: TimestampMicrosecondBuilder,
    pub app_id: StringBuilder,
    pub supply_id: StringBuilder,
    pub prompt_tokens: Int64Builder,
    pub completion_tokens: Int64Builder,
    pub session_id: StringBuilder,
    pub cached_tokens: Int64Builder,
    pub prefix_hash: StringBuilder,
    pub prefix_tokens: Int64Builder,
    pub prefix_block_hashes: ListBuilder<Int64Builder>,
    pub prefix_block_tokens: Int64Builder,
    pub prompt_hash: StringBuilder,
    pub max_tokens: Int64Builder,
    pub temperature: Float64Builder,
    pub queue_ms: Float64Builder,
    pub ttft_ms: Float64Builder,
    pub e2e_ms: Float64Builder,
    pub status: StringBuilder,
    pub finish_reason: StringBuilder,
    pub cost_usd: Float64Builder,
    pub feedback: Float64Builder,
    len: usize,
}

impl Default for RequestRows {
    fn default() -> Self {
        Self::with_capacity(1024)
    }
}

fn opt_str(b: &mut StringBuilder, v: Option<&str>) {
    match v {
        Some(v) => b.append_value(v),
        None => b.append_null(),
    }
}

impl RequestRows {
    pub fn with_capacity(rows: usize) -> Self {
        let s = || StringBuilder::with_capacity(rows, rows * 8);
        let i = || Int64Builder::with_capacity(rows);
        let f = || Float64Builder::with_capacity(rows);
        Self {
            request_id: StringBuilder::with_capacity(rows, rows * 24),
            ts: TimestampMicrosecondBuilder::with_capacity(rows).with_timezone(UTC),
            app_id: s(),
            supply_id: s(),
            prompt_tokens: i(),
            completion_tokens: i(),
            session_id: s(),
            cached_tokens: i(),
            prefix_hash: s(),
            prefix_tokens: i(),
            prefix_block_hashes: ListBuilder::with_capacity(Int64Builder::new(), rows),
            prefix_block_tokens: i(),
            prompt_hash: s(),
            max_tokens: i(),
            temperature: f(),
            queue_ms: f(),
            ttft_ms: f(),
            e2e_ms: f(),
            status: s(),
            finish_reason: s(),
            cost_usd: f(),
            feedback: f(),
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends every column of one row.
    pub fn push(&mut self, r: &Request) {
        opt_str(&mut self.request_id, r.request_id);
        self.push_after_id(r);
    }

    /// Appends every column but `request_id`, which the caller has just completed in
    /// [`RequestRows::request_id`].
    pub fn push_after_id(&mut self, r: &Request) {
        self.ts.append_option(r.ts_us);
        opt_str(&mut self.app_id, r.app_id);
        opt_str(&mut self.supply_id, r.supply_id);
        self.prompt_tokens.append_option(r.prompt_tokens);
        self.completion_tokens.append_option(r.completion_tokens);
        opt_str(&mut self.session_id, r.session_id);
        self.cached_tokens.append_option(r.cached_tokens);
        opt_str(&mut self.prefix_hash, r.prefix_hash);
        self.prefix_tokens.append_option(r.prefix_tokens);
        match r.prefix_block_hashes {
            Some(ids) => {
                self.prefix_block_hashes.values().append_slice(ids);
                self.prefix_block_hashes.append(true);
            }
            None => self.prefix_block_hashes.append_null(),
        }
        self.prefix_block_tokens
            .append_option(r.prefix_block_tokens);
        opt_str(&mut self.prompt_hash, r.prompt_hash);
        self.max_tokens.append_option(r.max_tokens);
        self.temperature.append_option(r.temperature);
        self.queue_ms.append_option(r.queue_ms);
        self.ttft_ms.append_option(r.ttft_ms);
        self.e2e_ms.append_option(r.e2e_ms);
        opt_str(&mut self.status, r.status);
        opt_str(&mut self.finish_reason, r.finish_reason);
        self.cost_usd.append_option(r.cost_usd);
        self.feedback.append_option(r.feedback);
        self.len += 1;
    }

    /// Builds the batch (contract schema) and resets the builders.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        self.len = 0;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.request_id.finish()),
            Arc::new(self.ts.finish()),
            Arc::new(self.app_id.finish()),
            Arc::new(self.supply_id.finish()),
            Arc::new(self.prompt_tokens.finish()),
            Arc::new(self.completion_tokens.finish()),
            Arc::new(self.session_id.finish()),
            Arc::new(self.cached_tokens.finish()),
            Arc::new(self.prefix_hash.finish()),
            Arc::new(self.prefix_tokens.finish()),
            Arc::new(self.prefix_block_hashes.finish()),
            Arc::new(self.prefix_block_tokens.finish()),
            Arc::new(self.prompt_hash.finish()),
            Arc::new(self.max_tokens.finish()),
            Arc::new(self.temperature.finish()),
            Arc::new(self.queue_ms.finish()),
            Arc::new(self.ttft_ms.finish()),
            Arc::new(self.e2e_ms.finish()),
            Arc::new(self.status.finish()),
            Arc::new(self.finish_reason.finish()),
            Arc::new(self.cost_usd.finish()),
            Arc::new(self.feedback.finish()),
        ];
        RecordBatch::try_new(contracts::requests().schema, columns)
            .context("building a requests batch")
    }
}

/// One telemetry window; fields follow the `gpu_metrics` contract.
#[derive(Debug, Clone, Default)]
pub struct GpuWindow<'a> {
    pub ts_us: Option<i64>,
    pub supply_id: Option<&'a str>,
    pub instance_id: Option<&'a str>,
    pub num_running: Option<f64>,
    pub num_waiting: Option<f64>,
    pub kv_cache_usage: Option<f64>,
    pub gpu_util: Option<f64>,
    pub window_s: Option<f64>,
    pub requests_per_s: Option<f64>,
    pub prompt_tokens_per_s: Option<f64>,
    pub generation_tokens_per_s: Option<f64>,
    pub mean_itl_ms: Option<f64>,
    pub mean_queue_ms: Option<f64>,
    pub mem_used_bytes: Option<i64>,
    pub power_w: Option<f64>,
    pub preemptions: Option<f64>,
    pub mean_ttft_ms: Option<f64>,
    pub p95_ttft_ms: Option<f64>,
}

/// The `gpu_metrics` contract's float columns, in contract order.
const GPU_FLOATS: usize = 14;

/// Builders for the `gpu_metrics` contract.
pub struct GpuRows {
    ts: TimestampMicrosecondBuilder,
    supply_id: StringBuilder,
    instance_id: StringBuilder,
    f: [Float64Builder; GPU_FLOATS],
    mem_used_bytes: Int64Builder,
    len: usize,
}

impl Default for GpuRows {
    fn default() -> Self {
        Self::with_capacity(1024)
    }
}

impl GpuRows {
    pub fn with_capacity(rows: usize) -> Self {
        Self {
            ts: TimestampMicrosecondBuilder::with_capacity(rows).with_timezone(UTC),
            supply_id: StringBuilder::with_capacity(rows, rows * 16),
            instance_id: StringBuilder::with_capacity(rows, rows * 16),
            f: std::array::from_fn(|_| Float64Builder::with_capacity(rows)),
            mem_used_bytes: Int64Builder::with_capacity(rows),
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, w: &GpuWindow) {
        self.ts.append_option(w.ts_us);
        opt_str(&mut self.supply_id, w.supply_id);
        opt_str(&mut self.instance_id, w.instance_id);
        let values = [
            w.num_running,
            w.num_waiting,
            w.kv_cache_usage,
            w.gpu_util,
            w.window_s,
            w.requests_per_s,
            w.prompt_tokens_per_s,
            w.generation_tokens_per_s,
            w.mean_itl_ms,
            w.mean_queue_ms,
            w.power_w,
            w.preemptions,
            w.mean_ttft_ms,
            w.p95_ttft_ms,
        ];
        for (builder, value) in self.f.iter_mut().zip(values) {
            builder.append_option(value);
        }
        self.mem_used_bytes.append_option(w.mem_used_bytes);
        self.len += 1;
    }

    pub fn finish(&mut self) -> Result<RecordBatch> {
        self.len = 0;
        let schema = contracts::gpu_metrics().schema;
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.ts.finish()),
            Arc::new(self.supply_id.finish()),
            Arc::new(self.instance_id.finish()),
        ];
        columns.extend(self.f.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        // The one integer column sits among the floats.
        let mem = schema.index_of("mem_used_bytes").expect("contract column");
        columns.insert(mem, Arc::new(self.mem_used_bytes.finish()));
        RecordBatch::try_new(schema, columns).context("building a gpu_metrics batch")
    }
}
