//! Packing a pass's new chunks into segments and writing them. Chunks of
//! every partition share segments; a segment is sealed once it holds
//! `goal_bytes` (the pass's input split evenly into segments of about
//! `segment_bytes_target`, so no output segment is left tiny), checked
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
    goal_bytes: usize,
    current: Option<(Arc<str>, SegmentBuilder, usize)>,
    uploads: Vec<(String, JoinHandle<Result<u64>>)>,
}

impl Packer {
    /// A packer writing to `store`, sealing segments at `goal_bytes`.
    pub fn new(store: SharedStore, goal_bytes: u64) -> Self {
        Packer {
            store,
            goal_bytes: goal_bytes.max(1) as usize,
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
            (key, SegmentBuilder::with_capacity(goal), 0)
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
        if builder.data_bytes() >= goal {
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
    use super::goal_bytes;

    #[test]
    fn the_input_is_split_evenly_into_segments_of_about_the_target() {
        assert_eq!(goal_bytes(3, 8), 3);
        assert_eq!(goal_bytes(8, 8), 8);
        assert_eq!(goal_bytes(9, 8), 5, "two segments of 4.5, not 8 and 1");
        assert_eq!(goal_bytes(33, 8), 7);
        assert_eq!(goal_bytes(0, 8), 1);
    }
}
