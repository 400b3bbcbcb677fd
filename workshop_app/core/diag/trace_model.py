"""The diagnostic trace's records: a transaction (request and its answers) and the whole trace."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from workshop_app.core.diag import service_names as sn
from workshop_app.core.diag.isotp_reassembly import (
    FlowControl,
    IsoTpMessage,
    IsoTpProblem,
)

Value = float | int | str
RESPONSE_TIMEOUT = 5.0  # s: P2*server (ISO 14229-2 default 5 s) bounds a pending wait


def is_pending(payload: bytes) -> bool:
    return len(payload) >= 3 and payload[0] == sn.NEGATIVE_RESPONSE and payload[2] == sn.RESPONSE_PENDING


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
        return sum(1 for r in self.responses if is_pending(r.payload))

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
