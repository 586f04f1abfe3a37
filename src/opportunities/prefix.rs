//! Prompt-prefix caching on hosted APIs: how many input tokens sit in shared prefixes long enough
//! for the provider's automatic prompt cache, and what they would cost at its cached-input price.
//!
//! Each app's requests to a hosted supply are replayed in arrival order against the provider's
//! rules (pipeline file, `prompt_cache`): a request's shared prefix (`prefix_hash`,
//! `prefix_tokens`) is read from the cache when the same prefix was sent within the retention's
//! time to live, and then counts `min_prefix_tokens` plus whole `increment_tokens` steps of it
//! (shorter prefixes are never cached). Every use refreshes the prefix. The replay runs at the
//! default retention and, where the provider offers one, the extended retention a client asks for
//! with `prompt_cache_retention`. The saving is counted over the cached tokens the provider
//! already reported (`cached_tokens`), at the difference between the input and cached-input prices.

use std::collections::HashMap;

use serde::Serialize;

use super::Columns;
use crate::config::Supply;
use crate::error::Result;
use crate::hash::stable_hash64;

/// Share of an app's input bill below which a caching saving is not worth a change.
pub const MIN_SAVING_SHARE: f64 = 0.01;

/// One retention replayed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetentionReplay {
    /// `prompt_cache_retention` to ask for; None for the provider's default.
    pub retention: Option<String>,
    pub ttl_s: f64,
    /// Input tokens the cache would have served.
    pub cached_tokens: u64,
    /// Saved in the window over what the provider already cached, USD.
    pub saving_usd: f64,
}

/// The prefix-caching finding of one app on one hosted supply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrefixCaching {
    pub supply_id: String,
    pub app_id: String,
    pub requests: u64,
    pub prompt_tokens: u64,
    /// Input tokens in shared prefixes of at least the provider's minimum (an upper bound).
    pub long_prefix_tokens: u64,
    /// Cached input tokens the provider reported.
    pub reported_cached_tokens: u64,
    /// What the app's input cost in the window at the full input price, USD.
    pub input_cost_usd: f64,
    /// And its input and output together.
    pub cost_usd: f64,
    pub window_days: f64,
    /// The default retention, then the extended one.
    pub replays: Vec<RetentionReplay>,
    /// The replay recommended: the first saving most, when that clears [`MIN_SAVING_SHARE`].
    pub chosen: Option<usize>,
}

/// One request as the replay reads it.
struct Sent {
    ts_us: i64,
    prefix: Option<u64>,
    prefix_tokens: u64,
    prompt_tokens: u64,
    completion_tokens: u64,
    cached_tokens: u64,
}

/// Replays the rows of `sql/opportunities/hosted_prefixes.sql` for each hosted supply that has
/// prompt-cache rules and a cached-input price.
pub(super) fn prefix_caching(
    batches: &[arrow::array::RecordBatch],
    supplies: &[Supply],
    window_days: f64,
) -> Result<Vec<PrefixCaching>> {
    let mut apps: std::collections::BTreeMap<(String, String), Vec<Sent>> = Default::default();
    for b in batches {
        let c = Columns::new(b, crate::sql::HOSTED_PREFIXES.path);
        let (supply, app, prefix) = (
            c.text("supply_id")?,
            c.text("app_id")?,
            c.text("prefix_hash")?,
        );
        let ts = c.timestamp("ts")?;
        let (prefix_tokens, prompt, completion, cached) = (
            c.int("prefix_tokens")?,
            c.int("prompt_tokens")?,
            c.int("completion_tokens")?,
            c.int("cached_tokens")?,
        );
        for i in 0..b.num_rows() {
            use arrow::array::Array;
            apps.entry((supply.value(i).to_string(), app.value(i).to_string()))
                .or_default()
                .push(Sent {
                    ts_us: ts.value(i),
                    prefix: prefix.is_valid(i).then(|| stable_hash64(prefix.value(i))),
                    prefix_tokens: Columns::count(prefix_tokens, i),
                    prompt_tokens: Columns::count(prompt, i),
                    completion_tokens: Columns::count(completion, i),
                    cached_tokens: Columns::count(cached, i),
                });
        }
    }
    let mut out = Vec::new();
    for ((supply_id, app_id), sent) in apps {
        let Some(supply) = supplies.iter().find(|s| s.id == supply_id) else {
            continue;
        };
        let (Some(rules), Some(input), Some(output), Some(cached_price)) = (
            &supply.prompt_cache,
            supply.price.per_1k_input,
            supply.price.per_1k_output,
            supply.price.per_1k_cached_input,
        ) else {
            continue;
        };
        let cacheable = |tokens: u64| {
            if tokens < rules.min_prefix_tokens {
                0
            } else {
                let steps = (tokens - rules.min_prefix_tokens) / rules.increment_tokens;
                rules.min_prefix_tokens + steps * rules.increment_tokens
            }
        };
        let reported: u64 = sent.iter().map(|s| s.cached_tokens).sum();
        let retentions = std::iter::once((None, rules.ttl_s)).chain(
            rules
                .extended
                .iter()
                .map(|e| (Some(e.name.clone()), e.ttl_s)),
        );
        let replays: Vec<RetentionReplay> = retentions
            .map(|(retention, ttl_s)| {
                let ttl_us = (ttl_s * 1e6) as i64;
                let mut last: HashMap<u64, i64> = HashMap::new();
                let mut cached_tokens = 0;
                for s in &sent {
                    let Some(p) = s.prefix else { continue };
                    if last.get(&p).is_some_and(|t| s.ts_us - t <= ttl_us) {
                        cached_tokens += cacheable(s.prefix_tokens);
                    }
                    last.insert(p, s.ts_us);
                }
                RetentionReplay {
                    retention,
                    ttl_s,
                    cached_tokens,
                    saving_usd: cached_tokens.saturating_sub(reported) as f64
                        * (input - cached_price)
                        / 1e3,
                }
            })
            .collect();
        let prompt_tokens: u64 = sent.iter().map(|s| s.prompt_tokens).sum();
        let input_cost_usd = prompt_tokens as f64 * input / 1e3;
        let completion_tokens: u64 = sent.iter().map(|s| s.completion_tokens).sum();
        let chosen = replays
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                r.saving_usd >= MIN_SAVING_SHARE * input_cost_usd && r.saving_usd > 0.0
            })
            .min_by(|(_, a), (_, b)| b.saving_usd.total_cmp(&a.saving_usd))
            .map(|(i, _)| i);
        out.push(PrefixCaching {
            requests: sent.len() as u64,
            prompt_tokens,
            long_prefix_tokens: sent
                .iter()
                .filter(|s| s.prefix.is_some())
                .map(|s| cacheable(s.prefix_tokens))
                .sum(),
            reported_cached_tokens: reported,
            input_cost_usd,
            cost_usd: input_cost_usd + completion_tokens as f64 * output / 1e3,
            window_days,
            replays,
            chosen,
            supply_id,
            app_id,
        });
    }
    Ok(out)
}
