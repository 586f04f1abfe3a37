//! The layers of the library, enforced: each top-level module of `src/` may import only the modules
//! listed for it below, and the pure layers may not name the I/O crates. The README's "Architecture"
//! section draws the same picture; this table is the one the build holds the code to.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Ground floor up. A module may import what its own row names (and nothing from a higher floor).
const LAYERS: &[(&str, &[&str])] = &[
    // Facts and primitives: pure, imported by everyone.
    ("error", &[]),
    ("rng", &[]),
    ("hash", &["rng"]),
    ("catalog", &["error"]),
    ("knobs", &["error", "hash", "catalog"]),
    // The engine model: pure (a typed deployment and a trace in, a report out).
    ("simulation", &["error", "hash", "rng", "catalog", "knobs"]),
    // What the lake and the pipeline file look like, and the SQL kept under sql/.
    ("contracts", &["error"]),
    ("config", &["error", "catalog", "knobs"]),
    ("sql", &["error", "hash"]),
    // The one bridge from a pipeline file's supply to the simulator's deployment.
    (
        "deployment",
        &["error", "catalog", "knobs", "simulation", "config"],
    ),
    // The stages, in the order data flows through them: each may use the ones before it.
    ("features", &["error", "hash", "contracts", "config", "sql"]),
    (
        "workloads",
        &[
            "error",
            "hash",
            "rng",
            "simulation",
            "contracts",
            "config",
            "sql",
            "features",
        ],
    ),
    // Fleet and application findings from the window's requests (response caching, ...).
    (
        "opportunities",
        &["error", "hash", "rng", "config", "sql", "workloads"],
    ),
    (
        "calibration",
        &[
            "error",
            "hash",
            "rng",
            "catalog",
            "knobs",
            "simulation",
            "contracts",
            "config",
            "deployment",
            "sql",
            "features",
            "workloads",
        ],
    ),
    // Fidelity of the engine model on measured runs, uncalibrated and calibrated.
    (
        "eval",
        &[
            "error",
            "rng",
            "catalog",
            "knobs",
            "simulation",
            "config",
            "calibration",
        ],
    ),
    (
        "search",
        &[
            "error",
            "hash",
            "rng",
            "catalog",
            "knobs",
            "simulation",
            "config",
            "deployment",
            "workloads",
            "calibration",
        ],
    ),
    (
        "recommend",
        &[
            "error",
            "hash",
            "rng",
            "catalog",
            "knobs",
            "simulation",
            "config",
            "deployment",
            "workloads",
            "calibration",
            "search",
            "opportunities",
        ],
    ),
    // Lake I/O at the edges: the only modules that touch storage.
    ("storage", &["error"]),
    (
        "ingest",
        &[
            "error",
            "hash",
            "contracts",
            "config",
            "sql",
            "storage",
            "simulation",
        ],
    ),
    (
        "sinks",
        &[
            "error",
            "hash",
            "knobs",
            "contracts",
            "config",
            "storage",
            "features",
            "workloads",
            "calibration",
            "eval",
            "search",
            "recommend",
            "opportunities",
        ],
    ),
    (
        "generate",
        &[
            "error",
            "hash",
            "rng",
            "catalog",
            "contracts",
            "storage",
            "ingest",
        ],
    ),
    // The one place stages are chained.
    ("pipeline", &["*"]),
    // Runs of the pipeline, one per day (`tunelake backfill`).
    ("backfill", &["*"]),
    // The HTTP API over the pipeline and its committed runs.
    ("serve", &["*"]),
];

/// Crates the pure layers may not use: they do no I/O and know nothing of Arrow or the pipeline file.
const IMPURE_CRATES: &[&str] = &[
    "arrow",
    "datafusion",
    "parquet",
    "object_store",
    "tokio",
    "futures",
];
/// (`error` is not among them: the crate's error type carries those crates' errors as sources.)
const PURE: &[&str] = &["hash", "rng", "catalog", "knobs", "simulation"];

/// One forbidden reference: which file, which line, what it named.
#[derive(Debug, PartialEq)]
struct Violation {
    file: String,
    line: usize,
    named: String,
}

/// Top-level crate modules (`crate::x`) and external crates named by one source file.
fn references(source: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut in_block_comment = false;
    for (i, raw) in source.lines().enumerate() {
        let mut line = raw.trim();
        if in_block_comment {
            if line.contains("*/") {
                in_block_comment = false;
            }
            continue;
        }
        if line.starts_with("/*") {
            in_block_comment = !line.contains("*/");
            continue;
        }
        if line.starts_with("//") {
            continue;
        }
        if let Some(cut) = line.find("//") {
            line = &line[..cut];
        }
        // `use crate::{a, b::c}` groups.
        for (at, _) in line.match_indices("crate::{") {
            let group = &line[at + "crate::{".len()..];
            let group = group.split('}').next().unwrap_or("");
            for item in group.split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.push((i + 1, name));
                }
            }
        }
        for (at, _) in line.match_indices("crate::") {
            let rest = &line[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.push((i + 1, name));
            }
        }
        if let Some(rest) = line.strip_prefix("use ").or(line.strip_prefix("pub use ")) {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.push((i + 1, format!("extern:{name}")));
        }
        for krate in IMPURE_CRATES {
            if line.contains(&format!("{krate}::")) && !line.contains(&format!("_{krate}::")) {
                found.push((i + 1, format!("extern:{krate}")));
            }
        }
    }
    found
}

/// The forbidden references of one file of module `module`.
fn check(module: &str, file: &str, source: &str) -> Vec<Violation> {
    let Some((_, allowed)) = LAYERS.iter().find(|(m, _)| *m == module) else {
        return vec![Violation {
            file: file.into(),
            line: 0,
            named: format!("module `{module}` has no row in LAYERS"),
        }];
    };
    if allowed.contains(&"*") {
        return Vec::new();
    }
    let known: BTreeSet<&str> = LAYERS.iter().map(|(m, _)| *m).collect();
    references(source)
        .into_iter()
        .filter(|(_, name)| match name.strip_prefix("extern:") {
            Some(krate) => PURE.contains(&module) && IMPURE_CRATES.contains(&krate),
            None => {
                name != module
                    && !matches!(name.as_str(), "Error" | "Result")
                    && (known.contains(name.as_str()) && !allowed.contains(&name.as_str())
                        || !known.contains(name.as_str())
                            && name.chars().next().is_some_and(char::is_lowercase))
            }
        })
        .map(|(line, named)| Violation {
            file: file.into(),
            line,
            named,
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The library module a file of `src/` belongs to (`None` for the binary and the crate root).
fn module_of(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    match first {
        "main.rs" | "lib.rs" | "cli" => None,
        _ => Some(first.trim_end_matches(".rs").to_string()),
    }
}

#[test]
fn every_module_imports_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut violations = Vec::new();
    for path in &files {
        let relative = path.strip_prefix(&src).unwrap();
        let Some(module) = module_of(relative) else {
            continue;
        };
        let source = std::fs::read_to_string(path).unwrap();
        violations.extend(check(&module, &relative.display().to_string(), &source));
    }
    let listed: Vec<String> = violations
        .iter()
        .map(|v| format!("src/{}:{} names {}", v.file, v.line, v.named))
        .collect();
    assert!(
        listed.is_empty(),
        "{} imports break the layering (tests/integration/layers.rs):\n{}",
        listed.len(),
        listed.join("\n")
    );
}

#[test]
fn a_planted_forbidden_import_is_caught() {
    let planted = "use std::fmt;\nuse crate::config::Supply;\n// use crate::sinks::Table;\n";
    assert_eq!(
        check("simulation", "simulation/engine.rs", planted),
        vec![Violation {
            file: "simulation/engine.rs".into(),
            line: 2,
            named: "config".into()
        }]
    );
    let grouped = "use crate::{catalog::Catalog, storage::Location};";
    assert_eq!(
        check("search", "search/mod.rs", grouped)
            .iter()
            .map(|v| v.named.as_str())
            .collect::<Vec<_>>(),
        ["storage"]
    );
    let impure = "    let batch: arrow::array::RecordBatch = todo!();";
    assert_eq!(check("simulation", "simulation/trace.rs", impure).len(), 1);
    assert!(check("workloads", "workloads/mod.rs", impure).is_empty());
    assert!(check("pipeline", "pipeline.rs", "use crate::sinks;").is_empty());
}
