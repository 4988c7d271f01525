//! One seed per randomised test, printed so that a failure can be replayed.
//!
//! A test that draws randomness, or builds a `FaultStore` or `LatencyStore`
//! (they take a seed), starts with `let seed = common::seed("NAME");` and
//! takes every random choice from it: `seed.rng()` for a generator,
//! `seed.derive(i)` for the `i`th sub-seed (a producer, a worker, a fault
//! store), `seed.child("label")` for a named family of sub-seeds, and
//! `seed.value()` where a `u64` is wanted. Sub-seeds are a pure function of
//! the one seed (splitmix64 steps), so one number replays all of the
//! test's random choices.
//!
//! `SKIFF_TEST_SEED`: when set (a decimal `u64`), every test uses it as its
//! seed instead of drawing a fresh one, to replay a failure. Each test prints
//! one line to stderr, which cargo shows when the test fails:
//!
//! ```text
//! seed: 1234 (replay: SKIFF_TEST_SEED=1234 cargo test --test core_faults NAME)
//! ```
//!
//! A replay repeats the test's choices (which partitions, how many records,
//! which settle, which store calls a fault store fails in its own call
//! order), not the scheduling of its tasks: where concurrent tasks share a
//! fault store, which task's call meets which draw can still differ.

use rand::rngs::SmallRng;
use rand::SeedableRng;

/// The variable that replays a seed; see the module's doc.
pub const SEED_VAR: &str = "SKIFF_TEST_SEED";

/// A test's seed, or one derived from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Seed(u64);

/// The seed of the test `test` (its name as `cargo test` lists it, e.g.
/// `memory::three_agents_...`): `SKIFF_TEST_SEED` when set, else a fresh
/// random one; printed to stderr with the command that replays it. Call it
/// once per test, on the test's own thread (so the line is captured with
/// the test's output), and derive everything else from the result. The
/// test harness names that thread after the test, so a `test` that is not
/// the test's name (a typo, a rename) fails here rather than printing a
/// replay command that runs nothing. A second call in the same test (say,
/// from a shared fixture and from the check it sets up) returns the same
/// seed without printing again.
pub fn seed(test: &str) -> Seed {
    thread_local! {
        static THIS_TEST: std::cell::Cell<Option<Seed>> = const { std::cell::Cell::new(None) };
    }
    let thread = std::thread::current();
    assert_eq!(
        thread.name(),
        Some(test),
        "seed({test:?}) must be called on the test's own thread, with the test's name"
    );
    THIS_TEST.with(|this| {
        if let Some(seed) = this.get() {
            return seed;
        }
        let seed = from_var(std::env::var(SEED_VAR).ok().as_deref()).unwrap_or_else(fresh);
        eprintln!("{}", seed.replay_line(test));
        this.set(Some(seed));
        seed
    })
}

/// The seed `SKIFF_TEST_SEED` names, if it is set and not empty; a value
/// that is not a decimal `u64` fails the test rather than being ignored.
pub fn from_var(value: Option<&str>) -> Option<Seed> {
    let value = value.map(str::trim).filter(|v| !v.is_empty())?;
    Some(Seed(value.parse().unwrap_or_else(|_| {
        panic!("{SEED_VAR}={value:?} is not a decimal u64")
    })))
}

/// A seed nobody chose.
fn fresh() -> Seed {
    Seed(skiff::ids::random_u64())
}

/// One step of splitmix64 from `x`: a bijection that spreads nearby inputs
/// (0, 1, 2, ...) over the whole range.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Seed {
    /// The seed `value`, as `SKIFF_TEST_SEED=value` would give.
    pub const fn new(value: u64) -> Seed {
        Seed(value)
    }

    /// The number itself, for APIs that take a `u64` seed.
    pub fn value(self) -> u64 {
        self.0
    }

    /// The `i`th sub-seed: the same for the same seed and `i`, and
    /// unrelated between different `i`.
    pub fn derive(self, i: u64) -> Seed {
        Seed(splitmix64(splitmix64(self.0) ^ i))
    }

    /// The sub-seed named `label` (FNV-1a of the label, then `derive`), to
    /// keep families apart: `seed.child("workers").derive(w)` and
    /// `seed.child("faults").derive(i)` never share a stream.
    pub fn child(self, label: &str) -> Seed {
        let fnv = label.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        self.derive(fnv)
    }

    /// A generator seeded by this seed.
    pub fn rng(self) -> SmallRng {
        SmallRng::seed_from_u64(self.0)
    }

    /// The line `seed` prints for `test`.
    pub fn replay_line(self, test: &str) -> String {
        format!(
            "seed: {v} (replay: {SEED_VAR}={v} cargo test --test {krate} {test})",
            v = self.0,
            krate = env!("CARGO_CRATE_NAME"),
        )
    }
}
