"""The agent beside `workshop simulate --serve socketcand` in another process, as a user runs them:
the car's frames reach the workshop through the broker and a UDS request is answered over the
socketcand link (ISO-TP on the agent's side of it)."""

from __future__ import annotations

from helpers.agent_rig import observer, wait_until
from helpers.processes import free_port, simulator_process

from workshop_app.core.cloud import messages
from workshop_app.core.cloud.agent import CloudAgent
from workshop_app.core.cloud.messages import EcuRoute
from workshop_app.core.sources.factory import SourceSpec

VIN = "WSADEM5T2T0000421"


def test_agent_on_a_socketcand_bus(cloud) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    with simulator_process(port) as sim:
        agent = CloudAgent(cloud.vehicle, SourceSpec(interface="socketcand", port=port), health_interval=0)
        with observer(cloud.garage1, VIN) as obs:
            agent.start()
            try:
                assert agent.wait_connected(10)
                assert obs.wait(lambda: len(obs.frames) >= 500), "frames did not arrive"
                reply = obs.final_reply(
                    obs.request(messages.uds_request(EcuRoute(0x7E0, 0x7E8), b"\x22\xf1\x90", 3.0))
                )
            finally:
                agent.stop()
        assert sim.poll() is None  # the car ran on through it all
    assert obs.wait(lambda: len(obs.frames) >= agent.pump.sent)
    frames = obs.ordered_frames()
    assert obs.tracker.lost == 0 and len(frames) == agent.pump.sent
    assert {f.channel for f in frames} == {"can0"}
    assert reply["kind"] == "uds" and bytes.fromhex(reply["data"]) == b"\x62\xf1\x90" + VIN.encode()


def test_the_car_link_comes_back_and_diagnostics_follow_it(cloud) -> None:  # type: ignore[no-untyped-def]
    """The socketcand server goes away and comes back: the agent's source reopens the bus, and
    the relay's ISO-TP stack, bound to the old bus, is rebuilt on the new one."""
    port = free_port()
    route = EcuRoute(0x7E0, 0x7E8)
    agent = CloudAgent(cloud.vehicle, SourceSpec(interface="socketcand", port=port), health_interval=0)
    with observer(cloud.garage1, VIN) as obs:
        with simulator_process(port):
            agent.start()
            try:
                assert agent.wait_connected(10)
                first = obs.final_reply(obs.request(messages.uds_request(route, b"\x22\xf1\x90", 3.0)))
                old_bus = agent.source.bus
            except BaseException:
                agent.stop()
                raise
        try:
            with simulator_process(port):
                assert wait_until(
                    lambda: agent.source.bus is not None and agent.source.bus is not old_bus, 30
                )
                frames_before = len(obs.frames)
                assert obs.wait(lambda: len(obs.frames) > frames_before + 200), "frames did not resume"
                again = obs.final_reply(obs.request(messages.uds_request(route, b"\x22\xf1\x90", 3.0)))
        finally:
            agent.stop()
    assert first["data"] == again["data"] and bytes.fromhex(again["data"])[3:] == VIN.encode()
    assert agent.source.reconnects >= 1
