#!/usr/bin/env bash
# `make perfgate`: instructions per operation of the hot paths, counted by callgrind (valgrind),
# against the committed baseline Tests/PerfGate/baseline.txt; fails when one grows more than
# 5 %. Instruction counts are repeatable where times are not: the same binary and input give the
# same count whatever else the machine does. `make perfgate UPDATE=1` rewrites the baseline; do it
# in a commit of its own that says why.
#
# Each operation runs twice, N and 2N times, in its own directory; the difference divided by N
# is the count per operation, so start-up and set-up cancel out.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
baseline="$root/Tests/PerfGate/baseline.txt"
scratch="$root/.build-perfgate"
limit_percent="${PERFGATE_LIMIT_PERCENT:-5}"
command -v valgrind >/dev/null || { echo "perfgate: valgrind is missing (make deps installs it)"; exit 1; }
swift build -c release --disable-default-traits --scratch-path "$scratch" --product mapped-perfgate >/dev/null
binary="$scratch/release/mapped-perfgate"
work="$(mktemp -d "${TMPDIR:-/tmp}/mapped-records-perfgate.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# operation and N (one operation of append-batch is 1,000 records, of scan 65,536)
operations=(
  "random-read 20000"
  "random-read-unchecked 20000"
  "random-read-raw 20000"
  "update 20000"
  "append-one 20000"
  "append-one-raw 20000"
  "append-batch 20"
  "scan 4"
  "open-first-read 40"
  "registry-lookup 40"
  "registry-lookup-raw 40"
)

instructions() {  # OPERATION N: the total callgrind counts for one run
  rm -rf "$work/run" && mkdir "$work/run"
  SWIFT_DETERMINISTIC_HASHING=1 valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" \
    "$binary" "$1" "$2" "$work/run" >/dev/null 2>"$work/valgrind.err" || { cat "$work/valgrind.err"; exit 1; }
  sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$work/valgrind.err"
}

declare -A expected=()
if [[ -f "$baseline" ]]; then
  while read -r name value _; do
    [[ -z "$name" || "$name" == \#* ]] && continue
    expected[$name]="$value"
  done <"$baseline"
fi

failed=0
current=""
printf '| operation | instructions per operation | baseline | change |\n|---|--:|--:|--:|\n'
for entry in "${operations[@]}"; do
  read -r name n <<<"$entry"
  once="$(instructions "$name" "$n")"
  twice="$(instructions "$name" $((2 * n)))"
  per="$(awk -v a="$once" -v b="$twice" -v n="$n" 'BEGIN { printf "%.1f", (b - a) / n }')"
  current+="$name $per"$'\n'
  if [[ -n "${expected[$name]:-}" ]]; then
    base="${expected[$name]}"
    change="$(awk -v a="$per" -v b="$base" 'BEGIN { printf "%+.1f %%", (a - b) * 100 / b }')"
    if awk -v a="$per" -v b="$base" -v l="$limit_percent" 'BEGIN { exit !(a > b * (100 + l) / 100) }'; then
      failed=1
      change="$change **over $limit_percent %**"
    fi
  else
    base="(none)"
    change=""
  fi
  printf '| %s | %s | %s | %s |\n' "$name" "$per" "$base" "$change"
done

if [[ "${UPDATE:-0}" == 1 ]]; then
  {
    echo "# Instructions per operation (make perfgate; Tests/PerfGate/run.sh). Rewritten by"
    echo "# 'make perfgate UPDATE=1' in a commit that says why."
    printf '%s' "$current"
  } >"$baseline"
  echo "perfgate: wrote $baseline"
  exit 0
fi
if (( failed )); then
  echo "perfgate: an operation needs more than $limit_percent % more instructions than the baseline" >&2
  exit 1
fi
echo "perfgate: every operation within $limit_percent % of the baseline"
