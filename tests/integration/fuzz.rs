//! Property-based fuzzing of every parser of outside input: the trace importers, the pipeline
//! file, the eval cases file, the requests trace reader and the API's request body. Each target
//! takes mutated real inputs (byte flips, cuts, insertions, duplicated spans, hostile tokens such
//! as `NaN`, `-1` or 2⁶⁴) and plain random bytes; the property is that the parser returns, Ok or
//! a library error, and never panics.
//!
//! CI runs [`SHORT_CASES`] per target; `cargo bench --bench fuzz` includes this file and runs
//! 100,000 per target.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use tunelake::ingest::import::{self, Format, ImportOptions};

/// Cases per target in the test suite.
pub const SHORT_CASES: u32 = 1000;

/// Parses bytes (written under the scratch directory where the parser reads files).
type Parse = Box<dyn Fn(&[u8], &Path)>;

/// One parser under test: its name, real inputs to start from, and how to feed it bytes.
pub struct Target {
    pub name: &'static str,
    pub seeds: Vec<Vec<u8>>,
    /// Any `Err` is fine; a panic is a finding.
    pub parse: Parse,
}

const HOSTILE: &[&str] = &[
    "-1",
    "0",
    "NaN",
    "inf",
    "-inf",
    "1e309",
    "18446744073709551616",
    "-9223372036854775808",
    "9223372036854775807",
    "\"\"",
    "null",
    "[]",
    "{}",
    "\u{0}",
    "\u{feff}",
    ",,,,",
    "\n\n",
    "\"",
    "2026-02-30T25:61:00Z",
    "1970-01-01",
    "99999999-999999",
];

/// One change to an input; positions are fractions of its length, so they stay valid as it changes.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(f64, u8),
    Cut(f64, usize),
    Insert(f64, Vec<u8>),
    Hostile(f64, usize),
    Duplicate(f64, usize),
    Truncate(f64),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (0.0..1.0, any::<u8>()).prop_map(|(p, b)| Mutation::Flip(p, b)),
        (0.0..1.0, 1usize..64).prop_map(|(p, n)| Mutation::Cut(p, n)),
        (0.0..1.0, prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(p, b)| Mutation::Insert(p, b)),
        (0.0..1.0, 0..HOSTILE.len()).prop_map(|(p, i)| Mutation::Hostile(p, i)),
        (0.0..1.0, 1usize..256).prop_map(|(p, n)| Mutation::Duplicate(p, n)),
        (0.0..1.0).prop_map(Mutation::Truncate),
    ]
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let at = |p: f64, len: usize| ((p * len as f64) as usize).min(len);
        match m {
            Mutation::Flip(p, b) if !bytes.is_empty() => {
                let i = at(*p, bytes.len() - 1);
                bytes[i] ^= b;
            }
            Mutation::Flip(..) => {}
            Mutation::Cut(p, n) => {
                let i = at(*p, bytes.len());
                let end = (i + n).min(bytes.len());
                bytes.drain(i..end);
            }
            Mutation::Insert(p, b) => {
                let i = at(*p, bytes.len());
                bytes.splice(i..i, b.iter().copied());
            }
            Mutation::Hostile(p, k) => {
                // Replaces the token (up to the next separator) at the position.
                let i = at(*p, bytes.len());
                let end = bytes[i..]
                    .iter()
                    .position(|c| b",\n:} ]\"".contains(c))
                    .map_or(bytes.len(), |j| i + j);
                bytes.splice(i..end, HOSTILE[*k].bytes());
            }
            Mutation::Duplicate(p, n) => {
                let i = at(*p, bytes.len());
                let end = (i + n).min(bytes.len());
                let span = bytes[i..end].to_vec();
                bytes.splice(end..end, span);
            }
            Mutation::Truncate(p) => {
                let i = at(*p, bytes.len());
                bytes.truncate(i);
            }
        }
    }
    bytes
}

/// The first `lines` lines of a file of `../shared/datasets` (real data, read by tests only).
fn head(dataset_file: &str, lines: usize) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/datasets")
        .join(dataset_file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .take(lines)
        .collect::<Vec<_>>()
        .join("\n")
        .into_bytes()
}

fn repo_file(relative: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)).unwrap()
}

/// An importer reading a file named `file_name` under the scratch directory.
fn importer(
    name: &'static str,
    format: Format,
    file_name: &'static str,
    seeds: Vec<Vec<u8>>,
) -> Target {
    Target {
        name,
        seeds,
        parse: Box::new(move |bytes, scratch| {
            let path = scratch.join(file_name);
            std::fs::write(&path, bytes).unwrap();
            let _ = import::read(format, &path, &ImportOptions::default());
        }),
    }
}

/// Every target, with its seeds.
pub fn targets(scratch: &Path) -> Vec<Target> {
    let blis = "blis-vllm-h100-replay";
    let experiment = "20260217-155451-llama-2-7b-tp1-codegen";
    // The blis importer finds experiments.csv beside the requests directory.
    std::fs::create_dir_all(scratch.join("blis/requests")).unwrap();
    std::fs::write(
        scratch.join("blis/experiments.csv"),
        head(&format!("{blis}/experiments.csv"), 100),
    )
    .unwrap();
    let burstgpt = head(
        "vllm-burstgpt-replay-logs/detail_log/detail_log_scale100_prompt500.json",
        1,
    );
    let burstgpt = burstgpt[..burstgpt.len().min(4000)].to_vec();
    vec![
        importer(
            "import azure",
            Format::Azure,
            "AzureLLMInferenceTrace_conv.csv",
            vec![head("azure-llm-2023/AzureLLMInferenceTrace_conv.csv", 40)],
        ),
        importer(
            "import mooncake",
            Format::Mooncake,
            "conversation_trace.jsonl",
            vec![head("mooncake-fast25/conversation_trace.jsonl", 20)],
        ),
        importer(
            "import inferno",
            Format::Inferno,
            "tuner-exp13.csv",
            vec![head("llm-inferno-tuner/tuner-exp13.csv", 30)],
        ),
        importer(
            "import burstgpt",
            Format::Burstgpt,
            "detail_log_scale100_prompt500.json",
            vec![burstgpt],
        ),
        importer(
            "import blis",
            Format::Blis,
            "blis/requests/20260217-155451-llama-2-7b-tp1-codegen.csv",
            vec![head(&format!("{blis}/requests/{experiment}.csv"), 40)],
        ),
        Target {
            name: "pipeline file",
            seeds: vec![repo_file("pipelines/demo.toml")],
            parse: Box::new(|bytes, scratch| {
                let Ok(text) = std::str::from_utf8(bytes) else {
                    return;
                };
                let path = scratch.join("pipeline.toml");
                std::fs::write(&path, text).unwrap();
                let catalog = tunelake::catalog::Catalog::bundled().unwrap();
                let _ = tunelake::pipeline::load_plan(&path, &Default::default(), &catalog);
            }),
        },
        Target {
            name: "eval cases file",
            seeds: vec![
                repo_file("pipelines/eval/blis-h100.toml"),
                repo_file("pipelines/eval/trtllm-h100.toml"),
            ],
            parse: Box::new(|bytes, scratch| {
                let path = scratch.join("cases.toml");
                std::fs::write(&path, bytes).unwrap();
                let _ = tunelake::config::eval::CasesFile::load(&path);
            }),
        },
        Target {
            name: "requests trace (CSV)",
            seeds: vec![
                b"request_id,ts,app_id,supply_id,prompt_tokens,completion_tokens,status\n\
                  a,2026-11-07T10:00:00Z,chat,s,100,20,ok\n\
                  b,2026-11-07T10:00:01.5Z,chat,s,3000,1,error\n"
                    .to_vec(),
            ],
            parse: Box::new(|bytes, scratch| {
                let path = scratch.join("trace.csv");
                std::fs::write(&path, bytes).unwrap();
                let _ = tunelake::ingest::trace_file::read_trace(&path, None);
            }),
        },
        Target {
            name: "API request body",
            seeds: vec![br#"{"app_ids":["chat","rag"],"analysis_period_days":30}"#.to_vec()],
            parse: Box::new(|bytes, _| {
                let _ = tunelake::serve::parse_analysis_request(bytes);
            }),
        },
    ]
}

/// What fuzzing one target found.
pub struct Outcome {
    pub name: &'static str,
    pub cases: u32,
    pub seconds: f64,
    /// The smallest input that panicked, if any did.
    pub panic: Option<String>,
}

/// Runs `cases` cases of every target (deterministically: the runner's seed is fixed).
pub fn run_all(cases: u32) -> Vec<Outcome> {
    let scratch = tempfile::tempdir().unwrap();
    targets(scratch.path())
        .into_iter()
        .map(|target| fuzz(&target, cases, scratch.path()))
        .collect()
}

fn fuzz(target: &Target, cases: u32, scratch: &Path) -> Outcome {
    let started = std::time::Instant::now();
    let config = Config {
        cases,
        failure_persistence: None,
        rng_algorithm: proptest::test_runner::RngAlgorithm::ChaCha,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(
        config,
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    let seeds = target.seeds.clone();
    let input = prop_oneof![
        9 => (0..seeds.len(), prop::collection::vec(mutation(), 0..8))
            .prop_map(move |(i, m)| apply(seeds[i].clone(), &m)),
        1 => prop::collection::vec(any::<u8>(), 0..512),
    ];
    let scratch = PathBuf::from(scratch);
    let result = runner.run(&input, |bytes| {
        let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            (target.parse)(&bytes, &scratch)
        }));
        parsed.map_err(|_| TestCaseError::fail("panicked"))
    });
    Outcome {
        name: target.name,
        cases,
        seconds: started.elapsed().as_secs_f64(),
        panic: match result {
            Ok(()) => None,
            Err(TestError::Fail(_, bytes)) => Some(String::from_utf8_lossy(&bytes).into_owned()),
            Err(e) => Some(e.to_string()),
        },
    }
}

#[test]
fn no_parser_of_outside_input_panics() {
    let outcomes = run_all(SHORT_CASES);
    for o in &outcomes {
        eprintln!("fuzz {}: {} cases in {:.1} s", o.name, o.cases, o.seconds);
    }
    let panics: Vec<String> = outcomes
        .iter()
        .filter_map(|o| o.panic.as_ref().map(|p| format!("{}: {p:?}", o.name)))
        .collect();
    assert!(panics.is_empty(), "panicked on:\n{}", panics.join("\n"));
    assert_eq!(outcomes.len(), 9);
}
