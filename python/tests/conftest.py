"""Shared fixtures: the Swift binaries (mrec, the test helper) and a Sample dtype.

`make test` sets MAPPEDRECORDS_BIN to SwiftPM's bin folder; a plain `pytest` looks in ../.build/debug.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if os.environ.get("MAPPEDRECORDS_TEST_INSTALLED") != "1":
    sys.path.insert(0, os.path.join(ROOT, "python"))  # test the working tree, not an installed copy
else:  # make python-test: the wheel it built and installed, so that a file missing from it fails
    import mappedrecords

    assert "site-packages" in mappedrecords.__file__, f"testing {mappedrecords.__file__}, not the installed wheel"
BIN = os.environ.get("MAPPEDRECORDS_BIN", os.path.join(ROOT, ".build", "debug"))

# Tests/TestSupport/Sample.swift: the self-checking record of the Swift tests.
SAMPLE = np.dtype({"names": ["id", "value", "check", "flag", "tag"],
                   "formats": ["<i8", "<f8", "<u8", "?", "S7"],
                   "offsets": [0, 8, 16, 24, 25], "itemsize": 32})


def samples(start, stop):
    """Sample(id:) for ids start..<stop, as Swift makes them."""
    ids = np.arange(start, stop, dtype=np.int64)
    records = np.zeros(len(ids), dtype=SAMPLE)
    records["id"] = ids
    records["value"] = ids * 0.5
    records["check"] = (ids.view(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ np.uint64(0xDEADBEEF)
    records["flag"] = ids % 2 == 0
    records["tag"] = [f"r{i % 1000}".encode() for i in ids]
    return records


def binary(name):
    path = os.path.join(BIN, name)
    if not os.path.exists(path):
        pytest.skip(f"{path} is not built; run `swift build` first (make test does)")
    return path


def mrec(*arguments, check=True):
    """Runs mrec; returns (status, stdout, stderr)."""
    done = subprocess.run([binary("mrec"), *map(str, arguments)], capture_output=True, text=True, timeout=120)
    if check and done.returncode != 0:
        raise AssertionError(f"mrec {' '.join(map(str, arguments))} exited {done.returncode}: {done.stderr}")
    return done.returncode, done.stdout, done.stderr


@pytest.fixture
def helper_path():
    return binary("mapped-test-helper")


@pytest.fixture
def http_server(tmp_path):
    """A Range-honouring HTTP server on 127.0.0.1 over tmp_path/http (see servers.py)."""
    from servers import RangeServer

    root = tmp_path / "http"
    root.mkdir()
    server = RangeServer(root)
    server.root = root
    yield server
    server.close()


@pytest.fixture
def s3_server():
    """An S3 API server on 127.0.0.1 (moto), with a bucket "tables"; yields the s3fs storage options."""
    pytest.importorskip("s3fs")
    moto_server = pytest.importorskip("moto.server")
    import boto3

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        options = {"key": "testing", "secret": "testing", "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
        client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                              region_name="us-east-1")
        client.create_bucket(Bucket="tables")
        yield {"options": options, "client": client, "endpoint": endpoint}
    finally:
        server.stop()
