//! The README's list of output tables is the one definition in `src/sinks/tables/`: the same
//! tables, in the same order, with the same columns in the same order.

use tunelake::sinks::tables::{TableDef, definitions};

/// The backticked words of a line.
fn quoted(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The list items of the README's "Outputs" section that name a table: `- `name` ...: `col`, ...`.
fn readme_tables(readme: &str) -> Vec<(String, Vec<String>)> {
    let section = readme
        .split("\n## Outputs")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("the README has an Outputs section");
    section
        .lines()
        .filter(|l| l.starts_with("- `"))
        .map(|l| {
            let (head, columns) = l.split_once(':').unwrap_or((l, ""));
            (quoted(head)[0].clone(), quoted(columns))
        })
        .collect()
}

/// How the README should list `def`.
fn readme_line(def: &TableDef) -> String {
    let columns: Vec<String> = def
        .columns
        .iter()
        .map(|c| format!("`{}`", c.name))
        .collect();
    format!(
        "- `{}`, one row per {}: {}.",
        def.name,
        def.row,
        columns.join(", ")
    )
}

#[test]
fn the_readme_lists_every_output_table_with_its_columns() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let defined: Vec<(String, Vec<String>)> = definitions()
        .iter()
        .map(|d| {
            (
                d.name.to_string(),
                d.columns.iter().map(|c| c.name.clone()).collect(),
            )
        })
        .collect();
    assert_eq!(
        readme_tables(&readme),
        defined,
        "README.md's Outputs section differs from src/sinks/tables/; its list would read:\n{}",
        definitions()
            .iter()
            .map(readme_line)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn every_column_is_documented_once() {
    for def in definitions() {
        let mut names = std::collections::BTreeSet::new();
        for c in &def.columns {
            assert!(names.insert(&c.name), "{}.{} twice", def.name, c.name);
            assert!(!c.doc.is_empty(), "{}.{} has no doc", def.name, c.name);
        }
    }
}
