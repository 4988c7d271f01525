//! The group half of `apply`: stream-group membership and offsets, queue
//! leases and settlement, dead-lettering, all judged against the log's
//! clock. Pure and deterministic like the rest of `apply`; the state
//! machines themselves live in `crate::groups`.

use super::append::apply_append;
use super::entry::{Append, Intent};
use super::outcome::{reject, Outcome, RejectKind};
use super::state::State;
use crate::groups::queue::MsgState;
use crate::groups::QueueGroup;

/// Whether an intent can change group state (and so triggers expiry).
pub(super) fn touches_groups(i: &Intent) -> bool {
    !matches!(
        i,
        Intent::Append(_)
            | Intent::Trim { .. }
            | Intent::AlterTopic { .. }
            | Intent::Swap(_)
            | Intent::Collected(_)
    )
}

fn partitions_of(state: &State) -> impl Fn(&str) -> u32 + '_ {
    |t: &str| state.topics.get(t).map_or(0, |t| t.partitions.len() as u32)
}

/// Expire stream-group sessions by the log's clock.
pub(super) fn expire_all(state: &mut State) {
    let now = state.clock_ms;
    let mut groups = std::mem::take(&mut state.stream_groups);
    {
        let parts = partitions_of(state);
        for g in groups.values_mut() {
            g.expire(now, &parts);
        }
    }
    groups.retain(|_, g| !g.members.is_empty() || !g.offsets.is_empty());
    state.stream_groups = groups;
}

fn no_queue(group: &str) -> Outcome {
    reject(
        RejectKind::NotFound,
        format!("unknown queue group {group:?}"),
    )
}

pub(super) fn apply_group_intent(state: &mut State, seq: u64, intent: &Intent) -> Outcome {
    match intent {
        Intent::JoinGroup { .. }
        | Intent::Heartbeat { .. }
        | Intent::LeaveGroup { .. }
        | Intent::CommitOffsets { .. }
        | Intent::ResetOffsets { .. } => apply_stream_intent(state, intent),
        Intent::ConfigureQueue { .. }
        | Intent::Receive { .. }
        | Intent::Ack { .. }
        | Intent::Nack { .. }
        | Intent::Extend { .. } => apply_queue_intent(state, seq, intent),
        Intent::DeadLetter {
            group,
            topic,
            partition,
            offset,
            append,
        } => dead_letter(state, seq, group, (topic, *partition, *offset), append),
        Intent::Tick => Outcome::Done,
        Intent::CreateTopic { .. }
        | Intent::DeleteTopic { .. }
        | Intent::Append(_)
        | Intent::Trim { .. }
        | Intent::AlterTopic { .. }
        | Intent::Swap(_)
        | Intent::Collected(_) => not_a_group_intent(),
    }
}

fn not_a_group_intent() -> Outcome {
    reject(RejectKind::Invalid, "not a group intent".into())
}

fn no_group(group: &str) -> Outcome {
    reject(RejectKind::NotFound, format!("unknown group {group:?}"))
}

/// Stream-group membership and offsets.
fn apply_stream_intent(state: &mut State, intent: &Intent) -> Outcome {
    let now = state.clock_ms;
    match intent {
        Intent::JoinGroup {
            group,
            member_id,
            topics,
            session_timeout_ms,
        } => {
            let mut g = state.stream_groups.remove(group).unwrap_or_default();
            let a = g.join(
                member_id,
                topics,
                *session_timeout_ms,
                now,
                &partitions_of(state),
            );
            state.stream_groups.insert(group.clone(), g);
            Outcome::Assigned(a)
        }
        Intent::Heartbeat { group, member_id } => match state.stream_groups.get_mut(group) {
            Some(g) => match g.heartbeat(member_id, now) {
                Ok(a) => Outcome::Assigned(a),
                Err(m) => reject(RejectKind::NotFound, m),
            },
            None => no_group(group),
        },
        Intent::LeaveGroup { group, member_id } => leave(state, group, member_id),
        Intent::CommitOffsets {
            group,
            member_id,
            generation,
            offsets,
        } => match state.stream_groups.get_mut(group) {
            Some(g) => match g.commit(member_id, *generation, offsets, now) {
                Ok(()) => Outcome::Done,
                Err(m) => reject(RejectKind::Conflict, m),
            },
            None => reject(
                RejectKind::Conflict,
                format!("unknown group {group:?}: join first"),
            ),
        },
        Intent::ResetOffsets { group, offsets } => {
            state
                .stream_groups
                .entry(group.clone())
                .or_default()
                .reset(offsets);
            Outcome::Done
        }
        _ => not_a_group_intent(),
    }
}

fn leave(state: &mut State, group: &str, member_id: &str) -> Outcome {
    let Some(mut g) = state.stream_groups.remove(group) else {
        return no_group(group);
    };
    let r = g.leave(member_id, &partitions_of(state));
    state.stream_groups.insert(group.to_string(), g);
    match r {
        Ok(()) => Outcome::Done,
        Err(m) => reject(RejectKind::NotFound, m),
    }
}

/// Queue-group configuration, leases and settlement.
fn apply_queue_intent(state: &mut State, seq: u64, intent: &Intent) -> Outcome {
    let now = state.clock_ms;
    match intent {
        Intent::ConfigureQueue { group, config } => {
            match state.queues.get_mut(group) {
                Some(q) => q.config = config.clone(),
                None => {
                    state
                        .queues
                        .insert(group.clone(), QueueGroup::new(config.clone()));
                }
            }
            Outcome::Done
        }
        Intent::Receive {
            group,
            max_messages,
            visibility_ms,
        } => receive(state, seq, group, *max_messages, *visibility_ms),
        Intent::Ack { group, receipts } => match state.queues.get_mut(group) {
            Some(q) => Outcome::Settled(receipts.iter().map(|r| q.ack(r, now)).collect()),
            None => no_queue(group),
        },
        Intent::Nack {
            group,
            receipts,
            delay_ms,
        } => match state.queues.get_mut(group) {
            Some(q) => {
                Outcome::Settled(receipts.iter().map(|r| q.nack(r, *delay_ms, now)).collect())
            }
            None => no_queue(group),
        },
        Intent::Extend {
            group,
            receipts,
            visibility_ms,
        } => match state.queues.get_mut(group) {
            Some(q) => Outcome::Settled(
                receipts
                    .iter()
                    .map(|r| q.extend(r, *visibility_ms, now))
                    .collect(),
            ),
            None => no_queue(group),
        },
        _ => not_a_group_intent(),
    }
}

/// Lease up to `max_messages`, starting the partition rotation at `seq`.
fn receive(
    state: &mut State,
    seq: u64,
    group: &str,
    max_messages: u32,
    visibility_ms: u64,
) -> Outcome {
    let Some(mut q) = state.queues.remove(group) else {
        return no_queue(group);
    };
    let leases = {
        let parts = partitions_of(state);
        let hwm = |t: &str, p: u32| {
            state
                .topics
                .get(t)
                .and_then(|t| t.partitions.get(p as usize))
                .map(|p| p.high_watermark)
        };
        q.receive(
            max_messages as usize,
            visibility_ms,
            state.clock_ms,
            seq as usize,
            &parts,
            &hwm,
        )
    };
    state.queues.insert(group.to_string(), q);
    Outcome::Leased(leases)
}

/// Settle a dead message and append its copy, both or neither.
fn dead_letter(
    state: &mut State,
    seq: u64,
    group: &str,
    (topic, partition, offset): (&str, u32, u64),
    append: &Append,
) -> Outcome {
    let is_dead = state.queues.get(group).is_some_and(|q| {
        q.partitions
            .get(topic)
            .and_then(|ps| ps.get(&partition))
            .and_then(|qp| qp.msgs.get(&offset))
            .is_some_and(|m| m.state == MsgState::Dead)
    });
    if !is_dead {
        return reject(
            RejectKind::Conflict,
            format!("{topic}/{partition}/{offset} is not dead (moved already?)"),
        );
    }
    let out = apply_append(state, seq, append);
    if matches!(out, Outcome::Appended(_)) {
        if let Some(q) = state.queues.get_mut(group) {
            q.settle_dead(topic, partition, offset);
        }
    }
    out
}
