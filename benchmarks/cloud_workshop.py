"""The workshop side of the cloud link against the same work on the car's own bus (issue 12).

Run: .venv/bin/python benchmarks/cloud_workshop.py [--requests 200] [--scans 3] [--commands 10]
     [--frames 200000]

One real mosquitto on 127.0.0.1 (mutual TLS), the agent on the in-process simulated car, and the
workshop's own stack on top: ``CloudBus`` opened through ``can.Bus(interface="workshop-cloud")``,
``EcuClient`` (udsoncan) over its UDS connection, ``VehicleScanner`` and ``RemoteControl``.
The baseline in the same run is the same ``EcuClient`` / ``VehicleScanner`` on the car's bus
(python-can virtual bus, can-isotp), as a cable would give. Reported: ReadDataByIdentifier
0xF190 p50/p99, a full DTC scan of the five ECUs, a signed lock command (connect, sign, run,
status confirmed by the car's frame), and how many frames/s ``CloudBus.recv`` hands out when
batches arrive back to back (a saturated 500 kbit/s bus is ~4,400).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import can

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from workshop_app.core.cloud.agent import CloudAgent  # noqa: E402
from workshop_app.core.cloud.broker import MosquittoBroker  # noqa: E402
from workshop_app.core.cloud.profile import CloudProfile  # noqa: E402
from workshop_app.core.cloud.remote import RemoteControl  # noqa: E402
from workshop_app.core.cloud.signing import (  # noqa: E402
    ALL_SCOPES,
    generate_signing_key,
    load_private_key,
    load_public_key,
    make_grant,
    save_grant,
)
from workshop_app.core.diag.client import EcuAddress, EcuClient  # noqa: E402
from workshop_app.core.diag.ecu_spec import demo_vehicle_spec  # noqa: E402
from workshop_app.core.diag.scan import ScanOptions, VehicleScanner  # noqa: E402
from workshop_app.core.sources.factory import SourceSpec  # noqa: E402

VIN = "WSADEM5T2T0000421"
GARAGE = "garage-1"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def profile(folder: Path, broker: MosquittoBroker, name: str, **extra: object) -> CloudProfile:
    identity = broker.issue_client(name, folder / "clients")
    return CloudProfile(
        host="127.0.0.1",
        port=broker.port,
        ca=broker.ca_cert,
        cert=identity.cert,
        key=identity.key,
        client_id=name,
        data_dir=folder / "data" / name,
        reconnect_min=0.1,
        reconnect_max=1.0,
        **extra,  # type: ignore[arg-type]
    )


def read_dids(bus: can.BusABC, notifier: can.Notifier, n: int) -> list[float]:
    ecm = demo_vehicle_spec().ecu("ECM")
    times: list[float] = []
    with EcuClient(bus, notifier, EcuAddress.of(ecm), spec=ecm, name="ECM") as client:
        for _ in range(n):
            t = time.perf_counter()
            assert client.read_did(0xF190) == VIN
            times.append((time.perf_counter() - t) * 1000)
    return times


def scans(bus: can.BusABC, notifier: can.Notifier, n: int) -> list[float]:
    times: list[float] = []
    for _ in range(n):
        scanner = VehicleScanner(bus, notifier, demo_vehicle_spec(), options=ScanOptions(sweep=False))
        t = time.perf_counter()
        result = scanner.scan()
        times.append(time.perf_counter() - t)
        assert [e.name for e in result.ecus if e.responded] == ["ECM", "TCM", "ABS", "BCM", "GW"]
    return times


def receive_rate(car: CloudProfile, shop: CloudProfile, frames: int) -> tuple[float, int]:
    """Frames/s ``CloudBus.recv`` delivers from batches of 400 published as fast as possible."""
    from workshop_app.core.cloud import topics, wire
    from workshop_app.core.cloud.profile import mqtt_client
    from workshop_app.core.types import Frame

    batch = [Frame(1.7e9 + i * 1e-4, 0x100 + i % 64, bytes(8)) for i in range(400)]
    publisher = mqtt_client(replace(car, client_id=car.client_id))
    publisher.connect(car.host, car.port)
    publisher.loop_start()
    bus = can.Bus(interface="workshop-cloud", channel=VIN, profile=shop, ping_interval=0)
    try:
        t0 = time.perf_counter()
        for seq in range(frames // 400):
            payload = wire.encode_batch(wire.FrameBatch(1, seq, seq * 400, "can0", batch))
            publisher.publish(topics.vehicle_topic(VIN, topics.FRAMES), payload, qos=0)
        got = 0
        while got < frames and bus.recv(2.0) is not None:
            got += 1
        return got / (time.perf_counter() - t0), got
    finally:
        bus.shutdown()
        publisher.disconnect()
        publisher.loop_stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="ReadDataByIdentifier round trips (200)")
    parser.add_argument("--scans", type=int, default=3, help="full scans each way (3)")
    parser.add_argument("--commands", type=int, default=10, help="signed lock/unlock commands (10)")
    parser.add_argument("--frames", type=int, default=200_000, help="frames for the receive rate (200,000)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        broker = MosquittoBroker(folder / "broker", grants={GARAGE: [VIN]})
        owner_public = generate_signing_key(folder / "owner.key")
        shop_public = generate_signing_key(folder / "shop.key")
        grant = make_grant(
            load_private_key(folder / "owner.key"), VIN, load_public_key(shop_public), ALL_SCOPES, 3600
        )
        grant_path = save_grant(folder / "grant.json", grant)
        car_profile = profile(folder, broker, VIN, owner_key=owner_public)
        shop = profile(folder, broker, GARAGE, signing_key=folder / "shop.key", grants=(grant_path,))
        broker.start()
        agent = CloudAgent(car_profile, SourceSpec(), health_interval=0, history=folder / "car.db")
        agent.start()
        try:
            if not agent.wait_connected(10):
                raise SystemExit("the agent did not connect")
            bus = can.Bus(interface="workshop-cloud", channel=VIN, profile=shop)
            notifier = can.Notifier(bus, [], timeout=0.05)
            try:
                cloud_rdbi = read_dids(bus, notifier, args.requests)
                cloud_scan = scans(bus, notifier, args.scans)
            finally:
                notifier.stop()
                bus.shutdown()
            agent.relay.close()  # the local stacks must be alone on the ECUs' ids
            local_bus, local_notifier = agent._link()
            assert local_bus is not None and local_notifier is not None
            local_rdbi = read_dids(local_bus, local_notifier, args.requests)
            local_scan = scans(local_bus, local_notifier, args.scans)
            agent.stop()  # the receive test publishes as this car itself
            rate, got = receive_rate(car_profile, shop, args.frames)
            agent.start()
            if not agent.wait_connected(10):
                raise SystemExit("the agent did not connect again")
            remote = RemoteControl(shop, counter_file=folder / "counter.json")
            lock_s: list[float] = []
            for i in range(args.commands):
                t = time.perf_counter()
                result = remote.command(VIN, "lock" if i % 2 == 0 else "unlock", timeout=10)
                lock_s.append(time.perf_counter() - t)
                assert result["ok"], result
        finally:
            agent.stop()
            broker.stop()
    print(
        f"ReadDataByIdentifier 0xF190 through EcuClient, {args.requests} each (bus load: the car's own traffic):"
    )
    print(
        f"  cloud link (mosquitto, TLS)  p50 {pct(cloud_rdbi, 0.5):.1f} ms, p99 {pct(cloud_rdbi, 0.99):.1f} ms"
    )
    print(
        f"  local ISO-TP (baseline)      p50 {pct(local_rdbi, 0.5):.1f} ms, p99 {pct(local_rdbi, 0.99):.1f} ms"
    )
    print(f"DTC scan of the five ECUs (no sweep), {args.scans} each:")
    print(f"  cloud link   median {statistics.median(cloud_scan):.2f} s")
    print(f"  local        median {statistics.median(local_scan):.2f} s")
    print(
        f"CloudBus.recv from batches of 400 sent back to back: {rate:,.0f} frames/s ({got:,} of {args.frames:,})"
    )
    print(f"signed lock/unlock via RemoteControl (connect, sign, run, car's status frame), {args.commands}:")
    print(f"  median {statistics.median(lock_s) * 1000:.0f} ms, max {max(lock_s) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
