"""SIGINT, SIGTERM and SIGHUP end every command and the window the way the user's own stop does.

Python runs a signal handler only when the interpreter gets control, in the main thread, between
two bytecodes. An exception raised there (the old SIGTERM → KeyboardInterrupt) lands in whatever
code runs at that moment: under Qt that is a virtual method override, where PySide6 prints and
swallows it and the window runs on; in a capture it may cut a file's closing in half. So:

* The CLI (:func:`install_cli`): a capture loop inside :func:`graceful_stop` gets a stop
  request (an Event) and finishes normally — files closed, summary printed. Anywhere else,
  and on a second signal, the handler raises KeyboardInterrupt, which ``workshop``'s main()
  turns into exit status 130 after the ``finally`` blocks have closed what was open.
* The window (:class:`StopSignals` with ``wakeup=True``): the handler only calls back (the GUI
  queues a close of its main window); the C-level handler also writes the signal number to a
  socket the Qt event loop watches, so Python gets control even while Qt sleeps.

This module never imports Qt: the GUI brings its own socket notifier.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from types import FrameType

# SIGHUP (a closed terminal, a logout) does not exist on Windows.
STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)

_Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None


class StopSignals:
    """Install handlers for :data:`STOP_SIGNALS` that call ``on_signal(signum)``; restore on exit.

    ``on_signal`` runs in the main thread between bytecodes: it must be quick and must not
    raise unless raising is the point (the CLI's second Ctrl-C). With ``wakeup=True`` a socket
    pair receives one byte per signal (:attr:`wakeup_fileno` to watch, :meth:`drain` to read).

    >>> with StopSignals(lambda signum: None) as handlers:
    ...     handlers.installed
    True
    """

    def __init__(self, on_signal: Callable[[int], None], *, wakeup: bool = False) -> None:
        self._on_signal = on_signal
        self._wakeup = wakeup
        self._previous: dict[signal.Signals, _Handler] = {}
        self._previous_wakeup_fd: int | None = None
        self._pair: tuple[socket.socket, socket.socket] | None = None
        self.installed = False

    @property
    def wakeup_fileno(self) -> int:
        if self._pair is None:
            raise RuntimeError("installed without wakeup=True")
        return self._pair[0].fileno()

    def install(self) -> StopSignals:
        if self.installed:
            return self
        if self._wakeup:
            reader, writer = socket.socketpair()
            reader.setblocking(False)
            writer.setblocking(False)
            self._pair = (reader, writer)
            self._previous_wakeup_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        self.installed = True
        return self

    def restore(self) -> None:
        if not self.installed:
            return
        for signum, previous in self._previous.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()
        if self._pair is not None:
            signal.set_wakeup_fd(self._previous_wakeup_fd if self._previous_wakeup_fd is not None else -1)
            for sock in self._pair:
                sock.close()
            self._pair = None
        self.installed = False

    def drain(self) -> list[int]:
        """Signal numbers written to the wake-up socket since the last call."""
        if self._pair is None:
            return []
        numbers: list[int] = []
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while chunk := self._pair[0].recv(64):
                numbers.extend(chunk)
        return numbers

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self._on_signal(signum)

    def __enter__(self) -> StopSignals:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.restore()


# -- the command line ---------------------------------------------------------------------------

_stop_request = threading.Event()
_graceful_depth = 0
received: list[int] = []  # signals received during this process's command, for its summary


def _on_cli_signal(signum: int) -> None:
    received.append(signum)
    if _graceful_depth and not _stop_request.is_set():
        _stop_request.set()  # the capture loop sees it on its next turn and ends normally
        return
    raise KeyboardInterrupt  # outside a capture loop, or a second signal: stop right here


def install_cli() -> StopSignals:
    """The handlers of ``workshop``'s main(): call :meth:`StopSignals.restore` when done."""
    _stop_request.clear()
    received.clear()
    return StopSignals(_on_cli_signal).install()


@contextlib.contextmanager
def graceful_stop() -> Iterator[threading.Event]:
    """Within the block, a stop signal sets the yielded Event instead of interrupting."""
    global _graceful_depth
    if not _graceful_depth:
        _stop_request.clear()  # a signal before the loop already interrupted whatever ran then
    _graceful_depth += 1
    try:
        yield _stop_request
    finally:
        _graceful_depth -= 1


def signal_name(signum: int) -> str:
    with contextlib.suppress(ValueError):
        return signal.Signals(signum).name
    return f"signal {signum}"
