"""Many tables as one Dask DataFrame, read where they lie.

Each partition is a range of records of one file. The graph holds paths and ranges, never
data: each task opens its file on its worker and maps only its range (Dask's documented recipe
for memory-mapped arrays, one ``np.memmap`` per chunk). Across machines, either each node keeps
its own tables and Dask's worker resources put the tasks there, or the tables sit on a shared
file system (docs/PYTHON.md; mind docs/CAVEATS.md on mapped files over NFS).
"""

from __future__ import annotations

import glob as _glob
import os
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _format
from ._table import Table

SORTED_BY_KEY = "sorted_by"


def _expand(paths_or_glob: Union[str, Sequence[str]]) -> List[str]:
    if isinstance(paths_or_glob, (str, os.PathLike)):
        text = os.fspath(paths_or_glob)
        paths = sorted(_glob.glob(text)) if any(c in text for c in "*?[") else [text]
    else:
        paths = [os.fspath(p) for p in paths_or_glob]
    if not paths:
        raise FileNotFoundError(f"no table matches {paths_or_glob!r}")
    return paths


def _frame(records: np.ndarray, schema, index: Optional[str]):
    """A pandas DataFrame of the records: numbers and bools as numpy columns, char as str."""
    import pandas as pd

    from ._arrow import column_to_arrow

    columns = {}
    for field in schema.fields:
        column = records[field.name]
        if field.type in ("char", "bytes") or field.count > 1:
            columns[field.name] = column_to_arrow(column, field).to_pandas()
        else:
            columns[field.name] = np.ascontiguousarray(column)
    frame = pd.DataFrame(columns)
    return frame.set_index(index) if index else frame


def load_partition(part: Tuple[str, int, int, int, Tuple, Optional[str]]):
    """One task: maps records [start, stop) of one file on this worker and returns them as pandas."""
    path, start, stop, data_offset, fields, index = part
    schema = _format.Schema(tuple(_format.Field(*f) for f in fields[1]), fields[0], fields[2])
    records = np.memmap(path, dtype=schema.dtype, mode="r", offset=data_offset + start * schema.stride, shape=(stop - start,))
    return _frame(records, schema, index)


def read_dataframe(paths_or_glob, records_per_partition: int = 1 << 20):
    """A ``dask.dataframe.DataFrame`` of every committed record of the tables (a list of paths or
    a glob), one partition per ``records_per_partition`` records of a file.

    The tables must share a schema. Each file's header is read here, once (count by the live-count
    rule, so a table being appended to is read up to its committed count at this moment). When
    every table's metadata has ``sorted_by=FIELD`` and the ranges follow each other in order, the
    frame is indexed by that field and its divisions are known.
    """
    import dask.dataframe as dd

    if records_per_partition <= 0:
        raise ValueError("records_per_partition must be positive")
    paths = _expand(paths_or_glob)
    parts = []
    schema = None
    sorted_fields = set()
    boundaries = []
    for path in paths:
        with Table(path) as table:
            if schema is None:
                schema = table.schema
            elif table.schema != schema:
                raise _format.SchemaError(path, f"its schema ({table.schema.describe()}) differs from "
                                                f"{paths[0]}'s ({schema.describe()})")
            sorted_fields.add(table.metadata.get(SORTED_BY_KEY))
            count = len(table)
            fields = (schema.stride, tuple((f.name, f.type, f.offset, f.count) for f in schema.fields), schema.alignment)
            for start in range(0, count, records_per_partition):
                stop = min(count, start + records_per_partition)
                parts.append([os.path.abspath(path), start, stop, table.header.data_offset, fields])
                sorted_by = table.metadata.get(SORTED_BY_KEY)
                if sorted_by in table.dtype.names:
                    column = table.records[sorted_by]
                    boundaries.append((column[start].item(), column[stop - 1].item()))
    index = next(iter(sorted_fields)) if len(sorted_fields) == 1 else None
    if index is not None and index not in [f.name for f in schema.fields]:
        index = None
    divisions = None
    if index is not None and parts and len(boundaries) == len(parts):
        firsts = [first for first, _ in boundaries]
        candidate = firsts + [boundaries[-1][1]]
        if all(a <= b for a, b in zip(candidate, candidate[1:])) and all(a < b for a, b in zip(firsts, firsts[1:])):
            divisions = tuple(candidate)
        else:
            index = None
    parts = [tuple(p) + (index,) for p in parts]
    meta = _frame(np.zeros(0, dtype=schema.dtype), schema, index)
    if not parts:
        return dd.from_pandas(meta, npartitions=1)
    return dd.from_map(load_partition, parts, meta=meta, divisions=divisions, enforce_metadata=False)
