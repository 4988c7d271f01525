//! Latency-injecting wrapper: delays every call by a sampled round-trip time
//! (a fixed floor plus jitter shaped to hit a p50 and a p99), to simulate S3
//! on a laptop for `skiff bench`. It owns the named profiles; it must not
//! fail calls (that is the fault wrapper's job).

use super::{ObjectInfo, PutMode, SharedStore, Store, StoreResult};
use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::ops::Range;
use std::time::Duration;

/// The round-trip time of one kind of call, as two percentiles in ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpLatency {
    /// The median round trip, in ms; 0 or less adds no delay.
    pub p50_ms: f64,
    /// The 99th-percentile round trip, in ms (taken as the median if smaller).
    pub p99_ms: f64,
}

impl OpLatency {
    /// Sample a latency: log-normal through the two percentiles.
    fn sample(&self, rng: &mut SmallRng) -> Duration {
        if self.p50_ms <= 0.0 {
            return Duration::ZERO;
        }
        let mu = self.p50_ms.ln();
        // z(0.99) = 2.326
        let sigma = ((self.p99_ms.max(self.p50_ms)).ln() - mu) / 2.326;
        // Box-Muller for a standard normal.
        let u1: f64 = rng.random_range(f64::EPSILON..1.0);
        let u2: f64 = rng.random_range(0.0..1.0);
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        Duration::from_secs_f64((mu + sigma * z).exp() / 1000.0)
    }
}

/// Latencies for writes (PUT, DELETE) and reads (GET, HEAD, LIST).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencyProfile {
    /// Latency added to writes (PUT and DELETE).
    pub put: OpLatency,
    /// Latency added to reads (GET, ranged GET, HEAD and LIST).
    pub get: OpLatency,
}

impl LatencyProfile {
    /// `s3-standard`, `s3-express`, `none`, or `PUT:p50/p99,GET:p50/p99`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let l = |p50_ms, p99_ms| OpLatency { p50_ms, p99_ms };
        match s {
            // Published small-object measurements of S3 Standard.
            "s3-standard" => Ok(LatencyProfile {
                put: l(100.0, 195.0),
                get: l(63.0, 78.0),
            }),
            "s3-express" => Ok(LatencyProfile {
                put: l(6.0, 8.0),
                get: l(5.0, 7.0),
            }),
            "none" => Ok(LatencyProfile {
                put: l(0.0, 0.0),
                get: l(0.0, 0.0),
            }),
            _ => {
                let mut put = None;
                let mut get = None;
                for part in s.split(',') {
                    let (op, v) = part
                        .split_once(':')
                        .ok_or_else(|| format!("bad latency part {part:?}"))?;
                    let (a, b) = v
                        .split_once('/')
                        .ok_or_else(|| format!("bad latency {v:?}: want p50/p99"))?;
                    let parse = |x: &str| {
                        x.trim()
                            .trim_end_matches("ms")
                            .parse::<f64>()
                            .map_err(|e| format!("bad number {x:?}: {e}"))
                    };
                    let lat = l(parse(a)?, parse(b)?);
                    match op.trim().to_ascii_uppercase().as_str() {
                        "PUT" => put = Some(lat),
                        "GET" => get = Some(lat),
                        other => return Err(format!("unknown operation {other:?}")),
                    }
                }
                Ok(LatencyProfile {
                    put: put.ok_or("missing PUT latency")?,
                    get: get.ok_or("missing GET latency")?,
                })
            }
        }
    }
}

/// A wrapper that delays every call by a latency drawn from a [`LatencyProfile`], to run the
/// bench or a test as if on a remote store.
#[derive(Debug)]
pub struct LatencyStore {
    inner: SharedStore,
    profile: LatencyProfile,
    rng: Mutex<SmallRng>,
}

impl LatencyStore {
    /// Delay calls to `inner` by `profile`, drawing from a generator seeded with `seed` (a
    /// fixed seed draws the same delays).
    pub fn new(inner: SharedStore, profile: LatencyProfile, seed: u64) -> Self {
        LatencyStore {
            inner,
            profile,
            rng: Mutex::new(SmallRng::seed_from_u64(seed)),
        }
    }
    async fn delay(&self, op: OpLatency) {
        let d = op.sample(&mut self.rng.lock());
        if !d.is_zero() {
            crate::clock::sleep(d).await;
        }
    }
}

#[async_trait]
impl Store for LatencyStore {
    async fn put(&self, key: &str, body: Bytes, mode: PutMode) -> StoreResult<()> {
        self.delay(self.profile.put).await;
        self.inner.put(key, body, mode).await
    }
    async fn get(&self, key: &str) -> StoreResult<Bytes> {
        self.delay(self.profile.get).await;
        self.inner.get(key).await
    }
    async fn get_range(&self, key: &str, range: Range<u64>) -> StoreResult<Bytes> {
        self.delay(self.profile.get).await;
        self.inner.get_range(key, range).await
    }
    async fn list(&self, prefix: &str) -> StoreResult<Vec<ObjectInfo>> {
        self.delay(self.profile.get).await;
        self.inner.list(prefix).await
    }
    async fn list_after(&self, prefix: &str, after_key: &str) -> StoreResult<Vec<ObjectInfo>> {
        self.delay(self.profile.get).await;
        self.inner.list_after(prefix, after_key).await
    }
    async fn head(&self, key: &str) -> StoreResult<ObjectInfo> {
        self.delay(self.profile.get).await;
        self.inner.head(key).await
    }
    async fn delete(&self, key: &str) -> StoreResult<()> {
        self.delay(self.profile.put).await;
        self.inner.delete(key).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_hit_the_profile_percentiles() {
        let p = LatencyProfile::parse("s3-standard").unwrap();
        let mut rng = SmallRng::seed_from_u64(7);
        let mut v: Vec<f64> = (0..20_000)
            .map(|_| p.put.sample(&mut rng).as_secs_f64() * 1000.0)
            .collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let p50 = v[v.len() / 2];
        let p99 = v[v.len() * 99 / 100];
        assert!((90.0..110.0).contains(&p50), "p50 {p50}");
        assert!((170.0..220.0).contains(&p99), "p99 {p99}");
    }

    #[test]
    fn parses_explicit_profiles_and_rejects_garbage() {
        let p = LatencyProfile::parse("PUT:10/20,GET:5ms/9ms").unwrap();
        assert_eq!(p.put.p50_ms, 10.0);
        assert_eq!(p.get.p99_ms, 9.0);
        assert!(LatencyProfile::parse("PUT:10").is_err());
        assert!(LatencyProfile::parse("FOO:1/2,GET:1/2").is_err());
    }
}
