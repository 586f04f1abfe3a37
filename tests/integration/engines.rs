//! Engines beyond vLLM: the schedulers of TensorRT-LLM, TGI and SGLang, prefill/decode
//! disaggregation and KV offloading, each against a known answer (exact step counts and times under
//! the linear step model, KV-bound batch sizes, hit counts), plus the long-context throughput of
//! TensorRT-LLM's no-evict policy against a hand calculation.

use std::path::Path;

use chrono::Duration;
use tunelake::catalog::Catalog;
use tunelake::config::Engine;
use tunelake::knobs::{CapacityPolicy, SchedulePolicy};
use tunelake::pipeline;
use tunelake::simulation::*;

use crate::support::{
    Backend, Req, SupplyToml, at, location, pipeline_toml, plan_with, requests_batch, write_table,
};

const LLAMA_8B: &str = "meta-llama/Llama-3.1-8B-Instruct";

fn llama8b_h100(kind: SchedulerKind, replicas: u32) -> Deployment {
    let c = Catalog::bundled().unwrap();
    let mut d = Deployment::new(
        c.gpu("H100").unwrap().clone(),
        c.model(LLAMA_8B).unwrap().clone(),
        1,
        replicas,
    );
    d.scheduler = kind;
    d
}

/// Every step takes `ms` milliseconds whatever it holds; nothing happens outside the engine.
fn constant_steps(d: &mut Deployment, ms: f64) {
    d.step_model = StepTimeModel::Linear(LinearParams {
        alpha_ms: ms,
        beta_ms: 0.0,
        gamma_ms: 0.0,
        delta_ms: 0.0,
        activation_reserve_gib: 1.5,
    });
    d.engine.frontend_ms = 0.0;
}

fn opts() -> SimOptions {
    SimOptions {
        seed: 7,
        keep_per_request: true,
        ..SimOptions::default()
    }
}

fn trace(requests: &[(f64, u32, u32)]) -> Trace {
    Trace::new(
        requests
            .iter()
            .map(|&(t, p, o)| TraceRequest::new(t, p, o))
            .collect(),
    )
    .unwrap()
}

fn per_request(r: &SimReport) -> &[RequestResult] {
    r.per_request.as_deref().unwrap()
}

/// A decodes alone when B arrives (10.5 ms, steps of 1 ms; 50 output tokens each). vLLM and
/// TensorRT-LLM put B's prefill in the step with A's decode: A is done at 50 ms. SGLang and TGI prefill
/// B alone while A waits a step: A is done at 51 ms. Either way 61 steps: A's prefill, 10 decodes, B's
/// prefill, B's 49 decodes. TGI with a waiting-served ratio of 2 does not start a batch of one beside a
/// batch of one until 20 decode steps have passed since the last batch: B waits until 20 ms, and the
/// run takes 1 + 19 + 1 + 49 = 70 steps.
#[test]
fn prefill_alone_or_mixed_and_tgi_waiting_served_ratio() {
    let t = trace(&[(0.0, 100, 50), (0.0105, 100, 50)]);
    let cases = [
        (SchedulerKind::VllmV1, 0.3, 61, 50.0, 0.5),
        (SchedulerKind::Trtllm, 0.3, 61, 50.0, 0.5),
        (SchedulerKind::Sglang, 0.3, 61, 51.0, 0.5),
        (SchedulerKind::Tgi, 0.3, 61, 51.0, 0.5),
        (SchedulerKind::Tgi, 2.0, 70, 51.0, 9.5),
    ];
    for (kind, ratio, steps, a_e2e, b_queue) in cases {
        let mut d = llama8b_h100(kind, 1);
        constant_steps(&mut d, 1.0);
        d.config.waiting_served_ratio = ratio;
        for step_by_step in [false, true] {
            let r = simulate(
                &d,
                &t,
                &SimOptions {
                    step_by_step,
                    ..opts()
                },
            )
            .unwrap();
            let (a, b) = (&per_request(&r)[0], &per_request(&r)[1]);
            assert_eq!(r.steps, steps, "{kind:?} ratio {ratio}");
            assert!((a.e2e_ms - a_e2e).abs() < 1e-6, "{kind:?}: A {}", a.e2e_ms);
            assert!(
                (b.queue_ms - b_queue).abs() < 1e-6,
                "{kind:?}: B {}",
                b.queue_ms
            );
            assert!((b.e2e_ms - (b_queue + 50.0)).abs() < 1e-6, "{kind:?}");
        }
    }
}

/// 40 requests of 2,000 + 2,000 tokens at once on a 2,000-block cache (16-token blocks): a whole
/// request needs ⌈3,999 / 16⌉ = 250 blocks, so TensorRT-LLM's GUARANTEED_NO_EVICT runs exactly
/// ⌊2,000 / 250⌋ = 8 at a time and never preempts. vLLM admits on prompt blocks alone (125 each)
/// and preempts as outputs grow; so does MAX_UTILIZATION. TGI reserves as no-evict does.
#[test]
fn no_evict_batches_are_bounded_by_whole_requests_and_never_preempt() {
    let t = Trace::poisson(40, 1e6, 3, |_| (2000, 2000));
    let run = |kind: SchedulerKind, policy: CapacityPolicy| {
        let mut d = llama8b_h100(kind, 1);
        d.engine.num_gpu_blocks_override = Some(2000);
        d.config.capacity_scheduler_policy = policy;
        let r = simulate(&d, &t, &opts()).unwrap();
        assert_eq!(r.finished, 40, "{kind:?} {policy:?}");
        assert_eq!(r.leaked_blocks, 0);
        r
    };
    let no_evict = run(SchedulerKind::Trtllm, CapacityPolicy::GuaranteedNoEvict);
    assert_eq!(no_evict.preemptions, 0);
    assert_eq!(no_evict.max_batch, 8);
    let tgi = run(SchedulerKind::Tgi, CapacityPolicy::GuaranteedNoEvict);
    assert_eq!(tgi.preemptions, 0);
    assert_eq!(tgi.max_batch, 8);
    let max_util = run(SchedulerKind::Trtllm, CapacityPolicy::MaxUtilization);
    let vllm = run(SchedulerKind::VllmV1, CapacityPolicy::GuaranteedNoEvict);
    assert!(vllm.preemptions > 0 && max_util.preemptions > 0);
    assert!(vllm.max_batch > 8 && max_util.max_batch > 8);
    println!(
        "preemptions: vLLM {}, MAX_UTILIZATION {}, GUARANTEED_NO_EVICT 0; max batch {} / {} / 8",
        vllm.preemptions, max_util.preemptions, vllm.max_batch, max_util.max_batch
    );
}

/// The offline case: 20,000 input and 2,000 output tokens on one H100 (Llama-3.1-8B, chunked
/// context). GUARANTEED_NO_EVICT keeps B = ⌊KV blocks ÷ blocks of a whole request⌋ requests in
/// flight. Hand calculation of the steady state: each request is prefilled once (t_pre: 20,000
/// tokens in chunks of the token budget) and then decodes 2,000 steps in a batch of B whose mean
/// context is 21,000 tokens (t_dec per step), so B requests finish every B · t_pre + 2,000 · t_dec
/// and throughput = B · 2,000 ÷ (B · t_pre + 2,000 · t_dec). The simulation must come within 20 %.
#[test]
fn trtllm_long_context_throughput_matches_the_kv_bound() {
    let (prompt, output) = (20_000u32, 2_000u32);
    let mut d = llama8b_h100(SchedulerKind::Trtllm, 1);
    d.config.block_size = 32;
    d.config.max_num_seqs = 2048;
    d.config.enable_chunked_prefill = true;
    d.engine.max_model_len = Some(32_768);
    let blocks = d.num_gpu_blocks().unwrap();
    let per_request = u64::from((prompt + output - 1).div_ceil(32));
    let b = blocks / per_request;
    let cost = StepCost::new(&d, &d.model);
    let budget = d.config.max_num_batched_tokens;
    let mut t_pre = 0.0;
    let mut done = 0;
    while done < prompt {
        let chunk = (prompt - done).min(budget);
        t_pre += cost.step_s(&StepShape {
            num_seqs: 1,
            decode_seqs: 0,
            tokens: chunk,
            prefill_tokens: chunk,
            kv_tokens: u64::from(done + chunk),
            attn_pairs: f64::from(chunk) * (f64::from(done) + (f64::from(chunk) + 1.0) / 2.0),
        });
        done += chunk;
    }
    let kv = b * u64::from(prompt + output / 2);
    let t_dec = cost.step_s(&StepShape {
        num_seqs: b as u32,
        decode_seqs: b as u32,
        tokens: b as u32,
        prefill_tokens: 0,
        kv_tokens: kv,
        attn_pairs: kv as f64,
    });
    let expected = (b * u64::from(output)) as f64 / (b as f64 * t_pre + f64::from(output) * t_dec);

    let n = 8 * b as usize;
    let t = Trace::poisson(n, 1e6, 11, |_| (prompt, output));
    let trt = simulate(&d, &t, &opts()).unwrap();
    assert_eq!(trt.finished, n as u64);
    assert_eq!(trt.preemptions, 0);
    assert_eq!(u64::from(trt.max_batch), b);
    let ratio = trt.output_tokens_per_s / expected;
    let mut vllm = d.clone();
    vllm.scheduler = SchedulerKind::VllmV1;
    vllm.config.block_size = 16;
    let v = simulate(&vllm, &t, &opts()).unwrap();
    println!(
        "B = {b} ({blocks} blocks); t_pre {:.1} ms, t_dec {:.2} ms; hand {expected:.0} tok/s, \
         TRT-LLM {:.0} tok/s ({:+.1} %); vLLM model {:.0} tok/s with {} preemptions",
        t_pre * 1e3,
        t_dec * 1e3,
        trt.output_tokens_per_s,
        100.0 * (ratio - 1.0),
        v.output_tokens_per_s,
        v.preemptions
    );
    assert!((ratio - 1.0).abs() < 0.2, "{ratio}");
}

/// `lpm` admits the longest cached prefix first. X0 warms prefix X and runs alone (one sequence at a
/// time) while Y1, X1, Y2, X2 arrive: FCFS serves them in that order, `lpm` serves X1 and X2 (cache
/// hits) before Y1 and Y2.
#[test]
fn sglang_lpm_serves_cached_prefixes_first() {
    let mut requests = Vec::new();
    for (i, (t, group)) in [(0.0, 1u64), (0.01, 2), (0.02, 1), (0.03, 2), (0.04, 1)]
        .into_iter()
        .enumerate()
    {
        let mut r = TraceRequest::new(t, 1024, 20);
        r.prefix_hashes = (0..64).map(|b| group * 1000 + b).collect();
        r.class = i as u16;
        requests.push(r);
    }
    let t = Trace::new(requests).unwrap();
    let order = |policy: SchedulePolicy| {
        let mut d = llama8b_h100(SchedulerKind::Sglang, 1);
        constant_steps(&mut d, 10.0);
        d.config.max_num_seqs = 1;
        d.config.schedule_policy = policy;
        let r = simulate(&d, &t, &opts()).unwrap();
        let mut starts: Vec<(f64, usize)> = per_request(&r)
            .iter()
            .map(|q| (q.arrival_s * 1e3 + q.queue_ms, q.index as usize))
            .collect();
        starts.sort_by(|a, b| a.0.total_cmp(&b.0));
        starts.into_iter().map(|(_, i)| i).collect::<Vec<_>>()
    };
    // Requests: 0 = X0, 1 = Y1, 2 = X1, 3 = Y2, 4 = X2.
    assert_eq!(order(SchedulePolicy::Fcfs), [0, 1, 2, 3, 4]);
    assert_eq!(order(SchedulePolicy::Lpm), [0, 2, 4, 1, 3]);
}

/// SGLang admits on expected, not reserved, output and retracts requests when decoding runs out of
/// KV; every request still finishes and no block leaks.
#[test]
fn sglang_retracts_under_kv_pressure() {
    let t = Trace::poisson(60, 1e6, 5, |_| (1000, 3000));
    let mut d = llama8b_h100(SchedulerKind::Sglang, 1);
    d.engine.num_gpu_blocks_override = Some(3000);
    let r = simulate(&d, &t, &opts()).unwrap();
    assert_eq!(r.finished, 60);
    assert_eq!(r.leaked_blocks, 0);
    assert!(r.preemptions > 0);
    // Admission counts the running requests' output at the new-token ratio (at least 0.098), so
    // more run at once than whole requests fit: ⌈3,999 / 16⌉ = 250 blocks → 12.
    assert!(r.max_batch > 12, "{}", r.max_batch);
}

/// One request of 1,000 prompt tokens, steps of 1 ms: aggregated, the first token comes after the
/// prefill step (1 ms). Disaggregated, the prompt's KV then travels to the decode instance
/// (latency + bytes ÷ (KV shards × link bandwidth)) and the decode instance recomputes the last
/// prompt token to emit the first one (1 ms more).
#[test]
fn disaggregated_ttft_adds_the_kv_transfer_and_one_step() {
    let c = Catalog::bundled().unwrap();
    let t = trace(&[(0.0, 1000, 20)]);
    let mut agg = llama8b_h100(SchedulerKind::VllmV1, 2);
    constant_steps(&mut agg, 1.0);
    let mut dis = agg.clone();
    dis.config.pd_disaggregation = Some("1:1".parse().unwrap());
    dis.kv_link = Some(c.network(None).unwrap().clone());
    let transfer_ms = dis.kv_transfer_s(1000) * 1e3;
    // 1,000 tokens × 128 KiB of Llama-3.1-8B KV over one 50 GB/s link, plus 5 µs.
    assert!((transfer_ms - (0.005 + 1000.0 * 131_072.0 / 50e9 * 1e3)).abs() < 1e-9);
    let a = simulate(&agg, &t, &opts()).unwrap();
    let d = simulate(&dis, &t, &opts()).unwrap();
    assert!((a.ttft_ms.p50 - 1.0).abs() < 1e-6);
    assert!((d.ttft_ms.p50 - (1.0 + transfer_ms + 1.0)).abs() < 1e-3);
    assert!((d.e2e_ms.p50 - d.ttft_ms.p50 - 19.0).abs() < 1e-3);
    assert_eq!(d.gpu_seconds / d.makespan_s, 2.0);
    let per = per_request(&d);
    assert_eq!(per[0].replica, 1, "decoded on the decode instance");
    // One replica cannot be split.
    dis.config.replicas = 1;
    assert!(simulate(&dis, &t, &opts()).is_err());
}

/// Long prompts arriving steadily beside long decodes: aggregated, every decode step carries a
/// prefill chunk, so time per output token inflates; disaggregated, decode instances only decode.
#[test]
fn disaggregation_isolates_decode_from_prefill() {
    let c = Catalog::bundled().unwrap();
    let t = Trace::poisson(600, 3.0, 9, |_| (12_000, 400));
    let agg = llama8b_h100(SchedulerKind::VllmV1, 2);
    let mut dis = agg.clone();
    dis.config.pd_disaggregation = Some("1:1".parse().unwrap());
    dis.kv_link = Some(c.network(None).unwrap().clone());
    let a = simulate(&agg, &t, &opts()).unwrap();
    let d = simulate(&dis, &t, &opts()).unwrap();
    println!(
        "TPOT p95 {:.1} → {:.1} ms, TTFT p95 {:.0} → {:.0} ms",
        a.tpot_ms.p95, d.tpot_ms.p95, a.ttft_ms.p95, d.ttft_ms.p95
    );
    assert_eq!((a.finished, d.finished), (600, 600));
    assert!(d.tpot_ms.p95 < 0.7 * a.tpot_ms.p95);
}

/// Eight 4,096-token prefixes used in turn, one request at a time, on a GPU cache that holds fewer
/// than three: LRU evicts each prefix before its next use, so nothing hits. With a host tier that
/// holds all eight, every request after the first round hits its whole prefix (256 blocks), loaded
/// from host memory.
#[test]
fn kv_offload_serves_prefix_reuse_beyond_gpu_memory() {
    let n = 40u64;
    let requests: Vec<TraceRequest> = (0..n)
        .map(|i| {
            let mut r = TraceRequest::new(i as f64, 4096 + 64, 4);
            r.prefix_hashes = (0..256).map(|b| (i % 8) * 10_000 + b).collect();
            r
        })
        .collect();
    let t = Trace::new(requests).unwrap();
    let mut d = llama8b_h100(SchedulerKind::VllmV1, 1);
    d.engine.num_gpu_blocks_override = Some(700);
    let without = simulate(&d, &t, &opts()).unwrap();
    assert_eq!(without.prefix_cache_hit_rate, 0.0);
    // 8 prefixes × 256 blocks × 16 tokens × 128 KiB = 4 GiB.
    d.config.kv_offload_gib = 4.0;
    let with = simulate(&d, &t, &opts()).unwrap();
    let expected = ((n - 8) * 4096) as f64 / (n * 4160) as f64;
    assert!((with.prefix_cache_hit_rate - expected).abs() < 1e-12);
    assert_eq!(with.host_loaded_blocks, (n - 8) * 256);
    assert!(with.ttft_ms.p50 < 0.5 * without.ttft_ms.p50);
    // A GPU without a host-link figure cannot offload.
    d.gpu.host_link_gbps = None;
    assert!(simulate(&d, &t, &opts()).is_err());
}

/// Preempted sequences park their KV in the host tier instead of being recomputed.
#[test]
fn kv_offload_parks_preempted_sequences() {
    let t = Trace::poisson(40, 1e6, 3, |_| (2000, 2000));
    let mut d = llama8b_h100(SchedulerKind::VllmV1, 1);
    d.engine.num_gpu_blocks_override = Some(2000);
    let recompute = simulate(&d, &t, &opts()).unwrap();
    d.config.kv_offload_gib = 64.0;
    let parked = simulate(&d, &t, &opts()).unwrap();
    assert!(recompute.preemptions > 0 && parked.preemptions > 0);
    assert_eq!(recompute.host_loaded_blocks, 0);
    assert!(parked.host_loaded_blocks > 0);
    assert!(parked.prefill_tokens < recompute.prefill_tokens);
    assert_eq!(parked.finished, 40);
    assert_eq!(parked.leaked_blocks, 0);
}

/// Requests at a steady `rate` for `minutes` from 10:00, `prompt` + `completion` tokens each.
fn steady(
    supply: &'static str,
    rate: f64,
    minutes: u32,
    (prompt, completion): (i64, i64),
) -> Vec<Req> {
    let n = (rate * 60.0 * f64::from(minutes)) as usize;
    (0..n)
        .map(|i| Req {
            id: Some(format!("{supply}-{i}")),
            ts: Some(
                at("2026-11-01T10:00:00Z") + Duration::microseconds((i as f64 / rate * 1e6) as i64),
            ),
            app: Some("app"),
            supply: Some(supply),
            prompt: Some(prompt),
            completion: Some(completion),
            status: Some("ok"),
            ..Default::default()
        })
        .collect()
}

/// Known answer, end to end: one supply per engine (vLLM, TensorRT-LLM, Triton with TensorRT-LLM,
/// TGI, SGLang) on a lake built row by row.
/// - `long-docs` (vLLM) is planted to favour disaggregation: 4,000-token prompts at 10/s with 100
///   output tokens and a 9 ms TPOT target. Aggregated, a third of each replica's time goes to
///   prefill chunks that the decode steps wait for, and two replicas miss the TPOT target (about
///   11 ms at p95; a third replica would be needed); one prefill and one decode instance meet both
///   targets (about 7.4 ms) at the same two replicas, so disaggregation is recommended, with its
///   `--kv-transfer-config`.
/// - The four others serve a light chat load on three replicas: each is told to shed replicas, in
///   its own engine's snippet, whose flags and keys the conformance lists know.
#[tokio::test]
async fn every_engine_runs_end_to_end_and_disaggregation_wins_where_planted() {
    let dir = tempfile::tempdir().unwrap();
    let (_, lake) = location(Backend::Local, "lake", &dir);
    let mut rows = steady("long-docs", 10.0, 20, (4_000, 100));
    for supply in ["trtllm-chat", "triton-chat", "tgi-chat", "sglang-chat"] {
        rows.extend(steady(supply, 0.5, 20, (600, 150)));
    }
    write_table(&lake, "requests", requests_batch(&rows)).await;
    let chat = |id: &'static str, engine: Engine, options: &str| SupplyToml {
        engine,
        replicas: Some(3),
        p95_ttft_ms: 1000.0,
        p95_tpot_ms: 60.0,
        extra: format!("options = {{ replicas = [1, 2, 3], {options} }}"),
        ..SupplyToml::new(id, LLAMA_8B, "H100-SXM")
    };
    let supplies = [
        SupplyToml {
            replicas: Some(2),
            p95_ttft_ms: 6000.0,
            p95_tpot_ms: 9.0,
            extra: "config = { max_model_len = 16384 }\n\
                    options = { replicas = [2, 3, 4], pd_disaggregation = [\"1:1\"] }"
                .into(),
            ..SupplyToml::new("long-docs", LLAMA_8B, "H100-SXM")
        },
        chat(
            "trtllm-chat",
            Engine::Trtllm,
            "capacity_scheduler_policy = [\"max_utilization\"]",
        ),
        chat("triton-chat", Engine::Triton, "max_num_seqs = [256, 2048]"),
        chat("tgi-chat", Engine::Tgi, "waiting_served_ratio = [0.3, 1.2]"),
        chat("sglang-chat", Engine::Sglang, "schedule_policy = [\"lpm\"]"),
    ];
    let head = "[run]\nlake = \"lake\"\nout = \"out\"\nas_of = \"2026-11-02\"\nperiod_days = 1\nseed = 3\n";
    let plan = plan_with(
        &dir.path().join("engines.toml"),
        &pipeline_toml(head, &supplies),
        "engines",
    );
    let summary = pipeline::run(&plan, &()).await.unwrap();
    let recommendation = |id: &str| {
        summary
            .analysis
            .recommendations
            .iter()
            .find(|r| r.target_supply_id == id)
            .unwrap_or_else(|| panic!("no recommendation for {id}"))
    };
    let snippet = |id: &str, file: &str| {
        let path = Path::new(&summary.out)
            .join("_runs")
            .join(format!("run_id={}", summary.run_id))
            .join("snippets")
            .join(id)
            .join(file);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };

    let docs = recommendation("long-docs");
    let perf = &docs.recommended_config_snippet["performance_config"];
    assert_eq!(
        perf["pd_disaggregation"], "1:1",
        "{}",
        docs.analysis_summary
    );
    assert!(docs.recommended_config_snippet["resource_config"]["replicas"].is_null());
    let launch = snippet("long-docs", "vllm.sh");
    assert!(launch.contains("--kv-transfer-config"), "{launch}");
    assert!(
        launch.contains("NixlConnector") && launch.contains("1 prefill"),
        "{launch}"
    );

    for (id, file) in [
        ("trtllm-chat", "trtllm.yaml"),
        ("triton-chat", "triton.pbtxt"),
        ("tgi-chat", "tgi.sh"),
        ("sglang-chat", "sglang.sh"),
    ] {
        let r = recommendation(id);
        let replicas = &r.recommended_config_snippet["resource_config"]["replicas"];
        assert!(
            replicas.as_u64().is_some_and(|n| n < 3),
            "{id}: {}",
            r.analysis_summary
        );
        assert!(r.predicted_impact.cost_change_percent < 0.0, "{id}");
        let text = snippet(id, file);
        assert!(text.contains("# replicas: 3 -> "), "{id}:\n{text}");
    }
    let sglang = snippet("sglang-chat", "sglang.sh");
    assert!(sglang.contains("sglang.launch_server"), "{sglang}");
}

/// Without chunked context, a request preempted under MAX_UTILIZATION comes back longer than the
/// token budget (its prompt plus what it generated) and is still served, not refused.
#[test]
fn preempted_requests_past_an_unchunked_budget_are_served() {
    let t = Trace::poisson(20, 1e6, 3, |_| (2000, 2000));
    let mut d = llama8b_h100(SchedulerKind::Trtllm, 1);
    d.engine.num_gpu_blocks_override = Some(2000);
    d.config.capacity_scheduler_policy = CapacityPolicy::MaxUtilization;
    d.config.enable_chunked_prefill = false;
    d.config.max_num_batched_tokens = 2048;
    let r = simulate(&d, &t, &opts()).unwrap();
    assert!(r.preemptions > 0);
    assert_eq!((r.finished, r.rejected), (20, 0));
}

/// A request the decode instances could never hold is refused before it is prefilled.
#[test]
fn disaggregation_refuses_what_the_decode_side_cannot_hold() {
    let c = Catalog::bundled().unwrap();
    let t = trace(&[(0.0, 1000, 20), (0.001, 1000, 40_000)]);
    let mut d = llama8b_h100(SchedulerKind::VllmV1, 2);
    d.engine.num_gpu_blocks_override = Some(1000);
    d.config.pd_disaggregation = Some("1:1".parse().unwrap());
    d.kv_link = Some(c.network(None).unwrap().clone());
    let r = simulate(&d, &t, &opts()).unwrap();
    assert_eq!((r.finished, r.rejected), (1, 1));
    assert_eq!(per_request(&r)[1].replica, u32::MAX);
    assert_eq!(
        r.generated_tokens, 20,
        "the prefill pool's first tokens are not counted twice"
    );
}
