#!/usr/bin/env bash
# The Python figures of `make compare`: writes docs/compare/python.md (a minute or two).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
data="${COMPARE_DATA:-/tmp/mappedrecords-compare}"
records="${PYTHON_RECORDS:-16777216}"
make -C "$root" --no-print-directory python-venv >/dev/null
mkdir -p "$data"
"$root/.build/python-venv/bin/pip" install --quiet --no-deps --force-reinstall "$root/python"
{
  echo "# Python: mappedrecords beside numpy and itself ($(date -u +%Y-%m-%d), $(nproc) CPUs)"
  echo
  "$root/.build/python-venv/bin/python" "$root/Benchmarks/python/bench.py" "$data" "$records" 7 2>/dev/null
  echo
  echo "Tables where they lie: HTTP on localhost (a Range server in Python, python/tests/servers.py), and the"
  echo "engines over the Arrow PyCapsule stream; 512 MiB of 32-byte records; interleaved rounds."
  echo
  echo "| what | mappedrecords | baseline | ratio | spread (min–max ÷ baseline median) | goal |"
  echo "|---|--:|--:|--:|--:|---|"
  "$root/.build/python-venv/bin/python" "$root/Benchmarks/python/remote.py" "$data" 5 2>/dev/null
} | tee "$root/docs/compare/python.md"
