//! Stream groups (Kafka-like), as pure state: members with session
//! timeouts, a generation that changes on every membership or partition
//! change, sticky balanced assignment, and fenced offset commits. Applied by
//! the commit log's `apply`, so every agent computes the same assignments.
//! It must not do I/O or read clocks: `now_ms` is the log's time.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A (topic, partition) pair.
pub type TopicPartition = (String, u32);

/// One member of a stream group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The topics it subscribed to.
    pub topics: Vec<String>,
    /// It is dropped after this long without a heartbeat, in ms.
    pub session_timeout_ms: u64,
    /// When it last joined or sent a heartbeat, ms on the log's clock.
    pub last_seen_ms: u64,
    /// The partitions it owns in the current generation.
    pub assignments: Vec<TopicPartition>,
}

/// A stream group: members own partitions of their topics and commit offsets, fenced by a
/// generation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamGroup {
    /// Bumped whenever membership or assignments change; commits of older generations are
    /// refused.
    pub generation: u64,
    /// The live members, by member id.
    pub members: BTreeMap<String, Member>,
    /// Committed offsets: topic → partition → next offset to read.
    pub offsets: BTreeMap<String, BTreeMap<u32, u64>>,
}

/// What a member learns from a join or a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Assignment {
    /// The group's generation the assignment belongs to.
    pub generation: u64,
    /// The partitions the member owns.
    pub partitions: Vec<TopicPartition>,
}

/// Partition counts of existing topics (0 for unknown topics).
pub type PartitionCount<'a> = &'a dyn Fn(&str) -> u32;

impl StreamGroup {
    fn wanted(&self, parts: PartitionCount) -> BTreeSet<TopicPartition> {
        let topics: BTreeSet<&String> = self
            .members
            .values()
            .flat_map(|m| m.topics.iter())
            .collect();
        topics
            .into_iter()
            .flat_map(|t| (0..parts(t)).map(move |p| (t.clone(), p)))
            .collect()
    }

    fn assigned(&self) -> BTreeSet<TopicPartition> {
        self.members
            .values()
            .flat_map(|m| m.assignments.iter().cloned())
            .collect()
    }

    /// Spread the wanted partitions over members: keep what each member
    /// has while it stays within its fair share, then give each unassigned
    /// partition to the least-loaded subscribed member (ties by member id).
    fn rebalance(&mut self, parts: PartitionCount) {
        let wanted = self.wanted(parts);
        let n_members = self.members.len().max(1);
        let quota = wanted.len().div_ceil(n_members);
        let mut taken = BTreeSet::new();
        for m in self.members.values_mut() {
            let keep: Vec<TopicPartition> = m
                .assignments
                .iter()
                .filter(|tp| wanted.contains(*tp) && m.topics.contains(&tp.0))
                .take(quota)
                .cloned()
                .collect();
            taken.extend(keep.iter().cloned());
            m.assignments = keep;
        }
        for tp in wanted.iter().filter(|tp| !taken.contains(*tp)) {
            let target = self
                .members
                .iter_mut()
                .filter(|(_, m)| m.topics.contains(&tp.0))
                .min_by_key(|(id, m)| (m.assignments.len(), (*id).clone()));
            if let Some((_, m)) = target {
                m.assignments.push(tp.clone());
            }
        }
        for m in self.members.values_mut() {
            m.assignments.sort();
        }
        self.generation += 1;
    }

    fn assignment_of(&self, member_id: &str) -> Option<Assignment> {
        self.members.get(member_id).map(|m| Assignment {
            generation: self.generation,
            partitions: m.assignments.clone(),
        })
    }

    /// Remove members whose session expired; rebalance if any did or if
    /// the subscribed partitions changed. Returns whether it rebalanced.
    pub fn expire(&mut self, now_ms: u64, parts: PartitionCount) -> bool {
        let before = self.members.len();
        self.members
            .retain(|_, m| m.last_seen_ms.saturating_add(m.session_timeout_ms) >= now_ms);
        if self.members.len() != before || self.wanted(parts) != self.assigned() {
            self.rebalance(parts);
            return true;
        }
        false
    }

    /// Add or refresh `member_id` subscribed to `topics` at `now_ms`, rebalance, and return its
    /// assignment.
    pub fn join(
        &mut self,
        member_id: &str,
        topics: &[String],
        session_timeout_ms: u64,
        now_ms: u64,
        parts: PartitionCount,
    ) -> Assignment {
        let previous = self.members.insert(
            member_id.to_string(),
            Member {
                topics: topics.to_vec(),
                session_timeout_ms,
                last_seen_ms: now_ms,
                assignments: Vec::new(),
            },
        );
        if let Some(p) = previous {
            if let Some(m) = self.members.get_mut(member_id) {
                m.assignments = p.assignments;
            }
        }
        self.rebalance(parts);
        self.assignment_of(member_id).unwrap_or(Assignment {
            generation: self.generation,
            partitions: vec![],
        })
    }

    /// Keep `member_id` alive at `now_ms`; its current assignment, or an error if it is not a
    /// member (it expired or left).
    pub fn heartbeat(&mut self, member_id: &str, now_ms: u64) -> Result<Assignment, String> {
        let m = self.members.get_mut(member_id).ok_or_else(|| {
            format!("member {member_id} is not in the group (expired or left): join again")
        })?;
        m.last_seen_ms = now_ms;
        self.assignment_of(member_id)
            .ok_or_else(|| "member vanished".to_string())
    }

    /// Remove `member_id` and hand its partitions to the others; an error if it is not a
    /// member.
    pub fn leave(&mut self, member_id: &str, parts: PartitionCount) -> Result<(), String> {
        if self.members.remove(member_id).is_none() {
            return Err(format!("member {member_id} is not in the group"));
        }
        self.rebalance(parts);
        Ok(())
    }

    /// A member's offset commit, fenced by generation and ownership; offsets
    /// never go backwards (rewinds go through `reset`).
    pub fn commit(
        &mut self,
        member_id: &str,
        generation: u64,
        offsets: &[(String, u32, u64)],
        now_ms: u64,
    ) -> Result<(), String> {
        if generation != self.generation {
            return Err(format!(
                "generation {generation} is stale: the group is at {}; heartbeat for the new assignment",
                self.generation
            ));
        }
        let m = self
            .members
            .get_mut(member_id)
            .ok_or_else(|| format!("member {member_id} is not in the group"))?;
        for (t, p, o) in offsets {
            if !m.assignments.iter().any(|(mt, mp)| mt == t && mp == p) {
                return Err(format!(
                    "partition {t}/{p} is not assigned to member {member_id}"
                ));
            }
            let current = self
                .offsets
                .get(t)
                .and_then(|ps| ps.get(p))
                .copied()
                .unwrap_or(0);
            if *o < current {
                return Err(format!(
                    "offset {o} for {t}/{p} is behind the committed {current}; use reset to rewind"
                ));
            }
        }
        m.last_seen_ms = now_ms;
        for (t, p, o) in offsets {
            self.offsets.entry(t.clone()).or_default().insert(*p, *o);
        }
        Ok(())
    }

    /// Set offsets unconditionally (an operator's reset).
    pub fn reset(&mut self, offsets: &[(String, u32, u64)]) {
        for (t, p, o) in offsets {
            self.offsets.entry(t.clone()).or_default().insert(*p, *o);
        }
    }

    /// The group's committed offset of a partition (the next to read); `None` if never
    /// committed.
    pub fn committed(&self, topic: &str, partition: u32) -> Option<u64> {
        self.offsets
            .get(topic)
            .and_then(|ps| ps.get(&partition))
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(t: &str) -> u32 {
        match t {
            "a" => 4,
            "b" => 2,
            _ => 0,
        }
    }

    fn topics(ts: &[&str]) -> Vec<String> {
        ts.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn partitions_spread_evenly_and_stick_across_joins() {
        let mut g = StreamGroup::default();
        let a1 = g.join("m1", &topics(&["a"]), 1000, 0, &parts);
        assert_eq!(a1.partitions.len(), 4);
        g.join("m2", &topics(&["a"]), 1000, 0, &parts);
        let m1 = g.members["m1"].assignments.clone();
        let m2 = g.members["m2"].assignments.clone();
        assert_eq!((m1.len(), m2.len()), (2, 2));
        assert!(
            m1.iter().all(|tp| a1.partitions.contains(tp)),
            "m1 kept part of what it had"
        );
        // No partition is owned twice.
        let all: BTreeSet<_> = m1.iter().chain(m2.iter()).collect();
        assert_eq!(all.len(), 4);
    }

    #[test]
    fn expired_members_lose_their_partitions() {
        let mut g = StreamGroup::default();
        g.join("m1", &topics(&["a", "b"]), 1000, 0, &parts);
        g.join("m2", &topics(&["a", "b"]), 5000, 0, &parts);
        let gen = g.generation;
        g.heartbeat("m2", 900).unwrap();
        assert!(!g.expire(1000, &parts));
        assert!(g.expire(1001, &parts));
        assert!(g.generation > gen);
        assert_eq!(g.members["m2"].assignments.len(), 6);
        assert!(g.heartbeat("m1", 1002).is_err());
    }

    #[test]
    fn commits_are_fenced_by_generation_and_ownership_and_never_go_back() {
        let mut g = StreamGroup::default();
        let a = g.join("m1", &topics(&["b"]), 1000, 0, &parts);
        g.commit("m1", a.generation, &[("b".into(), 0, 5)], 1)
            .unwrap();
        let b = g.join("m2", &topics(&["b"]), 1000, 2, &parts);
        assert!(g
            .commit("m1", a.generation, &[("b".into(), 0, 6)], 3)
            .unwrap_err()
            .contains("stale"));
        let mine = &b.partitions[0];
        let theirs = g.members["m1"].assignments[0].clone();
        assert!(g
            .commit("m2", b.generation, &[(theirs.0, theirs.1, 9)], 3)
            .unwrap_err()
            .contains("not assigned"));
        let cur = g.committed(&mine.0, mine.1).unwrap_or(0);
        g.commit("m2", b.generation, &[(mine.0.clone(), mine.1, cur + 3)], 3)
            .unwrap();
        assert!(g
            .commit("m2", b.generation, &[(mine.0.clone(), mine.1, cur)], 3)
            .unwrap_err()
            .contains("behind"));
    }
}
