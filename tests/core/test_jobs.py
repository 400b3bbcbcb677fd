"""The core's one progress shape and cancel token."""

from __future__ import annotations

import threading

import pytest

from workshop_app.core.jobs import (
    CancelToken,
    JobCancelled,
    JobProgress,
    done_total,
    phase_done_total,
    phase_fraction,
)


def test_progress_knows_its_fraction_only_when_the_total_is_known() -> None:
    assert JobProgress("download", 512, 1024).fraction == 0.5
    assert JobProgress("waiting for the vehicle").fraction is None
    assert JobProgress("download", 2048, 1024).fraction == 1.0
    assert JobProgress("download", 256, 1024).text() == "download  25.0%"


def test_the_older_callback_shapes_all_arrive_as_job_progress() -> None:
    seen: list[JobProgress] = []
    phase_done_total(seen.append)("erase", 1, 4)
    phase_fraction(seen.append)("reading ECM", 0.25)
    done_total(seen.append, "reading log")(10, 40)
    assert [p.fraction for p in seen] == [0.25, 0.25, 0.25]
    assert [p.phase for p in seen] == ["erase", "reading ECM", "reading log"]


def test_a_cancel_wakes_a_waiting_job_and_stops_it_at_its_next_check() -> None:
    token = CancelToken()
    token.check()  # nothing yet
    woke: list[bool] = []
    waiter = threading.Thread(target=lambda: woke.append(token.wait(30)))
    waiter.start()
    token.cancel("the user pressed Cancel")
    waiter.join(10)
    assert woke == [True] and token.cancelled
    with pytest.raises(JobCancelled, match="pressed Cancel"):
        token.check()
