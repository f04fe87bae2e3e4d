#!/usr/bin/env bash
# `make docs`: the DocC documentation of the three library modules, from their catalogs
# (Sources/<Module>/<Module>.docc) and the symbol graphs of the debug build, with every DocC
# warning an error (a broken symbol link, an undocumented parameter). Writes
# .build/docs/<Module>.doccarchive; `docc preview` serves one. Then every Swift example in the
# articles and the README is type-checked against the same build (Tests/doc-snippets.py).
#
# It uses the toolchain's own `swift symbolgraph-extract` and `docc` on the modules the build
# already made, rather than the swift-docc-plugin: no second build with other flags, and no
# plug-in dependency for the package's users.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
swift build --target NamedTables >/dev/null  # builds the library modules and the macro plug-in
build="$(swift build --show-bin-path)"
graphs="$root/.build/symbol-graphs"
output="$root/.build/docs"
rm -rf "$graphs" "$output"
mkdir -p "$output"
status=0
for module in MemoryMappedFiles RecordTable MappedRegistry; do
  mkdir -p "$graphs/$module"
  swift symbolgraph-extract -module-name "$module" -I "$build/Modules" -target "$(uname -m)-unknown-linux-gnu" \
    -minimum-access-level public -output-dir "$graphs/$module" \
    -Xcc -fmodule-map-file="$build/CMappedShims.build/module.modulemap" \
    -Xcc -fmodule-map-file="$root/Sources/CLMDB/module.modulemap"
  if docc convert "Sources/$module/$module.docc" --additional-symbol-graph-dir "$graphs/$module" \
    --fallback-display-name "$module" --fallback-bundle-identifier "org.mappedrecords.$module" \
    --output-path "$output/$module.doccarchive" --warnings-as-errors >"$output/$module.log" 2>&1; then
    echo "docs: $module: no warnings ($output/$module.doccarchive)"
  else
    cat "$output/$module.log"
    echo "docs: $module: DocC reported problems (above)" >&2
    status=1
  fi
done
python3 "$root/Tests/doc-snippets.py" "$build" "$root/.build/doc-snippets" || status=1
exit "$status"
