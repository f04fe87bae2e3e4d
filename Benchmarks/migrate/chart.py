"""Draws docs/compare/migrate.png from the table Benchmarks/migrate/run.sh printed.

    python3 Benchmarks/migrate/chart.py docs/compare/migrate.md docs/compare/migrate.png

Throughput in MB/s of the source table (median of the rounds) for plain `cp`, `cp` followed by
an fsync of the copy (the fair baseline: the migration fsyncs before it renames) and
`mrec migrate`, with a warm and (as root) a cold page cache.
"""
import re
import statistics
import sys
from collections import defaultdict


def main() -> None:
    report, output = sys.argv[1], sys.argv[2]
    text = open(report).read()
    size_mib = float(re.search(r"of 32 bytes \((\d+) MiB\)", text).group(1))
    seconds: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 5 or cells[0] not in ("warm", "cold"):
            continue
        for label, value in zip(("cp", "cp + fsync", "mrec migrate"), cells[2:5]):
            seconds[cells[0]][label].append(float(value))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = ("cp", "cp + fsync", "mrec migrate")
    caches = list(seconds)
    figure, axis = plt.subplots(figsize=(7, 4.5))
    width = 0.8 / len(labels)
    for i, label in enumerate(labels):
        rates = [size_mib * 1.048576 / statistics.median(seconds[cache][label]) for cache in caches]
        bars = axis.bar([x + i * width for x in range(len(caches))], rates, width, label=label)
        axis.bar_label(bars, fmt="%.0f", fontsize=8)
    axis.set_xticks([x + width for x in range(len(caches))], [f"{cache} page cache" for cache in caches])
    axis.set_ylabel("MB/s of the source table (median of rounds, higher is better)")
    axis.set_title(f"Migrating {size_mib:.0f} MiB of 32-byte records to 40 bytes")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(output, dpi=100)


if __name__ == "__main__":
    main()
