//! Catalog integration tests: the shipped TOML, user catalogs, and agreement with real vLLM runs.

use tunelake::catalog::{Catalog, Dtype};
use tunelake::simulation::Deployment;

const CATALOG_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/datasets/catalog");
const BLIS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/datasets/blis-vllm-h100-replay"
);

/// Splits one CSV line (double-quoted fields may hold commas and doubled quotes).
pub fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Reads a CSV file into (header, rows).
pub fn read_csv(path: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut lines = text.lines().filter(|l| !l.is_empty());
    let header = split_csv(lines.next().expect("header"));
    (header, lines.map(split_csv).collect())
}

pub fn col(header: &[String], name: &str) -> usize {
    header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

#[test]
fn from_dir_matches_bundled() {
    let a = Catalog::bundled().unwrap();
    let b = Catalog::from_dir(CATALOG_DIR).unwrap();
    assert_eq!(a.gpus, b.gpus);
    assert_eq!(a.models, b.models);
}

#[test]
fn user_catalog_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gpus.toml"),
        "[[gpu]]\nid = 'X'\nmemory_gb = 3\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("models.toml"), "").unwrap();
    let err = Catalog::from_dir(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("gpus.toml") && err.contains("memory_gb"),
        "{err}"
    );
    let missing = Catalog::from_dir(dir.path().join("nope"))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("nope"), "{missing}");
}

#[test]
fn required_entries_and_aliases() {
    let c = Catalog::bundled().unwrap();
    for g in [
        "L4",
        "A10G",
        "L40S",
        "A100-40GB",
        "A100-80GB",
        "H100-SXM",
        "H200",
        "B200",
        "h100",
        "H100-SXM-80GB",
    ] {
        c.gpu(g).unwrap();
    }
    assert!(c.gpu("A100-80GB").unwrap().fp8_tflops.is_none());
    assert!(c.gpu("A10G").unwrap().fp8_tflops.is_none());
    let h100 = c.gpu("H100-SXM").unwrap();
    assert_eq!(
        (
            h100.memory_gib,
            h100.hbm_bandwidth_gbps,
            h100.bf16_tflops,
            h100.fp8_tflops,
            h100.interconnect_gbps
        ),
        (80.0, 3350.0, 989.0, Some(1979.0), 900.0)
    );
    for m in [
        "meta-llama/Llama-2-7b-hf",
        "meta-llama/Llama-2-70b-hf",
        "Llama-3-8B",
        "Llama-3-70B",
        "Llama-3.1-8B",
        "Llama-3.1-70B",
        "mistralai/Mistral-7B-v0.1",
        "mistralai/Mixtral-8x7B-v0.1",
        "codellama/CodeLlama-34b-Instruct-hf",
        "Qwen/Qwen2.5-7B-Instruct",
        "Qwen2.5-72B",
        "meta-llama/Llama-3.2-1B",
    ] {
        c.model(m).unwrap();
    }
    let mx = c.model("mixtral-8x7b").unwrap();
    assert_eq!((mx.num_experts, mx.experts_per_token), (Some(8), Some(2)));
}

/// The blis runs list each model's architecture and the KV block count vLLM computed on H100: the
/// catalog must agree with the former and the default memory model reproduce the latter within 1.5 %.
#[test]
fn blis_architectures_and_kv_blocks() {
    let c = Catalog::bundled().unwrap();
    let (h, rows) = read_csv(&format!("{BLIS}/experiments.csv"));
    let gpu = c.gpu(&rows[0][col(&h, "gpu")]).unwrap().clone();
    for r in &rows {
        let m = c.model(&r[col(&h, "model_id")]).unwrap();
        let f = |name: &str| r[col(&h, name)].parse::<u32>().unwrap();
        assert_eq!(m.num_layers, f("num_layers"));
        assert_eq!(m.hidden_size, f("hidden_dim"));
        assert_eq!(m.num_attention_heads, f("num_heads"));
        assert_eq!(m.num_kv_heads, f("num_kv_heads"));
        assert_eq!(m.intermediate_size, f("intermediate_dim"));
        assert_eq!(m.vocab_size, f("vocab_size"));
        assert_eq!(m.num_experts.unwrap_or(0), f("num_local_experts"));
        let mut d = Deployment::new(gpu.clone(), m.clone(), f("tp"), 1);
        d.engine.dtype = Dtype::Fp16;
        let blocks = d.num_gpu_blocks().unwrap() as f64;
        let real = f("kv_blocks_total_gpu") as f64;
        assert!(
            (blocks / real - 1.0).abs() < 0.015,
            "{}: {blocks} vs {real}",
            m.id
        );
    }
}
