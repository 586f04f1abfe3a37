//! Storage locations: a URL (local path, `file://` or `s3://bucket/prefix`) resolved to an
//! object_store, and the Parquet files written there ([`parquet`]). Only the lake I/O at the edges
//! (ingest and its importers, the generator, sinks) uses this; every stage works on typed in-memory
//! data.
//!
//! S3 credentials and region come from the standard AWS environment variables (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`, ...). An S3-compatible store (MinIO,
//! Ceph, moto) is reached by setting `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`, or the pipeline's
//! `s3_endpoint`; plain `http://` endpoints are allowed for such stores.

pub mod parquet;

use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, RetryConfig};
use url::Url;

use crate::error::{Error, Result};

/// A resolved storage location: the store, the URL of its root (what DataFusion registers the store
/// under) and the path of the location inside the store.
#[derive(Clone)]
pub struct Location {
    pub store: Arc<dyn ObjectStore>,
    /// `s3://bucket` or `file:///`.
    pub root: Url,
    pub prefix: Path,
    /// The URL as the user wrote it, for messages.
    pub display: String,
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display)
    }
}

impl Location {
    /// Resolves `url`; `s3_endpoint` overrides the environment's endpoint.
    pub fn parse(url: &str, s3_endpoint: Option<&str>) -> Result<Self> {
        Self::parse_with_retry(url, s3_endpoint, None)
    }

    /// [`Location::parse`] where a failing S3 request is retried (with exponential backoff) for at
    /// most `retry_timeout` rather than object_store's default of 3 minutes; local disk is never
    /// retried.
    pub fn parse_with_retry(
        url: &str,
        s3_endpoint: Option<&str>,
        retry_timeout: Option<std::time::Duration>,
    ) -> Result<Self> {
        let bad = |message: String| Error::StorageUrl {
            url: url.to_string(),
            message,
        };
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("no bucket name".into()));
            }
            let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
            let endpoint = s3_endpoint.map(str::to_string).or_else(|| {
                std::env::var("AWS_ENDPOINT_URL_S3")
                    .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
                    .ok()
            });
            if let Some(endpoint) = endpoint {
                builder = builder
                    .with_allow_http(endpoint.starts_with("http://"))
                    .with_endpoint(endpoint);
            }
            if std::env::var("AWS_REGION").is_err() && std::env::var("AWS_DEFAULT_REGION").is_err()
            {
                builder = builder.with_region("us-east-1");
            }
            if let Some(retry_timeout) = retry_timeout {
                builder = builder.with_retry(RetryConfig {
                    retry_timeout,
                    ..RetryConfig::default()
                });
            }
            let store = builder.build().map_err(|e| bad(e.to_string()))?;
            return Ok(Self {
                store: Arc::new(store),
                root: Url::parse(&format!("s3://{bucket}")).map_err(|e| bad(e.to_string()))?,
                prefix: Path::from(prefix.trim_matches('/')),
                display: url.to_string(),
            });
        }
        let local = match url.strip_prefix("file://") {
            Some(path) => std::path::PathBuf::from(path),
            None if url.contains("://") => {
                return Err(bad(
                    "only local paths, file:// and s3:// are supported".into()
                ));
            }
            None => std::path::PathBuf::from(url),
        };
        // Lexically normalised (`a/../b` → `b`): object_store paths may not contain `..`.
        let absolute = std::path::absolute(&local)
            .map_err(|e| bad(e.to_string()))?
            .components()
            .fold(std::path::PathBuf::new(), |mut path, part| {
                match part {
                    std::path::Component::ParentDir => {
                        path.pop();
                    }
                    std::path::Component::CurDir => {}
                    other => path.push(other),
                }
                path
            });
        let prefix = Path::from_absolute_path(&absolute).map_err(|e| bad(e.to_string()))?;
        Ok(Self {
            store: Arc::new(LocalFileSystem::new()),
            root: Url::parse("file:///").expect("static URL"),
            prefix,
            display: url.to_string(),
        })
    }

    /// A path below this location.
    pub fn child(&self, relative: &str) -> Path {
        relative
            .split('/')
            .filter(|p| !p.is_empty())
            .fold(self.prefix.clone(), |path, part| path.clone().join(part))
    }

    /// The full URL of a path in this store, as DataFusion wants it.
    pub fn url_of(&self, path: &Path) -> String {
        let root = self.root.as_str();
        format!("{}/{path}", root.strip_suffix('/').unwrap_or(root))
    }

    pub fn storage_error(&self, source: object_store::Error) -> Error {
        Error::Storage {
            url: self.display.clone(),
            source,
        }
    }

    /// The object at `path`, whole.
    pub async fn get(&self, path: &Path) -> Result<bytes::Bytes> {
        self.store
            .get(path)
            .await
            .map_err(|e| self.storage_error(e))?
            .bytes()
            .await
            .map_err(|e| self.storage_error(e))
    }

    /// Writes `bytes` at `path` (a single PUT: atomic on S3 and, via rename, on local disk).
    pub async fn put(&self, path: &Path, bytes: bytes::Bytes) -> Result<()> {
        self.store
            .put(path, bytes.into())
            .await
            .map(|_| ())
            .map_err(|e| self.storage_error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_become_absolute_prefixes() {
        let loc = Location::parse("/tmp/x/../lake/.", None).unwrap();
        assert_eq!(loc.prefix.as_ref(), "tmp/lake");
        assert_eq!(
            loc.url_of(&loc.child("requests/date=2026-01-01/a.parquet")),
            "file:///tmp/lake/requests/date=2026-01-01/a.parquet"
        );
    }

    #[test]
    fn s3_urls_split_bucket_and_prefix() {
        let loc = Location::parse("s3://bucket/some/prefix/", Some("http://127.0.0.1:1")).unwrap();
        assert_eq!(loc.root.as_str(), "s3://bucket");
        assert_eq!(loc.prefix.as_ref(), "some/prefix");
        assert!(Location::parse("gs://x", None).is_err());
    }
}
