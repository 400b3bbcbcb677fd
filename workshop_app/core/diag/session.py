"""DiagSession: diagnostics on a live connection, one worker thread for every call.

The GUI and the CLI both go through this: it takes the bus and notifier of the connection's
source (capture keeps running on them), and runs scans and clears one at a time on its own
thread, so no diagnostic call ever blocks a GUI thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import can

from workshop_app.core.diag.client import DiagError
from workshop_app.core.diag.descriptions import DtcDescriptions
from workshop_app.core.diag.ecu_spec import VehicleSpec
from workshop_app.core.diag.model import ScanLabel, ScanResult
from workshop_app.core.diag.scan import ClearOutcome, Progress, ScanOptions, VehicleScanner
from workshop_app.core.sources.base import FrameSource

T = TypeVar("T")


class DiagSession:
    def __init__(
        self,
        source: FrameSource,
        spec: VehicleSpec | None,
        *,
        descriptions: DtcDescriptions | None = None,
        options: ScanOptions | None = None,
    ) -> None:
        self.source = source
        self.spec = spec
        self.descriptions = descriptions if descriptions is not None else DtcDescriptions()
        self.options = options or ScanOptions()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="diag")
        self.cancel = threading.Event()

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

    def scanner(self) -> VehicleScanner:
        bus, notifier = self.link()
        return VehicleScanner(
            bus,
            notifier,
            self.spec,
            descriptions=self.descriptions,
            options=self.options,
            connection=self.source.describe(),
        )

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        return self._pool.submit(fn, *args, **kwargs)

    def scan(
        self, *, label: ScanLabel = ScanLabel.NONE, progress: Progress | None = None
    ) -> Future[ScanResult]:
        self.cancel.clear()
        return self.submit(lambda: self.scanner().scan(label=label, progress=progress, cancel=self.cancel))

    def clear(self, names: list[str] | None = None) -> Future[list[ClearOutcome]]:
        return self.submit(lambda: self.scanner().clear(names))

    def close(self) -> None:
        self.cancel.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> DiagSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
