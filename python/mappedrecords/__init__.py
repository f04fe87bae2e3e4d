"""Read, follow and write MappedRecords record tables (docs/FORMAT.md) from Python.

    import mappedrecords
    with mappedrecords.open("points.mrec") as table:
        print(len(table), table.records["x"].sum())

``open`` gives a zero-copy numpy view of the committed records of a local table and follows it
as it grows (``refresh``, ``wait``); given an fsspec URL (``s3://…``, ``http(s)://…``) it reads a
snapshot by byte range. ``open(path, mode="a")`` and ``create`` write tables that Swift and
``mrec`` read; ``dataset`` reads many tables as one; every table and dataset speaks the Arrow
PyCapsule interface (pyarrow, Polars, DuckDB); ``mappedrecords.dask.read_dataframe`` reads many
tables where they lie, in parallel.
"""

from __future__ import annotations

import os
from typing import Any, Literal, Mapping, Optional, Union, overload

from ._dataset import Dataset, Partition, dataset, series_files
from ._format import (
    ByteOrderError,
    ChecksumError,
    CountError,
    Field,
    FormatError,
    NotATableError,
    ReplacedError,
    Schema,
    SchemaError,
    TruncatedError,
    UnsupportedVersionError,
    SealedError,
    WriterActiveError,
    schema_from_dtype,
)
from ._remote import RemoteTable, is_local, local_path
from ._table import Table
from ._writer import Writer, append_to, create

__all__ = [
    "open", "create", "append_to", "dataset", "Table", "RemoteTable", "Writer", "Dataset", "Partition", "Field",
    "Schema", "schema_from_dtype", "FormatError", "NotATableError", "ByteOrderError", "UnsupportedVersionError",
    "ChecksumError", "SchemaError", "CountError", "TruncatedError", "WriterActiveError", "ReplacedError",
    "SealedError", "series_files",
]
__version__ = "0.2.0"

PathOrURL = Union[str, "os.PathLike[str]"]

@overload
def open(path: PathOrURL, mode: Literal["r"] = "r", *, storage_options: Optional[Mapping[str, Any]] = None,
         durability: str = "batch", wait_for_writer: float = 0.0) -> Union[Table, RemoteTable]: ...

@overload
def open(path: PathOrURL, mode: Literal["a"], *, storage_options: Optional[Mapping[str, Any]] = None,
         durability: str = "batch", wait_for_writer: float = 0.0) -> Writer: ...

def open(path: PathOrURL, mode: str = "r", *, storage_options: Optional[Mapping[str, Any]] = None,  # noqa: A001
         durability: str = "batch", wait_for_writer: float = 0.0) -> Union[Table, RemoteTable, Writer]:
    """Opens a table.

    ``mode="r"`` (the default) reads: a local path or ``file://`` URL gives a ``Table``, a
    zero-copy numpy view that follows the table as it grows; any other fsspec URL (``s3://``,
    ``gs://``, ``az://``, ``http(s)://``, ``memory://``, ``simplecache::…``) gives a
    ``RemoteTable``, a snapshot read by byte range, with ``storage_options`` passed to fsspec.
    ``mode="a"`` appends to an existing local table (``append_to``): it takes the writer lock,
    waiting up to ``wait_for_writer`` seconds, and writes with ``durability``.

    Raises a ``FormatError`` subclass for anything that is not a table this package reads, and
    ``FileNotFoundError``/``PermissionError`` from the OS or the store."""
    text = os.fspath(path)
    if mode == "r":
        if is_local(text):
            return Table(local_path(text))
        return RemoteTable(text, storage_options)
    if mode == "a":
        if not is_local(text):
            raise ValueError(f"{text}: appending needs a local file (the writer lock and the doorbell live in the "
                             "kernel of the machine that holds the file)")
        return append_to(local_path(text), durability=durability, wait_for_writer=wait_for_writer)
    raise ValueError(f"mode must be 'r' or 'a', not {mode!r} (create makes new tables)")
