"""The vehicle scan: find the ECUs, read each one's identity and fault codes, clear them.

Runs on a connection's bus and notifier (capture continues). Every step that fails becomes a
plain-language problem on that ECU's result; a malformed or foreign answer is never stored as
a reading. A clear is reported done only after the ECU's positive response.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import can

from workshop_app.core.diag import discovery
from workshop_app.core.diag.client import DiagError, EcuAddress, EcuClient
from workshop_app.core.diag.descriptions import DtcDescriptions
from workshop_app.core.diag.dtc import Dtc, SnapshotValue
from workshop_app.core.diag.ecu_spec import EcuSpec, VehicleSpec
from workshop_app.core.diag.model import EcuResult, ScanLabel, ScanResult
from workshop_app.core.diag.obd import ObdLink
from workshop_app.core.errors import WorkshopError
from workshop_app.core.update.protocol import DID_APP_VALID

# Identification DIDs read from ECUs without a description (ISO 14229-1 Annex C).
STANDARD_IDENTIFICATION = {
    0xF190: "VIN",
    0xF187: "Part number",
    0xF189: "Software version",
    0xF195: "Supplier software version",
    0xF191: "Hardware version",
    0xF18C: "Serial number",
    0xF18A: "Supplier",
}
STORED_MASK = 0x2F  # testFailed, …ThisCycle, pending, confirmed, failedSinceLastClear
ODOMETER_NAMES = ("odometer", "mileage")
OBD_PHYSICAL = range(0x7E0, 0x7E8)  # ISO 15765-4 physical request ids of OBD-II ECUs

Progress = Callable[[str, float], None]  # (what is happening, fraction done)


@dataclass
class ScanOptions:
    sweep: bool = True  # physical address sweep besides the expected ECUs and OBD discovery
    live: bool = False  # also read the ECUs' live data identifiers
    obd: bool = True  # OBD-II stored/pending/permanent codes and VIN from OBD ECUs
    timeout: float = 1.0  # P2 before the ECU announces its own
    fd: bool = False
    expected: list[str] = field(default_factory=list)  # ECU names expected beyond the spec (history)


@dataclass
class ClearOutcome:
    """How clearing one ECU went, and when (unix time the ECU answered or failed).

    The time is taken here, at the clear, because callers store outcomes later (after the
    post-repair scan, say): a stamp taken when storing would put the clear after that scan.
    """

    ecu: str
    done: bool
    detail: str
    time: float = field(default_factory=time.time)


class VehicleScanner:
    """Scans through ``bus``/``notifier`` for the ECUs of ``spec`` (and any others that answer)."""

    def __init__(
        self,
        bus: can.BusABC,
        notifier: can.Notifier,
        spec: VehicleSpec | None = None,
        *,
        descriptions: DtcDescriptions | None = None,
        options: ScanOptions | None = None,
        connection: str = "",
    ) -> None:
        self.bus = bus
        self.notifier = notifier
        self.spec = spec
        self.descriptions = descriptions if descriptions is not None else DtcDescriptions()
        self.options = options or ScanOptions()
        self.connection = connection
        self._obd_ecus: list[EcuAddress] | None = None  # answers to the functional 01 00 of this scan

    # --- discovery -----------------------------------------------------------------------
    def _targets(
        self, progress: Progress, cancel: threading.Event | None
    ) -> list[tuple[EcuAddress, EcuSpec | None, bool]]:
        """(address, description, expected) of every ECU to talk to."""
        found: dict[tuple[int, bool], EcuAddress] = {}
        progress("OBD-II functional request", 0.02)
        self._obd_ecus = self._discover_obd()
        for a in self._obd_ecus:
            found[(a.response_id, a.extended)] = a
        if self.options.sweep and not _carries_uds(self.bus):
            progress("address sweep", 0.05)
            for a in discovery.sweep(self.bus, self.notifier, cancel=cancel):
                found.setdefault((a.response_id, a.extended), a)
        targets: list[tuple[EcuAddress, EcuSpec | None, bool]] = []
        if self.spec is not None:
            for ecu in self.spec.ecus:
                addr = EcuAddress.of(ecu)
                found.pop((addr.response_id, addr.extended), None)
                targets.append((addr, ecu, True))
        for addr in found.values():
            targets.append((addr, None, False))
        return targets

    # --- the scan ------------------------------------------------------------------------
    def scan(
        self,
        *,
        label: ScanLabel = ScanLabel.NONE,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> ScanResult:
        report = progress or (lambda _text, _fraction: None)
        t0 = time.monotonic()
        result = ScanResult(
            started=time.time(),
            label=label,
            connection=self.connection,
            vehicle=self.spec.vehicle if self.spec else "",
        )
        check_vehicle = getattr(self.bus, "check_vehicle", None)
        if callable(check_vehicle):  # the cloud link: is anybody there at all?
            report("waiting for the vehicle", 0.01)
            try:
                check_vehicle()
            except WorkshopError as exc:
                raise DiagError(str(exc), kind="timeout") from None
        targets = self._targets(report, cancel)
        for i, (addr, ecu, expected) in enumerate(targets):
            if cancel is not None and cancel.is_set():
                break
            name = ecu.name if ecu else f"ECU {addr.text}"
            report(f"reading {name}", 0.15 + 0.8 * i / max(1, len(targets)))
            result.ecus.append(self.scan_ecu(addr, ecu, expected=expected))
        for name in self.options.expected:
            if result.ecu(name) is None:  # seen in earlier scans, not described, not found now
                result.ecus.append(EcuResult(name=name, address="?", responded=False))
        if self.options.obd and not (cancel is not None and cancel.is_set()):
            self._read_obd(result)
        result.vin = result.vin or next(
            (e.identification.get("VIN", "") for e in result.ecus if e.identification.get("VIN")), ""
        )
        result.mileage_km = self._mileage(result)
        result.seconds = time.monotonic() - t0
        report("done", 1.0)
        return result

    def scan_ecu(self, addr: EcuAddress, ecu: EcuSpec | None, *, expected: bool = True) -> EcuResult:
        t0 = time.monotonic()
        res = EcuResult(
            name=ecu.name if ecu else f"ECU {addr.text}",
            address=addr.text,
            description=ecu.description if ecu else "not in the vehicle description",
            expected=expected,
        )
        with EcuClient(
            self.bus, self.notifier, addr, spec=ecu, fd=self.options.fd, timeout=self.options.timeout
        ) as client:
            try:
                client.tester_present()
                res.responded = True
            except DiagError as exc:
                if exc.kind == "nrc":  # a refusal still proves the ECU is there
                    res.responded = True
                else:
                    res.seconds = time.monotonic() - t0
                    return res
            self._identify(client, ecu, res)
            if self._in_bootloader(client, ecu, res):
                res.problems.extend(client.problems)
                res.seconds = time.monotonic() - t0
                return res
            self._read_dtcs(client, ecu, res)
            if self.options.live and ecu is not None:
                for did in ecu.live:
                    try:
                        value = client.read_did(did)
                    except DiagError as exc:
                        res.problems.append(str(exc))
                        continue
                    d = ecu.dids[did]
                    res.live.append(SnapshotValue(d.name, value, d.unit, did))
            res.problems.extend(client.problems)
        res.seconds = time.monotonic() - t0
        return res

    def _identify(self, client: EcuClient, ecu: EcuSpec | None, res: EcuResult) -> None:
        dids = (
            {d: ecu.dids[d].name for d in ecu.identification}
            if ecu and ecu.identification
            else STANDARD_IDENTIFICATION
        )
        for did, name in dids.items():
            try:
                value = client.read_did(did)
            except DiagError as exc:
                if exc.nrc != 0x31:  # "not supported" is an answer, not a problem
                    res.problems.append(str(exc))
                if exc.kind == "timeout":
                    return
                continue
            res.identification[name] = str(value)

    def _in_bootloader(self, client: EcuClient, ecu: EcuSpec | None, res: EcuResult) -> bool:
        """True for an ECU whose application is invalid (an interrupted flash): it runs only its
        bootloader, which refuses the other services in the default session. Say that, not
        "not supported in this session" for each refusal, which would send the user astray."""
        if ecu is None or DID_APP_VALID not in ecu.dids:
            return False
        try:
            valid = client.read_did(DID_APP_VALID)
        except DiagError:
            return False
        if str(valid) not in ("0", "No"):
            return False
        res.problems[:] = [
            "in its bootloader: the application is not valid (an interrupted or failed flash); "
            "flash it again (`workshop update resume`, or install the package again)"
        ]
        return True

    def _read_dtcs(self, client: EcuClient, ecu: EcuSpec | None, res: EcuResult) -> None:
        manufacturer = self.spec.manufacturer if self.spec else ""
        try:
            found = client.dtcs_by_status(STORED_MASK)
        except DiagError as exc:
            res.problems.append(str(exc))
            return
        for raw in found:
            dtc = Dtc(raw.id, raw.status.get_byte_as_int(), self.descriptions.describe(raw.id, manufacturer))
            try:
                for snap in client.snapshots(raw.id):
                    d = ecu.dids.get(snap.did) if ecu else None
                    dtc.snapshots.setdefault(snap.record_number, []).append(
                        SnapshotValue(
                            d.name if d else f"DID 0x{snap.did:04X}",
                            _plain(snap.data),
                            d.unit if d else "",
                            snap.did,
                        )
                    )
            except DiagError as exc:
                if exc.nrc != 0x31:
                    res.problems.append(str(exc))
            try:
                for ext in client.extended_data(raw.id):
                    spec = ecu.extended_records.get(ext.record_number) if ecu else None
                    value = int.from_bytes(bytes(ext.raw_data), "big")
                    dtc.extended.setdefault(ext.record_number, []).append(
                        SnapshotValue(spec.name if spec else f"record 0x{ext.record_number:02X}", value)
                    )
            except DiagError as exc:
                if exc.nrc != 0x31:
                    res.problems.append(str(exc))
            res.dtcs.append(dtc)

    def _discover_obd(self, wait: float = 0.3) -> list[EcuAddress]:
        if not _carries_uds(self.bus):
            return discovery.obd_discover(self.bus, self.notifier, wait=wait)
        # A link that carries UDS messages, not frames (the cloud), cannot send the functional
        # request or sweep: the described ECUs at the OBD-II addresses are asked directly.
        ecus = self.spec.ecus if self.spec is not None else []
        return [
            EcuAddress.of(e)
            for e in ecus
            if not e.extended_ids and OBD_PHYSICAL.start <= e.request_id < OBD_PHYSICAL.stop
        ]

    def _read_obd(self, result: ScanResult) -> None:
        manufacturer = self.spec.manufacturer if self.spec else ""
        if self._obd_ecus is None:
            self._obd_ecus = self._discover_obd(wait=0.2)
        for addr in self._obd_ecus:
            if _carries_uds(self.bus) and not any(
                e.responded and e.address == addr.text for e in result.ecus
            ):
                continue  # over the cloud each silent request costs the agent's whole timeout
            with ObdLink(self.bus, self.notifier, addr, timeout=self.options.timeout) as link:
                for mode in (0x03, 0x07, 0x0A):
                    try:
                        for dtc in link.dtcs(mode):
                            # One entry per code: stored, pending and permanent merge their bits.
                            same = next((d for d in result.obd_dtcs if d.code == dtc.code), None)
                            if same is not None:
                                same.status |= dtc.status
                                continue
                            dtc.description = self.descriptions.describe(dtc.code, manufacturer)
                            result.obd_dtcs.append(dtc)
                    except DiagError:
                        continue  # optional modes: an ECU may not support them
                if not result.vin:
                    with contextlib.suppress(DiagError):
                        result.vin = link.vin()

    def _mileage(self, result: ScanResult) -> float | None:
        for e in result.ecus:
            for name, value in e.identification.items():
                if name.lower() in ODOMETER_NAMES:
                    try:
                        return float(value)
                    except ValueError:
                        pass
        if self.spec is None:
            return None
        # An odometer DID in the description, read from the first ECU that answers for it.
        for ecu in self.spec.ecus:
            odo = next((d for d in ecu.dids.values() if d.name.lower() in ODOMETER_NAMES), None)
            res = result.ecu(ecu.name)
            if odo is None or res is None or not res.responded:
                continue
            with EcuClient(
                self.bus, self.notifier, EcuAddress.of(ecu), spec=ecu, timeout=self.options.timeout
            ) as client:
                try:
                    return float(client.read_did(odo.did))
                except (DiagError, TypeError, ValueError):
                    continue
        return None

    # --- clearing ------------------------------------------------------------------------
    def clear(self, names: list[str] | None = None) -> list[ClearOutcome]:
        """Clear all DTCs of the named ECUs (all described ECUs when None)."""
        if self.spec is None:
            raise DiagError("clearing needs the vehicle description (which ECUs to address)")
        ecus = [self.spec.ecu(n) for n in names] if names else list(self.spec.ecus)
        out: list[ClearOutcome] = []
        for ecu in ecus:
            with EcuClient(
                self.bus, self.notifier, EcuAddress.of(ecu), spec=ecu, timeout=self.options.timeout
            ) as client:
                try:
                    client.clear()
                except DiagError as exc:
                    out.append(ClearOutcome(ecu.name, False, str(exc)))
                    continue
                out.append(ClearOutcome(ecu.name, True, "fault memory cleared"))
        return out


def _carries_uds(bus: can.BusABC) -> bool:
    """True for a bus that takes UDS messages rather than raw frames (the cloud link's)."""
    return callable(getattr(bus, "uds_connection", None))


def _plain(value: Any) -> float | int | str:
    if isinstance(value, float | int | str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex(" ").upper()
    return str(value)
