"""A diagnostic trace as terminal lines or a JSON-ready dict."""

from __future__ import annotations

from workshop_app.core.diag.isotp_reassembly import (
    IsoTpMessage,
)
from workshop_app.core.diag.trace_model import DiagTrace


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
