"""UDS through the broker: the agent runs each request over ISO-TP on the simulated car's bus.

A separate connection on the car's bus counts the requests that really reach the ECM, so "ran
once" and "refused, nothing sent" are checked on the bus, not taken from the agent's word.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from helpers.agent_rig import BusSpy, Observer, observer, wait_until

from workshop_app.core.cloud import messages
from workshop_app.core.cloud.agent import CloudAgent
from workshop_app.core.cloud.messages import EcuRoute
from workshop_app.core.sources.factory import SourceSpec
from workshop_app.core.sources.simulator import SimulatorSource

VIN = "WSADEM5T2T0000421"
ECM = EcuRoute(0x7E0, 0x7E8)


@contextmanager
def car_online(cloud) -> Iterator[tuple[CloudAgent, Observer, BusSpy]]:  # type: ignore[no-untyped-def]
    agent = CloudAgent(cloud.vehicle, SourceSpec(), health_interval=0)
    assert isinstance(agent.source, SimulatorSource)
    spy = BusSpy(agent.source.virtual_channel)
    try:
        with observer(cloud.garage1, VIN) as obs:
            agent.start()
            try:
                assert agent.wait_connected(10)
                yield agent, obs, spy
            finally:
                agent.stop()
    finally:
        spy.close()


def _requests_seen(spy: BusSpy, service: int) -> int:
    """ISO-TP single frames to the ECM starting with ``service``."""
    with spy.lock:
        return sum(
            1
            for m in spy.frames
            if m.arbitration_id == ECM.tx and m.data[0] >> 4 == 0 and m.data[1] == service
        )


def test_read_vin_through_the_broker(cloud) -> None:  # type: ignore[no-untyped-def]
    with car_online(cloud) as (_agent, obs, _spy):
        corr = obs.request(messages.uds_request(ECM, bytes.fromhex("22F190"), 2.0))
        reply = obs.final_reply(corr)
    assert reply["kind"] == "uds" and reply["final"] is True
    data = bytes.fromhex(reply["data"])
    assert data[:3] == bytes.fromhex("62F190") and data[3:].decode() == VIN


def test_a_redelivered_request_runs_once_and_is_answered_again(cloud) -> None:  # type: ignore[no-untyped-def]
    with car_online(cloud) as (_agent, obs, spy):
        payload = messages.uds_request(ECM, bytes.fromhex("22F189"), 2.0)
        corr = obs.request(payload)
        first = obs.final_reply(corr)
        obs.request(payload, correlation=corr)  # what a QoS 1 redelivery looks like to the agent
        assert obs.wait(lambda: len(obs.replies[corr]) == 2), "the redelivery was not answered"
        # The ECM saw exactly one ReadDataByIdentifier.
        assert wait_until(lambda: _requests_seen(spy, 0x22) >= 1)
        assert _requests_seen(spy, 0x22) == 1
    assert obs.replies[corr] == [first, first]


def test_programming_services_are_refused_and_never_reach_the_bus(cloud) -> None:  # type: ignore[no-untyped-def]
    refused = ["1002", "3400440000800000000400", "3601AABB", "37", "3101FF00", "2711", "1101", "2803", "8502"]
    with car_online(cloud) as (_agent, obs, spy):
        replies = {}
        for hex_request in refused:
            corr = obs.request(messages.uds_request(ECM, bytes.fromhex(hex_request), 1.0))
            replies[hex_request] = obs.final_reply(corr)
        # A harmless request afterwards still runs: the refusals did not wedge the relay.
        ok = obs.final_reply(obs.request(messages.uds_request(ECM, bytes.fromhex("3E00"), 2.0)))
        with spy.lock:
            sent = [bytes(m.data) for m in spy.frames if m.arbitration_id == ECM.tx]
    for hex_request, reply in replies.items():
        assert reply["kind"] == "error" and reply["code"] == "not-allowed", (hex_request, reply)
        assert "programming only through a signed flash command" in reply["message"]
    assert ok["kind"] == "uds" and ok["data"].startswith("7e")
    assert [d[1] for d in sent if d[0] >> 4 == 0] == [0x3E]  # only TesterPresent reached the ECM


def test_no_answer_times_out_in_plain_words_and_ping_is_answered(cloud) -> None:  # type: ignore[no-untyped-def]
    with car_online(cloud) as (_agent, obs, _spy):
        nobody = EcuRoute(0x6F0, 0x6F8)
        corr = obs.request(messages.uds_request(nobody, bytes.fromhex("22F190"), 0.3))
        reply = obs.final_reply(corr)
        pong = obs.final_reply(obs.request(messages.encode("ping", sent=123.5)))
        bad = obs.final_reply(obs.request(b"{not json"))
        bad_route = obs.final_reply(
            obs.request(messages.encode("uds", ecu={"tx": "x"}, data="22", timeout=1))
        )
    assert reply == {
        "v": 1,
        "kind": "error",
        "code": "timeout",
        "message": "ECU 0x6F0 gave no answer in 0.3 s",
    }
    assert pong["kind"] == "pong" and pong["sent"] == 123.5 and pong["agent_time"] > 0
    assert bad["kind"] == "error" and bad["code"] == "bad-request" and "not JSON" in bad["message"]
    assert bad_route["code"] == "bad-request" and "CAN ids" in bad_route["message"]


def test_response_pending_is_relayed_not_final_then_the_answer(cloud) -> None:  # type: ignore[no-untyped-def]
    # The simulated ECM clears its fault memory behind an NRC 0x78 ("erasing its EEPROM").
    with car_online(cloud) as (_agent, obs, _spy):
        corr = obs.request(messages.uds_request(ECM, bytes.fromhex("14FFFFFF"), 2.0))
        final = obs.final_reply(corr)
        replies = list(obs.replies[corr])
    assert [(r["data"], r["final"]) for r in replies] == [("7f1478", False), ("54", True)]
    assert final == replies[-1]
