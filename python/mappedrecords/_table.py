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
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import _format, _waiting
from ._format import FormatError, NotATableError, ReplacedError, TruncatedError, WriterActiveError

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


class Table:
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
            self._records = None
            self._refresh_count()
        except BaseException:
            self.close()
            raise

    # What the file says about itself

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

    def __getitem__(self, key):
        return self._records[key]

    # Following a growing table

    def _this_boots_live_word(self) -> Optional[int]:
        boot = _load_u64(self._address + _format.LIVE_OFFSET).to_bytes(8, "little") + \
            _load_u64(self._address + _format.LIVE_OFFSET + 8).to_bytes(8, "little")
        if boot != self._boot:
            return None
        return _load_u64(self._address + _format.LIVE_WORD_OFFSET)

    def _count_inputs(self):
        """What the count rule reads: this boot's live word (atomic loads) and the latest slot."""
        return self._this_boots_live_word(), _format.latest_slot(self._mapping)

    def _refresh_count(self, inputs=None) -> int:
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

    def writer_is_active(self) -> bool:
        """Whether a process holds the writer lock (an open-file-description lock on byte 0)."""
        probe = struct.pack("hhxxxxqqixxxx", fcntl.F_WRLCK, os.SEEK_SET, 0, 1, 0)
        answer = fcntl.fcntl(self._descriptor, fcntl.F_OFD_GETLK, probe)
        return struct.unpack("hhxxxxqqixxxx", answer)[0] != fcntl.F_UNLCK

    # Conversions

    def to_arrow(self, columns: Optional[Sequence[str]] = None):
        """The records as a ``pyarrow.Table`` (a copy) of every field, or of ``columns``: numbers
        and bools as such, ``char`` fields as UTF-8 strings (up to the first NUL; invalid UTF-8
        repaired with U+FFFD), ``bytes`` as fixed-size binary, arrays as fixed-size lists."""
        from ._arrow import to_arrow
        return to_arrow(self._records, self.schema, columns)

    def to_pandas(self, columns: Optional[Sequence[str]] = None):
        """The records as a ``pandas.DataFrame`` (through Arrow), of every field or of ``columns``."""
        return self.to_arrow(columns).to_pandas()

    # Closing

    def close(self) -> None:
        """Unmaps (once no array from ``records`` is left) and closes the file."""
        self._records = None
        listener = getattr(self, "_listener", None)
        if listener is not None:
            listener.close()
        mapping = getattr(self, "_mapping", None)
        if mapping is not None:
            try:
                mapping.close()
            except BufferError:
                pass  # arrays the caller holds keep the mapping; it goes when they do
            self._mapping = None
        descriptor = getattr(self, "_descriptor", -1)
        if descriptor >= 0:
            os.close(descriptor)
            self._descriptor = -1

    def __enter__(self) -> "Table":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<mappedrecords.Table {self.path!r}: {self._count} records of {self.schema.describe()}>"


def open(path: PathLike) -> Table:  # noqa: A001 - the package's entry point, like io.open
    """Opens a table for reading; raises a ``FormatError`` subclass for anything that is not a
    table this package reads, ``FileNotFoundError``/``PermissionError`` from the OS."""
    return Table(path)


class Writer:
    """A new table, written by this process: ``mappedrecords.create(path, dtype)``; a context manager.

    It follows docs/FORMAT.md's writer protocol: the file is written while it has no name and
    linked into place whole; this process holds the writer lock while it is open; records are
    published with the live word, after they are written; ``commit()`` syncs (in the durable
    modes) and writes the next commit slot. It makes no doorbell (readers of its tables check in
    intervals of at most 100 ms).
    """

    def __init__(self, path: PathLike, dtype, metadata=None, durability: str = "batch", capacity: int = 1024):
        if durability not in _format.DURABILITY:
            raise ValueError(f"durability must be one of {', '.join(_format.DURABILITY)}, not {durability!r}")
        if capacity < 0 or capacity > _format.MAX_COUNT:
            raise ValueError(f"the capacity {capacity} is outside 0 to 2^48 - 1")
        self.path = os.fspath(path)
        self.schema = _format.schema_from_dtype(dtype)
        self.dtype = self.schema.dtype
        self.durability = durability
        items = list(metadata.items()) if isinstance(metadata, Mapping) else list(metadata or [])
        self._boot = _format.boot_identifier()
        self._header = _format.encode_header(self.schema, items, durability, max(capacity, 1), self._boot)
        self._data_offset = len(self._header)
        stride = self.schema.stride
        size = -(-(self._data_offset + max(capacity, 1) * stride) // _format.PAGE_SIZE) * _format.PAGE_SIZE
        directory = os.path.dirname(os.path.abspath(self.path))
        self._descriptor = os.open(directory, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o644)
        try:
            lock = struct.pack("hhxxxxqqixxxx", fcntl.F_WRLCK, os.SEEK_SET, 0, 1, 0)
            fcntl.fcntl(self._descriptor, fcntl.F_OFD_SETLK, lock)
            os.posix_fallocate(self._descriptor, 0, size)
            os.pwrite(self._descriptor, self._header, 0)
            if durability != "none":
                os.fsync(self._descriptor)
            directory_descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                # linkat(AT_SYMLINK_FOLLOW) of /proc/self/fd/N names the unnamed file; it fails
                # with FileExistsError if the path is taken. (A directory descriptor makes Python
                # call linkat rather than link, which would not follow the /proc link.)
                try:
                    os.link(f"/proc/self/fd/{self._descriptor}", os.path.abspath(self.path),
                            src_dir_fd=directory_descriptor, follow_symlinks=True)
                except FileExistsError:
                    raise FileExistsError(errno.EEXIST, "a file already exists at the path; create never replaces one",
                                          self.path) from None
                if durability != "none":
                    os.fsync(directory_descriptor)
            finally:
                os.close(directory_descriptor)
        except BaseException:
            os.close(self._descriptor)
            raise
        self._size = size
        self._mapping, self._address = _map(self._descriptor, size, writable=True)
        self._count = 0
        self._generation = 1
        self._synced_below = 0
        self._closed = False
        self._padding = self._has_padding()

    def _has_padding(self) -> bool:
        covered = np.zeros(self.schema.stride, dtype=bool)
        for f in self.schema.fields:
            covered[f.offset:f.offset + f.size] = True
        return not covered.all()

    @property
    def capacity(self) -> int:
        return (self._size - self._data_offset) // self.schema.stride

    def __len__(self) -> int:
        return self._count

    def _grow(self, minimum: int) -> None:
        stride = self.schema.stride
        target = max(minimum, self.capacity + max(self.capacity, (1 << 16) // stride))
        size = -(-(self._data_offset + target * stride) // _format.PAGE_SIZE) * _format.PAGE_SIZE
        os.posix_fallocate(self._descriptor, 0, size)  # the file grows before any count covers it
        old = self._mapping
        self._mapping, self._address = _map(self._descriptor, size, writable=True)
        self._size = size
        try:
            old.close()
        except BufferError:
            pass

    def append(self, records) -> None:
        """Appends records (a structured array or anything numpy converts to this dtype, matched by
        field name) and publishes them together: readers see all or none."""
        self._require_open()
        source = np.asarray(records)
        if source.dtype != self.dtype or self._padding:
            # Field by field into zeros: padding bytes are stored as zeros (docs/FORMAT.md).
            converted = np.zeros(source.shape, dtype=self.dtype)
            if source.dtype.names is None:
                raise ValueError("append takes a structured array with this table's field names")
            for name in self.dtype.names:
                converted[name] = source[name]
            source = converted
        source = np.ascontiguousarray(source).reshape(-1)
        n = len(source)
        if n == 0:
            return
        if self._count + n > _format.MAX_COUNT:
            raise ValueError("a table holds at most 2^48 - 1 records")
        if self._count + n > self.capacity:
            self._grow(self._count + n)
        start = self._data_offset + self._count * self.schema.stride
        destination = np.frombuffer(self._mapping, dtype=np.uint8, count=source.nbytes, offset=start)
        destination[:] = source.view(np.uint8)
        del destination
        self._publish(self._count + n)

    def _publish(self, count: int) -> None:
        _waiting.full_barrier()
        ctypes.c_uint64.from_address(self._address + _format.LIVE_WORD_OFFSET).value = _format.live_word(count)
        self._count = count
        if self.durability == "everyAppend":
            self.commit()

    def commit(self) -> None:
        """Writes a commit point for the current count; in the durable modes the new records reach
        the disk first (msync), and the slot after them."""
        self._require_open()
        stride, page = self.schema.stride, _format.PAGE_SIZE
        if self.durability != "none" and self._synced_below < self._count:
            start = (self._data_offset + self._synced_below * stride) // page * page
            end = self._data_offset + self._count * stride
            self._mapping.flush(start, end - start)
        slot = _format.CommitSlot(self._generation + 1, self._count, self.capacity)
        offset = _format.SLOT_OFFSETS[slot.generation % 2]
        self._mapping[offset:offset + _format.SLOT_SIZE] = slot.encode()
        if self.durability != "none":
            self._mapping.flush(0, page)
        self._generation = slot.generation
        self._synced_below = self._count

    def close(self) -> None:
        """Commits, releases the writer lock and closes the file. Closing twice does nothing."""
        if self._closed:
            return
        try:
            self.commit()
        finally:
            self._closed = True
            try:
                self._mapping.close()
            except BufferError:
                pass
            os.close(self._descriptor)

    def _require_open(self) -> None:
        if self._closed:
            raise ValueError(f"the writer of {self.path} is closed")

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def create(path: PathLike, dtype, metadata=None, durability: str = "batch", capacity: int = 1024) -> Writer:
    """Creates a table at ``path`` (``FileExistsError`` if the path is taken) for records of
    ``dtype``, a numpy structured dtype; see ``Writer``. ``durability`` is ``none``, ``batch`` or
    ``everyAppend`` (docs/FORMAT.md)."""
    return Writer(path, dtype, metadata=metadata, durability=durability, capacity=capacity)
