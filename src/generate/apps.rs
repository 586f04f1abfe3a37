//! The documented apps: each one's traffic shape, so the generator and the tests that check what
//! the pipeline recovers read the same numbers.
//!
//! # Apps ([`APPS`])
//! | app | supply | share | prompt median (σ) | completion median (σ) | max_tokens | arrivals |
//! |---|---|---:|---:|---:|---:|---|
//! | `chat` | `chat-llama8b-h100` | 40 % | 120 over all turns | 180 (0.7) | 1024 | CV 1.2, peak/mean 1.6 at 15:00 |
//! | `rag` | `rag-llama70b-h100` | 25 % | ≈5,600 (doc 5,300 (0.25) + question 300 (0.5)) | 200 (0.5) | 512 | CV 1.5, peak/mean 1.5 at 14:00 |
//! | `code` | `code-llama70b-a100` | 20 % | 1,500 (0.6) | 800 (0.4) | 2048 | CV 1.3, peak/mean 1.8 at 13:00 |
//! | `summarize` | `summarize-gpt4o-mini` | 15 % | 3,000 (0.4) | 300 (0.3) | 512 | CV 3.0, peak/mean 1.9 at 02:00 (night bursts) |
//!
//! Lengths are lognormal (median, log-σ), completions clipped at `max_tokens` (then
//! `finish_reason` = `length`, else `stop`). Only `summarize` is latency-tolerant (night-time
//! batch work: no sessions, long inputs); the others have a person waiting.
//!
//! How each app's requests are drawn from its shape is in [`super::requests`].

use serde::Serialize;

/// How an app's prompts share prefixes.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PrefixKind {
    /// Multi-turn sessions with one of a few system prompts.
    Sessions,
    /// A pool of shared documents.
    Documents,
    /// A few prompt templates.
    Templates,
    /// One shared instruction.
    Instruction,
}

/// The documented shape of an app.
#[derive(Debug, Clone, Serialize)]
pub struct AppShape {
    pub name: &'static str,
    pub supply: &'static str,
    pub share: f64,
    /// Target median of prompt tokens over all requests.
    pub prompt_median: f64,
    pub prompt_sigma: f64,
    pub completion_median: f64,
    pub completion_sigma: f64,
    pub max_tokens: i64,
    pub temperature: f64,
    pub prefix: PrefixKind,
    /// Inter-arrival coefficient of variation (gamma renewal, shape 1/CV²).
    pub interarrival_cv: f64,
    pub diurnal_peak_hour: f64,
    /// Peak-to-mean ratio of the 24-hour profile (1 + amplitude).
    pub peak_to_mean: f64,
    pub duplicate_rate: f64,
    /// Whether the app's answers can wait (offline work): the truth the batch finding infers.
    pub latency_tolerant: bool,
    pub error_rate: f64,
    pub timeout_rate: f64,
    pub cancel_rate: f64,
}

pub const APPS: [AppShape; 4] = [
    AppShape {
        name: "chat",
        supply: "chat-llama8b-h100",
        share: 0.40,
        prompt_median: 120.0,
        prompt_sigma: 0.7,
        completion_median: 180.0,
        completion_sigma: 0.7,
        max_tokens: 1024,
        temperature: 0.7,
        prefix: PrefixKind::Sessions,
        interarrival_cv: 1.2,
        diurnal_peak_hour: 15.0,
        peak_to_mean: 1.6,
        duplicate_rate: 0.02,
        latency_tolerant: false,
        error_rate: 0.004,
        timeout_rate: 0.001,
        cancel_rate: 0.01,
    },
    AppShape {
        name: "rag",
        supply: "rag-llama70b-h100",
        share: 0.25,
        prompt_median: 5600.0,
        prompt_sigma: 0.25,
        completion_median: 200.0,
        completion_sigma: 0.5,
        max_tokens: 512,
        temperature: 0.0,
        prefix: PrefixKind::Documents,
        interarrival_cv: 1.5,
        diurnal_peak_hour: 14.0,
        peak_to_mean: 1.5,
        duplicate_rate: 0.10,
        latency_tolerant: false,
        error_rate: 0.004,
        timeout_rate: 0.001,
        cancel_rate: 0.0,
    },
    AppShape {
        name: "code",
        supply: "code-llama70b-a100",
        share: 0.20,
        prompt_median: 1500.0,
        prompt_sigma: 0.6,
        completion_median: 800.0,
        completion_sigma: 0.4,
        max_tokens: 2048,
        temperature: 0.2,
        prefix: PrefixKind::Templates,
        interarrival_cv: 1.3,
        diurnal_peak_hour: 13.0,
        peak_to_mean: 1.8,
        duplicate_rate: 0.05,
        latency_tolerant: false,
        error_rate: 0.004,
        timeout_rate: 0.001,
        cancel_rate: 0.0,
    },
    AppShape {
        name: "summarize",
        supply: "summarize-gpt4o-mini",
        share: 0.15,
        prompt_median: 3000.0,
        prompt_sigma: 0.4,
        completion_median: 300.0,
        completion_sigma: 0.3,
        max_tokens: 512,
        temperature: 0.0,
        prefix: PrefixKind::Instruction,
        interarrival_cv: 3.0,
        diurnal_peak_hour: 2.0,
        peak_to_mean: 1.9,
        duplicate_rate: 0.0,
        latency_tolerant: true,
        error_rate: 0.004,
        timeout_rate: 0.001,
        cancel_rate: 0.0,
    },
];

/// Chat: the user part's lognormal median, calibrated so the overall prompt median is 120.
pub(super) const CHAT_USER_MEDIAN: f64 = 25.0;
pub(super) const CHAT_TURN_GROWTH: f64 = 0.6;
pub(super) const CHAT_SYSTEM_PROMPTS: [i64; 4] = [40, 55, 70, 90];
pub(super) const RAG_DOCS: u64 = 2000;
pub(super) const RAG_DOC_MEDIAN: f64 = 5300.0;
pub(super) const RAG_DOC_SIGMA: f64 = 0.25;
pub(super) const RAG_QUESTION_MEDIAN: f64 = 300.0;
pub(super) const RAG_QUESTION_SIGMA: f64 = 0.5;
pub(super) const CODE_TEMPLATES: u64 = 8;
pub(super) const SUMMARIZE_PREFIX: i64 = 150;
