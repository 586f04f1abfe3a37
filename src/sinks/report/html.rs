//! `report.html`: one self-contained page. Its Content-Security-Policy forbids every fetch, so the
//! page shows the same offline, from a mail attachment or from the API.

use std::collections::BTreeMap;
use std::fmt::Write;

use plotters::chart::SeriesLabelPosition;

use super::charts::{CHOSEN, CURRENT, LineChart, OTHER, Series, StackedBars, colour};
use super::{ReportInput, SupplyReport, findings, impact_rows, pct, verdict};
use crate::error::Result;
use crate::recommend::{LatencyProfile, Status};
use crate::search::{Round, pareto};

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1320px;color:#222;padding:0 1rem}\
h1{font-size:1.5rem}h2{margin-top:2.5rem;border-bottom:1px solid #ddd}table{border-collapse:collapse;margin:.8rem 0}\
td,th{border:1px solid #ddd;padding:.3rem .6rem;text-align:left}th{background:#f5f5f5}\
.recommended{color:#1a7f37}.no_change{color:#555}.no_feasible{color:#b42318}.hosted{color:#555}\
.charts{display:flex;flex-wrap:wrap;gap:1rem}.chart{margin:0}.chart svg{width:640px;height:340px;border:1px solid #eee}\
pre{background:#f6f8fa;padding:.8rem;overflow-x:auto;white-space:pre-wrap}.snippet{position:relative}\
.snippet button{position:absolute;top:.4rem;right:.4rem}.muted{color:#666}";

/// Copies the text of the snippet next to the button; falls back to a selection where the
/// Clipboard API is unavailable (pages opened from disk in some browsers).
const SCRIPT: &str = "function copySnippet(b){const pre=b.nextElementSibling;\
const done=()=>{b.textContent='Copied';setTimeout(()=>b.textContent='Copy',1500)};\
const select=()=>{const r=document.createRange();r.selectNodeContents(pre);const s=getSelection();\
s.removeAllRanges();s.addRange(r);document.execCommand('copy');done()};\
if(navigator.clipboard&&window.isSecureContext){navigator.clipboard.writeText(pre.textContent).then(done,select)}\
else{select()}}";

/// Escapes text for HTML content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The whole page.
pub fn html(input: &ReportInput) -> Result<String> {
    let mut page = String::new();
    let w = &mut page;
    let title = format!("tunelake report: run {}", input.run_id);
    let _ = write!(
        w,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title><style>{STYLE}</style>\
         <script>{SCRIPT}</script></head><body><h1>{}</h1><p class=\"muted\">Window {} to {} (UTC) · analysis <code>{}</code></p>",
        esc(&title),
        esc(&title),
        input.window.start.format("%Y-%m-%d %H:%M"),
        input.window.end.format("%Y-%m-%d %H:%M"),
        esc(input.analysis_id)
    );
    overview(w, input);
    for s in &input.supplies {
        supply(w, input, s)?;
    }
    fleet(w, input)?;
    w.push_str("</body></html>\n");
    Ok(page)
}

fn overview(w: &mut String, input: &ReportInput) {
    w.push_str(
        "<table><tr><th>supply</th><th>verdict</th><th>cost</th><th>p95 latency</th><th>p95 TTFT</th><th>p95 TPOT</th></tr>",
    );
    for s in &input.supplies {
        let r = s.recommendation;
        let i = &r.recommendation.predicted_impact;
        let changed = r.status == Status::Recommended;
        let cell = |x: f64| if changed { pct(x) } else { "–".into() };
        let _ = write!(
            w,
            "<tr><td><a href=\"#supply-{id}\">{id}</a></td><td class=\"{status}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            verdict(r.status),
            cell(i.cost_change_percent),
            cell(i.p95_latency_change_percent),
            cell(i.p95_ttft_change_percent),
            cell(i.p95_tpot_change_percent),
            id = esc(&s.supply.id),
            status = r.status.as_str(),
        );
    }
    w.push_str("</table>");
}

fn supply(w: &mut String, input: &ReportInput, s: &SupplyReport) -> Result<()> {
    let r = s.recommendation;
    let _ = write!(
        w,
        "<section id=\"supply-{id}\"><h2>{id}: <span class=\"{status}\">{}</span></h2><p>{}</p>",
        verdict(r.status),
        esc(&r.recommendation.analysis_summary),
        id = esc(&s.supply.id),
        status = r.status.as_str(),
    );
    if r.status == Status::Recommended {
        w.push_str("<table><tr><th>predicted change</th><th>point</th><th>95 % interval</th></tr>");
        for (label, value, interval) in impact_rows(&r.recommendation.predicted_impact) {
            let _ = write!(
                w,
                "<tr><td>{label}</td><td>{value}</td><td>{interval}</td></tr>"
            );
        }
        w.push_str("</table>");
    }
    let mut charts = Vec::new();
    if let Some(search) = s.search {
        let chosen = r.recommended.as_ref();
        let full: Vec<(f64, f64)> = search
            .evaluations
            .iter()
            .filter(|e| e.round == Round::Full)
            .map(|e| (e.cost_per_hour, e.e2e_p95_ms / 1e3))
            .collect();
        let at = |e: &crate::search::Evaluation| vec![(e.cost_per_hour, e.e2e_p95_ms / 1e3)];
        let mut dots = vec![
            Series {
                name: "simulated candidates",
                points: full,
                colour: OTHER,
            },
            Series {
                name: "current",
                points: at(&search.baseline),
                colour: CURRENT,
            },
        ];
        if r.status == Status::Recommended
            && let Some(e) = search
                .evaluations
                .iter()
                .rev()
                .find(|e| Some(&e.config) == chosen)
        {
            dots.push(Series {
                name: "recommended",
                points: at(e),
                colour: CHOSEN,
            });
        }
        charts.push(
            LineChart {
                title: "Cost vs worst p95 end-to-end latency",
                x_label: "cost, $ per hour",
                y_label: "p95 latency, s",
                lines: vec![Series {
                    name: "Pareto frontier",
                    points: pareto(search)
                        .into_iter()
                        .map(|e| (e.cost_per_hour, e.e2e_p95_ms / 1e3))
                        .collect(),
                    colour: colour(0),
                }],
                dots,
                diagonal: false,
                legend: SeriesLabelPosition::UpperRight,
            }
            .svg()?,
        );
    }
    if let Some(latency) = &r.latency {
        let cdf = |pick: fn(&LatencyProfile) -> &Vec<f64>| {
            let curve = |name, p: &LatencyProfile, c| Series {
                name,
                points: pick(p)
                    .iter()
                    .enumerate()
                    .map(|(i, ms)| (*ms, (i + 1) as f64))
                    .collect(),
                colour: c,
            };
            let mut lines = vec![curve("current", &latency.current, CURRENT)];
            if let Some(p) = &latency.recommended {
                lines.push(curve("recommended", p, CHOSEN));
            }
            lines
        };
        for (title, x_label, pick) in [
            (
                "Time to first token (simulated, window)",
                "TTFT, ms",
                (|p: &LatencyProfile| &p.ttft_ms) as fn(&LatencyProfile) -> &Vec<f64>,
            ),
            (
                "Time per output token (simulated, window)",
                "TPOT, ms",
                |p: &LatencyProfile| &p.tpot_ms,
            ),
        ] {
            charts.push(
                LineChart {
                    title,
                    x_label,
                    y_label: "percentile",
                    lines: cdf(pick),
                    dots: Vec::new(),
                    diagonal: false,
                    legend: SeriesLabelPosition::LowerRight,
                }
                .svg()?,
            );
        }
    }
    let hourly = s.hourly_requests(input.workloads);
    if !hourly.is_empty() {
        let start = input.window.start.timestamp_micros();
        let hours = |us: i64| (us - start) as f64 / 3.6e9;
        let load: Vec<(f64, f64)> = hourly.iter().map(|&(h, n)| (hours(h), n as f64)).collect();
        let mut lines = vec![Series {
            name: "requests per hour",
            points: load,
            colour: colour(0),
        }];
        if s.search.is_some_and(|x| x.best.is_some()) {
            let peak = hourly.iter().map(|h| h.1).max().unwrap_or(0) as f64;
            let verified = peak * s.supply.options.growth;
            let end = hours(input.window.end.timestamp_micros());
            lines.push(Series {
                name: "load verified within SLOs (peak hour × growth)",
                points: vec![(0.0, verified), (end, verified)],
                colour: CHOSEN,
            });
        }
        charts.push(
            LineChart {
                title: "Hourly load against verified capacity",
                x_label: "hours since window start",
                y_label: "requests per hour",
                lines,
                dots: Vec::new(),
                diagonal: false,
                legend: SeriesLabelPosition::UpperRight,
            }
            .svg()?,
        );
    }
    chart_row(w, &charts);
    for artifact in &s.snippets {
        let _ = write!(
            w,
            "<p><code>{}</code></p><div class=\"snippet\"><button type=\"button\" onclick=\"copySnippet(this)\">Copy</button><pre>{}</pre></div>",
            esc(SupplyReport::snippet_name(artifact)),
            esc(String::from_utf8_lossy(&artifact.bytes).trim_end())
        );
    }
    w.push_str("</section>");
    Ok(())
}

/// The fleet-wide charts: workload class mix per app and the calibration backtest.
fn fleet(w: &mut String, input: &ReportInput) -> Result<()> {
    w.push_str("<section id=\"fleet\"><h2>Fleet</h2>");
    let classes = &input.workloads.classes;
    let mut apps: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for (k, class) in classes.iter().enumerate() {
        for a in &class.apps {
            apps.entry(&a.app_id)
                .or_insert_with(|| vec![0.0; classes.len()])[k] += a.requests as f64;
        }
    }
    let mut charts = Vec::new();
    if !apps.is_empty() {
        let rows = apps
            .into_iter()
            .map(|(app, counts)| {
                let total: f64 = counts.iter().sum::<f64>().max(1.0);
                (app.to_string(), counts.iter().map(|c| c / total).collect())
            })
            .collect();
        charts.push(
            StackedBars {
                title: "Workload class mix per app",
                rows,
                segments: classes.iter().map(|c| c.label.clone()).collect(),
            }
            .svg()?,
        );
    }
    let backtests: Vec<_> = input
        .calibration
        .iter()
        .filter_map(|c| c.backtest.as_ref().map(|b| (c, b)))
        .collect();
    if !backtests.is_empty() {
        let metrics = [("TTFT", 0), ("TPOT", 1), ("E2E", 2)];
        let dots = metrics
            .iter()
            .map(|&(name, i)| Series {
                name,
                points: backtests
                    .iter()
                    .flat_map(|(_, b)| {
                        let m = [&b.ttft, &b.tpot, &b.e2e][i];
                        [
                            (m.observed_p50, m.predicted_p50),
                            (m.observed_p95, m.predicted_p95),
                        ]
                    })
                    .filter(|(o, p)| o.is_finite() && p.is_finite())
                    .collect(),
                colour: colour(i),
            })
            .collect();
        charts.push(
            LineChart {
                title: "Calibration backtest: p50 and p95 per supply",
                x_label: "observed, ms",
                y_label: "predicted, ms",
                lines: Vec::new(),
                dots,
                diagonal: true,
                legend: SeriesLabelPosition::UpperLeft,
            }
            .svg()?,
        );
    }
    chart_row(w, &charts);
    for f in findings(input) {
        let _ = write!(w, "<h3>{}</h3><table><tr>", f.title);
        for h in f.header {
            let _ = write!(w, "<th>{h}</th>");
        }
        w.push_str("</tr>");
        for row in f.rows {
            w.push_str("<tr>");
            for cell in row {
                let _ = write!(w, "<td>{}</td>", esc(&cell));
            }
            w.push_str("</tr>");
        }
        w.push_str("</table>");
    }
    if !backtests.is_empty() {
        w.push_str("<table><tr><th>supply</th><th>requests</th><th>TTFT p95 error</th><th>TPOT p95 error</th><th>E2E p95 error</th></tr>");
        for (c, b) in &backtests {
            let _ = write!(
                w,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&c.supply_id),
                b.requests,
                pct(b.ttft.error_p95_pct),
                pct(b.tpot.error_p95_pct),
                pct(b.e2e.error_p95_pct)
            );
        }
        w.push_str("</table>");
    }
    w.push_str("</section>");
    Ok(())
}

fn chart_row(w: &mut String, charts: &[String]) {
    w.push_str("<div class=\"charts\">");
    for svg in charts {
        let _ = write!(w, "<figure class=\"chart\">{svg}</figure>");
    }
    w.push_str("</div>");
}
