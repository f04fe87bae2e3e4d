"""Read, follow and write MappedRecords record tables (docs/FORMAT.md) from Python.

    import mappedrecords
    with mappedrecords.open("points.mrec") as table:
        print(len(table), table.records["x"].sum())

``open`` gives a zero-copy numpy view of the committed records and follows a growing table
(``refresh``, ``wait``); ``create`` writes new tables that Swift and ``mrec`` read;
``mappedrecords.dask.read_dataframe`` reads many tables where they lie, in parallel.
"""

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
    WriterActiveError,
    schema_from_dtype,
)
from ._table import Table, Writer, create, open

__all__ = [
    "open", "create", "Table", "Writer", "Field", "Schema", "schema_from_dtype",
    "FormatError", "NotATableError", "ByteOrderError", "UnsupportedVersionError", "ChecksumError",
    "SchemaError", "CountError", "TruncatedError", "WriterActiveError", "ReplacedError",
]
__version__ = "0.1.0"
