//! Agents on virtual time: a paused tokio runtime and a `VirtualClock`, so
//! leases expire and long polls end by the clock without a real wait, and
//! the same test takes the same steps on every run.

mod common;

use bytes::Bytes;
use common::{fast_config, new_store, node_with};
use skiff::clock::VirtualClock;
use skiff::groups::QueueConfig;
use skiff::ingest::{ProduceRecord, ProduceRequest};
use skiff::segment::Record;
use skiff::service;

const VISIBILITY_MS: u64 = 60_000;

#[tokio::test(start_paused = true)]
async fn an_expired_lease_is_redelivered_to_a_long_poll_on_the_agents_clock() {
    let (store, _g) = new_store("memory");
    let clock = VirtualClock::shared(1_700_000_000_000);
    let node = node_with(&store, fast_config(), clock.clone()).await;
    node.create_topic("jobs", 1, Default::default())
        .await
        .unwrap();
    let record = Record {
        value: Some(Bytes::from_static(b"job-1")),
        ..Record::default()
    };
    let request = ProduceRequest {
        records: vec![ProduceRecord {
            topic: "jobs".into(),
            partition: 0,
            record,
        }],
        producer: None,
    };
    node.produce(request).await.unwrap();
    let config = QueueConfig {
        topics: vec!["jobs".into()],
        max_deliveries: 5,
        visibility_ms: VISIBILITY_MS,
        in_flight_max: 10,
    };
    service::configure_queue(&node, "q", config).await.unwrap();
    let pending = std::future::pending::<()>;

    let first = service::receive(&node, "q", 10, VISIBILITY_MS, 0, pending())
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    let leased_at_ms = clock.mono_ms();

    // Nothing is receivable until the lease runs out; the long poll waits
    // through it (virtual minutes, no real ones) and gets the redelivery.
    let again = service::receive(&node, "q", 10, VISIBILITY_MS, 2 * VISIBILITY_MS, pending())
        .await
        .unwrap();
    let waited_ms = clock.mono_ms() - leased_at_ms;
    assert_eq!(again.len(), 1, "the expired lease is redelivered");
    assert_eq!(again[0].delivery_count, 2);
    assert_eq!(again[0].offset, first[0].offset);
    assert!(
        (VISIBILITY_MS..2 * VISIBILITY_MS).contains(&waited_ms),
        "redelivered after the lease and before the poll ended: {waited_ms} ms"
    );

    // An empty long poll ends by the clock at its wait.
    let before_ms = clock.mono_ms();
    let none = service::receive(&node, "q", 10, VISIBILITY_MS, 5_000, pending())
        .await
        .unwrap();
    assert!(none.is_empty());
    assert!(clock.mono_ms() - before_ms >= 5_000);
}
