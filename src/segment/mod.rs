//! Segment objects: the immutable data objects one agent flush writes. It
//! owns the chunk codec (one Kafka RecordBatch v2 per topic-partition, via
//! the `kafka-protocol` crate) and the segment layout (chunks, a footer
//! index, a fixed trailer), with checksums verified on every read. It must
//! not decide offsets: a chunk's records are numbered from 0 and the commit
//! log assigns the base offset.

mod bounded;
mod chunk;
mod format;

pub use bounded::{BatchError, DecodeLimits, BATCH_HEADER_BYTES, RECORD_BYTES_MIN};
pub use chunk::{
    decode_batches, decode_chunk, decode_chunk_within, encode_batch, encode_chunk, ChunkMeta,
    Compression, Record, CHUNK_DECODED_BYTES_MAX, RECORD_HEADERS_MAX, TIMESTAMP_MS_MAX,
};
pub use format::{decode_segment, FooterEntry, SegmentBuilder, SEGMENT_MAGIC};

/// The object key of a new segment: unique, sortable by creation time.
pub fn new_segment_key() -> String {
    format!("segments/{}.seg", crate::ids::ulid())
}
