"""Many tables as one Dask DataFrame, read where they lie: local paths, ``file://``, or any
fsspec URL (``s3://``, ``gs://``, ``az://``, ``http(s)://``, ``memory://``), with globs.

Each partition is a range of records of one file. The graph holds URLs, byte ranges and the
file's planned identity, never data: each task maps its range (local files, zero-copy, as
Dask's recipe for memory-mapped arrays does) or fetches it in one ranged request of whole
records (remote files) and decodes it with ``np.frombuffer``. A table is row-major, so the
bytes of one column are interleaved with the others: a column projection reads the whole range
and keeps the columns asked for (per-column ranges would be one request per record).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

import numpy as np

from . import _format
from ._dataset import SORTED_BY_KEY, Partition, PathsOrGlob, plan, read_partition
from ._interop import check_columns

if TYPE_CHECKING:
    import dask.dataframe
    import pandas

__all__ = ["read_dataframe", "load_partition", "SORTED_BY_KEY"]


def _frame(records: np.ndarray, schema: _format.Schema, index: Optional[str],
           columns: Optional[Sequence[str]]) -> "pandas.DataFrame":
    """A pandas DataFrame of the records: numbers and bools as numpy columns, char as str."""
    import pandas as pd

    from ._arrow import column_to_arrow

    wanted = list(columns) if columns is not None else [f.name for f in schema.fields]
    if index is not None and index not in wanted:
        wanted.append(index)
    frame_columns = {}
    for field in schema.fields:
        if field.name not in wanted:
            continue
        column = records[field.name]
        if field.type in ("char", "bytes") or field.count > 1:
            frame_columns[field.name] = column_to_arrow(column, field).to_pandas()
        else:
            frame_columns[field.name] = np.ascontiguousarray(column)
    frame = pd.DataFrame(frame_columns, columns=[n for n in wanted])
    return frame.set_index(index) if index else frame


def load_partition(part: Partition, index: Optional[str] = None,
                   columns: Optional[Sequence[str]] = None) -> "pandas.DataFrame":
    """One task: reads one partition where it lies (a mapped range of a local file, or one
    ranged request) and returns it as pandas."""
    wanted = None if columns is None else list(columns) + ([index] if index and index not in columns else [])
    return _frame(read_partition(part, wanted), part.schema, index, columns)


def read_dataframe(paths_or_glob: PathsOrGlob, records_per_partition: int = 1 << 20,
                   storage_options: Optional[Mapping[str, Any]] = None,
                   columns: Optional[Sequence[str]] = None) -> "dask.dataframe.DataFrame":
    """A ``dask.dataframe.DataFrame`` of every committed record of the tables (a list of paths or
    URLs, or a glob: ``"s3://bucket/trades/*.mrec"``), one partition per
    ``records_per_partition`` records of a file; of ``columns`` only, if given.

    The tables must share a schema. Each file's header is read here, once, and its count taken
    once by the count rule: a table being appended to is read up to the count committed at this
    moment, and a task whose file was replaced since (another layout, or fewer records) raises
    ``ReplacedError`` or ``TruncatedError`` naming it. ``storage_options`` go to fsspec (and into
    the graph, for the workers); credentials may also come from the environment, as fsspec
    documents. When every table's metadata has ``sorted_by=FIELD`` and the ranges follow each
    other in order, the frame is indexed by that field and its divisions are known.
    """
    import dask.dataframe as dd

    planned = plan(paths_or_glob, records_per_partition, storage_options)
    selected = check_columns(planned.schema, columns)
    index = planned.index
    meta = _frame(np.zeros(0, dtype=planned.schema.dtype), planned.schema, index, selected)
    if not planned.partitions:
        empty: "dask.dataframe.DataFrame" = dd.from_pandas(meta, npartitions=1)  # type: ignore[no-untyped-call]
        return empty
    frame: "dask.dataframe.DataFrame" = dd.from_map(  # type: ignore[no-untyped-call]
        load_partition, planned.partitions, index=index, columns=selected, meta=meta, divisions=planned.divisions,
        enforce_metadata=False)
    return frame
