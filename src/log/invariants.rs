//! The log's invariants as code, checked after every `apply` in debug builds
//! and tests: offsets dense and unique per partition, log-start within the
//! log, chunk ranges sane, bounded remembered state. It owns the statements
//! of the rules; it must not repair anything: a violation is a bug.

use super::append::PRODUCER_RECENT_MAX;
use super::apply::RECENT_COMMITS_MAX;
use super::state::State;

/// Check every invariant; the error names the first one broken.
pub fn check(state: &State) -> Result<(), String> {
    for t in state.topics.values() {
        for (i, p) in t.partitions.iter().enumerate() {
            let at = format!("{}/{}", t.name, i);
            // Invariant: log-start <= high watermark.
            if p.log_start_offset > p.high_watermark {
                return Err(format!(
                    "{at}: log start {} > high watermark {}",
                    p.log_start_offset, p.high_watermark
                ));
            }
            match (p.chunks.front(), p.chunks.back()) {
                (Some(first), Some(last)) => {
                    // Invariant: the first chunk holds the log-start offset.
                    if first.base_offset > p.log_start_offset
                        || first.end_offset() <= p.log_start_offset
                    {
                        return Err(format!(
                            "{at}: first chunk does not hold log start {}",
                            p.log_start_offset
                        ));
                    }
                    // Invariant: the last chunk ends at the high watermark.
                    if last.end_offset() != p.high_watermark {
                        return Err(format!(
                            "{at}: last chunk ends at {}, hwm {}",
                            last.end_offset(),
                            p.high_watermark
                        ));
                    }
                }
                _ => {
                    if p.log_start_offset != p.high_watermark {
                        return Err(format!(
                            "{at}: no chunks but offsets {}..{}",
                            p.log_start_offset, p.high_watermark
                        ));
                    }
                }
            }
            // Invariant: offsets dense and unique: each chunk starts where the last ended.
            let mut bytes = 0u64;
            for w in p.chunks.iter().zip(p.chunks.iter().skip(1)) {
                if w.0.end_offset() != w.1.base_offset {
                    return Err(format!(
                        "{at}: gap or overlap at offset {}",
                        w.0.end_offset()
                    ));
                }
            }
            for c in &p.chunks {
                if c.record_count == 0 || c.len == 0 {
                    return Err(format!("{at}: empty chunk at {}", c.base_offset));
                }
                bytes += c.len as u64;
            }
            if bytes != p.bytes {
                return Err(format!(
                    "{at}: byte count {} != sum of chunks {bytes}",
                    p.bytes
                ));
            }
        }
    }
    for (name, g) in &state.stream_groups {
        // Invariant: no partition is owned by two members.
        let mut owned = std::collections::BTreeSet::new();
        for m in g.members.values() {
            for tp in &m.assignments {
                if !owned.insert(tp) {
                    return Err(format!("group {name}: {}/{} assigned twice", tp.0, tp.1));
                }
            }
        }
    }
    for (name, q) in &state.queues {
        for (t, ps) in &q.partitions {
            for (p, qp) in ps {
                // Invariant: tracked messages lie in [floor, next); the
                // floor never passes an unsettled message.
                if qp.floor > qp.next || qp.msgs.keys().any(|o| *o < qp.floor || *o >= qp.next) {
                    return Err(format!(
                        "queue {name} {t}/{p}: messages outside [floor, next)"
                    ));
                }
            }
        }
    }
    if state.recent_commits.len() > RECENT_COMMITS_MAX {
        return Err("too many remembered commit ids".into());
    }
    if state
        .producers
        .values()
        .any(|p| p.recent.len() > PRODUCER_RECENT_MAX)
    {
        return Err("too many remembered producer results".into());
    }
    Ok(())
}
