"""Tables where they lie: reading through fsspec (memory://, HTTP with ranges, S3 on moto),
with the request counts the design promises, the same errors as a local read, and snapshots
that a writer appending or a replaced file cannot tear."""

import json
import os
import shutil
import subprocess

import fsspec
import numpy as np
import pytest

import mappedrecords
from conftest import SAMPLE, mrec, samples
from test_format_vectors import EXPECTED, VECTORS


def _make(path, n, metadata=None, capacity=1024):
    with mappedrecords.create(path, SAMPLE, metadata=metadata, capacity=capacity) as writer:
        writer.append(samples(0, n))


def test_a_table_over_http_opens_in_two_requests_and_reads_a_range_in_one(http_server):
    path = http_server.root / "t.mrec"
    _make(path, 10_000, metadata={"origin": "test"})
    url = f"{http_server.url}/t.mrec"
    http_server.reset()
    with mappedrecords.open(url) as table:
        assert isinstance(table, mappedrecords.RemoteTable)
        assert http_server.requests("t.mrec") <= 2
        assert len(table) == 10_000 and table.dtype == SAMPLE and table.metadata == {"origin": "test"}
        http_server.reset()
        part = table.read(1000, 3000)
        assert http_server.requests("t.mrec") == 1
        assert (part == samples(1000, 3000)).all()
        assert (table.read(5, 9, columns=["id", "tag"])["tag"] == samples(5, 9)["tag"]).all()
        with pytest.raises(IndexError):
            table.read(0, 10_001)
        with pytest.raises(KeyError, match="no field"):
            table.read(0, 1, columns=["nope"])
        with pytest.raises(NotImplementedError, match="refresh"):
            table.wait(10_000, timeout=1)
        assert (np.asarray(table) == samples(0, 10_000)).all()
        assert table.to_pandas()["id"].tolist() == list(range(10_000))


def test_memory_and_file_urls(tmp_path):
    path = tmp_path / "t.mrec"
    _make(path, 500)
    with mappedrecords.open(f"file://{path}") as local:
        assert isinstance(local, mappedrecords.Table)
        assert (local.records == samples(0, 500)).all()
    memory = fsspec.filesystem("memory")
    memory.pipe("/mr-test/t.mrec", path.read_bytes())
    try:
        with mappedrecords.open("memory://mr-test/t.mrec") as remote:
            assert (remote.records == samples(0, 500)).all()
            assert remote.columns(["value"])["value"].tolist() == samples(0, 500)["value"].tolist()
    finally:
        memory.rm("/mr-test", recursive=True)


@pytest.mark.parametrize("vector", [v for v in EXPECTED if "error" in v], ids=lambda v: v["file"])
def test_every_corrupt_vector_over_http_fails_with_the_local_code(http_server, vector):
    shutil.copyfile(os.path.join(VECTORS, vector["file"]), http_server.root / vector["file"])
    with pytest.raises(mappedrecords.FormatError) as local:
        mappedrecords.open(http_server.root / vector["file"]).close()
    with pytest.raises(mappedrecords.FormatError) as remote:
        mappedrecords.open(f"{http_server.url}/{vector['file']}").close()
    assert remote.value.code == local.value.code == vector["error"], f"{vector['description']}: {remote.value}"
    assert http_server.url in str(remote.value)


def test_a_replaced_table_is_named_in_the_error(http_server, tmp_path):
    path = http_server.root / "t.mrec"
    _make(path, 100)
    table = mappedrecords.open(f"{http_server.url}/t.mrec")
    other = np.dtype([("x", "<f4")])
    staged = tmp_path / "staged.mrec"
    with mappedrecords.create(staged, other) as writer:
        writer.append(np.zeros(200, dtype=other))
    os.rename(staged, path)
    with pytest.raises(mappedrecords.ReplacedError) as raised:
        table.read(0, 100)
    assert "t.mrec" in str(raised.value) and raised.value.code == "replaced"
    assert table.refresh() == 200 and table.dtype == other  # a refresh opens the new table


def test_appending_within_the_capacity_changes_the_etag_but_not_the_records(http_server):
    """An append moves the ETag (the file's mtime) but no record: reads below the count go on."""
    path = http_server.root / "t.mrec"
    with mappedrecords.create(path, SAMPLE, capacity=10_000) as writer:
        writer.append(samples(0, 100))
        writer.commit()
        table = mappedrecords.open(f"{http_server.url}/t.mrec")
        before = table.identity["etag"]
        os.utime(path, ns=(1, 1))  # a visible change of mtime, as an append on another host would make
        writer.append(samples(100, 300))
        writer.commit()
        assert (table.read(0, 100) == samples(0, 100)).all()
        assert table.identity["etag"] != before
        assert table.refresh() == 300


def test_s3_end_to_end(s3_server, tmp_path):
    path = tmp_path / "t.mrec"
    _make(path, 3000, metadata={"sorted_by": "id"})
    s3_server["client"].upload_file(str(path), "tables", "trades/t.mrec")
    options = s3_server["options"]
    with mappedrecords.open("s3://tables/trades/t.mrec", storage_options=options) as table:
        assert len(table) == 3000
        assert (table.read(100, 200) == samples(100, 200)).all()
        assert table.to_arrow(["id"]).column("id").to_pylist() == list(range(3000))
    # Replaced in the bucket by another table: the conditional read notices.
    table = mappedrecords.open("s3://tables/trades/t.mrec", storage_options=options)
    _make(tmp_path / "u.mrec", 10)
    s3_server["client"].upload_file(str(tmp_path / "u.mrec"), "tables", "trades/t.mrec")
    with pytest.raises((mappedrecords.TruncatedError, mappedrecords.ReplacedError)):
        table.read(0, 3000)
