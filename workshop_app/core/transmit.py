"""Transmit: the names of ``transmit_encode`` (what a frame carries) and ``transmit_jobs``
(sending once or periodically) in one place, for callers that want both."""

from __future__ import annotations

from workshop_app.core.transmit_encode import (
    SignalValue,
    check_frame,
    encode_signals,
    frame_signals,
    parse_frame_text,
    parse_hex_data,
    parse_signal_values,
    signal_default,
)
from workshop_app.core.transmit_jobs import (
    MIN_PERIOD,
    JobStatus,
    TransmitJob,
    TransmitJobs,
    TransmitScheduler,
)

__all__ = [
    "MIN_PERIOD",
    "JobStatus",
    "SignalValue",
    "TransmitJob",
    "TransmitJobs",
    "TransmitScheduler",
    "check_frame",
    "encode_signals",
    "frame_signals",
    "parse_frame_text",
    "parse_hex_data",
    "parse_signal_values",
    "signal_default",
]
