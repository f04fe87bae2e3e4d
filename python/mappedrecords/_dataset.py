"""Many tables read as one: planning partitions (a range of records of one file each) from
paths, ``file://`` URLs or fsspec URLs with globs, and reading one partition where it lies.

Planning opens each table once and takes its count once (the count rule), so every partition
reads records below a count that was committed at planning time. A partition holds a URL (or
path), a byte range and the identity of the file as planned: never data, never a file object.
Reading it checks that the file is still the one planned (a local file by device and inode, a
remote one as ``RemoteFile`` does), so a table replaced in between raises an error naming it.
"""

from __future__ import annotations

import glob as _glob
import os
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import _format
from ._format import ReplacedError, TruncatedError
from ._interop import arrow_schema, check_columns
from ._remote import RemoteFile, RemoteTable, is_local, local_path
from ._table import Table

if TYPE_CHECKING:
    import pyarrow

SORTED_BY_KEY = "sorted_by"
PathsOrGlob = Union[str, "os.PathLike[str]", Sequence[Union[str, "os.PathLike[str]"]]]


@dataclass(frozen=True)
class Partition:
    """Records ``start`` to ``stop`` of one table, as planned."""

    url: str
    start: int
    stop: int
    data_offset: int
    schema: _format.Schema
    identity: Tuple[Tuple[str, Any], ...]  # local: device and inode; remote: size, ETag, mtime
    signature: bytes  # the table's layout as planned (the header's first 64 bytes)
    storage_options: Tuple[Tuple[str, Any], ...] = ()

    @property
    def byte_range(self) -> Tuple[int, int]:
        stride = self.schema.stride
        return self.data_offset + self.start * stride, self.data_offset + self.stop * stride


@dataclass
class Plan:
    """The partitions of a set of tables that share one schema, and what is known of their order."""

    schema: _format.Schema
    partitions: List[Partition]
    index: Optional[str]
    divisions: Optional[Tuple[Any, ...]]


def expand(paths_or_glob: PathsOrGlob, storage_options: Optional[Mapping[str, Any]] = None) -> List[str]:
    """The paths or URLs a list or a glob names, sorted; FileNotFoundError if none."""
    if isinstance(paths_or_glob, (str, os.PathLike)):
        text = os.fspath(paths_or_glob)
        if not any(c in text for c in "*?["):
            files = series_files(text, storage_options)
            return files if files is not None else [text]
        if is_local(text):
            found = sorted(_glob.glob(local_path(text)))
        else:
            import fsspec

            fs, pattern = fsspec.core.url_to_fs(text, **dict(storage_options or {}))
            prefix = text[:len(text) - len(pattern)] if text.endswith(pattern) else None
            found = [prefix + p if prefix is not None else fs.unstrip_protocol(p) for p in sorted(fs.glob(pattern))]
        if not found:
            raise FileNotFoundError(2, "no table matches the pattern", text)
        return found
    return [os.fspath(p) for p in paths_or_glob]


def series_files(directory: str, storage_options: Optional[Mapping[str, Any]] = None) -> Optional[List[str]]:
    """The files of the series in ``directory``, oldest first (docs/FORMAT.md, "Series": files
    named ``00000001.mrec``, ``00000002.mrec``, … in order of their numbers); None if ``directory``
    is not a directory, so that a path to one table stays that table."""
    if is_local(directory):
        prefix = local_path(directory)
        if not os.path.isdir(prefix):
            return None
        names = os.listdir(prefix)
    else:
        import fsspec

        fs, stripped = fsspec.core.url_to_fs(directory, **dict(storage_options or {}))
        if not fs.isdir(stripped):
            return None
        prefix = directory
        names = [str(entry).rstrip("/").rsplit("/", 1)[-1] for entry in fs.ls(stripped, detail=False)]
    numbered = sorted((number, name) for name in names
                      if (number := _format.series_file_number(name)) is not None)
    if not numbered:
        raise FileNotFoundError(2, "no series files (00000001.mrec, …) in this directory", directory)
    return [prefix.rstrip("/") + "/" + name for _, name in numbered]


def plan(paths_or_glob: PathsOrGlob, records_per_partition: int, storage_options: Optional[Mapping[str, Any]] = None,
         use_sorted_by: bool = True) -> Plan:
    """Opens each table once, takes its count once, and cuts it into partitions."""
    if records_per_partition <= 0:
        raise ValueError("records_per_partition must be positive")
    urls = expand(paths_or_glob, storage_options)
    options = tuple(sorted(dict(storage_options or {}).items()))
    schema: Optional[_format.Schema] = None
    partitions: List[Partition] = []
    sorted_fields = set()
    boundaries: List[Tuple[Any, Any]] = []
    for url in urls:
        with _open_for_planning(url, storage_options) as table:
            if schema is None:
                schema = table.schema
            elif table.schema != schema:
                raise _format.SchemaError(url, f"its schema ({table.schema.describe()}) differs from "
                                               f"{urls[0]}'s ({schema.describe()})")
            sorted_by = table.metadata.get(SORTED_BY_KEY)
            sorted_fields.add(sorted_by)
            identity, signature, location = _planned_identity(table, url)
            count = len(table)
            for start in range(0, count, records_per_partition):
                stop = min(count, start + records_per_partition)
                partitions.append(Partition(location, start, stop, table.header.data_offset, schema, identity, signature,
                                            () if isinstance(table, Table) else options))
                if use_sorted_by and sorted_by in (table.dtype.names or ()):
                    first = table.read(start, start + 1, [sorted_by])[sorted_by][0].item()
                    last = table.read(stop - 1, stop, [sorted_by])[sorted_by][0].item()
                    boundaries.append((first, last))
    if schema is None:
        raise FileNotFoundError(2, "no table to read", str(paths_or_glob))
    index = next(iter(sorted_fields)) if len(sorted_fields) == 1 else None
    if index is not None and index not in [f.name for f in schema.fields]:
        index = None
    divisions = None
    if index is not None and partitions and len(boundaries) == len(partitions):
        firsts = [first for first, _ in boundaries]
        candidate = firsts + [boundaries[-1][1]]
        if all(a <= b for a, b in zip(candidate, candidate[1:])) and all(a < b for a, b in zip(firsts, firsts[1:])):
            divisions = tuple(candidate)
        else:
            index = None
    elif index is not None and partitions:
        index = None
    return Plan(schema, partitions, index, divisions)


def _open_for_planning(url: str, storage_options: Optional[Mapping[str, Any]]) -> Union[Table, RemoteTable]:
    return Table(local_path(url)) if is_local(url) else RemoteTable(url, storage_options)


def _planned_identity(table: Union[Table, RemoteTable], url: str) -> Tuple[Tuple[Tuple[str, Any], ...], bytes, str]:
    if isinstance(table, Table):
        status = os.fstat(table._descriptor)
        return (("device", status.st_dev), ("inode", status.st_ino)), table.layout_signature(), \
            os.path.abspath(table.path)
    return tuple(sorted(table.identity.items())), table._file.signature or b"", url


def read_partition(part: Partition, columns: Optional[Sequence[str]] = None) -> np.ndarray:
    """The records of one partition (of ``columns`` only, if given), read where they lie: a
    local file mapped (zero-copy), a remote one in one ranged request of whole records."""
    selected = check_columns(part.schema, columns)
    start, end = part.byte_range
    count = part.stop - part.start
    if is_local(part.url):
        records = _read_local(part, start, count)
    else:
        file = RemoteFile(part.url, dict(part.storage_options), identity=dict(part.identity), signature=part.signature)
        records = np.frombuffer(file.fetch(start, end), dtype=part.schema.dtype, count=count)
    return records if selected is None else records[list(selected)]


def _read_local(part: Partition, start: int, count: int) -> np.ndarray:
    path = local_path(part.url)
    with open(path, "rb") as file:
        status = os.fstat(file.fileno())
        planned = dict(part.identity)
        if not stat.S_ISREG(status.st_mode) or (status.st_dev, status.st_ino) != (planned["device"], planned["inode"]):
            raise ReplacedError(path, "another file took this table's path since the read was planned "
                                      "(a migration, or a replacement); plan the read again")
        if status.st_size < start + count * part.schema.stride:
            raise TruncatedError(path, f"the file has {status.st_size} bytes, fewer than the planned records need")
        if count == 0:
            return np.zeros(0, dtype=part.schema.dtype)
        return np.memmap(file, dtype=part.schema.dtype, mode="r", offset=start, shape=(count,))


class Dataset:
    """Many tables with one schema, read as one sequence of records: ``mappedrecords.dataset(…)``.

    It streams through the Arrow PyCapsule interface, one record batch per partition, so
    ``pa.table(ds)``, ``pl.DataFrame(ds)`` and DuckDB's ``FROM ds`` read every table in order;
    ``to_arrow()`` and ``to_pandas()`` gather it. The counts were taken when it was made.
    """

    def __init__(self, paths_or_glob: PathsOrGlob, storage_options: Optional[Mapping[str, Any]] = None,
                 records_per_partition: int = 1 << 20):
        self.plan = plan(paths_or_glob, records_per_partition, storage_options, use_sorted_by=False)
        self.schema = self.plan.schema

    @property
    def partitions(self) -> List[Partition]:
        """The partitions, in order."""
        return list(self.plan.partitions)

    def __len__(self) -> int:
        return sum(p.stop - p.start for p in self.plan.partitions)

    def _batches(self, columns: Optional[Sequence[str]]) -> Iterator["pyarrow.RecordBatch"]:
        from ._arrow import to_arrow

        for part in self.plan.partitions:
            yield from to_arrow(read_partition(part), self.schema, columns).to_batches()

    def to_arrow(self, columns: Optional[Sequence[str]] = None) -> "pyarrow.Table":
        """Every record of every table as one ``pyarrow.Table`` (a copy)."""
        import pyarrow as pa

        selected = check_columns(self.schema, columns)
        return pa.Table.from_batches(list(self._batches(selected)), arrow_schema(self.schema, selected))

    def to_pandas(self, columns: Optional[Sequence[str]] = None) -> Any:
        """Every record of every table as one ``pandas.DataFrame``."""
        return self.to_arrow(columns).to_pandas()

    def __arrow_c_schema__(self) -> Any:
        """The Arrow schema as a PyCapsule."""
        return arrow_schema(self.schema).__arrow_c_schema__()

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        """Every record as an Arrow C stream, one record batch per partition."""
        import pyarrow as pa

        reader = pa.RecordBatchReader.from_batches(arrow_schema(self.schema), self._batches(None))
        return reader.__arrow_c_stream__(requested_schema)

    def __repr__(self) -> str:
        return f"<mappedrecords.Dataset: {len(self.plan.partitions)} partitions, {len(self)} records>"


def dataset(paths_or_glob: PathsOrGlob, storage_options: Optional[Mapping[str, Any]] = None,
            records_per_partition: int = 1 << 20) -> Dataset:
    """Tables with one schema (a list of paths or URLs, or a glob, local or through fsspec) read
    as one; see ``Dataset``."""
    return Dataset(paths_or_glob, storage_options, records_per_partition)
