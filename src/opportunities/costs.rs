//! Cost drivers and the monthly estimate (seed 003): what the window cost, by app, supply, model,
//! workload class and day, projected to a 30-day month, with cost per 1k requests and per 1M
//! tokens, each dimension's keys ranked by their share.
//!
//! A self-hosted supply costs its GPUs for the whole window (GPUs × price per GPU-hour × hours,
//! busy or not); a hosted API costs its token prices. Both prices come from the pipeline file (or
//! the GPU catalog). A supply's cost is spread over its traffic in proportion to tokens (prompt +
//! completion) of each app × hour × class cell of the workload mix; a hosted API's cells are priced
//! directly from their input and output tokens.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::workloads::{Mix, WorkloadClass};

/// How a supply is billed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Billing {
    /// GPUs held for the whole window.
    Gpus { gpus: f64, usd_per_gpu_hour: f64 },
    /// A hosted API's token prices.
    Tokens {
        usd_per_1k_input: f64,
        usd_per_1k_output: f64,
    },
}

/// A priced supply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SupplyPrice {
    pub supply_id: String,
    pub model: String,
    pub billing: Billing,
}

/// One key of one dimension (e.g. `app` = `chat`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostRow {
    pub dimension: &'static str,
    pub key: String,
    pub cost_usd: f64,
    /// Of the fleet's cost in the window.
    pub share: f64,
    pub requests: u64,
    pub tokens: u64,
}

/// The window's costs by dimension.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostDrivers {
    pub window_days: f64,
    pub total_usd: f64,
    /// Supplies with traffic but no price (left out of every figure).
    pub unpriced: Vec<String>,
    /// By dimension (`app`, `supply`, `model`, `class`, `day`), each ranked by cost.
    pub rows: Vec<CostRow>,
}

impl CostDrivers {
    /// `usd` of the window projected to a 30-day month.
    pub fn per_month(&self, usd: f64) -> f64 {
        super::per_month(usd, self.window_days)
    }
}

/// The drivers of a window of `window_days` from its workload mix and the supplies' prices.
pub fn cost_drivers(
    mix: &Mix,
    classes: &[WorkloadClass],
    prices: &[SupplyPrice],
    window_days: f64,
) -> CostDrivers {
    // Tokens per supply, for spreading a GPU bill.
    let mut supply_tokens: BTreeMap<&str, u64> = BTreeMap::new();
    for c in mix.cells() {
        *supply_tokens.entry(c.supply_id).or_default() += c.prompt_tokens + c.completion_tokens;
    }
    let label = |id: u16| {
        classes
            .iter()
            .find(|c| c.id == id)
            .map_or(format!("class {id}"), |c| c.label.clone())
    };
    let mut sums: BTreeMap<(&'static str, String), (f64, u64, u64)> = BTreeMap::new();
    let mut unpriced = std::collections::BTreeSet::new();
    for c in mix.cells() {
        let Some(price) = prices.iter().find(|p| p.supply_id == c.supply_id) else {
            unpriced.insert(c.supply_id.to_string());
            continue;
        };
        let tokens = c.prompt_tokens + c.completion_tokens;
        let cost = match price.billing {
            Billing::Gpus {
                gpus,
                usd_per_gpu_hour,
            } => {
                let bill = gpus * usd_per_gpu_hour * window_days * 24.0;
                bill * tokens as f64 / supply_tokens[c.supply_id].max(1) as f64
            }
            Billing::Tokens {
                usd_per_1k_input,
                usd_per_1k_output,
            } => {
                (c.prompt_tokens as f64 * usd_per_1k_input
                    + c.completion_tokens as f64 * usd_per_1k_output)
                    / 1e3
            }
        };
        let day = chrono::DateTime::from_timestamp_micros(c.hour_us)
            .map_or(String::new(), |t| t.format("%Y-%m-%d").to_string());
        for key in [
            ("app", c.app_id.to_string()),
            ("supply", c.supply_id.to_string()),
            ("model", price.model.clone()),
            ("class", label(c.class_id)),
            ("day", day),
        ] {
            let s = sums.entry(key).or_default();
            s.0 += cost;
            s.1 += c.requests;
            s.2 += tokens;
        }
    }
    let total_usd: f64 = sums
        .iter()
        .filter(|((d, _), _)| *d == "supply")
        .map(|(_, s)| s.0)
        .sum();
    let mut rows: Vec<CostRow> = sums
        .into_iter()
        .map(|((dimension, key), (cost_usd, requests, tokens))| CostRow {
            dimension,
            key,
            cost_usd,
            share: cost_usd / total_usd.max(1e-12),
            requests,
            tokens,
        })
        .collect();
    let order = |d: &str| {
        ["app", "supply", "model", "class", "day"]
            .iter()
            .position(|x| *x == d)
    };
    rows.sort_by(|a, b| {
        order(a.dimension)
            .cmp(&order(b.dimension))
            .then(if a.dimension == "day" {
                a.key.cmp(&b.key)
            } else {
                b.cost_usd.total_cmp(&a.cost_usd).then(a.key.cmp(&b.key))
            })
    });
    CostDrivers {
        window_days,
        total_usd,
        unpriced: unpriced.into_iter().collect(),
        rows,
    }
}
