"""Sleeping until a writer publishes (docs/FORMAT.md, "Doorbell"), through ctypes: futex(2),
membarrier(2) and System V shared memory. Where any of it is missing, waits poll instead."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import struct
import time
from typing import Any, List, Optional, Tuple

from . import _format

_SYSCALLS = {"x86_64": (202, 324), "aarch64": (98, 283)}  # (futex, membarrier)
_FUTEX_WAIT = 0
_FUTEX_WAKE = 1
_MEMBARRIER_CMD_GLOBAL_EXPEDITED = 1 << 1
_MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED = 1 << 2
_IPC_PRIVATE = 0
_IPC_CREAT = 0o1000
_IPC_EXCL = 0o2000
_IPC_RMID = 0
_IPC_SET = 1
_IPC_STAT = 2
_INT_MAX = 0x7FFFFFFF
_DOORBELL_MAGIC = 0x4C4C45424345524D
_REGISTRATION_OFFSET = 64
_SEGMENT_SIZE = 4096
_LONGEST_SLEEP = 1.0
_LONGEST_SLEEP_WITHOUT_DOORBELL = 0.1


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _IpcPerm(ctypes.Structure):  # struct ipc_perm on Linux x86-64 and arm64
    _fields_ = [("key", ctypes.c_int), ("uid", ctypes.c_uint), ("gid", ctypes.c_uint), ("cuid", ctypes.c_uint),
                ("cgid", ctypes.c_uint), ("mode", ctypes.c_ushort), ("pad1", ctypes.c_ushort), ("seq", ctypes.c_ushort),
                ("pad2", ctypes.c_ushort), ("unused1", ctypes.c_ulong), ("unused2", ctypes.c_ulong)]


class _ShmidDs(ctypes.Structure):
    _fields_ = [("perm", _IpcPerm), ("segsz", ctypes.c_size_t), ("atime", ctypes.c_long), ("dtime", ctypes.c_long),
                ("ctime", ctypes.c_long), ("cpid", ctypes.c_int), ("lpid", ctypes.c_int), ("nattch", ctypes.c_ulong),
                ("unused4", ctypes.c_ulong), ("unused5", ctypes.c_ulong)]


_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.shmat.restype = ctypes.c_void_p
_libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
_libc.shmdt.argtypes = [ctypes.c_void_p]
_libc.shmget.restype = ctypes.c_int
_libc.shmget.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.c_int]
_libc.shmctl.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(_ShmidDs)]
_numbers = _SYSCALLS.get(platform.machine())


def _membarrier_works() -> bool:
    if _numbers is None:
        return False
    return bool(_libc.syscall(ctypes.c_long(_numbers[1]), ctypes.c_int(_MEMBARRIER_CMD_GLOBAL_EXPEDITED),
                              ctypes.c_int(0)) == 0)


_BARRIERS_WORK = _membarrier_works()


def futex_wait(address: int, expected: int, timeout: float) -> None:
    """Sleeps while the u32 at ``address`` equals ``expected``, at most ``timeout`` seconds."""
    if _numbers is None:
        time.sleep(min(timeout, 0.01))
        return
    seconds = int(timeout)
    spec = _Timespec(seconds, int((timeout - seconds) * 1e9))
    _libc.syscall(ctypes.c_long(_numbers[0]), ctypes.c_void_p(address), ctypes.c_int(_FUTEX_WAIT),
                  ctypes.c_uint32(expected), ctypes.byref(spec), ctypes.c_void_p(0), ctypes.c_int(0))


def futex_wake_all(address: int) -> None:
    """Wakes every process sleeping on the u32 at ``address`` (a shared futex)."""
    if _numbers is not None:
        _libc.syscall(ctypes.c_long(_numbers[0]), ctypes.c_void_p(address), ctypes.c_int(_FUTEX_WAKE),
                      ctypes.c_int(_INT_MAX), ctypes.c_void_p(0), ctypes.c_void_p(0), ctypes.c_int(0))


def _register_for_barriers() -> bool:
    """A writer's ``membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED)``, once per process."""
    if _numbers is None:
        return False
    return bool(_libc.syscall(ctypes.c_long(_numbers[1]), ctypes.c_int(_MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED),
                              ctypes.c_int(0)) == 0)


def _load_libatomic() -> Any:
    name = ctypes.util.find_library("atomic")
    if name is None:
        return None
    try:
        function = ctypes.CDLL(name).__atomic_compare_exchange_8
    except (OSError, AttributeError):
        return None
    function.restype = ctypes.c_bool
    function.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_bool, ctypes.c_int, ctypes.c_int]
    return function


_ATOMIC_COMPARE_EXCHANGE = _load_libatomic()  # GCC's libatomic (Debian's libatomic1)
_SEQUENTIALLY_CONSISTENT = 5


def _compare_exchange_u64(address: int, expected: int, desired: int) -> int:
    """An atomic 8-byte compare-and-exchange (libatomic's ``__atomic_compare_exchange_8``);
    returns the value found. Callers use it only where libatomic is present."""
    found = ctypes.c_uint64(expected)
    _ATOMIC_COMPARE_EXCHANGE(address, ctypes.addressof(found), desired, False, _SEQUENTIALLY_CONSISTENT,
                             _SEQUENTIALLY_CONSISTENT)
    return found.value


_WRITER_BARRIERS: Optional[bool] = None


class WriterDoorbell:
    """A writer's side of the doorbell (docs/FORMAT.md, "Doorbell"): a 4 KiB System V segment,
    created, attached and marked for removal at once, so that nothing outlives the processes
    that have it attached. ``make`` returns None where the system offers none."""

    def __init__(self, segment: int, live_area_word: int):
        self.segment = segment
        self.registration = segment + _REGISTRATION_OFFSET
        self.live_area_word = live_area_word

    @staticmethod
    def make(descriptor: int) -> Optional["WriterDoorbell"]:
        global _WRITER_BARRIERS
        if _WRITER_BARRIERS is None:
            _WRITER_BARRIERS = _register_for_barriers()
        if not _WRITER_BARRIERS or _ATOMIC_COMPARE_EXCHANGE is None:
            return None
        status = os.fstat(descriptor)
        # Read-write for the owner, and for the group and others if they may read the table.
        mode = 0o600 | (0o060 if status.st_mode & 0o040 else 0) | (0o006 if status.st_mode & 0o004 else 0)
        identifier = _libc.shmget(_IPC_PRIVATE, _SEGMENT_SIZE, _IPC_CREAT | _IPC_EXCL | mode)
        if identifier < 0:
            return None
        segment_status = _ShmidDs()
        if _libc.shmctl(identifier, _IPC_STAT, ctypes.byref(segment_status)) == 0:
            segment_status.perm.gid = status.st_gid  # the table's readers, not the writer's group
            _libc.shmctl(identifier, _IPC_SET, ctypes.byref(segment_status))
        address = _libc.shmat(identifier, None, 0)
        # Marked for removal at once: it lives while someone has it attached, and no longer.
        _libc.shmctl(identifier, _IPC_RMID, ctypes.byref(segment_status))
        if address is None or address == ctypes.c_void_p(-1).value:
            return None
        ctypes.memmove(address + 8, struct.pack("<QQI", status.st_dev, status.st_ino, os.getpid()), 20)
        full_barrier()  # the identity before the magic that vouches for it
        ctypes.c_uint64.from_address(address).value = _DOORBELL_MAGIC
        word = ((identifier + 1) & 0xFFFFFFFF) | (os.geteuid() << 32)
        return WriterDoorbell(address, word)

    def ring_if_registered(self, count: int, live_word_address: int) -> None:
        """After a publish of ``count``: wakes every sleeper if one waits for no more than it."""
        registered = ctypes.c_uint64.from_address(self.registration).value
        if registered and count >= (~registered & 0xFFFFFFFFFFFFFFFF):
            _compare_exchange_u64(self.registration, registered, 0)
            futex_wake_all(live_word_address)

    def close(self) -> None:
        if self.segment:
            _libc.shmdt(ctypes.c_void_p(self.segment))
            self.segment = 0


class DoorbellListener:
    """A reader's side of the doorbell: the writer's segment, attached while the live area names it."""

    def __init__(self, device: int, inode: int):
        self.device = device
        self.inode = inode
        self.attached_for = 0
        self.segment: Optional[int] = None

    def close(self) -> None:
        if self.segment is not None:
            _libc.shmdt(ctypes.c_void_p(self.segment))
        self.segment = None
        self.attached_for = 0

    def _attach(self, word: int) -> None:
        self.attached_for = word
        identifier = ((word & 0xFFFFFFFF) - 1) & 0xFFFFFFFF
        identifier = identifier - (1 << 32) if identifier >= 1 << 31 else identifier
        status = _ShmidDs()
        if _libc.shmctl(identifier, _IPC_STAT, ctypes.byref(status)) != 0:
            return
        if status.segsz != _SEGMENT_SIZE or status.perm.cuid != word >> 32:
            return
        address = _libc.shmat(identifier, None, 0)
        if address is None or address == ctypes.c_void_p(-1).value:
            return
        magic, device, inode = struct.unpack("<QQQ", ctypes.string_at(address, 24))
        if magic != _DOORBELL_MAGIC or device != self.device or inode != self.inode:
            _libc.shmdt(ctypes.c_void_p(address))
            return
        self.segment = address

    def register(self, target: int, doorbell_word: int) -> bool:
        """Registers as a sleeper until the count reaches ``target``; False if there is no usable doorbell."""
        if not _BARRIERS_WORK or _ATOMIC_COMPARE_EXCHANGE is None or doorbell_word & 0xFFFFFFFF == 0:
            return False
        if doorbell_word != self.attached_for:
            self.close()
            self._attach(doorbell_word)
        if self.segment is None:
            return False
        # Lower the registered target to ours: the word holds the complement of the smallest
        # target (0: none), so lowering the target is raising the word.
        word = self.segment + _REGISTRATION_OFFSET
        wanted = ~max(0, min(target, _format.MAX_COUNT)) & 0xFFFFFFFFFFFFFFFF
        current = ctypes.c_uint64.from_address(word).value
        while current < wanted:
            found = _compare_exchange_u64(word, current, wanted)
            if found == current:
                break
            current = found
        # The reader's half of the asymmetric fence (docs/FORMAT.md, "Doorbell").
        assert _numbers is not None  # _BARRIERS_WORK needs them
        return bool(_libc.syscall(ctypes.c_long(_numbers[1]), ctypes.c_int(_MEMBARRIER_CMD_GLOBAL_EXPEDITED),
                                  ctypes.c_int(0)) == 0)


def sleep_once(listener: DoorbellListener, live_address: int, seen: int, target: int, this_boot: bool,
               doorbell_word: int, remaining: float, backoff: List[float]) -> None:
    """One sleep on the live word, registered with the doorbell (until the count reaches
    ``target``) when there is one."""
    if this_boot and listener.register(target, doorbell_word):
        futex_wait(live_address, seen & 0xFFFFFFFF, min(_LONGEST_SLEEP, remaining))
        return
    backoff[0] = min(backoff[0] * 2, _LONGEST_SLEEP_WITHOUT_DOORBELL)
    futex_wait(live_address, seen & 0xFFFFFFFF, min(backoff[0], remaining))


def full_barrier() -> None:
    """Orders the record stores before the live-word store on processors that reorder stores
    (not x86-64, whose stores are ordered already): membarrier, or nothing where it is missing."""
    if platform.machine() not in ("x86_64", "AMD64") and _numbers is not None:
        _libc.syscall(ctypes.c_long(_numbers[1]), ctypes.c_int(1 << 0), ctypes.c_int(0))  # MEMBARRIER_CMD_GLOBAL


def file_identity(descriptor: int) -> Tuple[int, int]:
    status = os.fstat(descriptor)
    return status.st_dev, status.st_ino
