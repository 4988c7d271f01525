//! Reading many objects with bounded memory: each listed object is read
//! whole and handed to a check, with at most `concurrency` reads in flight
//! and at most `bytes_in_flight_max` bytes of them held at once (an object
//! larger than that is read alone), so a pass over a bucket of any size
//! holds only a few objects. An object gone since the LIST (GC) is handed
//! over as `None`; one the store keeps failing to return is a problem. It
//! must not judge what it reads.

use super::readonly::ReadOnlyStore;
use super::report::{Capped, Problem, ProblemKind, Progress};
use super::scan::Count;
use crate::store::{ObjectInfo, Store};
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::Semaphore;

/// Bytes are budgeted in units of this many (a semaphore's permits).
const BUDGET_UNIT_BYTES: u64 = 1 << 10;

/// How hard a sweep may read.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    /// Objects read at once at most.
    pub concurrency: usize,
    /// Bytes of objects held at once at most (one larger object is read
    /// alone).
    pub bytes_in_flight_max: u64,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            concurrency: 8,
            bytes_in_flight_max: 256 << 20,
        }
    }
}

/// What a sweep read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Swept {
    /// Objects read and checked, and their bytes.
    pub checked: Count,
    /// Objects listed but gone when read.
    pub vanished: u64,
}

/// Read each of `objects` whole and run `check` on its bytes (`None`: it
/// was deleted since the LIST), adding what `check` finds to `problems`.
pub async fn sweep<'a, F>(
    store: &ReadOnlyStore,
    objects: impl Iterator<Item = &'a ObjectInfo>,
    limits: ReadLimits,
    progress: &dyn Progress,
    problems: &mut Capped<Problem>,
    check: F,
) -> Swept
where
    F: Fn(&ObjectInfo, Option<Bytes>) -> Vec<Problem>,
{
    let units = (limits.bytes_in_flight_max / BUDGET_UNIT_BYTES).clamp(1, u32::MAX as u64) as u32;
    let budget = Semaphore::new(units as usize);
    let budget = &budget;
    let mut reads = futures::stream::iter(objects)
        .map(|o| async move {
            let weight = o.size.div_ceil(BUDGET_UNIT_BYTES).clamp(1, units as u64) as u32;
            // The semaphore is never closed, so acquiring cannot fail.
            let _held = budget.acquire_many(weight).await.ok();
            let got = store.get(&o.key).await;
            (o, got)
        })
        .buffer_unordered(limits.concurrency.max(1));
    let mut swept = Swept::default();
    while let Some((o, got)) = reads.next().await {
        let found = match got {
            Ok(bytes) => {
                swept.checked.objects += 1;
                swept.checked.bytes += bytes.len() as u64;
                check(o, Some(bytes))
            }
            Err(e) if e.is_not_found() => {
                swept.vanished += 1;
                check(o, None)
            }
            Err(e) => vec![Problem::new(ProblemKind::Unreadable, &o.key, e.to_string())],
        };
        for p in found {
            problems.push(p, 0);
        }
        progress.advance(1);
    }
    swept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{PutMode, SharedStore};
    use std::sync::Arc;

    #[tokio::test]
    async fn every_object_is_checked_once_and_a_vanished_one_is_none() {
        let mem: SharedStore = Arc::new(crate::store::open("memory://").unwrap());
        for i in 0..20u8 {
            let body = Bytes::from(vec![i; 3000]);
            mem.put(&format!("o/{i:02}"), body, PutMode::Create)
                .await
                .unwrap();
        }
        let mut listed = mem.list("o/").await.unwrap();
        listed.push(ObjectInfo {
            key: "o/gone".into(),
            size: 5,
            last_modified_ms: 0,
        });
        let store = ReadOnlyStore::new(mem);
        let mut problems = Capped::default();
        // A budget smaller than one object: reads go one at a time.
        let limits = ReadLimits {
            concurrency: 4,
            bytes_in_flight_max: 1024,
        };
        let swept = sweep(
            &store,
            listed.iter(),
            limits,
            &super::super::report::Quiet,
            &mut problems,
            |o, b| match b {
                Some(b) if b[0] == 7 => vec![Problem::new(ProblemKind::Corrupt, &o.key, "7")],
                Some(_) => vec![],
                None => vec![Problem::new(ProblemKind::Missing, &o.key, "gone")],
            },
        )
        .await;
        assert_eq!(swept.checked.objects, 20);
        assert_eq!(swept.checked.bytes, 20 * 3000);
        assert_eq!(swept.vanished, 1);
        let mut keys: Vec<_> = problems.items.iter().map(|p| p.key.as_str()).collect();
        keys.sort();
        assert_eq!(keys, ["o/07", "o/gone"]);
    }
}
