//! `gpu_metrics` rows from the ground-truth engine's windows (one per replica and minute), as a
//! vLLM Prometheus and DCGM exporter would record them.

use std::fmt::Write as _;

use arrow::array::RecordBatch;
use chrono::NaiveDate;

use super::arrivals::day_start_us;
use super::engine::{EngineWindow, SupplyTruth};
use super::{ITL_TOKEN_NOISE, WINDOW_S};
use crate::error::Result;
use crate::ingest::import::rows::{GpuRows, GpuWindow};
use crate::rng::Xoshiro256;

pub(super) fn gpu_rows(
    rng: &mut Xoshiro256,
    s: &SupplyTruth,
    date: NaiveDate,
    w: &[EngineWindow],
) -> Result<RecordBatch> {
    let mut rows = GpuRows::with_capacity(w.len());
    let base = day_start_us(date);
    let mut instance = String::new();
    for r in 0..s.replicas as usize {
        instance.clear();
        let _ = write!(instance, "{}-{r}", s.name);
        for (minute, e) in w[r * 1440..(r + 1) * 1440].iter().enumerate() {
            let count = e.arrivals.max(1) as f64;
            let o = e.output_sum / count;
            let p_all = e.prompt_sum / count;
            let tokens = e.completions_per_s * o * WINDOW_S as f64;
            let itl = (e.n > 0.0 && tokens >= 1.0)
                .then(|| e.itl_ms * rng.unit_noise(ITL_TOKEN_NOISE / tokens.sqrt()));
            rows.push(&GpuWindow {
                ts_us: Some(base + minute as i64 * WINDOW_S * 1_000_000),
                supply_id: Some(s.name),
                instance_id: Some(&instance),
                num_running: Some(e.n),
                num_waiting: Some(e.waiting),
                kv_cache_usage: Some(e.kv),
                gpu_util: Some(e.util),
                window_s: Some(WINDOW_S as f64),
                requests_per_s: Some(e.arrivals as f64 / WINDOW_S as f64),
                prompt_tokens_per_s: Some(e.completions_per_s * p_all),
                generation_tokens_per_s: Some(e.completions_per_s * o),
                mean_itl_ms: itl,
                mean_queue_ms: Some(e.queue_ms),
                mem_used_bytes: Some((0.9 * s.gpu_memory_bytes * s.tp as f64) as i64),
                power_w: Some(s.tp as f64 * (s.gpu_idle_w + (s.gpu_tdp_w - s.gpu_idle_w) * e.util)),
                preemptions: Some(e.preemptions),
                // The engine windows do not track first tokens; `requests` has each TTFT.
                mean_ttft_ms: None,
                p95_ttft_ms: None,
            });
        }
    }
    rows.finish()
}
