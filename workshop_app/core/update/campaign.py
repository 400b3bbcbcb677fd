"""A software update from a signed package to a flashed car: the workflow the CLI and the window drive.

::

    campaign = UpdateCampaign(bus, notifier, "pkg.tar", history=db)   # any thread
    plan = campaign.prepare()        # reads the car over UDS, verifies the package: sends no 0x34/0x36
    if plan.ok:
        outcome = campaign.run(progress, cancel)   # one FlashJob per image, dependencies first

``prepare`` reads, per programmable ECU, the hardware (0xF191), bootloader (0xF180), software
(0xF189) versions, the release counter (0xF1B0) and the application-valid flag (0xF1B1), and the
VIN (0xF190); the highest release counter this workshop has flashed per VIN and ECU comes from
the flash journal in the history database. ``run`` never starts while the plan has refusals.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import can
import udsoncan
from tuf.api.metadata import Metadata, Targets

from workshop_app.core.diag.activity import CAR_ACTIVITY
from workshop_app.core.diag.client import DiagError, EcuAddress, EcuClient
from workshop_app.core.diag.ecu_spec import VehicleSpec, demo_vehicle_spec
from workshop_app.core.errors import WorkshopError
from workshop_app.core.history.audit import AuditEntry, AuditRow, AuditTrail, audit_time
from workshop_app.core.history.location import default_history_path
from workshop_app.core.update import protocol as p
from workshop_app.core.update.flash import DID_VIN, FlashJob, FlashOptions, FlashResult
from workshop_app.core.update.image import FlashImage
from workshop_app.core.update.journal import TABLE as JOURNAL_TABLE
from workshop_app.core.update.journal import FlashJournal, package_reference
from workshop_app.core.update.refusals import Refusal
from workshop_app.core.update.repository import IMAGE
from workshop_app.core.update.verify import (
    EcuFacts,
    TrustStore,
    VehicleFacts,
    Verification,
    verify_package,
)

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class EcuReading:
    """What one ECU answered before the update; ``error`` says why something is missing."""

    name: str
    hardware: str = ""
    bootloader: str = ""
    software_version: str = ""
    release_counter: int | None = None
    app_valid: bool | None = None
    error: str = ""

    def facts(self) -> EcuFacts | None:
        if self.error or self.release_counter is None:
            return None
        return EcuFacts(self.hardware, self.bootloader, self.software_version, self.release_counter)


@dataclass(frozen=True, slots=True)
class CarReading:
    vin: str
    ecus: tuple[EcuReading, ...]

    def facts(self) -> VehicleFacts:
        return VehicleFacts(self.vin, {e.name: f for e in self.ecus if (f := e.facts()) is not None})


@dataclass(frozen=True, slots=True)
class PlanStep:
    """One ECU's change: from → to version and release counter, and the image's hash."""

    ecu: str
    from_version: str
    to_version: str
    from_counter: int
    to_counter: int
    target_name: str
    target_hash: str
    size: int
    downgrade_granted: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    package: str
    reading: CarReading
    verification: Verification
    steps: tuple[PlanStep, ...] = ()  # in flashing order (dependencies first)

    @property
    def ok(self) -> bool:
        return self.verification.ok

    @property
    def refusals(self) -> tuple[Refusal, ...]:
        return self.verification.refusals

    @property
    def total_bytes(self) -> int:
        return sum(s.size for s in self.steps)


@dataclass
class CampaignOutcome:
    """How the update ended: 'success', 'failed', 'cancelled' or 'refused'."""

    result: str
    flashes: list[FlashResult] = field(default_factory=list)
    audit: list[AuditRow] = field(default_factory=list)  # the rows this update appended
    seconds: float = 0.0
    bytes_sent: int = 0
    total_bytes: int = 0
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.result == "success"


class RateMeter:
    """Rate and time left of a byte count, over the bytes since the download began.

    The CLI's bar and the window's page both show these; ``update`` takes overall bytes.
    """

    def __init__(self) -> None:
        self._start: tuple[float, int] | None = None
        self.rate = 0.0  # bytes per second
        self.left_s: float | None = None

    def update(self, done: int, total: int, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        # The clock starts when the bytes start to move: erase and unlock time is no rate.
        if self._start is None or done < self._start[1] or (done == self._start[1] and not self.rate):
            self._start = (now, done)
            return
        t0, d0 = self._start
        if now - t0 > 0.05 and done > d0:
            self.rate = (done - d0) / (now - t0)
            self.left_s = (total - done) / self.rate
        if done >= total:
            self.left_s = 0.0

    def text(self, done: int, total: int) -> str:
        pct = 100.0 * done / total if total else 0.0
        left = "--" if self.left_s is None else f"{self.left_s:.0f} s"
        return f"{done:,} / {total:,} B  {pct:5.1f} %  {self.rate / 1024:7.1f} KiB/s  {left} left"


def programmable_ecus(spec: VehicleSpec) -> tuple[str, ...]:
    """ECUs whose description names a release counter: the ones an update package can address."""
    return tuple(e.name for e in spec.ecus if p.DID_RELEASE_COUNTER in e.dids)


def recorded_counters(history: Path | None) -> Callable[[str, str], int | None]:
    """Highest release counter this workshop flashed successfully per (VIN, ECU), from the journal."""

    def highest(vin: str, ecu: str) -> int | None:
        if history is None or not history.is_file():
            return None
        try:
            with sqlite3.connect(f"file:{history}?mode=ro", uri=True, timeout=10.0) as conn:
                row = conn.execute(
                    f"SELECT MAX(release_counter) FROM {JOURNAL_TABLE} "
                    "WHERE vin = ? AND ecu = ? AND result = 'success'",
                    (vin, ecu),
                ).fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):  # a history from before flashing existed
                return None
            raise WorkshopError(f"{history}: reading the flash journal failed: {exc}") from exc
        return None if row is None or row[0] is None else int(row[0])

    return highest


def _text(raw: Any) -> str:
    if isinstance(raw, bytes | bytearray):
        return bytes(raw).rstrip(b"\x00 ").decode("ascii", errors="replace")
    return str(raw).strip(" \x00")


def _number(raw: Any) -> int:
    if isinstance(raw, bytes | bytearray):
        return int.from_bytes(raw, "big")
    text = str(raw).replace(" ", "")
    # The raw codec shows unprintable bytes as hex; a described DID decodes to its number.
    return int(text, 16) if not text.isdigit() else int(text)


class _RawBytes(udsoncan.DidCodec):
    """udsoncan codec: a DID's bytes as they came, whatever the length (decoded here)."""

    def encode(self, *values: Any) -> bytes:
        return bytes(values[0])

    def decode(self, data: bytes) -> bytes:
        return bytes(data)

    def __len__(self) -> int:
        raise udsoncan.DidCodec.ReadAllRemainingData


_FACT_DIDS = (
    DID_VIN,
    p.DID_HARDWARE,
    p.DID_BOOT_SOFTWARE,
    p.DID_APP_SOFTWARE,
    p.DID_RELEASE_COUNTER,
    p.DID_APP_VALID,
)


def _read_did(client: EcuClient, did: int) -> Any:
    late_answers = 0
    while True:
        try:
            answer = client.call(f"read 0x{did:04X}", client.client.read_data_by_identifier, did)
        except DiagError as exc:
            # A tester killed mid-flash may still get its last answer (0x76 to a TransferData
            # that landed after the tool died): it is not ours, so ask again.
            late_answers += 1
            if exc.kind != "invalid" or late_answers > 2:
                raise
            continue
        return answer.service_data.values[did]


def read_car(
    bus: can.BusABC,
    notifier: can.Notifier,
    spec: VehicleSpec,
    ecus: Sequence[str] | None = None,
    *,
    timeout: float = 1.0,
) -> CarReading:
    """Read the update facts of ``ecus`` (default: the programmable ones) and the VIN from the car.

    An ECU whose application is invalid answers only in its programming session: asked there.
    """
    readings, vin = [], ""
    for name in ecus or programmable_ecus(spec):
        try:
            ecu_spec = spec.ecu(name)
        except KeyError:
            readings.append(EcuReading(name, error="not in the vehicle description"))
            continue
        with EcuClient(bus, notifier, EcuAddress.of(ecu_spec), name=name, timeout=timeout) as client:
            dids = _FACT_DIDS
            client.client.set_config("data_identifiers", {did: _RawBytes() for did in dids})
            values: dict[int, Any] = {}
            error = ""
            for attempt in (0, 1):
                try:
                    for did in dids:
                        if did not in values:
                            values[did] = _read_did(client, did)
                    error = ""
                    break
                except DiagError as exc:
                    error = str(exc)
                    if attempt or exc.nrc is None:
                        break
                    try:  # in its bootloader: only the programming session answers
                        client.change_session(p.PROGRAMMING_SESSION)
                    except DiagError:
                        break
        if DID_VIN in values and not vin:
            vin = _text(values[DID_VIN])
        if error:
            readings.append(EcuReading(name, error=error))
            continue
        readings.append(
            EcuReading(
                name,
                hardware=_text(values[p.DID_HARDWARE]),
                bootloader=_text(values[p.DID_BOOT_SOFTWARE]),
                software_version=_text(values[p.DID_APP_SOFTWARE]),
                release_counter=_number(values[p.DID_RELEASE_COUNTER]),
                app_valid=_number(values[p.DID_APP_VALID]) == 1,
            )
        )
    if not vin:
        problems = "; ".join(f"{r.name}: {r.error}" for r in readings if r.error) or "no ECU answered"
        raise WorkshopError(f"could not read the VIN (0xF190) from the car: {problems}")
    return CarReading(vin, tuple(readings))


def flashing_order(images: Sequence[FlashImage], depends: dict[str, list[str]]) -> list[FlashImage]:
    """Images whose ECU others depend on go first (a dependency outside the package is ignored)."""
    by_ecu = {i.ecu: i for i in images}
    done: list[FlashImage] = []
    visiting: set[str] = set()

    def visit(ecu: str) -> None:
        if ecu not in by_ecu or by_ecu[ecu] in done:
            return
        if ecu in visiting:
            raise WorkshopError(f"the package's dependencies go round in a circle through {ecu}")
        visiting.add(ecu)
        for other in depends.get(ecu, []):
            visit(other)
        visiting.discard(ecu)
        done.append(by_ecu[ecu])

    for image in images:
        visit(image.ecu)
    return done


def _dependencies(store: TrustStore) -> dict[str, list[str]]:
    """ECU → ECUs it depends on, from the image repository's targets tuf just verified."""
    md = Metadata[Targets].from_file(str(store.metadata_dir(IMAGE) / "targets.json"))
    out: dict[str, list[str]] = {}
    for target in md.signed.targets.values():
        custom = target.custom if isinstance(target.custom, dict) else {}
        deps = [str(d.get("ecu")) for d in custom.get("depends", []) if isinstance(d, dict)]
        out.setdefault(str(custom.get("ecu", "")), []).extend(deps)
    return out


class UpdateCampaign:
    """One update of one car from one package: :meth:`prepare`, then :meth:`run` (one thread each)."""

    def __init__(
        self,
        bus: can.BusABC,
        notifier: can.Notifier,
        package: str | Path,
        *,
        spec: VehicleSpec | None = None,
        store: TrustStore | None = None,
        history: Path | None = None,
        options: FlashOptions | None = None,
    ) -> None:
        self.bus = bus
        self.notifier = notifier
        self.package = str(package)
        self.spec = spec or demo_vehicle_spec()
        self.store = store or TrustStore()
        self.history = history if history is not None else default_history_path()
        self.options = options or FlashOptions()
        self.plan: Plan | None = None
        self._images: list[FlashImage] = []

    def prepare(self) -> Plan:
        """Read the car, verify the package for it, order the images. Sends no programming request."""
        reading = read_car(self.bus, self.notifier, self.spec)
        verification = verify_package(
            self.package,
            reading.facts(),
            store=self.store,
            recorded_highest=recorded_counters(self.history),
        )
        steps: list[PlanStep] = []
        self._images = []
        if verification.ok:
            self._images = flashing_order(verification.images, _dependencies(self.store))
            changes = {c.ecu: c for c in verification.changes}
            for image in self._images:
                c = changes[image.ecu]
                steps.append(
                    PlanStep(
                        image.ecu,
                        c.from_version,
                        c.to_version,
                        c.from_counter,
                        c.to_counter,
                        image.target_name,
                        image.target_hash,
                        image.size,
                        c.downgrade_granted,
                    )
                )
        self.plan = Plan(self.package, reading, verification, tuple(steps))
        return self.plan

    def run(
        self,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
        *,
        from_ecu: str | None = None,
    ) -> CampaignOutcome:
        """Flash every image of the plan in order; stop at the first that does not succeed.

        A refused plan is recorded in the audit trail as refused and nothing is sent.
        Progress: ``("<ECU>: <phase>", bytes done, bytes total)`` over the whole update.
        ``from_ecu`` starts at that ECU's image (a resume: the images before it were flashed,
        since an update stops at its first failure). A fault-code scan running in this process
        refuses the flash (CarBusyError) before anything is sent.
        """
        plan = self.plan or self.prepare()
        cancel = cancel or threading.Event()
        report = progress or (lambda _phase, _done, _total: None)
        t0 = time.monotonic()
        images = self._images
        if from_ecu is not None:
            names = [i.ecu for i in images]
            if from_ecu not in names:
                raise WorkshopError(f"{plan.package}: the plan has no image for {from_ecu} to resume")
            images = images[names.index(from_ecu) :]
        outcome = CampaignOutcome("failed", total_bytes=sum(i.size for i in images))
        with (
            AuditTrail(self._db()) as audit,
            FlashJournal(self._db()) as journal,
            CAR_ACTIVITY.hold("flash", f"the flash of {', '.join(i.ecu for i in images) or 'no ECU'}"),
        ):
            first_new = len(audit.rows())
            journal.record_interrupted(audit)  # a killed attempt is audited before it is resumed
            over_cloud = callable(getattr(self.bus, "uds_connection", None))
            if not plan.ok or over_cloud:
                outcome.result = "refused"
                outcome.error = "; ".join(f"[{r.code}] {r}" for r in plan.refusals)
                if plan.ok:  # the cloud link: the car flashes only what it verifies itself
                    outcome.error = (
                        "[cloud_link] programming over the cloud link is the car's own job: send it "
                        f"the signed command (workshop cloud flash {plan.reading.vin} --package-url URL)"
                    )
                audit.append(
                    AuditEntry(
                        ecu=",".join(sorted(plan.reading.facts().ecus)) or "-",
                        result="refused",
                        duration_s=0.0,
                        vin=plan.reading.vin,
                        error=f"{plan.package}: {outcome.error}",
                        time=audit_time(),
                    )
                )
            else:
                outcome.result = "success"
                base = 0
                for image in images:
                    if cancel.is_set():
                        outcome.result, outcome.error = "cancelled", "cancelled before " + image.ecu
                        break
                    result = self._flash(image, journal, audit, base, outcome.total_bytes, report, cancel)
                    outcome.flashes.append(result)
                    outcome.bytes_sent += result.bytes_sent
                    base += image.size
                    if not result.ok:
                        outcome.result = result.result
                        outcome.error = f"{image.ecu}: {result.error}"
                        break
            outcome.audit = audit.rows()[first_new:]
        outcome.seconds = time.monotonic() - t0
        report("done", outcome.bytes_sent, outcome.total_bytes)
        return outcome

    def _flash(
        self,
        image: FlashImage,
        journal: FlashJournal,
        audit: AuditTrail,
        base: int,
        total: int,
        report: Progress,
        cancel: threading.Event,
    ) -> FlashResult:
        plan = self.plan
        assert plan is not None
        # The journal names the package, not an image file: `update resume` verifies it again.
        options = FlashOptions(
            **{
                **self.options.__dict__,
                "vin": plan.reading.vin,
                "image_path": package_reference(self.package),
            }
        )
        address = EcuAddress.of(self.spec.ecu(image.ecu))
        # The same image left unfinished on this car (cancelled, link lost, tool killed): go on from
        # the journal's last acknowledged block rather than erasing again.
        resume = next(
            (
                e
                for e in journal.open_entries(image.ecu)
                if e.vin == plan.reading.vin and e.target_hash == image.target_hash
            ),
            None,
        )
        job = FlashJob(
            self.bus,
            self.notifier,
            address,
            image,
            journal=journal,
            audit=audit,
            options=options,
            resume=resume,
        )
        sent = [0]

        def each(phase: str, done: int, _total: int) -> None:
            # Only the download moves the byte count; other phases say where the ECU is.
            if phase == "download":
                sent[0] = done
            report(f"{image.ecu}: {phase}", base + sent[0], total)

        return job.run(each, cancel)

    def _db(self) -> Path:
        return self.history if self.history is not None else default_history_path()
