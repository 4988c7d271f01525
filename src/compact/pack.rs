//! Packing a pass's new chunks into segments and writing them. Chunks of
//! every partition share segments. The pass's output is split evenly into
//! `ceil(total / segment_bytes_target)` segments: segment `k` is sealed once
//! the chunks placed so far reach `k` times the goal, so sizes do not drift
//! and no last segment is left tiny (each is the goal within one chunk,
//! hence at least about half the target: not small, not rewritten again).
//! A sealed segment is checked
//! (its footer and every chunk's checksum read back, the postcondition of
//! building it) and written under a fresh key with create-if-absent while
//! the next one fills. Nothing references these segments until the pass
//! commits its swap, so a failure anywhere leaves only unreferenced
//! objects for GC. It must not commit anything to the log.

use super::rewrite::Encoded;
use crate::error::{Error, Result};
use crate::log::SwapChunk;
use crate::segment::{decode_segment, new_segment_key, SegmentBuilder};
use crate::store::{create_resolving, Created, SharedStore};
use std::sync::Arc;
use tokio::task::JoinHandle;

/// The per-segment goal for `input_bytes` of chunks: split evenly into
/// `ceil(input / target)` segments, so each is at least half the target
/// when the input is.
pub fn goal_bytes(input_bytes: u64, segment_bytes_target: u64) -> u64 {
    let target = segment_bytes_target.max(1);
    let segments = input_bytes.div_ceil(target).max(1);
    input_bytes.div_ceil(segments).max(1)
}

/// What the packer wrote.
#[derive(Debug, Default)]
pub struct Written {
    /// The segments' keys, in the order written.
    pub keys: Vec<String>,
    /// Bytes of the segment bodies.
    pub bytes: u64,
}

/// Fills segments with chunks and uploads each as it is sealed.
pub struct Packer {
    store: SharedStore,
    goal_bytes: u64,
    /// Bytes of chunks placed so far, over every segment.
    placed_bytes: u64,
    current: Option<(Arc<str>, SegmentBuilder, usize)>,
    uploads: Vec<(String, JoinHandle<Result<u64>>)>,
}

impl Packer {
    /// A packer writing `total_bytes` of chunks to `store` in segments of
    /// about `segment_bytes_target`.
    pub fn new(store: SharedStore, total_bytes: u64, segment_bytes_target: u64) -> Self {
        Packer {
            store,
            goal_bytes: goal_bytes(total_bytes, segment_bytes_target),
            placed_bytes: 0,
            current: None,
            uploads: Vec::new(),
        }
    }

    /// Put `chunk` of `topic`/`partition` in the current segment; where it
    /// lies, as the swap names it.
    pub fn add(&mut self, topic: &str, partition: u32, chunk: &Encoded) -> Result<SwapChunk> {
        let goal = self.goal_bytes;
        let (key, builder, chunks) = self.current.get_or_insert_with(|| {
            let key: Arc<str> = new_segment_key().into();
            (key, SegmentBuilder::with_capacity(goal as usize), 0)
        });
        let start = builder.add_chunk(topic, partition, &chunk.bytes, &chunk.meta);
        *chunks += 1;
        let placed = SwapChunk {
            key: key.clone(),
            start,
            len: chunk.bytes.len() as u32,
            record_count: chunk.meta.record_count,
            max_timestamp_ms: chunk.meta.max_timestamp_ms,
            crc32c: chunk.meta.crc32c,
        };
        self.placed_bytes += chunk.bytes.len() as u64;
        let sealed = self.uploads.len() as u64;
        if self.placed_bytes >= (sealed + 1).saturating_mul(goal) {
            self.seal()?;
        }
        Ok(placed)
    }

    /// Finish the current segment, check it and start its upload.
    fn seal(&mut self) -> Result<()> {
        let Some((key, builder, chunks)) = self.current.take() else {
            return Ok(());
        };
        let body = builder.finish();
        let footer = decode_segment(&key, &body)?;
        if footer.len() != chunks {
            return Err(Error::Internal(format!(
                "compacted segment {key} lists {} chunks, {chunks} were added",
                footer.len()
            )));
        }
        let store = self.store.clone();
        let k = key.to_string();
        let upload = tokio::spawn(async move {
            let len = body.len() as u64;
            match create_resolving(&*store, &k, body).await? {
                Created::Ours => Ok(len),
                Created::Theirs(_) => Err(Error::Internal(format!("segment key {k} collided"))),
            }
        });
        self.uploads.push((key.to_string(), upload));
        Ok(())
    }

    /// Seal the last segment and wait for every upload; the first failure
    /// is the answer (the segments written stay unreferenced).
    pub async fn finish(mut self) -> Result<Written> {
        self.seal()?;
        let mut written = Written::default();
        let mut failed = None;
        for (key, upload) in self.uploads.drain(..) {
            let result = upload
                .await
                .unwrap_or_else(|e| Err(Error::Internal(format!("uploading {key}: {e}"))));
            match result {
                Ok(n) => {
                    written.bytes += n;
                    written.keys.push(key);
                }
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(written),
        }
    }
}

impl Drop for Packer {
    fn drop(&mut self) {
        // A pass that stopped early leaves no upload running unobserved.
        for (_, upload) in &self.uploads {
            upload.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::ChunkMeta;
    use bytes::Bytes;
    use std::collections::BTreeMap;

    fn chunk(i: u8) -> Encoded {
        let bytes = Bytes::from(vec![i; 100]);
        let meta = ChunkMeta {
            record_count: 1,
            max_timestamp_ms: 0,
            crc32c: crc32c::crc32c(&bytes),
        };
        Encoded { bytes, meta }
    }

    #[tokio::test]
    async fn segments_split_the_output_evenly_and_are_written() {
        let store: SharedStore = Arc::new(crate::store::open("memory://").unwrap());
        // 3300 bytes at a target of 800: five segments of about 660.
        let mut packer = Packer::new(store.clone(), 3_300, 800);
        let mut per_segment: BTreeMap<Arc<str>, usize> = BTreeMap::new();
        for i in 0..33 {
            let placed = packer.add("t", 0, &chunk(i)).unwrap();
            *per_segment.entry(placed.key).or_insert(0) += 1;
        }
        let written = packer.finish().await.unwrap();
        let counts: Vec<usize> = written.keys.iter().map(|k| per_segment[&**k]).collect();
        assert_eq!(counts, vec![7, 7, 6, 7, 6], "no tiny last segment");
        for k in &written.keys {
            let body = store.get(k).await.unwrap();
            assert_eq!(decode_segment(k, &body).unwrap().len(), per_segment[&**k]);
        }
    }

    #[test]
    fn the_input_is_split_evenly_into_segments_of_about_the_target() {
        assert_eq!(goal_bytes(3, 8), 3);
        assert_eq!(goal_bytes(8, 8), 8);
        assert_eq!(goal_bytes(9, 8), 5, "two segments of 4.5, not 8 and 1");
        assert_eq!(goal_bytes(33, 8), 7);
        assert_eq!(goal_bytes(0, 8), 1);
    }
}
