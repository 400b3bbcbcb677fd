"""Remote functions from the workshop: signed lock, unlock, lights and flash commands.

::

    remote = RemoteControl(CloudProfile.load(default_workshop_profile()))
    result = remote.command("WSADEM5T2T0000421", "lock")
    # {"ok": True, "code": "done", "message": "LockState is Locked", "data": {...}}

Each command is signed with the workshop's key (profile ``signing_key``) and carries the
owner's grant for that VIN (one of the profile's ``grants``); the agent checks both, runs the
command on the car's bus and reads the result back from the car's status frames. Progress
results (``ok`` None, a remote flash) go to ``progress``; the final one is returned, a refusal
included (``ok`` False and its ``code``). Every attempt is written to the workshop's own
audit trail (``core/history/audit.py``), whatever came of it.
"""

from __future__ import annotations

import fcntl
import getpass
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from workshop_app.core.cloud import signing, topics
from workshop_app.core.cloud.errors import CloudError
from workshop_app.core.cloud.link import VehicleLink
from workshop_app.core.cloud.messages import encode
from workshop_app.core.cloud.profile import CloudProfile
from workshop_app.core.history.audit import AuditEntry, AuditTrail
from workshop_app.core.history.location import workshop_home

ACTIONS = tuple(signing.ACTION_SCOPES)
LIGHT_MODES = ("Off", "LowBeam", "HighBeam")
COMMAND_TTL_S = 60.0  # a command the broker holds longer than this is refused as expired
DEFAULT_TIMEOUT = 30.0  # seconds without any reply (each progress report restarts it)

Progress = Callable[[dict[str, Any]], None]


class RemoteControl:
    """Signed commands to this workshop's vehicles through the broker.

    Args:
        profile: the workshop's cloud profile (with ``signing_key`` and ``grants``).
        history: the workshop's history database, where each attempt is audited
            (None: no audit, for scripts that keep their own).
        counter_file: where the last command counter is kept (default: the workshop's data
            folder), so counters only grow even across a clock set back.
    """

    def __init__(
        self,
        profile: CloudProfile,
        *,
        history: Path | None = None,
        counter_file: Path | None = None,
        connect_timeout: float = 8.0,
    ) -> None:
        self.profile = profile
        self.history = history
        self.counter_file = counter_file or workshop_home() / "cloud" / f"counter-{profile.client_id}.json"
        self.connect_timeout = connect_timeout

    # -- signing ----------------------------------------------------------------------------
    def grant_for(self, vin: str, action: str) -> dict[str, Any]:
        """The profile's grant covering ``action`` on ``vin``; CloudError naming what is missing."""
        scope = signing.ACTION_SCOPES.get(action)
        if scope is None:
            raise CloudError(f"unknown remote action {action!r} (actions: {', '.join(ACTIONS)})")
        if not self.profile.grants:
            raise CloudError(f"cloud profile {self.profile.client_id}: no owner grants (field 'grants')")
        seen: list[str] = []
        for path in self.profile.grants:
            grant = signing.load_grant(path)
            if grant.get("vin") != vin:
                continue
            scopes = grant.get("scopes") or []
            if scope in scopes:
                return grant
            seen.append(f"{path.name} grants {', '.join(scopes) or 'nothing'}")
        if seen:
            raise CloudError(f"the owner's grant for {vin} does not cover {scope!r}: {'; '.join(seen)}")
        raise CloudError(f"no owner grant for {vin} in cloud profile {self.profile.client_id}")

    def _next_counter(self, vin: str) -> int:
        """Clock-based (see signing.next_counter), never below the last one this workshop used."""
        path = self.counter_file
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)  # two windows of one workshop never reuse a counter
            f.seek(0)
            try:
                last = json.loads(f.read() or "{}")
            except json.JSONDecodeError:
                last = {}
            if not isinstance(last, dict):
                last = {}
            previous = last.get(vin, 0)
            counter = max(signing.next_counter(), int(previous) + 1 if isinstance(previous, int) else 0)
            last[vin] = counter
            f.seek(0)
            f.truncate()
            f.write(json.dumps(last, sort_keys=True))
        return counter

    def sign(self, vin: str, action: str, args: Mapping[str, Any]) -> dict[str, Any]:
        if self.profile.signing_key is None:
            raise CloudError(f"cloud profile {self.profile.client_id}: no signing_key to sign commands with")
        grant = self.grant_for(vin, action)
        key = signing.load_private_key(self.profile.signing_key)
        return signing.sign_command(key, grant, vin, action, args, self._next_counter(vin), COMMAND_TTL_S)

    # -- sending ----------------------------------------------------------------------------
    def command(
        self,
        vin: str,
        action: str,
        args: Mapping[str, Any] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Send one signed command and return the car's final result (``ok``, ``code``, ``message``,
        ``data``). CloudError when it cannot be signed or sent, or no answer comes in time."""
        try:
            topics.check_vin(vin)
        except topics.TopicError as exc:
            raise CloudError(str(exc)) from None
        args = dict(args or {})
        t0 = time.monotonic()
        try:
            command = self.sign(vin, action, args)
            result = self._send(vin, command, timeout, progress)
        except CloudError as exc:
            self._audit(vin, action, args, "failed", time.monotonic() - t0, str(exc))
            raise
        outcome = "success" if result.get("ok") else "refused" if is_refusal(result) else "failed"
        error = "" if result.get("ok") else f"{result.get('code')}: {result.get('message')}"
        data = result.get("data")
        self._audit(
            vin, action, args, outcome, time.monotonic() - t0, error, data if isinstance(data, dict) else None
        )
        return result

    def _send(
        self, vin: str, command: dict[str, Any], timeout: float, progress: Progress | None
    ) -> dict[str, Any]:
        link = VehicleLink(self.profile, vin, role="remote", connect_timeout=self.connect_timeout)
        try:
            pending = link.request(encode("command", command=command))
            deadline = time.monotonic() + timeout
            while True:
                doc = pending.get(deadline - time.monotonic())
                if doc is None:
                    raise CloudError(
                        f"{vin} did not answer the {command['action']} command within {timeout:g} s "
                        f"({link.state}): the vehicle is offline, or not granted to workshop "
                        f"{self.profile.client_id}"
                    )
                kind = doc.get("kind")
                if kind == "error":
                    return {
                        "ok": False,
                        "code": str(doc.get("code", "error")),
                        "message": str(doc.get("message", "")),
                        "data": {},
                    }
                if kind != "result":
                    continue
                result = {k: doc.get(k) for k in ("ok", "code", "message", "data")}
                if result["ok"] is None:  # progress: the job is alive, restart the wait
                    deadline = time.monotonic() + timeout
                    if progress is not None:
                        progress(result)
                    continue
                return result
        finally:
            link.close()

    def _audit(
        self,
        vin: str,
        action: str,
        args: Mapping[str, Any],
        result: str,
        seconds: float,
        error: str,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        if self.history is None:
            return
        # Who asked and how: the login name, through this workshop's cloud identity.
        user = f"{getpass.getuser()} via cloud as {self.profile.client_id}"
        entries: list[AuditEntry] = []
        flashes = (data or {}).get("flashes") if action == "flash" else None
        if isinstance(flashes, list) and flashes:
            # One row per ECU the car flashed, with the versions the car reported.
            for f in flashes:
                ok = f.get("result") == "success"
                entries.append(
                    AuditEntry(
                        ecu=str(f.get("ecu") or "-"),
                        result="success" if ok else result if result != "success" else "failed",
                        duration_s=seconds,
                        vin=vin,
                        from_version=str(f.get("from") or ""),
                        to_version=str(f.get("to") or ""),
                        error=str(f.get("error") or error or ""),
                        user=user,
                    )
                )
        else:
            what = " ".join([action, *(str(v) for k, v in sorted(args.items()) if k != "url")])
            ecu = str(args.get("ecu") or ("BCM" if action != "flash" else "-"))
            target = f"remote {what}" if action != "flash" else ""
            entries.append(
                AuditEntry(
                    ecu=ecu,
                    result=result,
                    duration_s=seconds,
                    vin=vin,
                    to_version=target,
                    error=error,
                    user=user,
                )
            )
        with AuditTrail(self.history) as trail:
            for entry in entries:
                trail.append(entry)


def is_refusal(result: Mapping[str, Any]) -> bool:
    """A result the car refused before acting (signature, grant, expiry, switched off)."""
    code = str(result.get("code", ""))
    return code not in ("not-confirmed", "bus") and not code.startswith("flash-")
