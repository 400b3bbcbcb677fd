"""Plain-words text and values of each transaction: UDS, KWP2000 and OBD-II, and signals of
the user's databases found in reassembled payloads."""

from __future__ import annotations

import numpy as np

from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.decode.vectorized import decode_columns
from workshop_app.core.diag import service_names as sn
from workshop_app.core.diag.dtc import sae_code, sae_from_two_bytes, status_words
from workshop_app.core.diag.ecu_spec import EcuSpec
from workshop_app.core.diag.isotp_reassembly import (
    IsoTpMessage,
)
from workshop_app.core.diag.trace_model import Transaction, Value
from workshop_app.core.logs.columns import EXTENDED, FrameColumns, channel_value
from workshop_app.core.types import channel_label

_TEXT_BYTES = 16  # raw bytes shown in a line before it is cut with "…"

# --- decoding ----------------------------------------------------------------------------------


def _hex(data: bytes, limit: int = _TEXT_BYTES) -> str:
    text = data[:limit].hex(" ").upper()
    return f"{text} … ({len(data)} B)" if len(data) > limit else text


def _ascii_or_hex(data: bytes) -> str:
    stripped = data.rstrip(b"\x00 \xff")
    if stripped and all(32 <= b < 127 for b in stripped):
        return stripped.decode("ascii")
    return data.hex(" ").upper()


def _fmt(value: Value, unit: str = "") -> str:
    shown = f"{value:.6g}" if isinstance(value, float) else str(value)
    return f"{shown} {unit}".strip()


class _Decoded:
    """Text parts and values collected while decoding one message."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.values: dict[str, Value] = {}
        self.units: dict[str, str] = {}

    def value(self, key: str, value: Value, unit: str = "") -> None:
        self.values[key] = value
        if unit:
            self.units[key] = unit
        self.parts.append(f"{key}={_fmt(value, unit)}")


def _request_text(payload: bytes) -> str:
    sid = payload[0]
    name = sn.service_name(sid)
    rest = payload[1:]
    if sid == 0x01 and rest:  # OBD mode 01: a list of PIDs
        pids = [sn.OBD_PIDS[p].name if p in sn.OBD_PIDS else f"PID {p:02X}" for p in rest]
        return f"{name}: " + ", ".join(f"{p:02X} {n}" for p, n in zip(rest, pids, strict=True))
    if sid == 0x09 and rest:
        return f"{name}: {sn.OBD_INFO_TYPES.get(rest[0], f'info type {rest[0]:02X}')}"
    if sid in (0x22, 0x2E) and len(rest) >= 2:
        dids = [int.from_bytes(rest[i : i + 2], "big") for i in range(0, len(rest) - 1, 2)]
        if sid == 0x2E:
            dids = dids[:1]
        return f"{name} " + ", ".join(_did_label(d, None) for d in dids)
    if sid in (0x21, 0x1A, 0x3B) and rest:
        return f"{name} 0x{rest[0]:02X}"
    if sid in sn.SERVICES_WITH_SUB_FUNCTION and rest:
        suppress = " (no positive response)" if rest[0] & sn.SUPPRESS_POSITIVE else ""
        extra = f" {_hex(rest[1:])}" if len(rest) > 1 else ""
        return f"{name} {sn.sub_function_name(sid, rest[0])}{suppress}{extra}"
    return f"{name} {_hex(rest)}".rstrip()


def _did_label(did: int, ecu: EcuSpec | None) -> str:
    if ecu is not None and did in ecu.dids:
        return f"{did:04X} {ecu.dids[did].name}"
    if did in sn.STANDARD_DIDS:
        return f"{did:04X} {sn.STANDARD_DIDS[did]}"
    return f"{did:04X}"


def _decode_dids(data: bytes, requested: list[int], ecu: EcuSpec | None, out: _Decoded) -> None:
    """Positive 0x62 data: DID, value, DID, value, ... (lengths from the spec when it has them)."""
    pos = 0
    while pos + 2 <= len(data):
        did = int.from_bytes(data[pos : pos + 2], "big")
        pos += 2
        spec = ecu.dids.get(did) if ecu is not None else None
        if spec is not None and pos + spec.length <= len(data):
            value = spec.decode(data[pos : pos + spec.length])
            out.value(spec.name, value, spec.unit)
            pos += spec.length
            continue
        # Without a layout the DID's data runs to the next requested DID, or to the end.
        later = [d for d in requested if d != did]
        end = len(data)
        for d in later:
            at = data.find(d.to_bytes(2, "big"), pos)
            if at >= 0:
                end = min(end, at)
        chunk = data[pos:end]
        label = sn.STANDARD_DIDS.get(did, f"DID {did:04X}")
        if did in sn.STANDARD_DIDS:
            out.value(label, _ascii_or_hex(chunk))
        else:
            out.values[label] = chunk.hex(" ").upper()
            out.parts.append(f"{label}: {_hex(chunk)}")
        pos = end


def _decode_dtc_info(data: bytes, out: _Decoded) -> None:
    """Positive 0x59 data (after the SID): the DTC list forms and the DTC counts."""
    if not data:
        return
    sub = data[0] & 0x7F
    out.parts.append(sn.sub_function_name(0x19, sub))
    if sub in (0x01, 0x07, 0x11, 0x12) and len(data) >= 5:
        out.value("DTC count", int.from_bytes(data[3:5], "big"))
        return
    if sub in (0x02, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x13, 0x15, 0x17) and len(data) >= 2:
        records = data[2:]
        codes = []
        for i in range(0, len(records) - 3, 4):
            code = int.from_bytes(records[i : i + 3], "big")
            status = records[i + 3]
            words = ", ".join(status_words(status)) or "no status bits"
            codes.append(f"{sae_code(code)} ({words})")
        out.values["DTCs"] = "; ".join(codes)
        out.values["DTC count"] = len(codes)
        out.parts.append(f"{len(codes)} DTC(s)" + (": " + "; ".join(codes) if codes else ""))
        return
    out.parts.append(_hex(data[1:]))


def _decode_obd_pids(data: bytes, out: _Decoded, freeze: bool = False) -> None:
    """Mode 01 (or 02, with a frame number after each PID) data: PID, bytes, PID, bytes..."""
    pos = 0
    while pos < len(data):
        pid = data[pos]
        pos += 1 + (1 if freeze else 0)
        spec = sn.OBD_PIDS.get(pid)
        if spec is None or pos + spec.length > len(data):
            out.parts.append(f"PID {pid:02X}: {_hex(data[pos:])}")
            return
        value = spec.decode(data[pos : pos + spec.length])
        out.value(spec.name, value, spec.unit)
        pos += spec.length


def _decode_obd_dtcs(data: bytes, out: _Decoded) -> None:
    """Modes 03/07/0A: on CAN a count byte, then two bytes per code (J1979)."""
    # Without a matching count byte: the non-CAN layout, codes only, zero-padded.
    pairs = data[1:] if data and len(data) - 1 == 2 * data[0] else data
    codes = [
        sae_from_two_bytes(int.from_bytes(pairs[i : i + 2], "big"))
        for i in range(0, len(pairs) - 1, 2)
        if pairs[i] or pairs[i + 1]
    ]
    out.values["DTCs"] = " ".join(codes)
    out.values["DTC count"] = len(codes)
    out.parts.append(f"{len(codes)} DTC(s)" + (": " + " ".join(codes) if codes else ""))


def _decode_obd_info(data: bytes, out: _Decoded) -> None:
    """Mode 09: info type, number of data items, then the data (ASCII for VIN, CALID, ECU name)."""
    if not data:
        return
    info = data[0]
    body = data[2:] if len(data) > 1 else b""
    label = sn.OBD_INFO_TYPES.get(info, f"Info type {info:02X}")
    if info == 0x02:
        out.value("VIN", body.decode("latin-1").strip("\x00 "))
    elif info in (0x04, 0x0A):
        out.value(label, _ascii_or_hex(body))
    elif info in (0x01, 0x03, 0x05) and len(data) >= 2:
        out.value(label, data[1])
    else:
        out.parts.append(f"{label}: {_hex(data[1:])}")


def _response_text(payload: bytes, request: bytes | None, ecu: EcuSpec | None, out: _Decoded) -> None:
    sid = payload[0]
    if sid == sn.NEGATIVE_RESPONSE:
        asked = payload[1] if len(payload) > 1 else 0
        code = payload[2] if len(payload) > 2 else 0
        out.values["NRC"] = code
        out.parts.append(f"negative response to {sn.service_name(asked)}: 0x{code:02X} {sn.nrc_name(code)}")
        return
    req = sid - sn.POSITIVE_OFFSET
    data = payload[1:]
    if req == 0x01:
        _decode_obd_pids(data, out)
    elif req == 0x02:
        _decode_obd_pids(data, out, freeze=True)
    elif req in (0x03, 0x07, 0x0A):
        _decode_obd_dtcs(data, out)
    elif req == 0x09:
        _decode_obd_info(data, out)
    elif req == 0x22:
        requested = []
        if request is not None and len(request) >= 3:
            requested = [int.from_bytes(request[i : i + 2], "big") for i in range(1, len(request) - 1, 2)]
        _decode_dids(data, requested, ecu, out)
    elif req == 0x19:
        _decode_dtc_info(data, out)
    elif req == 0x10 and data:
        out.parts.append(sn.sub_function_name(0x10, data[0]))
        if len(data) >= 5:
            out.value("P2", int.from_bytes(data[1:3], "big"), "ms")
            out.value("P2*", int.from_bytes(data[3:5], "big") * 10, "ms")
    elif req in (0x21, 0x1A) and data:  # KWP local identifier: layout is vehicle specific
        out.values["local identifier"] = data[0]
        out.parts.append(f"local identifier 0x{data[0]:02X}: {_hex(data[1:])}")
    elif req == 0x2E and len(data) >= 2:
        out.parts.append(f"wrote {_did_label(int.from_bytes(data[:2], 'big'), ecu)}")
    elif req == 0x27 and data:
        kind = "seed" if data[0] % 2 else "key accepted"
        out.parts.append(f"{sn.sub_function_name(0x27, data[0])} {kind} {_hex(data[1:])}".rstrip())
    elif req == 0x31 and len(data) >= 3:
        out.parts.append(
            f"{sn.sub_function_name(0x31, data[0])} routine {int.from_bytes(data[1:3], 'big'):04X} {_hex(data[3:])}"
        )
    elif req in sn.SERVICES_WITH_SUB_FUNCTION and data:
        out.parts.append(f"{sn.sub_function_name(req, data[0])} {_hex(data[1:])}".rstrip())
    else:
        out.parts.append(_hex(data) or "ok")


def decode_transaction(tx: Transaction, ecu: EcuSpec | None) -> None:
    req = tx.request.payload if tx.request is not None else None
    final = tx.final
    head = _request_text(req) if req is not None else f"({tx.service_name}, request not logged)"
    if final is None:
        tx.text = f"{head} → no response"
        return
    out = _Decoded()
    _response_text(final.payload, req, ecu, out)
    tx.values.update(out.values)
    tx.units.update(out.units)
    pending = f" [{tx.pending}× pending]" if tx.pending else ""
    tx.text = f"{head} → {', '.join(out.parts)}{pending}"


# --- DBC decoding of reassembled payloads ------------------------------------------------------


def _dbc_offset(message: object) -> int:
    """Bytes the DBC expects in front of the service id.

    The css UDS DBCs multiplex on the service byte at byte 1 (their tooling keeps one ISO-TP
    length byte in front); a DBC whose root multiplexer sits elsewhere tells us its layout the
    same way. Without a multiplexer the PCI-stripped payload is used as it is.
    """
    for signal in getattr(message, "signals", ()):
        if signal.is_multiplexer and signal.multiplexer_ids is None:
            return int(signal.start) // 8
    return 0


def decode_with_databases(
    transactions: list[Transaction], channels: tuple[str, ...], databases: DatabaseSet
) -> int:
    """Decode reassembled messages with the databases; values land in each transaction."""
    labels = [channel_label(channel_value(c)) for c in channels] or ["can0"]
    rows: list[tuple[int, IsoTpMessage, bytes, int]] = []  # (transaction, message, bytes, min length)
    for i, tx in enumerate(transactions):
        for m in (tx.request, tx.final):
            if m is None:
                continue
            label = labels[m.channel] if m.channel < len(labels) else f"can{m.channel}"
            message = databases.lookup(label, m.can_id, m.extended)
            if message is None:
                continue
            lead = _dbc_offset(message)
            # The css tooling's lead byte is the ISO-TP length's low byte; keep the same.
            data = bytes([len(m.payload) & 0xFF]) * lead + m.payload
            rows.append((i, m, data, int(message.length)))
    if not rows:
        return 0
    width = max(max(len(r[2]), r[3]) for r in rows)
    n = len(rows)

    def columns(fill: int) -> FrameColumns:
        # Short payloads are padded to the DBC length twice, with 0x00 and 0xFF: a signal that
        # reads the same from both lies inside the real bytes, the others are dropped.
        payload = np.full((n, width), fill, np.uint8)
        for j, (_, _, data, _) in enumerate(rows):
            payload[j, : len(data)] = np.frombuffer(data, np.uint8)
        return FrameColumns(
            timestamp=np.arange(n, dtype=np.float64),  # row number: maps values back exactly
            channel=np.array([r[1].channel for r in rows], np.uint8),
            arbitration_id=np.array([r[1].can_id for r in rows], np.uint32),
            flags=np.array([EXTENDED if r[1].extended else 0 for r in rows], np.uint8),
            length=np.array([min(max(len(r[2]), r[3]), 255) for r in rows], np.uint8),
            payload=payload,
            channels=channels,
        )

    low = decode_columns(columns(0x00), databases)
    high = decode_columns(columns(0xFF), databases)
    # Multiplexer signals (service, DID) only repeat what the decoded text already says.
    selectors = {
        (m.name, s.name)
        for d in databases.databases
        for m in d.db.messages
        for s in m.signals
        if s.is_multiplexer
    }
    count = 0
    for key, sig in low.signals.items():
        other = high.signals.get(key)
        if other is None or len(other) != len(sig):
            continue
        same = (sig.values == other.values) | (np.isnan(sig.values) & np.isnan(other.values))
        for row, value, ok in zip(sig.timestamps.tolist(), sig.values.tolist(), same.tolist(), strict=True):
            if not ok:
                continue
            tx = transactions[rows[int(row)][0]]
            name = f"{sig.message}.{sig.name}"
            raw = int(value) if float(value).is_integer() else value
            shown: Value = sig.choices.get(raw, raw) if isinstance(raw, int) and sig.choices else raw
            tx.values[name] = shown
            if sig.unit:
                tx.units[name] = sig.unit
            if key not in selectors:
                tx.text += f", {name}={_fmt(shown, sig.unit)}"
            count += 1
    return count
