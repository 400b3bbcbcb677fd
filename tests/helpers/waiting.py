"""Waiting for a condition in tests: a bound on waiting, never asserted as a duration.

Tests wait for the event they need (a counter moved, a status bit set, a line printed), never
for a fixed time: a loaded machine only makes the wait longer, and the timeout is a deadline
after which the test fails with one plain line naming what never happened.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

POLL_S = 0.02  # short enough not to lengthen a test, long enough not to spin a core


def wait_until(condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``condition`` until it returns a true value and return that value.

    Raises ``AssertionError("timed out after <timeout> s waiting for <what>")`` once a look at
    the condition has come back false after the deadline.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(POLL_S)


# The name the older tests use.
wait_for = wait_until
