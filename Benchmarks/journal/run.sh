#!/usr/bin/env bash
# `make journal`: shared appenders and a series follower against the exclusive writer, in one run;
# writes docs/compare/journal.md (about 2 minutes).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root/Benchmarks"
swift build -c release --product journal-mappedrecords
binary="$(swift build -c release --show-bin-path)/journal-mappedrecords"
work="$(mktemp -d "${TMPDIR:-/tmp}/mapped-records-journal.XXXXXX")"
trap 'rm -rf "$work"' EXIT
report="$root/docs/compare/journal.md"
{
  echo "# make journal: $(date -u +%Y-%m-%d), $(nproc) CPUs, $(uname -r)"
  echo
  "$binary" run "$work"
} | tee "$report.tmp"
mv "$report.tmp" "$report"
