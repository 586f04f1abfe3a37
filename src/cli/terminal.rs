//! What the terminal shows besides a command's output: logs and a stage spinner.

use std::io::IsTerminal;

use super::args::LogFormat;

/// A spinner naming the current stage, shown only when stderr is a terminal.
pub struct Spinner(Option<indicatif::ProgressBar>);

impl Spinner {
    pub fn new() -> Self {
        Self(std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        }))
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

impl tunelake::pipeline::Progress for Spinner {
    fn stage(&self, name: &str) {
        if let Some(bar) = &self.0 {
            bar.set_message(format!("stage: {name}"));
        }
    }
}

/// A bar over the days of a backfill, naming the day and its stage; shown only on a terminal.
pub struct DayBar(Option<indicatif::ProgressBar>);

impl DayBar {
    pub fn new(days: u64) -> Self {
        Self(std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(days).with_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} days, {elapsed} elapsed, ~{eta} left  {prefix} {msg}",
                )
                .expect("static template"),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            bar
        }))
    }

    pub fn day(&self, index: usize, date: chrono::NaiveDate) {
        if let Some(bar) = &self.0 {
            bar.set_position(index as u64);
            bar.set_prefix(date.to_string());
            bar.set_message("");
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

impl tunelake::pipeline::Progress for DayBar {
    fn stage(&self, name: &str) {
        if let Some(bar) = &self.0 {
            bar.set_message(name.to_string());
        }
    }
}

pub fn init_logging(format: LogFormat, filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .compact()
            .init(),
        LogFormat::Json => builder.json().init(),
    }
}
