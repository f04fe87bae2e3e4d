#!/usr/bin/env bash
# `make registry`: openExisting + close of a name another process holds, with 10, 1,000 and
# 100,000 names registered, beside a raw open/fstat/mmap/munmap/close of the same file in the
# same loop; ROUNDS interleaved rounds (default 3). Writes docs/compare/registry.md (about 2 minutes).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
rounds="${1:-3}"
names="${COMPARE_NAMES:-10 1000 100000}"
cd "$root/Benchmarks"
swift build -c release --product compare-mappedrecords >/dev/null
binary="$(swift build -c release --show-bin-path)/compare-mappedrecords"
work="$(mktemp -d "${TMPDIR:-/tmp}/mapped-records-registry.XXXXXX")"
trap 'rm -rf "$work"' EXIT
for round in $(seq 1 "$rounds"); do
  for count in $names; do
    "$binary" registry "$work" "$count" | sed "s/^{/{\"round\":$round,/" >> "$work/results.jsonl"
  done
done
python3 - "$work/results.jsonl" "$root/docs/compare/registry.md" "$rounds" <<'PYTHON'
import json, statistics, sys, datetime, os
rows = [json.loads(line) for line in open(sys.argv[1])]
by_names = {}
for row in rows:
    by_names.setdefault(row["names"], []).append(row)
smallest = min(by_names)
base = {row["round"]: row["median"] for row in by_names[smallest]}
lines = [f"# make registry: {datetime.date.today()}, {os.cpu_count()} CPUs, {sys.argv[3]} interleaved rounds", "",
         "openExisting + close of a name another process holds, beside a raw open, fstat, mmap, munmap and close",
         "of the same file alternating in the same loop (2,000 pairs per round; medians).", "",
         "| names registered | µs (median of rounds) | raw µs | ratio to raw (median of rounds) | spread | ratio to the smallest registry, same round | registering them (s) |",
         "|--:|--:|--:|--:|--:|--:|--:|"]
for names in sorted(by_names):
    group = by_names[names]
    ratios = [row["median"] / row["raw"] for row in group]
    flat = [row["median"] / base[row["round"]] for row in group]
    lines.append(f"| {names:,} | {statistics.median(r['median'] for r in group) * 1e6:.1f} | "
                 f"{statistics.median(r['raw'] for r in group) * 1e6:.1f} | {statistics.median(ratios):.2f} | "
                 f"{min(ratios):.2f}–{max(ratios):.2f} | {statistics.median(flat):.2f} | "
                 f"{statistics.median(r['fill_seconds'] for r in group):.1f} |")
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PYTHON
