//! Snippet renderers: one conformance suite run against every renderer, checked against the flag and
//! key lists of the current engine versions in `../shared/reference/engine-flags/`, plus golden
//! files (bless with `TUNELAKE_BLESS=1 cargo test --test integration snippets`).

use std::collections::BTreeSet;
use std::path::PathBuf;

use tunelake::catalog::{Catalog, Quantization};
use tunelake::config::{Engine, Supply};
use tunelake::deployment;
use tunelake::knobs::{
    CapacityPolicy, Knob, KvCacheDtype, SchedulePolicy, ServingConfig, Speculative,
};
use tunelake::recommend::render::{self, Renderer, SnippetFile, Target};

use crate::support::SupplyToml;

pub(crate) fn reference(file: &str) -> BTreeSet<String> {
    read_names(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/reference/engine-flags")
            .join(file),
    )
}

/// A flag list kept with the tests (`tests/reference/`, see its SOURCE.md).
fn local_reference(file: &str) -> BTreeSet<String> {
    read_names(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/reference")
            .join(file),
    )
}

fn read_names(path: &std::path::Path) -> BTreeSet<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| l.split('\t').next().unwrap_or(l).trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

fn supply(engine: Engine, launch_command: Option<&str>) -> Supply {
    let mut extra = "[supplies.config]\nmax_tokens = 512\ntemperature = 0.2\n".to_string();
    if let Some(c) = launch_command {
        extra.push_str(&format!("launch_command = '''{c}'''\n"));
    }
    SupplyToml {
        engine,
        gpus_per_replica: Some(4),
        replicas: Some(2),
        p95_tpot_ms: 50.0,
        extra,
        ..SupplyToml::new("s", "meta-llama/Llama-3.1-70B-Instruct", "H100-SXM")
    }
    .parse()
}

/// Every single-knob change of the engine's knobs, all of them at once, and no change.
fn changes(engine: Engine, base: &ServingConfig) -> Vec<ServingConfig> {
    let spec = Speculative {
        draft_model: "meta-llama/Llama-3.1-8B-Instruct".into(),
        num_speculative_tokens: 4,
    };
    let singles = [
        (
            "gpu",
            ServingConfig {
                gpu: "A100-80GB".into(),
                ..base.clone()
            },
        ),
        (
            "tensor_parallel_size",
            ServingConfig {
                tensor_parallel_size: 8,
                ..base.clone()
            },
        ),
        (
            "replicas",
            ServingConfig {
                replicas: 1,
                ..base.clone()
            },
        ),
        (
            "block_size",
            ServingConfig {
                block_size: 32,
                ..base.clone()
            },
        ),
        (
            "max_num_seqs",
            ServingConfig {
                max_num_seqs: 512,
                ..base.clone()
            },
        ),
        (
            "max_num_batched_tokens",
            ServingConfig {
                max_num_batched_tokens: 16384,
                ..base.clone()
            },
        ),
        (
            "gpu_memory_utilization",
            ServingConfig {
                gpu_memory_utilization: 0.85,
                ..base.clone()
            },
        ),
        (
            "enable_prefix_caching",
            ServingConfig {
                enable_prefix_caching: !base.enable_prefix_caching,
                ..base.clone()
            },
        ),
        (
            "enable_chunked_prefill",
            ServingConfig {
                enable_chunked_prefill: !base.enable_chunked_prefill,
                ..base.clone()
            },
        ),
        (
            "long_prefill_token_threshold",
            ServingConfig {
                long_prefill_token_threshold: 2048,
                ..base.clone()
            },
        ),
        (
            "kv_cache_dtype",
            ServingConfig {
                kv_cache_dtype: KvCacheDtype::Fp8,
                ..base.clone()
            },
        ),
        (
            "speculative",
            ServingConfig {
                speculative: Some(spec.clone()),
                ..base.clone()
            },
        ),
        (
            "quantization",
            ServingConfig {
                quantization: Some(Quantization::Fp8),
                ..base.clone()
            },
        ),
        (
            "enable_expert_parallel",
            ServingConfig {
                enable_expert_parallel: true,
                ..base.clone()
            },
        ),
        (
            "kv_offload_gib",
            ServingConfig {
                kv_offload_gib: 64.0,
                ..base.clone()
            },
        ),
        (
            "pd_disaggregation",
            ServingConfig {
                pd_disaggregation: Some("1:1".parse().unwrap()),
                ..base.clone()
            },
        ),
        (
            "capacity_scheduler_policy",
            ServingConfig {
                capacity_scheduler_policy: CapacityPolicy::MaxUtilization,
                ..base.clone()
            },
        ),
        (
            "schedule_policy",
            ServingConfig {
                schedule_policy: SchedulePolicy::Lpm,
                ..base.clone()
            },
        ),
        (
            "waiting_served_ratio",
            ServingConfig {
                waiting_served_ratio: 1.2,
                ..base.clone()
            },
        ),
    ];
    let covered: Vec<&str> = singles.iter().map(|(knob, _)| *knob).collect();
    let all: Vec<&str> = Knob::ALL.iter().map(|k| k.name()).collect();
    assert_eq!(
        covered, all,
        "one single-knob change per knob, in Knob::ALL order"
    );
    let mut out: Vec<ServingConfig> = singles
        .iter()
        .filter(|(knob, _)| {
            engine.supports(knob.parse::<Knob>().unwrap()) || engine == Engine::Openai
        })
        .map(|(_, c)| c.clone())
        .collect();
    let mut all = base.clone();
    for (knob, c) in &singles {
        if engine.supports(knob.parse::<Knob>().unwrap()) {
            let snippet = tunelake::recommend::config_snippet(base, c);
            all = tunelake::recommend::apply_snippet(&all, &snippet).unwrap();
        }
    }
    out.push(all);
    out.push(base.clone());
    out
}

/// Flags (`--x`, `-x`) of the active (uncommented) lines of a launch script.
fn flags(file: &SnippetFile) -> Vec<String> {
    file.text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| l.split_whitespace())
        .filter(|t| t.starts_with('-') && t.len() > 1 && !t.starts_with("-'"))
        .filter(|t| t.parse::<f64>().is_err())
        .map(|t| t.split('=').next().unwrap().to_string())
        .collect()
}

/// Dotted keys of a YAML snippet (two-space indentation), comments skipped.
fn yaml_keys(text: &str) -> Vec<String> {
    let mut parents: Vec<String> = Vec::new();
    let mut keys = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
    {
        let depth = (line.len() - line.trim_start().len()) / 2;
        parents.truncate(depth);
        let key = line.trim().split(':').next().unwrap().to_string();
        let mut full = parents.clone();
        full.push(key.clone());
        keys.push(full.join("."));
        if line.trim_end().ends_with(':') {
            parents.push(key);
        }
    }
    keys
}

/// The engine-specific part of the suite: every name the snippet uses exists in today's engine.
fn check_names(engine: Engine, files: &[SnippetFile]) {
    for f in files {
        match engine {
            Engine::Vllm => {
                let known: BTreeSet<String> = reference("vllm-serve-flags.txt")
                    .into_iter()
                    .chain(reference("vllm-serve-flags-hidden-aliases.txt"))
                    .chain(reference("vllm-serve-short-aliases.txt"))
                    .collect();
                let removed = reference("vllm-serve-removed-flags.txt");
                for flag in flags(f) {
                    // vLLM's parser takes underscores for dashes.
                    let flag = if flag.starts_with("--") {
                        flag.replace('_', "-")
                    } else {
                        flag
                    };
                    assert!(known.contains(&flag), "vLLM has no {flag}:\n{}", f.text);
                    assert!(!removed.contains(&flag), "vLLM removed {flag}");
                }
                let spec_keys = reference("vllm-speculative-config-keys.txt");
                if let Some(json) = f.text.lines().rev().find_map(|l| {
                    l.trim()
                        .strip_prefix("--speculative-config '")
                        .map(|r| r.trim_end_matches(['\'', '\\', ' ']).to_string())
                }) {
                    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
                    for key in value.as_object().unwrap().keys() {
                        assert!(spec_keys.contains(key), "speculative-config has no {key}");
                    }
                }
            }
            Engine::Tgi => {
                let known = reference("tgi-launcher-flags.txt");
                for flag in flags(f) {
                    assert!(known.contains(&flag), "TGI has no {flag}:\n{}", f.text);
                }
            }
            Engine::Sglang => {
                let known = local_reference("sglang-server-args.txt");
                // `python -m sglang.launch_server`: the interpreter's flag.
                for flag in flags(f).into_iter().filter(|f| f != "-m") {
                    assert!(known.contains(&flag), "SGLang has no {flag}:\n{}", f.text);
                }
            }
            Engine::Trtllm => {
                let known = reference("trtllm-llm-api-keys.txt");
                for key in yaml_keys(&f.text) {
                    assert!(
                        known.contains(&key),
                        "TRT-LLM LlmArgs has no {key}:\n{}",
                        f.text
                    );
                }
            }
            Engine::Triton => {
                let fields = reference("triton-model-config-fields.txt");
                let params = reference("triton-trtllm-backend-params.txt");
                let mut block: Option<String> = None;
                for line in f.text.lines().filter(|l| !l.trim_start().starts_with('#')) {
                    let t = line.trim();
                    if let Some(name) = t.strip_suffix(" {") {
                        block = Some(name.trim_end_matches(':').to_string());
                        continue;
                    }
                    if t == "}" {
                        block = None;
                        continue;
                    }
                    if let Some(key) = t.strip_prefix("key: ") {
                        let key = key.trim_matches('"');
                        assert!(params.contains(key), "tensorrtllm backend has no {key}");
                        continue;
                    }
                    let Some((name, _)) = t.split_once(':') else {
                        continue;
                    };
                    let path = match (&block, name) {
                        (Some(b), n) if b != "parameters" => format!("{b}.{n}"),
                        (Some(_), "value") => "parameters.value".into(),
                        (Some(_), n) => format!("parameters.{n}"),
                        (None, n) => n.to_string(),
                    };
                    assert!(
                        fields.contains(&path),
                        "config.pbtxt has no {path}:\n{}",
                        f.text
                    );
                }
            }
            Engine::Openai => {
                let known = reference("openai-chat-params.txt");
                if f.name.ends_with(".json") {
                    let value: serde_json::Value = serde_json::from_str(&f.text).unwrap();
                    for key in value.as_object().unwrap().keys() {
                        assert!(known.contains(key), "Chat Completions has no {key}");
                        assert_ne!(key, "max_tokens", "max_tokens is deprecated");
                    }
                }
            }
        }
    }
}

/// The conformance suite, run against every renderer: deterministic output, names the engine
/// accepts today, every supported change visible, nothing set when nothing changes.
#[test]
fn every_renderer_conforms() {
    let catalog = Catalog::bundled().unwrap();
    for renderer in render::all() {
        let engine = renderer.engine();
        let commands = match engine {
            Engine::Vllm => vec![
                None,
                Some(
                    "vllm serve meta-llama/Llama-3.1-70B-Instruct --port 8000 -tp 4 --speculative-model x --num-speculative-tokens 3 --max_num_seqs 64",
                ),
            ],
            Engine::Tgi => vec![
                None,
                Some(
                    "text-generation-launcher --model-id meta-llama/Llama-3.1-70B-Instruct --num-shard 4",
                ),
            ],
            _ => vec![None],
        };
        for command in commands {
            let supply = supply(engine, command);
            let target = Target {
                supply: &supply,
                catalog: &catalog,
            };
            let base = deployment::current(&supply).unwrap();
            for after in changes(engine, &base) {
                let files = renderer.render(&target, &base, &after);
                assert!(!files.is_empty());
                assert_eq!(
                    files,
                    renderer.render(&target, &base, &after),
                    "deterministic"
                );
                check_names(engine, &files);
                let text: String = files.iter().map(|f| f.text.as_str()).collect();
                for change in after.changes_from(&base) {
                    if engine != Engine::Openai {
                        assert!(
                            text.contains(&format!("# {}:", change.knob)),
                            "{engine:?} does not mention {}:\n{text}",
                            change.knob
                        );
                    }
                }
                let migrates = command.is_some_and(|c| c.contains("--speculative-model"));
                if after == base && engine != Engine::Openai && !migrates {
                    // Nothing changes: launch scripts run the same command, config files set nothing.
                    for f in &files {
                        let active: Vec<&str> = f
                            .text
                            .lines()
                            .filter(|l| !l.trim_start().starts_with('#'))
                            .collect();
                        if f.name.ends_with(".sh") {
                            let before: Vec<String> = f
                                .text
                                .lines()
                                .skip_while(|l| !l.starts_with("# Before:"))
                                .skip(1)
                                .take_while(|l| !l.starts_with("# After:"))
                                .map(|l| l.trim_start_matches("#   ").to_string())
                                .collect();
                            assert_eq!(active.join("\n"), before.join("\n"), "{}", f.text);
                        } else {
                            assert!(active.is_empty(), "{}", f.text);
                        }
                    }
                }
            }
        }
    }
}

/// The vLLM renderer replaces the removed speculative flags of an old command.
#[test]
fn vllm_migrates_removed_speculative_flags() {
    let catalog = Catalog::bundled().unwrap();
    let supply = supply(
        Engine::Vllm,
        Some("vllm serve m --speculative-model old --num-speculative-tokens 3 --port 8000"),
    );
    let base = deployment::current(&supply).unwrap();
    let after = ServingConfig {
        speculative: Some(Speculative {
            draft_model: "meta-llama/Llama-3.1-8B-Instruct".into(),
            num_speculative_tokens: 5,
        }),
        ..base.clone()
    };
    let files = render::Vllm.render(
        &Target {
            supply: &supply,
            catalog: &catalog,
        },
        &base,
        &after,
    );
    let active: String = files[0]
        .text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        !active.contains("--speculative-model") && !active.contains("--num-speculative-tokens")
    );
    assert!(active.contains(
        r#"--speculative-config '{"method":"draft_model","model":"meta-llama/Llama-3.1-8B-Instruct","num_speculative_tokens":5}'"#
    ));
    assert!(active.contains("--port 8000"));
}

/// Golden files of one multi-knob change per renderer.
#[test]
fn golden_snippets() {
    let catalog = Catalog::bundled().unwrap();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/snippets");
    for renderer in render::all() {
        let engine = renderer.engine();
        let supply = supply(engine, None);
        let base = deployment::current(&supply).unwrap();
        let mut after = base.clone();
        for (knob, value) in [
            (
                "replicas",
                serde_json::json!({"resource_config": {"replicas": 4}}),
            ),
            (
                "max_num_seqs",
                serde_json::json!({"performance_config": {"max_num_seqs": 512}}),
            ),
            (
                "gpu_memory_utilization",
                serde_json::json!({"performance_config": {"gpu_memory_utilization": 0.85}}),
            ),
            (
                "block_size",
                serde_json::json!({"performance_config": {"block_size": 32}}),
            ),
            (
                "speculative",
                serde_json::json!({"performance_config": {"speculative_decoding": {"draft_model_path": "meta-llama/Llama-3.1-8B-Instruct", "num_speculative_tokens": 4}}}),
            ),
            (
                "kv_offload_gib",
                serde_json::json!({"performance_config": {"kv_offload_gib": 64.0}}),
            ),
            (
                "pd_disaggregation",
                serde_json::json!({"performance_config": {"pd_disaggregation": "1:3"}}),
            ),
            (
                "capacity_scheduler_policy",
                serde_json::json!({"performance_config": {"capacity_scheduler_policy": "max_utilization"}}),
            ),
            (
                "schedule_policy",
                serde_json::json!({"performance_config": {"schedule_policy": "lpm"}}),
            ),
            (
                "waiting_served_ratio",
                serde_json::json!({"performance_config": {"waiting_served_ratio": 1.2}}),
            ),
        ] {
            if engine.supports(knob.parse::<Knob>().unwrap()) {
                after = tunelake::recommend::apply_snippet(&after, &value).unwrap();
            }
        }
        for f in renderer.render(
            &Target {
                supply: &supply,
                catalog: &catalog,
            },
            &base,
            &after,
        ) {
            let path = dir.join(&f.name);
            if std::env::var_os("TUNELAKE_BLESS").is_some() {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &f.text).unwrap();
            }
            let golden = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                panic!("{}: {e} (bless with TUNELAKE_BLESS=1)", path.display())
            });
            assert_eq!(f.text, golden, "{} differs from its golden file", f.name);
        }
    }
}

/// A weight format with its own checkpoint is served by swapping the model path (vLLM and TGI read
/// the format from the checkpoint); FP8 without one is quantized at load (`--quantization fp8`).
#[test]
fn quantized_checkpoints_replace_the_served_model() {
    let catalog = Catalog::bundled().unwrap();
    let mut s = supply(Engine::Vllm, None);
    s.options.checkpoints.insert(
        Quantization::Awq,
        "/models/Llama-3.1-70B-Instruct-AWQ".into(),
    );
    let before = deployment::current(&s).unwrap();
    let target = Target {
        supply: &s,
        catalog: &catalog,
    };
    let render = |engine: Engine, q: Quantization| {
        let after = ServingConfig {
            quantization: Some(q),
            ..before.clone()
        };
        let text = render::for_engine(engine).render(&target, &before, &after)[0]
            .text
            .clone();
        let active: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        active.join("\n")
    };
    let awq = render(Engine::Vllm, Quantization::Awq);
    assert!(
        awq.contains("/models/Llama-3.1-70B-Instruct-AWQ")
            && !awq.contains("meta-llama/Llama-3.1-70B-Instruct ")
            && !awq.contains("--quantization"),
        "{awq}"
    );
    let fp8 = render(Engine::Vllm, Quantization::Fp8);
    assert!(
        fp8.contains("--quantization fp8") && fp8.contains("meta-llama/Llama-3.1-70B-Instruct"),
        "{fp8}"
    );
    let tgi = render(Engine::Tgi, Quantization::Awq);
    assert!(
        tgi.contains("--model-id /models/Llama-3.1-70B-Instruct-AWQ")
            && !tgi.contains("--quantize"),
        "{tgi}"
    );
}
