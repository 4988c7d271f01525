//! Time, and waiting for it: the one door. It owns the clocks the library
//! reads (wall time for log timestamps and GC ages compared with the
//! store's own; a monotonic clock for leases, view freshness and
//! deadlines), the sleeps and deadlines measured on them, and the
//! runtime-timer functions (`sleep`, `timeout`, `interval`, `now`) for
//! code that waits without a [`Clock`] at hand. `clippy.toml` bans the std
//! and tokio time functions everywhere else, so a test can swap the time
//! source: advance a [`ManualClock`], or run on a paused tokio runtime
//! with a [`VirtualClock`] and replay a fault test exactly. It must not
//! hold any other state.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A runtime-timer wait that ran out of time.
pub use tokio::time::error::Elapsed;
/// The runtime's monotonic instant: virtual under a paused tokio runtime.
pub use tokio::time::Instant;

/// A wait on a [`Clock`] that ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("timed out")]
pub struct TimedOut;

/// A sleep on a [`Clock`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A source of wall and monotonic time, in milliseconds, and sleeps on it.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// Milliseconds since the Unix epoch.
    fn wall_ms(&self) -> u64;
    /// Milliseconds since an arbitrary fixed start; never goes backwards.
    fn mono_ms(&self) -> u64;
    /// Resolves once `ms` milliseconds of [`Clock::mono_ms`] have passed.
    fn sleep_ms(&self, ms: u64) -> Sleep;
}

/// A clock shared by every part of one agent.
pub type SharedClock = Arc<dyn Clock>;

impl dyn Clock {
    /// The moment `ms` milliseconds from now, on this clock.
    pub fn deadline_ms(&self, ms: u64) -> Deadline {
        Deadline {
            at_mono_ms: self.mono_ms().saturating_add(ms),
        }
    }

    /// Run `fut`, giving up once `ms` milliseconds of this clock passed.
    pub async fn timeout_ms<F: Future>(&self, ms: u64, fut: F) -> Result<F::Output, TimedOut> {
        tokio::select! {
            out = fut => Ok(out),
            _ = self.sleep_ms(ms) => Err(TimedOut),
        }
    }
}

/// A moment on a clock's monotonic time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline {
    at_mono_ms: u64,
}

impl Deadline {
    /// Milliseconds left, 0 once passed.
    pub fn remaining_ms(&self, clock: &dyn Clock) -> u64 {
        self.at_mono_ms.saturating_sub(clock.mono_ms())
    }
    /// Whether the deadline has passed.
    pub fn passed(&self, clock: &dyn Clock) -> bool {
        self.remaining_ms(clock) == 0
    }
}

/// The real clocks of this machine (the monotonic one is the runtime's, so
/// it is virtual under a paused runtime; wall time is always real).
#[derive(Debug)]
pub struct SystemClock {
    start: Instant,
}

impl SystemClock {
    /// The real clock, shared: wall time from the system, monotonic time from the runtime.
    pub fn shared() -> SharedClock {
        Arc::new(SystemClock { start: now() })
    }
}

#[allow(clippy::disallowed_methods)] // the one reader of wall time
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
    fn sleep_ms(&self, ms: u64) -> Sleep {
        Box::pin(sleep(Duration::from_millis(ms)))
    }
}

/// Test-only clocks a test drives by hand (needs the `testing` feature).
#[cfg(any(test, feature = "testing"))]
pub use test_clocks::{ManualClock, VirtualClock};

#[cfg(any(test, feature = "testing"))]
mod test_clocks {
    use super::{now, sleep, system_wall_ms, Clock, Instant, SharedClock, Sleep};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::sync::Notify;

    /// Real time plus a skew that tests advance to simulate a frozen process or
    /// an aged store; sleeps on it end early when the skew carries them past
    /// their end.
    #[derive(Debug)]
    pub struct ManualClock {
        start: Instant,
        skew_ms: Arc<AtomicU64>,
        advanced: Arc<Notify>,
    }

    impl ManualClock {
        /// A clock at real time with no skew yet; `advance` moves it forward.
        pub fn new() -> Arc<Self> {
            Arc::new(ManualClock {
                start: now(),
                skew_ms: Arc::new(AtomicU64::new(0)),
                advanced: Arc::new(Notify::new()),
            })
        }
        /// Jump both clocks forward by `ms`.
        pub fn advance(&self, ms: u64) {
            self.skew_ms.fetch_add(ms, Ordering::SeqCst);
            self.advanced.notify_waiters();
        }
    }

    impl Clock for ManualClock {
        fn wall_ms(&self) -> u64 {
            system_wall_ms() + self.skew_ms.load(Ordering::SeqCst)
        }
        fn mono_ms(&self) -> u64 {
            skewed_ms(self.start, &self.skew_ms)
        }
        fn sleep_ms(&self, ms: u64) -> Sleep {
            let (start, skew, advanced) = (self.start, self.skew_ms.clone(), self.advanced.clone());
            let until_ms = skewed_ms(start, &skew).saturating_add(ms);
            Box::pin(async move {
                loop {
                    // Registered before the check, so an advance in between wakes it.
                    let woken = advanced.notified();
                    let left_ms = until_ms.saturating_sub(skewed_ms(start, &skew));
                    if left_ms == 0 {
                        return;
                    }
                    tokio::select! {
                        _ = sleep(Duration::from_millis(left_ms)) => {}
                        _ = woken => {}
                    }
                }
            })
        }
    }

    fn skewed_ms(start: Instant, skew_ms: &AtomicU64) -> u64 {
        (start.elapsed().as_millis() as u64).saturating_add(skew_ms.load(Ordering::SeqCst))
    }

    /// Time that passes only on the runtime's timers: under a paused tokio
    /// runtime (`#[tokio::test(start_paused = true)]`) it stands still while
    /// any task can run and jumps to the next timer when all wait, so a test's
    /// timings are the same on every run. Wall time starts at `start_wall_ms`.
    #[derive(Debug)]
    pub struct VirtualClock {
        start: Instant,
        start_wall_ms: u64,
    }

    impl VirtualClock {
        /// A clock at `start_wall_ms` (ms since the epoch) that moves only with the runtime's
        /// timers.
        pub fn shared(start_wall_ms: u64) -> SharedClock {
            Arc::new(VirtualClock {
                start: now(),
                start_wall_ms,
            })
        }
    }

    impl Clock for VirtualClock {
        fn wall_ms(&self) -> u64 {
            self.start_wall_ms.saturating_add(self.mono_ms())
        }
        fn mono_ms(&self) -> u64 {
            self.start.elapsed().as_millis() as u64
        }
        fn sleep_ms(&self, ms: u64) -> Sleep {
            Box::pin(sleep(Duration::from_millis(ms)))
        }
    }
}

/// The runtime's monotonic now (for measuring and runtime deadlines).
#[allow(clippy::disallowed_methods)] // the door itself
pub fn now() -> Instant {
    Instant::now()
}

/// Milliseconds since a process-wide origin, never 0 (the first reading is
/// 1): for timestamps shared through atomics, where 0 means "never".
pub fn process_ms() -> u64 {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    ORIGIN.get_or_init(now).elapsed().as_millis() as u64 + 1
}

/// Microseconds since the Unix epoch, by this machine's clock (stamps
/// compared across processes, as the bench's end-to-end latency does).
pub fn wall_us() -> u64 {
    #[allow(clippy::disallowed_methods)] // the one reader of wall time
    let since = SystemTime::now().duration_since(UNIX_EPOCH);
    since.map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// Wait until `deadline` on the runtime's timers.
#[allow(clippy::disallowed_methods)] // the door itself
pub fn sleep_until(deadline: Instant) -> tokio::time::Sleep {
    tokio::time::sleep_until(deadline)
}

/// Wait `d` on the runtime's timers.
#[allow(clippy::disallowed_methods)] // the door itself
pub fn sleep(d: Duration) -> tokio::time::Sleep {
    tokio::time::sleep(d)
}

/// Run `fut`, giving up after `d` on the runtime's timers.
#[allow(clippy::disallowed_methods)] // the door itself
pub fn timeout<F: Future>(d: Duration, fut: F) -> tokio::time::Timeout<F> {
    tokio::time::timeout(d, fut)
}

/// Run `fut`, giving up at `deadline` on the runtime's timers.
#[allow(clippy::disallowed_methods)] // the door itself
pub fn timeout_at<F: Future>(deadline: Instant, fut: F) -> tokio::time::Timeout<F> {
    tokio::time::timeout_at(deadline, fut)
}

/// A ticker every `period` on the runtime's timers.
#[allow(clippy::disallowed_methods)] // the door itself
pub fn interval(period: Duration) -> tokio::time::Interval {
    tokio::time::interval(period)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_virtual_clock_moves_only_with_the_runtimes_timers() {
        let clock = VirtualClock::shared(1_000);
        assert_eq!((clock.wall_ms(), clock.mono_ms()), (1_000, 0));
        clock.sleep_ms(250).await;
        assert_eq!((clock.wall_ms(), clock.mono_ms()), (1_250, 250));
        let deadline = clock.deadline_ms(100);
        assert_eq!(deadline.remaining_ms(&*clock), 100);
        let slow = clock.timeout_ms(100, std::future::pending::<()>()).await;
        assert!(slow.is_err(), "a pending future times out");
        assert!(deadline.passed(&*clock));
        let quick = clock.timeout_ms(100, async { 7 }).await;
        assert_eq!(quick.ok(), Some(7));
    }

    #[tokio::test]
    async fn advancing_a_manual_clock_ends_its_sleeps_early() {
        let clock = ManualClock::new();
        let sleeper = tokio::spawn(clock.sleep_ms(3_600_000));
        let before = now();
        clock.advance(3_600_000);
        timeout(Duration::from_secs(10), sleeper)
            .await
            .expect("the advance woke the sleep")
            .expect("the sleep task ran");
        assert!(before.elapsed() < Duration::from_secs(10));
        let c: &dyn Clock = &*clock;
        assert!(c.mono_ms() >= 3_600_000);
        assert!(c.deadline_ms(0).passed(c));
    }
}
