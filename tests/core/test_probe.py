"""Adapter check and listen-only bitrate detection, on real python-can buses."""

from __future__ import annotations

import errno
import threading
import time
import uuid

import can
import pytest

from workshop_app.core.errors import SourceError
from workshop_app.core.sources.adapter import open_bus
from workshop_app.core.sources.probe import (
    LISTEN_ONLY_KWARGS,
    check_adapter,
    detect_bitrate,
    friendly_error,
    supports_listen_only,
)
from workshop_app.core.types import BusConfig


class BenchBus(can.BusABC):
    """A car's bus as a controller sees it: readable frames only at the bus's real bitrate.

    At any other bitrate the controller sees bit errors, i.e. error frames. It refuses to
    transmit, and records how it was opened.
    """

    car_bitrate: int | None = 250_000  # None: the car is asleep, nothing on the bus
    openings: list[tuple[int | None, dict[str, object]]] = []  # noqa: RUF012 - the test resets it

    def __init__(self, channel: str, bitrate: int | None = None, **kwargs: object) -> None:
        self.bitrate = bitrate
        self.listen_only = kwargs.pop("listen_only", False)
        BenchBus.openings.append((bitrate, {"listen_only": self.listen_only}))
        self.channel_info = f"bench {channel}"
        self._sent = 0
        super().__init__(channel, **kwargs)

    def _recv_internal(self, timeout: float | None) -> tuple[can.Message | None, bool]:
        time.sleep(0.002)
        if self.car_bitrate is None:
            return None, False
        self._sent += 1
        if self.bitrate == self.car_bitrate:
            return can.Message(arbitration_id=0x100 + self._sent % 3, data=b"\x00" * 8), False
        return can.Message(is_error_frame=True, arbitration_id=0x20000080), False

    def send(self, msg: can.Message, timeout: float | None = None) -> None:
        raise AssertionError("the bench bus must never be transmitted on")

    @property
    def state(self) -> can.BusState:
        return can.BusState.PASSIVE if self.listen_only else can.BusState.ACTIVE

    def error_counters(self) -> tuple[int, int]:
        return 0, 0 if self.bitrate == self.car_bitrate else 127


def _open_bench(config: BusConfig, **kwargs: object) -> can.BusABC:
    return BenchBus(config.channel, bitrate=config.bitrate, **kwargs)


@pytest.fixture(autouse=True)
def _fresh_bench() -> None:
    BenchBus.car_bitrate = 250_000
    BenchBus.openings = []


def test_detect_bitrate_finds_the_car_bitrate_listen_only():
    rate = detect_bitrate(
        BusConfig("bench", "ch0"), open_fn=_open_bench, listen_only={"listen_only": True}, listen=0.1
    )
    assert rate == 250_000
    # tried in order, stopped at the first fit, and every opening was listen-only
    assert [b for b, _ in BenchBus.openings] == [500_000, 250_000]
    assert all(kw["listen_only"] for _, kw in BenchBus.openings)


def test_detect_bitrate_reports_progress_and_honours_cancel():
    seen: list[tuple[int, int]] = []
    BenchBus.car_bitrate = 50_000  # the last candidate
    assert (
        detect_bitrate(
            BusConfig("bench", "ch0"),
            open_fn=_open_bench,
            listen_only={"listen_only": True},
            listen=0.05,
            progress=lambda done, total: seen.append((done, total)),
        )
        == 50_000
    )
    assert seen[0] == (0, 7) and seen[-1] == (7, 7)

    cancel = threading.Event()
    cancel.set()
    BenchBus.openings = []
    assert (
        detect_bitrate(BusConfig("bench", "ch0"), open_fn=_open_bench, listen_only={}, cancel=cancel) is None
    )
    assert BenchBus.openings == []


def test_detect_bitrate_on_a_silent_bus_finds_nothing():
    BenchBus.car_bitrate = None
    rate = detect_bitrate(
        BusConfig("bench", "ch0"),
        candidates=(500_000, 125_000),
        open_fn=_open_bench,
        listen_only={"listen_only": True},
        listen=0.05,
    )
    assert rate is None
    assert len(BenchBus.openings) == 2


@pytest.mark.parametrize("interface", ["virtual", "socketcan", "socketcand"])
def test_detect_bitrate_refuses_interfaces_without_listen_only(interface):
    assert not supports_listen_only(interface)
    with pytest.raises(SourceError, match="listen-only"):
        detect_bitrate(BusConfig(interface, "can0"), open_fn=_open_bench)
    assert BenchBus.openings == []  # refused before opening anything


def test_detect_bitrate_with_an_absent_driver_says_so():
    assert supports_listen_only("pcan")
    assert LISTEN_ONLY_KWARGS["pcan"] == {"state": can.BusState.PASSIVE}
    # no PCAN hardware or library here: the adapter never opens, which is an error, not "no bitrate"
    with pytest.raises(SourceError, match=r"^pcan PCAN_USBBUS1 @ 500 kbit/s: ") as info:
        detect_bitrate(BusConfig("pcan", "PCAN_USBBUS1"), candidates=(500_000,), listen=0.05)
    assert str(info.value).count("PCAN_USBBUS1") == 1


def test_check_adapter_on_a_virtual_bus_counts_traffic():
    channel = f"probe-{uuid.uuid4().hex}"
    with can.Bus(interface="virtual", channel=channel) as car:

        def open_and_feed(config: BusConfig, **kwargs: object) -> can.BusABC:
            bus = open_bus(config, **kwargs)
            for i in range(6):  # queued on the freshly opened bus
                car.send(can.Message(arbitration_id=0x100 + i % 3, data=bytes([i]), is_extended_id=False))
            return bus

        check = check_adapter(BusConfig("virtual", channel), listen=0.2, open_fn=open_and_feed)
    assert check.opened and check.error is None
    assert check.frames == 6 and check.error_frames == 0
    assert check.ids == (0x100, 0x101, 0x102) and check.distinct_ids == 3
    assert check.bus_state is None  # virtual does not report a state
    assert check.error_counters is None
    assert check.healthy
    assert "6 frame(s) from 3 id(s)" in check.summary()


def test_check_adapter_at_the_wrong_bitrate_sees_error_frames():
    check = check_adapter(BusConfig("bench", "ch0", bitrate=500_000), listen=0.05, open_fn=_open_bench)
    assert check.opened and check.frames == 0 and check.error_frames > 0
    assert check.bus_state == "active"
    assert check.error_counters == (0, 127)
    assert not check.healthy
    assert "bitrate is probably wrong" in check.summary()


def test_check_adapter_on_a_silent_bus_suggests_what_to_check():
    BenchBus.car_bitrate = None
    check = check_adapter(BusConfig("bench", "ch0", bitrate=250_000), listen=0.05, open_fn=_open_bench)
    assert check.opened and check.frames == 0
    assert "No traffic" in check.summary()


def test_check_adapter_of_an_unknown_interface_is_plain_words():
    check = check_adapter(BusConfig("no_such_adapter", "x"), listen=0.05)
    assert not check.opened
    assert "no_such_adapter" in (check.error or "") and "not installed" in (check.error or "")
    assert check.summary().startswith("Could not open no_such_adapter x")


def test_check_adapter_of_an_unreachable_server_is_plain_words():
    check = check_adapter(BusConfig("socketcand", "can0", host="127.0.0.1", port=1), listen=0.05)
    assert not check.opened and "refused the connection" in (check.error or "")


@pytest.mark.parametrize(
    ("exc", "words"),
    [
        (can.CanInterfaceNotImplementedError("no libPCANBasic"), "not installed"),
        (OSError(errno.ENODEV, "No such device"), "plugged in"),
        (ValueError("Invalid bitrate 33000"), "does not accept this bitrate"),
        (ConnectionRefusedError(111, "refused"), "refused the connection"),
        (TimeoutError("timed out"), "check the host, port and cable"),
        (can.CanInitializationError("channel busy"), "could not be opened (channel busy)"),
    ],
)
def test_friendly_error_wording(exc, words):
    assert words in friendly_error(exc, "pcan")
