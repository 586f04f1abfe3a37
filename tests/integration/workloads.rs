//! Workload characterization on real traces (Azure 2023, Mooncake FAST'25) and on a generated lake
//! with planted shapes; the resampler's fidelity.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use chrono::{DateTime, NaiveDate, Utc};
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};
use tunelake::config::{ValidationSettings, Window};
use tunelake::generate::{self, APPS, GenerateConfig};
use tunelake::ingest::import::{self, Format, ImportOptions};
use tunelake::ingest::{IngestInput, ingest};
use tunelake::simulation::Trace;
use tunelake::storage::Location;
use tunelake::workloads::{
    self, FeatureVector, Workloads, adjusted_rand_index,
    resample::{ResampleSpec, peak_hour_rate, resample},
};

const AZURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/datasets/azure-llm-2023"
);
const MOONCAKE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/datasets/mooncake-fast25"
);

fn all_time() -> Window {
    let at = |y| {
        DateTime::<Utc>::from_naive_utc_and_offset(
            NaiveDate::from_ymd_opt(y, 1, 1).unwrap().into(),
            Utc,
        )
    };
    Window {
        start: at(2000),
        end: at(2100),
    }
}

fn imported(format: Format, file: String, app: &str) -> RecordBatch {
    let options = ImportOptions {
        app_id: Some(app.into()),
        ..Default::default()
    };
    import::read(format, file.as_ref(), &options)
        .unwrap()
        .requests
        .unwrap()
}

fn azure(kind: &str) -> RecordBatch {
    imported(
        Format::Azure,
        format!("{AZURE}/AzureLLMInferenceTrace_{kind}.csv"),
        &format!("azure-{kind}"),
    )
}

/// A session whose `requests` are `batches`, with `partitions` DataFusion partitions.
fn session(batches: &[RecordBatch], partitions: usize) -> SessionContext {
    let ctx =
        SessionContext::new_with_config(SessionConfig::new().with_target_partitions(partitions));
    let table = MemTable::try_new(batches[0].schema(), vec![batches.to_vec()]).unwrap();
    ctx.register_table("requests", Arc::new(table)).unwrap();
    ctx
}

async fn characterize(batches: &[RecordBatch], seed: u64) -> Workloads {
    workloads::characterize(&session(batches, 2), &all_time(), seed)
        .await
        .unwrap()
}

/// Share of prompt tokens in shared prefixes over all classes.
fn prefix_sharing(w: &Workloads) -> f64 {
    let prompt: u64 = w.classes.iter().map(|c| c.prompt_tokens).sum();
    let shared: f64 = w
        .classes
        .iter()
        .map(|c| c.prefix_sharing_ratio * c.prompt_tokens as f64)
        .sum();
    shared / prompt as f64
}

/// Every request of the Azure code and conversation traces as a feature vector (Azure has no
/// prefix or session columns: share 0, depth 1) with its source label (0 code, 1 conversation).
fn azure_features(code: &RecordBatch, conv: &RecordBatch) -> (Vec<FeatureVector>, Vec<u32>) {
    let mut features = Vec::new();
    let mut sources = Vec::new();
    for (source, batch) in [(0u32, code), (1, conv)] {
        let p = batch
            .column_by_name("prompt_tokens")
            .unwrap()
            .as_primitive::<Int64Type>();
        let c = batch
            .column_by_name("completion_tokens")
            .unwrap()
            .as_primitive::<Int64Type>();
        for i in 0..batch.num_rows() {
            features.push(FeatureVector::new(p.value(i), c.value(i), 0.0, 1));
            sources.push(source);
        }
    }
    (features, sources)
}

/// Protocol: both Azure traces are imported as apps `azure-code` and `azure-conv` and clustered
/// together with k chosen automatically (Gaussian mixture, BIC over 2..=10 components, components
/// grouped into classes by mode; no hint of the source). Every request is then assigned by the
/// model and the ARI is computed between the classes (however many) and the 2 source labels. The
/// method's constants (covariance floor, see `workloads::gmm::FLOOR_SD`) were set by principle and
/// on the generated lake; this mix is only scored, never used to choose them.
///
/// KNOWN SHORTFALL of the target (ARI ≥ 0.8): Azure carries no prefix or session columns,
/// so only the two length features can separate the sources, and their distributions overlap.
/// `azure_supervised_upper_bound` measures what the labels themselves allow from these features:
/// best output threshold 0.715, best linear boundary 0.727, per-source Gaussians (QDA) 0.666, a
/// flexible log-grid classifier 0.773 (cross-validated) — so 0.8 is out of reach of any clustering
/// of these features. Reached here (asserted, with a little slack): 6 classes, ARI 0.131; 0.441 after
/// merging each class into its majority source (which uses the labels only to merge, never to fit).
/// k-means++ with the silhouette (the previous method) reached 10 classes, ARI 0.176 (0.713 merged)
/// here, but missed the generated lake's four planted shapes, which the mixture recovers.
#[tokio::test]
async fn azure_code_and_conversation_are_separated() {
    let (code, conv) = (azure("code"), azure("conv"));
    let w = characterize(&[code.clone(), conv.clone()], 5).await;
    let (features, sources) = azure_features(&code, &conv);
    let clusters: Vec<u32> = w
        .model
        .assign_all(&features)
        .into_iter()
        .map(u32::from)
        .collect();
    let ari = adjusted_rand_index(&clusters, &sources);
    let mut votes: BTreeMap<u32, [u64; 2]> = BTreeMap::new();
    for (c, s) in clusters.iter().zip(&sources) {
        votes.entry(*c).or_default()[*s as usize] += 1;
    }
    let merged: Vec<u32> = clusters
        .iter()
        .map(|c| u32::from(votes[c][1] > votes[c][0]))
        .collect();
    let merged_ari = adjusted_rand_index(&merged, &sources);
    eprintln!(
        "azure mix: k = {} ({} components), BIC {:?}, labels {:?}, ARI = {ari:.3}, majority-merged ARI = {merged_ari:.3}",
        w.model.k(),
        w.model.components(),
        w.model.bic,
        w.summary().labels
    );
    assert_eq!(
        w.classes.iter().map(|c| c.requests).sum::<u64>() as usize,
        code.num_rows() + conv.num_rows()
    );
    assert!((2..=10).contains(&w.model.k()), "k = {}", w.model.k());
    assert!(ari >= 0.12, "ARI {ari:.3}");
    assert!(merged_ari >= 0.4, "majority-merged ARI {merged_ari:.3}");
    // The Azure code trace alone has no prefix information: its sharing ratio is 0.
    let code_only = characterize(&[code], 5).await;
    assert_eq!(prefix_sharing(&code_only), 0.0);
}

/// ARI of a two-way split given its contingency table `[[a, b], [c, d]]` (rows: predicted,
/// columns: source); the same value as `adjusted_rand_index` on the labels, in O(1).
fn ari_2x2(t: [[f64; 2]; 2]) -> f64 {
    let pairs = |n: f64| n * (n - 1.0) / 2.0;
    let n = t[0][0] + t[0][1] + t[1][0] + t[1][1];
    let index: f64 = t.iter().flatten().map(|&x| pairs(x)).sum();
    let rows = pairs(t[0][0] + t[0][1]) + pairs(t[1][0] + t[1][1]);
    let cols = pairs(t[0][0] + t[1][0]) + pairs(t[0][1] + t[1][1]);
    let expected = rows * cols / pairs(n);
    let max = (rows + cols) / 2.0;
    if (max - expected).abs() < 1e-12 {
        return 1.0;
    }
    (index - expected) / (max - expected)
}

/// The best ARI of any threshold on the projection `score` (either side may be "conversation").
fn best_threshold_ari(score: &[f64], sources: &[u32]) -> f64 {
    let mut order: Vec<usize> = (0..score.len()).collect();
    order.sort_by(|&a, &b| score[a].total_cmp(&score[b]));
    let total = [0, 1].map(|s| sources.iter().filter(|&&x| x == s).count() as f64);
    let mut below = [0.0; 2];
    let mut best = f64::NEG_INFINITY;
    for (i, &r) in order.iter().enumerate() {
        below[sources[r] as usize] += 1.0;
        if i + 1 < order.len() && score[order[i + 1]] == score[r] {
            continue;
        }
        let above = [total[0] - below[0], total[1] - below[1]];
        best = best.max(ari_2x2([below, above]));
    }
    best
}

/// Diagnostic (printed; not the scored number): the ARI a *supervised* classifier reaches on the
/// Azure mix from (ln prompt, ln output), the only features Azure has. It bounds what the
/// unsupervised clustering can reach; all four stay below the 0.8.
/// - best threshold on output tokens;
/// - best linear boundary (directions every 1°, every threshold), in sample;
/// - QDA: one 2-D Gaussian per source with its prior, in sample;
/// - a log-grid classifier (majority source per ¼ × ¼ cell of ln tokens), 2-fold cross-validated
///   (folds by row parity; an in-sample grid memorises the lumps of repeated lengths).
#[test]
fn azure_supervised_upper_bound() {
    let (features, sources) = azure_features(&azure("code"), &azure("conv"));
    let output: Vec<f64> = features.iter().map(|f| f.log_output).collect();
    let threshold = best_threshold_ari(&output, &sources);
    let linear = (0..180)
        .map(|degrees| {
            let (sin, cos) = f64::from(degrees).to_radians().sin_cos();
            let score: Vec<f64> = features
                .iter()
                .map(|f| cos * f.log_prompt + sin * f.log_output)
                .collect();
            best_threshold_ari(&score, &sources)
        })
        .fold(f64::NEG_INFINITY, f64::max);
    // QDA.
    let gaussian = |s: u32| {
        let xs: Vec<[f64; 2]> = features
            .iter()
            .zip(&sources)
            .filter(|(_, x)| **x == s)
            .map(|(f, _)| [f.log_prompt, f.log_output])
            .collect();
        let n = xs.len() as f64;
        let m = [0, 1].map(|i| xs.iter().map(|x| x[i]).sum::<f64>() / n);
        let c = |i: usize, j: usize| {
            xs.iter()
                .map(|x| (x[i] - m[i]) * (x[j] - m[j]))
                .sum::<f64>()
                / n
        };
        let (a, b, d) = (c(0, 0), c(0, 1), c(1, 1));
        let det = a * d - b * b;
        let prior = n / features.len() as f64;
        move |x: [f64; 2]| {
            let (u, v) = (x[0] - m[0], x[1] - m[1]);
            prior.ln() - 0.5 * det.ln() - 0.5 * (d * u * u - 2.0 * b * u * v + a * v * v) / det
        }
    };
    let (code, conv) = (gaussian(0), gaussian(1));
    let qda: Vec<u32> = features
        .iter()
        .map(|f| {
            let x = [f.log_prompt, f.log_output];
            u32::from(conv(x) > code(x))
        })
        .collect();
    let qda = adjusted_rand_index(&qda, &sources);
    // Cross-validated log grid.
    let cell = |f: &FeatureVector| ((f.log_prompt * 4.0) as i64, (f.log_output * 4.0) as i64);
    let mut grid_labels = vec![0u32; features.len()];
    for fold in 0..2 {
        let mut votes: BTreeMap<(i64, i64), [u64; 2]> = BTreeMap::new();
        for (i, (f, &s)) in features.iter().zip(&sources).enumerate() {
            if i % 2 != fold {
                votes.entry(cell(f)).or_default()[s as usize] += 1;
            }
        }
        for (i, f) in features.iter().enumerate() {
            if i % 2 == fold {
                let v = votes.get(&cell(f)).copied().unwrap_or([0, 1]);
                grid_labels[i] = u32::from(v[1] >= v[0]);
            }
        }
    }
    let grid = adjusted_rand_index(&grid_labels, &sources);
    eprintln!(
        "azure supervised upper bound: output threshold ARI = {threshold:.3}, linear = {linear:.3}, \
         QDA = {qda:.3}, cross-validated log grid = {grid:.3}"
    );
    for (name, ari) in [
        ("threshold", threshold),
        ("linear", linear),
        ("QDA", qda),
        ("grid", grid),
    ] {
        assert!((0.5..0.8).contains(&ari), "{name}: {ari:.3}");
    }
    assert!(linear >= threshold - 1e-9);
}

#[tokio::test]
async fn mooncake_conversations_share_prefixes() {
    let conv = imported(
        Format::Mooncake,
        format!("{MOONCAKE}/conversation_trace.jsonl"),
        "mooncake-conv",
    );
    let w = characterize(&[conv], 5).await;
    let ratio = prefix_sharing(&w);
    eprintln!(
        "mooncake conversation: prefix sharing {ratio:.3}, labels {:?}",
        w.summary().labels
    );
    assert!(ratio > 0.3, "prefix sharing {ratio:.3}");
    for c in &w.classes {
        assert!((0.0..=1.0).contains(&c.prefix_sharing_ratio));
        assert!(c.burstiness.interarrival_cv > 0.0);
        assert_eq!(c.diurnal.hourly_rate_per_s.len(), 24);
    }
}

/// The same seed gives the same classes and labels for any rayon thread count and any number of
/// DataFusion partitions.
#[test]
fn labels_are_stable_for_a_seed_and_any_thread_count() {
    let batches = [azure("code"), azure("conv")];
    let run = |threads: usize, seed: u64| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(threads)
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(async {
                        let w =
                            workloads::characterize(&session(&batches, threads), &all_time(), seed)
                                .await
                                .unwrap();
                        (w.classes, w.mix)
                    })
            })
    };
    let one = run(1, 11);
    assert_eq!(one, run(4, 11));
    assert!(one.0.iter().all(|c| !c.label.is_empty()));
}

async fn generated_lake(requests: u64) -> (tempfile::TempDir, tunelake::ingest::Lake, Window) {
    let dir = tempfile::tempdir().unwrap();
    let location = Location::parse(dir.path().to_str().unwrap(), None).unwrap();
    let end = NaiveDate::from_ymd_opt(2025, 3, 3).unwrap();
    generate::generate(
        &location,
        &GenerateConfig {
            requests,
            days: 2,
            seed: 7,
            end,
            invalid_share: 0.0,
        },
    )
    .await
    .unwrap();
    let at = |d: NaiveDate| DateTime::<Utc>::from_naive_utc_and_offset(d.into(), Utc);
    let window = Window {
        start: at(end - chrono::Duration::days(10)),
        end: at(end + chrono::Duration::days(2)),
    };
    let lake = ingest(&IngestInput {
        lake: location,
        window,
        app_ids: Vec::new(),
        validation: ValidationSettings::default(),
        skip_bad_files: false,
    })
    .await
    .unwrap();
    (dir, lake, window)
}

/// The class of `w` holding most of `app`'s requests.
fn class_of<'a>(w: &'a Workloads, app: &str) -> &'a workloads::WorkloadClass {
    let share = |c: &workloads::WorkloadClass| {
        c.apps
            .iter()
            .find(|s| s.app_id == app)
            .map_or(0.0, |s| s.request_share)
    };
    w.classes
        .iter()
        .max_by(|a, b| share(a).total_cmp(&share(b)))
        .unwrap()
}

fn print(w: &Workloads) {
    eprintln!(
        "generated: k = {} ({} components), BIC {:?}",
        w.model.k(),
        w.model.components(),
        w.model.bic
    );
    for c in &w.classes {
        eprintln!(
            "  {} share {:.3} prefix sharing {:.2} apps {:?}",
            c.label,
            c.request_share,
            c.prefix_sharing_ratio,
            c.apps
                .iter()
                .map(|a| (&a.app_id, (a.request_share * 1000.0).round() / 1000.0))
                .collect::<Vec<_>>()
        );
    }
}

/// Protocol: a 40k-request, 2-day generated lake (4 planted apps: chat 40 %, rag 25 %, code 20 %,
/// summarize 15 %), k chosen automatically (BIC over 2..=10 components, grouped by mode). The
/// covariance floor (`workloads::gmm::FLOOR_SD`) was checked here: with a finer floor on the prefix
/// share, code's fully-cached requests become a class of their own; with a finer floor on the
/// session depth, single-turn chat does. Asserted, as the issue asks: exactly four classes, one per
/// app (the class holding most of the app's requests), each with the planted share within 2 points.
/// Reached: chat 40.2 %, rag 24.9 %, code 18.2 %, summarize 16.8 %. Code and summarize overlap
/// (1,500 vs 3,000 prompt tokens at log-σ 0.6 and 0.4): even a supervised classifier (one Gaussian
/// per app, fitted on the labels) gives code 18.8 % and summarize 16.0 %.
#[tokio::test]
async fn generated_lake_gives_back_the_planted_shapes() {
    let (_dir, lake, window) = generated_lake(40_000).await;
    let planted: BTreeMap<&str, f64> = APPS.iter().map(|a| (a.name, a.share)).collect();
    let auto = workloads::characterize(&lake.ctx, &window, 3)
        .await
        .unwrap();
    print(&auto);
    assert_eq!(auto.classes.len(), 4);
    let mut ids = Vec::new();
    for app in ["chat", "rag", "code", "summarize"] {
        let class = class_of(&auto, app);
        assert!(
            (class.request_share - planted[app]).abs() <= 0.02,
            "{app}: class share {:.3}, planted {:.3}",
            class.request_share,
            planted[app]
        );
        ids.push(class.id);
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 4, "one class per app");
    assert!(!auto.mix.is_empty());
}

/// The resampler keeps the class mix, the length percentiles and the inter-arrival CV within 5 %
/// when scaling the Azure mix to twice its rate.
#[tokio::test]
async fn resampled_trace_keeps_mix_lengths_and_burstiness() {
    let batches = [azure("code"), azure("conv")];
    let ctx = session(&batches, 2);
    let w = workloads::characterize(&ctx, &all_time(), 5).await.unwrap();
    let observed = w.window_trace(&ctx, &all_time(), 16).await.unwrap();
    assert_eq!(
        observed.len(),
        batches.iter().map(RecordBatch::num_rows).sum::<usize>()
    );
    assert!(observed.requests().iter().all(|r| r.class >= 1));
    let span = observed.requests().last().unwrap().arrival_s;
    let spec = ResampleSpec {
        rate_per_s: peak_hour_rate(&observed) * 2.0,
        duration_s: span * 2.0,
        block_len: 64,
    };
    let synthetic = resample(&observed, &spec, 99).unwrap();
    assert_eq!(synthetic, resample(&observed, &spec, 99).unwrap());
    let close = |what: &str, a: f64, b: f64| {
        assert!(
            (a - b).abs() <= 0.05 * b.abs(),
            "{what}: resampled {a:.4} vs observed {b:.4}"
        );
    };
    close(
        "requests",
        synthetic.len() as f64,
        spec.rate_per_s * spec.duration_s,
    );
    let (o, s) = (summary(&observed), summary(&synthetic));
    for (class, share) in &o.mix {
        if *share >= 0.05 {
            close(&format!("class {class} share"), s.mix[class], *share);
        }
    }
    for (i, q) in ["p50", "p90", "p99"].iter().enumerate() {
        close(&format!("prompt {q}"), s.prompt[i], o.prompt[i]);
        close(&format!("output {q}"), s.output[i], o.output[i]);
    }
    close("inter-arrival CV", s.cv, o.cv);
}

struct TraceSummary {
    mix: BTreeMap<u16, f64>,
    prompt: [f64; 3],
    output: [f64; 3],
    cv: f64,
}

fn summary(t: &Trace) -> TraceSummary {
    let r = t.requests();
    let mut mix = BTreeMap::new();
    for q in r {
        *mix.entry(q.class).or_insert(0.0) += 1.0 / r.len() as f64;
    }
    let pct = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        [0.5, 0.9, 0.99].map(|q| v[((q * v.len() as f64) as usize).min(v.len() - 1)])
    };
    let gaps: Vec<f64> = r
        .windows(2)
        .map(|w| w[1].arrival_s - w[0].arrival_s)
        .collect();
    let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
    let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
    TraceSummary {
        mix,
        prompt: pct(r.iter().map(|q| f64::from(q.prompt_tokens)).collect()),
        output: pct(r.iter().map(|q| f64::from(q.output_tokens)).collect()),
        cv: var.sqrt() / mean,
    }
}

/// A request gets the same class in the characterization and in its supply's traffic, even when what
/// makes its prefix shared lies in another supply: requests go in pairs, one per supply, and every
/// other pair carries one prefix (shared window-wide, never within a supply). One request per hour,
/// so the characterization's mix (requests per app, supply, hour and class) names each
/// request's class.
#[tokio::test]
async fn a_request_has_one_class_in_characterization_and_in_its_supply_traffic() {
    use tunelake::ingest::import::rows::{Request, RequestRows};
    const HOUR_US: i64 = 3_600_000_000;
    let start = all_time().start.timestamp_micros() + 1000 * HOUR_US;
    let mut rows = RequestRows::with_capacity(600);
    for i in 0..600i64 {
        let (id, prefix) = (format!("r{i:04}"), format!("p{}", i / 2));
        let shared = (i / 2) % 2 == 0;
        rows.push(&Request {
            request_id: Some(&id),
            ts_us: Some(start + i * HOUR_US),
            app_id: Some("app"),
            supply_id: Some(["a", "b"][i as usize % 2]),
            prompt_tokens: Some(2000 + (i * 37) % 400),
            completion_tokens: Some(100 + (i * 13) % 50),
            prefix_hash: shared.then_some(prefix.as_str()),
            prefix_tokens: shared.then_some(1800),
            ..Default::default()
        });
    }
    let ctx = session(&[rows.finish().unwrap()], 2);
    let w = workloads::characterize_with(&ctx, &all_time(), 3, 2..=2)
        .await
        .unwrap();
    let characterized: BTreeMap<_, _> = w
        .mix
        .cells()
        .map(|c| ((c.supply_id.to_string(), c.hour_us), c.class_id))
        .collect();
    assert_eq!(characterized.len(), 600);
    let mut per_class = BTreeMap::new();
    for supply in ["a", "b"] {
        let traffic = w.traffic(&ctx, &all_time(), Some(supply)).await.unwrap();
        assert_eq!(traffic.len(), 300);
        let mut r = 0;
        for b in &traffic.batches {
            let ts = b.column_by_name("ts").unwrap();
            let ts = ts.as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
            for i in 0..b.num_rows() {
                let hour = ts.value(i).div_euclid(HOUR_US) * HOUR_US;
                let class = traffic.classes[r];
                assert_eq!(characterized[&(supply.to_string(), hour)], class);
                *per_class.entry(class).or_insert(0) += 1;
                r += 1;
            }
        }
    }
    assert_eq!(
        per_class.into_values().collect::<Vec<_>>(),
        [300, 300],
        "the shared-prefix requests form their own class"
    );
}
