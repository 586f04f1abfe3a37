//! API keys: stored as SHA-256 hashes (a leaked keys file grants nothing), compared in constant
//! time, each scoped to the apps it may analyse and read, and rate-limited by a token bucket.
//!
//! Keys file (TOML), written by `tunelake keys create`:
//!
//! ```toml
//! [[keys]]
//! name = "chat-team"          # shown in logs and metrics instead of the key
//! sha256 = "…64 hex digits…"  # of the key's text
//! apps = ["chat"]             # or ["*"] for every app
//! requests_per_minute = 120   # default 60
//! ```

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};

/// The scope that grants every app.
pub const ALL_APPS: &str = "*";

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    #[serde(default)]
    keys: Vec<KeyEntry>,
}

/// One key as stored.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    pub name: String,
    pub sha256: String,
    pub apps: Vec<String>,
    #[serde(default = "default_rate")]
    pub requests_per_minute: u32,
}

fn default_rate() -> u32 {
    60
}

impl KeyEntry {
    /// Whether this key may analyse and read `app`.
    pub fn may(&self, app: &str) -> bool {
        self.apps.iter().any(|a| a == ALL_APPS || a == app)
    }
}

/// A verified caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key: KeyEntry,
}

/// Token-bucket state per key name.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The server's keys and their rate limits.
#[derive(Debug)]
pub struct Keys {
    entries: Vec<([u8; 32], KeyEntry)>,
    buckets: Mutex<HashMap<String, Bucket>>,
}

fn sha256(text: &str) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Keys {
    /// Parses a keys file's text; `source_name` says where it came from (for errors).
    pub fn parse(text: &str, source_name: &str) -> Result<Keys> {
        let bad = |message: String| Error::Keys {
            source_name: source_name.to_string(),
            message,
        };
        let file: KeysFile = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        let mut entries: Vec<([u8; 32], KeyEntry)> = Vec::new();
        for entry in file.keys {
            if entries.iter().any(|(_, e)| e.name == entry.name) {
                return Err(bad(format!(
                    "key `{}` appears twice (names key the rate limits)",
                    entry.name
                )));
            }
            let digits = entry.sha256.to_ascii_lowercase();
            if digits.len() != 64 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad(format!(
                    "key `{}`: sha256 must be 64 hex digits",
                    entry.name
                )));
            }
            if entry.apps.is_empty() {
                return Err(bad(format!(
                    "key `{}`: apps is empty (use [\"*\"] for every app)",
                    entry.name
                )));
            }
            if entry.requests_per_minute == 0 {
                return Err(bad(format!(
                    "key `{}`: requests_per_minute must be at least 1",
                    entry.name
                )));
            }
            let mut hash = [0u8; 32];
            for (i, byte) in hash.iter_mut().enumerate() {
                *byte = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16)
                    .map_err(|e| bad(e.to_string()))?;
            }
            entries.push((hash, entry));
        }
        Ok(Keys {
            entries,
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Reads a keys file.
    pub fn load(path: &Path) -> Result<Keys> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Keys {
            source_name: path.display().to_string(),
            message: e.to_string(),
        })?;
        Keys::parse(&text, &path.display().to_string())
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The key whose hash matches `presented`. Every stored hash is compared, in constant time,
    /// so the answer's timing says nothing about which bytes matched.
    pub fn verify(&self, presented: &str) -> Option<Caller> {
        let hash = sha256(presented);
        let mut found = None;
        for (stored, entry) in &self.entries {
            if bool::from(stored.ct_eq(&hash)) {
                found = Some(entry);
            }
        }
        found.map(|key| Caller { key: key.clone() })
    }

    /// Takes one request from the caller's bucket; `Err(seconds)` to wait when it is empty.
    pub fn admit(&self, caller: &Caller) -> std::result::Result<(), u64> {
        let rate = f64::from(caller.key.requests_per_minute) / 60.0;
        let capacity = f64::from(caller.key.requests_per_minute);
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = buckets.entry(caller.key.name.clone()).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        bucket.tokens =
            (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate).min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - bucket.tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

/// A new key: its text (shown once) and the entry to store.
pub fn create(
    name: &str,
    apps: Vec<String>,
    requests_per_minute: u32,
) -> Result<(String, KeyEntry)> {
    let mut secret = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret)
        .map_err(|_| Error::Internal("the system random generator failed".into()))?;
    let text = format!("tl_{}", hex(&secret));
    let entry = KeyEntry {
        name: name.to_string(),
        sha256: hex(&sha256(&text)),
        apps,
        requests_per_minute,
    };
    Ok((text, entry))
}

/// The TOML of one entry, to append to a keys file.
pub fn entry_toml(entry: &KeyEntry) -> Result<String> {
    let file = KeysFile {
        keys: vec![entry.clone()],
    };
    toml::to_string(&file).map_err(|e| Error::Internal(format!("writing a key entry: {e}")))
}
