"""Signed remote commands and the owner's consent to them (Ed25519).

Three keys meet here. The car's **owner** signs a *grant*: this workshop key may use these
scopes on this VIN until then. The **workshop** signs each *command* with its own key and
carries the grant inside it. The **car** (its agent) knows its VIN and its owner's public
key and nothing about workshops: :class:`CommandGuard` accepts a command only if both
signatures hold and every binding matches::

    grant   = {"v", "type": "grant", "vin", "owner", "workshop_key", "scopes", "issued", "expires", "sig"}
    command = {"v", "type": "command", "vin", "workshop_key", "action", "args", "nonce",
               "counter", "issued", "expires", "grant", "sig"}

Keys travel as hex of their 32 raw bytes; ``sig`` is the hex Ed25519 signature of the
document's canonical JSON without ``sig`` (sorted keys, no spaces, UTF-8), so any change to
any field, the embedded grant included, breaks it.

    >>> grant = make_grant(owner, VIN, workshop.public_key(), ["remote"], 3600)       # doctest: +SKIP
    >>> cmd = sign_command(workshop, grant, VIN, "lock", {}, next_counter(), 60)      # doctest: +SKIP
    >>> CommandGuard(VIN, owner.public_key(), Path("guard.json")).check(cmd).ok       # doctest: +SKIP
    True
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from workshop_app.core.cloud.errors import CloudError
from workshop_app.core.cloud.pki import write_secret

VERSION = 1
REMOTE = "remote"
FLASH = "flash"
ALL_SCOPES = (REMOTE, FLASH)
# Which scope each action needs; an action not listed here is refused.
ACTION_SCOPES = {"lock": REMOTE, "unlock": REMOTE, "lights": REMOTE, "flash": FLASH}
# Clocks of car and workshop may differ this much (seconds) before "issued" counts as future.
CLOCK_SKEW_S = 60.0
# A command may live at most this long: its nonce is remembered for that long, and a command
# valid for days would make expiry meaningless.
MAX_COMMAND_TTL_S = 600.0
MAX_GRANT_TTL_S = 366 * 24 * 3600.0
MAX_REMEMBERED = 10_000  # results kept for redeliveries; oldest go first

_COMMAND_FIELDS = (
    "vin",
    "workshop_key",
    "action",
    "args",
    "nonce",
    "counter",
    "issued",
    "expires",
    "grant",
    "sig",
)
_GRANT_FIELDS = ("vin", "owner", "workshop_key", "scopes", "issued", "expires", "sig")


# --- keys -------------------------------------------------------------------------------


def generate_signing_key(path: Path) -> Path:
    """A new Ed25519 key: private PEM at ``path`` (0600), public PEM beside it (``.pub``)."""
    path = Path(path)
    key = Ed25519PrivateKey.generate()
    write_secret(
        path,
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    public = path.with_suffix(".pub")
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return public


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except FileNotFoundError:
        raise CloudError(f"{path}: no such signing key") from None
    except (OSError, ValueError, TypeError) as exc:
        raise CloudError(f"{path}: not a readable PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CloudError(f"{path}: not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except FileNotFoundError:
        raise CloudError(f"{path}: no such public key") from None
    except (OSError, ValueError) as exc:
        raise CloudError(f"{path}: not a readable PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise CloudError(f"{path}: not an Ed25519 public key")
    return key


def public_key_hex(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def _public_from_hex(text: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(bytes.fromhex(text))


# --- documents ----------------------------------------------------------------------------


def canonical(document: Mapping[str, Any]) -> bytes:
    """The bytes that are signed: sorted keys, no spaces, UTF-8, without ``sig``."""
    body = {k: v for k, v in document.items() if k != "sig"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _signed(key: Ed25519PrivateKey, document: dict[str, Any]) -> dict[str, Any]:
    document["sig"] = key.sign(canonical(document)).hex()
    return document


def _verify(key: Ed25519PublicKey, document: Mapping[str, Any]) -> bool:
    try:
        key.verify(bytes.fromhex(document["sig"]), canonical(document))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def make_grant(
    owner_private_key: Ed25519PrivateKey,
    vin: str,
    workshop_public_key: Ed25519PublicKey,
    scopes: Iterable[str],
    ttl_s: float,
) -> dict[str, Any]:
    """The owner's consent: ``scopes`` on ``vin`` for the holder of that workshop key."""
    scopes = sorted(set(scopes))
    for scope in scopes:
        if scope not in ALL_SCOPES:
            raise CloudError(f"unknown scope {scope!r} (scopes: {', '.join(ALL_SCOPES)})")
    if not 0 < ttl_s <= MAX_GRANT_TTL_S:
        raise CloudError(f"a grant lasts between 0 and {MAX_GRANT_TTL_S:g} s, not {ttl_s:g}")
    now = time.time()
    return _signed(
        owner_private_key,
        {
            "v": VERSION,
            "type": "grant",
            "vin": vin,
            "owner": public_key_hex(owner_private_key.public_key()),
            "workshop_key": public_key_hex(workshop_public_key),
            "scopes": scopes,
            "issued": now,
            "expires": now + ttl_s,
        },
    )


def save_grant(path: Path, grant: Mapping[str, Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(grant, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def load_grant(path: Path) -> dict[str, Any]:
    try:
        grant = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CloudError(f"{path}: no such grant file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CloudError(f"{path}: not a grant (unreadable JSON: {exc})") from None
    if (
        not isinstance(grant, dict)
        or grant.get("type") != "grant"
        or any(k not in grant for k in _GRANT_FIELDS)
    ):
        raise CloudError(f"{path}: not a grant (fields {', '.join(_GRANT_FIELDS)} expected)")
    return grant


_last_counter = 0
_counter_lock = threading.Lock()


def next_counter() -> int:
    """A command counter that only grows: microseconds since 1970, bumped past the last one.

    Clock-based so a workshop needs no state file and a restarted app still counts upwards.
    """
    global _last_counter
    with _counter_lock:
        _last_counter = max(time.time_ns() // 1000, _last_counter + 1)
        return _last_counter


def sign_command(
    workshop_private_key: Ed25519PrivateKey,
    grant: Mapping[str, Any],
    vin: str,
    action: str,
    args: Mapping[str, Any],
    counter: int,
    ttl_s: float,
) -> dict[str, Any]:
    """A command for ``vin``, carrying ``grant``, signed with the workshop's key."""
    if not 0 < ttl_s <= MAX_COMMAND_TTL_S:
        raise CloudError(f"a command lives between 0 and {MAX_COMMAND_TTL_S:g} s, not {ttl_s:g}")
    now = time.time()
    return _signed(
        workshop_private_key,
        {
            "v": VERSION,
            "type": "command",
            "vin": vin,
            "workshop_key": public_key_hex(workshop_private_key.public_key()),
            "action": action,
            "args": dict(args),
            "nonce": os.urandom(16).hex(),
            "counter": int(counter),
            "issued": now,
            "expires": now + ttl_s,
            "grant": dict(grant),
        },
    )


# --- the car's side -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verdict:
    """``ok`` to run; otherwise ``code`` says why in one word and ``reason`` in plain words.

    ``duplicate_of`` is the stored result of an identical command already run: answer with
    it again and do not run the command.
    """

    ok: bool
    code: str
    reason: str
    duplicate_of: dict[str, Any] | None = None


def _refuse(code: str, reason: str) -> Verdict:
    return Verdict(False, code, reason)


def _is_time(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _shape(command: Any) -> str | None:
    """What is wrong with the document's shape, or None."""
    if not isinstance(command, dict) or command.get("type") != "command":
        return "not a signed command"
    missing = [k for k in _COMMAND_FIELDS if k not in command]
    if missing:
        return f"the command has no {missing[0]!r}"
    grant = command["grant"]
    if (
        not isinstance(grant, dict)
        or grant.get("type") != "grant"
        or any(k not in grant for k in _GRANT_FIELDS)
    ):
        return "the command carries no owner grant"
    checks = [
        (isinstance(command["counter"], int) and not isinstance(command["counter"], bool), "counter"),
        (isinstance(command["nonce"], str) and 16 <= len(command["nonce"]) <= 128, "nonce"),
        (isinstance(command["args"], dict), "args"),
        (isinstance(command["action"], str), "action"),
        (_is_time(command["issued"]) and _is_time(command["expires"]), "issued/expires"),
        (_is_time(grant["issued"]) and _is_time(grant["expires"]), "grant issued/expires"),
        (isinstance(grant["scopes"], list), "grant scopes"),
    ]
    for good, name in checks:
        if not good:
            return f"the command's {name} is malformed"
    for key in (command["workshop_key"], grant["owner"], grant["workshop_key"]):
        try:
            _public_from_hex(key)
        except (ValueError, TypeError):
            return "a key in the command is not an Ed25519 public key"
    return None


class CommandGuard:
    """The agent's gate for signed commands, with its memory in ``state_path``.

    :meth:`check` of an accepted command reserves its nonce and counter at once (written to
    the file before it returns), so a copy delivered while the command runs, or after the
    agent restarts, is never run again; :meth:`remember` stores the result that a later
    identical redelivery is answered with. Thread-safe.
    """

    def __init__(self, vin: str, owner_public_key: Ed25519PublicKey | Path, state_path: Path) -> None:
        self.vin = vin
        self.owner_key = (
            owner_public_key
            if isinstance(owner_public_key, Ed25519PublicKey)
            else load_public_key(owner_public_key)
        )
        self._owner_hex = public_key_hex(self.owner_key)
        self.state_path = Path(state_path)
        self._lock = threading.Lock()
        self._counters: dict[str, int] = {}
        self._nonces: dict[str, dict[str, Any]] = {}  # nonce → {"expires", "sig", "result"}
        self._load()

    # state file --------------------------------------------------------------------------

    def _load(self) -> None:
        try:
            raw = json.loads(self.state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            # Fail closed: forgetting the nonces would reopen a replay window.
            raise CloudError(
                f"{self.state_path}: command guard state unreadable ({exc}); refusing to start"
            ) from None
        if (
            not isinstance(raw, dict)
            or not isinstance(raw.get("counters"), dict)
            or not isinstance(raw.get("nonces"), dict)
        ):
            raise CloudError(f"{self.state_path}: not a command guard state file; refusing to start")
        if raw.get("vin") not in (None, self.vin):
            raise CloudError(f"{self.state_path}: command guard state of {raw.get('vin')}, not of {self.vin}")
        self._counters = {str(k): int(v) for k, v in raw["counters"].items()}
        self._nonces = {str(k): dict(v) for k, v in raw["nonces"].items() if isinstance(v, dict)}

    def _save(self, now: float) -> None:
        # Forget nonces whose command can no longer pass the expiry check anyway.
        self._nonces = {
            n: e for n, e in self._nonces.items() if float(e.get("expires", 0)) + CLOCK_SKEW_S >= now
        }
        if len(self._nonces) > MAX_REMEMBERED:
            keep = sorted(self._nonces.items(), key=lambda item: float(item[1].get("expires", 0)))
            self._nonces = dict(keep[-MAX_REMEMBERED:])
        data = json.dumps({"v": VERSION, "vin": self.vin, "counters": self._counters, "nonces": self._nonces})
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        # On the disk before the command runs: a power cut must not forget an accepted nonce.
        write_secret(tmp, data.encode(), durable=True)
        os.replace(tmp, self.state_path)  # a crash mid-write leaves the old state, never half a file

    # checks ------------------------------------------------------------------------------

    def check(self, command: Any, now: float | None = None) -> Verdict:
        now = time.time() if now is None else now
        problem = _shape(command)
        if problem:
            return _refuse("malformed", problem)
        if not _verify(_public_from_hex(command["workshop_key"]), command):
            return _refuse("bad_signature", "the command's signature does not match its content (tampered)")
        if command["vin"] != self.vin:
            return _refuse("foreign_vin", f"the command is for {command['vin']}, this car is {self.vin}")
        with self._lock:
            seen = self._nonces.get(command["nonce"])
            if seen is not None and seen.get("sig") == command["sig"]:
                if seen.get("result") is None:
                    return _refuse("in_progress", "this command is already running; it runs once")
                return Verdict(
                    False, "duplicate", "this command already ran; its result is sent again", seen["result"]
                )
            verdict = self._check_grant(command, now) or self._check_command(command, now)
            if verdict is not None:
                return verdict
            if seen is not None:
                return _refuse("replay", "the command's nonce was used before (replayed)")
            last = self._counters.get(command["workshop_key"], -1)
            if command["counter"] <= last:
                return _refuse(
                    "replay",
                    f"the command's counter {command['counter']} is not above the last accepted ({last})",
                )
            self._counters[command["workshop_key"]] = command["counter"]
            self._nonces[command["nonce"]] = {
                "expires": command["expires"],
                "sig": command["sig"],
                "result": None,
            }
            self._save(now)
        return Verdict(True, "ok", f"{command['action']} accepted")

    def _check_grant(self, command: dict[str, Any], now: float) -> Verdict | None:
        grant = command["grant"]
        if grant["owner"] != self._owner_hex:
            return _refuse("unknown_owner", "the grant is not signed by this car's owner")
        if not _verify(self.owner_key, grant):
            return _refuse("bad_signature", "the owner's grant does not match its signature (tampered)")
        if grant["vin"] != self.vin:
            return _refuse("grant_vin", f"the grant is for {grant['vin']}, not for {self.vin}")
        if grant["workshop_key"] != command["workshop_key"]:
            return _refuse("grant_workshop", "the grant was given to another workshop's key")
        if now > grant["expires"]:
            return _refuse("grant_expired", f"the owner's grant expired {now - grant['expires']:.0f} s ago")
        if grant["issued"] > now + CLOCK_SKEW_S:
            return _refuse("not_yet_valid", "the owner's grant is issued in the future (check the clocks)")
        scope = ACTION_SCOPES.get(command["action"])
        if scope is None:
            return _refuse("unknown_action", f"unknown action {command['action']!r}")
        if scope not in grant["scopes"]:
            return _refuse("scope", f"the owner did not grant {scope!r} (needed for {command['action']})")
        return None

    def _check_command(self, command: dict[str, Any], now: float) -> Verdict | None:
        if now > command["expires"]:
            return _refuse("expired", f"the command expired {now - command['expires']:.0f} s ago")
        if command["issued"] > now + CLOCK_SKEW_S:
            return _refuse("not_yet_valid", "the command is issued in the future (check the clocks)")
        if command["expires"] - command["issued"] > MAX_COMMAND_TTL_S:
            return _refuse("too_long", f"the command is valid longer than {MAX_COMMAND_TTL_S:g} s")
        return None

    def remember(self, command: Mapping[str, Any], result: dict[str, Any]) -> None:
        """Store the result of a command that ran, for identical redeliveries."""
        with self._lock:
            now = time.time()
            entry = self._nonces.get(str(command.get("nonce")))
            if entry is None or entry.get("sig") != command.get("sig"):
                # Not reserved by check() (or already forgotten): keep it so a copy is not run.
                entry = {"expires": command.get("expires", now), "sig": command.get("sig")}
                self._nonces[str(command.get("nonce"))] = entry
            entry["result"] = result
            self._save(now)
