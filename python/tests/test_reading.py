"""Python reads what Swift writes: every field type, empty tables, metadata, growth, following."""

import math
import os
import subprocess
import time

import numpy as np
import pytest

import mappedrecords
from conftest import SAMPLE, mrec, samples

EVERY_TYPE = ("a:i8,b:i16,c:i32,d:i64,e:u8,f:u16,g:u32,h:u64,i:f32,j:f64,k:bool,l:bytes[3],m:char[6],"
              "n:f32[3],o:i16[2]")


def test_every_field_type(tmp_path):
    path = tmp_path / "all.mrec"
    mrec("create", path, "--schema", EVERY_TYPE, "--metadata", "who=swift")
    rows = tmp_path / "rows.csv"
    rows.write_text("a,b,c,d,e,f,g,h,i,j,k,l,m,n,o\n"
                    "-128,-32768,-2147483648,-9223372036854775808,255,65535,4294967295,18446744073709551615,"
                    "1.5,-2.25,true,0a0b0c,héllo,\"[1,2,3]\",\"[-1,7]\"\n"
                    "1,2,3,4,5,6,7,8,nan,inf,false,ffffff,,\"[0,0,0]\",\"[0,0]\"\n")
    mrec("import", path, "--csv", rows)
    with mappedrecords.open(path) as table:
        assert len(table) == 2
        r = table.records
        assert r["a"][0] == -128 and r["b"][0] == -32768 and r["c"][0] == -2147483648
        assert r["d"][0] == -9223372036854775808
        assert r["e"][0] == 255 and r["f"][0] == 65535 and r["g"][0] == 4294967295
        assert r["h"][0] == 18446744073709551615
        assert r["i"][0] == np.float32(1.5) and r["j"][0] == -2.25
        assert math.isnan(r["i"][1]) and math.isinf(r["j"][1])
        assert bool(r["k"][0]) is True and bool(r["k"][1]) is False
        assert bytes(r["l"][0]) == b"\x0a\x0b\x0c"
        assert r["m"][0].decode() == "héllo" and r["m"][1] == b""
        assert list(r["n"][0]) == [1.0, 2.0, 3.0] and list(r["o"][0]) == [-1, 7]
        assert table.metadata == {"who": "swift"}
        assert [f.type for f in table.schema.fields] == ["i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64",
                                                           "f32", "f64", "bool", "bytes", "char", "f32", "i16"]
        rows_out = table.to_arrow().to_pylist()
        assert rows_out[0]["m"] == "héllo" and rows_out[0]["l"] == b"\x0a\x0b\x0c" and rows_out[0]["n"] == [1, 2, 3]
        frame = table.to_pandas()
        assert list(frame.columns) == list("abcdefghijklmno") and len(frame) == 2


def test_empty_table(tmp_path):
    path = tmp_path / "empty.mrec"
    mrec("create", path, "--schema", "id:i64,x:f64")
    with mappedrecords.open(path) as table:
        assert len(table) == 0
        assert table.records.shape == (0,)
        assert table.to_arrow().num_rows == 0
        assert table.refresh() == 0
        assert table.wait(0, 0.05) == 0


def test_a_million_records_written_by_swift(tmp_path):
    path = tmp_path / "million.mrec"
    mrec("create", path, "--schema", "id:i64,x:f64")
    rows = tmp_path / "rows.csv"
    with open(rows, "w") as f:
        f.write("id,x\n")
        f.writelines(f"{i},{i * 0.25}\n" for i in range(1_000_000))
    mrec("import", path, "--csv", rows)
    with mappedrecords.open(path) as table:
        assert len(table) == 1_000_000
        assert int(table.records["id"].sum()) == 999_999 * 1_000_000 // 2
        assert table.records["x"][-1] == 999_999 * 0.25


def test_text_rules(tmp_path):
    """char: the text ends at the first NUL; invalid UTF-8 is repaired when shown (docs/FORMAT.md)."""
    path = tmp_path / "text.mrec"
    dtype = np.dtype([("t", "S6")])
    with mappedrecords.create(path, dtype) as writer:
        writer.append(np.array([(b"ab\x00cd",), (b"\xff\xfeok",), (b"full!!",)], dtype=dtype))
    with mappedrecords.open(path) as table:
        assert table.to_arrow().column("t").to_pylist() == ["ab", "\ufffd\ufffdok", "full!!"]


def test_following_a_table_that_swift_appends_to(tmp_path, helper_path):
    """A Swift writer appends while Python follows; wait() sleeps on the doorbell and wakes at once."""
    path = tmp_path / "live.mrec"
    mrec("create", path, "--schema", "id:i64@0,value:f64@8,check:u64@16,flag:bool@24,tag:char[7]@25")
    writer = subprocess.Popen([helper_path, "table-append-hold", str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "writing 0"
        with mappedrecords.open(path) as table:
            known = 0
            delays = []
            for batch in (1, 10, 1000, 5, 70_000):
                time.sleep(0.3)  # idle, so that a poll would be late
                started = time.monotonic()
                writer.stdin.write(f"{batch}\n")
                writer.stdin.flush()
                count = table.wait(known, timeout=10)
                while count < known + batch:
                    count = table.wait(count, timeout=10)
                delays.append(time.monotonic() - started)
                assert count == known + batch
                assert (table.records[known:count] == samples(known, count)).all()
                known = count
                assert writer.stdout.readline().strip() == f"appended {known}"
            # Woken by the writer: a poll checking every 100 ms would be late at least once.
            assert max(delays[:4]) < 0.08, delays  # (the last batch takes the helper a while to append)
            assert table.capacity >= known  # it remapped as the file grew
            assert table.writer_is_active()
            writer.stdin.close()
            assert writer.wait(10) == 0
            assert not table.writer_is_active()
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()


def test_refresh_reports_truncation(tmp_path):
    path = tmp_path / "cut.mrec"
    with mappedrecords.create(path, SAMPLE, capacity=10_000) as writer:
        writer.append(samples(0, 5000))
    with mappedrecords.open(path) as table:
        os.truncate(path, 4096)
        with pytest.raises(mappedrecords.TruncatedError, match="shrank"):
            table.refresh()


def test_a_follower_learns_that_its_table_was_migrated(tmp_path):
    """Swift readers throw `replaced` when a migration renames a new table over the path; so do
    Python's refresh() and wait(), with the same code, instead of keeping the old count forever."""
    path = tmp_path / "migrated.mrec"
    with mappedrecords.create(path, SAMPLE) as writer:
        writer.append(samples(0, 100))
    with mappedrecords.open(path) as table:
        assert table.refresh() == 100
        mrec("migrate", path, "--schema", "id:i64,value:f64,check:u64,flag:bool,tag:char[7],extra:u32")
        with pytest.raises(mappedrecords.ReplacedError) as raised:
            table.refresh()
        assert raised.value.code == "replaced"
        assert "open it again" in str(raised.value)
        started = time.monotonic()
        with pytest.raises(mappedrecords.ReplacedError):
            table.wait(100, timeout=30)
        assert time.monotonic() - started < 2.5  # a sleep lasts at most a second, then it checks again
    with mappedrecords.open(path) as table:  # the new table, opened again
        assert len(table) == 100 and "extra" in table.dtype.names


def test_a_second_name_that_stays_does_not_hide_a_replacement(tmp_path):
    path = tmp_path / "linked.mrec"
    with mappedrecords.create(path, SAMPLE) as writer:
        writer.append(samples(0, 10))
    os.link(path, tmp_path / "other-name.mrec")
    with mappedrecords.open(path) as table:
        assert table.refresh() == 10  # two names, the path still one of them
        replacement = tmp_path / "replacement.mrec"
        with mappedrecords.create(replacement, SAMPLE) as writer:
            writer.append(samples(0, 3))
        os.rename(replacement, path)
        with pytest.raises(mappedrecords.ReplacedError):
            table.refresh()


def test_error_codes_are_swifts():
    assert mappedrecords.NotATableError.code == "notATable"
    assert mappedrecords.ByteOrderError.code == "byteOrderMismatch"
    assert mappedrecords.UnsupportedVersionError.code == "unsupportedVersion"
    assert mappedrecords.ChecksumError.code == mappedrecords.SchemaError.code == mappedrecords.CountError.code == "corrupt"
    assert mappedrecords.TruncatedError.code == "truncated"
    assert mappedrecords.WriterActiveError.code == "writerActive"
    assert mappedrecords.ReplacedError.code == "replaced"
