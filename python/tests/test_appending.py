"""The Python writer on existing tables: open(path, mode="a"), its lock, the path check, growth
and the doorbell that wakes Swift and Python followers."""

import os
import subprocess
import threading
import time

import numpy as np
import pytest

import mappedrecords
from conftest import SAMPLE, mrec, samples

SCHEMA = "id:i64@0,value:f64@8,check:u64@16,flag:bool@24,tag:char[7]@25"


def test_python_appends_to_a_table_swift_made_and_swift_reads_it(tmp_path, helper_path):
    path = tmp_path / "t.mrec"
    done = subprocess.run([helper_path, "table-writer", str(path), "100", "batch"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    with mappedrecords.open(path, mode="a") as writer:
        assert len(writer) == 100
        assert writer.dtype == SAMPLE
        writer.append(samples(100, 5000))  # past the capacity: the file grows
        assert len(writer) == 5000 and writer.capacity >= 5000
    _, out, _ = mrec("verify", path)
    assert "5000" in out
    # Swift appends after Python, and every record is the one expected.
    done = subprocess.run([helper_path, "table-writer", str(path), "10", "batch"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    with mappedrecords.open(path) as table:
        assert len(table) == 5010
        assert (table.records == samples(0, 5010)).all()


def test_a_second_writer_is_refused_or_waits(tmp_path):
    path = tmp_path / "t.mrec"
    first = mappedrecords.create(path, SAMPLE)
    first.append(samples(0, 3))
    with pytest.raises(mappedrecords.WriterActiveError) as refused:
        mappedrecords.open(path, mode="a")
    assert refused.value.code == "writerActive" and str(path) in str(refused.value)
    threading.Timer(0.2, first.close).start()
    with mappedrecords.open(path, mode="a", wait_for_writer=10) as second:
        assert len(second) == 3
        second.append(samples(3, 4))
    with mappedrecords.open(path) as table:
        assert (table.records == samples(0, 4)).all()


def test_a_writer_that_waited_through_a_migration_appends_to_the_new_table(tmp_path):
    path = tmp_path / "t.mrec"
    holder = mappedrecords.create(path, SAMPLE)
    holder.append(samples(0, 10))
    result = {}

    def wait_and_append():
        with mappedrecords.open(path, mode="a", wait_for_writer=20) as writer:
            result["found"] = len(writer)
            writer.append(samples(len(writer), len(writer) + 5))

    waiting = threading.Thread(target=wait_and_append)
    waiting.start()
    time.sleep(0.3)
    # A "migration": a new table with 1000 records renamed over the path while the lock is held.
    staged = tmp_path / "staged.mrec"
    with mappedrecords.create(staged, SAMPLE) as new:
        new.append(samples(0, 1000))
    os.rename(staged, path)
    holder.close()
    waiting.join(30)
    assert result["found"] == 1000
    with mappedrecords.open(path) as table:
        assert (table.records == samples(0, 1005)).all()


def test_appending_refuses_what_is_not_a_writable_table(tmp_path):
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(mappedrecords.NotATableError):
        mappedrecords.open(tmp_path / "empty", mode="a")
    with pytest.raises(mappedrecords.NotATableError):
        mappedrecords.open(tmp_path, mode="a")
    with pytest.raises(FileNotFoundError):
        mappedrecords.open(tmp_path / "missing.mrec", mode="a")
    with pytest.raises(ValueError, match="local file"):
        mappedrecords.open("memory://t.mrec", mode="a")
    with pytest.raises(ValueError, match="mode"):
        mappedrecords.open(tmp_path / "x", mode="w")


def test_a_takeover_after_a_writer_was_killed_keeps_its_records(tmp_path, helper_path):
    """A Swift writer killed with SIGKILL: its live count is exact for this boot, and Python takes over from it."""
    path = tmp_path / "t.mrec"
    mrec("create", path, "--schema", SCHEMA)
    writer = subprocess.Popen([helper_path, "table-append-hold", str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "writing 0"
    writer.stdin.write("777\n")
    writer.stdin.flush()
    assert writer.stdout.readline().strip() == "appended 777"
    writer.kill()
    writer.wait()
    with mappedrecords.open(path, mode="a") as appender:
        assert len(appender) == 777  # the live count, not the commit point (0)
        appender.append(samples(777, 800))
    with mappedrecords.open(path) as table:
        assert (table.records == samples(0, 800)).all()
    mrec("verify", path)


def test_a_python_writer_rings_the_doorbell_for_a_swift_follower(tmp_path, helper_path):
    path = tmp_path / "t.mrec"
    with mappedrecords.create(path, SAMPLE) as writer:
        assert writer.has_doorbell
        delays = []
        for round_ in range(4):
            follower = subprocess.Popen([helper_path, "table-wait", str(path), str(len(writer)), "20000", "block"],
                                        stdout=subprocess.PIPE, text=True)
            try:
                assert follower.stdout.readline().strip() == "waiting"
                time.sleep(0.3)  # idle, so that a poll would be late
                started = time.monotonic()
                writer.append(samples(len(writer), len(writer) + 1 + round_))
                reply = follower.stdout.readline().split()
                delays.append(time.monotonic() - started)
                assert reply[:2] == ["count", str(len(writer))] and reply[-1] == "active"
                assert follower.wait(10) == 0
            finally:
                if follower.poll() is None:
                    follower.kill()
                    follower.wait()
        # Woken by the writer: a follower polling every 100 ms would be late at least once.
        assert max(delays) < 0.08, delays


def test_a_python_follower_of_a_python_writer_wakes_at_once(tmp_path):
    path = tmp_path / "t.mrec"
    with mappedrecords.create(path, SAMPLE) as writer, mappedrecords.open(path) as table:
        for round_ in range(4):
            known = len(writer)
            timer = threading.Timer(0.3, writer.append, [samples(known, known + 2)])
            started = time.monotonic()
            timer.start()
            count = table.wait(known, timeout=20)
            woke = time.monotonic() - started
            timer.join()
            assert count == known + 2
            # 0.3 s of sleep, then woken by the doorbell (a poll would wake at 0.4 s or later).
            assert woke < 0.38, woke


def test_closing_tells_followers_the_writer_left(tmp_path, helper_path):
    path = tmp_path / "t.mrec"
    writer = mappedrecords.create(path, SAMPLE)
    writer.append(samples(0, 1))
    follower = subprocess.Popen([helper_path, "table-wait", str(path), "1", "20000", "block"],
                                stdout=subprocess.PIPE, text=True)
    try:
        assert follower.stdout.readline().strip() == "waiting"
        time.sleep(0.2)
        writer.close()
        reply = follower.stdout.readline().split()
        assert reply[:2] == ["count", "1"] and reply[-1] == "gone", reply
    finally:
        if follower.poll() is None:
            follower.kill()
        follower.wait()
