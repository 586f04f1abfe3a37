//! The long fuzzing run: 100,000 cases for every parser of outside input (the targets of
//! `tests/integration/fuzz.rs`, which CI runs 1,000 cases of). Prints cases, time and verdict per
//! target and fails if any input made a parser panic.
//!
//! `cargo bench --bench fuzz` (set `TUNELAKE_FUZZ_CASES` for another count).

#[allow(dead_code)]
#[path = "../tests/integration/fuzz.rs"]
mod fuzz;

fn main() {
    let cases = std::env::var("TUNELAKE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    // Panics are caught and reported per target; their default messages would flood the output.
    std::panic::set_hook(Box::new(|_| {}));
    let outcomes = fuzz::run_all(cases);
    let _ = std::panic::take_hook();
    println!("| target | cases | seconds | panics |\n|---|---:|---:|---|");
    for o in &outcomes {
        println!(
            "| {} | {} | {:.1} | {} |",
            o.name,
            o.cases,
            o.seconds,
            o.panic
                .as_deref()
                .map_or("none".to_string(), |p| format!("{p:?}"))
        );
    }
    if outcomes.iter().any(|o| o.panic.is_some()) {
        std::process::exit(1);
    }
}
