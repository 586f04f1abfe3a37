//! The SQL files under `sql/`, embedded at build time so the binary runs from any directory.

/// `(name, text)` of every feature query, in the order the features stage runs them.
pub const FEATURES: &[(&str, &str)] = &[
    (
        "features_hourly",
        include_str!("../sql/features/features_hourly.sql"),
    ),
    (
        "session_depth",
        include_str!("../sql/features/session_depth.sql"),
    ),
    ("gpu_hourly", include_str!("../sql/features/gpu_hourly.sql")),
];

pub const VALIDATE_REQUESTS: &str = include_str!("../sql/validate/requests.sql");
pub const VALIDATE_GPU_METRICS: &str = include_str!("../sql/validate/gpu_metrics.sql");

/// The per-request stream of the workloads stage.
pub const WORKLOAD_REQUESTS: &str = include_str!("../sql/workloads/requests.sql");
