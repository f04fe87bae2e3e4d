"""The Python side of `make compare` (docs/PERFORMANCE.md, "Python"), each figure beside its
baseline in the same run, interleaved:
- open() and a sum of one field over N records, against a bare np.memmap given the dtype and offset;
- to_arrow(), against numpy's own copy of every column;
- a Dask sum over 8 tables with 2 worker processes, against 1.
usage: bench.py DIR N ROUNDS   (prints Markdown)"""

import os
import statistics
import sys
import time

import numpy as np

import mappedrecords
from mappedrecords.dask import read_dataframe

DTYPE = np.dtype({"names": ["id", "value", "check", "flag", "tag"], "formats": ["<i8", "<f8", "<u8", "?", "S7"],
                  "offsets": [0, 8, 16, 24, 25], "itemsize": 32})


def write(path, n, start=0):
    with mappedrecords.create(path, DTYPE, durability="none", capacity=n) as writer:
        for first in range(start, start + n, 1 << 20):
            count = min(1 << 20, start + n - first)
            records = np.zeros(count, dtype=DTYPE)
            records["id"] = np.arange(first, first + count)
            records["value"] = records["id"] * 0.5
            records["tag"] = b"r"
            writer.append(records)


def timed(function):
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def interleaved(rounds, **systems):
    times = {name: [] for name in systems}
    for _ in range(rounds):
        for name, function in systems.items():
            times[name].append(timed(function)[0])
    return times


def row(label, ours, baseline, goal):
    median_ours, median_base = statistics.median(ours), statistics.median(baseline)
    ratio = median_ours / median_base
    spread = f"{min(ours) / median_base:.2f}–{max(ours) / median_base:.2f}"
    print(f"| {label} | {median_ours * 1e3:.1f} ms | {median_base * 1e3:.1f} ms | **{ratio:.2f}×** | {spread} | {goal} |")
    return ratio


def main():
    directory, n, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    path = os.path.join(directory, "python-bench.mrec")
    if os.path.exists(path):
        os.unlink(path)
    write(path, n)
    with mappedrecords.open(path) as table:
        offset = table.header.data_offset
        assert len(table) == n

    def ours_sum():
        with mappedrecords.open(path) as table:
            return float(table.records["value"].sum())

    def memmap_sum():
        records = np.memmap(path, dtype=DTYPE, mode="r", offset=offset, shape=(n,))
        return float(records["value"].sum())

    assert ours_sum() == memmap_sum()
    print(f"Python {sys.version.split()[0]}, numpy {np.__version__}, {n:,} records of {DTYPE.itemsize} bytes, "
          f"median of {rounds} interleaved rounds, warm page cache.")
    print()
    print("| what | mappedrecords | baseline | ratio | spread (min–max ÷ baseline median) | goal |")
    print("|---|--:|--:|--:|--:|---|")
    times = interleaved(rounds, ours=ours_sum, memmap=memmap_sum)
    row("open() + sum of one f64 field, vs np.memmap", times["ours"], times["memmap"], "≤ 1.1×")

    table = mappedrecords.open(path)
    import pyarrow  # noqa: F401 - imported before timing
    times = interleaved(max(3, rounds // 2), ours=table.to_arrow,
                        numpy=lambda: {name: np.ascontiguousarray(table.records[name]) for name in DTYPE.names})
    row("to_arrow(), vs numpy's copy of every column", times["ours"], times["numpy"], "≤ 2×")
    numbers = ["id", "value", "check", "flag"]
    times = interleaved(max(3, rounds // 2), ours=lambda: table.to_arrow(numbers),
                        numpy=lambda: {name: np.ascontiguousarray(table.records[name]) for name in numbers})
    row("to_arrow() of the 4 number and bool columns, vs numpy's copy of them", times["ours"], times["numpy"], "(≤ 2×)")
    table.close()
    os.unlink(path)

    # Dask: 8 tables, a sum of one field, 1 worker process against 2.
    import distributed
    parts = []
    for i in range(8):
        part = os.path.join(directory, f"python-dask-{i}.mrec")
        if os.path.exists(part):
            os.unlink(part)
        write(part, n // 8, start=i * (n // 8))
        parts.append(part)
    expected = float(sum(np.arange(n // 8 * 8) * 0.5))
    results = {}
    for workers in (1, 2):
        with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                distributed.Client(cluster):
            frame = read_dataframe(parts, records_per_partition=n // 8)  # one partition per table
            assert frame["value"].sum().compute() == expected  # warm-up, and the answer
            # A new expression each round (new task keys), so that nothing is reused from the last.
            results[workers] = [timed(lambda: (frame["value"] + float(r)).sum().compute())[0] for r in range(rounds)]
    speedup = statistics.median(results[1]) / statistics.median(results[2])
    print(f"| Dask sum over 8 tables, 2 workers vs 1 | {statistics.median(results[2]) * 1e3:.0f} ms | "
          f"{statistics.median(results[1]) * 1e3:.0f} ms | **{speedup:.2f}× faster** | | ≥ 1.5× faster |")
    for part in parts:
        os.unlink(part)


if __name__ == "__main__":
    main()
