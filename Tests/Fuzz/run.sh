#!/usr/bin/env bash
# `make fuzz SECONDS=N`: each fuzz target for N seconds under libFuzzer with AddressSanitizer,
# starting from the seed corpus in Tests/FuzzCorpus (docs/RELIABILITY.md). Crashes land in
# .build-fuzz/crashes/; copy a fixed one into the corpus so that `swift test` replays it.
set -euo pipefail
seconds="${1:-60}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
scratch="$root/.build-fuzz"
cd "$root"
# Without the macro trait: the fuzz targets need no macro, and the sanitizer flags would also
# reach the macro's compiler plug-in, a host program that does not link with libFuzzer.
mkdir -p "$scratch"
build=(swift build --scratch-path "$scratch" --disable-default-traits)
if ! "${build[@]}" --product mapped-fuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -DMAPPED_FUZZING > "$scratch/build.log" 2>&1; then
  tail -30 "$scratch/build.log"
  echo "fuzz: the build failed; see $scratch/build.log"
  exit 1
fi
binary="$("${build[@]}" --show-bin-path)/mapped-fuzz"
mkdir -p "$scratch/crashes"
status=0
for target in table-file record-decoder registry-entry schema-text; do
  work="$scratch/corpus/$target"
  mkdir -p "$work"
  cp -n Tests/FuzzCorpus/"$target"/* "$work"/ 2>/dev/null || true
  log="$scratch/$target.log"
  if SWIFT_BACKTRACE=enable=no FUZZ_TARGET="$target" "$binary" "$work" -max_total_time="$seconds" \
       -rss_limit_mb=2048 -timeout=10 -max_len=16384 -print_final_stats=1 \
       -artifact_prefix="$scratch/crashes/$target-" >"$log" 2>&1; then
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
    echo "fuzz $target: ${seconds}s, $runs inputs, 0 crashes, hangs or OOMs"
  else
    echo "fuzz $target: FAILED; see $log and $scratch/crashes/"
    tail -30 "$log"
    status=1
  fi
done
exit $status
