"""The cloud link through a real mosquitto on 127.0.0.1 (issue 12, item 9).

Run: .venv/bin/python benchmarks/cloud.py [--seconds 60] [--requests 200] [--flash-kib 0]

* Streaming: the simulated car on a 500 kbit/s bus filled to saturation with filler frames
  (≥ 4,000 frames/s), streamed by ``CloudAgent`` through mosquitto (mutual TLS) to a workshop
  client for ``--seconds``. Reported: frames on the bus, frames the workshop decoded, lost
  (gaps) and dropped (agent buffer), end-to-end latency p50/p99/max (the car's frame timestamp
  against arrival at the workshop, one clock), bytes per frame on the wire, publishes/s and the
  highest publishes and bytes in any one second (the 100/s and 512 KB/s limits).
* ReadDataByIdentifier 0xF190 round trips with the bus still saturated: through the broker
  (workshop → agent → ISO-TP → ECM and back) against the same request over a local can-isotp
  stack on the car's bus (the baseline, same run), p50/p99.
* ``--flash-kib N``: a signed remote flash of N KiB to the simulated ECM (unpaced bus, erase
  excluded) against the same UpdateCampaign run locally on the car's bus.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import multiprocessing
import os
import resource
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import isotp
import paho.mqtt.client as mqtt

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from workshop_app.core.capture.ring import FrameRing  # noqa: E402
from workshop_app.core.cloud import messages, topics  # noqa: E402
from workshop_app.core.cloud.agent import CloudAgent  # noqa: E402
from workshop_app.core.cloud.broker import MosquittoBroker  # noqa: E402
from workshop_app.core.cloud.messages import EcuRoute  # noqa: E402
from workshop_app.core.cloud.profile import CloudProfile, mqtt_client  # noqa: E402
from workshop_app.core.cloud.wire import SequenceTracker, decode_batch  # noqa: E402
from workshop_app.core.diag.client import isotp_params  # noqa: E402
from workshop_app.core.sources.simulator import SimulatorSource  # noqa: E402

VIN = "WSADEM5T2T0000421"
GARAGE = "garage-1"
ECM = EcuRoute(0x7E0, 0x7E8)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def profile(folder: Path, broker: MosquittoBroker, name: str) -> CloudProfile:
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
    )


class Workshop:
    """garage-1: decodes every frame batch and times it; sends requests and collects replies."""

    def __init__(self, prof: CloudProfile) -> None:
        self.tracker = SequenceTracker()
        self.latencies: list[float] = []
        self.frames = 0
        self.payload_bytes = 0
        self.per_second: Counter[int] = Counter()
        self.bytes_per_second: Counter[int] = Counter()
        self.replies: dict[bytes, list[dict[str, Any]]] = {}
        self.cond = threading.Condition()
        self.reply_topic = topics.reply_topic(VIN, prof.client_id)
        self.client = mqtt_client(prof)
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.connect(prof.host, prof.port, keepalive=prof.keepalive)
        sock = self.client.socket()
        if sock is not None:  # as the agent does: small requests go at once
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client.loop_start()
        self.client.subscribe([(topics.vehicle_topic(VIN, topics.FRAMES), 0), (self.reply_topic, 1)])
        if not subscribed.wait(10):
            raise SystemExit("the workshop client did not subscribe")

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.time()
        if msg.topic.endswith("/frames"):
            batch = decode_batch(msg.payload)
            self.tracker.feed(batch)
            self.frames += len(batch.frames)
            self.payload_bytes += len(msg.payload)
            second = int(now)
            self.per_second[second] += 1
            self.bytes_per_second[second] += len(msg.payload)
            self.latencies.extend(now - f.timestamp for f in batch.frames)
            return
        corr = bytes(msg.properties.CorrelationData)  # type: ignore[union-attr]
        with self.cond:
            self.replies.setdefault(corr, []).append(
                messages.decode(msg.payload, expect=messages.KINDS_REPLY)
            )
            self.cond.notify_all()

    def request(self, payload: bytes, timeout: float = 10.0) -> dict[str, Any]:
        corr = messages.new_correlation()
        props = messages.request_properties(self.reply_topic, corr)
        self.client.publish(topics.vehicle_topic(VIN, topics.REQUEST), payload, qos=1, properties=props)

        def final() -> bool:
            return any(d["kind"] != "result" or d.get("ok") is not None for d in self.replies.get(corr, []))

        with self.cond:
            if not self.cond.wait_for(final, timeout):
                raise SystemExit("no reply from the agent")
            return self.replies[corr][-1]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def car_process(profile_path: str, conn: Connection) -> None:
    """The car: the simulated vehicle on a saturated 500 kbit/s bus and its agent, in a process of
    its own (as `workshop cloud agent` runs beside the car), so the workshop's side does not share
    its interpreter lock. Answers "stats", "local N" (the RDBI baseline) and "stop"."""
    src = SimulatorSource(FrameRing(), pace_bitrate=500_000, extra_load=1.0)
    folder = Path(profile_path).parent
    agent = CloudAgent(
        CloudProfile.load(Path(profile_path)), source=src, health_interval=0, history=folder / "a.db"
    )
    agent.start()
    conn.send(agent.wait_connected(10))

    def stats() -> dict[str, Any]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "pushed": agent.ring.pushed,
            "sent": agent.pump.sent,
            "buffered": agent.pump.buffered,
            "dropped": agent.pump.dropped,
            "batches": agent.pump.batches,
            "bytes": agent.pump.bytes_sent,
            "cpu": usage.ru_utime + usage.ru_stime,
        }

    try:
        while True:
            command = conn.recv()
            if command == "stats":
                conn.send(stats())
            elif command.startswith("local "):
                conn.send(local_round_trips(agent, int(command.split()[1])))
            else:
                break
    finally:
        agent.stop()
    conn.send(stats())


def local_round_trips(agent: CloudAgent, n: int) -> list[float]:
    """RDBI 0xF190 over a can-isotp stack on the car's own bus: the baseline."""
    request = bytes.fromhex("22F190")
    bus, notifier = agent._link()
    assert bus is not None and notifier is not None
    agent.relay.close()  # the local stack must be alone on the ECM's ids
    stack = isotp.NotifierBasedCanStack(
        bus,
        notifier,
        address=isotp.Address(isotp.AddressingMode.Normal_11bits, txid=ECM.tx, rxid=ECM.rx),
        params=isotp_params(False),
    )
    stack.start()
    local_ms: list[float] = []
    try:
        for _ in range(n):
            t = time.perf_counter()
            stack.send(request)
            answer = stack.recv(block=True, timeout=2.0)
            local_ms.append((time.perf_counter() - t) * 1000)
            assert answer is not None and bytes(answer[:3]) == b"\x62\xf1\x90"
    finally:
        stack.stop()
    return local_ms


def streaming(conn: Connection, shop: Workshop, seconds: float) -> None:
    conn.send("stats")
    before = conn.recv()
    t0 = time.monotonic()
    time.sleep(seconds)
    conn.send("stats")
    after = conn.recv()
    elapsed = time.monotonic() - t0
    offered = after["pushed"] - before["pushed"]
    deadline = time.monotonic() + 10  # let the tail arrive, then compare
    while shop.frames < after["sent"] and time.monotonic() < deadline:
        time.sleep(0.05)
    lat_ms = [x * 1000 for x in shop.latencies]
    full = sorted(shop.per_second)[1:-1] or sorted(shop.per_second)  # whole seconds only
    print(f"streaming, {elapsed:.0f} s of a saturated 500 kbit/s bus through mosquitto (TLS, 127.0.0.1):")
    print(f"  bus rate                 {offered / elapsed:>10,.0f} frames/s")
    print(
        f"  frames captured by agent {after['pushed']:>10,}  (at the window's end: sent {after['sent']:,}, "
        f"{after['buffered']:,} waiting)"
    )
    print(f"  frames at the workshop   {shop.frames:>10,}  (the tail included)")
    print(f"  lost (gaps) / dropped    {shop.tracker.lost:>10,} / {after['dropped']:,} (target 0)")
    print(
        f"  latency car → workshop   p50 {pct(lat_ms, 0.5):.1f} ms, p99 {pct(lat_ms, 0.99):.1f} ms, "
        f"max {max(lat_ms, default=float('nan')):.1f} ms (target p99 < 250 ms)"
    )
    print(
        f"  bytes per frame (wire)   {shop.payload_bytes / max(1, shop.frames):.2f} (payload incl. batch header)"
    )
    batches = after["batches"] - before["batches"]
    print(
        f"  batches                  {batches:,} in the window, {shop.payload_bytes / max(1, after['batches']):,.0f} B each"
    )
    print(
        f"  publishes/s              {batches / elapsed:.1f} average, "
        f"{max((shop.per_second[s] for s in full), default=0)} in the busiest second (limit 100)"
    )
    print(
        f"  bytes/s                  {(after['bytes'] - before['bytes']) / elapsed / 1024:.1f} KiB average, "
        f"{max((shop.bytes_per_second[s] for s in full), default=0) / 1024:.1f} KiB in the busiest second "
        "(limit 512 KiB)"
    )
    cpu = after["cpu"] - before["cpu"]
    print(
        f"  car process CPU          {cpu:.1f} s in {elapsed:.0f} s ({100 * cpu / elapsed:.0f} % of one core: simulator + agent)"
    )


def round_trips(conn: Connection, shop: Workshop, n: int) -> None:
    request = bytes.fromhex("22F190")
    cloud_ms: list[float] = []
    for _ in range(n):
        t = time.perf_counter()
        reply = shop.request(messages.uds_request(ECM, request, 2.0))
        cloud_ms.append((time.perf_counter() - t) * 1000)
        assert reply["kind"] == "uds" and reply["data"].startswith("62f190"), reply
    conn.send(f"local {n}")
    local_ms = conn.recv()
    print(f"ReadDataByIdentifier 0xF190, {n} each, bus saturated:")
    print(f"  through the broker       p50 {pct(cloud_ms, 0.5):.1f} ms, p99 {pct(cloud_ms, 0.99):.1f} ms")
    print(f"  local ISO-TP (baseline)  p50 {pct(local_ms, 0.5):.1f} ms, p99 {pct(local_ms, 0.99):.1f} ms")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def flash(folder: Path, vehicle: CloudProfile, garage: CloudProfile, kib: int) -> None:
    import dataclasses

    from helpers.sim_packages import build_sim_package, trusting

    from workshop_app.core.cloud.signing import (
        generate_signing_key,
        load_private_key,
        load_public_key,
        make_grant,
        next_counter,
        sign_command,
    )
    from workshop_app.core.update.campaign import UpdateCampaign

    owner_pub = generate_signing_key(folder / "owner.key")
    shop_pub = generate_signing_key(folder / "shop.key")
    grant = make_grant(
        load_private_key(folder / "owner.key"), VIN, load_public_key(shop_pub), ["flash"], 3600
    )
    results = {}
    for where in ("local", "cloud"):
        pkg = folder / f"pkg-{where}"
        repo = build_sim_package(pkg, size=kib * 1024)
        store = trusting(repo, folder / f"trust-{where}")
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(pkg))
        )
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}"
        src = SimulatorSource(FrameRing(), pace_bitrate=None, time_scale=1e-6)
        agent = CloudAgent(
            dataclasses.replace(vehicle, owner_key=owner_pub),
            source=src,
            health_interval=0,
            allow_remote_flash=True,
            trust_dir=store.folder,
            history=folder / f"agent-{where}.db",
        )
        agent.start()
        shop = Workshop(garage)
        try:
            assert agent.wait_connected(10) and src.ecus is not None
            for name in ("ECM", "BCM"):
                src.ecus.ecu(name).bootloader.timing.erase_seconds = 0.0  # type: ignore[union-attr]
            t = time.perf_counter()
            if where == "local":
                bus, notifier = agent._link()
                assert bus is not None and notifier is not None
                outcome = UpdateCampaign(bus, notifier, url, store=store, history=folder / "local.db").run()
                ok, why = outcome.ok, outcome.error
            else:
                command = sign_command(
                    load_private_key(folder / "shop.key"),
                    grant,
                    VIN,
                    "flash",
                    {"url": url},
                    next_counter(),
                    600,
                )
                reply = shop.request(messages.encode("command", command=command), timeout=900)
                ok, why = bool(reply.get("ok")), str(reply.get("message"))
            results[where] = (time.perf_counter() - t, ok, why)
        finally:
            shop.close()
            agent.stop()
            server.shutdown()
            server.server_close()
    print(f"flash of {kib} KiB to the simulated ECM (unpaced bus, erase excluded, verify included):")
    for where, (seconds, ok, why) in results.items():
        label = "signed remote flash" if where == "cloud" else "local (baseline)"
        print(f"  {label:<24} {seconds:.2f} s{'' if ok else f'  FAILED: {why}'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="streaming time (default 60)")
    parser.add_argument("--requests", type=int, default=200, help="round trips of each kind (default 200)")
    parser.add_argument("--flash-kib", type=int, default=0, help="also a remote flash of this size (0: none)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cloud-bench-") as tmp:
        folder = Path(tmp)
        # Histories, trust stores and the simulated ECUs' flash memories stay in this run's folder
        # (the car process inherits it): never the user's own workshop home.
        os.environ["WORKSHOP_HOME"] = str(folder / "home")
        broker = MosquittoBroker(folder / "broker", grants={GARAGE: [VIN]})
        vehicle, garage = profile(folder, broker, VIN), profile(folder, broker, GARAGE)
        broker.start()
        try:
            vehicle_path = vehicle.save(folder / "vehicle.json")
            here, there = multiprocessing.Pipe()
            car = multiprocessing.get_context("spawn").Process(
                target=car_process, args=(str(vehicle_path), there)
            )
            shop = Workshop(garage)
            car.start()
            try:
                if not here.recv():
                    raise SystemExit("the agent did not connect")
                if args.seconds > 0:
                    streaming(here, shop, args.seconds)
                if args.requests:
                    round_trips(here, shop, args.requests)
            finally:
                here.send("stop")
                here.recv()
                car.join(30)
                shop.close()
            if args.flash_kib:
                flash(folder, vehicle, garage, args.flash_kib)
        finally:
            broker.stop()
    print(f"(one mosquitto on 127.0.0.1, mutual TLS; python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
