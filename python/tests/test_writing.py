"""Python writes, and Swift (mrec verify, mrec dump, RecordTable) reads."""

import os
import subprocess

import numpy as np
import pytest

import mappedrecords
from conftest import SAMPLE, mrec, samples


def test_swift_reads_what_python_writes(tmp_path, helper_path):
    path = tmp_path / "py.mrec"
    with mappedrecords.create(path, SAMPLE, metadata={"made by": "python", "n": "3"}, capacity=16) as writer:
        for start in range(0, 100_000, 7_000):  # grows the file many times
            writer.append(samples(start, min(start + 7_000, 100_000)))
        assert len(writer) == 100_000
    status, out, _ = mrec("verify", path)
    assert "ok, 100000 records checked" in out
    _, info, _ = mrec("info", path, "--json")
    assert '"made by"' in info and '"python"' in info
    _, csv, _ = mrec("dump", path, "--format", "csv", "--range", "99998..<100000")
    assert csv.splitlines() == ["id,value,check,flag,tag",
                                f"99998,49999.0,{int(samples(99998, 99999)['check'][0])},true,r998",
                                f"99999,49999.5,{int(samples(99999, 100000)['check'][0])},false,r999"]
    # RecordTable<Sample> in Swift checks every record against Sample(id:).
    done = subprocess.run([helper_path, "table-reader", str(path), "1"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-2] == "100000"


def test_every_field_type_round_trip(tmp_path):
    dtype = np.dtype([("a", "i1"), ("b", "<i2"), ("c", "<i4"), ("d", "<i8"), ("e", "u1"), ("f", "<u2"), ("g", "<u4"),
                      ("h", "<u8"), ("i", "<f4"), ("j", "<f8"), ("k", "?"), ("l", "V3"), ("m", "S5"), ("n", "<f4", (3,))],
                     align=True)
    records = np.zeros(2, dtype=dtype)
    records["a"] = [-1, 2]
    records["h"] = [2**64 - 1, 3]
    records["k"] = [True, False]
    records["l"] = [b"\x01\x02\x03", b"\xff\xfe\xfd"]
    records["m"] = [b"abc", b"hello"]
    records["n"] = [[1, 2, 3], [4, 5, 6]]
    path = tmp_path / "types.mrec"
    with mappedrecords.create(path, dtype, durability="everyAppend") as writer:
        writer.append(records)
    _, out, _ = mrec("verify", path)
    assert "ok, 2 records checked" in out
    _, dumped, _ = mrec("dump", path, "--format", "jsonl", "--fields", "a,h,k,l,m,n")
    assert dumped.splitlines()[1] == '{"a":2,"h":3,"k":false,"l":"fffefd","m":"hello","n":[4.0,5.0,6.0]}'
    with mappedrecords.open(path) as table:
        assert table.records.tobytes() == records.tobytes()  # padding included: written as zeros


def test_padding_is_zeroed(tmp_path):
    dtype = np.dtype({"names": ["x"], "formats": ["<i4"], "offsets": [4], "itemsize": 8})
    dirty = np.frombuffer(b"\xff" * 16, dtype=dtype).copy()
    path = tmp_path / "pad.mrec"
    with mappedrecords.create(path, dtype) as writer:
        writer.append(dirty)
    with mappedrecords.open(path) as table:
        assert table.records.tobytes() == (b"\x00" * 4 + b"\xff" * 4) * 2
    _, out, _ = mrec("verify", path)
    assert "warning" not in out


def test_durability_modes_and_commit_points(tmp_path):
    for durability in ("none", "batch", "everyAppend"):
        path = tmp_path / f"{durability}.mrec"
        writer = mappedrecords.create(path, SAMPLE, durability=durability)
        writer.append(samples(0, 10))
        writer.commit()
        writer.append(samples(10, 20))
        writer.close()
        _, info, _ = mrec("info", path)
        assert f"durability      {durability}" in info
        assert "20 of capacity" in info
        with pytest.raises(ValueError, match="closed"):
            writer.append(samples(0, 1))


def test_the_writer_lock(tmp_path):
    path = tmp_path / "locked.mrec"
    with mappedrecords.create(path, SAMPLE) as writer:
        writer.append(samples(0, 3))
        with mappedrecords.open(path) as table:
            assert table.writer_is_active()
            assert len(table) == 3  # the live count, before any commit
        status, _, err = mrec("import", path, "--csv", "/dev/null", check=False)
        assert status == 3 and "open for writing" in err
    with mappedrecords.open(path) as table:
        assert not table.writer_is_active()


def test_creating_over_an_existing_path_fails(tmp_path):
    path = tmp_path / "taken.mrec"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError) as raised:
        mappedrecords.create(path, SAMPLE)
    assert raised.value.filename == str(path) and "/proc/self" not in str(raised.value)
    assert path.read_bytes() == b"precious"


def test_bad_dtypes_are_refused(tmp_path):
    with pytest.raises(ValueError, match="structured"):
        mappedrecords.create(tmp_path / "a.mrec", np.float64)
    with pytest.raises(ValueError, match="big-endian"):
        mappedrecords.create(tmp_path / "b.mrec", np.dtype([("x", ">i4")]))
    with pytest.raises(ValueError, match="overlap"):
        mappedrecords.create(tmp_path / "c.mrec", np.dtype({"names": ["x", "y"], "formats": ["<i4", "<i4"], "offsets": [0, 2], "itemsize": 8}))
    assert not list(tmp_path.iterdir())


def test_the_python_writer_locks_the_file_it_links(tmp_path):
    """The Python writer takes the writer lock on its new file before the file has a name, so the
    file at the path is always the one it locked: no migration can rename another over it
    between the lock and the first append (the race a Swift writer that waits for the lock must
    check for). It cannot open an existing table for writing, so it never waits for a lock."""
    path = tmp_path / "locked.mrec"
    with mappedrecords.create(path, SAMPLE) as writer:
        locked = os.fstat(writer._descriptor)
        named = os.stat(path)
        assert (named.st_dev, named.st_ino) == (locked.st_dev, locked.st_ino)
        with mappedrecords.open(path) as reader:
            assert reader.writer_is_active()
