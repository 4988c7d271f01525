//! Fault-injecting wrapper for tests and simulations. Seeded rules pick calls
//! by operation, key prefix, the Nth matching call or a probability, and
//! fail them (synthetic 503), delay them, hold them until released, report
//! a timeout after the call really landed, or "crash" the store so every
//! later call fails (a killed process). It is compiled only for tests (the
//! crate's own, or with the `testing` feature) and must never be used in
//! production paths.

use super::{ObjectInfo, PutMode, SharedStore, Store, StoreError, StoreErrorKind, StoreResult};
use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// The kind of store call a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// PUTs, overwrite and create-if-absent.
    Put,
    /// GETs, whole and ranged.
    Get,
    /// LISTs of a whole prefix.
    List,
    /// LISTs after a key (a sweep's mark); their key is the prefix.
    ListAfter,
    /// HEADs (size and time, no bytes).
    Head,
    /// DELETEs.
    Delete,
}

/// What happens to a matched call.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Fail without doing anything, as a 503 would.
    Unavailable,
    /// Do the call, then report a timeout: the caller cannot know it landed.
    LandedButTimeout,
    /// Report a timeout without doing the call.
    LostTimeout,
    /// Wait this long, then do the call.
    Delay(Duration),
    /// Wait until the gate is opened, then do the call (a frozen process).
    Hold(Arc<Gate>),
    /// Wait until the gate is opened, then fail without doing the call (a
    /// request stuck in the network that finally errors).
    HoldThenFail(Arc<Gate>),
    /// Do nothing and fail this and every later call (the process died).
    Crash,
}

/// A gate that held calls wait on; `open` releases them all.
#[derive(Debug, Default)]
pub struct Gate {
    open: AtomicBool,
    notify: Notify,
    arrived: AtomicBool,
    arrived_notify: Notify,
}

impl Gate {
    /// A closed gate.
    pub fn new() -> Arc<Self> {
        Arc::new(Gate::default())
    }
    /// Release every call held at the gate, and let later ones pass at once.
    pub fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }
    /// Wait until some call is being held at this gate.
    pub async fn wait_arrived(&self) {
        loop {
            let n = self.arrived_notify.notified();
            if self.arrived.load(Ordering::SeqCst) {
                return;
            }
            n.await;
        }
    }
    async fn pass(&self) {
        self.arrived.store(true, Ordering::SeqCst);
        self.arrived_notify.notify_waiters();
        loop {
            let n = self.notify.notified();
            if self.open.load(Ordering::SeqCst) {
                return;
            }
            n.await;
        }
    }
}

/// Which calls a fault applies to.
#[derive(Debug, Clone)]
pub struct FaultRule {
    /// The kind of call matched; `None` matches every kind.
    pub op: Option<Op>,
    /// Only calls on keys (or list prefixes) that start with this; `""` matches all.
    pub key_prefix: String,
    /// Only the Nth matching call (1-based); `None` means every match.
    pub nth: Option<u64>,
    /// Chance that a matching call is hit (1.0 = always).
    pub probability: f64,
    /// How many hits at most; `None` = unlimited.
    pub times: Option<u64>,
    /// What happens to a hit call.
    pub fault: Fault,
}

impl FaultRule {
    /// A rule hitting every `op` call on keys under `key_prefix` with `fault`; narrow it with
    /// `nth`, `probability` and `times`.
    pub fn new(op: Op, key_prefix: &str, fault: Fault) -> Self {
        FaultRule {
            op: Some(op),
            key_prefix: key_prefix.to_string(),
            nth: None,
            probability: 1.0,
            times: None,
            fault,
        }
    }
    /// Hit only the `n`th matching call (1-based).
    pub fn nth(mut self, n: u64) -> Self {
        self.nth = Some(n);
        self
    }
    /// Hit a matching call with chance `p` (drawn from the store's seeded generator).
    pub fn probability(mut self, p: f64) -> Self {
        self.probability = p;
        self
    }
    /// Hit at most `n` calls, then let matches pass.
    pub fn times(mut self, n: u64) -> Self {
        self.times = Some(n);
        self
    }
}

#[derive(Debug)]
struct RuleState {
    rule: FaultRule,
    matched: u64,
    hits: u64,
}

/// A wrapper that fails, delays, holds or "crashes" the calls its rules pick, for fault tests;
/// the rules' random draws are seeded, so a run replays.
#[derive(Debug)]
pub struct FaultStore {
    inner: SharedStore,
    rules: Mutex<Vec<RuleState>>,
    rng: Mutex<SmallRng>,
    crashed: AtomicBool,
}

impl FaultStore {
    /// Pass calls through to `inner` until a rule is added; `seed` seeds the probability draws.
    pub fn new(inner: SharedStore, seed: u64) -> Self {
        FaultStore {
            inner,
            rules: Mutex::new(Vec::new()),
            rng: Mutex::new(SmallRng::seed_from_u64(seed)),
            crashed: AtomicBool::new(false),
        }
    }
    /// Add a rule; rules are checked in the order added, and the first that hits decides.
    pub fn add(&self, rule: FaultRule) {
        self.rules.lock().push(RuleState {
            rule,
            matched: 0,
            hits: 0,
        });
    }
    /// Remove every rule: calls pass through again (unless crashed).
    pub fn clear(&self) {
        self.rules.lock().clear();
    }
    /// Fail every later call, as if the process died; not undone by `clear`.
    pub fn crash(&self) {
        self.crashed.store(true, Ordering::SeqCst);
    }

    fn pick(&self, op: Op, key: &str) -> Option<Fault> {
        let mut rules = self.rules.lock();
        let mut rng = self.rng.lock();
        for st in rules.iter_mut() {
            if st.rule.op.is_some_and(|o| o != op) || !key.starts_with(&st.rule.key_prefix) {
                continue;
            }
            st.matched += 1;
            if st.rule.nth.is_some_and(|n| n != st.matched) {
                continue;
            }
            if st.rule.times.is_some_and(|t| st.hits >= t) {
                continue;
            }
            if st.rule.probability < 1.0 && !rng.random_bool(st.rule.probability.max(0.0)) {
                continue;
            }
            st.hits += 1;
            return Some(st.rule.fault.clone());
        }
        None
    }

    async fn run<T, F>(&self, op: Op, name: &'static str, key: &str, call: F) -> StoreResult<T>
    where
        F: std::future::Future<Output = StoreResult<T>>,
    {
        let dead = |msg: &str| StoreError::new(StoreErrorKind::Transient, name, key, msg);
        if self.crashed.load(Ordering::SeqCst) {
            return Err(dead("injected: process crashed"));
        }
        match self.pick(op, key) {
            None => call.await,
            Some(Fault::Unavailable) => Err(dead("injected: 503 Slow Down")),
            Some(Fault::LostTimeout) => Err(StoreError::new(
                StoreErrorKind::Timeout,
                name,
                key,
                "injected: timeout, call lost",
            )),
            Some(Fault::LandedButTimeout) => {
                let _ = call.await?;
                Err(StoreError::new(
                    StoreErrorKind::Timeout,
                    name,
                    key,
                    "injected: timeout after the call landed",
                ))
            }
            Some(Fault::Delay(d)) => {
                crate::clock::sleep(d).await;
                call.await
            }
            Some(Fault::Hold(gate)) => {
                gate.pass().await;
                call.await
            }
            Some(Fault::HoldThenFail(gate)) => {
                gate.pass().await;
                Err(dead("injected: held, then 503"))
            }
            Some(Fault::Crash) => {
                self.crash();
                Err(dead("injected: process crashed"))
            }
        }
    }
}

#[async_trait]
impl Store for FaultStore {
    async fn put(&self, key: &str, body: Bytes, mode: PutMode) -> StoreResult<()> {
        self.run(Op::Put, "put", key, self.inner.put(key, body, mode))
            .await
    }
    async fn get(&self, key: &str) -> StoreResult<Bytes> {
        self.run(Op::Get, "get", key, self.inner.get(key)).await
    }
    async fn get_range(&self, key: &str, range: Range<u64>) -> StoreResult<Bytes> {
        self.run(Op::Get, "get_range", key, self.inner.get_range(key, range))
            .await
    }
    async fn list(&self, prefix: &str) -> StoreResult<Vec<ObjectInfo>> {
        self.run(Op::List, "list", prefix, self.inner.list(prefix))
            .await
    }
    async fn list_after(&self, prefix: &str, after_key: &str) -> StoreResult<Vec<ObjectInfo>> {
        let call = self.inner.list_after(prefix, after_key);
        self.run(Op::ListAfter, "list_after", prefix, call).await
    }
    async fn head(&self, key: &str) -> StoreResult<ObjectInfo> {
        self.run(Op::Head, "head", key, self.inner.head(key)).await
    }
    async fn delete(&self, key: &str) -> StoreResult<()> {
        self.run(Op::Delete, "delete", key, self.inner.delete(key))
            .await
    }
}
