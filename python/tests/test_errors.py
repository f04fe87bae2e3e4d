"""Corrupt and foreign files raise the FormatError of the rule they break, never a numpy crash
or a wrong value."""

import struct

import numpy as np
import pytest

import mappedrecords
from mappedrecords import _format
from conftest import SAMPLE, samples


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.mrec"
    with mappedrecords.create(path, SAMPLE, metadata={"k": "v"}, capacity=100) as writer:
        writer.append(samples(0, 100))
    return path


def damaged(path, edit, fix_checksum=True):
    data = bytearray(path.read_bytes())
    edit(data)
    if fix_checksum:
        (static_length,) = struct.unpack_from("<I", data, 56)
        struct.pack_into("<I", data, 16, _format.header_checksum(data, static_length))
    path.write_bytes(bytes(data))
    return path


def test_the_good_file_reads(good):
    with mappedrecords.open(good) as table:
        assert len(table) == 100


@pytest.mark.parametrize("edit, error, words", [
    (lambda d: d.__setitem__(slice(0, 8), b"NOTATABL"), mappedrecords.NotATableError, "magic"),
    (lambda d: struct.pack_into("<I", d, 8, 0x0D0C0B0A), mappedrecords.ByteOrderError, "big-endian"),
    (lambda d: struct.pack_into("<H", d, 12, 2), mappedrecords.UnsupportedVersionError, "version 2"),
    (lambda d: struct.pack_into("<I", d, 20, 1 << 16 | 1), mappedrecords.UnsupportedVersionError, "features"),
    (lambda d: struct.pack_into("<I", d, 2048 + 52, 30), mappedrecords.SchemaError, "overflows the stride"),
    (lambda d: struct.pack_into("<I", d, 2048 + 64 + 52, 4), mappedrecords.SchemaError, "overlap"),
    (lambda d: d.__setitem__(2048 + 48, 99), mappedrecords.SchemaError, "unknown type code 99"),
    (lambda d: struct.pack_into("<Q", d, 48, 12345), mappedrecords.SchemaError, "schema hash"),
    (lambda d: struct.pack_into("<H", d, 2048 + 5 * 64, 0), mappedrecords.SchemaError, "empty key"),
    (lambda d: struct.pack_into("<I", d, 56, 100_000), mappedrecords.SchemaError, "runs past the header"),
])
def test_rules(good, edit, error, words):
    damaged(good, edit)
    with pytest.raises(error, match=words):
        mappedrecords.open(good)


def test_checksum(good):
    damaged(good, lambda d: d.__setitem__(2048 + 3, ord("X")), fix_checksum=False)
    with pytest.raises(mappedrecords.ChecksumError, match="checksum"):
        mappedrecords.open(good)


def test_count_past_the_end(good):
    with open(good, "r+b") as f:
        f.truncate(4096 + 50 * 32)
    with pytest.raises(mappedrecords.CountError, match="points past the end"):
        mappedrecords.open(good)


def test_no_valid_commit_slot(good):
    def wipe(data):
        data[512:512 + 64] = bytes(64)
        data[1024:1024 + 64] = bytes(64)
        data[1536:1552] = bytes(16)  # and no live count of this boot
    damaged(good, wipe)
    with pytest.raises(mappedrecords.CountError, match="neither commit slot"):
        mappedrecords.open(good)


def test_a_damaged_live_word_falls_back_to_the_commit_point(good):
    damaged(good, lambda d: struct.pack_into("<Q", d, 1552, 12345))
    with mappedrecords.open(good) as table:
        assert len(table) == 100  # the commit point of close()


def test_foreign_and_empty_files(tmp_path):
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(mappedrecords.NotATableError, match="empty"):
        mappedrecords.open(empty)
    text = tmp_path / "text"
    text.write_text("id,x\n1,2\n")
    with pytest.raises(mappedrecords.NotATableError, match="magic"):
        mappedrecords.open(text)
    short = tmp_path / "short"
    short.write_bytes(_format.MAGIC + struct.pack("<I", _format.BYTE_ORDER_MARK) + bytes(100))
    with pytest.raises(mappedrecords.FormatError, match="fewer than the 4096-byte header"):
        mappedrecords.open(short)
    with pytest.raises(mappedrecords.NotATableError, match="not a regular file"):
        mappedrecords.open(tmp_path)
    with pytest.raises(FileNotFoundError):
        mappedrecords.open(tmp_path / "missing")


def test_every_single_byte_flip_of_the_header_is_refused_or_harmless(good):
    """A flip anywhere in the header either raises a FormatError or leaves every value as it was."""
    original = good.read_bytes()
    expected = samples(0, 100)
    for offset in list(range(0, 64)) + list(range(2048, 2048 + 5 * 64 + 16)):
        data = bytearray(original)
        data[offset] ^= 0x5A
        good.write_bytes(bytes(data))
        try:
            with mappedrecords.open(good) as table:
                assert table.records.tobytes() == expected.tobytes(), offset
        except mappedrecords.FormatError:
            pass
