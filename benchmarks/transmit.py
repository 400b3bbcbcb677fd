"""Periodic transmit timing: how closely TransmitJobs keep their periods (issue 13, item 2).

Run: .venv/bin/python benchmarks/transmit.py [--seconds 5]

Every job sends on a python-can virtual bus through an AdapterSource; a second bus on the same
channel takes the frames with their receive timestamps. Per scenario: frames sent against the
frames the periods ask for, the interval median and p99 per job, the worst lateness of a frame
against its absolute deadline grid, and the CPU the process used per second. Baseline in the
same run: a bare loop of ``bus.send`` + ``time.sleep(period)`` on one thread (what drifts).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
import uuid

import can

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.sources.adapter import AdapterSource
from workshop_app.core.transmit_jobs import TransmitJob, TransmitJobs
from workshop_app.core.types import BusConfig, Frame
from workshop_app.paths import demo_dbc_path


def _collect(bus: can.BusABC, seconds: float) -> dict[int, list[float]]:
    stamps: dict[int, list[float]] = {}
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        msg = bus.recv(left)
        if msg is not None:
            stamps.setdefault(msg.arbitration_id, []).append(msg.timestamp)
    return stamps


def _row(
    name: str, periods: dict[int, float], stamps: dict[int, list[float]], seconds: float, cpu: float
) -> None:
    expected = sum(seconds / p for p in periods.values())
    got = sum(len(stamps.get(i, [])) for i in periods)
    p50s, p99s, drift = [], [], []
    for ident, period in periods.items():
        ts = stamps.get(ident, [])
        if len(ts) < 3:
            continue
        gaps = sorted(b - a for a, b in itertools.pairwise(ts))
        p50s.append(gaps[len(gaps) // 2] / period)
        p99s.append(gaps[min(len(gaps) - 1, int(len(gaps) * 0.99))] / period)
        # mean period over the run: a loop that sleeps its period after each send drifts long
        drift.append((ts[-1] - ts[0]) / (len(ts) - 1) / period)
    print(
        f"{name:<34} sent {got:>7,} of {expected:>9,.0f}  interval p50 {statistics.median(p50s):5.3f}x "
        f"p99 {max(p99s):5.3f}x  mean period {statistics.mean(drift):6.4f}x  CPU {cpu:5.1%}"
    )


def _jobs_scenario(name: str, periods: dict[int, float], seconds: float) -> None:
    channel = f"bench-{uuid.uuid4().hex}"
    rx = can.Bus(interface="virtual", channel=channel)
    source = AdapterSource(FrameRing(capacity=1_000_000), BusConfig("virtual", channel))
    source.start()
    databases = DatabaseSet()
    databases.add(demo_dbc_path())
    jobs = TransmitJobs(source, databases)
    try:
        cpu0 = time.process_time()
        for ident, period in periods.items():
            jobs.start_periodic(TransmitJob(frame=Frame(0, ident, bytes(8)), period=period))
        stamps = _collect(rx, seconds)
        cpu = (time.process_time() - cpu0) / seconds
    finally:
        jobs.close()
        source.stop()
        rx.shutdown()
    _row(name, periods, stamps, seconds, cpu)


def _bare_loop(period: float, seconds: float) -> None:
    channel = f"bench-{uuid.uuid4().hex}"
    tx = can.Bus(interface="virtual", channel=channel)
    rx = can.Bus(interface="virtual", channel=channel)
    try:
        cpu0 = time.process_time()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            tx.send(can.Message(arbitration_id=0x100, data=bytes(8), is_extended_id=False))
            time.sleep(period)
        cpu = (time.process_time() - cpu0) / seconds
        stamps = _collect(rx, 0.05)
    finally:
        tx.shutdown()
        rx.shutdown()
    _row(f"baseline: send + sleep({period * 1000:g} ms)", {0x100: period}, stamps, seconds, cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    seconds = args.seconds
    _bare_loop(0.010, seconds)
    _jobs_scenario("1 job every 10 ms", {0x100: 0.010}, seconds)
    _bare_loop(0.001, seconds)
    _jobs_scenario("1 job every 1 ms", {0x100: 0.001}, seconds)
    _jobs_scenario("20 jobs, 10..200 ms", {0x200 + i: 0.010 * (i + 1) for i in range(20)}, seconds)
    _jobs_scenario("10 jobs every 1 ms", {0x300 + i: 0.001 for i in range(10)}, seconds)


if __name__ == "__main__":
    main()
