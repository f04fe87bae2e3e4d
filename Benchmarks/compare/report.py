"""Turns the JSON lines of Benchmarks/compare/run.sh into results.md and compare.png.

    python3 report.py RESULTS.jsonl OUTPUT_DIR
"""
import json
import statistics
import sys

# Per (records, op, system): {round: seconds per op}, for the systems run in interleaved rounds.
ROUNDS = {}

OPS = ["scan", "random read", "bulk load", "random update", "open to first read"]
BASELINE = "C raw mmap"
ORDER = ["C raw mmap", "MappedRecords table", "MappedRecords accessor", "numpy.memmap", "numpy per-element loop",
         "C pread/pwrite", "LMDB", "SQLite"]


def load(path):
    machine, runs, readers, registry = {}, {}, [], []
    for line in open(path):
        row = json.loads(line)
        if "machine" in row:
            machine = row["machine"]
        elif row.get("scaling") == "readers":
            readers.append(row)
        elif row.get("scaling") == "registry":
            registry.append(row)
        else:
            key = (row["records"], row["op"], row["system"])
            runs.setdefault(key, []).append(row["seconds"] / row["ops"])
            if "round" in row:
                ROUNDS.setdefault(key, {})[row["round"]] = row["seconds"] / row["ops"]
    return machine, runs, readers, registry


def round_ratios(key, base_key):
    """Time ÷ the baseline's time in the same round, for every round both ran."""
    mine, base = ROUNDS.get(key, {}), ROUNDS.get(base_key, {})
    return [mine[r] / base[r] for r in sorted(mine) if r in base]


def ratio(key, base_key, medians):
    """The median of the per-round ratios when the systems ran interleaved, else of the medians."""
    ratios = round_ratios(key, base_key)
    if ratios:
        return statistics.median(ratios)
    return medians[key] / medians[base_key]


def unit(op):
    return ("µs", 1e6) if op == "open to first read" else ("ns", 1e9)


def main():
    machine, runs, readers, registry = load(sys.argv[1])
    output = sys.argv[2]
    sizes = sorted({key[0] for key in runs})
    medians = {key: statistics.median(values) for key, values in runs.items()}
    lines = [f"Machine: {machine.get('cpu')}, {machine.get('cores')} cores, {machine.get('kernel')}; "
             f"measured {machine.get('date')} with `make compare`.", ""]
    for size in sizes:
        label = f"{size:,} records ({size * 32 / 2**20:.1f} MiB)"
        lines += [f"### {label}", ""]
        lines += ["Time per record or operation: the median of the runs (min–max), then × the C raw mmap "
                  "time (lower is better). The raw pointer, numpy.memmap and MappedRecords ran in interleaved "
                  "rounds: their ratio is the median of the per-round ratios, with its spread over the rounds "
                  "in brackets; the other systems ran once, after them, and their ratio is of medians.", ""]
        header = "| system | " + " | ".join(OPS) + " |"
        lines += [header, "|---|" + "---:|" * len(OPS)]
        for system in ORDER:
            cells = []
            for op in OPS:
                key = (size, op, system)
                if key not in runs:
                    cells.append("")
                    continue
                name, scale = unit(op)
                values = runs[key]
                base_key = (size, op, BASELINE)
                ratios = round_ratios(key, base_key)
                if ratios and system != BASELINE:
                    shown = f" **{statistics.median(ratios):.2f}×** ({min(ratios):.2f}–{max(ratios):.2f})"
                elif base_key in medians:
                    shown = f" **{medians[key] / medians[base_key]:.2f}×**"
                else:
                    shown = ""
                cells.append(f"{medians[key] * scale:.3g} {name} ({min(values) * scale:.3g}–{max(values) * scale:.3g}){shown}")
            if any(cells):
                lines.append(f"| {system} | " + " | ".join(cells) + " |")
        lines.append("")

    # The bars of issue #6, checked on the largest size.
    big = sizes[-1]
    def median(op, system):
        return medians.get((big, op, system))
    table = "MappedRecords table"
    def to_raw(op, system):
        return ratio((big, op, system), (big, op, BASELINE), medians)
    bars = [
        ("random read: table ≤ 1.05× raw mmap (issue #18)", lambda: to_raw("random read", table), "≤", 1.05),
        ("random update: table ≤ 1.10× raw mmap (issue #18)", lambda: to_raw("random update", table), "≤", 1.10),
        ("random update: accessor ≤ 1.10× raw mmap (issue #18)", lambda: to_raw("random update", "MappedRecords accessor"), "≤", 1.10),
        ("open to first read: table ≤ 1.10× raw mmap (issue #18)", lambda: to_raw("open to first read", table), "≤", 1.10),
        ("random read: numpy gather ÷ table ≥ 1 (table faster)", lambda: median("random read", "numpy.memmap") / median("random read", table), "≥", 1.0),
        ("random read: LMDB get ÷ table ≥ 50", lambda: median("random read", "LMDB") / median("random read", table), "≥", 50),
        ("random read: SQLite lookup ÷ table ≥ 50", lambda: median("random read", "SQLite") / median("random read", table), "≥", 50),
        ("scan: table throughput ÷ raw ≥ 0.9", lambda: 1 / to_raw("scan", table), "≥", 0.9),
        ("scan: numpy sum ÷ table ≥ 1 (table as fast or faster)", lambda: median("scan", "numpy.memmap") / median("scan", table), "≥", 1.0),
        ("bulk load: LMDB ÷ table ≥ 20", lambda: median("bulk load", "LMDB") / median("bulk load", table), "≥", 20),
        ("bulk load: SQLite ÷ table ≥ 20", lambda: median("bulk load", "SQLite") / median("bulk load", table), "≥", 20),
    ]
    # A bar whose systems did not run (COMPARE_ROUNDS_ONLY) is left out.
    checks = []
    for name, value, sense, limit in bars:
        try:
            checks.append((name, value(), sense, limit))
        except (TypeError, KeyError, ZeroDivisionError):
            pass
    lines += [f"### The bars, on {big:,} records", "", "| bar | measured | met |", "|---|--:|:-:|"]
    for name, value, sense, limit in checks:
        met = value <= limit if sense == "≤" else value >= limit
        lines.append(f"| {name} | {value:.2f} | {'yes' if met else '**no**'} |")
    lines.append("")

    if readers:
        lines += ["### Readers scanning one table while a writer appends (3 s, batches of 1000)", "",
                  "| readers | aggregate scan, M records/s | writer appends, M records/s |", "|--:|--:|--:|"]
        for count in sorted({row["readers"] for row in readers}):
            rows = [row for row in readers if row["readers"] == count]
            scanned = sum(row["records"] / row["seconds"] for row in rows if row["role"] == "reader")
            written = sum(row["records"] / row["seconds"] for row in rows if row["role"] == "writer")
            lines.append(f"| {count} | {scanned / 1e6:,.0f} | {written / 1e6:,.1f} |")
        lines.append("")
    if registry:
        lines += ["### Registry: openExisting + close of a name another process holds, with more names registered", "",
                  "Beside a raw open, fstat, mmap, munmap and close of the same file, alternating in one loop.", "",
                  "| names | median µs | p10–p90 µs | raw open…close µs | ratio to raw | ratio to the smallest registry | registering the names (s) |",
                  "|--:|--:|--:|--:|--:|--:|--:|"]
        smallest = registry[0]["median"]
        for row in registry:
            raw = row.get("raw")
            to_raw = f"{row['median'] / raw:.2f}" if raw else ""
            lines.append(f"| {row['names']:,} | {row['median'] * 1e6:.1f} | {row['p10'] * 1e6:.1f}–{row['p90'] * 1e6:.1f} | "
                         f"{raw * 1e6:.1f} | {to_raw} | {row['median'] / smallest:.2f} | {row.get('fill_seconds', 0):.1f} |"
                         if raw else f"| {row['names']:,} | {row['median'] * 1e6:.0f} | {row['p10'] * 1e6:.0f}–{row['p90'] * 1e6:.0f} | | | | |")
        lines.append("")
    with open(f"{output}/results.md", "w") as file:
        file.write("\n".join(lines))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axes = plt.subplots(1, len(sizes), figsize=(7 * len(sizes), 5), squeeze=False)
    for axis, size in zip(axes[0], sizes):
        systems = [s for s in ORDER if any((size, op, s) in medians for op in OPS)]
        width = 0.8 / len(systems)
        for i, system in enumerate(systems):
            ratios = [ratio((size, op, system), (size, op, BASELINE), medians) if (size, op, system) in medians else 0 for op in OPS]
            axis.bar([x + i * width for x in range(len(OPS))], ratios, width, label=system)
        axis.set_yscale("log")
        axis.axhline(1, color="black", linewidth=0.8)
        axis.set_xticks([x + 0.4 - width / 2 for x in range(len(OPS))], OPS, rotation=15)
        axis.set_ylabel("time ÷ C raw mmap (log scale, lower is better)")
        axis.set_title(f"{size:,} records of 32 bytes")
    axes[0][0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(f"{output}/compare.png", dpi=110)


if __name__ == "__main__":
    main()
