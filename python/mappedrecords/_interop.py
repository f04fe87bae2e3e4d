"""What every table offers other engines: numpy (``__array__``, ``columns``), Arrow (``to_arrow``,
``to_pandas``) and the Arrow PyCapsule interface (``__arrow_c_stream__``, ``__arrow_c_schema__``)
through which pyarrow, Polars and DuckDB read a table with no conversion in user code."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Iterator, Optional, Sequence

import numpy as np

from . import _format

if TYPE_CHECKING:
    import pandas
    import pyarrow

# Bytes of records per Arrow record batch when a table streams itself through the C stream
# interface: large batches, since engines that gather a stream into one frame copy it again when
# it comes in many chunks (Polars: 300 ms for 512 MiB in one batch, 404 ms in 16).
BATCH_BYTES = 256 << 20


def arrow_schema(schema: _format.Schema, names: Optional[Sequence[str]] = None) -> "pyarrow.Schema":
    """The Arrow schema of ``to_arrow`` for these fields (all of them, or ``names``)."""
    from ._arrow import to_arrow

    return to_arrow(np.zeros(0, dtype=schema.dtype), schema, names).schema


def check_range(length: int, start: int, stop: Optional[int]) -> int:
    """``stop`` (``length`` if None) after checking 0 ≤ start ≤ stop ≤ length (else IndexError)."""
    end = length if stop is None else stop
    if not 0 <= start <= end <= length:
        raise IndexError(f"the records {start}..<{end} are outside the table's {length} committed records")
    return end


def check_columns(schema: _format.Schema, names: Optional[Sequence[str]]) -> Optional[Sequence[str]]:
    """``names`` if every one is a field of ``schema`` (else KeyError naming the fields)."""
    if names is None:
        return None
    if isinstance(names, str):
        raise TypeError("columns takes a list of field names, not one string")
    known = [f.name for f in schema.fields]
    for name in names:
        if name not in known:
            raise KeyError(f"the table has no field {name!r}; its fields are {', '.join(known)}")
    return list(names)


class TableInterop:
    """Mixed into local and remote tables; they provide ``schema`` and ``read(start, stop, columns)``."""

    header: _format.Header

    @property
    def schema(self) -> _format.Schema:
        """The fields, stride and alignment."""
        return self.header.schema

    @property
    def dtype(self) -> np.dtype:
        """The numpy structured dtype of one record (offsets and itemsize as in the file)."""
        return self.header.schema.dtype

    @property
    def metadata(self) -> Dict[str, str]:
        """The metadata entries as a dict (the last of duplicate keys wins)."""
        return dict(self.header.metadata)

    def __len__(self) -> int:
        raise NotImplementedError

    def read(self, start: int = 0, stop: Optional[int] = None, columns: Optional[Sequence[str]] = None) -> np.ndarray:
        raise NotImplementedError

    def _record_batches(self, columns: Optional[Sequence[str]]) -> Iterator["pyarrow.RecordBatch"]:
        from ._arrow import to_arrow

        count = len(self)
        step = max(1, BATCH_BYTES // self.schema.stride)
        for start in range(0, count, step):
            records = self.read(start, min(count, start + step))
            yield from to_arrow(records, self.schema, columns).to_batches()

    def columns(self, names: Optional[Sequence[str]] = None) -> Dict[str, np.ndarray]:
        """``{name: ndarray}`` of every field (or of ``names``): on a local table zero-copy views
        of the committed records (strided, one per field), on a remote table arrays of one fetch.
        DuckDB and pandas take the dict directly."""
        selected = check_columns(self.schema, names)
        records = self.read(0, len(self), selected)
        return {name: records[name] for name in (selected if selected is not None else records.dtype.names or ())}

    def to_arrow(self, columns: Optional[Sequence[str]] = None) -> "pyarrow.Table":
        """The records as a ``pyarrow.Table`` (a copy) of every field, or of ``columns``: numbers
        and bools as such, ``char`` fields as UTF-8 strings (up to the first NUL; invalid UTF-8
        repaired with U+FFFD), ``bytes`` as fixed-size binary, arrays as fixed-size lists."""
        from ._arrow import to_arrow

        selected = check_columns(self.schema, columns)
        return to_arrow(self.read(0, len(self), selected), self.schema, selected)

    def to_pandas(self, columns: Optional[Sequence[str]] = None) -> "pandas.DataFrame":
        """The records as a ``pandas.DataFrame`` (through Arrow), of every field or of ``columns``."""
        frame: "pandas.DataFrame" = self.to_arrow(columns).to_pandas()
        return frame

    def __arrow_c_schema__(self) -> Any:
        """The Arrow schema as a PyCapsule (the Arrow PyCapsule interface)."""
        return arrow_schema(self.schema).__arrow_c_schema__()

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        """The committed records as an Arrow C stream (a PyCapsule), one record batch per
        256 MiB of records, converted as ``to_arrow`` converts: ``pa.table(t)``,
        ``pl.DataFrame(t)`` and DuckDB's ``FROM t`` read it. ``requested_schema`` (a capsule)
        is honoured where pyarrow can cast to it."""
        import pyarrow as pa

        reader = pa.RecordBatchReader.from_batches(arrow_schema(self.schema), self._record_batches(None))
        return reader.__arrow_c_stream__(requested_schema)
