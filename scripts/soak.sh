#!/usr/bin/env bash
# The bucket over time: one agent on a local directory under continuous
# small-batch load (the shape of issue 12's report: three producers, two
# topics, one with retention_ms 8000), printing every EVERY_S seconds the
# objects and bytes in the bucket, the log's head and what awaits GC and
# compaction, as `skiff admin stats` sees them. Not part of the test suite
# (tests/soak.rs is the bounded one); its table goes into BENCHMARKS.md.
#
#   scripts/soak.sh [DURATION_S=300] [EVERY_S=30]
#   SKIFF=target/release/skiff scripts/soak.sh 600 30   # another binary
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION_S=${1:-300}
EVERY_S=${2:-30}
PORT=${PORT:-18470}
URL="http://127.0.0.1:$PORT"
if [ -z "${SKIFF:-}" ]; then
  cargo build --locked -q --bin skiff
  SKIFF=target/debug/skiff
fi
DIR=$(mktemp -d /tmp/skiff-soak.XXXXXX)
PIDS=()
cleanup() {
  kill "${PIDS[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

"$SKIFF" agent --store "$DIR" --listen "127.0.0.1:$PORT" \
  --maintenance-interval-ms 1000 --gc-grace-ms 62000 --view-ttl-ms 1000 \
  --checkpoint-interval-entries 100 >"$DIR.agent.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
  curl -fsS "$URL/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done

# Topic one: retention 8 s, fed by one producer of 10-record requests.
"$SKIFF" topic create short --url "$URL" --partitions 2 --retention-ms 8000 >/dev/null
body=$(python3 -c 'import json; print(json.dumps({"records": [{"value": "x" * 100} for _ in range(10)]}))')
(
  end=$((SECONDS + DURATION_S))
  while [ $SECONDS -lt $end ]; do
    curl -fsS -o /dev/null -H 'content-type: application/json' \
      -d "$body" "$URL/v1/topics/short/records" || true
  done
) &
PIDS+=($!)
# Topic two: no retention, two bench producers of 10-record requests.
"$SKIFF" bench --url "$URL" --producers 2 --consumers 0 --records-per-request 10 \
  --record-bytes 100 --duration-s "$DURATION_S" --json >"$DIR.bench.json" 2>"$DIR.bench.log" &
PIDS+=($!)

printf '%6s %9s %12s %9s %9s %8s %12s\n' t_s objects bytes log_objs log_head garbage uncompacted
start=$SECONDS
while [ $((SECONDS - start)) -le "$DURATION_S" ]; do
  sleep "$EVERY_S"
  "$SKIFF" admin stats --store "$DIR" --json 2>/dev/null | python3 -c '
import json, sys
s = json.load(sys.stdin)
o = s["objects"]
print("%6d %9d %12d %9d %9d %8d %12d" % (int(sys.argv[1]), o["total"]["objects"], o["total"]["bytes"],
      o["log_entries"]["objects"], s["log"]["head_seq"], s["garbage"]["count"],
      s["not_compacted"]["total_bytes"]))' $((SECONDS - start))
done
"$SKIFF" admin fsck --store "$DIR" >"$DIR.fsck.txt" && echo "fsck: healthy" || echo "fsck: see $DIR.fsck.txt"
echo "store: $DIR (agent log $DIR.agent.log, bench $DIR.bench.json)"
