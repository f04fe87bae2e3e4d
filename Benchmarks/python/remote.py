"""The remote and engine figures of `make compare` (docs/PERFORMANCE.md, "Python: tables where
they lie"), each beside its baseline in the same run, interleaved:
- read_dataframe over HTTP on localhost with 2 Dask workers, against bare fsspec cat_ranges of
  the same byte ranges (the bytes a partition reads), both served by the same Range server;
- Polars and DuckDB aggregating a table through the Arrow PyCapsule stream, against the same
  engine over a numpy dict of the same columns.
usage: remote.py DIR ROUNDS   (prints Markdown rows)"""

import os
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python", "tests"))  # the tests' Range server

import mappedrecords  # noqa: E402
from mappedrecords.dask import read_dataframe  # noqa: E402
from servers import RangeServer  # noqa: E402

DTYPE = np.dtype([("id", "<i8"), ("side", "<i4"), ("qty", "<i4"), ("price", "<f8"), ("venue", "<u8")])


def timed(function):
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def row(label, ours, baseline, goal, unit="ms"):
    median_ours, median_base = statistics.median(ours), statistics.median(baseline)
    ratio = median_base / median_ours if unit == "throughput" else median_ours / median_base
    spread = f"{min(ours) / median_base:.2f}–{max(ours) / median_base:.2f}"
    print(f"| {label} | {median_ours * 1e3:.0f} ms | {median_base * 1e3:.0f} ms | **{ratio:.2f}×** | {spread} | {goal} |",
          flush=True)


def main():
    directory, rounds = sys.argv[1], int(sys.argv[2])
    root = os.path.join(directory, "remote-bench")
    os.makedirs(root, exist_ok=True)
    path = os.path.join(root, "big.mrec")
    n = (512 << 20) // DTYPE.itemsize  # 512 MiB of records
    if os.path.exists(path):
        os.unlink(path)
    with mappedrecords.create(path, DTYPE, durability="none", capacity=n) as writer:
        for first in range(0, n, 1 << 21):
            count = min(1 << 21, n - first)
            records = np.zeros(count, dtype=DTYPE)
            records["id"] = np.arange(first, first + count)
            records["side"] = records["id"] % 2
            records["qty"] = records["id"] % 100
            records["price"] = records["id"] * 0.01
            writer.append(records)
    server = RangeServer(root)
    url = f"{server.url}/big.mrec"
    per_partition = 1 << 21  # 64 MiB per partition, 8 partitions
    try:
        import distributed
        import fsspec

        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster, distributed.Client(cluster) as client:
            frame = read_dataframe([url], records_per_partition=per_partition)
            ranges = [p.byte_range for p in mappedrecords.dataset([url], records_per_partition=per_partition).partitions]
            expected = float(frame["qty"].sum().compute())

            def ours():
                assert float(frame["qty"].sum().compute()) == expected

            def bare():
                # The same byte ranges, fetched by the same 2 workers with bare fsspec (one task per range).
                def fetch(start_end):
                    start, end = start_end
                    return len(fsspec.filesystem("http").cat_file(url, start=start, end=end))
                sizes = client.gather(client.map(fetch, ranges, pure=False))
                assert sum(sizes) == n * DTYPE.itemsize

            times = {"ours": [], "bare": []}
            for _ in range(rounds):
                times["ours"].append(timed(ours))
                times["bare"].append(timed(bare))
        row(f"read_dataframe over HTTP, 512 MiB, 2 workers, vs bare fsspec ranged reads of the same ranges "
            f"(throughput ratio; {server.requests('big.mrec')} requests)", times["ours"], times["bare"], "≥ 0.8×",
            unit="throughput")

        # Engines over the capsule against the same engine over a numpy dict.
        import duckdb
        import polars as pl

        table = mappedrecords.open(path)
        # The baseline's columns are contiguous copies made before timing: the engine's best case.
        numbers = {name: np.ascontiguousarray(table.records[name]) for name in DTYPE.names}
        views = table.columns()  # what a user has without the capsule: strided views of the records
        query = "select side, sum(qty) from {} group by side"

        def duck_capsule():
            t = table  # noqa: F841 - DuckDB finds the variable by name in its caller's frame
            return duckdb.sql(query.format("t")).fetchall()

        def duck_numpy():
            d = numbers  # noqa: F841
            return duckdb.sql(query.format("d")).fetchall()

        def duck_views():
            v = views  # noqa: F841
            return duckdb.sql(query.format("v")).fetchall()

        assert sorted(duck_capsule()) == sorted(duck_numpy())
        times = {k: [] for k in ("pl_capsule", "pl_numpy", "pl_views", "duck_capsule", "duck_numpy", "duck_views")}
        for _ in range(rounds):
            times["pl_capsule"].append(timed(lambda: pl.DataFrame(table).group_by("side").agg(pl.col("qty").sum())))
            times["pl_numpy"].append(timed(lambda: pl.DataFrame(numbers).group_by("side").agg(pl.col("qty").sum())))
            times["pl_views"].append(timed(lambda: pl.DataFrame(views).group_by("side").agg(pl.col("qty").sum())))
            times["duck_capsule"].append(timed(duck_capsule))
            times["duck_numpy"].append(timed(duck_numpy))
            times["duck_views"].append(timed(duck_views))
        row(f"Polars group-by sum over the capsule, vs Polars over a numpy dict of the same {len(DTYPE.names)} columns",
            times["pl_capsule"], times["pl_numpy"], "≤ 1.5×")
        row(f"DuckDB group-by sum over the capsule, vs DuckDB over a numpy dict of the same {len(DTYPE.names)} columns",
            times["duck_capsule"], times["duck_numpy"], "≤ 1.5×")
        row("Polars over the capsule, vs Polars over table.columns() (strided views of the same records)",
            times["pl_capsule"], times["pl_views"], "(≤ 1.5×)")
        row("DuckDB over the capsule, vs DuckDB over table.columns() (strided views of the same records)",
            times["duck_capsule"], times["duck_views"], "(≤ 1.5×)")
        table.close()
    finally:
        server.close()
        os.unlink(path)
        os.rmdir(root)


if __name__ == "__main__":
    main()
