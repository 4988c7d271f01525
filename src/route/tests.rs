//! The forward-or-race policy against a scripted [`Forwarder`]: each answer
//! the leader can give (taken, not taken, uncertain, taken and then lost)
//! ends the commit the way `route` promises, and an entry is sent to the
//! leader again only after it answered "not taken".

use super::{commit, follow};
use crate::clock::SystemClock;
use crate::error::Error;
use crate::log::{
    log_key, new_commit_id, CommitLog, Committed, EncodedEntry, ForwardError, Forwarder, Intent,
    LogConfig, LogEntry, TopicConfig,
};
use crate::store::SharedStore;
use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// What the scripted leader does with the next forwarded entry.
#[derive(Debug)]
enum Answer {
    NotTaken,
    Uncertain,
    /// Commit it into the log (as the leader), then answer.
    Commit,
    /// Commit it into the log, then lose the answer (the leader died).
    CommitThenLose,
    /// Answer this without committing anything.
    Claim(Committed),
}

#[derive(Debug)]
struct Scripted {
    leader: Arc<CommitLog>,
    answers: Mutex<VecDeque<Answer>>,
    sent: Mutex<Vec<u128>>,
}

impl Scripted {
    fn new(leader: Arc<CommitLog>, answers: Vec<Answer>) -> Arc<Self> {
        Arc::new(Scripted {
            leader,
            answers: Mutex::new(answers.into()),
            sent: Mutex::new(Vec::new()),
        })
    }

    fn sent(&self) -> Vec<u128> {
        self.sent.lock().clone()
    }
}

#[async_trait]
impl Forwarder for Scripted {
    fn leader(&self) -> Option<String> {
        Some("http://leader".into())
    }

    async fn forward(&self, _url: &str, entry: Bytes) -> Result<Committed, ForwardError> {
        let e = EncodedEntry::decode("forwarded entry", entry).unwrap();
        self.sent.lock().push(e.entry.commit_id);
        let answer = self.answers.lock().pop_front().expect("an answer scripted");
        match answer {
            Answer::NotTaken => Err(ForwardError::NotTaken("busy".into())),
            Answer::Uncertain => Err(ForwardError::Uncertain("connection reset".into())),
            Answer::Commit => Ok(self.leader.commit_here(&e).await.unwrap()),
            Answer::CommitThenLose => {
                self.leader.commit_here(&e).await.unwrap();
                Err(ForwardError::Uncertain("the leader died".into()))
            }
            Answer::Claim(c) => Ok(c),
        }
    }

    async fn pull(
        &self,
        _url: &str,
        after: u64,
        _wait_ms: u64,
    ) -> Result<Vec<(u64, Bytes)>, ForwardError> {
        self.leader
            .entries_after(after, 1 << 20)
            .ok_or_else(|| ForwardError::NotTaken("not kept".into()))
    }
}

async fn open(store: &SharedStore) -> Arc<CommitLog> {
    CommitLog::open(store.clone(), SystemClock::shared(), LogConfig::default())
        .await
        .unwrap()
}

/// A follower and a leader on one store; the follower forwards to the
/// leader as `answers` script.
async fn pair(answers: Vec<Answer>) -> (SharedStore, Arc<CommitLog>, Arc<Scripted>) {
    let store: SharedStore = Arc::new(crate::store::open("memory://").unwrap());
    let leader = open(&store).await;
    let follower = open(&store).await;
    let f = Scripted::new(leader, answers);
    follower.set_forwarder(f.clone());
    (store, follower, f)
}

fn encoded(intents: Vec<Intent>) -> EncodedEntry {
    let e = LogEntry {
        commit_id: new_commit_id(),
        agent_id: "follower".into(),
        time_ms: 1,
        intents,
    };
    EncodedEntry::encode(e, Bytes::new()).unwrap()
}

fn create_topic() -> EncodedEntry {
    encoded(vec![Intent::CreateTopic {
        name: "t".into(),
        partitions: 1,
        config: TopicConfig::default(),
    }])
}

async fn stored_ids(store: &SharedStore) -> Vec<u128> {
    let mut ids = Vec::new();
    for seq in 1.. {
        match store.get(&log_key(seq)).await {
            Ok(b) => ids.push(EncodedEntry::decode("", b).unwrap().entry.commit_id),
            Err(e) if e.is_not_found() => return ids,
            Err(e) => panic!("{e}"),
        }
    }
    ids
}

#[tokio::test]
async fn a_taken_entry_is_answered_once_applied_here() {
    let (store, follower, f) = pair(vec![Answer::Commit]).await;
    // The leader committed others' entries the follower has not seen.
    for _ in 0..3 {
        let tick = encoded(vec![Intent::Tick]);
        f.leader.commit_here(&tick).await.unwrap();
    }
    let e = create_topic();
    let c = commit(&follower, &e).await.unwrap();
    assert_eq!(c.seq, 4);
    assert!(follower.head() >= 4, "answered before it was applied here");
    assert!(
        follower.state().topics.contains_key("t"),
        "read-your-writes"
    );
    assert_eq!(f.sent(), vec![e.entry.commit_id]);
    assert_eq!(follower.stats().forwarded.load(Ordering::Relaxed), 1);
    assert_eq!(
        follower.stats().forward_fallbacks.load(Ordering::Relaxed),
        0
    );
    assert_eq!(follower.stats().commits.load(Ordering::Relaxed), 0);
    assert_eq!(stored_ids(&store).await.last(), Some(&e.entry.commit_id));
}

#[tokio::test]
async fn not_taken_falls_back_to_committing_here_and_sends_once() {
    let (store, follower, f) = pair(vec![Answer::NotTaken]).await;
    let e = create_topic();
    let c = commit(&follower, &e).await.unwrap();
    assert_eq!(c.seq, 1);
    assert_eq!(f.sent().len(), 1);
    assert_eq!(
        follower.stats().forward_fallbacks.load(Ordering::Relaxed),
        1
    );
    assert_eq!(follower.stats().forwarded.load(Ordering::Relaxed), 0);
    assert_eq!(stored_ids(&store).await, vec![e.entry.commit_id]);
}

#[tokio::test]
async fn uncertain_is_reported_and_never_retried() {
    let (store, follower, f) = pair(vec![Answer::Uncertain]).await;
    let err = commit(&follower, &create_topic()).await.unwrap_err();
    assert!(matches!(err, Error::CommitUncertain(_)), "{err}");
    assert_eq!(f.sent().len(), 1, "sent once");
    assert!(stored_ids(&store).await.is_empty(), "not committed here");
    assert_eq!(follower.head(), 0);
}

/// The leader commits the entry and dies before answering: the follower
/// says "uncertain" (nothing acked) and does not commit it again, so the
/// log holds it exactly once.
#[tokio::test]
async fn a_leader_lost_after_committing_leaves_the_entry_once() {
    let (store, follower, f) = pair(vec![Answer::CommitThenLose]).await;
    let e = create_topic();
    let err = commit(&follower, &e).await.unwrap_err();
    assert!(matches!(err, Error::CommitUncertain(_)), "{err}");
    assert_eq!(f.sent().len(), 1);
    assert_eq!(stored_ids(&store).await, vec![e.entry.commit_id]);
    follower.catch_up().await.unwrap();
    assert!(follower.state().topics.contains_key("t"));
}

/// After "not taken", the direct commit loses its slot to another writer
/// while a leader is known: the entry landed nowhere, so it goes to the
/// leader again (and only then).
#[tokio::test]
async fn after_a_lost_race_it_forwards_again() {
    let (store, follower, f) = pair(vec![Answer::NotTaken, Answer::NotTaken]).await;
    // Another writer takes slot 1 behind the follower's (fresh) view.
    let other = encoded(vec![Intent::Tick]);
    store
        .put(
            &log_key(1),
            other.bytes.clone(),
            crate::store::PutMode::Create,
        )
        .await
        .unwrap();
    let e = create_topic();
    let c = commit(&follower, &e).await.unwrap();
    assert_eq!(c.seq, 2);
    assert_eq!(f.sent(), vec![e.entry.commit_id, e.entry.commit_id]);
    assert_eq!(follower.stats().conflicts.load(Ordering::Relaxed), 1);
    assert_eq!(
        follower.stats().forward_fallbacks.load(Ordering::Relaxed),
        2
    );
    assert_eq!(
        stored_ids(&store).await,
        vec![other.entry.commit_id, e.entry.commit_id]
    );
}

/// A leader's answer for an entry this agent cannot read: uncertain, not
/// acked.
#[tokio::test]
async fn an_answer_never_readable_here_is_uncertain() {
    let claim = Committed {
        seq: 5,
        outcomes: vec![crate::log::Outcome::Done],
    };
    let (_store, follower, f) = pair(vec![Answer::Claim(claim)]).await;
    let err = commit(&follower, &create_topic()).await.unwrap_err();
    assert!(err.to_string().contains("not readable here"), "{err}");
    assert_eq!(f.sent().len(), 1);
}

#[tokio::test]
async fn a_malformed_entry_is_neither_forwarded_nor_written() {
    let (store, follower, f) = pair(vec![]).await;
    let mut e = create_topic();
    e.bytes = Bytes::from_static(b"not an entry");
    assert!(commit(&follower, &e).await.is_err());
    assert!(f.sent().is_empty());
    assert!(stored_ids(&store).await.is_empty());
}

#[tokio::test]
async fn a_follower_learns_the_leaders_entries() {
    let (store, follower, f) = pair(vec![]).await;
    // Before the first pull the leader keeps nothing: read the store.
    assert!(follow(&follower, 0).await.is_err());
    let e = create_topic();
    f.leader.commit_here(&e).await.unwrap();
    assert_eq!(follow(&follower, 0).await.unwrap(), Some(1));
    assert_eq!(follower.head(), 1);
    assert_eq!(follower.stats().entries_followed.load(Ordering::Relaxed), 1);
    let alone = open(&store).await;
    assert_eq!(follow(&alone, 0).await.unwrap(), None, "no leader");
}
