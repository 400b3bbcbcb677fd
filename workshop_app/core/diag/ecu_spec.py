"""ECU descriptions: addresses, data identifiers (DIDs), snapshot and extended data layouts.

One JSON file describes the ECUs of one vehicle (format in README, "ECU description files"):

    {"vehicle": "...", "manufacturer": "...", "vin": "(simulated vehicles only)",
     "ecus": [{"name": "ECM", "description": "...",
               "addressing": "normal_11bit", "request_id": "0x7E0", "response_id": "0x7E8",
               "obd": true,
               "dids": [{"id": "0xF190", "name": "VIN", "type": "ascii", "length": 17}, ...],
               "identification": ["0xF190", "0xF187", ...],
               "live": ["0x1001", ...],
               "snapshot_records": {"1": ["0x1001", "0x1002"]},
               "extended_records": {"1": {"name": "Occurrence counter", "length": 1}}}]}

``addressing`` is ``normal_11bit`` / ``normal_29bit`` (explicit ids) or ``normal_fixed_29bit``
(``target_address`` and ``source_address``: ids 0x18DA<TA><SA> and 0x18DA<SA><TA>).
DID types: ``ascii`` (fixed length, space padded), ``uint`` / ``int`` (big-endian, with
optional ``scale``, ``offset``, ``unit``, ``choices``), ``bytes`` (shown as hex).
The same description serves the simulated ECUs (encoding) and the scanner (decoding).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workshop_app.core.errors import WorkshopError

TESTER_ADDRESS = 0xF1  # the usual external test equipment address


class EcuSpecError(WorkshopError):
    """An ECU description file that cannot be used; the message names the file and place."""


def _int(value: Any, where: str) -> int:
    try:
        return int(value, 0) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise EcuSpecError(f"{where}: {value!r} is not a number") from None


@dataclass(frozen=True)
class FieldSpec:
    """One value inside a ``record`` DID (bit layout as in a DBC: ``start`` is the MSB in
    sawtooth numbering for big-endian fields, the LSB for little-endian ones)."""

    name: str
    start: int
    bits: int
    byte_order: str = "big_endian"
    signed: bool = False
    scale: float = 1.0
    offset: float = 0.0
    unit: str = ""
    choices: dict[int, str] = field(default_factory=dict)

    def decode(self, data: bytes) -> float | int | str:
        total = 8 * len(data)
        if self.byte_order == "big_endian":
            msb = (self.start // 8) * 8 + (7 - self.start % 8)  # position counted from the first bit
            shift = total - msb - self.bits
            if shift < 0:
                raise ValueError(f"field {self.name} runs past the end of the data")
            raw = (int.from_bytes(data, "big") >> shift) & ((1 << self.bits) - 1)
        else:
            if self.start + self.bits > total:
                raise ValueError(f"field {self.name} runs past the end of the data")
            raw = (int.from_bytes(data, "little") >> self.start) & ((1 << self.bits) - 1)
        if self.signed and raw >> (self.bits - 1):
            raw -= 1 << self.bits
        if raw in self.choices:
            return self.choices[raw]
        if self.scale == 1 and self.offset == 0:
            return raw
        return raw * self.scale + self.offset

    def text(self, data: bytes) -> str:
        value = self.decode(data)
        shown = f"{value:.6g}" if isinstance(value, float) else str(value)
        return f"{self.name}={shown}{' ' + self.unit if self.unit else ''}"


@dataclass(frozen=True)
class DidSpec:
    """How one data identifier is laid out."""

    did: int
    name: str
    type: str = "bytes"  # ascii, uint, int, bytes
    length: int = 1
    scale: float = 1.0
    offset: float = 0.0
    unit: str = ""
    choices: dict[int, str] = field(default_factory=dict)
    fields: tuple[FieldSpec, ...] = ()  # type "record": several values in one DID

    def decode(self, data: bytes) -> float | int | str:
        """Physical value of ``data`` (exactly ``length`` bytes)."""
        if len(data) != self.length:
            raise ValueError(f"DID 0x{self.did:04X} ({self.name}): {len(data)} bytes, expected {self.length}")
        if self.type == "record":
            return "; ".join(f.text(data) for f in self.fields)
        if self.type == "ascii":
            return data.decode("latin-1").rstrip(" \x00")
        if self.type == "bytes":
            return data.hex(" ").upper()
        raw = int.from_bytes(data, "big", signed=self.type == "int")
        if raw in self.choices:
            return self.choices[raw]
        if self.scale == 1 and self.offset == 0:
            return raw
        return raw * self.scale + self.offset

    def encode(self, value: float | int | str) -> bytes:
        """Bytes of a physical value (the inverse of :meth:`decode`; clamped to the range)."""
        if self.type == "ascii":
            return str(value).encode("latin-1")[: self.length].ljust(self.length, b" ")
        if self.type == "record":
            raise ValueError(f"DID 0x{self.did:04X}: record DIDs are read, not written")
        if self.type == "bytes":
            raw_bytes = bytes.fromhex(value) if isinstance(value, str) else bytes(value)  # type: ignore[arg-type]
            return raw_bytes[: self.length].ljust(self.length, b"\x00")
        if isinstance(value, str):
            named = {text: raw for raw, text in self.choices.items()}
            if value not in named:
                raise ValueError(f"DID 0x{self.did:04X}: {value!r} is not one of {sorted(named)}")
            raw = named[value]
        else:
            raw = round((float(value) - self.offset) / self.scale)
        bits = 8 * self.length
        low, high = (
            (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if self.type == "int" else (0, (1 << bits) - 1)
        )
        raw = min(max(raw, low), high)
        return raw.to_bytes(self.length, "big", signed=self.type == "int")


@dataclass(frozen=True)
class ExtendedRecordSpec:
    record: int
    name: str
    length: int = 1


@dataclass(frozen=True)
class EcuSpec:
    """One ECU: where it listens and answers, and what its data means."""

    name: str
    description: str
    request_id: int
    response_id: int
    extended_ids: bool = False  # 29-bit identifiers
    addressing: str = "normal_11bit"
    target_address: int | None = None
    source_address: int | None = None
    obd: bool = False  # answers OBD-II requests (functional 0x7DF and its physical pair)
    dids: dict[int, DidSpec] = field(default_factory=dict)
    identification: tuple[int, ...] = ()
    live: tuple[int, ...] = ()
    snapshot_records: dict[int, tuple[int, ...]] = field(default_factory=dict)
    extended_records: dict[int, ExtendedRecordSpec] = field(default_factory=dict)

    def did(self, did: int) -> DidSpec:
        try:
            return self.dids[did]
        except KeyError:
            raise KeyError(f"{self.name} has no DID 0x{did:04X}") from None

    @property
    def address_text(self) -> str:
        width = 8 if self.extended_ids else 3
        return f"0x{self.request_id:0{width}X}/0x{self.response_id:0{width}X}"


@dataclass(frozen=True)
class VehicleSpec:
    """The ECUs one vehicle is expected to have."""

    vehicle: str
    manufacturer: str
    ecus: tuple[EcuSpec, ...]
    path: Path | None = None
    vin: str = ""  # the simulated vehicle's VIN (descriptions of real cars leave it out)

    def ecu(self, name: str) -> EcuSpec:
        for e in self.ecus:
            if e.name == name:
                return e
        raise KeyError(f"no ECU {name!r} in {self.path or self.vehicle}; known: {', '.join(self.names)}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.ecus)

    def by_response_id(self, response_id: int) -> EcuSpec | None:
        return next((e for e in self.ecus if e.response_id == response_id), None)


def _did(raw: dict[str, Any], where: str) -> DidSpec:
    if "id" not in raw or "name" not in raw:
        raise EcuSpecError(f"{where}: a DID needs 'id' and 'name'")
    kind = raw.get("type", "bytes")
    if kind not in ("ascii", "uint", "int", "bytes", "record"):
        raise EcuSpecError(f"{where}: unknown DID type {kind!r} (ascii, uint, int, bytes, record)")
    length = _int(raw.get("length", 1), where)
    if not 1 <= length <= 4095:
        raise EcuSpecError(f"{where}: length {length} out of range")
    if kind in ("uint", "int") and length > 8:
        raise EcuSpecError(f"{where}: numeric DIDs are at most 8 bytes")
    choices = {_int(k, where): str(v) for k, v in (raw.get("choices") or {}).items()}
    scale = float(raw.get("scale", 1))
    if scale == 0:
        raise EcuSpecError(f"{where}: scale must not be 0")
    fields = tuple(_field(f, f"{where} fields[{i}]", length) for i, f in enumerate(raw.get("fields") or []))
    if kind == "record" and not fields:
        raise EcuSpecError(f"{where}: a record DID needs 'fields'")
    return DidSpec(
        did=_int(raw["id"], where),
        name=str(raw["name"]),
        type=kind,
        length=length,
        scale=scale,
        offset=float(raw.get("offset", 0)),
        unit=str(raw.get("unit", "")),
        choices=choices,
        fields=fields,
    )


def _field(raw: dict[str, Any], where: str, length: int) -> FieldSpec:
    try:
        spec = FieldSpec(
            name=str(raw["name"]),
            start=_int(raw["start"], where),
            bits=_int(raw["bits"], where),
            byte_order=str(raw.get("byte_order", "big_endian")),
            signed=bool(raw.get("signed", False)),
            scale=float(raw.get("scale", 1)),
            offset=float(raw.get("offset", 0)),
            unit=str(raw.get("unit", "")),
            choices={_int(k, where): str(v) for k, v in (raw.get("choices") or {}).items()},
        )
    except KeyError as exc:
        raise EcuSpecError(f"{where}: a field needs {exc}") from None
    if spec.byte_order not in ("big_endian", "little_endian") or not 1 <= spec.bits <= 64:
        raise EcuSpecError(f"{where}: byte_order big_endian/little_endian and 1..64 bits")
    try:
        spec.decode(bytes(length))
    except ValueError as exc:
        raise EcuSpecError(f"{where}: {exc}") from None
    return spec


def _ecu(raw: dict[str, Any], where: str) -> EcuSpec:
    name = raw.get("name")
    if not name:
        raise EcuSpecError(f"{where}: an ECU needs a 'name'")
    where = f"{where} ({name})"
    addressing = raw.get("addressing", "normal_11bit")
    target = source = None
    if addressing == "normal_fixed_29bit":
        target = _int(raw.get("target_address"), f"{where} target_address")
        source = _int(raw.get("source_address", TESTER_ADDRESS), f"{where} source_address")
        request_id, response_id, extended = (
            0x18DA0000 | target << 8 | source,
            0x18DA0000 | source << 8 | target,
            True,
        )
    elif addressing in ("normal_11bit", "normal_29bit"):
        request_id = _int(raw.get("request_id"), f"{where} request_id")
        response_id = _int(raw.get("response_id"), f"{where} response_id")
        extended = addressing == "normal_29bit"
        limit = 0x1FFFFFFF if extended else 0x7FF
        if not (0 <= request_id <= limit and 0 <= response_id <= limit):
            raise EcuSpecError(f"{where}: identifiers out of range for {addressing}")
    else:
        raise EcuSpecError(
            f"{where}: unknown addressing {addressing!r} (normal_11bit, normal_29bit, normal_fixed_29bit)"
        )
    dids: dict[int, DidSpec] = {}
    for i, d in enumerate(raw.get("dids", [])):
        spec = _did(d, f"{where} dids[{i}]")
        dids[spec.did] = spec

    def known(ids: list[Any], key: str) -> tuple[int, ...]:
        out = tuple(_int(x, f"{where} {key}") for x in ids)
        missing = [f"0x{x:04X}" for x in out if x not in dids]
        if missing:
            raise EcuSpecError(f"{where} {key}: DIDs not described: {', '.join(missing)}")
        return out

    snapshots = {
        _int(rec, f"{where} snapshot_records"): known(ids, f"snapshot_records[{rec}]")
        for rec, ids in (raw.get("snapshot_records") or {}).items()
    }
    extended_records = {}
    for rec, spec in (raw.get("extended_records") or {}).items():
        number = _int(rec, f"{where} extended_records")
        extended_records[number] = ExtendedRecordSpec(
            number, str(spec.get("name", f"record {number}")), _int(spec.get("length", 1), where)
        )
    return EcuSpec(
        name=str(name),
        description=str(raw.get("description", "")),
        request_id=request_id,
        response_id=response_id,
        extended_ids=extended,
        addressing=addressing,
        target_address=target,
        source_address=source,
        obd=bool(raw.get("obd", False)),
        dids=dids,
        identification=known(raw.get("identification", []), "identification"),
        live=known(raw.get("live", []), "live"),
        snapshot_records=snapshots,
        extended_records=extended_records,
    )


def load_vehicle_spec(path: str | Path) -> VehicleSpec:
    """Read an ECU description file; errors name the file and the ECU/DID at fault."""
    p = Path(path)
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise EcuSpecError(f"{p}: cannot read ({exc.strerror or exc})") from exc
    except json.JSONDecodeError as exc:
        raise EcuSpecError(f"{p}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg})") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("ecus"), list):
        raise EcuSpecError(f"{p}: expected an object with an 'ecus' list")
    ecus = tuple(_ecu(e, f"{p}: ecus[{i}]") for i, e in enumerate(raw["ecus"]))
    names = [e.name for e in ecus]
    if len(set(names)) != len(names):
        raise EcuSpecError(f"{p}: ECU names must be unique")
    return VehicleSpec(
        str(raw.get("vehicle", p.stem)), str(raw.get("manufacturer", "")), ecus, p, str(raw.get("vin", ""))
    )


def demo_vehicle_spec() -> VehicleSpec:
    """The ECUs of the built-in simulated vehicle."""
    from workshop_app.paths import resources_dir

    return load_vehicle_spec(resources_dir() / "ecus" / "demo_vehicle.json")
