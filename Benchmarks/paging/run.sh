#!/usr/bin/env bash
# Paging control: open-to-first-scan of 512 MiB with and without populate (docs/PERFORMANCE.md,
# "Paging"); writes docs/compare/paging.md. `make compare` runs it.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root/Benchmarks"
swift build -c release --product paging-mappedrecords >/dev/null
data="${COMPARE_DATA:-${TMPDIR:-/tmp}}"
mkdir -p "$data"
{
  echo "# Paging: populate, prefetch and huge pages ($(date -u +%Y-%m-%d), $(nproc) CPUs, $(uname -r))"
  echo
  "$(swift build -c release --show-bin-path)/paging-mappedrecords" "$data" 5
} | tee "$root/docs/compare/paging.md"
