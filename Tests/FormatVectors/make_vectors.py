#!/usr/bin/env python3
"""Writes the shared format vectors: small tables, each breaking one rule of docs/FORMAT.md or
taking one branch of its count rule, and expected.json, the outcome each must have (a count, or
an error code as Swift's RecordTableError.Code spells it). The Swift test (FormatVectorTests) and
the pytest (test_format_vectors.py) read every vector and must both get exactly that outcome.

Adding a rule means adding a vector here, running this script, and committing what it writes.
The outcomes are written by hand from FORMAT.md, never taken from either implementation.

A vector with "thisBoot": true has zeros where the live area's boot identifier goes; each test
writes the boot identifier of the machine it runs on there (bytes 1536-1551) before reading, so
that the live count applies.

    python3 Tests/FormatVectors/make_vectors.py
"""

import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))

import numpy as np  # noqa: E402

from mappedrecords import _format as F  # noqa: E402

DTYPE = np.dtype([("id", "<i8"), ("value", "<f8")])
CAPACITY = 256  # records of 16 bytes after a 4096-byte header: 8,192 bytes
COMMITTED = 100


def table(count=COMMITTED, live=None, live_word=None, generation=2, metadata=(("made by", "make_vectors.py"),)):
    """A table whose commit point (generation 2, in the slot at 512) holds `count`; the live
    word holds `live` (or the raw `live_word`), and the boot identifier is zeros."""
    schema = F.schema_from_dtype(DTYPE)
    header = bytearray(F.encode_header(schema, list(metadata), "batch", CAPACITY, bytes(16)))
    header[F.SLOT_OFFSETS[0]:F.SLOT_OFFSETS[0] + F.SLOT_SIZE] = F.CommitSlot(generation, count, max(count, CAPACITY)).encode()
    word = live_word if live_word is not None else (F.live_word(live) if live is not None else 0)
    struct.pack_into("<Q", header, F.LIVE_WORD_OFFSET, word)
    records = np.zeros(CAPACITY, dtype=DTYPE)
    records["id"] = np.arange(CAPACITY)
    records["value"] = np.arange(CAPACITY) * 0.5
    return bytearray(bytes(header) + records.tobytes())


def checksummed(data):
    """Recomputes the header checksum, so that a change after it is the only rule broken."""
    (static_length,) = struct.unpack_from("<I", data, 56)
    struct.pack_into("<I", data, 16, F.header_checksum(data, static_length))
    return data


def field_entry(index):
    return F.SCHEMA_OFFSET + index * F.FIELD_ENTRY_SIZE


VECTORS = []


def vector(name, data, description, count=None, error=None, this_boot=False, sealed=None):
    """`sealed`: the next file's number its seal mark names (readers report it); None, unsealed."""
    assert (count is None) != (error is None)
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(bytes(data))
    entry = {"file": name, "description": description}
    if this_boot:
        entry["thisBoot"] = True
    if sealed is not None:
        entry["sealed"] = sealed
    if count is not None:
        entry["count"] = count
    else:
        entry["error"] = error
    VECTORS.append(entry)


# The count rule ("Which count to use"), branch by branch.
vector("count-commit-point.mrec", table(live=500),
       "another boot's live word is ignored: the commit point's count", count=100)
vector("count-live.mrec", table(live=150), "this boot's live count, within the capacity", count=150, this_boot=True)
vector("count-live-below-commit.mrec", table(live=40),
       "a live count below the commit point's (removeLast) is still the one to use", count=40, this_boot=True)
vector("count-live-word-zero.mrec", table(live_word=0),
       "a live word of 0 fails its check: no live count, the commit point's", count=100, this_boot=True)
vector("count-live-word-damaged.mrec", table(live_word=F.live_word(150) ^ (1 << 50)),
       "a live word whose check fails: the commit point's count", count=100, this_boot=True)
vector("count-live-past-capacity.mrec", table(live=5000),
       "a live count above the capacity falls back to the commit point's, in open and refresh alike",
       count=100, this_boot=True)
vector("count-live-fits-commit-past.mrec", table(count=2000, live=50),
       "a live count within the capacity is used even when the commit point's is past the end",
       count=50, this_boot=True)
vector("count-commit-past-capacity.mrec", table(count=2000),
       "the commit point's count past the end of the file: it was truncated", error="corrupt")
vector("count-empty.mrec", table(count=0), "an empty table", count=0)

damaged = table(live=150)
damaged[F.SLOT_OFFSETS[0] + 3] ^= 0xFF
damaged[F.SLOT_OFFSETS[1] + 3] ^= 0xFF
vector("count-no-valid-slot.mrec", damaged,
       "neither commit slot is valid: damaged, whatever the live word says", error="corrupt", this_boot=True)
older = table()
older[F.SLOT_OFFSETS[0] + 57] ^= 0xFF  # the newer slot's stored checksum (bytes 56-59)
vector("count-newer-slot-damaged.mrec", older,
       "the newer slot is damaged: the older one (generation 1, count 0) is the commit point", count=0)
equal = table(count=100)
equal[F.SLOT_OFFSETS[1]:F.SLOT_OFFSETS[1] + F.SLOT_SIZE] = F.CommitSlot(2, 70, CAPACITY).encode()
vector("count-equal-generations.mrec", equal, "equal generations (damage): the slot at 512 is used", count=100)

# Doorbell fields (minor version 1): readers count the same whatever they hold.
bell = table(live=120)
struct.pack_into("<Q", bell, F.DOORBELL_WORD_OFFSET, (0x7FFFFFF0 + 1) | (1000 << 32))
vector("doorbell-stale-segment.mrec", bell, "a doorbell word naming a segment that no longer exists",
       count=120, this_boot=True)
vector("doorbell-none.mrec", table(live=120), "no doorbell (word 0)", count=120, this_boot=True)

# The seal mark and the appender lock (minor version 2, "Series", "Several appenders"): the seal
# names the next file only when its check holds and it names a file (1 or more); neither field
# changes the count a reader takes.
sealed = table(live=120)
struct.pack_into("<Q", sealed, F.SEAL_WORD_OFFSET, F.live_word(2))
vector("seal-names-next.mrec", sealed, "a sealed table: its series continues in file 2", count=120, this_boot=True,
       sealed=2)
sealed_old_boot = table(live=120)
struct.pack_into("<Q", sealed_old_boot, F.SEAL_WORD_OFFSET, F.live_word(7))
vector("seal-after-reboot.mrec", sealed_old_boot,
       "a seal is permanent: it holds whatever boot wrote it, beside the commit point's count", count=100, sealed=7)
broken_seal = table(live=120)
struct.pack_into("<Q", broken_seal, F.SEAL_WORD_OFFSET, F.live_word(2) ^ (1 << 49))
vector("seal-word-damaged.mrec", broken_seal, "a seal mark whose check fails: not sealed", count=120, this_boot=True)
seal_zero = table(live=120)
struct.pack_into("<Q", seal_zero, F.SEAL_WORD_OFFSET, F.live_word(0))
vector("seal-names-zero.mrec", seal_zero, "a seal mark naming file 0 (a valid word, no file): not sealed",
       count=120, this_boot=True)
locked = table(live=120)
struct.pack_into("<Q", locked, F.APPENDER_LOCK_OFFSET, 0x1234 | (9 << 32))
struct.pack_into("<Q", locked, F.APPENDER_WAITERS_OFFSET, 3)
vector("appender-lock-held.mrec", locked, "an appender lock held (by a token no one has) and 3 waiters: readers "
       "count as ever", count=120, this_boot=True)

# Refusals, in the order of "Reading: the order of checks".
vector("refuse-empty.mrec", b"", "an empty file", error="notATable")
bad = table()
bad[0:8] = b"NOTATABL"
vector("refuse-magic.mrec", bad, "1: no magic bytes", error="notATable")
bad = table()
struct.pack_into("<I", bad, 8, 0x0D0C0B0A)
vector("refuse-big-endian.mrec", bad, "2: the byte-order mark read big-endian", error="byteOrderMismatch")
bad = table()
struct.pack_into("<I", bad, 8, 0x12345678)
vector("refuse-byte-order-mark.mrec", bad, "2: another byte-order mark", error="corrupt")
vector("refuse-short.mrec", table()[:3000], "3: fewer than 4096 bytes", error="corrupt")
bad = table()
struct.pack_into("<H", bad, 12, 2)
vector("refuse-major-version.mrec", bad, "4: major version 2, before the checksum", error="unsupportedVersion")
bad = table()
struct.pack_into("<I", bad, 20, 1 | (1 << 16))
vector("refuse-incompatible-flag.mrec", bad, "4: an incompatible flag, before the checksum",
       error="unsupportedVersion")
bad = table()
struct.pack_into("<I", bad, 56, 1 << 30)
vector("refuse-static-length.mrec", bad, "5: a schema region past the end of the file", error="corrupt")
bad = table()
bad[100] ^= 0x01
vector("refuse-checksum.mrec", bad, "6: a reserved byte of the fixed header changed: the checksum fails",
       error="corrupt")
bad = table()
struct.pack_into("<Q", bad, 32, 4100)
vector("refuse-data-offset-unaligned.mrec", checksummed(bad), "7: a data offset that is not a multiple of 4096",
       error="corrupt")
bad = table()
struct.pack_into("<Q", bad, 32, 1 << 20)
vector("refuse-data-offset-past-end.mrec", checksummed(bad), "7: a data offset past the end of the file",
       error="corrupt")
bad = table()
struct.pack_into("<I", bad, 40, 1000)
vector("refuse-field-count.mrec", checksummed(bad), "8: more field entries than the schema region holds",
       error="corrupt")
bad = table()
bad[field_entry(0) + 48] = 99
vector("refuse-type-code.mrec", checksummed(bad), "8: an unknown type code", error="corrupt")
bad = table()
struct.pack_into("<I", bad, field_entry(1) + 56, 0)
vector("refuse-element-count-zero.mrec", checksummed(bad), "8: an element count of 0", error="corrupt")
bad = table()
bad[field_entry(1):field_entry(1) + 48] = bad[field_entry(0):field_entry(0) + 48]
vector("refuse-duplicate-name.mrec", checksummed(bad), "8: two fields with one name", error="corrupt")
bad = table()
struct.pack_into("<I", bad, field_entry(1) + 52, 12)
vector("refuse-overlap.mrec", checksummed(bad), "8: fields that overlap or overflow the stride", error="corrupt")
bad = table()
bad[48] ^= 0x01
vector("refuse-schema-hash.mrec", checksummed(bad), "9: the schema hash does not match the fields", error="corrupt")
bad = table()
struct.pack_into("<H", bad, field_entry(2), 0)
vector("refuse-metadata-key.mrec", checksummed(bad), "10: a metadata key of 0 bytes", error="corrupt")
vector("refuse-truncated.mrec", table()[:4096 + 16 * 50], "11: the count (100) is past the end of the file (50)",
       error="corrupt")

# What readers must accept.
newer = table()
struct.pack_into("<H", newer, 14, 7)
vector("accept-newer-minor.mrec", checksummed(newer), "a newer minor version reads as 1.x", count=100)
flagged = table()
struct.pack_into("<I", flagged, 20, 1 | (1 << 8))
vector("accept-compatible-flag.mrec", checksummed(flagged), "an unknown compatible flag (bits 2-15) is ignored",
       count=100)
reserved = table()
reserved[F.SLOT_OFFSETS[0] + 40] = 0x5A  # inside the 56 bytes the slot checksum covers
vector("count-slot-byte-changed.mrec", reserved,
       "a changed byte inside a slot's checksummed part: that slot is invalid, the other is used", count=0)

with open(os.path.join(HERE, "expected.json"), "w") as f:
    json.dump({"about": "docs/FORMAT.md vectors: see make_vectors.py", "vectors": VECTORS}, f, indent=1)
    f.write("\n")
print(f"{len(VECTORS)} vectors written")
