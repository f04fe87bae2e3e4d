"""Records → Apache Arrow, column by column, through pyarrow (never by hand)."""

from __future__ import annotations

import numpy as np


def _text_column(column: np.ndarray, width: int):
    """``char[N]`` as UTF-8 strings: each value ends at its first NUL; invalid UTF-8 is repaired."""
    import pyarrow as pa

    raw = np.ascontiguousarray(column).view(np.uint8).reshape(len(column), width)
    nul = raw == 0
    lengths = np.where(nul.any(axis=1), nul.argmax(axis=1), width).astype(np.int64)
    offsets = np.zeros(len(column) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    data = raw[np.arange(width)[None, :] < lengths[:, None]]
    array = pa.LargeStringArray.from_buffers(len(column), pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(data)))
    try:
        array.validate(full=True)
    except pa.ArrowInvalid:  # invalid UTF-8: repair each value as mrec shows it (U+FFFD)
        values = [bytes(row[:n]).decode("utf-8", errors="replace") for row, n in zip(raw, lengths)]
        array = pa.array(values, type=pa.large_string())
    return array


def column_to_arrow(column: np.ndarray, field):
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


def to_arrow(records: np.ndarray, schema):
    import pyarrow as pa

    columns = [column_to_arrow(records[f.name], f) for f in schema.fields]
    return pa.Table.from_arrays(columns, names=[f.name for f in schema.fields])
