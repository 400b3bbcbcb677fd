"""What a signed command does on the car: body functions, and a remote flash.

``lock``, ``unlock`` and ``lights`` go on the bus as the DBC's BODY_COMMAND (encoded with
cantools), and their result is what the car then reports in its own status frames (LockState,
LowBeam/HighBeam) within a deadline: the answer says what the car did, not what was asked.

``flash`` runs only where the vehicle's owner enabled it (``--allow-remote-flash``). The agent
fetches the package from the URL in the command, verifies it itself against its own trust
store (the same TUF and director checks as a workshop's local update) and flashes locally with
``UpdateCampaign``; every attempt, refused ones included, goes to the agent's own audit trail.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import can
import cantools

from workshop_app.core.cloud.agent_frames import StatusWatch
from workshop_app.core.diag.ecu_spec import VehicleSpec
from workshop_app.core.errors import WorkshopError
from workshop_app.core.history.audit import AuditEntry, AuditTrail
from workshop_app.core.types import Frame
from workshop_app.core.update.campaign import UpdateCampaign
from workshop_app.core.update.verify import TrustStore

RESULT_DEADLINE_S = 2.0  # body status frames come every 100 ms; the ECU acts at once
LIGHTS = ("Off", "LowBeam", "HighBeam")
PROGRESS_EVERY_S = 0.5


@dataclass(frozen=True, slots=True)
class Outcome:
    """The ``result`` reply of a command: ok None is a progress report, not the end."""

    ok: bool | None
    code: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)

    def as_reply(self) -> dict[str, Any]:
        return {"ok": self.ok, "code": self.code, "message": self.message, "data": self.data}


class BodyFunctions:
    """Lock, unlock and lights through BODY_COMMAND, confirmed by BODY_STATUS / LIGHT_STATUS."""

    def __init__(self, dbc_path: Path, send: Callable[[Frame], None], watch: StatusWatch) -> None:
        db = cantools.database.load_file(str(dbc_path))
        if not isinstance(db, cantools.database.can.Database):
            raise WorkshopError(f"{dbc_path}: not a CAN database")
        self.db = db
        self._command = self.db.get_message_by_name("BODY_COMMAND")
        self._body = self.db.get_message_by_name("BODY_STATUS")
        self._lights = self.db.get_message_by_name("LIGHT_STATUS")
        self._send = send
        self.watch = watch
        for m in (self._body, self._lights):
            watch.watch(m.frame_id, m.is_extended_frame)

    def _status(self, message: Any, after: float) -> dict[str, Any] | None:
        frame = self.watch.latest(message.frame_id, message.is_extended_frame)
        if frame is None or frame.timestamp < after:
            return None
        return dict(message.decode(frame.data, decode_choices=True))

    def run(self, action: str, args: dict[str, Any]) -> Outcome:
        expected: dict[str, str]
        if action in ("lock", "unlock"):
            want_lock = "Lock" if action == "lock" else "Unlock"
            expected = {"LockState": "Locked" if action == "lock" else "Unlocked"}
            message, request = self._body, {"LockRequest": want_lock}
        elif action == "lights":
            mode = args.get("mode")
            if mode not in LIGHTS:
                return Outcome(
                    False, "bad-args", f"lights needs mode one of {', '.join(LIGHTS)}, got {mode!r}"
                )
            # High beam implies low beam; each mode is confirmed by both lamps.
            expected = {
                "LowBeam": "On" if mode != "Off" else "Off",
                "HighBeam": "On" if mode == "HighBeam" else "Off",
            }
            message, request = self._lights, {"LightsRequest": mode}
        else:
            return Outcome(False, "unknown-action", f"unknown command {action!r}")
        payload: dict[str, int | str] = {s.name: 0 for s in self._command.signals}
        payload.update(request)
        data = self._command.encode(payload)
        sent_at = time.time()
        try:
            self._send(
                Frame(
                    sent_at, self._command.frame_id, bytes(data), is_extended=self._command.is_extended_frame
                )
            )
        except WorkshopError as exc:
            return Outcome(False, "bus", f"BODY_COMMAND not sent: {exc}")
        seen: dict[str, str] = {}

        def done() -> bool:
            status = self._status(message, sent_at)
            if status is None:
                return False
            seen.update({name: str(status.get(name)) for name in expected})
            return seen == expected

        said = ", ".join(f"{k} is {v}" for k, v in expected.items())
        if self.watch.wait_for(done, RESULT_DEADLINE_S):
            return Outcome(True, "done", said, {**expected, "confirmed_by": message.name})
        got = ", ".join(f"{k} is {v}" for k, v in seen.items()) or f"no {message.name} frame"
        return Outcome(
            False,
            "not-confirmed",
            f"the car did not confirm {action} within {RESULT_DEADLINE_S:g} s: {got}",
            {k: seen.get(k) for k in expected},
        )


def audit_refusal(history: Path, vin: str, ecu: str, reason: str) -> None:
    with AuditTrail(history) as audit:
        audit.append(AuditEntry(ecu=ecu or "-", result="refused", duration_s=0.0, vin=vin, error=reason))


class RemoteFlash:
    """A signed ``flash`` command: fetch, verify, flash, audit. Runs on the diag worker."""

    def __init__(
        self,
        *,
        vin: str,
        enabled: bool,
        trust_dir: Path | None,
        history: Path,
        link: Callable[[], tuple[can.BusABC | None, can.Notifier | None]],
        spec: VehicleSpec | None = None,
    ) -> None:
        self.vin = vin
        self.spec = spec
        self.enabled = enabled
        self.trust_dir = trust_dir
        self.history = history
        self._link = link
        self.cancel = threading.Event()
        self.campaign: UpdateCampaign | None = None  # while one runs (tests reach its options)

    def run(self, args: dict[str, Any], progress: Callable[[Outcome], None], who: str) -> Outcome:
        url = args.get("url")
        ecu = args.get("ecu") or ""
        if not self.enabled:
            reason = "remote flashing is off on this vehicle (the agent runs without --allow-remote-flash)"
            audit_refusal(self.history, self.vin, ecu, f"remote flash from {who}: {reason}")
            return Outcome(False, "remote-flash-off", reason)
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            reason = f"the package URL must be http:// or https://, got {url!r}"
            audit_refusal(self.history, self.vin, ecu, f"remote flash from {who}: {reason}")
            return Outcome(False, "bad-args", reason)
        bus, notifier = self._link()
        if bus is None or notifier is None:
            return Outcome(False, "bus", "the car's bus is not connected")
        campaign = UpdateCampaign(
            bus,
            notifier,
            url,
            spec=self.spec,
            store=TrustStore(self.trust_dir) if self.trust_dir else TrustStore(),
            history=self.history,
        )
        self.campaign = campaign
        try:
            plan = campaign.prepare()
        except WorkshopError as exc:
            audit_refusal(self.history, self.vin, ecu, f"remote flash from {who}: {url}: {exc}")
            return Outcome(False, "car-unreadable", str(exc))
        if plan.ok and ecu and ecu not in {s.ecu for s in plan.steps}:
            reason = f"the package brings no image for {ecu} (it has {', '.join(s.ecu for s in plan.steps)})"
            audit_refusal(self.history, self.vin, ecu, f"remote flash from {who}: {url}: {reason}")
            return Outcome(False, "no-image", reason)
        if plan.ok:
            progress(
                Outcome(
                    None,
                    "verified",
                    f"package verified: {', '.join(f'{s.ecu} {s.from_version} → {s.to_version}' for s in plan.steps)}",
                    {
                        "steps": [
                            {"ecu": s.ecu, "from": s.from_version, "to": s.to_version} for s in plan.steps
                        ]
                    },
                )
            )
        last = [0.0]

        def report(phase: str, done: int, total: int) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY_S:
                last[0] = now
                progress(Outcome(None, "progress", phase, {"phase": phase, "done": done, "total": total}))

        outcome = campaign.run(report, self.cancel)  # a refused plan is audited by run() itself
        self.campaign = None
        data = {
            "result": outcome.result,
            "seconds": round(outcome.seconds, 3),
            "bytes": outcome.bytes_sent,
            "flashes": [
                {
                    "ecu": f.ecu,
                    "result": f.result,
                    "from": f.from_version,
                    "to": f.to_version,
                    "error": f.error,
                }
                for f in outcome.flashes
            ],
        }
        if outcome.result == "refused":
            codes = sorted({r.code for r in plan.refusals})
            data["refusals"] = [{"code": r.code, "message": str(r)} for r in plan.refusals]
            return Outcome(
                False, "package-refused", f"package refused: {outcome.error}", data | {"codes": codes}
            )
        if not outcome.ok:
            return Outcome(False, f"flash-{outcome.result}", outcome.error or outcome.result, data)
        flashed = ", ".join(f"{f.ecu} {f.from_version} → {f.to_version}" for f in outcome.flashes)
        return Outcome(True, "done", f"flashed {flashed}", data)
