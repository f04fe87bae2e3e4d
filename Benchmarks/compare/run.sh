#!/usr/bin/env bash
# `make compare`: MappedRecords beside a C raw mmap pointer (the limit), pread/pwrite, LMDB,
# SQLite and numpy.memmap, on the same records and the same random indices, in one run.
# Writes docs/compare/results.md and docs/compare/compare.png. See Benchmarks/compare/README.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
data="${COMPARE_DATA:-$root/.build/compare-data}"
sizes="${COMPARE_SIZES:-100000 16777216}"
output="${COMPARE_OUTPUT:-$root/docs/compare}"
names="${COMPARE_NAMES:-10 1000 100000}"

"$root/.ci/install-packages" liblmdb-dev libsqlite3-dev
python3 -c 'import numpy' 2>/dev/null || python3 -m pip install --quiet numpy
python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install --quiet matplotlib

mkdir -p "$data" "$output"
echo "== building the C peers and the MappedRecords side (release)"
gcc -O2 -Wall -Wextra -o "$data/peers" "$here/peers.c" -llmdb -lsqlite3
(cd "$root/Benchmarks" && swift build -c release --product compare-mappedrecords >/dev/null)
swift_side="$(cd "$root/Benchmarks" && swift build -c release --show-bin-path)/compare-mappedrecords"

results="$data/results.jsonl"
{
  printf '{"machine":{"cpu":"%s","cores":%s,"kernel":"%s","date":"%s"}}\n' \
    "$(lscpu | sed -n 's/^Model name: *//p' | head -1)" "$(nproc)" "$(uname -sr)" "$(date -u +%Y-%m-%d)"
} > "$results"

# Interleaved rounds: each round runs the C raw pointer, numpy.memmap and MappedRecords once
# each, one after another and in a rotating order, so that all three see the same machine state; every ratio is taken
# within a round, and the report gives the median ratio and its spread over the rounds. Before
# each system the page cache is written back (sync), and each side drops its freshly written
# file from the cache before it measures, so every mapping faults its pages in the same way.
for n in $sizes; do
  rounds=$([ "$n" -ge 1000000 ] && echo "${COMPARE_ROUNDS:-7}" || echo "${COMPARE_SMALL_ROUNDS:-5}")
  echo "== $n records: generating, then $rounds interleaved rounds of raw, numpy and MappedRecords"
  "$data/peers" generate "$data" "$n"
  for round in $(seq "$rounds"); do
    # The order rotates from round to round, so that no system always runs first or last.
    order=(raw numpy mappedrecords)
    shift_by=$(( (round - 1) % 3 ))
    order=("${order[@]:$shift_by}" "${order[@]:0:$shift_by}")
    echo "   round $round: ${order[*]}"
    for system in "${order[@]}"; do
      sync
      case "$system" in
        raw) "$data/peers" run raw "$data" "$n" 1 ;;
        numpy) python3 "$here/numpy_peer.py" "$data" "$n" 1 ;;
        mappedrecords) "$swift_side" run "$data" "$n" 1 ;;
      esac | sed "s/^{/{\"round\":$round,/" >> "$results"
    done
  done
  runs=$([ "$n" -ge 1000000 ] && echo 3 || echo 5)
  [ -n "${COMPARE_ROUNDS_ONLY:-}" ] && { rm -rf "$data"/*-"$n" "$data"/*-"$n".mrec; continue; }
  for system in pread lmdb sqlite; do
    echo "   $system ($runs runs after one warm-up)"
    sync; "$data/peers" run "$system" "$data" "$n" "$runs" >> "$results"
  done
  rm -rf "$data"/*-"$n" "$data"/*-"$n".mrec
done

if [ -n "${COMPARE_ROUNDS_ONLY:-}" ]; then
  # Only the interleaved rounds: the raw pointer, numpy and MappedRecords.
  python3 "$here/report.py" "$results" "$output"
  echo "== wrote $output/results.md and $output/compare.png (rounds only)"
  exit 0
fi

echo "== readers scanning while a writer appends"
for readers in 1 2 4; do
  "$swift_side" readers "$data" "$readers" 3 | sed "s/^{/{\"scaling\":\"readers\",\"readers\":$readers,/" >> "$results"
done
rm -f "$data/scaling.mrec"

echo "== registry: openExisting with more and more names"
for count in $names; do
  "$swift_side" registry "$data" "$count" | sed 's/^{/{"scaling":"registry",/' >> "$results"
done

echo "== migration beside cp (docs/PERFORMANCE.md, Migration)"
COMPARE_DATA="$data" "$root/Benchmarks/migrate/run.sh" 16777216 3 | tee "$output/migrate.md"
python3 "$root/Benchmarks/migrate/chart.py" "$output/migrate.md" "$output/migrate.png"

echo "== paging: open-to-first-scan with and without populate (docs/PERFORMANCE.md, Paging)"
COMPARE_DATA="$data" "$root/Benchmarks/paging/run.sh"

echo "== Python: mappedrecords beside np.memmap, numpy copies and 1 Dask worker (docs/PERFORMANCE.md, Python)"
COMPARE_DATA="$data" "$root/Benchmarks/python/run.sh"

python3 "$here/report.py" "$results" "$output"
echo "== wrote $output/results.md and $output/compare.png"
