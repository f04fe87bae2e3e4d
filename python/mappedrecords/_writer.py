"""Writing tables: new ones (``create``) and existing ones (``open(path, mode="a")``), by the
writer's protocol and lifecycle of docs/FORMAT.md."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import mmap
import os
import stat
import struct
import time
from typing import Any, Iterable, Mapping, Optional, Tuple, Union

import numpy as np

from . import _format, _waiting
from ._format import NotATableError, ReplacedError, SealedError, WriterActiveError

PathLike = Union[str, "os.PathLike[str]"]
Metadata = Union[Mapping[str, str], Iterable[Tuple[str, str]], None]

# The writer lock: an open-file-description write lock on byte 0 (docs/FORMAT.md, "The writer's lifecycle").
_LOCK = struct.pack("hhxxxxqqixxxx", fcntl.F_WRLCK, os.SEEK_SET, 0, 1, 0)
# How often an append-mode open takes the lock again when another file took the path meanwhile
# (Swift's TableStorage.reopenAttempts).
_REOPEN_ATTEMPTS = 16


def _map(descriptor: int, size: int) -> Tuple[mmap.mmap, int]:
    mapping = mmap.mmap(descriptor, size, access=mmap.ACCESS_WRITE)
    address = np.frombuffer(mapping, dtype=np.uint8, count=1).ctypes.data
    return mapping, address


def _page_multiple(size: int) -> int:
    return -(-size // _format.PAGE_SIZE) * _format.PAGE_SIZE


def _try_lock(descriptor: int) -> bool:
    try:
        fcntl.fcntl(descriptor, fcntl.F_OFD_SETLK, _LOCK)
        return True
    except OSError as error:
        if error.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise


def _is_named_by(descriptor: int, path: str) -> bool:
    """Whether ``path`` names the file open on ``descriptor`` (one stat, one fstat)."""
    opened = os.fstat(descriptor)
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


class Writer:
    """A table this process writes; a context manager. ``mappedrecords.create(path, dtype)`` makes
    a new one, ``mappedrecords.open(path, mode="a")`` appends to an existing one.

    It follows docs/FORMAT.md: this process holds the writer lock while it is open; records are
    written, then published with the live word, then the doorbell rings if a reader sleeps
    (Swift and Python followers wake at once); ``commit()`` syncs (in the durable modes) and
    writes the next commit slot; the file grows as Swift's writer grows it.
    """

    path: str
    schema: _format.Schema
    dtype: np.dtype
    durability: str

    def __init__(self) -> None:  # use create() or open(path, mode="a")
        self._closed = True
        self._doorbell: Optional[_waiting.WriterDoorbell] = None

    # Making one

    @classmethod
    def _create(cls, path: PathLike, dtype: Any, metadata: Metadata, durability: str, capacity: int) -> "Writer":
        _check_durability(durability)
        if capacity < 0 or capacity > _format.MAX_COUNT:
            raise ValueError(f"the capacity {capacity} is outside 0 to 2^48 - 1")
        self = cls()
        self.path = os.fspath(path)
        self.schema = _format.schema_from_dtype(dtype)
        self.dtype = self.schema.dtype
        self.durability = durability
        items = list(metadata.items()) if isinstance(metadata, Mapping) else list(metadata or [])
        boot = _format.boot_identifier()
        header = _format.encode_header(self.schema, items, durability, max(capacity, 1), boot)
        data_offset = len(header)
        size = _page_multiple(data_offset + max(capacity, 1) * self.schema.stride)
        directory = os.path.dirname(os.path.abspath(self.path))
        descriptor = os.open(directory, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o644)
        try:
            fcntl.fcntl(descriptor, fcntl.F_OFD_SETLK, _LOCK)  # nobody else can see the file yet
            os.posix_fallocate(descriptor, 0, size)
            os.pwrite(descriptor, header, 0)
            if durability != "none":
                os.fsync(descriptor)
            _link(descriptor, directory, self.path, durability != "none")
        except BaseException:
            os.close(descriptor)
            raise
        self._start(descriptor, size, data_offset, count=0, generation=1)
        return self

    @classmethod
    def _append_to(cls, path: PathLike, durability: str, wait_for_writer: float) -> "Writer":
        _check_durability(durability)
        self = cls()
        self.path = os.fspath(path)
        self.durability = durability
        deadline = time.monotonic() + max(0.0, wait_for_writer)
        for attempt in range(_REOPEN_ATTEMPTS):
            descriptor = _open_for_writing(self.path)
            try:
                while not _try_lock(descriptor):
                    if time.monotonic() >= deadline:
                        raise WriterActiveError(self.path, "another process has the table open for writing")
                    time.sleep(0.005)
                # The lock is on the file this descriptor opened; a migration may have renamed
                # another file over the path meanwhile, which is the table now.
                if _is_named_by(descriptor, self.path):
                    self._take_over(descriptor)
                    return self
            except BaseException:
                os.close(descriptor)
                raise
            os.close(descriptor)
        raise ReplacedError(self.path, f"another file took the path each of {_REOPEN_ATTEMPTS} times this process got "
                                       "the writer lock; nothing was written")

    def _take_over(self, descriptor: int) -> None:
        """Validates the table, chooses its count and takes over its live area (docs/FORMAT.md,
        "Opening an existing table for writing")."""
        size = os.fstat(descriptor).st_size
        if size == 0:
            raise NotATableError(self.path, "the file is empty, not a record table")
        mapping = mmap.mmap(descriptor, size, access=mmap.ACCESS_READ)
        try:
            header = _format.decode_header(self.path, mapping, size)
            boot = _format.boot_identifier()
            capacity = (size - header.data_offset) // header.schema.stride
            slot = _format.latest_slot(mapping)
            count = _format.count_rule(self.path, _format.this_boots_live_word(mapping, boot), slot, capacity)
            seal = int.from_bytes(mapping[_format.SEAL_WORD_OFFSET:_format.SEAL_WORD_OFFSET + 8], "little")
            following = _format.sealed_successor(seal)
            if following is not None:
                raise SealedError(self.path, f"the table is sealed: its series continues in file {following}; "
                                             "open that one to append")
        finally:
            mapping.close()
        assert slot is not None  # count_rule refuses a table without a valid slot
        self.schema = header.schema
        self.dtype = header.schema.dtype
        self._start(descriptor, size, header.data_offset, count=count, generation=slot.generation)
        live = self._address + _format.LIVE_OFFSET
        if ctypes.string_at(live, 16) != boot:
            # Another boot's live word may count records that never reached the disk: invalidate
            # it before this boot's identifier vouches for the live area.
            ctypes.c_uint64.from_address(self._address + _format.LIVE_WORD_OFFSET).value = 0
            _waiting.full_barrier()
            ctypes.memmove(live, boot, 16)
        _waiting.full_barrier()
        ctypes.c_uint64.from_address(self._address + _format.LIVE_WORD_OFFSET).value = _format.live_word(count)

    def _start(self, descriptor: int, size: int, data_offset: int, count: int, generation: int) -> None:
        self._descriptor = descriptor
        self._size = size
        self._data_offset = data_offset
        self._mapping, self._address = _map(descriptor, size)
        self._count = count
        self._generation = generation
        self._synced_below = count
        self._closed = False
        self._padding = _has_padding(self.schema)
        self._doorbell = _waiting.WriterDoorbell.make(descriptor)
        # Name this writer's doorbell (or none), then wake every sleeper so that readers
        # registered with an earlier writer's doorbell move to this one.
        word = self._doorbell.live_area_word if self._doorbell is not None else 0
        _waiting.full_barrier()
        ctypes.c_uint64.from_address(self._address + _format.DOORBELL_WORD_OFFSET).value = word
        _waiting.futex_wake_all(self._address + _format.LIVE_WORD_OFFSET)

    # The records

    @property
    def capacity(self) -> int:
        """Records the file has room for before it grows."""
        return (self._size - self._data_offset) // self.schema.stride

    @property
    def has_doorbell(self) -> bool:
        """Whether followers of this writer sleep on its doorbell (else they poll)."""
        return self._doorbell is not None

    def __len__(self) -> int:
        return self._count

    def _grow(self, minimum: int) -> None:
        """Grows the file as Swift's writer does: by the current capacity, at least 64 KiB and at
        most 1 GiB of records at a time (docs/FORMAT.md, "Appending")."""
        stride = self.schema.stride
        step = min(max(self.capacity, (1 << 16) // stride), max(1, (1 << 30) // stride))
        target = max(minimum, self.capacity + step)
        size = _page_multiple(self._data_offset + target * stride)
        os.posix_fallocate(self._descriptor, 0, size)  # the file grows before any count covers it
        old = self._mapping
        self._mapping, self._address = _map(self._descriptor, size)
        self._size = size
        try:
            old.close()
        except BufferError:
            pass

    def append(self, records: Any) -> None:
        """Appends records (a structured array or anything numpy converts to this dtype, matched by
        field name) and publishes them together: readers see all or none."""
        self._require_open()
        source = np.asarray(records)
        if source.dtype != self.dtype or self._padding:
            # Field by field into zeros: padding bytes are stored as zeros (docs/FORMAT.md).
            if source.dtype.names is None:
                raise ValueError("append takes a structured array with this table's field names")
            converted = np.zeros(source.shape, dtype=self.dtype)
            for name in self.dtype.names or ():
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
        live = self._address + _format.LIVE_WORD_OFFSET
        ctypes.c_uint64.from_address(live).value = _format.live_word(count)
        self._count = count
        if self._doorbell is not None:
            self._doorbell.ring_if_registered(count, live)
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

    # Closing

    def close(self) -> None:
        """Commits, tells followers it left (doorbell word 0, a wake-up), releases the writer lock
        and closes the file. Closing twice does nothing."""
        if self._closed:
            return
        try:
            self.commit()
        finally:
            self._closed = True
            ctypes.c_uint64.from_address(self._address + _format.DOORBELL_WORD_OFFSET).value = 0
            _waiting.futex_wake_all(self._address + _format.LIVE_WORD_OFFSET)
            if self._doorbell is not None:
                self._doorbell.close()
                self._doorbell = None
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

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{self._count} records"
        return f"<mappedrecords.Writer {self.path!r}: {state}>"


def _check_durability(durability: str) -> None:
    if durability not in _format.DURABILITY:
        raise ValueError(f"durability must be one of {', '.join(_format.DURABILITY)}, not {durability!r}")


def _has_padding(schema: _format.Schema) -> bool:
    covered = np.zeros(schema.stride, dtype=bool)
    for f in schema.fields:
        covered[f.offset:f.offset + f.size] = True
    return not bool(covered.all())


def _open_for_writing(path: str) -> int:
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except IsADirectoryError:
        raise NotATableError(path, "it is a directory, not a record table") from None
    status = os.fstat(descriptor)
    if not stat.S_ISREG(status.st_mode):
        os.close(descriptor)
        raise NotATableError(path, "it is not a regular file")
    return descriptor


def _link(descriptor: int, directory: str, path: str, sync: bool) -> None:
    """Names the unnamed file: linkat(AT_SYMLINK_FOLLOW) of /proc/self/fd/N, which fails with
    FileExistsError if the path is taken. (A directory descriptor makes Python call linkat rather
    than link, which would not follow the /proc link.)"""
    directory_descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            os.link(f"/proc/self/fd/{descriptor}", os.path.abspath(path), src_dir_fd=directory_descriptor,
                    follow_symlinks=True)
        except FileExistsError:
            raise FileExistsError(errno.EEXIST, "a file already exists at the path; create never replaces one",
                                  path) from None
        if sync:
            os.fsync(directory_descriptor)
    finally:
        os.close(directory_descriptor)


def create(path: PathLike, dtype: Any, metadata: Metadata = None, durability: str = "batch",
           capacity: int = 1024) -> Writer:
    """Creates a table at ``path`` (``FileExistsError`` if the path is taken) for records of
    ``dtype``, a numpy structured dtype; see ``Writer``. ``durability`` is ``none``, ``batch`` or
    ``everyAppend`` (docs/FORMAT.md)."""
    return Writer._create(path, dtype, metadata, durability, capacity)


def append_to(path: PathLike, durability: str = "batch", wait_for_writer: float = 0.0) -> Writer:
    """Opens an existing table for appending (``open(path, mode="a")``): takes the writer lock,
    waiting up to ``wait_for_writer`` seconds for another writer to leave (else
    ``WriterActiveError``), checks that the path still names the locked file (a migration may have
    renamed a new table over it: then it opens that one), validates the table and takes it over."""
    return Writer._append_to(path, durability, wait_for_writer)
