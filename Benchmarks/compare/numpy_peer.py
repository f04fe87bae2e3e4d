"""The numpy.memmap side of `make compare`: a structured dtype over the same records.

    python3 numpy_peer.py DIR N RUNS     prints one JSON line per measurement and run
"""
import json
import os
import sys
import time

import numpy as np

DTYPE = np.dtype([("id", "<i8"), ("x", "<f8"), ("y", "<f8"), ("flags", "<i4"), ("pad", "<i4")])
LOOP_OPS = 100_000  # the per-element Python loop: 100 k reads
OPEN_REPEATS = 200


def report(system, op, n, run, seconds, ops, check):
    print(json.dumps({"system": system, "op": op, "records": n, "run": run, "seconds": seconds, "ops": ops, "check": float(check)}), flush=True)


def main():
    directory, n, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    source = np.fromfile(f"{directory}/records-{n}", dtype=DTYPE)
    index = np.fromfile(f"{directory}/indices-{n}", dtype="<u4").astype(np.intp)
    path = f"{directory}/numpy-{n}"
    system = "numpy.memmap"
    for run in range(runs + 1):  # run 0 warms up and is not reported
        start = time.perf_counter()
        table = np.memmap(path, dtype=DTYPE, mode="w+", shape=(n,))
        table[:] = source
        del table
        if run:
            report(system, "bulk load", n, run, time.perf_counter() - start, n, 0)
    # The same page-cache state as every other side: written back, dropped, faulted in by the mapping.
    descriptor = os.open(path, os.O_RDWR)
    os.fsync(descriptor)
    os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(descriptor)
    table = np.memmap(path, dtype=DTYPE, mode="r+", shape=(n,))
    xs = table["x"]
    for run in range(runs + 1):
        repeats = max(1, 16_777_216 // n)  # small tables: long enough to time, as the C side does
        start = time.perf_counter()
        total = 0.0
        for _ in range(repeats):
            total += xs.sum()
        if run:
            report(system, "scan", n, run, time.perf_counter() - start, n * repeats, total)
    for run in range(runs + 1):
        start = time.perf_counter()
        total = xs[index].sum()
        if run:
            report(system, "random read", n, run, time.perf_counter() - start, len(index), total)
    for run in range(runs + 1):
        start = time.perf_counter()
        np.add.at(xs, index, 1.0)
        if run:
            report(system, "random update", n, run, time.perf_counter() - start, len(index), xs[0])
    loop = index[:LOOP_OPS].tolist()
    for run in range(runs + 1):
        start = time.perf_counter()
        total = 0.0
        for i in loop:
            total += xs[i]
        if run:
            report("numpy per-element loop", "random read", n, run, time.perf_counter() - start, len(loop), total)
    del xs, table
    for run in range(runs + 1):
        start = time.perf_counter()
        total = 0.0
        for _ in range(OPEN_REPEATS):
            opened = np.memmap(path, dtype=DTYPE, mode="r")
            total += opened["x"][0]
            del opened
        if run:
            report(system, "open to first read", n, run, time.perf_counter() - start, OPEN_REPEATS, total)


if __name__ == "__main__":
    main()
