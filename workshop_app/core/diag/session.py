"""DiagSession: the one worker thread that makes every diagnostic call of a connection.

It takes the bus and notifier of the connection's source (capture keeps running on them) and
runs the calls given to ``submit`` one at a time, so two jobs never talk to one ECU at once
and no diagnostic call ever blocks a GUI thread. The workflows built on it (scan and store,
clear with scans, watch, triggered capture) are ``core/diag/jobs.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import can

from workshop_app.core.diag.client import DiagError
from workshop_app.core.diag.descriptions import DtcDescriptions
from workshop_app.core.diag.ecu_spec import VehicleSpec
from workshop_app.core.sources.base import FrameSource

T = TypeVar("T")


class DiagSession:
    def __init__(
        self,
        source: FrameSource,
        spec: VehicleSpec | None,
        *,
        descriptions: DtcDescriptions | None = None,
    ) -> None:
        self.source = source
        self.spec = spec
        self.descriptions = descriptions if descriptions is not None else DtcDescriptions()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="diag")

    def link(self) -> tuple[can.BusABC, can.Notifier]:
        """The connection's bus and notifier; DiagError when it has none (a replayed log)."""
        bus = self.source.bus
        notifier = getattr(self.source, "notifier", None)
        if bus is None or notifier is None:
            raise DiagError(
                f"{self.source.describe()}: diagnostics need a live connection (adapter, socketcand, "
                "cloud link or the simulated vehicle)"
            )
        return bus, notifier

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        return self._pool.submit(fn, *args, **kwargs)

    def close(self) -> None:
        """After the call in progress; calls still queued are dropped."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> DiagSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
