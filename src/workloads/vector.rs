//! Per-request feature vectors (the units requests are clustered in) and the adjusted Rand index
//! used to score a clustering against known labels.

use nalgebra::SVector;
use serde::Serialize;

/// Number of features per request.
pub const DIMS: usize = 4;
/// A feature vector as nalgebra arithmetic sees it (raw or standardised).
pub type Point = SVector<f64, DIMS>;

/// Per-request features, in the units they are clustered in. Logs because token counts are
/// lognormal-ish and a 2,000- vs 4,000-token prompt differ as much as 200 vs 400 for serving.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FeatureVector {
    /// ln(1 + prompt tokens).
    pub log_prompt: f64,
    /// ln(1 + completion tokens).
    pub log_output: f64,
    /// Share of the prompt in a prefix already seen in the window (0..1).
    pub prefix_share: f64,
    /// ln(number of requests in the request's session), 0 without a session.
    pub log_depth: f64,
}

impl FeatureVector {
    /// Features of one request; negative counts are treated as 0, the share is clipped to 0..1.
    pub fn new(prompt_tokens: i64, completion_tokens: i64, prefix_share: f64, depth: i64) -> Self {
        let share = if prefix_share.is_finite() {
            prefix_share.clamp(0.0, 1.0)
        } else {
            0.0
        };
        FeatureVector {
            log_prompt: (prompt_tokens.max(0) as f64).ln_1p(),
            log_output: (completion_tokens.max(0) as f64).ln_1p(),
            prefix_share: share,
            log_depth: (depth.max(1) as f64).ln(),
        }
    }

    pub(crate) fn point(&self) -> Point {
        Point::new(
            self.log_prompt,
            self.log_output,
            self.prefix_share,
            self.log_depth,
        )
    }

    /// Prompt tokens in original units.
    pub fn prompt_tokens(&self) -> f64 {
        self.log_prompt.exp_m1()
    }

    /// Completion tokens in original units.
    pub fn completion_tokens(&self) -> f64 {
        self.log_output.exp_m1()
    }

    /// Session depth in original units.
    pub fn session_depth(&self) -> f64 {
        self.log_depth.exp()
    }
}

/// Adjusted Rand index of two labellings of the same items (Hubert & Arabie); 1 = identical
/// partitions, ≈0 = chance agreement.
pub fn adjusted_rand_index(a: &[u32], b: &[u32]) -> f64 {
    use std::collections::BTreeMap;
    let mut table: BTreeMap<(u32, u32), u64> = BTreeMap::new();
    let mut rows: BTreeMap<u32, u64> = BTreeMap::new();
    let mut cols: BTreeMap<u32, u64> = BTreeMap::new();
    for (&x, &y) in a.iter().zip(b) {
        *table.entry((x, y)).or_default() += 1;
        *rows.entry(x).or_default() += 1;
        *cols.entry(y).or_default() += 1;
    }
    let pairs = |n: &u64| (*n as f64) * (*n as f64 - 1.0) / 2.0;
    let index: f64 = table.values().map(pairs).sum();
    let sa: f64 = rows.values().map(pairs).sum();
    let sb: f64 = cols.values().map(pairs).sum();
    let total = pairs(&(a.len().min(b.len()) as u64));
    let expected = sa * sb / total.max(1.0);
    let max = (sa + sb) / 2.0;
    if (max - expected).abs() < 1e-12 {
        return 1.0;
    }
    (index - expected) / (max - expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ari_basics() {
        assert!((adjusted_rand_index(&[0, 0, 1, 1], &[5, 5, 7, 7]) - 1.0).abs() < 1e-12);
        assert!(adjusted_rand_index(&[0, 1, 0, 1], &[0, 0, 1, 1]) < 0.01);
    }
}
