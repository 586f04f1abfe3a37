//! Bench fixtures shared by several benches.

use tunelake::simulation::Trace;

const AZURE_CONV: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/datasets/azure-llm-2023/AzureLLMInferenceTrace_conv.csv"
);
/// (ContextTokens, GeneratedTokens) pairs of the Azure 2023 conversation trace, or lognormal fits of
/// it when the file is absent.
fn azure_lengths() -> Vec<(u32, u32)> {
    match std::fs::read_to_string(AZURE_CONV) {
        Ok(text) => text
            .lines()
            .skip(1)
            .filter_map(|l| {
                let mut f = l.split(',').skip(1);
                Some((
                    f.next()?.trim().parse().ok()?,
                    f.next()?.trim().parse().ok()?,
                ))
            })
            .map(|(p, o): (u32, u32)| (p.clamp(1, 7000), o.clamp(1, 1000)))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// `n` Poisson arrivals at `rate` per second with Azure-conversation lengths.
pub fn azure_conversation_trace(n: usize, rate: f64) -> Trace {
    let lens = azure_lengths();
    Trace::poisson(n, rate, 1, |rng| {
        if lens.is_empty() {
            let p = (6.93 + 0.9 * rng.normal()).exp().clamp(4.0, 6000.0) as u32;
            let o = (4.87 + 0.85 * rng.normal()).exp().clamp(2.0, 1000.0) as u32;
            (p, o)
        } else {
            lens[rng.below(lens.len() as u64) as usize]
        }
    })
}
