//! The checkpoint format: magic `SKCP`, a version byte, the CRC-32C of the
//! body, then the postcard-encoded body, which is a versioned transfer type
//! rather than the in-memory [`State`] itself, so changing `State` cannot
//! silently change what is stored. Version 1 (before the data lifecycle)
//! still reads; version 2 adds the garbage list and GC's sweep marks
//! (docs/design/0006). Derived indexes are rebuilt on decode, never stored.
//! It owns the bytes of a checkpoint; it must not read or write the store.

use super::snapshot_types::{
    map_values, GarbageV2, GcMarksV2, ProducerV1, QueueGroupV1, StreamGroupV1, TopicV1,
};
use super::state::State;
use crate::error::{Error, Result};
use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

const CHECKPOINT_MAGIC: &[u8; 4] = b"SKCP";
/// The version written; every version up to it still reads.
const CHECKPOINT_VERSION: u8 = 2;
/// Where the checkpoint header's fields start (the magic at 0), and its
/// length: magic, version, CRC-32C of the body.
const CHECKPOINT_VERSION_AT: usize = CHECKPOINT_MAGIC.len();
const CHECKPOINT_CRC_AT: usize = CHECKPOINT_VERSION_AT + 1;
const CHECKPOINT_HEADER_BYTES: usize = CHECKPOINT_CRC_AT + 4;

/// Version 1: the state of the log before the data lifecycle.
#[derive(Debug, Serialize, Deserialize)]
struct V1 {
    seq: u64,
    clock_ms: u64,
    topics: BTreeMap<String, TopicV1>,
    producers: BTreeMap<u64, ProducerV1>,
    recent_commits: VecDeque<u128>,
    stream_groups: BTreeMap<String, StreamGroupV1>,
    queues: BTreeMap<String, QueueGroupV1>,
}

/// Version 2: version 1, then the garbage list and the sweep marks.
#[derive(Debug, Serialize, Deserialize)]
struct V2 {
    base: V1,
    garbage: VecDeque<GarbageV2>,
    gc: GcMarksV2,
}

impl V2 {
    fn of(st: State) -> V2 {
        V2 {
            base: V1 {
                seq: st.seq,
                clock_ms: st.clock_ms,
                topics: map_values(st.topics, TopicV1::of),
                producers: map_values(st.producers, ProducerV1::of),
                recent_commits: st.recent_commits,
                stream_groups: map_values(st.stream_groups, StreamGroupV1::of),
                queues: map_values(st.queues, QueueGroupV1::of),
            },
            garbage: st.garbage.into_iter().map(GarbageV2::of).collect(),
            gc: GcMarksV2::of(st.gc),
        }
    }

    fn into_state(self) -> State {
        let b = self.base;
        let mut st = State {
            seq: b.seq,
            clock_ms: b.clock_ms,
            topics: map_values(b.topics, TopicV1::into_state),
            producers: map_values(b.producers, ProducerV1::into_state),
            recent_commits: b.recent_commits,
            stream_groups: map_values(b.stream_groups, StreamGroupV1::into_state),
            queues: map_values(b.queues, QueueGroupV1::into_state),
            garbage: self
                .garbage
                .into_iter()
                .map(GarbageV2::into_state)
                .collect(),
            gc: self.gc.into_state(),
            objects: Default::default(),
        };
        st.rebuild_objects();
        st
    }
}

impl State {
    /// Encode as a checkpoint object (the current version).
    pub fn encode_checkpoint(&self) -> Result<Bytes> {
        self.clone().into_checkpoint()
    }

    /// [`State::encode_checkpoint`] of a state the caller no longer needs
    /// (no copy).
    pub fn into_checkpoint(self) -> Result<Bytes> {
        let body = postcard::to_allocvec(&V2::of(self))
            .map_err(|e| Error::Internal(format!("cannot encode checkpoint: {e}")))?;
        let mut buf = BytesMut::with_capacity(body.len() + CHECKPOINT_HEADER_BYTES);
        buf.extend_from_slice(CHECKPOINT_MAGIC);
        buf.put_u8(CHECKPOINT_VERSION);
        buf.put_u32_le(crc32c::crc32c(&body));
        buf.extend_from_slice(&body);
        Ok(buf.freeze())
    }

    /// Decode a checkpoint of any version read from `key` (named in
    /// errors); `Corrupt` if the magic, version or CRC is wrong.
    pub fn decode_checkpoint(key: &str, bytes: &[u8]) -> Result<State> {
        if bytes.len() < CHECKPOINT_HEADER_BYTES
            || &bytes[..CHECKPOINT_VERSION_AT] != CHECKPOINT_MAGIC
        {
            return Err(Error::corrupt(key, "not a checkpoint (bad magic)"));
        }
        let version = bytes[CHECKPOINT_VERSION_AT];
        let crc_bytes = &bytes[CHECKPOINT_CRC_AT..CHECKPOINT_HEADER_BYTES];
        let crc = u32::from_le_bytes([crc_bytes[0], crc_bytes[1], crc_bytes[2], crc_bytes[3]]);
        let body = &bytes[CHECKPOINT_HEADER_BYTES..];
        if crc32c::crc32c(body) != crc {
            return Err(Error::corrupt(key, "checkpoint checksum mismatch"));
        }
        let bad = |e: postcard::Error| Error::corrupt(key, format!("bad checkpoint: {e}"));
        let v2 = match version {
            1 => V2 {
                base: postcard::from_bytes(body).map_err(bad)?,
                garbage: VecDeque::new(),
                gc: GcMarksV2::default(),
            },
            2 => postcard::from_bytes(body).map_err(bad)?,
            v => {
                return Err(Error::corrupt(
                    key,
                    format!(
                    "unknown checkpoint version {v} (this agent reads 1..={CHECKPOINT_VERSION})"
                ),
                ))
            }
        };
        Ok(v2.into_state())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// A checkpoint with bytes changed and its checksum re-sealed (what a
        /// bucket writer could store) decodes to an error or a state, never
        /// a panic.
        #[test]
        fn hostile_checkpoints_are_errors_never_panics(
            junk in proptest::collection::vec(any::<u8>(), 0..128),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        ) {
            let _ = State::decode_checkpoint("checkpoints/1", &junk);
            let st = State {
                clock_ms: 7,
                ..State::default()
            };
            let mut v = st.encode_checkpoint().unwrap().to_vec();
            for (at, b) in edits {
                let i = at.index(v.len());
                v[i] = b;
            }
            if v.len() >= CHECKPOINT_HEADER_BYTES {
                let crc = crc32c::crc32c(&v[CHECKPOINT_HEADER_BYTES..]);
                v[CHECKPOINT_CRC_AT..CHECKPOINT_HEADER_BYTES].copy_from_slice(&crc.to_le_bytes());
            }
            let _ = State::decode_checkpoint("checkpoints/1", &v);
        }
    }
}
