//! Micro-benchmarks of the hot code: the chunk codec (encode and checked
//! decode of a 100-record RecordBatch) and `apply` of an append entry, so
//! regressions show up. Run with `cargo bench --bench hot_paths`.

use bytes::Bytes;
use skiff::log::{apply, Append, ChunkIntent, Intent, Location, LogEntry, State, TopicConfig};
use skiff::segment::{decode_chunk, encode_chunk, Compression, Record};
use std::sync::Arc;

fn main() {
    divan::main();
}

fn records(n: usize, bytes: usize) -> Vec<Record> {
    (0..n)
        .map(|i| Record {
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(vec![b'x'; bytes])),
            headers: vec![("h".into(), Bytes::from_static(b"v"))],
            timestamp_ms: i as i64,
        })
        .collect()
}

#[divan::bench(args = [Compression::None, Compression::Lz4, Compression::Zstd])]
fn encode_100_records_of_1kib(bencher: divan::Bencher, compression: Compression) {
    let recs = records(100, 1024);
    bencher
        .counter(divan::counter::BytesCount::new(100 * 1024usize))
        .bench(|| encode_chunk(divan::black_box(&recs), compression));
}

#[divan::bench(args = [Compression::None, Compression::Lz4, Compression::Zstd])]
fn decode_100_records_of_1kib(bencher: divan::Bencher, compression: Compression) {
    let (bytes, meta) = encode_chunk(&records(100, 1024), compression).expect("encode");
    bencher
        .counter(divan::counter::BytesCount::new(100 * 1024usize))
        .bench(|| {
            decode_chunk(
                "k",
                divan::black_box(bytes.clone()),
                meta.crc32c,
                meta.record_count,
            )
        });
}

#[divan::bench]
fn apply_an_entry_of_16_appends(bencher: divan::Bencher) {
    let mut state = State::default();
    let create = LogEntry {
        commit_id: 1,
        agent_id: "a".into(),
        time_ms: 0,
        intents: vec![Intent::CreateTopic {
            name: "t".into(),
            partitions: 16,
            config: TopicConfig::default(),
        }],
    };
    apply(&mut state, 1, &create);
    let key: Arc<str> = Arc::from("segments/x.seg");
    let chunks = (0..16)
        .map(|p| ChunkIntent {
            topic: "t".into(),
            topic_id: 1,
            partition: p,
            location: Location::Segment {
                key: key.clone(),
                start: 0,
                len: 1000,
            },
            record_count: 100,
            max_timestamp_ms: 0,
            crc32c: 0,
        })
        .collect();
    let entry = LogEntry {
        commit_id: 2,
        agent_id: "a".into(),
        time_ms: 0,
        intents: vec![Intent::Append(Append {
            producer: None,
            chunks,
        })],
    };
    let mut seq = 1;
    let mut commit_id = 2u128;
    bencher.bench_local(|| {
        seq += 1;
        commit_id += 1;
        let e = LogEntry {
            commit_id,
            ..entry.clone()
        };
        apply(&mut state, seq, divan::black_box(&e))
    });
}
