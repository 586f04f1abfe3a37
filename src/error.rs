//! The library's error type. Every variant names where the problem is (file, column, row, key) so a
//! scheduled job's log says what to fix without a debugger.

use std::path::PathBuf;

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("pipeline file {path}: {message}")]
    Config { path: PathBuf, message: String },

    #[error("invalid setting {key}: {message}")]
    Setting { key: String, message: String },

    #[error("{file}: column `{column}` has type {found}, expected {expected}")]
    ColumnType {
        file: String,
        column: String,
        expected: String,
        found: String,
    },

    #[error("{file}: required column `{column}` is missing")]
    MissingColumn { file: String, column: String },

    #[error("{file}: unreadable or corrupted Parquet: {message}")]
    BadFile { file: String, message: String },

    #[error("{file}, row {row}: {message}")]
    BadRow {
        file: String,
        row: usize,
        message: String,
    },

    #[error("catalog {catalog}: {message}")]
    Catalog { catalog: String, message: String },

    /// A model's `config.json` that cannot be read or describes an architecture tunelake cannot size.
    #[error("model config {path}: {message}")]
    ModelConfig { path: String, message: String },

    /// A name the configuration refers to (`gpu`, `model`, a draft model, `--set gpu=`) that the
    /// catalog does not have: the user's to fix.
    #[error("unknown {kind} `{name}`; known: {known}")]
    NotInCatalog {
        kind: &'static str,
        name: String,
        known: String,
    },

    #[error("storage {url}: {source}")]
    Storage {
        url: String,
        #[source]
        source: object_store::Error,
    },

    #[error("invalid storage URL {url}: {message}")]
    StorageUrl { url: String, message: String },

    #[error("{context}: {source}")]
    DataFusion {
        context: String,
        #[source]
        source: datafusion::error::DataFusionError,
    },

    #[error("{context}: {source}")]
    Arrow {
        context: String,
        #[source]
        source: arrow::error::ArrowError,
    },

    #[error("{context}: {source}")]
    Parquet {
        context: String,
        #[source]
        source: parquet::errors::ParquetError,
    },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// (Boxed: delta-rs's error is several times the size of the others.)
    #[error("Delta table {table}: {source}")]
    Delta {
        table: String,
        #[source]
        source: Box<deltalake_core::DeltaTableError>,
    },

    #[error("{context}: {source}")]
    Json {
        context: String,
        #[source]
        source: serde_json::Error,
    },

    /// A Prometheus range query that failed: the HTTP error, or Prometheus's own `error`.
    #[error("Prometheus {url}, query `{query}`: {message}")]
    Prometheus {
        url: String,
        query: String,
        message: String,
    },

    #[error("simulation: {0}")]
    Simulation(String),

    #[error("calibration: {0}")]
    Calibration(String),

    /// The API keys (file or `TUNELAKE_API_KEYS`) are unreadable or malformed.
    #[error("API keys {source_name}: {message}")]
    Keys {
        source_name: String,
        message: String,
    },

    /// The server could not listen where it was told to.
    #[error("cannot listen on {address}: {message}")]
    Listen { address: String, message: String },

    /// Another process holds the run id's lock (see `sinks::lock`).
    #[error(
        "run {run_id} is already running ({owner}; its lock expires at {expires_at} unless renewed): \
         not started"
    )]
    RunLocked {
        run_id: String,
        owner: String,
        expires_at: chrono::DateTime<chrono::Utc>,
    },

    /// Backfilled days left undone only because other processes held their locks.
    #[error("runs {} are held by other processes: try again later", .run_ids.join(", "))]
    DaysLocked { run_ids: Vec<String> },

    /// A broken invariant: tunelake's own fault, not the user's input.
    #[error("internal error (a bug in tunelake, please report it): {0}")]
    Internal(String),
}

/// Exit code of a run refused because another holds its lock: EX_TEMPFAIL of `sysexits.h`, "try
/// again later", so schedulers can tell it from a failed run (1) and a bad configuration (2).
pub const EXIT_LOCKED: u8 = 75;

impl Error {
    /// Exit code for the CLI: 2 for what the user must fix in the invocation or config,
    /// [`EXIT_LOCKED`] for a run id another process is running, 1 for a failed run.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config { .. }
            | Error::Setting { .. }
            | Error::StorageUrl { .. }
            | Error::NotInCatalog { .. }
            | Error::ModelConfig { .. }
            | Error::Keys { .. }
            | Error::Listen { .. } => 2,
            Error::RunLocked { .. } | Error::DaysLocked { .. } => EXIT_LOCKED,
            _ => 1,
        }
    }
}

/// Attaches a human context string to foreign errors, in the manner of `anyhow::Context`.
pub trait Context<T> {
    fn context(self, context: impl Into<String>) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, datafusion::error::DataFusionError> {
    fn context(self, context: impl Into<String>) -> Result<T> {
        self.map_err(|source| Error::DataFusion {
            context: context.into(),
            source,
        })
    }
}

impl<T> Context<T> for std::result::Result<T, arrow::error::ArrowError> {
    fn context(self, context: impl Into<String>) -> Result<T> {
        self.map_err(|source| Error::Arrow {
            context: context.into(),
            source,
        })
    }
}

impl<T> Context<T> for std::result::Result<T, parquet::errors::ParquetError> {
    fn context(self, context: impl Into<String>) -> Result<T> {
        self.map_err(|source| Error::Parquet {
            context: context.into(),
            source,
        })
    }
}

impl<T> Context<T> for std::result::Result<T, serde_json::Error> {
    fn context(self, context: impl Into<String>) -> Result<T> {
        self.map_err(|source| Error::Json {
            context: context.into(),
            source,
        })
    }
}
