"""Presence: the agent's last will tells the workshops when its connection dies without a goodbye,
and it announces itself again when it is back."""

from __future__ import annotations

import json
import socket

from helpers.agent_rig import observer, wait_until

from workshop_app.core.cloud.agent import CloudAgent
from workshop_app.core.sources.factory import SourceSpec

VIN = "WSADEM5T2T0000421"


def test_a_dead_connection_is_announced_by_the_will_and_the_agent_comes_back(cloud) -> None:  # type: ignore[no-untyped-def]
    agent = CloudAgent(cloud.vehicle, SourceSpec(), health_interval=0, resume_delay=0.2)
    with observer(cloud.garage1, VIN) as obs:
        agent.start()
        try:
            assert agent.wait_connected(10)
            assert obs.wait(lambda: len(obs.states) >= 1)
            # The network under the agent dies: no DISCONNECT reaches the broker.
            assert agent._client is not None
            sock = agent._client.socket()
            assert isinstance(sock, socket.socket)
            sock.shutdown(socket.SHUT_RDWR)
            assert obs.wait(lambda: len(obs.states) >= 3), obs.states
            assert wait_until(lambda: agent.connects >= 2)
        finally:
            agent.stop()
    assert obs.wait(lambda: len(obs.states) >= 4 and json.loads(obs.states[-1]).get("reason") == "stopped")
    states = [json.loads(s) for s in obs.states]
    pairs = [(s["state"], s.get("reason")) for s in states]
    # The will, published by the broker, then back online (a loaded machine may reconnect more
    # than once, each time announced), and the clean stop last.
    assert pairs[:2] == [("online", None), ("offline", "connection lost")], pairs
    assert ("online", None) in pairs[2:-1] and pairs[-1] == ("offline", "stopped"), pairs
    assert all(s["vin"] == VIN and s["session"] == agent.pump.session for s in states)
