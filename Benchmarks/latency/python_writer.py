"""The Python writer of `make latency`: creates PATH (Stamp records: sent ns, sequence), prints
"created", waits for a line, then appends SAMPLES records one at a time, INTERVAL_US apart, each
stamped with CLOCK_MONOTONIC just before it is appended (the Swift reader's clock).
usage: python_writer.py PATH SAMPLES INTERVAL_US"""

import sys
import time

import numpy as np

import mappedrecords

STAMP = np.dtype([("sentNanoseconds", "<u8"), ("sequence", "<u8")])


def main() -> None:
    path, samples, interval = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) * 1000
    with mappedrecords.create(path, STAMP, durability="none", capacity=samples + 16) as writer:
        print("created" if writer.has_doorbell else "created without a doorbell", flush=True)
        sys.stdin.readline()
        record = np.zeros(1, dtype=STAMP)
        next_at = time.monotonic_ns() + interval
        for sequence in range(samples):
            while (delay := next_at - time.monotonic_ns()) > 0:
                time.sleep(delay / 1e9)
            record["sequence"] = sequence
            record["sentNanoseconds"] = time.monotonic_ns()
            writer.append(record)
            next_at += interval


if __name__ == "__main__":
    main()
