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
from collections.abc import Iterable

import numpy as np

from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.diag import service_names as sn
from workshop_app.core.diag.ecu_spec import VehicleSpec
from workshop_app.core.diag.isotp_reassembly import (
    IsoTpMessage,
    StreamKey,
    plausible_pci,
    reassemble,
)
from workshop_app.core.diag.trace_decoding import decode_transaction, decode_with_databases
from workshop_app.core.diag.trace_model import RESPONSE_TIMEOUT, DiagTrace, Transaction
from workshop_app.core.diag.trace_pairing import (
    conventional,
    conventional_partners,
    guess_partner,
    pair_transactions,
    stream_role,
)
from workshop_app.core.diag.trace_text import format_trace_lines, trace_to_dict
from workshop_app.core.logs.columns import EXTENDED, FrameColumns

__all__ = [
    "RESPONSE_TIMEOUT",
    "DiagTrace",
    "Transaction",
    "diagnostic_trace",
    "format_trace_lines",
    "parse_pair",
    "trace_to_dict",
]

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
    fixed = {k for k in present if conventional(k) or k[2] in user_ids}
    screened = plausible_pci(columns) - fixed if guess else set()
    iso = reassemble(columns, fixed | screened)

    by_stream: dict[StreamKey, list[IsoTpMessage]] = {}
    for m in iso.messages:
        by_stream.setdefault(m.stream, []).append(m)
    for msgs in by_stream.values():
        msgs.sort(key=lambda m: m.start)
    roles = {k: stream_role(v) for k, v in by_stream.items()}
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
        for req in conventional_partners(resp, requests):
            link(resp, req, "convention")
        if resp not in links and guess:
            candidates = {q: by_stream[q] for q in requests if q[0] == resp[0] and q != resp}
            partner = guess_partner(by_stream[resp], candidates, timeout)
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
    transactions = pair_transactions(messages, links, columns.channels, timeout)
    for tx in transactions:
        ecu = None
        final = tx.final
        if spec is not None and final is not None:
            ecu = spec.by_response_id(final.can_id)
        if ecu is not None:
            tx.ecu = ecu.name
        decode_transaction(tx, ecu)
    dbc_values = (
        decode_with_databases(transactions, columns.channels, databases) if databases is not None else 0
    )
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
