"""Diagnostic trace of a recorded log: ISO-TP messages paired into request/response transactions
and decoded as UDS (ISO 14229), KWP2000 local identifiers or OBD-II (SAE J1979).

Which id answers which comes from the addressing conventions (0x7E0-0x7E7 ↔ +8 with 0x7DF as the
functional request, 0x18DA<TA><SA> ↔ 0x18DA<SA><TA> with 0x18DB..<SA> functional), from pairs the
user gives, and otherwise from the traffic itself: a stream of request SIDs whose answers
(SID + 0x40 or 0x7F SID) follow on another stream. Whether a message is a request or a response
is read from its first byte (bit 6 is the response bit), never assumed from the id.
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.decode.vectorized import decode_columns
from workshop_app.core.diag import service_names as sn
from workshop_app.core.diag.dtc import sae_code, sae_from_two_bytes, status_words
from workshop_app.core.diag.ecu_spec import EcuSpec, VehicleSpec
from workshop_app.core.diag.isotp_reassembly import (
    FlowControl,
    IsoTpMessage,
    IsoTpProblem,
    StreamKey,
    normal_fixed_addresses,
    plausible_pci,
    reassemble,
)
from workshop_app.core.logs.columns import EXTENDED, FrameColumns, channel_value
from workshop_app.core.types import channel_label

Value = float | int | str
RESPONSE_TIMEOUT = 5.0  # s: P2*server (ISO 14229-2 default 5 s) bounds a pending wait
_TEXT_BYTES = 16  # raw bytes shown in a line before it is cut with "…"


@dataclass
class Transaction:
    """One request and what answered it; either side may be missing from the log."""

    request: IsoTpMessage | None
    responses: list[IsoTpMessage] = field(default_factory=list)  # 0x78 pending ones first
    channel: str = ""
    ecu: str = ""  # from the VehicleSpec, when it knows the response id
    text: str = ""
    values: dict[str, Value] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)

    @property
    def final(self) -> IsoTpMessage | None:
        """The last response: the answer once the pending ones are over."""
        return self.responses[-1] if self.responses else None

    @property
    def time(self) -> float:
        first = self.request or self.responses[0]
        return first.start

    @property
    def service(self) -> int | None:
        """The request SID (derived from the response when the request was not logged)."""
        if self.request is not None and self.request.payload:
            return self.request.payload[0]
        final = self.final
        if final is None or not final.payload:
            return None
        if final.payload[0] == sn.NEGATIVE_RESPONSE:
            return final.payload[1] if len(final.payload) > 1 else None
        return final.payload[0] - sn.POSITIVE_OFFSET

    @property
    def service_name(self) -> str:
        sid = self.service
        return "?" if sid is None else sn.service_name(sid)

    @property
    def latency_ms(self) -> float | None:
        """Request end to the first response (a pending one counts: the ECU did answer)."""
        if self.request is None or not self.responses:
            return None
        return (self.responses[0].start - self.request.end) * 1000

    @property
    def total_ms(self) -> float | None:
        """Request end to the final response (longer than the latency after 0x78 pending)."""
        if self.request is None or not self.responses:
            return None
        return (self.responses[-1].start - self.request.end) * 1000

    @property
    def pending(self) -> int:
        return sum(1 for r in self.responses if _is_pending(r.payload))

    @property
    def nrc(self) -> int | None:
        final = self.final
        if final is None or len(final.payload) < 3 or final.payload[0] != sn.NEGATIVE_RESPONSE:
            return None
        return final.payload[2]


@dataclass
class DiagTrace:
    transactions: list[Transaction]
    problems: list[IsoTpProblem]
    flow_controls: list[FlowControl]
    pairs: list[tuple[str, int, int, str]]  # (channel, request id, response id, how found)
    channels: tuple[str, ...]
    start: float  # first frame of the log, for relative times
    seconds: float  # time the trace took
    dbc_values: int = 0  # signal values decoded with the databases

    @property
    def summary(self) -> dict[str, int]:
        tx = self.transactions
        return {
            "transactions": len(tx),
            "requests": sum(1 for t in tx if t.request is not None),
            "responses": sum(len(t.responses) for t in tx),
            "answered": sum(1 for t in tx if t.request is not None and t.responses),
            "unanswered": sum(1 for t in tx if t.request is not None and not t.responses),
            "without_request": sum(1 for t in tx if t.request is None),
            "negative": sum(1 for t in tx if t.nrc is not None),
            "pending": sum(t.pending for t in tx),
            "problems": len(self.problems),
            "flow_controls": len(self.flow_controls),
        }

    @property
    def services(self) -> dict[str, int]:
        return dict(Counter(t.service_name for t in self.transactions).most_common())


# --- pairing -----------------------------------------------------------------------------------


def _is_pending(payload: bytes) -> bool:
    return len(payload) >= 3 and payload[0] == sn.NEGATIVE_RESPONSE and payload[2] == sn.RESPONSE_PENDING


def _role(messages: Sequence[IsoTpMessage]) -> str:
    """ "request", "response" or "" for a stream, by the majority of its first bytes."""
    req = sum(1 for m in messages if sn.is_request_sid(m.payload[0]))
    resp = sum(1 for m in messages if sn.is_response_sid(m.payload[0]))
    if req == resp == 0:
        return ""
    return "request" if req > resp else "response"


def _conventional(key: StreamKey) -> bool:
    _, extended, can_id = key
    if extended:
        return normal_fixed_addresses(can_id, True) is not None
    return 0x7DF <= can_id <= 0x7EF


def _conventional_partners(resp: StreamKey, requests: Iterable[StreamKey]) -> list[StreamKey]:
    """Request streams that address the ECU answering on ``resp`` by convention."""
    channel, extended, can_id = resp
    out = []
    if not extended:
        if 0x7E8 <= can_id <= 0x7EF:
            out = [k for k in requests if k[0] == channel and not k[1] and k[2] in (can_id - 8, 0x7DF)]
        return out
    addr = normal_fixed_addresses(can_id, True)
    if addr is None or addr[2]:
        return out
    ta, sa, _ = addr  # the response goes from the ECU (sa) to the tester (ta)
    for k in requests:
        if k[0] != channel or not k[1]:
            continue
        other = normal_fixed_addresses(k[2], True)
        if other is None:
            continue
        o_ta, o_sa, functional = other
        if o_sa == ta and (functional or o_ta == sa):
            out.append(k)
    return out


def _guess_partner(
    resp_msgs: list[IsoTpMessage], candidates: dict[StreamKey, list[IsoTpMessage]], timeout: float
) -> StreamKey | None:
    """The request stream whose requests the responses answer most often (at least half)."""
    best: tuple[int, StreamKey] | None = None
    for key, reqs in candidates.items():
        ends = [r.end for r in reqs]
        hits = 0
        for m in resp_msgs:
            i = bisect_right(ends, m.start) - 1
            if i >= 0 and m.start - ends[i] <= timeout and sn.answers(reqs[i].payload[0], m.payload):
                hits += 1
        if hits and (best is None or hits > best[0]):
            best = (hits, key)
    if best is None or best[0] * 2 < len(resp_msgs):
        return None
    return best[1]


def _functional(key: StreamKey) -> bool:
    _, extended, can_id = key
    if not extended:
        return can_id == 0x7DF
    addr = normal_fixed_addresses(can_id, True)
    return addr is not None and addr[2]


@dataclass
class _Open:
    """A request still waiting for (more) answers."""

    request: IsoTpMessage
    stream: StreamKey
    functional: bool
    by_responder: dict[StreamKey, Transaction] = field(default_factory=dict)
    placeholder: Transaction | None = None  # the transaction nobody answered yet
    done: set[StreamKey] = field(default_factory=set)  # responders that gave a final answer
    last: float = 0.0


def _pair(
    messages: list[IsoTpMessage],
    links: dict[StreamKey, list[StreamKey]],
    channels: tuple[str, ...],
    timeout: float,
) -> list[Transaction]:
    """Walk the messages in time order and attach each response to its open request."""

    def name(c: int) -> str:
        return channels[c] if c < len(channels) else str(c)

    out: list[Transaction] = []
    open_: dict[StreamKey, _Open] = {}
    orphans: dict[StreamKey, Transaction] = {}  # unrequested responses still pending
    for m in sorted(messages, key=lambda m: (m.start, m.end)):
        key = m.stream
        sid = m.payload[0]
        if key not in links and sn.is_request_sid(sid):
            asked = Transaction(request=m, channel=name(m.channel))
            out.append(asked)
            open_[key] = _Open(m, key, _functional(key), placeholder=asked, last=m.end)
            continue
        # A response: the most recent open request it answers, on a stream linked to this one.
        best: _Open | None = None
        for q in links.get(key, ()):
            o = open_.get(q)
            if o is None or key in o.done or m.start - o.last > timeout or m.start < o.request.start:
                continue
            if sn.answers(o.request.payload[0], m.payload) and (
                best is None or o.request.end > best.request.end
            ):
                best = o
        if best is not None:
            tx = best.by_responder.get(key)
            if tx is None:
                if best.placeholder is not None:
                    tx = best.placeholder
                    best.placeholder = None
                else:  # a second ECU answering a functional request gets its own transaction
                    tx = Transaction(request=best.request, channel=name(m.channel))
                    out.append(tx)
                best.by_responder[key] = tx
            tx.responses.append(m)
            best.last = m.start
            if not _is_pending(m.payload):
                best.done.add(key)
                if not best.functional:
                    del open_[best.stream]
            continue
        tx = orphans.get(key)
        if (
            tx is not None
            and m.start - tx.responses[-1].start <= timeout
            and sn.answers(tx.service or -1, m.payload)
        ):
            tx.responses.append(m)
        else:
            tx = Transaction(request=None, responses=[m], channel=name(m.channel))
            out.append(tx)
        if _is_pending(m.payload):
            orphans[key] = tx
        else:
            orphans.pop(key, None)
    out.sort(key=lambda t: t.time)
    return out


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


def _decode(tx: Transaction, ecu: EcuSpec | None) -> None:
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


def _dbc_decode(transactions: list[Transaction], channels: tuple[str, ...], databases: DatabaseSet) -> int:
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


# --- entry point -------------------------------------------------------------------------------


def parse_pair(text: str) -> tuple[int, int]:
    """``"0x79B:0x7BB"`` → (0x79B, 0x7BB): request id, response id."""
    req, sep, resp = text.partition(":")
    if not sep:
        raise ValueError(f"{text!r}: expected REQUEST:RESPONSE ids, like 0x79B:0x7BB")
    try:
        return int(req.strip(), 16), int(resp.strip(), 16)
    except ValueError:
        raise ValueError(f"{text!r}: ids must be hexadecimal, like 0x79B:0x7BB") from None


def diagnostic_trace(
    columns: FrameColumns,
    *,
    pairs: Iterable[tuple[int, int]] = (),
    spec: VehicleSpec | None = None,
    databases: DatabaseSet | None = None,
    timeout: float = RESPONSE_TIMEOUT,
    guess: bool = True,
) -> DiagTrace:
    """Reassemble, pair and decode the diagnostic traffic of a log.

    ``pairs`` are (request id, response id) the conventions do not cover; ids above 0x7FF are
    taken as 29-bit. ``guess`` pairs other ISO-TP-looking streams by what answers what.
    """
    t0 = time.perf_counter()
    user = [(int(a), int(b)) for a, b in pairs]
    user_ids = {i for p in user for i in p}
    ext = (columns.flags & np.uint8(EXTENDED)) != 0
    present: set[StreamKey] = set()
    if len(columns):
        keys = (columns.channel.astype(np.uint64) << np.uint64(30)) | (ext.astype(np.uint64) << np.uint64(29))
        keys |= columns.arbitration_id.astype(np.uint64)
        present = {(k >> 30, bool(k >> 29 & 1), k & 0x1FFFFFFF) for k in np.unique(keys).tolist()}
    fixed = {k for k in present if _conventional(k) or k[2] in user_ids}
    screened = plausible_pci(columns) - fixed if guess else set()
    iso = reassemble(columns, fixed | screened)

    by_stream: dict[StreamKey, list[IsoTpMessage]] = {}
    for m in iso.messages:
        by_stream.setdefault(m.stream, []).append(m)
    for msgs in by_stream.values():
        msgs.sort(key=lambda m: m.start)
    roles = {k: _role(v) for k, v in by_stream.items()}
    requests = [k for k, r in roles.items() if r == "request"]
    links: dict[StreamKey, list[StreamKey]] = {}
    found: list[tuple[str, int, int, str]] = []

    def name(c: int) -> str:
        return columns.channels[c] if c < len(columns.channels) else str(c)

    def link(resp: StreamKey, req: StreamKey, how: str) -> None:
        if req not in links.setdefault(resp, []):
            links[resp].append(req)
            found.append((name(resp[0]), req[2], resp[2], how))

    for resp in sorted(by_stream):
        if roles[resp] != "response":
            continue
        for a, b in user:
            if resp[2] == b:
                for req in requests:
                    if req[0] == resp[0] and req[2] == a:
                        link(resp, req, "given")
        for req in _conventional_partners(resp, requests):
            link(resp, req, "convention")
        if resp not in links and guess:
            candidates = {q: by_stream[q] for q in requests if q[0] == resp[0] and q != resp}
            partner = _guess_partner(by_stream[resp], candidates, timeout)
            if partner is not None:
                link(resp, partner, "guessed")

    # Streams kept: by convention or user pair, or paired by the guess; the rest of what the
    # pre-screen let through (cyclic frames that happen to look like ISO-TP) is dropped.
    keep = set(fixed) | set(links) | {q for qs in links.values() for q in qs}
    # Responses whose requests were not logged (the Kona log) still belong in the trace, when
    # the stream is clearly diagnostic: nearly all its messages start with a response SID.
    for key, msgs in by_stream.items():
        answers = sum(1 for m in msgs if sn.is_response_sid(m.payload[0]))
        if key not in keep and len(msgs) >= 2 and answers >= 0.9 * len(msgs):
            keep.add(key)
    messages = [m for m in iso.messages if m.stream in keep and m.payload]
    transactions = _pair(messages, links, columns.channels, timeout)
    for tx in transactions:
        ecu = None
        final = tx.final
        if spec is not None and final is not None:
            ecu = spec.by_response_id(final.can_id)
        if ecu is not None:
            tx.ecu = ecu.name
        _decode(tx, ecu)
    dbc_values = _dbc_decode(transactions, columns.channels, databases) if databases is not None else 0
    problems = [p for p in iso.problems if (p.channel, p.extended, p.can_id) in keep]
    flow = [f for f in iso.flow_controls if (f.channel, f.extended, f.can_id) in keep]
    start = float(columns.timestamp[0]) if len(columns) else 0.0
    return DiagTrace(
        transactions,
        problems,
        flow,
        found,
        columns.channels,
        start,
        time.perf_counter() - t0,
        dbc_values,
    )


def _id_text(can_id: int, extended: bool) -> str:
    return f"0x{can_id:08X}" if extended else f"0x{can_id:03X}"


def format_trace_lines(trace: DiagTrace, limit: int | None = None) -> list[str]:
    """Terminal lines: one per transaction (time relative to the log start), then problems."""
    lines = []
    for tx in trace.transactions[:limit] if limit is not None else trace.transactions:
        req, final = tx.request, tx.final
        ids = (
            f"{_id_text(req.can_id, req.extended) if req else '?':>10}→"
            f"{_id_text(final.can_id, final.extended) if final else '?':<10}"
        )
        latency = f"{tx.total_ms:7.1f} ms" if tx.total_ms is not None else " " * 10
        ecu = f" {tx.ecu}" if tx.ecu else ""
        lines.append(f"{tx.time - trace.start:10.3f} {tx.channel:>4} {ids} {latency}{ecu}  {tx.text}")
    shown = len(lines)
    if shown < len(trace.transactions):
        lines.append(f"… {len(trace.transactions) - shown} more transaction(s)")
    for p in trace.problems[: 20 if limit is None else min(limit, 20)]:
        ch = trace.channels[p.channel] if p.channel < len(trace.channels) else str(p.channel)
        lines.append(
            f"{p.time - trace.start:10.3f} {ch:>4} {_id_text(p.can_id, p.extended)} problem: {p.text}"
        )
    if len(trace.problems) > 20:
        lines.append(f"… {len(trace.problems) - 20} more problem(s)")
    s = trace.summary
    lines.append(
        f"{s['transactions']} transactions: {s['answered']} answered, {s['unanswered']} unanswered, "
        f"{s['without_request']} without a logged request, {s['negative']} negative, "
        f"{s['pending']} pending; {s['problems']} ISO-TP problem(s)"
    )
    for channel, req_id, resp_id, how in trace.pairs:
        lines.append(f"  pair {channel}: 0x{req_id:X} → 0x{resp_id:X} ({how})")
    return lines


def trace_to_dict(trace: DiagTrace, limit: int | None = None) -> dict[str, object]:
    """A JSON-ready form of the trace (payloads as hex strings, times relative to the log)."""

    def msg(m: IsoTpMessage | None) -> dict[str, object] | None:
        if m is None:
            return None
        return {
            "start": round(m.start - trace.start, 6),
            "end": round(m.end - trace.start, 6),
            "id": m.can_id,
            "extended": m.extended,
            "frames": m.frames,
            "data": m.payload.hex(),
        }

    txs = trace.transactions[:limit] if limit is not None else trace.transactions
    return {
        "summary": trace.summary,
        "services": trace.services,
        "pairs": [{"channel": c, "request": a, "response": b, "how": h} for c, a, b, h in trace.pairs],
        "transactions": [
            {
                "time": round(tx.time - trace.start, 6),
                "channel": tx.channel,
                "ecu": tx.ecu,
                "service": tx.service_name,
                "request": msg(tx.request),
                "responses": [msg(r) for r in tx.responses],
                "latency_ms": None if tx.latency_ms is None else round(tx.latency_ms, 3),
                "total_ms": None if tx.total_ms is None else round(tx.total_ms, 3),
                "nrc": tx.nrc,
                "text": tx.text,
                "values": tx.values,
                "units": tx.units,
            }
            for tx in txs
        ],
        "problems": [
            {"time": round(p.time - trace.start, 6), "id": p.can_id, "kind": p.kind, "text": p.text}
            for p in trace.problems
        ],
    }
