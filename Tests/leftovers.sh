#!/usr/bin/env bash
# Fails the test run if the tests left anything behind (issue #12, item 13; issue #24, item 9).
#   leftovers.sh before FILE   records what is there now
#   leftovers.sh after FILE    lists what appeared since, and fails if anything did
#
# It looks only at what the tests can make, so that other programs on a shared machine do not
# fail the build: entries in /tmp and /dev/shm whose names carry this project's prefixes (every
# test directory, registry object and fuzz file is named so), and System V shared-memory
# segments (the doorbell's) attached by a process that runs from this checkout (its executable
# or its working directory is here). A doorbell
# segment is marked for removal when it is made, so one that is left means a test process is
# still running.
set -euo pipefail
checkout="$(cd "$(dirname "$0")/.." && pwd)"
prefixes='^(mapped-records|mappedrecords|mrec)'

ours() {
  for place in /tmp /dev/shm; do
    ls -A "$place" 2>/dev/null | grep -E "$prefixes" | sed "s|^|$place/|" || true
  done
  # shmid, cpid, lpid of each segment; keep those whose creator or last user runs from here.
  if [ -r /proc/sysvipc/shm ]; then
    awk 'NR > 1 { print $2, $5, $6 }' /proc/sysvipc/shm | while read -r id creator last; do
      for pid in "$creator" "$last"; do
        exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
        cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null || true)
        if [[ "$exe" == "$checkout"/* || "$cwd" == "$checkout" || "$cwd" == "$checkout"/* ]]; then
          echo "System V segment $id (attached by process $pid: $(tr '\0' ' ' < "/proc/$pid/cmdline" | cut -c1-120))"
          break
        fi
      done
    done
  fi
}

case "${1:-}" in
  before) ours | sort > "$2" ;;
  after)
    new=$(comm -13 "$2" <(ours | sort) || true)
    if [ -n "$new" ]; then
      echo "error: the tests left these behind (each test must clean up after itself):"
      echo "$new" | sed 's/^/  /'
      exit 1
    fi
    echo "leftovers: none of this project's in /tmp, /dev/shm or System V shared memory" ;;
  *) echo "usage: $0 before|after FILE" >&2; exit 2 ;;
esac
