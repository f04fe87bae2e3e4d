"""Records → Apache Arrow, column by column, through pyarrow (never by hand)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np

from ._format import Field, Schema

if TYPE_CHECKING:
    import pyarrow

# Records of at least this many bytes convert their columns on several threads.
_PARALLEL_BYTES = 16 << 20


def _text_column(column: np.ndarray, width: int) -> Any:
    """``char[N]`` as UTF-8 strings: each value ends at its first NUL; invalid UTF-8 is repaired.

    The values' bytes, copied once into a contiguous buffer, become a string array of padded
    values (offsets ``i × N``, no gather); Arrow validates the UTF-8 and trims the trailing NULs
    in C++. A value with a NUL before other bytes is cut at that NUL after (it is found by
    comparing the NUL bytes counted with those trimmed, so the common case pays one pass)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(column)
    raw = np.ascontiguousarray(column).view(np.uint8).reshape(-1)
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int64)
    padded = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(raw))
    try:
        padded.validate(full=True)
    except pa.ArrowInvalid:  # invalid UTF-8 (perhaps only after a NUL): the careful path
        return _text_column_repairing(column, width)
    nuls = int(np.count_nonzero(raw == 0))
    if nuls == 0:
        return padded  # every value fills its field
    trimmed = pc.utf8_rtrim(padded, characters="\x00")
    if n * width - int(pc.sum(pc.binary_length(trimmed)).as_py() or 0) == nuls:
        return trimmed  # every NUL was trailing
    first = pc.find_substring(trimmed, "\x00").to_numpy(zero_copy_only=False)
    rows = np.nonzero(first >= 0)[0]
    cut = [value.split("\x00", 1)[0] for value in trimmed.take(pa.array(rows)).to_pylist()]
    mask = np.zeros(n, dtype=bool)
    mask[rows] = True
    return pc.replace_with_mask(trimmed, pa.array(mask), pa.array(cut, type=pa.large_string()))


def _text_column_repairing(column: np.ndarray, width: int) -> Any:
    """The careful path for columns with invalid UTF-8: each value's first NUL is found in numpy,
    the values gathered, and each invalid one decoded with U+FFFD replacements (as mrec shows it)."""
    import pyarrow as pa

    n = len(column)
    raw = column.reshape(n, 1).view(np.uint8) if n else np.zeros((0, width), dtype=np.uint8)
    lengths = np.full(n, width, dtype=np.int64)
    for position in range(width - 1, -1, -1):
        lengths[raw[:, position] == 0] = position
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    data = raw[np.arange(width)[None, :] < lengths[:, None]]
    array = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(data)))
    try:
        array.validate(full=True)
    except pa.ArrowInvalid:
        values = [bytes(row[:length]).decode("utf-8", errors="replace") for row, length in zip(raw, lengths)]
        array = pa.array(values, type=pa.large_string())
    return array


def column_to_arrow(column: np.ndarray, field: Field) -> Any:
    import pyarrow as pa

    n = len(column)
    if field.type == "char":
        return _text_column(column, field.count)
    if field.type == "bytes":
        data = np.ascontiguousarray(column).view(np.uint8)
        return pa.FixedSizeBinaryArray.from_buffers(pa.binary(field.count), n, [None, pa.py_buffer(data)])
    if field.count > 1:
        flat = np.ascontiguousarray(column).reshape(n * field.count)
        return pa.FixedSizeListArray.from_arrays(pa.array(flat), field.count)
    return pa.array(np.ascontiguousarray(column))


def to_arrow(records: np.ndarray, schema: Schema, names: Optional[Sequence[str]] = None) -> "pyarrow.Table":
    import pyarrow as pa

    fields = schema.fields if names is None else [_field(schema, name) for name in names]
    if len(fields) > 1 and len(records) * schema.stride >= _PARALLEL_BYTES:
        # Each column's copy out of the records runs in numpy or Arrow with the GIL released:
        # on several cores, the columns convert side by side.
        with ThreadPoolExecutor(max_workers=min(len(fields), os.cpu_count() or 1)) as pool:
            columns = list(pool.map(lambda f: column_to_arrow(records[f.name], f), fields))
    else:
        columns = [column_to_arrow(records[f.name], f) for f in fields]
    return pa.Table.from_arrays(columns, names=[f.name for f in fields])


def _field(schema: Schema, name: str) -> Field:
    for f in schema.fields:
        if f.name == name:
            return f
    raise KeyError(f"the table has no field {name!r}; its fields are {', '.join(f.name for f in schema.fields)}")
