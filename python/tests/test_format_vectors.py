"""The shared format vectors (Tests/FormatVectors): every table gets exactly the outcome
expected.json gives it, through open, refresh and wait alike. The Swift test FormatVectorTests
reads the same files and expects the same outcomes, with the same error codes."""

import json
import os
import shutil

import pytest

import mappedrecords
from mappedrecords import _format

VECTORS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                       "Tests", "FormatVectors")
with open(os.path.join(VECTORS, "expected.json")) as f:
    EXPECTED = json.load(f)["vectors"]


@pytest.mark.parametrize("vector", EXPECTED, ids=[v["file"] for v in EXPECTED])
def test_format_vector(tmp_path, vector):
    path = tmp_path / vector["file"]
    shutil.copyfile(os.path.join(VECTORS, vector["file"]), path)
    if vector.get("thisBoot"):
        with open(path, "r+b") as f:
            f.seek(_format.LIVE_OFFSET)
            f.write(_format.boot_identifier())
    if "error" in vector:
        with pytest.raises(mappedrecords.FormatError) as raised:
            mappedrecords.open(path).close()
        assert raised.value.code == vector["error"], f"{vector['description']}: {raised.value}"
        return
    with mappedrecords.open(path) as table:
        assert len(table) == vector["count"], vector["description"]
        assert table.sealed_successor == vector.get("sealed"), "seal: " + vector["description"]
        assert table.refresh() == vector["count"], "refresh: " + vector["description"]
        assert table.wait(beyond=max(0, vector["count"] - 1), timeout=0) == vector["count"]
        assert (table.records["id"] == range(vector["count"])).all()
