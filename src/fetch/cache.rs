//! The chunk cache: recently written or read chunk bytes keyed by object key
//! and byte offset, bounded by `cache_bytes_max` with least-recently-used
//! eviction. The write path fills it so tail reads cost no GET. It must not
//! decode or verify: bytes are checked when they are decoded.

use bytes::Bytes;
use lru::LruCache;
use parking_lot::Mutex;

#[derive(Debug)]
struct Inner {
    lru: LruCache<(String, u64), Bytes>,
    bytes: usize,
}

/// A byte-bounded LRU of chunk bytes.
#[derive(Debug)]
pub struct ChunkCache {
    inner: Mutex<Inner>,
    bytes_max: usize,
}

impl ChunkCache {
    /// An empty cache holding at most `bytes_max` bytes of chunks; the least recently used go
    /// first.
    pub fn new(bytes_max: usize) -> Self {
        ChunkCache {
            inner: Mutex::new(Inner {
                lru: LruCache::unbounded(),
                bytes: 0,
            }),
            bytes_max,
        }
    }

    /// The cached bytes of the chunk at byte `start` of object `key`, if present.
    pub fn get(&self, key: &str, start: u64) -> Option<Bytes> {
        let hit = self
            .inner
            .lock()
            .lru
            .get(&(key.to_string(), start))
            .cloned();
        let label = if hit.is_some() { "hit" } else { "miss" };
        metrics::counter!("skiff_cache_lookups_total", "result" => label).increment(1);
        hit
    }

    /// Cache the chunk at byte `start` of object `key`, evicting the least recently used past
    /// the byte bound.
    pub fn insert(&self, key: &str, start: u64, bytes: Bytes) {
        if bytes.len() > self.bytes_max {
            return;
        }
        let mut inner = self.inner.lock();
        inner.bytes += bytes.len();
        if let Some(old) = inner.lru.put((key.to_string(), start), bytes) {
            inner.bytes -= old.len();
        }
        while inner.bytes > self.bytes_max {
            match inner.lru.pop_lru() {
                Some((_, b)) => inner.bytes -= b.len(),
                None => break,
            }
        }
    }

    /// The bytes cached now.
    pub fn bytes(&self) -> usize {
        self.inner.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_stays_within_its_byte_bound() {
        let c = ChunkCache::new(100);
        for i in 0..50 {
            c.insert("k", i, Bytes::from(vec![0u8; 30]));
            assert!(c.bytes() <= 100);
        }
        assert!(c.get("k", 49).is_some());
        assert!(c.get("k", 0).is_none());
        c.insert("big", 0, Bytes::from(vec![0u8; 101]));
        assert!(c.get("big", 0).is_none());
    }
}
