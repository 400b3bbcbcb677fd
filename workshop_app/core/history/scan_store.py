"""Scans, clears and DTC events in the history: the part of HistoryStore that stores and
reads back whole diagnostic sessions."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlite_utils import Database

from workshop_app.core.diag.dtc import Dtc, SnapshotValue, sae_code, status_words
from workshop_app.core.diag.model import EcuResult, ScanComparison, ScanLabel, ScanResult, compare_scans
from workshop_app.core.history.errors import HistoryError

if TYPE_CHECKING:  # only for annotations: listing the history needs no numpy or asammdf
    from workshop_app.core.diag.scan import ClearOutcome

from workshop_app.core.history.records import (
    CLEAR_RESULTS,
    DTC_EVENT_KINDS,
    RecordingRow,
    ScanSummary,
    TimelineEntry,
    VehicleRow,
    _add,
    _iso,
    _mileage_text,
    _now,
    _value_columns,
    _value_from,
    normalize_vin,
)


def _add_dtc(conn: sqlite3.Connection, scan_id: int, ecu_id: int | None, ecu: str, dtc: Dtc) -> None:
    dtc_id = _add(
        conn,
        "scan_dtcs",
        {
            "scan_ecu_id": ecu_id,
            "scan_id": scan_id,
            "ecu": ecu,
            "code": dtc.code,
            "sae": dtc.sae,
            "status": dtc.status,
            "description": dtc.description,
            "source": dtc.source,
            "occurrences": dtc.occurrence_count(),
        },
    )
    rows = [
        (dtc_id, kind, record, v.name, *_value_columns(v.value).values(), v.unit, v.did)
        for kind, records in (("snapshot", dtc.snapshots), ("extended", dtc.extended))
        for record, values in records.items()
        for v in values
    ]
    conn.executemany(
        "INSERT INTO dtc_snapshots (scan_dtc_id, kind, record, name, value, number, value_type, unit, did) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


class ScanHistory:
    """Mixin of HistoryStore: everything about scans, clears and DTC events."""

    path: Path

    if TYPE_CHECKING:

        def _write(self, action: str) -> AbstractContextManager[sqlite3.Connection]: ...

        def _query(self, sql: str, args: list[Any] | tuple[Any, ...] = ()) -> list[dict[str, Any]]: ...

        def _resolve_vehicle(
            self,
            conn: sqlite3.Connection,
            vin: str | None,
            vehicle_id: int | None,
            *,
            notes: str | None = None,
        ) -> int | None: ...

        def _errors(self, action: str) -> AbstractContextManager[None]: ...

        def _db(self) -> Database: ...

        def find_vehicle(self, vin: str) -> VehicleRow | None: ...

        def recordings(self, limit: int | None = 50, vehicle_id: int | None = None) -> list[RecordingRow]: ...

    def add_scan(self, result: ScanResult, *, vehicle_id: int | None = None, note: str = "") -> int:
        """Store a whole scan in one transaction; returns its id and sets ``result.scan_id``.

        The vehicle is ``vehicle_id`` or the one with the scan's VIN (added when new). A scan
        whose VIN is unreadable is still kept, just not linked to a vehicle: losing the scan
        would be worse.
        """
        try:
            vin = normalize_vin(result.vin)
        except HistoryError:
            vin = None
        with self._write("saving a scan") as conn:
            vid = self._resolve_vehicle(conn, vin, vehicle_id, notes=result.vehicle or None)
            scan_id = _add(
                conn,
                "scans",
                {
                    "vehicle_id": vid,
                    "started": _iso(result.started),
                    "started_epoch": result.started,
                    "seconds": result.seconds,
                    "label": result.label.value,
                    "connection": result.connection,
                    "mileage_km": result.mileage_km,
                    "vin": result.vin,
                    "vehicle": result.vehicle,
                    "dtc_count": result.dtc_count,
                    "note": note,
                },
            )
            for ecu in result.ecus:
                ecu_id = _add(
                    conn,
                    "scan_ecus",
                    {
                        "scan_id": scan_id,
                        "name": ecu.name,
                        "address": ecu.address,
                        "description": ecu.description,
                        "state": ecu.state.value,
                        "responded": int(ecu.responded),
                        "expected": int(ecu.expected),
                        "identification": json.dumps(ecu.identification, ensure_ascii=False),
                        "problems": json.dumps(ecu.problems, ensure_ascii=False),
                        "seconds": ecu.seconds,
                    },
                )
                for dtc in ecu.dtcs:
                    _add_dtc(conn, scan_id, ecu_id, ecu.name, dtc)
            for dtc in result.obd_dtcs:
                _add_dtc(conn, scan_id, None, "", dtc)
        result.scan_id = scan_id
        return scan_id

    def scan(self, scan_id: int) -> ScanResult:
        """The stored scan rebuilt: ECUs, DTCs, freeze frames and extended data as they were saved."""
        with self._errors("reading a scan"):
            rows = self._query("SELECT * FROM scans WHERE id = ?", [scan_id])
            if not rows:
                raise HistoryError(f"no scan with id {scan_id} in the history")
            head = rows[0]
            result = ScanResult(
                started=head["started_epoch"],
                seconds=head["seconds"],
                vin=head["vin"] or "",
                vehicle=head["vehicle"] or "",
                mileage_km=head["mileage_km"],
                label=ScanLabel(head["label"]),
                connection=head["connection"] or "",
                scan_id=scan_id,
            )
            ecus: dict[int, EcuResult] = {}
            for r in self._query("SELECT * FROM scan_ecus WHERE scan_id = ? ORDER BY id", [scan_id]):
                ecu = EcuResult(
                    r["name"],
                    r["address"] or "",
                    r["description"] or "",
                    responded=bool(r["responded"]),
                    expected=bool(r["expected"]),
                    identification=json.loads(r["identification"] or "{}"),
                    problems=json.loads(r["problems"] or "[]"),
                    seconds=r["seconds"] or 0.0,
                )
                ecus[r["id"]] = ecu
                result.ecus.append(ecu)
            dtcs: dict[int, Dtc] = {}
            for r in self._query("SELECT * FROM scan_dtcs WHERE scan_id = ? ORDER BY id", [scan_id]):
                dtc = Dtc(r["code"], r["status"], r["description"] or "", source=r["source"] or "uds")
                dtcs[r["id"]] = dtc
                owner = ecus[r["scan_ecu_id"]].dtcs if r["scan_ecu_id"] is not None else result.obd_dtcs
                owner.append(dtc)
            values = self._query(
                "SELECT v.* FROM dtc_snapshots v JOIN scan_dtcs d ON d.id = v.scan_dtc_id "
                "WHERE d.scan_id = ? ORDER BY v.id",
                [scan_id],
            )
            for r in values:
                dtc = dtcs[r["scan_dtc_id"]]
                records = dtc.snapshots if r["kind"] == "snapshot" else dtc.extended
                value = SnapshotValue(r["name"], _value_from(r), r["unit"] or "", r["did"])
                records.setdefault(r["record"], []).append(value)
        return result

    def scans(
        self, vin: str | None = None, limit: int | None = None, *, vehicle_id: int | None = None
    ) -> list[ScanSummary]:
        """Scans, newest first; only one vehicle's with ``vin`` or ``vehicle_id``."""
        where = ""
        args: list[str | int | None] = []
        if vin is not None:
            normalized = normalize_vin(vin)
            where, args = "WHERE vehicle_id IN (SELECT id FROM vehicles WHERE vin = ?)", [normalized]
        elif vehicle_id is not None:
            where, args = "WHERE vehicle_id = ?", [vehicle_id]
        sql = f"SELECT * FROM scans {where} ORDER BY started_epoch DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._errors("listing scans"):
            return [ScanSummary.from_row(r) for r in self._query(sql, args)]

    def previous_scan(self, scan_id: int) -> ScanResult | None:
        """The same vehicle's scan just before this one, or None (first scan, or no vehicle)."""
        with self._errors("looking up the previous scan"):
            rows = self._query("SELECT vehicle_id, started_epoch FROM scans WHERE id = ?", [scan_id])
            if not rows:
                raise HistoryError(f"no scan with id {scan_id} in the history")
            vid, started = rows[0]["vehicle_id"], rows[0]["started_epoch"]
            if vid is None:
                return None
            # Scans of the same second are ordered by id, i.e. by when they were stored.
            before = self._query(
                "SELECT id FROM scans WHERE vehicle_id = ? AND id != ? "
                "AND (started_epoch < ? OR (started_epoch = ? AND id < ?)) "
                "ORDER BY started_epoch DESC, id DESC LIMIT 1",
                [vid, scan_id, started, started, scan_id],
            )
        return self.scan(before[0]["id"]) if before else None

    def compare_with_previous(self, scan_id: int) -> ScanComparison | None:
        """DTCs of this scan against the vehicle's previous one (new / gone / still), or None."""
        previous = self.previous_scan(scan_id)
        return compare_scans(previous, self.scan(scan_id)) if previous is not None else None

    def expected_ecus(self, vin: str) -> list[str]:
        """ECUs that answered in any stored scan of this vehicle, in the order first seen.

        The network view marks those missing from a new scan: a module that answered before
        and is silent now is worth a look (fuse, connector, dead module).
        """
        normalized = normalize_vin(vin)
        if normalized is None:
            return []
        with self._errors("listing a vehicle's ECUs"):
            rows = self._query(
                "SELECT e.name FROM scan_ecus e JOIN scans s ON s.id = e.scan_id "
                "JOIN vehicles v ON v.id = s.vehicle_id "
                "WHERE v.vin = ? AND e.responded = 1 GROUP BY e.name ORDER BY min(e.id)",
                [normalized],
            )
        return [r["name"] for r in rows]

    # -- clears and DTC events --------------------------------------------------------------

    def add_clears(self, outcomes: Iterable[ClearOutcome], *, vin: str | None) -> None:
        """Log the outcome of a clear flow, each stamped when the ECU answered (not now).

        The window and ``workshop dtc clear`` store outcomes after the post-repair scan; a
        stamp taken here would put the clear after that scan on the vehicle's timeline.
        """
        for o in outcomes:
            self.add_clear(
                o.ecu, result="done" if o.done else "failed", detail=o.detail, time=o.time, vin=vin
            )

    def add_clear(
        self,
        ecu: str = "ALL",
        *,
        result: str = "done",
        detail: str = "",
        time: float | None = None,
        vin: str | None = None,
        vehicle_id: int | None = None,
    ) -> int:
        """Log a clear-DTCs action (``ecu`` a name or ``"ALL"``; ``result`` done/failed)."""
        if result not in CLEAR_RESULTS:
            raise HistoryError(f"clear result must be one of {', '.join(CLEAR_RESULTS)}, not {result!r}")
        with self._write("logging a clear") as conn:
            record = {
                "vehicle_id": self._resolve_vehicle(conn, vin, vehicle_id),
                "time": _now() if time is None else time,
                "ecu": ecu,
                "result": result,
                "detail": detail,
            }
            return _add(conn, "clears", record)

    def add_dtc_event(
        self,
        ecu: str,
        code: int,
        kind: str,
        *,
        status: int = 0,
        time: float | None = None,
        vin: str | None = None,
        vehicle_id: int | None = None,
        recording_id: int | None = None,
    ) -> int:
        """Log a DTC seen appearing or clearing while watching live (``kind`` appeared/cleared)."""
        if kind not in DTC_EVENT_KINDS:
            raise HistoryError(f"DTC event kind must be one of {', '.join(DTC_EVENT_KINDS)}, not {kind!r}")
        try:
            sae = sae_code(code)
        except ValueError as exc:
            raise HistoryError(str(exc)) from exc
        with self._write("logging a DTC event") as conn:
            if recording_id is not None and (
                conn.execute("SELECT 1 FROM recordings WHERE id = ?", [recording_id]).fetchone() is None
            ):
                raise HistoryError(f"no recording with id {recording_id} in the history")
            record = {
                "vehicle_id": self._resolve_vehicle(conn, vin, vehicle_id),
                "time": _now() if time is None else time,
                "ecu": ecu,
                "code": code,
                "sae": sae,
                "status": status,
                "kind": kind,
                "recording_id": recording_id,
            }
            return _add(conn, "dtc_events", record)

    def timeline(self, vin: str) -> list[TimelineEntry]:
        """A vehicle's scans, clears, live DTC events and recordings, oldest first."""
        car = self.find_vehicle(vin)
        if car is None:
            return []
        entries: list[TimelineEntry] = []
        with self._errors("reading a vehicle's timeline"):
            for r in self._query(
                "SELECT s.*, (SELECT count(*) FROM scan_ecus e WHERE e.scan_id = s.id AND e.responded = 1) "
                "AS answered FROM scans s WHERE vehicle_id = ?",
                [car.id],
            ):
                label = f" ({r['label']})" if r["label"] else ""
                text = (
                    f"Scan{label}: {r['answered']} ECUs answered, {r['dtc_count']} DTCs"
                    f"{_mileage_text(r['mileage_km'])}"
                )
                entries.append(TimelineEntry(r["started_epoch"], "scan", r["id"], text))
            for r in self._query("SELECT * FROM clears WHERE vehicle_id = ?", [car.id]):
                target = "all ECUs" if r["ecu"] == "ALL" else r["ecu"]
                text = (
                    f"Cleared DTCs of {target}"
                    if r["result"] == "done"
                    else f"Clearing DTCs of {target} failed"
                )
                entries.append(
                    TimelineEntry(
                        r["time"], "clear", r["id"], text + (f": {r['detail']}" if r["detail"] else "")
                    )
                )
            for r in self._query("SELECT * FROM dtc_events WHERE vehicle_id = ?", [car.id]):
                words = ", ".join(status_words(r["status"]))
                text = f"{r['sae']} {r['kind']} on {r['ecu']}" + (f" ({words})" if words else "")
                entries.append(TimelineEntry(r["time"], "dtc", r["id"], text))
            for rec in self.recordings(limit=None, vehicle_id=car.id):
                text = (
                    f"Recording {rec.path.name}: {rec.duration_s:.1f} s, {rec.frames} frames ({rec.format})"
                )
                entries.append(TimelineEntry(rec.started_epoch, "recording", rec.id, text))
        order = {"recording": 0, "scan": 1, "clear": 2, "dtc": 3}
        entries.sort(key=lambda e: (e.time, order[e.kind], e.id))
        return entries
