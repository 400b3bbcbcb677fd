"""The shared wait helper: returns what the condition found, fails with one plain line."""

from __future__ import annotations

import threading

import pytest
from helpers.waiting import wait_for, wait_until


def test_returns_the_first_true_value_set_on_another_thread():
    found: list[str] = []
    ready = threading.Event()
    worker = threading.Thread(target=lambda: (ready.wait(10), found.append("frame")), name="setter")
    worker.start()
    try:
        ready.set()
        assert wait_until(lambda: list(found), 10, "the frame") == ["frame"]
    finally:
        worker.join(10)


def test_a_missed_deadline_names_what_never_happened():
    calls = []
    with pytest.raises(AssertionError) as info:
        wait_until(lambda: calls.append(1), 0.05, "the ECM to confirm P0118")
    assert str(info.value) == "timed out after 0.05 s waiting for the ECM to confirm P0118"
    assert calls  # the condition was looked at before giving up


def test_the_older_name_is_the_same_helper():
    assert wait_for is wait_until
