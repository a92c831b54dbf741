"""The read-ahead / write-behind helper (``creditdb.overlap``): order, overlap, failures."""

from __future__ import annotations

import threading

import pytest

from creditdb.overlap import WriteBehind, read_ahead


def test_read_ahead_yields_in_order_and_reads_one_item_ahead():
    produced: list[int] = []
    gate = threading.Event()

    def items():
        for i in range(4):
            produced.append(i)
            yield i

    seen = []
    for item in read_ahead(items()):
        if item == 1:
            # item 2 is produced in the background while the caller holds item 1
            for _ in range(200):
                if 2 in produced:
                    break
                gate.wait(0.01)
            assert 2 in produced
        seen.append(item)
    assert seen == [0, 1, 2, 3]


def test_read_ahead_stops_the_source_when_the_caller_stops():
    closed = threading.Event()

    def items():
        try:
            yield from range(100)
        finally:
            closed.set()

    gen = read_ahead(items())
    assert next(gen) == 0
    gen.close()
    assert closed.is_set()


def test_read_ahead_passes_the_sources_error_at_its_place():
    def items():
        yield 1
        raise OSError("disk gone")

    got = []
    with pytest.raises(OSError, match="disk gone"):
        for item in read_ahead(items()):
            got.append(item)
    assert got == [1]


def test_write_behind_runs_one_job_at_a_time_in_order_with_tags():
    running = 0
    peak = 0
    lock = threading.Lock()
    order: list[int] = []

    def job(i: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        order.append(i)
        with lock:
            running -= 1
        return i * 10

    done = []
    with WriteBehind[str]() as behind:
        for i in range(5):
            if (d := behind.finish()) is not None:
                done.append(d)
            behind.start(f"chunk {i}", job, i) if i != 2 else behind.start("chunk 2")  # chunk 2: no job
        if (d := behind.finish()) is not None:
            done.append(d)
    assert done == [("chunk 0", 0), ("chunk 1", 10), ("chunk 2", None), ("chunk 3", 30), ("chunk 4", 40)]
    assert order == [0, 1, 3, 4] and peak == 1
    assert behind.finish() is None


def test_write_behind_refuses_a_second_job_and_raises_the_jobs_error():
    def fail() -> None:
        raise ValueError("COPY failed")

    with WriteBehind[int]() as behind:
        behind.start(1)
        with pytest.raises(RuntimeError, match="finish"):
            behind.start(2)
        behind.finish()
        behind.start(3, fail)
        with pytest.raises(ValueError, match="COPY failed"):
            behind.finish()
        assert not behind.pending


def test_write_behind_waits_for_a_running_job_when_the_caller_fails():
    release = threading.Event()
    finished = threading.Event()

    def slow() -> None:
        release.wait(5)
        finished.set()

    with pytest.raises(KeyError), WriteBehind[int]() as behind:
        behind.start(1, slow)
        threading.Timer(0.05, release.set).start()
        raise KeyError("caller failed")
    # the block did not end before the job did (no rollback under a running COPY)
    assert finished.is_set()
