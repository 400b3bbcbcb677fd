"""Which stream answers which: addressing conventions, user pairs and the traffic itself, then
requests matched to their answers in time order."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from workshop_app.core.diag import service_names as sn
from workshop_app.core.diag.isotp_reassembly import (
    IsoTpMessage,
    StreamKey,
    normal_fixed_addresses,
)
from workshop_app.core.diag.trace_model import Transaction, is_pending

# --- pairing -----------------------------------------------------------------------------------


def stream_role(messages: Sequence[IsoTpMessage]) -> str:
    """ "request", "response" or "" for a stream, by the majority of its first bytes."""
    req = sum(1 for m in messages if sn.is_request_sid(m.payload[0]))
    resp = sum(1 for m in messages if sn.is_response_sid(m.payload[0]))
    if req == resp == 0:
        return ""
    return "request" if req > resp else "response"


def conventional(key: StreamKey) -> bool:
    _, extended, can_id = key
    if extended:
        return normal_fixed_addresses(can_id, True) is not None
    return 0x7DF <= can_id <= 0x7EF


def conventional_partners(resp: StreamKey, requests: Iterable[StreamKey]) -> list[StreamKey]:
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


def guess_partner(
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


def pair_transactions(
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
            if not is_pending(m.payload):
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
        if is_pending(m.payload):
            orphans[key] = tx
        else:
            orphans.pop(key, None)
    out.sort(key=lambda t: t.time)
    return out
