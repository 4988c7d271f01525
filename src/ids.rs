//! Identifiers and randomness: the one door. It owns the ULIDs in object
//! keys and agent and member ids, and the random draws for jitter and
//! start points. `clippy.toml` bans `Ulid::new` and the thread RNG
//! everywhere else. Randomness that decides what a test sees (fault
//! injection, simulated latency) is not drawn here: it comes from a
//! `SmallRng` the caller seeds, so a test can print and replay its seed.
//! It must not hold any other state.

use rand::Rng;

/// A new ULID: unique, and sorting by creation time.
#[allow(clippy::disallowed_methods)] // the door itself
pub fn ulid() -> ulid::Ulid {
    ulid::Ulid::new()
}

/// A random 64-bit number (seeds, start points).
#[allow(clippy::disallowed_methods)] // the door itself
pub fn random_u64() -> u64 {
    rand::rng().random()
}

/// A random whole number of milliseconds in `0..=max_ms` (jitter).
#[allow(clippy::disallowed_methods)] // the door itself
pub fn jitter_ms(max_ms: u64) -> u64 {
    rand::rng().random_range(0..=max_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_in_range_and_ulids_are_unique() {
        assert!((0..1_000).all(|_| jitter_ms(7) <= 7));
        assert_eq!(jitter_ms(0), 0);
        assert_ne!(ulid(), ulid());
    }
}
