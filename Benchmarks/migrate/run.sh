#!/usr/bin/env bash
# Migration throughput beside `cp` of the same file, in one run (docs/PERFORMANCE.md, issue #14).
# `make compare` runs it; alone: Benchmarks/migrate/run.sh [RECORDS] [ROUNDS].
# A table of RECORDS 32-byte records (`mrec demo`'s id:i64,x:f64,y:f64,flags:i32,tag:i32) is
# migrated to id:i64,x:f64,y:f64,flags:i64,tag:i32,venue:u16 (40 bytes: a widened field, an added
# one). Each round copies the pristine table with cp (timed: the baseline), then migrates the copy
# with mrec (timed, with its maximum resident size). cp copies in the kernel and does not fsync;
# the migration fsyncs the new table before it renames it (crash safety needs it), so the fair
# baseline is a copy fsynced before it counts as done: `cp` then `sync --data` of the copy (timed
# together, issue #29), beside plain cp.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
records="${1:-16777216}"
rounds="${2:-3}"
data="${COMPARE_DATA:-/tmp/mappedrecords-compare}/migrate"
mkdir -p "$data"
(cd "$root" && swift build -c release --product mrec >/dev/null)
mrec="$(cd "$root" && swift build -c release --show-bin-path)/mrec"
trap 'rm -rf "$data"' EXIT
rm -rf "$data"/*
"$mrec" demo --directory "$data/demo" --records "$records" >/dev/null
pristine="$data/demo/points.mrec"
size=$(stat -c %s "$pristine")
target='id:i64,x:f64,y:f64,flags:i64,tag:i32,venue:u16'
baseline_kb=$(/usr/bin/time -f %M "$mrec" info "$pristine" 2>&1 >/dev/null | tail -1)
now() { date +%s.%N; }
# Cold: as root, the page cache is dropped before each timed command (both sides alike); warm:
# the pristine table is in the page cache for both.
caches=(warm)
[ "$(id -u)" -eq 0 ] && [ -w /proc/sys/vm/drop_caches ] && caches+=(cold)
settle() { sync; [ "$1" = cold ] && echo 3 > /proc/sys/vm/drop_caches || cat "$pristine" > /dev/null; }
echo "| page cache | round | cp (s) | cp + fsync (s) | migrate (s) | migrate (MB/s read) | ratio to cp | ratio to cp + fsync | max RSS (MB) |"
echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|"
for cache in "${caches[@]}"; do
for round in $(seq 1 "$rounds"); do
  rm -f "$data/work.mrec"
  settle "$cache"
  start=$(now); cp "$pristine" "$data/work.mrec"; end=$(now)
  cp_s=$(echo "$end - $start" | bc -l)
  rm -f "$data/synced.mrec"
  settle "$cache"
  start=$(now); cp "$pristine" "$data/synced.mrec"; sync --data "$data/synced.mrec"; end=$(now)
  synced_s=$(echo "$end - $start" | bc -l)
  rm -f "$data/synced.mrec"
  settle "$cache"
  start=$(now)
  rss_kb=$(/usr/bin/time -f %M "$mrec" migrate "$data/work.mrec" --schema "$target" 2>&1 >/dev/null | tail -1)
  end=$(now)
  mig_s=$(echo "$end - $start" | bc -l)
  "$mrec" verify "$data/work.mrec" >/dev/null
  printf '| %s | %d | %.3f | %.3f | %.3f | %.0f | %.2f | %.2f | %.1f |\n' "$cache" "$round" "$cp_s" "$synced_s" \
    "$mig_s" "$(echo "$size / $mig_s / 1000000" | bc -l)" "$(echo "$cp_s / $mig_s" | bc -l)" \
    "$(echo "$synced_s / $mig_s" | bc -l)" "$(echo "$rss_kb / 1024" | bc -l)"
done
done
echo
echo "records: $records of 32 bytes ($(echo "$size / 1048576" | bc) MiB); mrec's resident size at rest (mrec info): $(echo "$baseline_kb / 1024" | bc -l | xargs printf '%.1f') MB"
