//! The store's own limit, measured on the same store in the same run: the
//! round trip of a small PUT and sequential PUT bandwidth with
//! segment-sized objects. It writes under `bench-raw/` and deletes what it
//! wrote.

use bytes::Bytes;
use serde::Serialize;
use skiff::store::{PutMode, SharedStore};
use std::time::Duration;

/// Small PUTs whose median round trip is reported, and their size.
const SMALL_PUTS: usize = 20;
const SMALL_PUT_BYTES: usize = 1024;
/// The bandwidth test runs this long or this many PUTs, whichever is first.
const BANDWIDTH_S: f64 = 2.0;
const BANDWIDTH_PUTS_MAX: usize = 64;

#[derive(Debug, Clone, Serialize)]
pub struct RawStoreReport {
    /// Median round trip of a 1 KiB PUT.
    pub put_ms_p50: f64,
    /// Sequential PUTs of `object_bytes` objects.
    pub put_mib_per_s: f64,
    pub object_bytes: usize,
}

pub async fn measure_raw_store(
    store: &SharedStore,
    object_bytes: usize,
) -> Result<RawStoreReport, String> {
    let run = skiff::ids::ulid();
    let mut keys = Vec::new();
    let mut small = Vec::with_capacity(SMALL_PUTS);
    for i in 0..SMALL_PUTS {
        let key = format!("bench-raw/{run}/small-{i}");
        let started = skiff::clock::now();
        store
            .put(
                &key,
                Bytes::from(vec![7u8; SMALL_PUT_BYTES]),
                PutMode::Create,
            )
            .await
            .map_err(|e| e.to_string())?;
        small.push(started.elapsed().as_secs_f64() * 1000.0);
        keys.push(key);
    }
    small.sort_by(f64::total_cmp);
    let body = Bytes::from(vec![9u8; object_bytes.max(1)]);
    let started = skiff::clock::now();
    let mut bytes = 0usize;
    let mut i = 0;
    while started.elapsed() < Duration::from_secs_f64(BANDWIDTH_S) && i < BANDWIDTH_PUTS_MAX {
        let key = format!("bench-raw/{run}/big-{i}");
        store
            .put(&key, body.clone(), PutMode::Create)
            .await
            .map_err(|e| e.to_string())?;
        bytes += body.len();
        keys.push(key);
        i += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    for k in keys {
        let _ = store.delete(&k).await;
    }
    Ok(RawStoreReport {
        put_ms_p50: small[small.len() / 2],
        put_mib_per_s: bytes as f64 / (1 << 20) as f64 / secs,
        object_bytes: body.len(),
    })
}
