//! Queue groups (SQS/RabbitMQ-like), as pure state: per partition an ack
//! floor, the next never-delivered offset, and the messages in between with
//! their delivery count and lease. Receives lease messages deterministically
//! (redeliveries first, then new offsets, within the in-flight window);
//! acks settle; nacks and expired leases redeliver; a message out of
//! deliveries becomes dead, awaiting its move to the dead-letter topic.
//! Applied by the commit log's `apply`; it must not do I/O or read clocks.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A queue group's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueConfig {
    /// The topics the queue delivers from, every partition of each.
    pub topics: Vec<String>,
    /// Deliveries before a message is dead-lettered (1 to `MAX_DELIVERIES_MAX`).
    pub max_deliveries: u32,
    /// How long a receive leases a message, in ms (1 to `VISIBILITY_MS_MAX`).
    pub visibility_ms: u64,
    /// Offsets between the ack floor and the next new offset, at most.
    pub in_flight_max: u64,
}

/// Deliveries a message gets before it is dead-lettered, unless configured.
pub const MAX_DELIVERIES_DEFAULT: u32 = 5;
/// A lease's length, unless configured or asked for on receive.
pub const VISIBILITY_MS_DEFAULT: u64 = 30_000;
/// The per-partition in-flight window, unless configured.
pub const IN_FLIGHT_MAX_DEFAULT: u64 = 1_000;

/// The longest visibility timeout or nack delay (12 h, as SQS allows).
pub const VISIBILITY_MS_MAX: u64 = 12 * 3_600_000;
/// The largest `in_flight_max`: the per-partition window of message
/// states a queue group keeps in memory.
pub const IN_FLIGHT_MAX_MAX: u64 = 100_000;
/// The largest `max_deliveries`.
pub const MAX_DELIVERIES_MAX: u32 = 1_000;
/// Messages one receive may lease at most.
pub const RECEIVE_MESSAGES_MAX: u32 = 1_000;

/// The dead-letter topic of a queue group.
pub fn dlq_topic(group: &str) -> String {
    format!("{group}.dlq")
}

/// Receipts one ack, nack or extend may settle at most.
pub const RECEIPTS_MAX: usize = 10_000;
/// Topics one queue group reads at most.
pub const QUEUE_TOPICS_MAX: usize = 100;

impl QueueConfig {
    /// Check the bounds every queue group's configuration must keep.
    pub fn validate(&self) -> Result<(), String> {
        if self.topics.is_empty() || self.topics.len() > QUEUE_TOPICS_MAX {
            return Err(format!(
                "a queue group reads 1 to {QUEUE_TOPICS_MAX} topics"
            ));
        }
        if !(1..=MAX_DELIVERIES_MAX).contains(&self.max_deliveries) {
            return Err(format!("max_deliveries must be 1..={MAX_DELIVERIES_MAX}"));
        }
        if !(1..=VISIBILITY_MS_MAX).contains(&self.visibility_ms) {
            return Err(format!("visibility_ms must be 1..={VISIBILITY_MS_MAX}"));
        }
        if !(1..=IN_FLIGHT_MAX_MAX).contains(&self.in_flight_max) {
            return Err(format!("in_flight_max must be 1..={IN_FLIGHT_MAX_MAX}"));
        }
        Ok(())
    }
}

/// Where one message of a queue partition stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MsgState {
    /// Leased to a receiver: redelivered if not settled before `until_ms`.
    Leased {
        /// When the lease ends, ms on the log's clock.
        until_ms: u64,
    },
    /// Redeliverable from this time on.
    Waiting {
        /// Ms on the log's clock from which the message may be delivered again.
        not_before_ms: u64,
    },
    /// Acked: never delivered again (kept only while a gap below it holds the floor).
    Settled,
    /// Out of deliveries: to be copied to the dead-letter topic.
    Dead,
}

/// One delivered, unsettled (or gap-held) message of a queue partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Msg {
    /// Times it was delivered so far.
    pub deliveries: u32,
    /// Whether it is leased, waiting, settled or dead.
    pub state: MsgState,
}

/// A queue group's progress through one partition: a floor, a delivery frontier, and the
/// messages between.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuePartition {
    /// Every offset below is settled.
    pub floor: u64,
    /// Offsets from here on were never delivered.
    pub next: u64,
    /// Offsets in `[floor, next)` that are not settled, or settled above a
    /// gap.
    pub msgs: BTreeMap<u64, Msg>,
    /// Messages of this partition that ran out of deliveries.
    pub dead_lettered: u64,
}

/// A queue group: competing consumers lease single messages, and each is settled or
/// redelivered, all in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueGroup {
    /// The group's settings.
    pub config: QueueConfig,
    /// topic → partition → state.
    pub partitions: BTreeMap<String, BTreeMap<u32, QueuePartition>>,
}

/// One leased message, as a receive returns it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Lease {
    /// The topic of the leased message.
    pub topic: String,
    /// Its partition.
    pub partition: u32,
    /// Its offset.
    pub offset: u64,
    /// Times it was delivered, this lease included.
    pub delivery_count: u32,
}

impl Lease {
    /// The receipt that settles this delivery.
    pub fn receipt(&self) -> Receipt {
        Receipt {
            topic: self.topic.clone(),
            partition: self.partition,
            offset: self.offset,
            delivery_count: self.delivery_count,
        }
    }
}

/// Identifies one delivery of one message: valid while that lease holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The topic of the message.
    pub topic: String,
    /// Its partition.
    pub partition: u32,
    /// Its offset.
    pub offset: u64,
    /// Which delivery of the message this receipt settles; an older one is stale.
    pub delivery_count: u32,
}

impl Receipt {
    /// `topic/partition/offset/delivery`: topic names cannot hold '/'.
    pub fn encode(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.topic, self.partition, self.offset, self.delivery_count
        )
    }
    /// The receipt `encode` made; `None` if `s` is not one.
    pub fn parse(s: &str) -> Option<Receipt> {
        let mut it = s.rsplitn(4, '/');
        let delivery_count = it.next()?.parse().ok()?;
        let offset = it.next()?.parse().ok()?;
        let partition = it.next()?.parse().ok()?;
        let topic = it.next()?.to_string();
        Some(Receipt {
            topic,
            partition,
            offset,
            delivery_count,
        })
    }
}

/// High watermark of a partition of an existing topic (`None`: unknown).
pub type HighWatermark<'a> = &'a dyn Fn(&str, u32) -> Option<u64>;
/// Partition count of a topic (0: unknown).
pub type Partitions<'a> = &'a dyn Fn(&str) -> u32;

impl QueuePartition {
    /// Turn expired leases into redeliveries, or dead messages.
    fn expire(&mut self, now_ms: u64, max_deliveries: u32) {
        for m in self.msgs.values_mut() {
            if let MsgState::Leased { until_ms } = m.state {
                if until_ms <= now_ms {
                    m.state = if m.deliveries >= max_deliveries {
                        MsgState::Dead
                    } else {
                        MsgState::Waiting {
                            not_before_ms: until_ms,
                        }
                    };
                }
            }
        }
    }

    fn advance_floor(&mut self) {
        while let Some((&o, m)) = self.msgs.first_key_value() {
            if o != self.floor || m.state != MsgState::Settled {
                break;
            }
            self.msgs.remove(&o);
            self.floor += 1;
        }
        if self.msgs.is_empty() {
            self.floor = self.next;
        }
    }

    /// Messages of this partition leased now.
    pub fn in_flight(&self) -> usize {
        self.msgs
            .values()
            .filter(|m| matches!(m.state, MsgState::Leased { .. }))
            .count()
    }
}

impl QueueGroup {
    /// A group with these settings that has delivered nothing yet.
    pub fn new(config: QueueConfig) -> Self {
        QueueGroup {
            config,
            partitions: BTreeMap::new(),
        }
    }

    fn part_mut(&mut self, topic: &str, partition: u32) -> &mut QueuePartition {
        self.partitions
            .entry(topic.to_string())
            .or_default()
            .entry(partition)
            .or_default()
    }

    /// Lease up to `max` messages: redeliveries first, then new offsets, in
    /// partition order starting at `start` (rotated by the caller for
    /// fairness).
    pub fn receive(
        &mut self,
        max: usize,
        visibility_ms: u64,
        now_ms: u64,
        start: usize,
        parts: Partitions,
        hwm: HighWatermark,
    ) -> Vec<Lease> {
        let mut tps: Vec<(String, u32)> = Vec::new();
        for t in &self.config.topics {
            tps.extend((0..parts(t)).map(|p| (t.clone(), p)));
        }
        if tps.is_empty() {
            return vec![];
        }
        let n = tps.len();
        tps.rotate_left(start % n);
        let (max_deliveries, window) = (self.config.max_deliveries, self.config.in_flight_max);
        let until_ms = now_ms.saturating_add(visibility_ms);
        let mut out = Vec::new();
        for (t, p) in tps {
            let Some(high) = hwm(&t, p) else { continue };
            let qp = self.part_mut(&t, p);
            qp.expire(now_ms, max_deliveries);
            for (&o, m) in qp.msgs.iter_mut() {
                if out.len() >= max {
                    break;
                }
                if let MsgState::Waiting { not_before_ms } = m.state {
                    if not_before_ms <= now_ms {
                        m.deliveries += 1;
                        m.state = MsgState::Leased { until_ms };
                        out.push(Lease {
                            topic: t.clone(),
                            partition: p,
                            offset: o,
                            delivery_count: m.deliveries,
                        });
                    }
                }
            }
            while out.len() < max && qp.next < high && qp.next - qp.floor < window {
                let o = qp.next;
                qp.msgs.insert(
                    o,
                    Msg {
                        deliveries: 1,
                        state: MsgState::Leased { until_ms },
                    },
                );
                qp.next += 1;
                out.push(Lease {
                    topic: t.clone(),
                    partition: p,
                    offset: o,
                    delivery_count: 1,
                });
            }
            if out.len() >= max {
                break;
            }
        }
        out
    }

    /// The message a receipt names, if that delivery's lease still holds.
    fn leased(&mut self, r: &Receipt, now_ms: u64) -> Option<&mut Msg> {
        let max_deliveries = self.config.max_deliveries;
        let qp = self.partitions.get_mut(&r.topic)?.get_mut(&r.partition)?;
        qp.expire(now_ms, max_deliveries);
        let m = qp.msgs.get_mut(&r.offset)?;
        match m.state {
            MsgState::Leased { .. } if m.deliveries == r.delivery_count => Some(m),
            _ => None,
        }
    }

    /// Settle; `false` for a stale receipt.
    pub fn ack(&mut self, r: &Receipt, now_ms: u64) -> bool {
        let ok = match self.leased(r, now_ms) {
            Some(m) => {
                m.state = MsgState::Settled;
                true
            }
            None => false,
        };
        if ok {
            self.part_mut(&r.topic, r.partition).advance_floor();
        }
        ok
    }

    /// Give back for redelivery after `delay_ms` (or to the dead letters
    /// when out of deliveries); `false` for a stale receipt.
    pub fn nack(&mut self, r: &Receipt, delay_ms: u64, now_ms: u64) -> bool {
        let max_deliveries = self.config.max_deliveries;
        match self.leased(r, now_ms) {
            Some(m) => {
                m.state = if m.deliveries >= max_deliveries {
                    MsgState::Dead
                } else {
                    MsgState::Waiting {
                        not_before_ms: now_ms.saturating_add(delay_ms),
                    }
                };
                true
            }
            None => false,
        }
    }

    /// Lengthen a lease; `false` for a stale receipt.
    pub fn extend(&mut self, r: &Receipt, visibility_ms: u64, now_ms: u64) -> bool {
        match self.leased(r, now_ms) {
            Some(m) => {
                m.state = MsgState::Leased {
                    until_ms: now_ms.saturating_add(visibility_ms),
                };
                true
            }
            None => false,
        }
    }

    /// Dead messages awaiting their copy to the dead-letter topic.
    pub fn dead(&self, max: usize) -> Vec<Lease> {
        let mut out = Vec::new();
        for (t, ps) in &self.partitions {
            for (p, qp) in ps {
                for (o, m) in &qp.msgs {
                    if m.state == MsgState::Dead {
                        out.push(Lease {
                            topic: t.clone(),
                            partition: *p,
                            offset: *o,
                            delivery_count: m.deliveries,
                        });
                        if out.len() >= max {
                            return out;
                        }
                    }
                }
            }
        }
        out
    }

    /// Settle a dead message once it is in the dead-letter topic; `false` if
    /// it is not dead (another agent moved it already).
    pub fn settle_dead(&mut self, topic: &str, partition: u32, offset: u64) -> bool {
        let Some(qp) = self
            .partitions
            .get_mut(topic)
            .and_then(|ps| ps.get_mut(&partition))
        else {
            return false;
        };
        match qp.msgs.get_mut(&offset) {
            Some(m) if m.state == MsgState::Dead => {
                m.state = MsgState::Settled;
                qp.dead_lettered += 1;
                qp.advance_floor();
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(max_deliveries: u32) -> QueueGroup {
        QueueGroup::new(QueueConfig {
            topics: vec!["t".into()],
            max_deliveries,
            visibility_ms: 100,
            in_flight_max: 3,
        })
    }
    fn parts(_: &str) -> u32 {
        1
    }
    fn hwm(_: &str, _: u32) -> Option<u64> {
        Some(10)
    }
    fn receipt(l: &Lease) -> Receipt {
        Receipt {
            topic: l.topic.clone(),
            partition: l.partition,
            offset: l.offset,
            delivery_count: l.delivery_count,
        }
    }

    #[test]
    fn receive_respects_the_window_and_acks_move_the_floor() {
        let mut g = group(3);
        let got = g.receive(10, 100, 0, 0, &parts, &hwm);
        assert_eq!(
            got.iter().map(|l| l.offset).collect::<Vec<_>>(),
            vec![0, 1, 2],
            "window of 3"
        );
        assert!(
            g.receive(10, 100, 1, 0, &parts, &hwm).is_empty(),
            "nothing is leased twice"
        );
        assert!(g.ack(&receipt(&got[1]), 2));
        assert!(!g.ack(&receipt(&got[1]), 2), "a second ack is stale");
        assert!(
            g.receive(10, 100, 3, 0, &parts, &hwm).is_empty(),
            "offset 0 still holds the floor"
        );
        assert!(g.ack(&receipt(&got[0]), 4));
        let qp = &g.partitions["t"][&0];
        assert_eq!(qp.floor, 2);
        assert_eq!(
            g.receive(10, 100, 5, 0, &parts, &hwm)
                .iter()
                .map(|l| l.offset)
                .collect::<Vec<_>>(),
            vec![3, 4]
        );
    }

    #[test]
    fn expired_and_nacked_messages_are_redelivered_then_dead_lettered() {
        let mut g = group(2);
        let first = g.receive(1, 100, 0, 0, &parts, &hwm);
        // The lease expires at 100: redelivered with delivery count 2.
        let second = g.receive(1, 100, 100, 0, &parts, &hwm);
        assert_eq!((second[0].offset, second[0].delivery_count), (0, 2));
        assert!(
            !g.ack(&receipt(&first[0]), 101),
            "the first delivery's receipt is stale"
        );
        assert!(g.nack(&receipt(&second[0]), 0, 102));
        assert_eq!(g.dead(10).len(), 1, "out of deliveries: dead");
        let next = g.receive(1, 100, 103, 0, &parts, &hwm);
        assert_eq!(next[0].offset, 1, "a dead message is not redelivered");
        assert!(g.settle_dead("t", 0, 0));
        assert!(!g.settle_dead("t", 0, 0), "moved once");
        assert_eq!(g.partitions["t"][&0].dead_lettered, 1);
    }

    #[test]
    fn extend_keeps_a_lease_alive_and_receipts_round_trip() {
        let mut g = group(5);
        let l = g.receive(1, 100, 0, 0, &parts, &hwm);
        let r = receipt(&l[0]);
        assert!(g.extend(&r, 1000, 90));
        assert!(g
            .receive(1, 100, 500, 0, &parts, &hwm)
            .iter()
            .all(|x| x.offset != 0));
        assert!(g.ack(&r, 600));
        assert_eq!(Receipt::parse(&r.encode()), Some(r));
        assert_eq!(Receipt::parse("a.b-c/1/2/3").unwrap().topic, "a.b-c");
        assert!(Receipt::parse("garbage").is_none());
    }
}
