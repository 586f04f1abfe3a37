//! Catalog integration tests: the shipped TOML, user catalogs, and agreement with real vLLM runs.

use tunelake::catalog::{Catalog, Dtype, Quantization};
use tunelake::simulation::Deployment;

use crate::support::{SupplyToml, pipeline_toml};

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
    let moe = mx.moe.unwrap();
    assert_eq!((moe.num_experts, moe.experts_per_token), (8, 2));
    // The models issue 11 names, by id.
    for m in [
        "Qwen3-8B",
        "Qwen3-14B",
        "Qwen3-32B",
        "Qwen3-30B-A3B",
        "Qwen3-235B-A22B",
        "Qwen2.5-14B",
        "Qwen2.5-32B",
        "Llama-3.3-70B",
        "Llama-3.1-405B",
        "Llama-4-Scout-17B-16E",
        "Llama-4-Maverick-17B-128E",
        "Mixtral-8x22B",
        "Mistral-Nemo-12B",
        "Mistral-Small-24B",
        "Yi-34B",
        "DeepSeek-V3",
        "DeepSeek-R1",
        "gpt-oss-20b",
        "gpt-oss-120b",
    ] {
        c.model(m).unwrap();
    }
    for g in ["GH200", "GB200", "RTX-PRO-6000", "MI300X", "H20"] {
        c.gpu(g).unwrap();
    }
}

/// H20 has no public list price: a supply running on it is costed by its own price, and a pipeline
/// whose search may move another supply onto it is refused, naming the GPU.
#[test]
fn a_gpu_without_a_list_price_is_costed_only_by_its_supply() {
    use tunelake::config::{Overrides, PipelineFile};
    let c = Catalog::bundled().unwrap();
    assert!(c.gpu("H20").unwrap().price_per_hour_usd.is_none());
    let plan = |supply: SupplyToml| {
        let text = pipeline_toml("[run]\nlake = \"x\"\nout = \"y\"", &[supply]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, text).unwrap();
        PipelineFile::load(&path)
            .unwrap()
            .plan(&path, &Overrides::default(), &c)
    };
    let on_h20 = SupplyToml::new("s", "Llama-3.1-8B", "H20");
    plan(on_h20.clone()).unwrap();
    let supply = on_h20.parse();
    let d = tunelake::deployment::current_deployment(&supply, &c).unwrap();
    assert_eq!(d.price_per_gpu_hour, 6.88);
    let err = plan(SupplyToml {
        extra: "[supplies.options]\ngpu = [\"H20\"]\n".into(),
        ..SupplyToml::new("s", "Llama-3.1-8B", "H100")
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("H20") && err.contains("list price"), "{err}");
}

/// Published parameter counts (model cards) against the counts derived from the configs: text-only
/// weights, so Llama 4's vision encoder is out; gpt-oss's active count leaves out the embedding.
#[test]
fn derived_parameter_counts_match_model_cards() {
    let c = Catalog::bundled().unwrap();
    for (id, total_b, active_b, tol) in [
        ("Qwen3-8B", 8.2, 8.2, 0.01),
        ("Qwen3-14B", 14.8, 14.8, 0.01),
        ("Qwen3-30B-A3B", 30.5, 3.3, 0.02),
        ("Qwen3-235B-A22B", 235.0, 22.0, 0.01),
        ("Llama-3.1-405B", 405.0, 405.0, 0.01),
        ("Llama-4-Maverick-17B-128E", 400.0, 17.0, 0.02),
        ("Mixtral-8x22B", 141.0, 39.0, 0.01),
        ("DeepSeek-V3", 671.0, 37.0, 0.02),
        ("gpt-oss-120b", 117.0, 5.1 + 0.58, 0.01),
    ] {
        let m = c.model(id).unwrap();
        let (total, active) = (
            m.params().total() as f64 / 1e9,
            m.active_params() as f64 / 1e9,
        );
        assert!(
            (total / total_b - 1.0).abs() < tol,
            "{id}: {total:.2}B total"
        );
        assert!(
            (active / active_b - 1.0).abs() < tol.max(0.02),
            "{id}: {active:.2}B active"
        );
    }
    // MLA caches one 512 + 64 latent per layer: 61 × 576 × 2 bytes ≈ 70 KB per token (DeepSeek-V2
    // paper's comparison with MHA), and every TP rank holds all of it.
    let ds = c.model("deepseek-ai/DeepSeek-V3").unwrap();
    assert_eq!(ds.kv_bytes_per_token(Dtype::Bf16), 61.0 * 576.0 * 2.0);
    assert_eq!(ds.kv_shards(8), 1.0);
    assert_eq!(ds.quantization, Quantization::Fp8);
    assert_eq!(
        c.model("gpt-oss-20b").unwrap().quantization,
        Quantization::Mxfp4
    );
}

/// Llama-3-70B served as FP8 (W8A8) or AWQ (W4A16) fits one H100, where bf16 does not. Weight bytes
/// are checked against the published checkpoints (neuralmagic/Meta-Llama-3-70B-Instruct-FP8: 72.7 GB
/// of safetensors; casperhansen/llama-3-70b-instruct-awq: 39.8 GB) and the KV blocks against the
/// memory arithmetic: (0.9 × 80 GiB − weights − 1.5 GiB reserve) / (16 tokens × 320 KiB).
#[test]
fn quantized_70b_fits_one_h100_with_its_kv_capacity() {
    let c = Catalog::bundled().unwrap();
    let h100 = c.gpu("H100").unwrap().clone();
    let model = c.model("Llama-3-70B").unwrap();
    let mut d = Deployment::new(h100, model.clone(), 1, 1);
    assert!(d.validate().is_err(), "bf16 70B cannot fit one H100");
    for (q, published_gb) in [(Quantization::Fp8, 72.7), (Quantization::Awq, 39.8)] {
        d.config.quantization = Some(q);
        let weights = model.weight_bytes(q, Dtype::Bf16);
        assert!(
            (weights / 1e9 / published_gb - 1.0).abs() < 0.01,
            "{q}: {weights}"
        );
        let gib = (1u64 << 30) as f64;
        let expected = ((0.9 * 80.0 * gib - weights - 1.5 * gib) / (16.0 * 327_680.0)).floor();
        d.validate().unwrap();
        assert_eq!(d.num_gpu_blocks().unwrap() as f64, expected, "{q}");
    }
    // FP8 leaves ~2.8 GiB for the cache, AWQ ~33 GiB.
    assert!((500..700).contains(&{
        d.config.quantization = Some(Quantization::Fp8);
        d.num_gpu_blocks().unwrap()
    }));
}

/// A supply may name its model by a local model directory (as vLLM serves it) or config.json path.
#[test]
fn models_from_config_json_paths() {
    let c = Catalog::bundled().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let model_dir = dir.path().join("Qwen3-14B-AWQ");
    std::fs::create_dir(&model_dir).unwrap();
    // Qwen/Qwen3-14B-AWQ's config.json, abridged.
    let config = serde_json::json!({
        "architectures": ["Qwen3ForCausalLM"],
        "hidden_size": 5120, "head_dim": 128, "intermediate_size": 17408,
        "max_position_embeddings": 40960, "num_attention_heads": 40,
        "num_hidden_layers": 40, "num_key_value_heads": 8,
        "tie_word_embeddings": false, "vocab_size": 151936, "sliding_window": null,
        "use_sliding_window": false, "torch_dtype": "float16",
        "quantization_config": {"bits": 4, "group_size": 128, "quant_method": "awq", "version": "gemm", "zero_point": true}
    });
    std::fs::write(model_dir.join("config.json"), config.to_string()).unwrap();
    let name = model_dir.display().to_string();
    let m = c.model(&name).unwrap();
    assert_eq!(m.id, name);
    assert_eq!(m.quantization, Quantization::Awq);
    assert!(m.sliding_window.is_none());
    assert!((m.params().total() as f64 / 14.77e9 - 1.0).abs() < 0.01);
    let by_file = c
        .model(&model_dir.join("config.json").display().to_string())
        .unwrap();
    assert_eq!(by_file.params(), m.params());
    // A field the parser needs and cannot find is named.
    let mut broken = config.clone();
    broken.as_object_mut().unwrap().remove("num_hidden_layers");
    let file = dir.path().join("broken.json");
    std::fs::write(&file, broken.to_string()).unwrap();
    let err = c.model(&file.display().to_string()).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("num_hidden_layers"), "{err}");
    let mut bnb = config;
    bnb["quantization_config"] = serde_json::json!({"quant_method": "bitsandbytes"});
    std::fs::write(&file, bnb.to_string()).unwrap();
    let err = c
        .model(&file.display().to_string())
        .unwrap_err()
        .to_string();
    assert!(err.contains("bitsandbytes"), "{err}");
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
        assert_eq!(
            m.moe.as_ref().map_or(0, |e| e.num_experts),
            f("num_local_experts")
        );
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
