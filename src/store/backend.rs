//! The adapter from `object_store` to [`Store`], and opening a store from a
//! URL: a plain path or `file://` (durable: fsync on every write), `memory://`
//! and `s3://bucket/prefix` (AWS environment and credentials, including
//! `AWS_ENDPOINT_URL` for LocalStack and MinIO; or an explicit endpoint and
//! keys with [`open_s3_with_endpoint`]). It must not retry or add policy:
//! wrappers do that.

use super::{ObjectInfo, PutMode, Store, StoreError, StoreErrorKind, StoreResult};
use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutOptions, PutPayload};
use std::ops::Range;
use std::sync::Arc;

/// Any `object_store` backend seen through the [`Store`] trait.
#[derive(Debug)]
pub struct ObjectStoreBackend {
    inner: Arc<dyn ObjectStore>,
    prefix: String,
    url: String,
}

impl ObjectStoreBackend {
    /// A store over an `object_store` backend whose keys live under `prefix`; `url` is kept for
    /// messages and `url()`.
    pub fn new(inner: Arc<dyn ObjectStore>, prefix: &str, url: &str) -> Self {
        let prefix = prefix.trim_matches('/');
        ObjectStoreBackend {
            inner,
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            url: url.to_string(),
        }
    }

    /// The URL this store was opened from.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn path(&self, key: &str) -> Path {
        Path::from(format!("{}{}", self.prefix, key))
    }

    /// The keys under `prefix` (after `after_key`, if given), sorted.
    /// object_store lists by path segments: list the parent folder (from
    /// the offset, which S3 turns into `start-after`) and filter by the
    /// full key prefix and the mark.
    async fn list_from(
        &self,
        op: &'static str,
        prefix: &str,
        after_key: Option<&str>,
    ) -> StoreResult<Vec<ObjectInfo>> {
        let (dir, _) = prefix.rsplit_once('/').unwrap_or(("", prefix));
        let dir_path = if self.prefix.is_empty() && dir.is_empty() {
            None
        } else {
            Some(Path::from(format!("{}{}", self.prefix, dir)))
        };
        // The offset goes to the backend only if it is a path exactly as
        // written: normalising ("a//b" to "a/b") could move it past keys
        // that sort after the mark. Either way the mark is applied below.
        let offset = after_key
            .map(|k| format!("{}{}", self.prefix, k))
            .filter(|full| Path::from(full.as_str()).as_ref() == full.as_str())
            .map(|full| Path::from(full.as_str()));
        let listing = match &offset {
            Some(o) => self.inner.list_with_offset(dir_path.as_ref(), o),
            None => self.inner.list(dir_path.as_ref()),
        };
        let metas: Vec<object_store::ObjectMeta> = listing
            .try_collect()
            .await
            .map_err(|e| map_err(op, prefix, e))?;
        let mut out: Vec<ObjectInfo> = metas
            .into_iter()
            .filter_map(|m| {
                let full = m.location.to_string();
                let key = full.strip_prefix(&self.prefix)?.to_string();
                let after = after_key.is_none_or(|a| key.as_str() > a);
                (key.starts_with(prefix) && after).then(|| ObjectInfo {
                    key,
                    size: m.size,
                    last_modified_ms: m.last_modified.timestamp_millis().max(0) as u64,
                })
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}

/// The kind of the first I/O error in `e`'s chain of sources.
fn io_kind(e: &object_store::Error) -> Option<std::io::ErrorKind> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = s.source();
    }
    None
}

fn map_err(op: &'static str, key: &str, e: object_store::Error) -> StoreError {
    use object_store::Error as E;
    let kind = match &e {
        E::NotFound { .. } => StoreErrorKind::NotFound,
        E::AlreadyExists { .. } | E::Precondition { .. } => StoreErrorKind::AlreadyExists,
        // A local directory store reads "a/b" where "a" is a file as
        // ENOTDIR; S3 says there is no such key. Not retried either way.
        E::Generic { .. } if io_kind(&e) == Some(std::io::ErrorKind::NotADirectory) => {
            if op == "put" {
                StoreErrorKind::Other
            } else {
                StoreErrorKind::NotFound
            }
        }
        E::Generic { .. } => {
            // object_store reports HTTP and I/O failures (after its own
            // retries) as Generic; treat them as transient so the retry
            // wrapper backs off instead of failing the write path at once.
            StoreErrorKind::Transient
        }
        _ => StoreErrorKind::Other,
    };
    StoreError::new(kind, op, key, e.to_string())
}

#[async_trait]
impl Store for ObjectStoreBackend {
    async fn put(&self, key: &str, body: Bytes, mode: PutMode) -> StoreResult<()> {
        let opts = PutOptions {
            mode: match mode {
                PutMode::Overwrite => object_store::PutMode::Overwrite,
                PutMode::Create => object_store::PutMode::Create,
            },
            ..Default::default()
        };
        self.inner
            .put_opts(&self.path(key), PutPayload::from_bytes(body), opts)
            .await
            .map(|_| ())
            .map_err(|e| map_err("put", key, e))
    }

    async fn get(&self, key: &str) -> StoreResult<Bytes> {
        let res = self
            .inner
            .get(&self.path(key))
            .await
            .map_err(|e| map_err("get", key, e))?;
        res.bytes().await.map_err(|e| map_err("get", key, e))
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> StoreResult<Bytes> {
        if range.start >= range.end {
            return Err(StoreError::new(
                StoreErrorKind::Other,
                "get_range",
                key,
                format!("empty range {range:?}"),
            ));
        }
        let path = self.path(key);
        match self.inner.get_range(&path, range.clone()).await {
            Ok(b) => Ok(b),
            // Backends report a range starting past the end (S3's 416, the
            // local and memory stores' InvalidRange) as Generic, which would
            // read as transient and be retried. Ask for the size to tell a
            // caller's bad range (not retried) from a real failure.
            Err(e @ object_store::Error::Generic { .. }) => match self.inner.head(&path).await {
                Ok(meta) if range.start >= meta.size => Err(StoreError::new(
                    StoreErrorKind::Other,
                    "get_range",
                    key,
                    format!("range {range:?} starts past the end ({} bytes)", meta.size),
                )),
                Err(h @ object_store::Error::NotFound { .. }) => Err(map_err("get_range", key, h)),
                _ => Err(map_err("get_range", key, e)),
            },
            Err(e) => Err(map_err("get_range", key, e)),
        }
    }

    async fn list(&self, prefix: &str) -> StoreResult<Vec<ObjectInfo>> {
        self.list_from("list", prefix, None).await
    }

    async fn list_after(&self, prefix: &str, after_key: &str) -> StoreResult<Vec<ObjectInfo>> {
        // Every key under `prefix` sorts at or after `prefix`: a mark below
        // it is no mark.
        if after_key < prefix {
            return self.list_from("list_after", prefix, None).await;
        }
        self.list_from("list_after", prefix, Some(after_key)).await
    }

    async fn head(&self, key: &str) -> StoreResult<ObjectInfo> {
        let meta = self
            .inner
            .head(&self.path(key))
            .await
            .map_err(|e| map_err("head", key, e))?;
        Ok(ObjectInfo {
            key: key.to_string(),
            size: meta.size,
            last_modified_ms: meta.last_modified.timestamp_millis().max(0) as u64,
        })
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        match self.inner.delete(&self.path(key)).await {
            Ok(()) => Ok(()),
            Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(map_err("delete", key, e)),
        }
    }
}

/// Open a store from a URL: `memory://`, `file:///abs/dir`, a plain path
/// (created if missing), or `s3://bucket[/prefix]`.
pub fn open(url: &str) -> Result<ObjectStoreBackend, StoreError> {
    let bad = |msg: String| StoreError::new(StoreErrorKind::Other, "open", url, msg);
    if url == "memory://" || url.starts_with("memory://") {
        let mem = object_store::memory::InMemory::new();
        return Ok(ObjectStoreBackend::new(Arc::new(mem), "", url));
    }
    if url.starts_with("s3://") {
        return open_s3(url);
    }
    let dir = match url.strip_prefix("file://") {
        Some(p) => p.to_string(),
        None if url.contains("://") => {
            return Err(bad(
                "unsupported store URL: use a path, file://, memory:// or s3://".into(),
            ))
        }
        None => url.to_string(),
    };
    std::fs::create_dir_all(&dir).map_err(|e| bad(format!("cannot create {dir}: {e}")))?;
    let fs = object_store::local::LocalFileSystem::new_with_prefix(&dir)
        .map_err(|e| bad(format!("cannot open {dir}: {e}")))?
        .with_fsync(true);
    Ok(ObjectStoreBackend::new(Arc::new(fs), "", url))
}

/// Open `s3://bucket[/prefix]` on an S3 server named explicitly (such as a
/// local SeaweedFS at `http://127.0.0.1:8333`) with these keys: nothing comes
/// from the environment, so one process can talk to this server and to the
/// one `AWS_ENDPOINT_URL` names. Path-style requests, region `us-east-1`; an
/// `http://` endpoint is allowed.
pub fn open_s3_with_endpoint(
    url: &str,
    endpoint: &str,
    access_key_id: &str,
    secret_access_key: &str,
) -> Result<ObjectStoreBackend, StoreError> {
    let (bucket, prefix) = s3_bucket_and_prefix(url)?;
    let s3 = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_endpoint(endpoint)
        .with_allow_http(endpoint.starts_with("http://"))
        .with_region("us-east-1")
        .with_access_key_id(access_key_id)
        .with_secret_access_key(secret_access_key)
        .build()
        .map_err(|e| open_error(url, format!("cannot configure S3 at {endpoint}: {e}")))?;
    Ok(ObjectStoreBackend::new(Arc::new(s3), prefix, url))
}

fn open_error(url: &str, msg: String) -> StoreError {
    StoreError::new(StoreErrorKind::Other, "open", url, msg)
}

fn s3_bucket_and_prefix(url: &str) -> Result<(&str, &str), StoreError> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| open_error(url, "not an s3 URL: use s3://bucket/prefix".into()))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(open_error(
            url,
            "an s3 URL needs a bucket: s3://bucket/prefix".into(),
        ));
    }
    Ok((bucket, prefix))
}

/// `s3://` with the AWS environment and credentials.
fn open_s3(url: &str) -> Result<ObjectStoreBackend, StoreError> {
    let (bucket, prefix) = s3_bucket_and_prefix(url)?;
    let mut builder = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
    // from_env reads AWS_ENDPOINT_URL; also honour the S3-specific name.
    if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL_S3") {
        builder = builder.with_endpoint(endpoint);
    }
    if super::aws_chain::profile_configured() {
        // Profiles (and SSO, credential_process) come from the SDK's chain.
        builder = builder.with_credentials(Arc::new(super::aws_chain::AwsChain::default()));
    }
    let s3 = builder
        .build()
        .map_err(|e| open_error(url, format!("cannot configure S3: {e}")))?;
    Ok(ObjectStoreBackend::new(Arc::new(s3), prefix, url))
}
