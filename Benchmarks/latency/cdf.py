"""Draws docs/compare/latency-cdf.png from the samples `make latency` measured.

    python3 Benchmarks/latency/cdf.py SAMPLES.csv OUTPUT.png

One panel per case (1 ms cadence, after 100 ms idle): for each reader, the share of appends
visible within a given time (log scale), so the whole distribution shows, not just p50 and p99.
"""
import csv
import sys
from collections import defaultdict


def main() -> None:
    samples_path, output = sys.argv[1], sys.argv[2]
    series: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    with open(samples_path, newline="") as file:
        for row in csv.DictReader(file):
            series[row["case"]][row["reader"]].append(int(row["nanoseconds"]) / 1000)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = list(series)
    figure, axes = plt.subplots(1, len(cases), figsize=(7 * len(cases), 5), squeeze=False)
    for axis, case in zip(axes[0], cases):
        for reader, values in series[case].items():
            values.sort()
            shares = [(i + 1) / len(values) for i in range(len(values))]
            style = "--" if "baseline" in reader else "-"
            axis.step(values, shares, style, where="post", label=f"{reader} (n={len(values)})")
        axis.set_xscale("log")
        axis.set_xlabel("append → visible in the other process (µs, log scale)")
        axis.set_ylabel("share of appends seen within that time")
        axis.set_title(case)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(output, dpi=100)


if __name__ == "__main__":
    main()
