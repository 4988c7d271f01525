//! Which objects the state needs: a derived index of live chunks per object
//! and of the objects awaiting collection, kept in step by `apply` (an
//! append retains its chunks' objects, a trim, delete or swap releases
//! them) and rebuilt from the chunks and the garbage list when a
//! checkpoint loads, so it is never stored. An object whose last live chunk
//! goes joins `State::garbage` with the log's time, which is what lets GC
//! wait a grace period from the *release*, not from the object's creation
//! (DESIGN invariant 5), without listing the store. It must not decide what
//! to delete (that is `gc.rs`).

use super::state::{ChunkRef, Garbage, ObjectRef, State};
use std::collections::{HashMap, HashSet};

/// Live chunk counts per object, and the set of objects in the garbage list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ObjectIndex {
    live: HashMap<ObjectRef, u32>,
    garbage: HashSet<ObjectRef>,
}

impl ObjectIndex {
    /// Objects some live chunk points into.
    pub fn live(&self) -> impl Iterator<Item = &ObjectRef> {
        self.live.keys()
    }

    /// Whether a live chunk points into `object`.
    pub fn is_live(&self, object: &ObjectRef) -> bool {
        self.live.contains_key(object)
    }

    /// Whether `object` awaits collection.
    pub fn is_garbage(&self, object: &ObjectRef) -> bool {
        self.garbage.contains(object)
    }

    /// Live chunks of `object`.
    pub fn chunks_in(&self, object: &ObjectRef) -> u32 {
        self.live.get(object).copied().unwrap_or(0)
    }
}

impl State {
    /// A new live chunk points into `c.object`.
    pub(super) fn retain_chunk(&mut self, c: &ChunkRef) {
        *self.objects.live.entry(c.object.clone()).or_insert(0) += 1;
    }

    /// A live chunk into `c.object` is gone; if it was the last, the
    /// object becomes garbage as of the log's clock.
    pub(super) fn release_chunk(&mut self, c: &ChunkRef) {
        let Some(n) = self.objects.live.get_mut(&c.object) else {
            return;
        };
        *n -= 1;
        if *n == 0 {
            self.objects.live.remove(&c.object);
            if self.objects.garbage.insert(c.object.clone()) {
                self.garbage.push_back(Garbage {
                    object: c.object.clone(),
                    since_ms: self.clock_ms,
                });
            }
        }
    }

    /// Drop these keys from the garbage list (a GC pass deleted them).
    pub(super) fn forget_garbage(&mut self, keys: &HashSet<&str>) {
        if keys.is_empty() {
            return;
        }
        let objects = &mut self.objects.garbage;
        self.garbage.retain(|g| {
            let gone = keys.contains(g.object.key().as_str());
            if gone {
                objects.remove(&g.object);
            }
            !gone
        });
    }

    /// Recompute the index from the chunks and the garbage list (after a
    /// checkpoint is decoded).
    pub(crate) fn rebuild_objects(&mut self) {
        let mut index = ObjectIndex::default();
        for c in self
            .topics
            .values()
            .flat_map(|t| &t.partitions)
            .flat_map(|p| &p.chunks)
        {
            *index.live.entry(c.object.clone()).or_insert(0) += 1;
        }
        index.garbage = self.garbage.iter().map(|g| g.object.clone()).collect();
        self.objects = index;
    }
}
