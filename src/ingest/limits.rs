//! The limits a produce request must keep, checked the same way for a
//! direct request and for a forwarded entry's records (`admit`): records per
//! request, record and request bytes, headers per record, timestamps and
//! producer sequences, and topics and partitions that exist. It must not
//! batch or commit.

use super::config::{IngestConfig, PRODUCER_SEQUENCE_MAX};
use super::ProduceRequest;
use crate::error::{Error, Result};
use crate::log::CommitLog;
use crate::segment::{Record, RECORD_HEADERS_MAX, TIMESTAMP_MS_MAX};
use std::collections::BTreeMap;

/// Check a produce request against the write path's limits and the topics
/// as this agent knows them: what it costs in bytes, and the topic ids it
/// was checked against.
pub(super) fn validate(
    cfg: &IngestConfig,
    log: &CommitLog,
    request: &ProduceRequest,
) -> Result<(BTreeMap<String, u64>, usize)> {
    if request.records.is_empty() {
        return Err(Error::Invalid(
            "a produce request needs at least one record".into(),
        ));
    }
    if request.records.len() > cfg.request_records_max {
        return Err(Error::OverLimit(format!(
            "a produce request holds at most {} records (request_records_max), this one {}",
            cfg.request_records_max,
            request.records.len()
        )));
    }
    if let Some(p) = request
        .producer
        .filter(|p| p.sequence > PRODUCER_SEQUENCE_MAX)
    {
        return Err(Error::Invalid(format!(
            "producer sequence {} is past {PRODUCER_SEQUENCE_MAX}",
            p.sequence
        )));
    }
    let mut topic_ids = BTreeMap::new();
    let mut total = 0usize;
    let st = log.state();
    for r in &request.records {
        total += check_record(cfg, &r.record)?;
        if !topic_ids.contains_key(&r.topic) {
            let t = st.topic(&r.topic)?;
            topic_ids.insert(r.topic.clone(), t.id);
        }
        st.partition(&r.topic, r.partition)?;
    }
    if total > cfg.request_bytes_max {
        return Err(Error::RequestTooLarge {
            bytes: total,
            max: cfg.request_bytes_max,
        });
    }
    Ok((topic_ids, total))
}

/// One record's size, headers and timestamp against the limits; its cost.
pub(crate) fn check_record(cfg: &IngestConfig, r: &Record) -> Result<usize> {
    check_record_within(r, cfg.record_bytes_max, RECORD_HEADERS_MAX)
}

/// [`check_record`] with explicit size and header limits.
pub(crate) fn check_record_within(
    r: &Record,
    bytes_max: usize,
    headers_max: usize,
) -> Result<usize> {
    let size = r.approx_bytes();
    if size > bytes_max {
        return Err(Error::RecordTooLarge {
            bytes: size,
            max: bytes_max,
        });
    }
    if r.headers.len() > headers_max {
        return Err(Error::OverLimit(format!(
            "a record carries at most {headers_max} headers, this one {}",
            r.headers.len()
        )));
    }
    if !(0..=TIMESTAMP_MS_MAX).contains(&r.timestamp_ms) {
        return Err(Error::Invalid(format!(
            "timestamp_ms {} is outside 0..={TIMESTAMP_MS_MAX}",
            r.timestamp_ms
        )));
    }
    Ok(size)
}
