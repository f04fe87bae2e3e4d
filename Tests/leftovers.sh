#!/usr/bin/env bash
# Fails the test run if it left anything in /tmp or /dev/shm (issue #12, item 13).
#   leftovers.sh before FILE   records what is there now
#   leftovers.sh after FILE    lists what appeared since, and fails if anything did
set -euo pipefail
list() { for place in /tmp /dev/shm; do ls -A "$place" 2>/dev/null | sed "s|^|$place/|"; done | sort; }
case "${1:-}" in
  before) list > "$2" ;;
  after)
    new=$(comm -13 "$2" <(list) || true)
    if [ -n "$new" ]; then
      echo "error: the tests left these behind (each test must clean up after itself):"
      echo "$new" | sed 's/^/  /'
      exit 1
    fi
    echo "leftovers: none in /tmp or /dev/shm" ;;
  *) echo "usage: $0 before|after FILE" >&2; exit 2 ;;
esac
