"""A user's program, checked with ``mypy --strict`` against the installed package (make python-test):
the public API's type hints must be enough for it, with no ``Any`` leaking into its own code."""

from __future__ import annotations

import numpy as np

import mappedrecords
from mappedrecords.dask import read_dataframe

TRADE = np.dtype([("id", "<i8"), ("price", "<f8")])


def write(path: str) -> int:
    with mappedrecords.create(path, TRADE, metadata={"sorted_by": "id"}) as writer:
        writer.append(np.zeros(3, dtype=TRADE))
        writer.commit()
    with mappedrecords.open(path, mode="a") as appender:
        appender.append(np.zeros(2, dtype=TRADE))
        return len(appender)


def read(path_or_url: str) -> float:
    with mappedrecords.open(path_or_url, storage_options={"anon": True}) as table:
        prices: np.ndarray = table.read(0, len(table), columns=["price"])["price"]
        columns: dict[str, np.ndarray] = table.columns(["id"])
        return float(prices.sum()) + float(len(columns["id"]))


def many(glob: str) -> int:
    ds: mappedrecords.Dataset = mappedrecords.dataset(glob)
    frame = read_dataframe(glob, records_per_partition=1000, columns=["price"])
    partitions: int = frame.npartitions  # dask itself is untyped
    return len(ds) + partitions


def failures(path: str) -> str:
    try:
        mappedrecords.open(path).close()
    except mappedrecords.FormatError as error:
        return f"{error.code}: {error.path}: {error.rule}"
    return "ok"
