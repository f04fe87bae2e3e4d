"""Dask: many tables as one DataFrame under a real distributed cluster of worker processes."""

import os
import pickle

import numpy as np
import pytest

import mappedrecords
from mappedrecords import _format
from mappedrecords.dask import read_dataframe
from conftest import mrec

distributed = pytest.importorskip("distributed")

DTYPE = np.dtype([("id", "<i8"), ("group", "<i4"), ("value", "<f8"), ("label", "S4")], align=True)


def rows(start, n, seed):
    rng = np.random.default_rng(seed)
    records = np.zeros(n, dtype=DTYPE)
    records["id"] = np.arange(start, start + n)
    records["group"] = rng.integers(0, 7, n)
    records["value"] = rng.normal(size=n).round(3)
    records["label"] = [b"g%d" % g for g in records["group"]]
    return records


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as local:
        with distributed.Client(local) as client:
            yield client


def test_group_by_sum_over_eight_tables_equals_numpy(tmp_path, cluster):
    expected = []
    for i in range(8):
        path = tmp_path / f"part{i}.mrec"
        data = rows(i * 50_000, 50_000, seed=i)
        expected.append(data)
        if i < 4:  # four written by mrec import, four by the Python writer
            mrec("create", path, "--schema", "id:i64,group:i32,value:f64,label:char[4]", "--metadata", "sorted_by=id")
            csv = tmp_path / f"part{i}.csv"
            with open(csv, "w") as f:
                f.write("id,group,value,label\n")
                f.writelines(f"{r['id']},{r['group']},{float(r['value'])!r},{r['label'].decode()}\n" for r in data)
            mrec("import", path, "--csv", csv)
        else:
            with mappedrecords.create(path, DTYPE, metadata={"sorted_by": "id"}) as writer:
                writer.append(data)
    frame = read_dataframe(str(tmp_path / "part*.mrec"), records_per_partition=30_000)
    assert frame.npartitions == 8 * 2
    assert frame.known_divisions and frame.index.name == "id"
    result = frame.groupby("group")["value"].sum().compute().sort_index()
    every = np.concatenate(expected)
    for group in range(7):
        assert result[group] == pytest.approx(every["value"][every["group"] == group].sum(), rel=1e-12)
    assert frame["label"].value_counts().compute()["g3"] == (every["group"] == 3).sum()
    assert len(frame) == 400_000
    assert frame.loc[123_456:123_458].compute()["value"].tolist() == list(every["value"][123_456:123_459])


def test_the_graph_holds_paths_and_ranges_not_data(tmp_path):
    """A graph for 1 GiB of tables pickles to well under 1 MiB."""
    stride = DTYPE.itemsize
    per_table = (1 << 30) // 8 // stride
    for i in range(8):
        path = tmp_path / f"big{i}.mrec"
        with mappedrecords.create(path, DTYPE, capacity=1) as writer:
            pass
        # Extend the file sparsely and commit the count, as a writer from the spec may.
        data = bytearray(path.read_bytes()[:4096])
        os.truncate(path, 4096 + per_table * stride)
        slot = _format.CommitSlot(3, per_table, per_table)
        with open(path, "r+b") as f:
            f.seek(_format.SLOT_OFFSETS[1])
            f.write(slot.encode())
    frame = read_dataframe([tmp_path / f"big{i}.mrec" for i in range(8)], records_per_partition=1 << 20)
    size = len(pickle.dumps(dict(frame.__dask_graph__())))
    assert frame.npartitions >= 32
    assert size < 1 << 20, f"the graph pickles to {size} bytes"


def test_unsorted_tables_have_unknown_divisions(tmp_path):
    for i in range(2):
        with mappedrecords.create(tmp_path / f"u{i}.mrec", DTYPE) as writer:
            writer.append(rows(0, 100, seed=i))
    frame = read_dataframe(str(tmp_path / "u*.mrec"))
    assert not frame.known_divisions
    assert frame["value"].sum().compute(scheduler="synchronous") == pytest.approx(
        sum(rows(0, 100, seed=i)["value"].sum() for i in range(2)))


def _populate_memory(files):
    import fsspec

    memory = fsspec.filesystem("memory")
    for name, data in files.items():
        memory.pipe(f"/mr-dask/{name}", data)


def _clear_memory():
    import fsspec

    memory = fsspec.filesystem("memory")
    if memory.exists("/mr-dask"):
        memory.rm("/mr-dask", recursive=True)


def test_the_same_tables_from_every_store_give_identical_frames(tmp_path, cluster, http_server, s3_server):
    """Eight tables from local paths, file://, memory://, HTTP and S3, under worker processes."""
    files = {}
    for i in range(8):
        path = http_server.root / f"part{i}.mrec"
        with mappedrecords.create(path, DTYPE, metadata={"sorted_by": "id"}) as writer:
            writer.append(rows(i * 5_000, 5_000, seed=i))
        files[path.name] = path.read_bytes()
        s3_server["client"].upload_file(str(path), "tables", f"trades/{path.name}")
    cluster.run(_populate_memory, files)  # each worker process has its own memory:// store
    _populate_memory(files)
    try:
        sources = {
            "local": (str(http_server.root / "part*.mrec"), None),
            "file": (f"file://{http_server.root}/part*.mrec", None),
            "memory": ("memory://mr-dask/part*.mrec", None),
            "http": ([f"{http_server.url}/part{i}.mrec" for i in range(8)], None),
            "s3": ("s3://tables/trades/part*.mrec", s3_server["options"]),
        }
        frames = {}
        for name, (where, options) in sources.items():
            frame = read_dataframe(where, records_per_partition=2_000, storage_options=options)
            assert frame.npartitions == 8 * 3 and frame.known_divisions, name
            frames[name] = frame.compute()
        for name, frame in frames.items():
            assert frame.equals(frames["local"]), name
        assert len(frames["local"]) == 40_000
        projected = read_dataframe(sources["http"][0], records_per_partition=2_000, columns=["value"]).compute()
        assert list(projected.columns) == ["value"] and projected.index.name == "id"
        assert projected["value"].equals(frames["local"]["value"])
    finally:
        cluster.run(_clear_memory)
        _clear_memory()


def test_a_partition_is_one_ranged_request(http_server):
    for i in range(2):
        with mappedrecords.create(http_server.root / f"p{i}.mrec", DTYPE) as writer:
            writer.append(rows(0, 10_000, seed=i))
    urls = [f"{http_server.url}/p{i}.mrec" for i in range(2)]
    frame = read_dataframe(urls, records_per_partition=2_500)
    http_server.reset()
    assert len(frame.compute(scheduler="synchronous")) == 20_000
    assert http_server.requests() == frame.npartitions == 8
    assert all(method == "GET" and ranged for method, _, ranged in http_server.server.log)


def test_a_remote_reader_of_a_table_a_swift_writer_appends_to(http_server, helper_path):
    """Counts never go back and no record is torn while a Swift writer appends (the table served over HTTP)."""
    import subprocess
    import time

    path = http_server.root / "live.mrec"
    writer = subprocess.Popen([helper_path, "table-append-for", str(path), "4"], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().startswith("open")
        url = f"{http_server.url}/live.mrec"
        seen = 0
        rounds = 0
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline or rounds < 3:
            frame = read_dataframe([url], records_per_partition=1 << 18).compute(scheduler="synchronous")
            count = len(frame)
            assert count >= seen, f"the count went back from {seen} to {count}"
            ids = np.arange(count, dtype=np.int64)
            assert (frame["id"].to_numpy() == ids).all()
            check = (ids.view(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ np.uint64(0xDEADBEEF)  # Sample's
            assert (frame["check"].to_numpy() == check).all(), "a torn or wrong record"
            seen = count
            rounds += 1
        assert rounds >= 3 and seen > 0
        assert writer.wait(20) == 0
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
