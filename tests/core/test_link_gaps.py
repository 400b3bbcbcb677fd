"""A source keeps each time its link was down, and GapWatcher tells each change once."""

from __future__ import annotations

import uuid

import can
from helpers.waiting import wait_for

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.sim.socketcand_server import SocketcandServer
from workshop_app.core.sources.adapter import AdapterSource
from workshop_app.core.sources.base import SourceState
from workshop_app.core.sources.reconnect import GapWatcher, LinkGap, ReconnectPolicy
from workshop_app.core.types import BusConfig


def test_a_lost_server_leaves_one_gap_with_its_length_and_reason():
    channel = f"gaps-{uuid.uuid4().hex}"
    handles = [can.Bus(interface="virtual", channel=channel)]
    server = SocketcandServer(handles[0], port=0)
    server.start()
    host, port = server.address
    source = AdapterSource(
        FrameRing(),
        BusConfig("socketcand", "can0", host=host, port=port),
        policy=ReconnectPolicy(retry_interval=0.1),
    )
    watcher = GapWatcher(source)
    source.start()
    try:
        assert source.gaps == () and watcher.poll() == []
        server.stop()
        wait_for(lambda: source.state is SourceState.RECONNECTING, 3, "RECONNECTING")
        lost = watcher.poll()
        assert lost == [f"{source.describe()}: link lost ({source.gaps[0].reason}); reconnecting…"]
        assert source.gaps[0].open and "server closed the connection" in source.gaps[0].reason
        assert watcher.poll() == []  # told once
        # A gap that outlasts a failed attempt to reopen the link (nobody listens on the port).
        wait_for(lambda: "attempt 1:" in (source.error or ""), 10, "a failed reconnect attempt")

        handles.append(can.Bus(interface="virtual", channel=channel))
        server = SocketcandServer(handles[1], port=port)
        server.start()
        wait_for(lambda: source.state is SourceState.RUNNING, 5, "RUNNING again")
        (gap,) = source.gaps
        # Two retry intervals at least: one failed attempt, then the one that got through.
        assert not gap.open and gap.ended is not None and gap.seconds() >= 0.2
        assert watcher.poll() == [f"{source.describe()}: link back after a gap of {gap.seconds():.1f} s"]
        assert watcher.poll() == []
    finally:
        source.stop()
        server.stop()
        for handle in handles:
            handle.shutdown()


def test_a_gap_seen_only_after_it_ended_is_told_as_lost_then_back():
    class Fixed:
        gaps = (LinkGap(100.0, 102.5, "connection lost: unplugged"),)

        def describe(self) -> str:
            return "pcan PCAN_USBBUS1"

    watcher = GapWatcher(Fixed())  # type: ignore[arg-type]
    assert watcher.poll() == [
        "pcan PCAN_USBBUS1: link lost (connection lost: unplugged); reconnecting…",
        "pcan PCAN_USBBUS1: link back after a gap of 2.5 s",
    ]
    assert LinkGap(100.0, 102.5, "x").seconds() == 2.5
