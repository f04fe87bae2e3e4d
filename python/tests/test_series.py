"""A series of tables (docs/FORMAT.md, "Series"), written by the Swift library, read in order."""

import subprocess

import numpy as np
import pytest

import mappedrecords
from mappedrecords import _format


def make_series(helper_path, directory, total, roll="records:100"):
    """Sample ids 0..total-1 in a series that rolls by ``roll`` (the Swift test helper writes it)."""
    done = subprocess.run([helper_path, "series-append", str(directory), str(total), roll, "forever", "exclusive"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return directory


def test_series_files_are_ordered_by_number_and_sealed_in_a_chain(tmp_path, helper_path):
    directory = make_series(helper_path, tmp_path / "trades", 250)
    (tmp_path / "trades" / "notes.txt").write_text("not a table")
    files = mappedrecords.series_files(str(directory))
    # Batches of 1 to 20 are never split, so a file holds 81 to 100 of the 250 records.
    assert len(files) in (3, 4)
    assert [f.rsplit("/", 1)[-1] for f in files] == [f"{n:08d}.mrec" for n in range(1, len(files) + 1)]
    counts = []
    for number, path in enumerate(files, start=1):
        with mappedrecords.open(path) as table:
            assert table.sealed_successor == (None if number == len(files) else number + 1)
            assert "mappedrecords.series.created" in table.metadata
            counts.append(len(table))
    assert sum(counts) == 250 and max(counts) <= 100
    assert mappedrecords.series_files(files[0]) is None  # one table is not a series
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError):
        mappedrecords.series_files(str(empty))


def test_names_follow_the_format(tmp_path):
    assert _format.series_file_name(42) == "00000042.mrec"
    assert _format.series_file_number("00000042.mrec") == 42
    assert _format.series_file_number("123456789.mrec") == 123456789
    for name in ("0000042.mrec", "00000000.mrec", "00000042.mrec.tmp", ".00000042.mrec", "0000004x.mrec"):
        assert _format.series_file_number(name) is None, name


def test_a_dataset_and_dask_read_the_series_in_order(tmp_path, helper_path):
    dd = pytest.importorskip("dask.dataframe")
    from mappedrecords.dask import read_dataframe

    directory = make_series(helper_path, tmp_path / "trades", 1_234)
    table = mappedrecords.dataset(str(directory)).to_arrow(columns=["id"])
    assert table.column("id").to_pylist() == list(range(1_234))
    frame = read_dataframe(str(directory), records_per_partition=64)
    assert isinstance(frame, dd.DataFrame)
    ids = frame["id"].compute()
    assert np.array_equal(ids.to_numpy(), np.arange(1_234))


def test_a_series_in_object_storage_reads_in_order(tmp_path, helper_path, s3_server):
    pytest.importorskip("dask.dataframe")
    from mappedrecords.dask import read_dataframe

    directory = make_series(helper_path, tmp_path / "trades", 520)
    for path in sorted(directory.iterdir()):
        s3_server["client"].upload_file(str(path), "tables", f"series/{path.name}")
    frame = read_dataframe("s3://tables/series/", records_per_partition=100, storage_options=s3_server["options"])
    assert np.array_equal(frame["id"].compute().to_numpy(), np.arange(520))


def test_the_python_writer_refuses_a_sealed_file(tmp_path, helper_path):
    directory = make_series(helper_path, tmp_path / "trades", 250)
    first, *_ = mappedrecords.series_files(str(directory))
    with pytest.raises(mappedrecords.SealedError) as refused:
        mappedrecords.open(first, mode="a")
    assert refused.value.code == "sealed"
    assert "continues in file 2" in str(refused.value)


def test_the_python_writer_and_swift_shared_appenders_exclude_each_other(tmp_path, helper_path):
    path = tmp_path / "shared.mrec"
    subprocess.run([helper_path, "table-append-for", str(path), "0"], check=True, capture_output=True, timeout=60)
    holder = subprocess.Popen([helper_path, "table-hold-appender", str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "appending"
        with pytest.raises(mappedrecords.WriterActiveError):
            mappedrecords.open(path, mode="a")
        with mappedrecords.open(path) as reader:
            assert reader.writer_is_active()
    finally:
        assert holder.stdin is not None
        holder.stdin.write("close\n")
        holder.stdin.close()
        assert holder.wait(timeout=30) == 0
    with mappedrecords.open(path, mode="a") as writer:
        assert writer is not None
