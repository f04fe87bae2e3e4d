"""Every engine reads a table with no conversion in user code: numpy (__array__, columns),
pyarrow, Polars and DuckDB through the Arrow PyCapsule interface, for one table and a dataset."""

import numpy as np
import pytest

import mappedrecords
from conftest import SAMPLE, samples

pa = pytest.importorskip("pyarrow")
pl = pytest.importorskip("polars")
duckdb = pytest.importorskip("duckdb")

TRADE = np.dtype([("id", "<i8"), ("side", "S4"), ("qty", "<i4"), ("price", "<f8"), ("vec", "<f4", (3,))], align=True)


def trades(start, n):
    records = np.zeros(n, dtype=TRADE)
    records["id"] = np.arange(start, start + n)
    records["side"] = np.where(records["id"] % 3 == 0, b"buy", b"sell")
    records["qty"] = records["id"] % 17
    records["price"] = records["id"] * 0.25
    records["vec"] = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    return records


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "trades.mrec"
    with mappedrecords.create(path, TRADE) as writer:
        writer.append(trades(0, 5000))
    with mappedrecords.open(path) as opened:
        yield opened


def test_numpy_reads_the_mapping_itself(table):
    array = np.asarray(table)
    assert array.shape == (5000,) and np.shares_memory(array, table.records)
    assert not array.flags.writeable
    assert np.asarray(table, copy=True).flags.owndata
    columns = table.columns()
    assert list(columns) == list(TRADE.names)
    assert np.shares_memory(columns["price"], table.records)
    assert (columns["qty"] == trades(0, 5000)["qty"]).all()
    assert list(table.columns(["qty"])) == ["qty"]
    with pytest.raises(KeyError, match="no field"):
        table.columns(["nope"])


def test_pyarrow_polars_and_duckdb_through_the_capsule(table):
    expected = trades(0, 5000)
    arrow = pa.table(table)
    assert arrow.num_rows == 5000 and arrow.schema == table.to_arrow().schema
    assert arrow.column("price").to_numpy().tolist() == expected["price"].tolist()
    frame = pl.DataFrame(table)
    assert frame["qty"].to_numpy().tolist() == expected["qty"].tolist()
    assert frame["side"].to_list()[:3] == ["buy", "sell", "sell"]
    # Polars' from_arrow gives any Arrow stream as one struct Series; unnested, it is the frame.
    assert pl.from_arrow(table).struct.unnest()["id"].sum() == expected["id"].sum()
    t = table  # noqa: F841 - DuckDB finds the Python variable by its name
    result = duckdb.sql("select side, sum(qty) as q from t group by side order by side").fetchall()
    buy = expected["side"] == b"buy"
    assert result == [("buy", int(expected["qty"][buy].sum())), ("sell", int(expected["qty"][~buy].sum()))]


def test_a_dataset_streams_every_table_in_order(tmp_path):
    for i in range(3):
        with mappedrecords.create(tmp_path / f"d{i}.mrec", SAMPLE) as writer:
            writer.append(samples(i * 1000, (i + 1) * 1000))
    ds = mappedrecords.dataset(str(tmp_path / "d*.mrec"), records_per_partition=400)
    assert len(ds) == 3000 and len(ds.partitions) == 9
    arrow = pa.table(ds)
    assert arrow.column("id").to_pylist() == list(range(3000))
    assert arrow.column("tag").to_pylist()[:2] == ["r0", "r1"]
    assert pl.DataFrame(ds)["check"].to_numpy().tolist() == samples(0, 3000)["check"].tolist()
    ds_ = ds  # noqa: F841
    assert duckdb.sql("select count(*), sum(id) from ds_").fetchall() == [(3000, sum(range(3000)))]
    assert ds.to_pandas(["id"])["id"].tolist() == list(range(3000))


def test_an_empty_table_streams_its_schema(tmp_path):
    path = tmp_path / "e.mrec"
    mappedrecords.create(path, SAMPLE).close()
    with mappedrecords.open(path) as table:
        arrow = pa.table(table)
        assert arrow.num_rows == 0 and arrow.schema.names == list(SAMPLE.names)
        assert pl.DataFrame(table).height == 0


def test_text_ends_at_the_first_nul_on_every_path(tmp_path):
    """Full-width values (no trim), trailing NULs (trimmed in Arrow), a NUL before other bytes
    (cut after the trim) and invalid UTF-8 (the repairing path) all read as mrec shows them."""
    dtype = np.dtype([("t", "S6")])
    cases = {
        "full": ([b"abcdef", b"ghijkl"], ["abcdef", "ghijkl"]),
        "trailing": ([b"ab", b"", b"abcdef"], ["ab", "", "abcdef"]),
        "embedded": ([b"ab\x00cd", b"\x00xyz", b"ok"], ["ab", "", "ok"]),
        "invalid": ([b"\xff\xfeok", b"a\x00\xff", b"fine"], ["\ufffd\ufffdok", "a", "fine"]),
    }
    for name, (values, expected) in cases.items():
        path = tmp_path / f"{name}.mrec"
        with mappedrecords.create(path, dtype) as writer:
            writer.append(np.array([(v,) for v in values], dtype=dtype))
        with mappedrecords.open(path) as table:
            assert table.to_arrow().column("t").to_pylist() == expected, name
            assert pl.DataFrame(table)["t"].to_list() == expected, name
