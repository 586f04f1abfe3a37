//! Rule-based names for clusters, from their centroids in original units. The rules are deliberately
//! coarse and ordered (first match wins) so that a name says what matters for serving: how long the
//! prefill is, how long the decode is, and whether the prompt is mostly a reusable prefix.
//!
//! | order | rule (P = prompt, O = output tokens, S = prefix share, T = session depth) | name |
//! |---|---|---|
//! | 1 | P < 1,200 and O < 500 | `short chat` (`multi-turn chat` if T ≥ 1.5) |
//! | 2 | O ≤ 64 and P ≤ 4,000 | `code completion` (a prompt, a few output tokens) |
//! | 2b | O ≤ 64 | `long-context short answer` |
//! | 3 | P ≥ 2,000 and S ≥ 0.5 | `long-context RAG` |
//! | 4 | O ≥ 500 | `long generation` |
//! | 5 | P ≥ 2,000 | `summarization` |
//! | 6 | otherwise | `mixed` |
//!
//! Every name ends with the centroid's lengths, e.g. `short chat (~120 in / 180 out)`; two clusters
//! with the same name get ` #2`, ` #3` in class-id order so labels stay unique and deterministic.

use super::vector::FeatureVector;

/// The kind part of a class name.
pub fn kind(c: &FeatureVector) -> &'static str {
    let (p, o, s, t) = (
        c.prompt_tokens(),
        c.completion_tokens(),
        c.prefix_share,
        c.session_depth(),
    );
    if p < 1_200.0 && o < 500.0 {
        if t >= 1.5 {
            "multi-turn chat"
        } else {
            "short chat"
        }
    } else if o <= 64.0 && p <= 4_000.0 {
        "code completion"
    } else if o <= 64.0 {
        "long-context short answer"
    } else if p >= 2_000.0 && s >= 0.5 {
        "long-context RAG"
    } else if o >= 500.0 {
        "long generation"
    } else if p >= 2_000.0 {
        "summarization"
    } else {
        "mixed"
    }
}

/// Rounds a token count for a label: 2 significant digits (120, 1,500 → "1500", 5,600).
fn round_tokens(x: f64) -> u64 {
    if x < 100.0 {
        return x.round().max(0.0) as u64;
    }
    let magnitude = 10f64.powi(x.log10().floor() as i32 - 1);
    ((x / magnitude).round() * magnitude) as u64
}

/// Unique labels for centroids given in class-id order.
pub fn labels(centroids: &[FeatureVector]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(centroids.len());
    for c in centroids {
        let base = format!(
            "{} (~{} in / {} out)",
            kind(c),
            round_tokens(c.prompt_tokens()),
            round_tokens(c.completion_tokens())
        );
        let mut label = base.clone();
        let mut n = 2;
        while out.contains(&label) {
            label = format!("{base} #{n}");
            n += 1;
        }
        out.push(label);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_table() {
        let f = |p, o, s, t| FeatureVector::new(p, o, s, t);
        let got = labels(&[
            f(120, 180, 0.3, 1),
            f(5600, 200, 0.9, 1),
            f(1500, 800, 0.2, 1),
            f(3000, 300, 0.05, 1),
            f(2048, 20, 0.0, 1),
            f(120, 180, 0.3, 1),
        ]);
        assert_eq!(
            got,
            [
                "short chat (~120 in / 180 out)",
                "long-context RAG (~5600 in / 200 out)",
                "long generation (~1500 in / 800 out)",
                "summarization (~3000 in / 300 out)",
                "code completion (~2000 in / 20 out)",
                "short chat (~120 in / 180 out) #2",
            ]
        );
        assert_eq!(kind(&f(300, 100, 0.5, 3)), "multi-turn chat");
    }
}
