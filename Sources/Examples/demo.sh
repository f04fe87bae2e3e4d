#!/usr/bin/env bash
# The demo that `make demo` runs: `mrec demo`, then the seed's examples as real processes.
set -euo pipefail
bin="$1"
dir="$2"
mkdir -p "$dir"

echo "== mrec demo: a record table shared by a writer and two readers, by name"
"$bin/mrec" demo --directory "$dir/mrec-demo"
echo
image="$dir/ExtremelyLargeImage.data"
rm -f "$image"

show() {  # show OFFSET LABEL: the first color at OFFSET, read back with od (no mapping involved)
  printf '  %-44s' "$2"
  od -A d -t d2 -j "$1" -N 8 "$image" | head -1
}

echo "== 1. Process A maps $image and brightens 32 MiB at offset 16 MiB (the seed's sizes / 16)"
"$bin/brighten-image" --file "$image"
echo
echo "== 2. Process B opens the same file and brightens 1.5 MB at offset 4,000,000"
"$bin/brighten-region" --file "$image"
echo
echo "== 3. The file on disk, read with od (offset, then red green blue alpha):"
show 0 "outside both regions:"
show 4000000 "process B's region (+20):"
show 16777216 "process A's region (+10):"
show $((16777216 + 33554432 - 8)) "last color of A's region (+10):"
show $((16777216 + 33554432)) "just after A's region:"
echo
echo "== 4. Process A again: its region goes from 10 to 20"
"$bin/brighten-image" --file "$image"
echo
echo "== mrec reads the raw image too: mrec dump --layout 'red:i16,green:i16,blue:i16,alpha:i16' --range 2097151...2097152"
"$bin/mrec" dump --layout 'red:i16,green:i16,blue:i16,alpha:i16' --range 2097151...2097152 "$image"
echo
echo "== 5. The seed's non-persisted example: Process A, B and C share memory and a mutex by name"
export MAPPED_REGISTRY="$PWD/$dir/registry"
rm -rf "$MAPPED_REGISTRY"
# Process A waits for ENTER twice; B and C run in between, as in three terminals.
{ sleep 1; "$bin/seed-process-b"; echo; sleep 0.5; "$bin/seed-process-c"; echo; } | "$bin/seed-process-a"
echo
echo "The image is at $image; the registry was $MAPPED_REGISTRY."
echo "'brighten-image --full' uses the seed's 512 MiB region at 256 MiB."
