#!/usr/bin/env bash
# `make soak MINUTES=N`: rounds of 1 table writer, 8 table readers and 2 registry-churn workers,
# with kill -9s, until N minutes are up. After each round: `mrec verify` on the table, every
# reader must have seen only whole, correct records, and the registry must hold no stale
# name or leaked shared-memory object once its dead holders are collected.
set -uo pipefail
minutes="${1:-30}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$(cd "$root" && swift build --show-bin-path)"
helper="$bin/mapped-test-helper"
mrec="$bin/mrec"
work="$(mktemp -d /tmp/mapped-records-soak-XXXXXX)"
table="$work/soak.mrec"
registry="$work/registry"
persisted="$work/persisted.data"
head -c 1048576 /dev/zero > "$persisted"
end=$(( $(date +%s) + minutes * 60 ))
rounds=0 failures=0 kills=0 readers_ok=0
shm_before=$(ls /dev/shm | wc -l)

fail() { echo "round $rounds: FAILED: $*"; failures=$((failures + 1)); }

while [ "$(date +%s)" -lt "$end" ]; do
  rounds=$((rounds + 1))
  seconds=$(( 5 + RANDOM % 10 ))
  "$helper" table-append-for "$table" "$seconds" > "$work/writer.out" 2>&1 &
  writer=$!
  pids=()
  for r in 1 2 3 4 5 6 7 8; do
    "$helper" table-reader "$table" "$seconds" > "$work/reader$r.out" 2>&1 &
    pids+=($!)
  done
  churn=()
  for w in 1 2; do
    "$helper" registry-churn "$registry" "$w" 400 "$persisted" 0 > "$work/churn$w.out" 2>&1 &
    churn+=($!)
  done
  # Half the rounds, the writer dies by kill -9 partway.
  if [ $((RANDOM % 2)) -eq 0 ]; then
    sleep "0.$((RANDOM % 9 + 1))"
    sleep $(( RANDOM % seconds ))
    kill -9 "$writer" 2>/dev/null && kills=$((kills + 1))
  fi
  wait "$writer" 2>/dev/null
  for pid in "${pids[@]}"; do
    if wait "$pid"; then readers_ok=$((readers_ok + 1)); else fail "a reader saw a bad record: $(tail -1 "$work"/reader*.out | grep bad)"; fi
  done
  for pid in "${churn[@]}"; do
    wait "$pid"; status=$?
    [ $status -eq 0 ] || [ $status -eq 137 ] || fail "a churn worker failed ($status): $(tail -2 "$work"/churn*.out)"
    [ $status -eq 137 ] && kills=$((kills + 1))
  done
  "$mrec" verify "$table" > "$work/verify.out" 2>&1 || fail "mrec verify: $(cat "$work/verify.out")"
  "$mrec" names --gc --registry "$registry" > "$work/names.out" 2>&1 || fail "mrec names: $(cat "$work/names.out")"
  [ "$(sed 1,2d "$work/names.out" | wc -l)" -eq 0 ] || fail "stale names: $(cat "$work/names.out")"
  [ "$(ls /dev/shm | wc -l)" -le "$shm_before" ] || fail "leaked shared memory: $(ls /dev/shm | tail -3)"
  records=$("$mrec" info "$table" | sed -n 's/^records *\([0-9]*\).*/\1/p')
  echo "round $rounds: ${seconds}s, $records records in the table, $kills kill -9s so far, $failures failures"
done
echo "soak: $minutes minutes, $rounds rounds, $readers_ok reader runs clean, $kills kill -9s, $failures failures"
rm -rf "$work"
[ "$failures" -eq 0 ]
