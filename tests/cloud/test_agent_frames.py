"""The agent streams the simulated car's bus through a real mosquitto (mutual TLS).

Ground truth is a separate connection on the car's virtual bus: what garage-1 decodes from the
broker must be exactly those frames, in order, with the car's own timestamps, and nothing lost —
also across a broker restart, inside the outage buffer. Beyond the buffer the oldest frames are
dropped and counted, and the count reaches the workshop in the batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from helpers.agent_rig import BusSpy, Observer, observer, same_frame, wait_until

from workshop_app.core.cloud.agent import CloudAgent
from workshop_app.core.sources.factory import SourceSpec
from workshop_app.core.sources.simulator import SimulatorSource

VIN = "WSADEM5T2T0000421"


@contextmanager
def streaming(cloud, **options) -> Iterator[tuple[CloudAgent, Observer, BusSpy]]:  # type: ignore[no-untyped-def]
    agent = CloudAgent(cloud.vehicle, SourceSpec(), health_interval=0, **options)
    assert isinstance(agent.source, SimulatorSource)
    spy = BusSpy(agent.source.virtual_channel)
    try:
        with observer(cloud.garage1, VIN) as obs:
            agent.start()
            try:
                yield agent, obs, spy
            finally:
                agent.stop()
    finally:
        spy.close()


def _check_against_bus(obs: Observer, agent: CloudAgent, spy: BusSpy) -> int:
    """All frames the agent sent arrived; they are the bus's frames, in order; returns the count."""
    assert obs.wait(lambda: len(obs.frames) >= agent.pump.sent), (len(obs.frames), agent.pump.sent)
    got = obs.ordered_frames()
    with spy.lock:
        truth = list(spy.frames)
    assert len(got) == agent.pump.sent and len(truth) >= len(got)
    mismatch = next(
        (i for i, (f, m) in enumerate(zip(got, truth, strict=False)) if not same_frame(f, m)), None
    )
    assert mismatch is None, f"frame {mismatch}: {got[mismatch]} vs {truth[mismatch]}"
    return len(got)


def test_frames_arrive_decoded_in_order_with_none_lost(cloud) -> None:  # type: ignore[no-untyped-def]
    with streaming(cloud, buffer_frames=100_000) as (agent, obs, spy):
        assert agent.wait_connected(10)
        assert obs.wait(lambda: len(obs.frames) >= 3000), "frames did not arrive"
    n = _check_against_bus(obs, agent, spy)
    assert n >= 3000
    assert any(f.is_fd and len(f.data) == 32 for f in obs.ordered_frames())  # ESC_DYNAMICS_FD, CAN FD
    assert obs.tracker.lost == 0 and obs.tracker.dropped_by_agent == 0 and agent.pump.dropped == 0
    # Batches stay within the managed-broker limits: ~7 KB, and ≤ 17 bytes per classic frame.
    assert agent.pump.bytes_sent / agent.pump.batches <= 8 * 1024
    assert agent.pump.bytes_sent / n < 20
    # Presence: online on connect, offline on a clean stop (both retained, QoS 1).
    assert obs.wait(lambda: any(b'"offline"' in s for s in obs.states))
    assert b'"online"' in obs.states[0]


def test_broker_restart_loses_nothing_inside_the_buffer(cloud) -> None:  # type: ignore[no-untyped-def]
    # The backlog is held until the test's workshop has subscribed again, then released: QoS 0
    # frames published before it subscribes would reach nobody (the agent waits 2 s by default).
    with streaming(cloud, buffer_frames=200_000, resume_delay=600) as (agent, obs, spy):
        assert obs.wait(lambda: len(obs.frames) >= 1000)
        cloud.broker.restart()
        assert wait_until(lambda: agent.connects >= 2), "the agent did not reconnect"
        assert obs.wait(lambda: obs.subscribed >= 2), "the observer did not reconnect"
        agent.pump.link_up()
        before = agent.pump.sent
        # Frames flow again: the outage's backlog and what came after it.
        assert obs.wait(lambda: len(obs.frames) >= before + 2000)
    _check_against_bus(obs, agent, spy)
    assert obs.tracker.lost == 0 and agent.pump.dropped == 0


def test_an_outage_beyond_the_buffer_drops_the_oldest_and_says_how_many(cloud) -> None:  # type: ignore[no-untyped-def]
    with streaming(cloud, buffer_frames=1000, resume_delay=600) as (agent, obs, _spy):
        assert obs.wait(lambda: len(obs.frames) >= 500)
        cloud.broker.stop()
        # ~4,400 frames/s against a 1,000-frame buffer: drops start within a second.
        assert wait_until(lambda: agent.pump.dropped >= 2000), "the buffer did not overflow"
        cloud.broker.start()
        assert wait_until(lambda: agent.connects >= 2)
        assert obs.wait(lambda: obs.subscribed >= 2)
        agent.pump.link_up()  # release the backlog now that the workshop listens again
        assert obs.wait(lambda: obs.tracker.dropped_by_agent >= 2000), "the drop count did not arrive"
    assert obs.wait(lambda: len(obs.frames) >= agent.pump.sent)
    obs.ordered_frames()  # indices without holes: dropped frames never took an index
    assert obs.tracker.lost == 0
    assert obs.tracker.dropped_by_agent <= agent.pump.dropped
