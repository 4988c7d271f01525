//! The test seed (tests/common/seed.rs): sub-seeds are a pure function of
//! the seed, `SKIFF_TEST_SEED` replays a run's choices (checked by running
//! this test binary again with it set), and a fault store on a replayed seed
//! fails the same calls.

mod common;

use common::seed::from_var;
use common::{seed, Seed};
use rand::Rng;
use skiff::store::{Fault, FaultRule, FaultStore, Op, PutMode, Store};
use std::process::Command;

#[test]
fn derived_seeds_are_a_pure_function_of_the_seed() {
    let s = Seed::new(1234);
    let a: Vec<u64> = (0..100).map(|i| s.derive(i).value()).collect();
    let b: Vec<u64> = (0..100)
        .map(|i| Seed::new(1234).derive(i).value())
        .collect();
    assert_eq!(a, b, "derive is deterministic");
    let distinct: std::collections::BTreeSet<u64> = a.iter().copied().collect();
    assert_eq!(distinct.len(), a.len(), "sub-seeds 0..100 are distinct");
    assert_ne!(s.derive(0), s, "a sub-seed is not the seed itself");
    assert_ne!(Seed::new(1235).derive(0), s.derive(0), "nearby seeds part");
    assert_eq!(s.child("workers"), s.child("workers"));
    assert_ne!(s.child("workers"), s.child("faults"));
    assert_ne!(s.child("workers").derive(1), s.child("faults").derive(1));
}

#[test]
fn a_seed_gives_the_same_generator_every_time() {
    let draws = |s: Seed| -> Vec<u32> {
        let mut rng = s.rng();
        (0..50).map(|_| rng.random_range(0..1000)).collect()
    };
    let s = Seed::new(42).derive(3);
    assert_eq!(draws(s), draws(s));
    assert_ne!(draws(s), draws(s.derive(1)));
}

#[test]
fn the_variable_names_a_decimal_seed() {
    assert_eq!(from_var(Some("1234")), Some(Seed::new(1234)));
    assert_eq!(
        from_var(Some(" 18446744073709551615\n")),
        Some(Seed::new(u64::MAX))
    );
    assert_eq!(from_var(None), None, "unset: a fresh seed");
    assert_eq!(from_var(Some("")), None, "empty: a fresh seed");
}

#[test]
#[should_panic(expected = "is not a decimal u64")]
fn a_malformed_variable_fails_rather_than_being_ignored() {
    from_var(Some("0x4d2"));
}

#[test]
#[should_panic(expected = "with the test's name")]
fn a_seed_asked_for_under_another_name_fails() {
    seed("not_this_test");
}

#[test]
fn a_second_call_in_one_test_returns_the_same_seed() {
    let a = seed("a_second_call_in_one_test_returns_the_same_seed");
    let b = seed("a_second_call_in_one_test_returns_the_same_seed");
    assert_eq!(a, b);
}

/// Which of 64 creates a fault store seeded by `s` fails, under a rule
/// failing half of them at random.
async fn failure_pattern(s: Seed) -> Vec<bool> {
    let faults = FaultStore::new(common::new_store("memory").0, s.value());
    faults.add(FaultRule::new(Op::Put, "", Fault::Unavailable).probability(0.5));
    let mut failed = Vec::new();
    for i in 0..64 {
        let key = format!("k{i}");
        let put = faults.put(&key, "v".into(), PutMode::Create).await;
        failed.push(put.is_err());
    }
    failed
}

#[tokio::test]
async fn a_fault_store_on_the_same_seed_fails_the_same_calls() {
    let s = Seed::new(7).child("faults");
    let first = failure_pattern(s).await;
    assert_eq!(first, failure_pattern(s).await);
    assert!(first.contains(&true) && first.contains(&false), "{first:?}");
    assert_ne!(first, failure_pattern(s.derive(1)).await);
}

/// Run by `replaying_a_seed_repeats_the_run` in a child process: prints its
/// seed (stderr) and a few choices drawn from it (stdout).
#[test]
fn prints_its_seed_and_its_first_draws() {
    let s = seed("prints_its_seed_and_its_first_draws");
    let mut rng = s.child("workers").derive(2).rng();
    println!(
        "draws: {} {} {}",
        s.derive(0).value(),
        rng.random::<u64>(),
        rng.random_range(0..10u32)
    );
}

/// This test binary, running only `prints_its_seed_and_its_first_draws`,
/// with `SKIFF_TEST_SEED` set to `value` (or unset): its seed line and its
/// draws line.
fn run_child(value: Option<&str>) -> (String, String) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "prints_its_seed_and_its_first_draws",
        "--nocapture",
        "--test-threads=1",
    ]);
    match value {
        Some(v) => cmd.env(common::seed::SEED_VAR, v),
        None => cmd.env_remove(common::seed::SEED_VAR),
    };
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let line = |bytes: &[u8], prefix: &str| {
        String::from_utf8_lossy(bytes)
            .lines()
            // libtest's "test NAME ... " may precede it on the line.
            .find_map(|l| l.find(prefix).map(|at| l[at..].to_string()))
            .unwrap_or_else(|| panic!("no {prefix:?} line in {out:?}"))
    };
    (line(&out.stderr, "seed: "), line(&out.stdout, "draws: "))
}

#[test]
fn replaying_a_seed_repeats_the_run() {
    let (line, draws) = run_child(Some("1234"));
    assert_eq!(
        line,
        "seed: 1234 (replay: SKIFF_TEST_SEED=1234 cargo test --test seeds \
         prints_its_seed_and_its_first_draws)"
    );
    assert_eq!(
        run_child(Some("1234")).1,
        draws,
        "the same seed, the same draws"
    );
    assert_ne!(
        run_child(Some("1235")).1,
        draws,
        "another seed, other draws"
    );
    // Unset: a fresh seed each run, printed, and replaying it repeats the run.
    let (fresh_line, fresh_draws) = run_child(None);
    let (other_line, _) = run_child(None);
    assert_ne!(fresh_line, other_line, "two runs drew the same seed");
    let value = fresh_line
        .strip_prefix("seed: ")
        .and_then(|l| l.split(' ').next())
        .unwrap();
    assert_eq!(run_child(Some(value)), (fresh_line.clone(), fresh_draws));
}
