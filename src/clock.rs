//! Time sources. It owns the two clocks the library reads: wall time (log
//! timestamps, GC ages compared with the store's own timestamps) and a
//! monotonic clock (view freshness, timeouts). Code must read time only
//! through [`Clock`], so tests can freeze a writer or age the store by
//! advancing a [`ManualClock`]; it must not sleep.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A source of wall and monotonic time, in milliseconds.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// Milliseconds since the Unix epoch.
    fn wall_ms(&self) -> u64;
    /// Milliseconds since an arbitrary fixed start; never goes backwards.
    fn mono_ms(&self) -> u64;
}

pub type SharedClock = Arc<dyn Clock>;

/// The real clocks of this machine.
#[derive(Debug)]
pub struct SystemClock {
    start: Instant,
}

impl SystemClock {
    pub fn shared() -> SharedClock {
        Arc::new(SystemClock {
            start: Instant::now(),
        })
    }
}

fn system_wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Clock for SystemClock {
    fn wall_ms(&self) -> u64 {
        system_wall_ms()
    }
    fn mono_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }
}

/// Real time plus a skew that tests advance to simulate a frozen process or
/// an aged store.
#[derive(Debug)]
pub struct ManualClock {
    start: Instant,
    skew_ms: AtomicU64,
}

impl ManualClock {
    pub fn new() -> Arc<Self> {
        Arc::new(ManualClock {
            start: Instant::now(),
            skew_ms: AtomicU64::new(0),
        })
    }
    /// Jump both clocks forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.skew_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn wall_ms(&self) -> u64 {
        system_wall_ms() + self.skew_ms.load(Ordering::SeqCst)
    }
    fn mono_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64 + self.skew_ms.load(Ordering::SeqCst)
    }
}
