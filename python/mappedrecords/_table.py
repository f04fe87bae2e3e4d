"""Tables: reading and following (``Table``), and writing new ones (``Writer``)."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import mmap
import os
import stat
import struct
import time
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np

from . import _format, _waiting
from ._format import NotATableError, ReplacedError, TruncatedError
from ._interop import TableInterop, check_columns, check_range

PathLike = Union[str, "os.PathLike[str]"]


def _map(descriptor: int, size: int, writable: bool) -> Tuple[mmap.mmap, int]:
    """Maps ``size`` bytes of the file; returns the map and its address."""
    access = mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ
    mapping = mmap.mmap(descriptor, size, access=access)
    address = np.frombuffer(mapping, dtype=np.uint8, count=1).ctypes.data
    return mapping, address


def _load_u64(address: int) -> int:
    # One aligned 8-byte load (ctypes reads the word with a single instruction).
    return ctypes.c_uint64.from_address(address).value


class Table(TableInterop):
    """A table opened for reading: ``mappedrecords.open(path)``; a context manager.

    ``records`` is a zero-copy numpy structured array of the committed records, mapped from the
    file; ``refresh()`` and ``wait()`` follow a table that a writer in another process (Swift or
    Python) is still appending to. A file that breaks a rule of docs/FORMAT.md raises the
    ``FormatError`` subclass that names the rule, before any record is read.

    Safety: if another process truncates the file while it is mapped, touching a lost page
    kills the Python process with SIGBUS, as with ``np.memmap``; ``refresh()`` checks the size
    first and raises ``TruncatedError`` instead, so call it before reading new records.
    """

    def __init__(self, path: PathLike):
        self.path = os.fspath(path)
        try:
            self._descriptor = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except IsADirectoryError:
            raise NotATableError(self.path, "it is a directory, not a record table") from None
        try:
            status = os.fstat(self._descriptor)
            if not stat.S_ISREG(status.st_mode):
                raise NotATableError(self.path, "it is not a regular file")
            if status.st_size == 0:
                raise NotATableError(self.path, "the file is empty, not a record table")
            self._mapping, self._address = _map(self._descriptor, status.st_size, writable=False)
            self._size = status.st_size
            self._single_name = status.st_nlink == 1
            self.header = _format.decode_header(self.path, self._mapping, status.st_size)
            self._boot = _format.boot_identifier()
            self._listener = _waiting.DoorbellListener(status.st_dev, status.st_ino)
            self._count = 0
            self._records: np.ndarray = np.zeros(0, dtype=self.header.schema.dtype)
            self._refresh_count()
        except BaseException:
            self.close()
            raise

    # What the file says about itself

    @property
    def capacity(self) -> int:
        """Records the mapped file has room for."""
        return (self._size - self.header.data_offset) // self.header.schema.stride

    @property
    def records(self) -> np.ndarray:
        """The committed records (``len(self)`` of them), zero-copy and read-only."""
        return self._records

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, key: Any) -> Any:
        return self._records[key]

    # Following a growing table

    def _this_boots_live_word(self) -> Optional[int]:
        boot = _load_u64(self._address + _format.LIVE_OFFSET).to_bytes(8, "little") + \
            _load_u64(self._address + _format.LIVE_OFFSET + 8).to_bytes(8, "little")
        if boot != self._boot:
            return None
        return _load_u64(self._address + _format.LIVE_WORD_OFFSET)

    def _count_inputs(self) -> Tuple[Optional[int], Optional[_format.CommitSlot]]:
        """What the count rule reads: this boot's live word (atomic loads) and the latest slot."""
        return self._this_boots_live_word(), _format.latest_slot(self._mapping)

    def _refresh_count(self, inputs: Optional[Tuple[Optional[int], Optional[_format.CommitSlot]]] = None) -> int:
        header, stride = self.header, self.header.schema.stride
        word, slot = inputs if inputs is not None else self._count_inputs()
        capacity = (self._size - header.data_offset) // stride
        count = _format.count_rule(self.path, word, slot, capacity)
        self._count = count
        self._records = np.ndarray((count,), dtype=self.dtype, buffer=self._mapping, offset=header.data_offset)
        return count

    def _check_still_named(self, status: os.stat_result) -> None:
        """Raises ``ReplacedError`` once the open file has no name, or the path names another file
        (a migration renames its new table over the old one): its writer has gone for good."""
        if status.st_nlink == 1 and self._single_name:
            return  # its only name since it was opened: a file renamed over it would have unlinked it
        if status.st_nlink >= 1:
            try:
                named = os.stat(self.path)
            except FileNotFoundError:
                named = None
            if named is not None and (named.st_dev, named.st_ino) == (status.st_dev, status.st_ino):
                return
        raise ReplacedError(self.path, "another file took this table's path (a migration, or a replacement); "
                                       "open it again to read the new one")

    def refresh(self) -> int:
        """Applies the live-count rule again and remaps if the file grew; returns the count.

        Raises ``TruncatedError`` if another process truncated the file, and ``ReplacedError``
        once another file took its path (a migration): open the path again to read the new table."""
        status = os.fstat(self._descriptor)
        if status.st_size < self._size:
            raise TruncatedError(self.path, f"the file shrank from {self._size} to {status.st_size} bytes while it was open "
                                            "(another process truncated it)")
        self._check_still_named(status)
        header, stride = self.header, self.header.schema.stride
        inputs = self._count_inputs()  # read once: the count chosen comes from these
        preferred = _format.preferred_count(*inputs)
        if preferred is not None and preferred > (self._size - header.data_offset) // stride:
            # The writer grows the file before it publishes a count past the old end, so the size
            # is read again after the count.
            status = os.fstat(self._descriptor)
            if status.st_size > self._size:
                self._mapping, self._address = _map(self._descriptor, status.st_size, writable=False)
                self._size = status.st_size
        return self._refresh_count(inputs)

    def wait(self, beyond: int, timeout: float) -> int:
        """Waits until there are more than ``beyond`` records or ``timeout`` seconds pass; returns
        the count (refreshed). It sleeps on the table's doorbell, as Swift readers do
        (docs/FORMAT.md, "Doorbell"): a record appears within tens of microseconds, and an idle
        wait uses no CPU; without a doorbell it checks in growing intervals of at most 100 ms."""
        deadline = time.monotonic() + max(0.0, timeout)
        backoff = [25e-6]
        while True:
            seen = _load_u64(self._address + _format.LIVE_WORD_OFFSET)
            count = self.refresh()
            remaining = deadline - time.monotonic()
            if count > beyond or remaining <= 0:
                return count
            this_boot = self._this_boots_live_word() is not None
            doorbell = _load_u64(self._address + _format.DOORBELL_WORD_OFFSET)
            _waiting.sleep_once(self._listener, self._address + _format.LIVE_WORD_OFFSET, seen, beyond + 1, this_boot,
                                doorbell, remaining, backoff)

    def layout_signature(self) -> bytes:
        """The first 64 bytes of the header: equal in two versions of a file that lay their
        records out alike (the header checksum covers the schema and metadata)."""
        return bytes(self._mapping[:_format.SIGNATURE_BYTES])

    @property
    def sealed_successor(self) -> Optional[int]:
        """The number of the file that follows this one in its series, if the table is sealed
        (docs/FORMAT.md, "Series"); None while it takes records."""
        word = int(np.frombuffer(self._mapping, dtype="<u8", count=1, offset=_format.SEAL_WORD_OFFSET)[0])
        return _format.sealed_successor(word)

    def writer_is_active(self) -> bool:
        """Whether a process holds the writer lock (an open-file-description lock on byte 0)."""
        probe = struct.pack("hhxxxxqqixxxx", fcntl.F_WRLCK, os.SEEK_SET, 0, 1, 0)
        answer = fcntl.fcntl(self._descriptor, fcntl.F_OFD_GETLK, probe)
        return bool(struct.unpack("hhxxxxqqixxxx", answer)[0] != fcntl.F_UNLCK)

    def read(self, start: int = 0, stop: Optional[int] = None, columns: Optional[Sequence[str]] = None) -> np.ndarray:
        """Records ``start`` to ``stop`` (default: the committed count) of the last refresh, as a
        zero-copy read-only structured array; with ``columns``, a view of those fields only."""
        end = check_range(self._count, start, stop)
        selected = check_columns(self.schema, columns)
        records = self._records[start:end]
        return records if selected is None else records[list(selected)]

    def __array__(self, dtype: Any = None, copy: Optional[bool] = None) -> np.ndarray:
        """``np.asarray(table)``: the committed records, a zero-copy read-only view (a copy only
        with ``copy=True`` or a ``dtype`` that needs converting)."""
        records = self._records
        if dtype is not None and np.dtype(dtype) != records.dtype:
            if copy is False:
                raise ValueError(f"the records are {records.dtype}; converting them to {dtype} needs a copy")
            return records.astype(dtype)
        return records.copy() if copy else records

    # Closing

    def close(self) -> None:
        """Unmaps (once no array from ``records`` is left) and closes the file."""
        if hasattr(self, "header"):
            self._records = np.zeros(0, dtype=self.header.schema.dtype)
        self._count = 0
        listener = getattr(self, "_listener", None)
        if listener is not None:
            listener.close()
        mapping = getattr(self, "_mapping", None)
        if mapping is not None:
            try:
                mapping.close()
            except BufferError:
                pass  # arrays the caller holds keep the mapping; it goes when they do
            self._mapping = None  # type: ignore[assignment]  # closed: nothing reads it again
        descriptor = getattr(self, "_descriptor", -1)
        if descriptor >= 0:
            os.close(descriptor)
            self._descriptor = -1

    def __enter__(self) -> "Table":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<mappedrecords.Table {self.path!r}: {self._count} records of {self.schema.describe()}>"


