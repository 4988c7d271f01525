//! The precondition of a commit: an entry about to be written to the log is
//! well-formed, so every agent can decode it and no chunk it references is
//! unreadable by construction (DESIGN invariants 3 and 7: a log object is
//! written once, so a bad one would be there for good). One named function
//! per rule, each returning the [`Violation`] it names; [`check_entry`] runs
//! them all in O(entry) (the body and inline chunks are checksummed, no
//! decoding). It must not look at the log's state: whether an intent is
//! accepted is `apply`'s business.

use super::entry::{inline_bytes, ChunkIntent, EncodedEntry, EntryHeader, Intent, Location};
use super::lifecycle::{Swap, SWAP_CHUNKS_MAX};
use super::violation::Violation;

type Checked = Result<(), Violation>;

/// Check `e` before it is written: its header and body, and every chunk.
pub(crate) fn check_entry(e: &EncodedEntry) -> Checked {
    entry_header_consistent(e)?;
    let id = e.entry.commit_id;
    for c in e
        .entry
        .intents
        .iter()
        .filter_map(Intent::append)
        .flat_map(|a| &a.chunks)
    {
        chunk_intent_non_empty(id, c)?;
        match &c.location {
            Location::Inline { .. } => inline_chunk_sound(id, c, &e.blob)?,
            Location::Segment { .. } => segment_named(id, c)?,
        }
    }
    for s in e.entry.intents.iter().filter_map(|i| match i {
        Intent::Swap(s) => Some(s),
        _ => None,
    }) {
        swap_well_formed(id, s)?;
    }
    Ok(())
}

/// Rule: the stored bytes are this entry's: the current version, lengths
/// that add up, this blob, and a body that matches its checksum.
pub(crate) fn entry_header_consistent(e: &EncodedEntry) -> Checked {
    let commit_id = e.entry.commit_id;
    let broken = |detail| Err(Violation::EntryHeaderInconsistent { commit_id, detail });
    let Some(h) = EntryHeader::read(&e.bytes) else {
        return broken("no log entry header");
    };
    if !h.fits(e.bytes.len()) {
        return broken("the header's version or lengths do not fit the bytes");
    }
    if h.blob_len != e.blob.len() {
        return broken("the stored blob is not the entry's blob");
    }
    let body = &e.bytes[e.bytes.len() - h.body_len..];
    if crc32c::crc32c(body) != h.body_crc {
        return broken("the body does not match its checksum");
    }
    Ok(())
}

/// Rule: a chunk holds at least one record and one byte (what the state's
/// `chunk_non_empty` requires of every committed chunk).
pub(crate) fn chunk_intent_non_empty(commit_id: u128, c: &ChunkIntent) -> Checked {
    let len = match c.location {
        Location::Segment { len, .. } | Location::Inline { len, .. } => len,
    };
    if c.record_count == 0 || len == 0 {
        return Err(Violation::EmptyChunkIntent {
            commit_id,
            topic: c.topic.clone(),
            partition: c.partition,
            record_count: c.record_count,
            len,
        });
    }
    Ok(())
}

/// Rule, invariant 7: an inline chunk lies inside the entry's blob and
/// matches its checksum (what every reader's decode checks).
pub(crate) fn inline_chunk_sound(commit_id: u128, c: &ChunkIntent, blob: &[u8]) -> Checked {
    let Location::Inline { start, len } = c.location else {
        return Ok(());
    };
    let sound = inline_bytes(blob, start, len).is_some_and(|b| crc32c::crc32c(b) == c.crc32c);
    if !sound {
        return Err(Violation::InlineChunkUnsound {
            commit_id,
            topic: c.topic.clone(),
            partition: c.partition,
            start,
            len,
            blob_len: blob.len(),
        });
    }
    Ok(())
}

/// Rule: a segment chunk names its segment.
pub(crate) fn segment_named(commit_id: u128, c: &ChunkIntent) -> Checked {
    match &c.location {
        Location::Segment { key, .. } if key.is_empty() => Err(Violation::SegmentKeyMissing {
            commit_id,
            topic: c.topic.clone(),
            partition: c.partition,
        }),
        _ => Ok(()),
    }
}

/// Rule: a compactor's swap is well formed: it replaces at least one
/// chunk by at least one (at most `SWAP_CHUNKS_MAX` each), every chunk it
/// names holds records and every new one bytes within 2^64, the new chunks
/// lie in segments named like ours (`segments/<ULID>.seg`), and they hold
/// exactly the records they replace. `apply` refuses such a swap anyway;
/// this stops the writer that built it before it reaches the log.
pub(crate) fn swap_well_formed(commit_id: u128, s: &Swap) -> Checked {
    let broken = |detail: String| {
        Err(Violation::SwapMalformed {
            commit_id,
            topic: s.topic.clone(),
            partition: s.partition,
            base_offset: s.base_offset,
            detail,
        })
    };
    let (replaced, chunks) = (s.replaced.len(), s.chunks.len());
    if replaced == 0 || chunks == 0 || replaced > SWAP_CHUNKS_MAX || chunks > SWAP_CHUNKS_MAX {
        return broken(format!(
            "it replaces {replaced} chunks by {chunks} (each must be 1..={SWAP_CHUNKS_MAX})"
        ));
    }
    if let Some(c) = s
        .replaced
        .iter()
        .find(|c| c.record_count == 0 || c.key.is_empty())
    {
        return broken(format!(
            "the replaced chunk {:?} at byte {} is empty",
            c.key, c.start
        ));
    }
    for c in &s.chunks {
        if c.record_count == 0 || c.len == 0 || c.start.checked_add(u64::from(c.len)).is_none() {
            return broken(format!(
                "the new chunk in {} at byte {} is empty",
                c.key, c.start
            ));
        }
        if !segment_key_named_like_ours(&c.key) {
            return broken(format!("{:?} is not a segment key of ours", c.key));
        }
    }
    if s.replaced_records() != s.new_records() {
        return broken(format!(
            "it replaces {} records by {}",
            s.replaced_records(),
            s.new_records()
        ));
    }
    Ok(())
}

/// Whether `key` is `segments/<ULID>.seg`, as `segment::new_segment_key`
/// names segments.
fn segment_key_named_like_ours(key: &str) -> bool {
    key.strip_prefix("segments/")
        .and_then(|k| k.strip_suffix(".seg"))
        .is_some_and(|id| id.len() == 26 && ulid::Ulid::from_string(id).is_ok())
}
