"""The fleet overview at scale, through a real mosquitto (mutual TLS, ACL) on 127.0.0.1.

Run: .venv/bin/python benchmarks/fleet.py [--vehicles 200] [--rounds 5]

``--vehicles`` cars, each with its own certificate and connection, publish ``--rounds`` health
summaries each (QoS 1) to one workshop's ``FleetWatcher`` that keeps them in a history file.
Reported: summaries/s delivered and parsed end to end, delivery latency p50/p99 (publish call
to ``on_change``, one clock), rows stored, the time ``vehicles()`` takes to build and sort the
table, and the same for a ``FleetStore`` write alone (the baseline: the history's share).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from workshop_app.core.cloud import topics  # noqa: E402
from workshop_app.core.cloud.broker import MosquittoBroker  # noqa: E402
from workshop_app.core.cloud.fleet import FleetWatcher  # noqa: E402
from workshop_app.core.cloud.profile import CloudProfile, mqtt_client  # noqa: E402
from workshop_app.core.history.fleet_store import FleetStore  # noqa: E402

WORKSHOP = "garage-1"
_VIN_CHARS = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"


def vin(n: int) -> str:
    tail = ""
    for _ in range(6):
        n, r = divmod(n, len(_VIN_CHARS))
        tail = _VIN_CHARS[r] + tail
    return f"WSADEM5T2T0{tail}"


def summary(v: str, when: float, n: int) -> bytes:
    dtcs = [{"ecu": "ECM", "code": "P0302", "status": 0xAF}] if n % 7 == 0 else []
    doc = {"v": 1, "vin": v, "time": when, "interval": 60.0, "dtc_count": len(dtcs), "dtcs": dtcs}
    doc |= {"battery_v": 11.5 + (n % 20) / 10, "odometer_km": 40000.0 + n, "software": {"ECM": "SW 0412"}}
    doc |= {"frames": {"sent": n * 1000, "buffered": 0, "dropped": 0}}
    return json.dumps(doc).encode()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vehicles", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    vins = [vin(n) for n in range(args.vehicles)]

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        broker = MosquittoBroker(folder / "broker", grants={WORKSHOP: vins})

        def profile(name: str) -> CloudProfile:
            identity = broker.issue_client(name, folder / "clients")
            return CloudProfile("127.0.0.1", broker.port, broker.ca_cert, identity.cert, identity.key, name)

        t0 = time.perf_counter()
        profiles = {name: profile(name) for name in (*vins, WORKSHOP)}
        print(f"{len(profiles)} certificates issued in {time.perf_counter() - t0:.2f} s")
        broker.start()
        sent: dict[tuple[str, float], float] = {}
        arrived: list[float] = []
        latencies: list[float] = []
        lock = threading.Condition()
        store = FleetStore(folder / "history.db")
        watcher = FleetWatcher(profiles[WORKSHOP], store)

        def on_change(v: str) -> None:
            now = time.perf_counter()
            row = watcher.vehicle(v)
            with lock:
                key = (v, row.health_time if row and row.health_time is not None else -1.0)
                if key in sent:
                    latencies.append(now - sent.pop(key))
                    arrived.append(now)
                    lock.notify_all()

        watcher.on_change = on_change
        clients: list[mqtt.Client] = []
        try:
            watcher.start()
            assert watcher.wait_connected(30), watcher.link_error
            for v in vins:
                client = mqtt_client(profiles[v])
                client.connect("127.0.0.1", broker.port)
                client.loop_start()
                clients.append(client)
            total = args.vehicles * args.rounds
            start = time.perf_counter()
            for r in range(args.rounds):
                pending = []
                for n, (v, client) in enumerate(zip(vins, clients, strict=True)):
                    when = 1_000_000.0 + r
                    with lock:
                        sent[(v, when)] = time.perf_counter()
                    pending.append(
                        client.publish(topics.vehicle_topic(v, topics.HEALTH), summary(v, when, n + r), qos=1)
                    )
                for info in pending:
                    info.wait_for_publish(30)
                with lock:  # one round at a time: the watcher keeps the newest summary per car
                    lock.wait_for(lambda r=r: len(arrived) >= (r + 1) * args.vehicles, 60)
            elapsed = time.perf_counter() - start
            t1 = time.perf_counter()
            rows = watcher.vehicles()
            sort_ms = (time.perf_counter() - t1) * 1000
            stored = sum(len(store.history(v, limit=None)) for v in vins[:20]) * args.vehicles // 20
        finally:
            watcher.stop()
            for client in clients:
                client.disconnect()
                client.loop_stop()
            broker.stop()
        store.close()

        with FleetStore(folder / "baseline.db") as baseline:
            t2 = time.perf_counter()
            for n in range(total):
                baseline.add(
                    vins[n % len(vins)], float(n), json.loads(summary(vins[0], 0.0, n)), battery_v=12.0
                )
            store_rate = total / (time.perf_counter() - t2)

    print(f"{args.vehicles} vehicles x {args.rounds} summaries = {total} through mosquitto (TLS)")
    print(
        f"delivered {len(arrived)} in {elapsed:.2f} s: {len(arrived) / elapsed:,.0f} summaries/s end to end"
    )
    print(
        f"publish → on_change latency p50 {statistics.median(latencies) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms"
    )
    print(f"rows stored (estimated from 20 cars): {stored}")
    print(f"vehicles() for {len(rows)} cars, sorted by attention: {sort_ms:.2f} ms")
    print(f"baseline, FleetStore.add alone: {store_rate:,.0f} summaries/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
