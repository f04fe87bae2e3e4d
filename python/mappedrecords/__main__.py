"""python -m mappedrecords info|dump|export FILE [--parquet OUT | --arrow OUT | --csv OUT]"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Optional, Sequence, Union

from . import FormatError, RemoteTable, Table, open as open_table


def _info(table: Union[Table, RemoteTable]) -> None:
    print(f"file:       {table.path}")
    print(f"format:     {table.header.version[0]}.{table.header.version[1]}")
    print(f"records:    {len(table)} (capacity {table.capacity})")
    print(f"stride:     {table.schema.stride} bytes, alignment {table.schema.alignment}")
    print(f"durability: {table.header.durability}")
    if isinstance(table, Table):
        print(f"writer:     {'active' if table.writer_is_active() else 'none'}")
    else:
        print("writer:     unknown (a remote table: the writer lock lives on the writer's machine)")
    print("fields:")
    for f in table.schema.fields:
        kind = f.type if f.count == 1 else f"{f.type}[{f.count}]"
        print(f"  {f.name:<24} {kind:<12} @{f.offset}")
    if table.metadata:
        print("metadata:")
        for key, value in table.metadata.items():
            print(f"  {key} = {value}")


def _dump(table: Union[Table, RemoteTable], limit: Optional[int]) -> None:
    frame = table.to_arrow()
    if limit is not None:
        frame = frame.slice(0, limit)
    for row in frame.to_pylist():
        print(json.dumps(row, default=lambda v: v.hex() if isinstance(v, bytes) else str(v)))


def _export(table: Union[Table, RemoteTable], arguments: argparse.Namespace) -> None:
    frame = table.to_arrow()
    if arguments.parquet:
        import pyarrow.parquet as pq
        pq.write_table(frame, arguments.parquet)
        target = arguments.parquet
    elif arguments.arrow:
        import pyarrow as pa
        with pa.OSFile(arguments.arrow, "wb") as sink, pa.ipc.new_file(sink, frame.schema) as writer:
            writer.write_table(frame)
        target = arguments.arrow
    else:
        import pyarrow.csv as pcsv
        pcsv.write_csv(frame, arguments.csv)
        target = arguments.csv
    print(f"{table.path}: exported {len(table)} records to {target}", file=sys.stderr)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mappedrecords", description="Show and export MappedRecords tables.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("info", help="the header: fields, count, metadata").add_argument("file")
    dump = commands.add_parser("dump", help="records as JSON lines")
    dump.add_argument("file")
    dump.add_argument("--limit", type=int)
    export = commands.add_parser("export", help="to Parquet, Arrow IPC or CSV, through pyarrow")
    export.add_argument("file")
    target = export.add_mutually_exclusive_group(required=True)
    target.add_argument("--parquet", metavar="OUT")
    target.add_argument("--arrow", metavar="OUT")
    target.add_argument("--csv", metavar="OUT")
    arguments = parser.parse_args(argv)
    try:
        with open_table(arguments.file) as table:
            if arguments.command == "info":
                _info(table)
            elif arguments.command == "dump":
                _dump(table, arguments.limit)
            else:
                _export(table, arguments)
    except FormatError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"error: {error.filename or arguments.file}: {error.strerror or error}", file=sys.stderr)
        return 3
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
