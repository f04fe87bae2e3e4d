#!/usr/bin/env bash
# `make latency`: append → visible between two processes, for each way of waiting, beside a C
# busy-spin reader, in one run; writes docs/compare/latency.md and the CDF of every sample,
# docs/compare/latency-cdf.png (about 2 minutes).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root/Benchmarks"
swift build -c release --product latency-mappedrecords
binary="$(swift build -c release --show-bin-path)/latency-mappedrecords"
work="$(mktemp -d "${TMPDIR:-/tmp}/mapped-records-latency.XXXXXX")"
trap 'rm -rf "$work"' EXIT
gcc -O2 -I "$root/Sources/CMappedShims/include" -o "$work/spin-reader" latency/spin_reader.c
gcc -O2 -o "$work/futex-pair" latency/futex_pair.c
report="$root/docs/compare/latency.md"
# The Python writer's case runs the package from the working tree in the test venv.
make -C "$root" --no-print-directory python-venv >/dev/null
export PYTHONPATH="$root/python"
{
  echo "# make latency: $(date -u +%Y-%m-%d), $(nproc) CPUs, $(uname -r)"
  echo
  "$binary" run "$work" "$work/spin-reader" "$work/futex-pair" "$root/.build/python-venv/bin/python"
} | tee "$report.tmp"
mv "$report.tmp" "$report"
python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install --quiet matplotlib
python3 latency/cdf.py "$work/latency-samples.csv" "$root/docs/compare/latency-cdf.png"
echo "== wrote $report and $root/docs/compare/latency-cdf.png"
