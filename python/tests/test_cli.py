"""python -m mappedrecords info | dump | export."""

import json
import subprocess
import sys

import pyarrow.csv as pcsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

import mappedrecords
from conftest import SAMPLE, samples


def run(*arguments):
    return subprocess.run([sys.executable, "-m", "mappedrecords", *map(str, arguments)], capture_output=True, text=True, timeout=120)


def test_info_dump_export(tmp_path):
    path = tmp_path / "t.mrec"
    with mappedrecords.create(path, SAMPLE, metadata={"sorted_by": "id"}) as writer:
        writer.append(samples(0, 1000))
    info = run("info", path)
    assert info.returncode == 0
    assert "records:    1000" in info.stdout and "sorted_by = id" in info.stdout and "tag" in info.stdout
    dump = run("dump", path, "--limit", "2")
    assert [json.loads(line)["tag"] for line in dump.stdout.splitlines()] == ["r0", "r1"]
    for option, read in (("--parquet", pq.read_table), ("--arrow", lambda p: ipc.open_file(p).read_all()),
                         ("--csv", pcsv.read_csv)):
        out = tmp_path / f"out{option}"
        done = run("export", path, option, out)
        assert done.returncode == 0, done.stderr
        table = read(out)
        assert table.num_rows == 1000
        assert table.column("id").to_pylist() == list(range(1000))
        assert table.column("tag").to_pylist()[999] == "r999"


def test_errors_and_status(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.write_text("hello")
    done = run("info", foreign)
    assert done.returncode == 1 and "magic" in done.stderr
    done = run("info", tmp_path / "missing")
    assert done.returncode == 3 and "No such file" in done.stderr
