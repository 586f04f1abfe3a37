//! Planted contract-breaking rows, so that validation and the quarantine have exact counts to find.
//!
//! With `invalid_share` s > 0, round(s × n) rows of each (app, day) break the contract, cycling
//! (from a starting reason that rotates with app and day) through `null_app_id`, `negative_tokens`
//! (prompt_tokens negated), `duplicate_request_id` (an exact extra copy of a valid row) and
//! `unknown_status` (`status` = `unknown`); exact counts per reason go to `ground_truth.json`.

use crate::ingest::import::rows::Request;

/// Invalid-row reasons, named as in `sql/validate/requests.sql`.
pub const INVALID_REASONS: [&str; 4] = [
    "null_app_id",
    "negative_tokens",
    "duplicate_request_id",
    "unknown_status",
];

/// Where one (app, day) plants its invalid rows: evenly spaced positions, reasons cycling. The cycle
/// starts at a different reason per (app, day) so that small lakes, with one invalid row per
/// app-day, still get every reason.
pub(super) struct Planted {
    /// (row, reason) still to plant, the next one last.
    pending: Vec<(usize, usize)>,
    /// Rows planted so far, per reason of [`INVALID_REASONS`].
    pub(super) counts: [u64; INVALID_REASONS.len()],
}

impl Planted {
    /// round(`share` × `n`) rows of `n`, the cycle starting at reason `rotation` (modulo the reasons).
    pub(super) fn new(n: usize, share: f64, rotation: usize) -> Self {
        let k = (n as f64 * share).round() as usize;
        let first_reason = rotation % INVALID_REASONS.len();
        let mut pending: Vec<(usize, usize)> = (0..k)
            .map(|j| {
                (
                    (2 * j + 1) * n / (2 * k),
                    (first_reason + j) % INVALID_REASONS.len(),
                )
            })
            .collect();
        pending.reverse();
        Self {
            pending,
            counts: [0; INVALID_REASONS.len()],
        }
    }

    /// Invalid rows still to plant.
    pub(super) fn remaining(&self) -> usize {
        self.pending.len()
    }

    /// The reason planted at row `i` (rows are asked in order), counted.
    pub(super) fn at(&mut self, i: usize) -> Option<&'static str> {
        match self.pending.last() {
            Some(&(pos, reason)) if pos == i => {
                self.pending.pop();
                self.counts[reason] += 1;
                Some(INVALID_REASONS[reason])
            }
            _ => None,
        }
    }
}

/// Breaks a valid `row` the way `reason` says; returns how many copies of it to write.
pub(super) fn plant(reason: &str, row: &mut Request) -> usize {
    match reason {
        "null_app_id" => row.app_id = None,
        "negative_tokens" => row.prompt_tokens = row.prompt_tokens.map(|p| -p),
        "duplicate_request_id" => return 2,
        "unknown_status" => row.status = Some("unknown"),
        other => unreachable!("`{other}` is not one of INVALID_REASONS"),
    }
    1
}
