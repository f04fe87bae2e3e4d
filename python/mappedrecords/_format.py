"""The record-table file format, version 1.x (docs/FORMAT.md): decoding, validation, encoding.

Everything here follows the text of docs/FORMAT.md; section names in comments refer to it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, NoReturn, Optional, Tuple, Union

Buffer = Union[bytes, bytearray, memoryview, Any]  # bytes or an mmap: anything struct and slicing read

import google_crc32c
import numpy as np

MAGIC = b"MRECTBL\x00"
BYTE_ORDER_MARK = 0x0A0B0C0D
VERSION_MAJOR = 1
VERSION_MINOR = 1
INCOMPATIBLE_FLAGS = 0xFFFF0000
SLOT_OFFSETS = (512, 1024)
SLOT_SIZE = 64
LIVE_OFFSET = 1536
LIVE_WORD_OFFSET = LIVE_OFFSET + 16
DOORBELL_WORD_OFFSET = LIVE_OFFSET + 24
SEAL_WORD_OFFSET = LIVE_OFFSET + 32  # minor 2: the next file of a series once sealed ("Series")
APPENDER_LOCK_OFFSET = LIVE_OFFSET + 40  # minor 2: the shared appenders' lock ("Several appenders")
APPENDER_WAITERS_OFFSET = LIVE_OFFSET + 48  # minor 2: appenders asleep on that lock
APPENDER_TOKEN_BASE = 1 << 40  # an appender with token t holds an OFD write lock on this byte + t
SCHEMA_OFFSET = 2048
# Offsets in the fixed header (docs/FORMAT.md, "Fixed header"): the one place they are written.
BYTE_ORDER_MARK_OFFSET = 8  # u32, then u16 major and u16 minor version at 12 and 14
VERSION_OFFSET = 12
CHECKSUM_OFFSET = 16  # u32 CRC-32C
FLAGS_OFFSET = 20  # u32; the fields from here to staticLength are consecutive (see HEADER_FIELDS)
STRIDE_OFFSET = 24  # u32 stride, u32 alignment, u64 dataOffset, u32 fieldCount, u32 metadataCount, u64 hash
DATA_OFFSET_OFFSET = 32  # u64 dataOffset
STATIC_LENGTH_OFFSET = 56  # u32 staticLength
HEADER_FIELDS = "<IIIQIIQI"  # flags … staticLength, from FLAGS_OFFSET
# Offsets in a field entry of the schema region (docs/FORMAT.md, "Schema region").
FIELD_NAME_BYTES = 48
FIELD_TYPE_OFFSET = 48  # u8 type code
FIELD_OFFSET_OFFSET = 52  # u32 byte offset in the record, then u32 element count
# Offsets in a commit slot (docs/FORMAT.md, "Commit slots"): u64 generation, count, capacity; CRC at 56.
SLOT_CHECKSUM_OFFSET = 56
# The fixed header's first 64 bytes say everything about a table's layout (its checksum covers the
# schema and metadata): two versions of a file with equal bytes here lay their records out alike.
SIGNATURE_BYTES = 64
FIELD_ENTRY_SIZE = 64
PAGE_SIZE = 4096
MAX_FIELDS = 1024
MAX_NAME_BYTES = 47
MAX_STRIDE = 1 << 24
MAX_COUNT = (1 << 48) - 1
MAX_METADATA_BYTES = 1 << 20
# The longest header a valid table has: the fixed part, every field entry and the most metadata.
MAX_HEADER_BYTES = -(-(SCHEMA_OFFSET + MAX_FIELDS * FIELD_ENTRY_SIZE + MAX_METADATA_BYTES) // PAGE_SIZE) * PAGE_SIZE
DURABILITY = {"none": 0, "batch": 1, "everyAppend": 2}


class FormatError(Exception):
    """A file that is not a table this package can read, or that breaks a rule of docs/FORMAT.md.

    ``path`` names the file and ``rule`` the rule it breaks, in words. ``code`` is the name of
    the failure as Swift's ``RecordTableError.Code`` spells it (``"corrupt"``, ``"notATable"``,
    ...): the same failure has the same code in both languages.
    """

    code = "corrupt"

    def __init__(self, path: str, rule: str):
        self.path = path
        self.rule = rule
        super().__init__(f"{path}: {rule}")


class NotATableError(FormatError):
    """The file is empty, or does not start with the magic bytes ``MRECTBL\\0``."""

    code = "notATable"


class ByteOrderError(FormatError):
    """The file was written big-endian (its byte-order mark reads 0x0D0C0B0A)."""

    code = "byteOrderMismatch"


class UnsupportedVersionError(FormatError):
    """Another major version, or incompatible feature flags this reader does not know."""

    code = "unsupportedVersion"


class ChecksumError(FormatError):
    """The header checksum (CRC-32C) does not match: the header is damaged."""

    code = "corrupt"


class SchemaError(FormatError):
    """The schema region is damaged: overflowing, overlapping or unknown fields, a wrong schema
    hash, or bad metadata."""

    code = "corrupt"


class CountError(FormatError):
    """The count points past the end of the file (it was truncated), or no commit slot is valid."""

    code = "corrupt"


class TruncatedError(FormatError):
    """Another process truncated the file while it was open."""

    code = "truncated"


class WriterActiveError(FormatError):
    """Another process holds the table's writer lock."""

    code = "writerActive"


class SealedError(FormatError):
    """A writer opened a sealed table: its series went on to the next file (docs/FORMAT.md, "Series")."""

    code = "sealed"


class ReplacedError(FormatError):
    """Another file took the table's path while it was open (a migration, or a replacement):
    open the path again to read the new table."""

    code = "replaced"


# Type codes (docs/FORMAT.md, "Schema region"): code -> (name, element size, numpy base type).
TYPES: Dict[int, Tuple[str, int, str]] = {
    1: ("i8", 1, "i1"), 2: ("i16", 2, "<i2"), 3: ("i32", 4, "<i4"), 4: ("i64", 8, "<i8"),
    5: ("u8", 1, "u1"), 6: ("u16", 2, "<u2"), 7: ("u32", 4, "<u4"), 8: ("u64", 8, "<u8"),
    9: ("f32", 4, "<f4"), 10: ("f64", 8, "<f8"), 11: ("bool", 1, "?"), 12: ("bytes", 1, "V"), 13: ("char", 1, "S"),
}
CODES_BY_NAME = {name: code for code, (name, _, _) in TYPES.items()}


@dataclass(frozen=True)
class Field:
    """One field of a record: its name, type name (``f64``, ``char`` …), byte offset and element count."""

    name: str
    type: str
    offset: int
    count: int = 1

    @property
    def code(self) -> int:
        return CODES_BY_NAME[self.type]

    @property
    def element_size(self) -> int:
        return TYPES[self.code][1]

    @property
    def size(self) -> int:
        return self.element_size * self.count

    @property
    def numpy_format(self) -> Any:
        base = TYPES[self.code][2]
        if self.type in ("bytes", "char"):
            return f"{base}{self.count}"
        return base if self.count == 1 else (base, (self.count,))


@dataclass(frozen=True)
class Schema:
    """A record layout: fields, stride (bytes per record) and alignment."""

    fields: Tuple[Field, ...]
    stride: int
    alignment: int

    @property
    def dtype(self) -> np.dtype:
        return np.dtype({
            "names": [f.name for f in self.fields],
            "formats": [f.numpy_format for f in self.fields],
            "offsets": [f.offset for f in self.fields],
            "itemsize": self.stride,
        })

    def hash64(self) -> int:
        """FNV-1a 64 over stride, alignment and each field (docs/FORMAT.md, "Schema hash")."""
        value = 0xCBF29CE484222325
        data = bytearray(struct.pack("<QQ", self.stride, self.alignment))
        for f in self.fields:
            data += f.name.encode() + b"\x00" + bytes([f.code]) + struct.pack("<QQ", f.offset, f.count)
        for byte in data:
            value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
        return value

    def describe(self) -> str:
        parts = [f"{f.name}:{f.type}{'' if f.count == 1 else f'[{f.count}]'}@{f.offset}" for f in self.fields]
        return ",".join(parts)

    def check(self, problem: Callable[[str], NoReturn]) -> None:
        """Applies the schema rules; calls ``problem(message)``, which raises, on the first broken one."""
        if not 1 <= len(self.fields) <= MAX_FIELDS:
            problem(f"the schema has {len(self.fields)} fields; 1 to {MAX_FIELDS} are allowed")
        a = self.alignment
        if a <= 0 or a & (a - 1) or a > 4096:
            problem(f"the alignment {a} is not a power of two up to 4096")
        if self.stride <= 0 or self.stride > MAX_STRIDE or self.stride % a:
            problem(f"the stride {self.stride} is not a positive multiple of the alignment {a}, up to 16 MiB")
        names = set()
        spans: List[Tuple[int, int, str]] = []
        for f in self.fields:
            raw = f.name.encode()
            if not 1 <= len(raw) <= MAX_NAME_BYTES or b"\x00" in raw:
                problem(f"the field name {f.name!r} is not 1 to {MAX_NAME_BYTES} bytes without NUL")
            if f.name in names:
                problem(f"the field name {f.name!r} appears twice")
            names.add(f.name)
            if not 1 <= f.count <= 1 << 24:
                problem(f"field {f.name!r} has the element count {f.count}; 1 to 16777216 are allowed")
            if f.offset < 0 or f.offset + f.size > self.stride:
                problem(f"field {f.name!r} ({f.size} bytes at offset {f.offset}) overflows the stride {self.stride}")
            for start, end, other in spans:
                if f.offset < end and start < f.offset + f.size:
                    problem(f"fields {other!r} and {f.name!r} overlap")
            spans.append((f.offset, f.offset + f.size, f.name))


def schema_from_dtype(dtype: Any) -> Schema:
    """The schema of a numpy structured dtype: one field per named field, at its offset.

    Scalars of ``i1…i8``, ``u1…u8``, ``f4``, ``f8`` and ``?``, fixed arrays of them (``(f4, (3,))``),
    ``SN`` (``char[N]``) and ``VN`` (``bytes[N]``). Big-endian fields are refused. The alignment is
    the largest element size, as a C compiler lays fields out; if the itemsize is not a multiple of
    it (a packed dtype), the largest power of two that divides the itemsize (docs/FORMAT.md, "Layout").
    """
    dtype = np.dtype(dtype)
    if dtype.names is None:
        raise ValueError("a table's dtype must be a structured dtype with named fields")
    fields = []
    alignment = 1
    for name in dtype.names:
        base, offset = dtype.fields[name][0], dtype.fields[name][1]
        count = 1
        if base.subdtype is not None:
            base, shape = base.subdtype
            count = int(np.prod(shape))
        if base.kind == "S":
            type_name, count = "char", base.itemsize * count
        elif base.kind == "V" and base.names is None:
            type_name, count = "bytes", base.itemsize * count
        elif base.kind == "b":
            type_name = "bool"
        elif base.kind in "iuf":
            if base.byteorder == ">" or (base.byteorder == "=" and np.little_endian is False):
                raise ValueError(f"field {name!r} is big-endian; tables are little-endian")
            type_name = {"i": "i", "u": "u", "f": "f"}[base.kind] + str(base.itemsize * 8)
            if type_name not in CODES_BY_NAME:
                raise ValueError(f"field {name!r} has the type {base}, which tables do not store")
        else:
            raise ValueError(f"field {name!r} has the type {base}, which tables do not store")
        f = Field(name=name, type=type_name, offset=int(offset), count=int(count))
        alignment = max(alignment, f.element_size)
        fields.append(f)
    stride = dtype.itemsize
    if stride % alignment:
        alignment = stride & -stride
    schema = Schema(tuple(fields), stride, min(alignment, 4096))

    def problem(message: str) -> NoReturn:
        raise ValueError(message)

    schema.check(problem)
    return schema


def crc32c(data: Buffer) -> int:
    return int(google_crc32c.value(bytes(data)))


def header_checksum(header: Buffer, static_length: int) -> int:
    """CRC-32C over bytes 0–511 (bytes 16–19 read as zero), then the schema region."""
    data = bytearray(header[:512])
    data[CHECKSUM_OFFSET:CHECKSUM_OFFSET + 4] = b"\x00\x00\x00\x00"
    return int(google_crc32c.value(bytes(data) + bytes(header[SCHEMA_OFFSET:SCHEMA_OFFSET + static_length])))


def live_word(count: int) -> int:
    check = ~(count ^ (count >> 16) ^ (count >> 32)) & 0xFFFF
    return count | (check << 48)


def live_count(word: int) -> Optional[int]:
    count = word & 0xFFFFFFFFFFFF
    return count if word >> 48 == (~(count ^ (count >> 16) ^ (count >> 32)) & 0xFFFF) else None


def sealed_successor(word: int) -> Optional[int]:
    """The next file's number in a seal mark (encoded as a live word is), or None: not sealed."""
    number = live_count(word)
    return number if number else None


# A series (docs/FORMAT.md, "Series"): a directory of tables named by number.
SERIES_DIGITS = 8
SERIES_EXTENSION = ".mrec"


def series_file_name(number: int) -> str:
    """``00000042.mrec`` for 42."""
    return f"{number:0{SERIES_DIGITS}d}{SERIES_EXTENSION}"


def series_file_number(name: str) -> Optional[int]:
    """The number a series file's name gives (at least 8 digits, then ``.mrec``), or None."""
    if not name.endswith(SERIES_EXTENSION):
        return None
    digits = name[:-len(SERIES_EXTENSION)]
    if not (SERIES_DIGITS <= len(digits) <= 15) or not digits.isascii() or not digits.isdigit():
        return None
    number = int(digits)
    return number if number >= 1 else None


def boot_identifier() -> bytes:
    """This boot's identifier: /proc/sys/kernel/random/boot_id as 16 bytes."""
    with open("/proc/sys/kernel/random/boot_id") as f:
        return bytes.fromhex(f.read().strip().replace("-", ""))


@dataclass
class CommitSlot:
    generation: int
    count: int
    capacity: int

    def encode(self) -> bytes:
        head = struct.pack("<QQQ", self.generation, self.count, self.capacity) + bytes(32)
        return head + struct.pack("<II", crc32c(head), 0)  # the CRC at SLOT_CHECKSUM_OFFSET

    @staticmethod
    def decode(data: bytes) -> Optional["CommitSlot"]:
        generation, count, capacity = struct.unpack_from("<QQQ", data, 0)
        (stored,) = struct.unpack_from("<I", data, SLOT_CHECKSUM_OFFSET)
        if generation == 0 or stored != crc32c(data[:SLOT_CHECKSUM_OFFSET]) or count > capacity:
            return None
        return CommitSlot(generation, count, capacity)


def latest_slot(header: Buffer) -> Optional[CommitSlot]:
    slots = [CommitSlot.decode(bytes(header[o:o + SLOT_SIZE])) for o in SLOT_OFFSETS]
    valid = [s for s in slots if s is not None]
    return max(valid, key=lambda s: s.generation) if valid else None


@dataclass
class Header:
    """A validated header."""

    schema: Schema
    metadata: Dict[str, str]
    metadata_items: List[Tuple[str, str]]
    flags: int
    version: Tuple[int, int]
    data_offset: int
    static_length: int

    @property
    def durability(self) -> str:
        return {0: "none", 1: "batch", 2: "everyAppend"}.get(self.flags & 3, "none")


def decode_header(path: str, header: Buffer, file_size: int) -> Header:
    """Validates a header in the order docs/FORMAT.md gives ("Order of checks"), raising the
    FormatError subclass of the first rule broken. ``header`` holds at least the first
    min(file_size, dataOffset) bytes."""
    if file_size == 0:
        raise NotATableError(path, "the file is empty, not a record table")
    if len(header) < 12 or bytes(header[:8]) != MAGIC:
        raise NotATableError(path, "it does not start with the magic bytes of a record table (MRECTBL)")
    (mark,) = struct.unpack_from("<I", header, BYTE_ORDER_MARK_OFFSET)
    if mark != BYTE_ORDER_MARK:
        if mark == 0x0D0C0B0A:
            raise ByteOrderError(path, "it was written with the opposite byte order (big-endian)")
        raise FormatError(path, f"the byte-order mark is 0x{mark:x}, not 0x0a0b0c0d")
    if file_size < PAGE_SIZE or len(header) < PAGE_SIZE:
        raise FormatError(path, f"the file has {file_size} bytes, fewer than the 4096-byte header")
    major, minor = struct.unpack_from("<HH", header, VERSION_OFFSET)
    if major != VERSION_MAJOR:
        raise UnsupportedVersionError(path, f"it has format version {major}.{minor}; this package reads version {VERSION_MAJOR}.x")
    (flags,) = struct.unpack_from("<I", header, FLAGS_OFFSET)
    if flags & INCOMPATIBLE_FLAGS:
        raise UnsupportedVersionError(path, f"it needs features this package does not know (flags 0x{flags:x})")
    (static_length,) = struct.unpack_from("<I", header, STATIC_LENGTH_OFFSET)
    if static_length > len(header) - SCHEMA_OFFSET:
        raise SchemaError(path, f"the schema region ({static_length} bytes) runs past the header")
    (stored,) = struct.unpack_from("<I", header, CHECKSUM_OFFSET)
    if stored != header_checksum(header, static_length):
        raise ChecksumError(path, "the header checksum does not match; the header is damaged")
    stride, alignment, data_offset, field_count, metadata_count, schema_hash = struct.unpack_from("<IIQIIQ", header, STRIDE_OFFSET)
    if data_offset % PAGE_SIZE or data_offset < SCHEMA_OFFSET + static_length or data_offset > file_size:
        raise FormatError(path, f"the data offset {data_offset} is not a page boundary inside the file after the schema")
    if field_count * FIELD_ENTRY_SIZE > static_length:
        raise SchemaError(path, f"{field_count} fields do not fit in the schema region of {static_length} bytes")

    def bad(message: str) -> NoReturn:
        raise SchemaError(path, f"the schema is not valid: {message}")

    fields = []
    offset = SCHEMA_OFFSET
    for _ in range(field_count):
        raw = bytes(header[offset:offset + FIELD_NAME_BYTES]).split(b"\x00", 1)[0]
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise SchemaError(path, f"a field name at byte {offset} is not valid UTF-8") from None
        code = header[offset + FIELD_TYPE_OFFSET]
        if code not in TYPES:
            raise SchemaError(path, f"field {name!r} has the unknown type code {code}")
        field_offset, count = struct.unpack_from("<II", header, offset + FIELD_OFFSET_OFFSET)
        fields.append(Field(name=name, type=TYPES[code][0], offset=field_offset, count=count))
        offset += FIELD_ENTRY_SIZE
    schema = Schema(tuple(fields), stride, alignment)
    schema.check(bad)
    if schema.hash64() != schema_hash:
        raise SchemaError(path, "the schema hash does not match the schema")
    end = SCHEMA_OFFSET + static_length
    items: List[Tuple[str, str]] = []
    for _ in range(metadata_count):
        if offset + 4 > end:
            raise SchemaError(path, "the metadata runs past the schema region")
        key_length, value_length = struct.unpack_from("<HH", header, offset)
        if key_length == 0:
            raise SchemaError(path, f"a metadata entry at byte {offset} has an empty key (keys are 1 to 255 bytes)")
        if offset + 4 + key_length + value_length > end:
            raise SchemaError(path, f"a metadata entry at byte {offset} is damaged")
        try:
            key = bytes(header[offset + 4:offset + 4 + key_length]).decode("utf-8")
            value = bytes(header[offset + 4 + key_length:offset + 4 + key_length + value_length]).decode("utf-8")
        except UnicodeDecodeError:
            raise SchemaError(path, f"a metadata entry at byte {offset} is damaged") from None
        items.append((key, value))
        offset += (4 + key_length + value_length + 7) & ~7
    return Header(schema, dict(items), items, flags, (major, minor), data_offset, static_length)


def count_rule(path: str, live_word: Optional[int], slot: Optional[CommitSlot], capacity: int) -> int:
    """docs/FORMAT.md, "Which count to use": the one statement of the rule in this package, which
    open, refresh and wait all call (Swift's is TableFormat.chooseCount).

    ``live_word`` is the live word if the live area carries this boot's identifier, else None;
    ``slot`` the latest valid commit slot; ``capacity`` the records the mapped file has room for.
    No valid slot is damage whatever the live word says; this boot's live count is used if its
    check holds and it fits; else the commit point's, if it fits; else the file was truncated."""
    if slot is None:
        raise CountError(path, "neither commit slot is valid")
    live = live_count(live_word) if live_word is not None else None
    if live is not None and live <= capacity:
        return live
    if slot.count > capacity:
        raise CountError(path, f"the count {slot.count} points past the end of the file, "
                               f"which has room for {capacity} records")
    return slot.count


def preferred_count(live_word: Optional[int], slot: Optional[CommitSlot]) -> Optional[int]:
    """The count the rule would pick with room for any count: a reader whose mapping is smaller
    reads the file's size again (the writer grows the file before it publishes past the end)."""
    live = live_count(live_word) if live_word is not None else None
    return live if live is not None else (slot.count if slot is not None else None)


def this_boots_live_word(header: Buffer, boot: bytes) -> Optional[int]:
    """The live word, if the live area carries ``boot``; else None."""
    if bytes(header[LIVE_OFFSET:LIVE_OFFSET + 16]) != boot:
        return None
    return int(struct.unpack_from("<Q", header, LIVE_WORD_OFFSET)[0])


def encode_header(schema: Schema, metadata: List[Tuple[str, str]], durability: str, capacity: int, boot: bytes) -> bytes:
    """The bytes [0, dataOffset) of a new table (docs/FORMAT.md, "Create"): fixed header, slot 0
    with generation 1 and count 0, this boot's identifier and a live word of 0, the schema and metadata."""
    entries = bytearray()
    for f in schema.fields:
        name = f.name.encode()
        entries += name + bytes(FIELD_NAME_BYTES - len(name)) + bytes([f.code, 0, 0, 0]) + struct.pack("<III", f.offset, f.count, 0)
    for key, value in metadata:
        k, v = key.encode(), value.encode()
        if not 1 <= len(k) <= 255 or len(v) > 65535:
            raise ValueError(f"metadata key {key!r} must be 1 to 255 bytes, its value at most 65,535")
        entry = struct.pack("<HH", len(k), len(v)) + k + v
        entries += entry + bytes(-len(entry) % 8)
    if len(entries) - len(schema.fields) * FIELD_ENTRY_SIZE > MAX_METADATA_BYTES:
        raise ValueError(f"the metadata is larger than {MAX_METADATA_BYTES} bytes")
    static_length = len(entries)
    data_offset = max(PAGE_SIZE, -(-(SCHEMA_OFFSET + static_length) // PAGE_SIZE) * PAGE_SIZE)
    header = bytearray(data_offset)
    header[0:8] = MAGIC
    struct.pack_into("<IHH", header, BYTE_ORDER_MARK_OFFSET, BYTE_ORDER_MARK, VERSION_MAJOR, VERSION_MINOR)
    struct.pack_into(HEADER_FIELDS, header, FLAGS_OFFSET, DURABILITY[durability], schema.stride, schema.alignment, data_offset,
                     len(schema.fields), len(metadata), schema.hash64(), static_length)
    header[SCHEMA_OFFSET:SCHEMA_OFFSET + static_length] = entries
    struct.pack_into("<I", header, CHECKSUM_OFFSET, header_checksum(header, static_length))
    header[SLOT_OFFSETS[1]:SLOT_OFFSETS[1] + SLOT_SIZE] = CommitSlot(1, 0, capacity).encode()
    header[LIVE_OFFSET:LIVE_OFFSET + 16] = boot
    return bytes(header)
