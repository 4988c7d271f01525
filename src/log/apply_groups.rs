//! The group half of `apply`: stream-group membership and offsets, queue
//! leases and settlement, dead-lettering, all judged against the log's
//! clock. Pure and deterministic like the rest of `apply`; the state
//! machines themselves live in `crate::groups`.

use super::append::apply_append;
use super::entry::Intent;
use super::outcome::{reject, Outcome, RejectKind};
use super::state::State;
use crate::groups::QueueGroup;

/// Whether an intent can change group state (and so triggers expiry).
pub(super) fn touches_groups(i: &Intent) -> bool {
    !matches!(i, Intent::Append(_) | Intent::Trim { .. })
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
            None => reject(RejectKind::NotFound, format!("unknown group {group:?}")),
        },
        Intent::LeaveGroup { group, member_id } => {
            let Some(mut g) = state.stream_groups.remove(group) else {
                return reject(RejectKind::NotFound, format!("unknown group {group:?}"));
            };
            let r = g.leave(member_id, &partitions_of(state));
            state.stream_groups.insert(group.clone(), g);
            match r {
                Ok(()) => Outcome::Done,
                Err(m) => reject(RejectKind::NotFound, m),
            }
        }
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
        } => {
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
                    *max_messages as usize,
                    *visibility_ms,
                    now,
                    seq as usize,
                    &parts,
                    &hwm,
                )
            };
            state.queues.insert(group.clone(), q);
            Outcome::Leased(leases)
        }
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
        Intent::DeadLetter {
            group,
            topic,
            partition,
            offset,
            append,
        } => {
            let is_dead = state.queues.get(group).is_some_and(|q| {
                q.partitions
                    .get(topic)
                    .and_then(|ps| ps.get(partition))
                    .and_then(|qp| qp.msgs.get(offset))
                    .is_some_and(|m| m.state == crate::groups::queue::MsgState::Dead)
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
                    q.settle_dead(topic, *partition, *offset);
                }
            }
            out
        }
        Intent::Tick => Outcome::Done,
        Intent::CreateTopic { .. }
        | Intent::DeleteTopic { .. }
        | Intent::Append(_)
        | Intent::Trim { .. } => reject(RejectKind::Invalid, "not a group intent".into()),
    }
}
