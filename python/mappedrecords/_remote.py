"""Tables where they lie: reading a table through fsspec (``s3://``, ``gs://``, ``http(s)://``,
``memory://``, ``simplecache::…``) by byte range.

A fixed-record file is read by range with no index: the header and schema lie before
``dataOffset``, and record ``i`` at ``dataOffset + i × stride``. A remote table is a snapshot:
its count is chosen once by the count rule (docs/FORMAT.md, "Which count to use") when it is
opened or refreshed, and every read stays below it, so a writer appending meanwhile never shows
a torn record. A file replaced since (a migration, a rewrite) is detected: each ranged read is
conditional on the identity the open saw (HTTP ``If-Match``, S3 ``IfMatch`` on the ETag), or,
where the protocol has no conditional read, compared with the file's identity first.
"""

from __future__ import annotations

import struct
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from . import _format
from ._format import NotATableError, ReplacedError, TruncatedError
from ._interop import TableInterop, check_columns, check_range

# The first ranged request of an open: the fixed header and, for all but very large metadata,
# the whole schema region; a second request fetches the rest of a longer header.
FIRST_REQUEST_BYTES = 64 * 1024
_LOCAL_PROTOCOLS = ("file", "local")
# Conditional reads of a file whose ETag keeps moving (a writer appending) before the reader
# reads unconditionally and checks the layout after.
_CONDITIONAL_ATTEMPTS = 4


def is_local(url: str) -> bool:
    """Whether ``url`` is a local path or a ``file://`` URL (read through ``np.memmap``)."""
    if "::" in url:
        return False
    protocol, separator, _ = url.partition("://")
    return not separator or protocol in _LOCAL_PROTOCOLS


def local_path(url: str) -> str:
    """The path of a local path or ``file://`` URL."""
    protocol, separator, rest = url.partition("://")
    return rest if separator and protocol in _LOCAL_PROTOCOLS else url


class _Changed(Exception):
    """A conditional read found another version of the file (HTTP 412, S3 PreconditionFailed)."""


class RemoteFile:
    """One file through fsspec, with the identity its open saw (size, ETag, mtime) and reads
    that never return bytes of a table laid out differently.

    A table's ETag changes when a writer appends (even within the capacity), so a changed ETag
    is not yet a replaced table: the reader then reads the fixed header again and accepts the
    new version only if the layout is the same (bytes 0–63: magic, version, checksum of the
    schema and metadata, stride, dataOffset…) and the count still covers what it reads. Anything
    else raises ``ReplacedError`` (another layout) or ``TruncatedError`` (fewer records).
    """

    def __init__(self, url: str, storage_options: Optional[Mapping[str, Any]] = None,
                 identity: Optional[Dict[str, Any]] = None, signature: Optional[bytes] = None):
        import fsspec

        self.url = url
        self.storage_options = dict(storage_options or {})
        self.fs, self.path = fsspec.core.url_to_fs(url, **self.storage_options)
        self.protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        self.identity = identity if identity is not None else self._stat()
        # The layout the reader planned with (the first 64 bytes of the header); None until known.
        self.signature = signature

    def _stat(self) -> Dict[str, Any]:
        try:
            self.fs.invalidate_cache(self.path)  # a listing cached by a glob may be stale
            info = self.fs.info(self.path)
        except FileNotFoundError:
            raise FileNotFoundError(2, "no table at this URL", self.url) from None
        if info.get("type") == "directory":
            raise NotATableError(self.url, "it is a directory, not a record table")
        return _identity(self.url, info)

    @property
    def size(self) -> int:
        return int(self.identity["size"])

    def fetch(self, start: int, end: int) -> bytes:
        """Bytes [start, end) in one ranged request when nothing changed since the open (a
        conditional request over HTTP and S3; elsewhere one look at the file's identity first)."""
        if end <= start:
            return b""
        etag = self.identity.get("etag")
        conditional = etag and self.protocol in ("http", "https", "s3", "s3a")
        if conditional:
            data = None
            for _ in range(_CONDITIONAL_ATTEMPTS):
                try:
                    data = self._fetch_if_match(start, end, self.identity.get("etag"))
                    break
                except _Changed:
                    self._revalidate(end)
            if data is None:
                # A writer appends faster than a read comes back: read, then check that the file
                # still has this layout and these records (appending never moves a record).
                data = self.fs.cat_file(self.path, start=start, end=end)
                self._revalidate(end)
        else:
            now = self._stat()
            if now != self.identity:
                self._revalidate(end, now)
            data = self.fs.cat_file(self.path, start=start, end=end)
        if len(data) != end - start:
            raise TruncatedError(self.url, f"asked for bytes {start}..<{end}, got {len(data)}: "
                                           "the file is shorter than when it was opened")
        return data

    def _revalidate(self, end: int, now: Optional[Dict[str, Any]] = None) -> None:
        """Accepts a new version of the file if its layout is the planned one and its count
        still covers byte ``end`` of the records; adopts its identity."""
        now = now if now is not None else self._stat()
        if self.signature is not None:
            header = self.fs.cat_file(self.path, start=0, end=min(now["size"], _format.PAGE_SIZE))
            if bytes(header[:len(self.signature)]) != self.signature:
                raise ReplacedError(self.url, "another table took this URL since it was opened (its header changed); "
                                              "open it again to read the new one")
            stride, data_offset = struct.unpack_from("<IxxxxQ", self.signature, _format.STRIDE_OFFSET)
            capacity = (now["size"] - data_offset) // stride
            count = _format.count_rule(self.url, _format.this_boots_live_word(header, _format.boot_identifier()),
                                       _format.latest_slot(header), capacity)
            if data_offset + count * stride < end:
                raise TruncatedError(self.url, f"the table now has {count} records, fewer than it had when it was "
                                               "opened (records were removed, or another file took its place)")
        self.identity = now

    def _fetch_if_match(self, start: int, end: int, etag: Optional[str]) -> bytes:
        if self.protocol in ("http", "https"):
            try:
                return bytes(self.fs.cat_file(self.path, start=start, end=end, headers={"If-Match": etag}))
            except Exception as error:  # aiohttp's ClientResponseError, raised by fsspec for status >= 400
                if getattr(error, "status", None) == 412:
                    raise _Changed() from None
                raise
        from fsspec.asyn import sync

        bucket, key, version = self.fs.split_path(self.path)

        async def get() -> bytes:
            extra = {"VersionId": version} if version else {}
            response = await self.fs._call_s3("get_object", Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}",
                                              IfMatch=etag, **extra)
            try:
                return bytes(await response["Body"].read())
            finally:
                response["Body"].close()

        try:
            return bytes(sync(self.fs.loop, get))
        except Exception as error:
            if _precondition_failed(error):
                raise _Changed() from None
            raise


def _precondition_failed(error: BaseException) -> bool:
    """Whether S3 refused a conditional read (botocore's ``PreconditionFailed``, which s3fs
    translates into an OSError whose cause is the botocore error)."""
    seen: Optional[BaseException] = error
    while seen is not None:
        response = getattr(seen, "response", None)
        if isinstance(response, dict):
            code = response.get("Error", {}).get("Code")
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code == "PreconditionFailed" or status == 412:
                return True
        if "pre-conditions you specified did not hold" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _identity(url: str, info: Mapping[str, Any]) -> Dict[str, Any]:
    """What says a file is the same one: size, and the ETag or modification time if given."""
    etag = info.get("ETag") or info.get("etag")
    modified = info.get("mtime") or info.get("LastModified") or info.get("last_modified") or info.get("created")
    size = info.get("size")
    if size is None:
        raise NotATableError(url, "the server gives no size for it, so it cannot be read by range")
    return {"size": int(size), "etag": str(etag) if etag else None, "modified": str(modified) if modified else None}


class RemoteTable(TableInterop):
    """A table read by byte range through fsspec: ``mappedrecords.open("s3://…", storage_options=…)``.

    A snapshot: ``len(table)`` is the count the rule chose at open (or at the last ``refresh()``),
    and ``read(start, stop, columns)`` fetches records below it, one ranged request per call.
    ``records`` fetches all of them once and keeps them. ``wait()`` is an error: there is no
    doorbell across machines; call ``refresh()`` in intervals instead.
    """

    def __init__(self, url: str, storage_options: Optional[Mapping[str, Any]] = None):
        self.path = url
        self._storage_options = dict(storage_options or {})
        self._records: Optional[np.ndarray] = None
        self._open(RemoteFile(url, self._storage_options))

    def _open(self, file: RemoteFile) -> None:
        url, size = file.url, file.size
        if size == 0:
            raise NotATableError(url, "the file is empty, not a record table")
        first = file.fetch(0, min(size, FIRST_REQUEST_BYTES))
        needed = len(first)
        if len(first) >= _format.STATIC_LENGTH_OFFSET + 4 and first[:8] == _format.MAGIC:
            (data_offset,) = struct.unpack_from("<Q", first, _format.DATA_OFFSET_OFFSET)
            (static_length,) = struct.unpack_from("<I", first, _format.STATIC_LENGTH_OFFSET)
            needed = min(size, _format.MAX_HEADER_BYTES, max(data_offset, _format.SCHEMA_OFFSET + static_length))
        header = first + file.fetch(len(first), needed) if needed > len(first) else first
        size = file.size  # of the version these bytes came from (it may have grown meanwhile)
        decoded = _format.decode_header(url, header, size)
        file.signature = bytes(header[:_format.SIGNATURE_BYTES])
        stride = decoded.schema.stride
        capacity = (size - decoded.data_offset) // stride
        boot = _format.boot_identifier()
        count = _format.count_rule(url, _format.this_boots_live_word(header, boot), _format.latest_slot(header), capacity)
        self.header = decoded
        self._file = file
        self._count = count
        self._records = None

    # What the file says about itself

    @property
    def capacity(self) -> int:
        """Records the file had room for when it was opened or refreshed."""
        return (self._file.size - self.header.data_offset) // self.header.schema.stride

    @property
    def identity(self) -> Dict[str, Any]:
        """Size, ETag and modification time of the file as the open saw them."""
        return dict(self._file.identity)

    def __len__(self) -> int:
        return self._count

    # The records

    def read(self, start: int = 0, stop: Optional[int] = None, columns: Optional[Sequence[str]] = None) -> np.ndarray:
        """Records ``start`` to ``stop`` (default: the count) as a structured array, fetched in one
        ranged request of whole records; with ``columns``, those fields only."""
        end = check_range(self._count, start, stop)
        selected = check_columns(self.schema, columns)
        if self._records is not None:
            records = self._records[start:end]
        else:
            stride, offset = self.schema.stride, self.header.data_offset
            data = self._file.fetch(offset + start * stride, offset + end * stride)
            records = np.frombuffer(data, dtype=self.dtype, count=end - start)
        return records if selected is None else records[list(selected)]

    @property
    def records(self) -> np.ndarray:
        """Every record of the snapshot (fetched on first use, then kept; read-only)."""
        if self._records is None:
            self._records = self.read(0, self._count)
        return self._records

    def __getitem__(self, key: Any) -> Any:
        return self.records[key]

    def __array__(self, dtype: Any = None, copy: Optional[bool] = None) -> np.ndarray:
        """``np.asarray(table)``: every record of the snapshot (fetched, so never a view of the file)."""
        records = self.records
        if dtype is not None and np.dtype(dtype) != records.dtype:
            return records.astype(dtype)
        return records.copy() if copy else records

    # Following, as far as a snapshot can

    def refresh(self) -> int:
        """Reads the file's identity and header again and applies the count rule; returns the
        count. A file replaced since the open is opened anew (its schema may differ); a count that
        went back in the same table raises ``TruncatedError``."""
        before, signature = self._count, self._file.signature
        self._open(RemoteFile(self.path, self._storage_options))
        if self._file.signature == signature and self._count < before:
            raise TruncatedError(self.path, f"the count went back from {before} to {self._count}")
        return self._count

    def wait(self, beyond: int, timeout: float) -> int:
        """Not offered: a remote reader has no doorbell (it lives in the writer's machine's memory)."""
        raise NotImplementedError(f"{self.path}: wait() needs the writer's doorbell, which only readers on its own "
                                  "machine can reach; call refresh() in intervals to follow a remote table")

    def writer_is_active(self) -> bool:
        """Not knowable from another machine: the writer lock is a lock in the writer's kernel."""
        raise NotImplementedError(f"{self.path}: the writer lock is only visible on the writer's machine")

    def close(self) -> None:
        """Drops the fetched records."""
        self._records = None

    def __enter__(self) -> "RemoteTable":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<mappedrecords.RemoteTable {self.path!r}: {self._count} records of {self.schema.describe()}>"
