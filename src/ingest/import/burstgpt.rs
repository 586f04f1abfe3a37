//! vLLM replay of BurstGPT arrivals (third-party logs, Llama-3.2-1B on one 24 GiB GPU). One run per
//! replay scale S has three files that share the `time.perf_counter()` clock (seconds, arbitrary
//! origin): `vllm_log/vllm_log_scale<S>_*.csv` (engine stats every ≈0.5 s),
//! `gpu_log/gpu_log_scale<S>_*.json` (NVML samples every ≈0.5 s) and
//! `detail_log/detail_log_scale<S>_*.json` (one record per completed request). INPUT is either the
//! log directory together with `--scale S`, or one `detail_log` file whose siblings are found by name.
//!
//! Clock: t0 is the run's earliest time across the three logs; a time t maps to start + (t − t0),
//! with start defaulting to 2024-10-27T00:00:00Z (the logs' commit date; the real date is unknown).
//!
//! `requests` (from detail_log; all records are completed requests, so `status` = `ok`):
//! - arrival = `record_time` − `total_chunk_time` (the record is written at completion);
//! - `prompt_tokens` = `in_len`; `ttft_ms` = `first_chunk_time` × 1000; `e2e_ms` =
//!   `total_chunk_time` × 1000; `max_tokens` = `sampled_out_len`;
//! - **`out_len` is characters of returned text, not tokens.** `completion_tokens` is derived from
//!   the run's own engine statistics rather than a guessed ratio: the vllm_log's
//!   `generation_throughput` (tokens/s over the interval since the previous stats line) integrated
//!   over the run, Σ thrᵢ·(tᵢ − tᵢ₋₁) (the first line uses the following interval), is the number of
//!   tokens the engine generated. The measured characters per token is Σ out_len ÷ that, and
//!   `completion_tokens` = round(out_len ÷ ratio). The ratio is reported in the import notes, with the
//!   same integration applied to `prompt_throughput` as a cross-check against Σ in_len. (SOURCE.md
//!   warns out_len may include prompt text; the ratio then absorbs it on average.)
//! - request ids `burstgpt-s<S>-<event_id>`; defaults app `burstgpt`, supply `burstgpt-llama3.2-1b`.
//!
//! `gpu_metrics` (one row per vllm_log line, instance `burstgpt-gpu0`): `ts` = the stats line's time,
//! `window_s` = the interval since the previous line, `num_running`, `num_waiting` = `num_pending`,
//! `kv_cache_usage` = `gpu_kvcache_usage` / 100 (the log is in **percent**),
//! `prompt_tokens_per_s` / `generation_tokens_per_s` = the throughputs, `requests_per_s` = arrivals in
//! the interval ÷ its length, and from the nearest-in-time gpu_log sample `gpu_util` =
//! `GPU_utilization` / 100 and `mem_used_bytes` = `GPU_used_mem` MiB × 2²⁰. Power, ITL, queue time and
//! preemptions are not recorded: null (`num_swapped` is not a preemption count).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::rows::{GpuRows, GpuWindow, Request, RequestRows};
use super::{Csv, ImportOptions, Imported, default_start, read_text};
use crate::error::{Context, Error, Result};

pub const DEFAULT_APP: &str = "burstgpt";
pub const DEFAULT_SUPPLY: &str = "burstgpt-llama3.2-1b";
pub const INSTANCE: &str = "burstgpt-gpu0";

#[derive(Deserialize)]
struct Detail {
    event_id: i64,
    out_len: f64,
    in_len: i64,
    sampled_out_len: i64,
    first_chunk_time: f64,
    total_chunk_time: f64,
    record_time: f64,
}

#[derive(Deserialize)]
struct GpuSample {
    record_time: f64,
    #[serde(rename = "GPU_used_mem")]
    used_mem_mib: f64,
    #[serde(rename = "GPU_utilization")]
    utilization_pct: f64,
}

struct StatsLine {
    t: f64,
    prompt_tps: f64,
    gen_tps: f64,
    running: f64,
    pending: f64,
    kv_pct: f64,
}

/// The three files of one run.
#[derive(Debug, Clone)]
pub struct RunFiles {
    pub scale: String,
    pub detail: PathBuf,
    pub vllm: PathBuf,
    pub gpu: PathBuf,
}

/// Finds the run's files from a detail_log file, or from the log directory and a scale.
pub fn locate(input: &Path, scale: Option<u32>) -> Result<RunFiles> {
    let not_found = |message: String| Error::Setting {
        key: "INPUT".into(),
        message,
    };
    let (root, suffix) = if input.is_dir() {
        let scale = scale.ok_or_else(|| {
            not_found(format!(
                "{} is a directory: give --scale S (e.g. 500) or a detail_log file",
                input.display()
            ))
        })?;
        let prefix = format!("detail_log_scale{scale}_");
        let dir = input.join("detail_log");
        let entries = std::fs::read_dir(&dir).map_err(|source| Error::Io {
            path: dir.clone(),
            source,
        })?;
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with(&prefix) && n.ends_with(".json"))
            .collect();
        names.sort();
        let name = names
            .first()
            .ok_or_else(|| not_found(format!("no {prefix}*.json in {}", dir.display())))?;
        (input.to_path_buf(), name["detail_log_".len()..].to_string())
    } else {
        let name = input
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let suffix = name.strip_prefix("detail_log_").ok_or_else(|| {
            not_found(format!(
                "{} is not a detail_log_*.json file",
                input.display()
            ))
        })?;
        let root = input
            .parent()
            .and_then(Path::parent)
            .unwrap_or(Path::new("."));
        (root.to_path_buf(), suffix.to_string())
    };
    let stem = suffix.strip_suffix(".json").unwrap_or(&suffix).to_string();
    let scale = stem
        .strip_prefix("scale")
        .and_then(|s| s.split('_').next())
        .unwrap_or(&stem)
        .to_string();
    Ok(RunFiles {
        scale,
        detail: root
            .join("detail_log")
            .join(format!("detail_log_{stem}.json")),
        vllm: root.join("vllm_log").join(format!("vllm_log_{stem}.csv")),
        gpu: root.join("gpu_log").join(format!("gpu_log_{stem}.json")),
    })
}

fn read_keyed<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>> {
    let map: HashMap<String, T> = serde_json::from_str(&read_text(path)?).context(format!(
        "{}: reading a JSON object of records",
        path.display()
    ))?;
    Ok(map.into_values().collect())
}

fn read_stats(path: &Path) -> Result<Vec<StatsLine>> {
    let csv = Csv::read(path)?;
    let c = [
        "timestamp",
        "prompt_throughput",
        "generation_throughput",
        "num_running",
        "num_pending",
        "gpu_kvcache_usage",
    ]
    .map(|n| csv.column(n));
    let [t, p, g, r, w, kv] = c;
    let (t, p, g, r, w, kv) = (t?, p?, g?, r?, w?, kv?);
    let mut lines = csv
        .rows
        .iter()
        .map(|row| {
            Ok(StatsLine {
                t: csv.parse(row, t)?,
                prompt_tps: csv.parse(row, p)?,
                gen_tps: csv.parse(row, g)?,
                running: csv.parse(row, r)?,
                pending: csv.parse(row, w)?,
                kv_pct: csv.parse(row, kv)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    lines.sort_by(|a, b| a.t.total_cmp(&b.t));
    Ok(lines)
}

/// Interval lengths of the stats lines: tᵢ − tᵢ₋₁, the first taking the following interval.
fn intervals(stats: &[StatsLine]) -> Vec<f64> {
    (0..stats.len())
        .map(|i| match i {
            0 if stats.len() > 1 => stats[1].t - stats[0].t,
            0 => 0.0,
            _ => stats[i].t - stats[i - 1].t,
        })
        .collect()
}

pub fn read(input: &Path, options: &ImportOptions) -> Result<Imported> {
    let files = locate(input, options.scale)?;
    let mut details: Vec<Detail> = read_keyed(&files.detail)?;
    details.sort_by_key(|d| d.event_id);
    let mut gpu: Vec<GpuSample> = read_keyed(&files.gpu)?;
    gpu.sort_by(|a, b| a.record_time.total_cmp(&b.record_time));
    let stats = read_stats(&files.vllm)?;
    if stats.is_empty() || details.is_empty() {
        return Err(Error::BadFile {
            file: files.vllm.display().to_string(),
            message: "a run needs engine stats and request records".into(),
        });
    }
    let arrival = |d: &Detail| d.record_time - d.total_chunk_time;
    let t0 = details
        .iter()
        .map(arrival)
        .chain(stats.iter().map(|s| s.t))
        .chain(gpu.iter().map(|g| g.record_time))
        .fold(f64::INFINITY, f64::min);
    let start = super::micros(options.start.unwrap_or_else(|| default_start(2024, 10, 27)));
    // Saturating: an absurd clock becomes a far-future row that validation quarantines.
    let at = |t: f64| start.saturating_add(((t - t0) * 1e6).round() as i64);

    // Measured characters per token from the engine's own generation counter.
    let dts = intervals(&stats);
    let gen_tokens: f64 = stats.iter().zip(&dts).map(|(s, dt)| s.gen_tps * dt).sum();
    let prompt_tokens_engine: f64 = stats
        .iter()
        .zip(&dts)
        .map(|(s, dt)| s.prompt_tps * dt)
        .sum();
    let chars: f64 = details.iter().map(|d| d.out_len).sum();
    let in_tokens = details
        .iter()
        .fold(0i64, |sum, d| sum.saturating_add(d.in_len));
    if gen_tokens <= 0.0 {
        return Err(Error::BadFile {
            file: files.vllm.display().to_string(),
            message:
                "generation_throughput integrates to zero: cannot measure characters per token"
                    .into(),
        });
    }
    let ratio = chars / gen_tokens;

    let app = options
        .app_id
        .clone()
        .unwrap_or_else(|| DEFAULT_APP.to_string());
    let supply = options
        .supply_id
        .clone()
        .unwrap_or_else(|| DEFAULT_SUPPLY.to_string());
    let mut requests = RequestRows::with_capacity(details.len());
    let mut id = String::new();
    for d in &details {
        id.clear();
        id.push_str(&format!("burstgpt-s{}-{}", files.scale, d.event_id));
        requests.push(&Request {
            request_id: Some(&id),
            ts_us: Some(at(arrival(d))),
            app_id: Some(&app),
            supply_id: Some(&supply),
            prompt_tokens: Some(d.in_len),
            completion_tokens: Some((d.out_len / ratio).round() as i64),
            max_tokens: Some(d.sampled_out_len),
            ttft_ms: Some(d.first_chunk_time * 1000.0),
            e2e_ms: Some(d.total_chunk_time * 1000.0),
            status: Some("ok"),
            ..Default::default()
        });
    }

    let mut arrivals: Vec<f64> = details.iter().map(arrival).collect();
    arrivals.sort_by(f64::total_cmp);
    let mut windows = GpuRows::with_capacity(stats.len());
    for (i, (s, &dt)) in stats.iter().zip(&dts).enumerate() {
        let from = if i == 0 { f64::NEG_INFINITY } else { s.t - dt };
        let arrived =
            arrivals.partition_point(|&a| a <= s.t) - arrivals.partition_point(|&a| a <= from);
        let nearest = nearest_sample(&gpu, s.t);
        windows.push(&GpuWindow {
            ts_us: Some(at(s.t)),
            supply_id: Some(&supply),
            instance_id: Some(INSTANCE),
            num_running: Some(s.running),
            num_waiting: Some(s.pending),
            kv_cache_usage: Some(s.kv_pct / 100.0),
            gpu_util: nearest.map(|g| g.utilization_pct / 100.0),
            window_s: Some(dt),
            requests_per_s: (dt > 0.0).then(|| arrived as f64 / dt),
            prompt_tokens_per_s: Some(s.prompt_tps),
            generation_tokens_per_s: Some(s.gen_tps),
            mem_used_bytes: nearest.map(|g| (g.used_mem_mib * 1048576.0).round() as i64),
            ..Default::default()
        });
    }
    Ok(Imported {
        tag: format!("burstgpt-s{}", files.scale),
        requests: Some(requests.finish()?),
        gpu_metrics: Some(windows.finish()?),
        notes: vec![
            format!(
                "scale {}: {} requests, {} engine-stats windows",
                files.scale,
                details.len(),
                stats.len()
            ),
            format!(
                "measured characters per token = {ratio:.3} ({chars:.0} out_len characters / {gen_tokens:.0} tokens generated by the engine); completion_tokens = round(out_len / {ratio:.3})"
            ),
            format!(
                "cross-check: engine prompt tokens {prompt_tokens_engine:.0} vs Σ in_len {in_tokens} (ratio {:.3})",
                prompt_tokens_engine / in_tokens.max(1) as f64
            ),
            "gpu_kvcache_usage converted from percent to a fraction; GPU_utilization from percent; GPU_used_mem from MiB to bytes".into(),
        ],
    })
}

/// The characters-per-token ratio measured for a run (see the module doc), for callers and tests.
pub fn chars_per_token(notes: &[String]) -> Option<f64> {
    notes.iter().find_map(|n| {
        n.strip_prefix("measured characters per token = ")?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

fn nearest_sample(samples: &[GpuSample], t: f64) -> Option<&GpuSample> {
    let i = samples.partition_point(|g| g.record_time < t);
    let before = i.checked_sub(1).and_then(|j| samples.get(j));
    match (before, samples.get(i)) {
        (Some(b), Some(a)) => Some(if t - b.record_time <= a.record_time - t {
            b
        } else {
            a
        }),
        (b, a) => b.or(a),
    }
}
