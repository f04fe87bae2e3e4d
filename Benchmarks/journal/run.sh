#!/usr/bin/env bash
# `make journal`: shared appenders and a series follower against the exclusive writer, in one run,
# on the build's file system and again on tmpfs (/dev/shm), since ext4's first write to each page
# of a file is what limits two appender processes there. Writes docs/compare/journal.md (about
# 3 minutes).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root/Benchmarks"
swift build -c release --product journal-mappedrecords
binary="$(swift build -c release --show-bin-path)/journal-mappedrecords"
disk="$(mktemp -d "${TMPDIR:-/tmp}/mapped-records-journal.XXXXXX")"
memory="$(mktemp -d /dev/shm/mapped-records-journal.XXXXXX)"
trap 'rm -rf "$disk" "$memory"' EXIT
report="$root/docs/compare/journal.md"
{
  echo "# make journal: $(date -u +%Y-%m-%d), $(nproc) CPUs, $(uname -r)"
  echo
  for work in "$disk" "$memory"; do
    echo "# On $(stat -f -c %T "$work") ($work)"
    echo
    "$binary" run "$work"
    echo
  done
} | tee "$report.tmp"
mv "$report.tmp" "$report"
