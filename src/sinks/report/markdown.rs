//! `report.md`: the findings as Markdown, for a pull request or a chat message.

use std::fmt::Write;

use super::{ReportInput, SupplyReport, findings, impact_rows, pct, verdict};
use crate::recommend::Status;

/// The run's findings: an overview table, then per supply its summary, impact and snippets.
pub fn markdown(input: &ReportInput) -> String {
    let mut md = String::new();
    let w = &mut md;
    let _ = writeln!(w, "# tunelake report: run `{}`\n", input.run_id);
    let _ = writeln!(
        w,
        "Window {} to {} (UTC) · analysis `{}`\n",
        input.window.start.format("%Y-%m-%d %H:%M"),
        input.window.end.format("%Y-%m-%d %H:%M"),
        input.analysis_id
    );
    let _ = writeln!(
        w,
        "| supply | verdict | cost | p95 latency | p95 TTFT | p95 TPOT |\n|---|---|---|---|---|---|"
    );
    for s in &input.supplies {
        let i = &s.recommendation.recommendation.predicted_impact;
        let changed = s.recommendation.status == Status::Recommended;
        let change = |x: f64| if changed { pct(x) } else { "–".into() };
        let _ = writeln!(
            w,
            "| `{}` | {} | {} | {} | {} | {} |",
            cell(&s.supply.id),
            verdict(s.recommendation.status),
            change(i.cost_change_percent),
            change(i.p95_latency_change_percent),
            change(i.p95_ttft_change_percent),
            change(i.p95_tpot_change_percent)
        );
    }
    for s in &input.supplies {
        supply(w, s);
    }
    for f in findings(input) {
        let _ = writeln!(
            w,
            "\n## {}\n\n| {} |\n|{}",
            f.title,
            f.header.join(" | "),
            "---|".repeat(f.header.len())
        );
        for row in f.rows {
            let cells: Vec<String> = row.iter().map(|c| cell(c)).collect();
            let _ = writeln!(w, "| {} |", cells.join(" | "));
        }
    }
    md
}

/// Text made safe for one Markdown table cell or inline span.
fn cell(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('`', "'")
        .replace(['\n', '\r'], " ")
}

fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

fn supply(w: &mut String, s: &SupplyReport) {
    let r = &s.recommendation;
    let _ = writeln!(
        w,
        "\n## `{}`: {}\n\n{}\n",
        cell(&s.supply.id),
        verdict(r.status),
        r.recommendation.analysis_summary
    );
    if r.status == Status::Recommended {
        let _ = writeln!(
            w,
            "| predicted change | point | 95 % interval |\n|---|---|---|"
        );
        for (label, value, interval) in impact_rows(&r.recommendation.predicted_impact) {
            let _ = writeln!(w, "| {label} | {value} | {interval} |");
        }
        w.push('\n');
    }
    for artifact in &s.snippets {
        let name = SupplyReport::snippet_name(artifact);
        let fence = if name.ends_with(".sh") {
            "sh"
        } else if name.ends_with(".json") {
            "json"
        } else if name.ends_with(".py") {
            "python"
        } else {
            ""
        };
        let text = String::from_utf8_lossy(&artifact.bytes);
        // A fence longer than any backtick run inside the snippet.
        let ticks = "`".repeat(3.max(longest_backtick_run(&text) + 1));
        let _ = writeln!(
            w,
            "`{}`:\n\n{ticks}{fence}\n{}\n{ticks}\n",
            cell(name),
            text.trim_end()
        );
    }
}
