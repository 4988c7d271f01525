//! Read-only questions about a queue group's state, answered once here so
//! that the receive loop and the describe route do not each recompute
//! them: whether a receive has anything to do, and a partition's message
//! counts. It must not change state, do I/O or read clocks (callers pass
//! `now_ms` and the partitions' high watermarks).

use super::queue::{HighWatermark, MsgState, Partitions, QueueGroup, QueuePartition};

/// A partition's messages by what they wait for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounts {
    /// Every offset below this one is settled.
    pub ack_floor: u64,
    /// Leased and not settled (an expired lease counts until a receive or
    /// settle of the partition notices it).
    pub in_flight: u64,
    /// Not yet delivered, waiting for redelivery, or dead and not yet
    /// copied to the dead-letter topic.
    pub pending: u64,
    /// Messages copied to the dead-letter topic so far.
    pub dead_lettered: u64,
}

impl QueuePartition {
    /// The counts of this partition, whose topic's high watermark is
    /// `high_watermark`.
    pub fn counts(&self, high_watermark: u64) -> QueueCounts {
        let count = |f: fn(&MsgState) -> bool| self.msgs.values().filter(|m| f(&m.state)).count();
        let waiting = count(|m| matches!(m, MsgState::Waiting { .. } | MsgState::Dead));
        QueueCounts {
            ack_floor: self.floor,
            in_flight: count(|m| matches!(m, MsgState::Leased { .. })) as u64,
            pending: high_watermark.saturating_sub(self.next) + waiting as u64,
            dead_lettered: self.dead_lettered,
        }
    }

    /// Whether a receive would change this partition at `now_ms`: a new
    /// offset fits the in-flight window, a redelivery is due, or a lease
    /// has expired (to be redelivered or, out of deliveries, dead-lettered).
    pub fn has_work(&self, high_watermark: u64, in_flight_max: u64, now_ms: u64) -> bool {
        if self.next < high_watermark && self.next - self.floor < in_flight_max {
            return true;
        }
        self.msgs.values().any(|m| match m.state {
            MsgState::Waiting { not_before_ms } => not_before_ms <= now_ms,
            MsgState::Leased { until_ms } => until_ms <= now_ms,
            MsgState::Settled | MsgState::Dead => false,
        })
    }
}

impl QueueGroup {
    /// The counts of `partition` of `topic`, whose high watermark is
    /// `high_watermark` (all pending if nothing was received from it yet).
    pub fn counts(&self, topic: &str, partition: u32, high_watermark: u64) -> QueueCounts {
        match self.partitions.get(topic).and_then(|ps| ps.get(&partition)) {
            Some(qp) => qp.counts(high_watermark),
            None => QueuePartition::default().counts(high_watermark),
        }
    }

    /// Whether a receive at `now_ms` would lease or expire anything, on any
    /// partition of the group's topics.
    pub fn has_work(&self, now_ms: u64, parts: Partitions, hwm: HighWatermark) -> bool {
        let empty = QueuePartition::default();
        self.config.topics.iter().any(|t| {
            (0..parts(t)).any(|p| {
                let Some(high) = hwm(t, p) else { return false };
                let qp = self.partitions.get(t).and_then(|ps| ps.get(&p));
                qp.unwrap_or(&empty)
                    .has_work(high, self.config.in_flight_max, now_ms)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::groups::queue::QueueConfig;

    fn group(in_flight_max: u64) -> QueueGroup {
        QueueGroup::new(QueueConfig {
            topics: vec!["t".into()],
            max_deliveries: 2,
            visibility_ms: 100,
            in_flight_max,
        })
    }

    #[test]
    fn work_follows_the_window_the_leases_and_the_redeliveries() {
        let mut g = group(2);
        let hwm = |_: &str, _: u32| Some(5);
        let parts = |_: &str| 1;
        assert!(g.has_work(0, &parts, &hwm), "new offsets in the window");
        let leases = g.receive(10, 100, 0, 0, &parts, &hwm);
        assert_eq!(leases.len(), 2);
        assert!(!g.has_work(50, &parts, &hwm), "window full, leases held");
        assert!(g.has_work(100, &parts, &hwm), "a lease expired");
        let r = leases[0].receipt();
        assert!(g.nack(&r, 30, 60));
        assert!(!g.has_work(80, &parts, &hwm), "redelivery not due yet");
        assert!(g.has_work(90, &parts, &hwm), "redelivery due");
        let none = |_: &str, _: u32| None;
        assert!(!g.has_work(90, &parts, &none), "the topic is gone");
    }

    #[test]
    fn counts_split_messages_by_what_they_wait_for() {
        let mut g = group(3);
        let hwm = |_: &str, _: u32| Some(10);
        let parts = |_: &str| 1;
        let leases = g.receive(3, 100, 0, 0, &parts, &hwm);
        assert!(g.ack(&leases[0].receipt(), 1));
        assert!(g.nack(&leases[1].receipt(), 0, 1));
        let c = g.counts("t", 0, 10);
        assert_eq!(
            c,
            QueueCounts {
                ack_floor: 1,
                in_flight: 1,
                pending: 7 + 1,
                dead_lettered: 0,
            }
        );
        assert_eq!(g.counts("t", 9, 4).pending, 4);
    }
}
