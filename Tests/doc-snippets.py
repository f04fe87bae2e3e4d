"""Type-checks every Swift code block of the DocC articles, the README and docs/ against the built modules.

    python3 Tests/doc-snippets.py BUILD_DIR OUTPUT_DIR

`make docs` (and so `make test`) runs it after the debug build: an article whose example no
longer compiles fails the build, as a broken symbol link does. Each block becomes one file of
top-level code (as a `main.swift`: declarations and statements, `try` and `await` allowed),
preceded by the imports of the library modules and a prelude that declares what the
fragments take as given: the record `Trade` of "Getting started" (unless the block declares its
own), and, unless the block declares them, `trade`, `batch`, `moreTrades`, `reader` and
`handle(_:)`. It is type-checked with the
package's macro plug-in, in Swift 6 mode; nothing runs.

A block is skipped only when the line before its fence is `<!-- not compiled: WHY -->`.
"""
import pathlib
import re
import subprocess
import sys

PRELUDE_IMPORTS = "import MappedRegistry\nimport MemoryMappedFiles\nimport NamedTables\nimport RecordTable\n"
PRELUDE_TRADE = """
@MappedRecord
struct Trade {
    var id: Int64
    var price: Double
    var qty: Int32
    var side: UInt8
}
"""
PRELUDE_VALUES = {
    "trade": "let trade = Trade(id: 1, price: 101.5, qty: 10, side: 0)\n",
    "batch": "let batch = [Trade(id: 2, price: 99.0, qty: 5, side: 1)]\n",
    "moreTrades": "let moreTrades = [Trade(id: 2, price: 99.0, qty: 5, side: 1)]\n",
    "reader": "let reader = try RecordTable<Trade>.open(path: \"trades.mrec\")\n",
}
TRADE_WITH_DEFAULTS = "\nextension Trade { init(id: Int64, price: Double, qty: Int32, side: UInt8) " \
    "{ self.init(venue: 0, id: id, cost: price, qty: Int64(qty), side: side) } }\n"


def blocks(path: pathlib.Path):
    lines = path.read_text().splitlines()
    index = 0
    while index < len(lines):
        if lines[index].strip() == "```swift":
            skipped = index > 0 and lines[index - 1].strip().startswith("<!-- not compiled")
            start = index + 1
            index += 1
            while lines[index].strip() != "```":
                index += 1
            if not skipped:
                yield start + 1, "\n".join(lines[start:index])
        index += 1


def main() -> int:
    build, output = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    root = pathlib.Path(__file__).resolve().parent.parent
    output.mkdir(parents=True, exist_ok=True)
    sources = sorted(root.glob("Sources/*/*.docc/*.md")) + [root / "README.md"] + sorted(root.glob("docs/*.md"))
    failures, count = 0, 0
    for source in sources:
        for line, code in blocks(source):
            count += 1
            imports = "".join(f"{l}\n" for l in code.splitlines() if l.startswith("import "))
            body = "\n".join(l for l in code.splitlines() if not l.startswith("import "))
            declares_trade = re.search(r"\bstruct Trade\b", body) is not None
            prelude = PRELUDE_IMPORTS + imports
            if declares_trade:
                prelude += TRADE_WITH_DEFAULTS if "RecordDefaults" in body else ""
            else:
                prelude += PRELUDE_TRADE
            prelude += "func handle(_ trade: Trade) {}\n"
            for name, declaration in PRELUDE_VALUES.items():
                if not re.search(rf"\b(let|var) {name}\b", body):
                    prelude += declaration
            file = output / f"{source.parent.name}-{source.stem}-{line}" / "main.swift"
            file.parent.mkdir(exist_ok=True)
            file.write_text(f"{prelude}\n// {source.relative_to(root)}:{line}\n{body}\n")
            command = [
                "swiftc", "-typecheck", "-swift-version", "6", "-module-name", "DocSnippet",
                "-I", str(build / "Modules"),
                "-Xcc", f"-fmodule-map-file={build / 'CMappedShims.build' / 'module.modulemap'}",
                "-Xcc", f"-fmodule-map-file={root / 'Sources' / 'CLMDB' / 'module.modulemap'}",
                "-load-plugin-executable", f"{build / 'MappedRecordMacros-tool'}#MappedRecordMacros",
                str(file),
            ]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                failures += 1
                print(f"doc-snippets: {source.relative_to(root)}:{line}: the example does not compile:")
                print(result.stdout + result.stderr)
    print(f"doc-snippets: {count - failures} of {count} Swift examples in the DocC articles, the README and docs/ compile")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
