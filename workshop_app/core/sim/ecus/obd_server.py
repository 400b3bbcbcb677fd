"""SAE J1979 / ISO 15031-5 OBD-II services of an emission-related ECU (ECM, TCM).

Modes 01 (current data), 03 (confirmed DTCs), 04 (clear), 07 (pending DTCs), 09 (vehicle
information) and 0A (permanent DTCs, here: confirmed with the MIL requested). On CAN the DTC
modes carry a count byte before the 2-byte codes. Emission-related DTCs are the P-codes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from workshop_app.core.diag.dtc import CONFIRMED, PENDING, WARNING_INDICATOR
from workshop_app.core.sim.ecus.dtc_memory import ALL_GROUPS, DtcMemory
from workshop_app.core.sim.vehicle_model import VehicleState

__all__ = ["ObdData", "ObdServer", "emission_related"]

OBD_MODES = frozenset({0x01, 0x03, 0x04, 0x07, 0x09, 0x0A})
_REQUEST_OUT_OF_RANGE = 0x31
_OBD_STANDARD_EOBD = 0x06


def emission_related(dtc: int) -> bool:
    """P-codes (top two bits of the J2012 code 00) are the emission-related DTCs."""
    return dtc >> 22 == 0


@dataclass
class ObdData:
    """The values one mode 01 response is built from (a consistent view of the car)."""

    state: VehicleState
    coolant_c: float  # what the ECU measures (a sensor fault forces it)
    km_since_mil: float
    km_since_clear: float


def _u8(x: float) -> bytes:
    return bytes((min(max(round(x), 0), 0xFF),))


def _u16(x: float) -> bytes:
    return min(max(round(x), 0), 0xFFFF).to_bytes(2, "big")


# PID -> (bytes of the value, from the current data)
_PIDS: dict[int, Callable[[ObdData], bytes]] = {
    0x04: lambda d: _u8(d.state.load * 255.0 / 100.0),
    0x05: lambda d: _u8(d.coolant_c + 40.0),
    0x0C: lambda d: _u16(max(0.0, d.state.rpm - d.state.misfire_dip) * 4.0),
    0x0D: lambda d: _u8(d.state.speed_kmh),
    0x0F: lambda d: _u8(d.state.intake_c + 40.0),
    0x11: lambda d: _u8(d.state.throttle * 255.0 / 100.0),
    0x1C: lambda d: bytes((_OBD_STANDARD_EOBD,)),
    0x21: lambda d: _u16(d.km_since_mil),
    0x31: lambda d: _u16(d.km_since_clear),
    0x42: lambda d: _u16(d.state.battery_v * 1000.0),
    0x46: lambda d: _u8(d.state.outside_c + 40.0),
}


class ObdServer:
    """OBD-II answers of one ECU.

    Args:
        name: four-letter-at-most acronym for mode 09 PID 0A (ECU name).
        long_name: up to 15 characters of the ECU name.
        vin: answered to mode 09 PID 02.
        memory: the ECU's fault memory (modes 03/04/07/0A and PID 01).
        data: a consistent view of the current values, for mode 01.
        pids: the mode 01 data PIDs this ECU supports (range PIDs 00/20/40 follow from them).
        on_clear: called after mode 04 erased the memory (resets the distance since clear).
        sim_time: the vehicle's simulated clock.
    """

    def __init__(
        self,
        name: str,
        long_name: str,
        vin: str,
        memory: DtcMemory,
        data: Callable[[], ObdData],
        pids: frozenset[int],
        sim_time: Callable[[], float],
        on_clear: Callable[[], None] | None = None,
        before_dtc_read: Callable[[], None] | None = None,
        monitors: tuple[int, int, int] = (0x07, 0x65, 0x00),
    ) -> None:
        unknown = pids - set(_PIDS) - {0x01}
        if unknown:
            raise ValueError(f"no J1979 scaling for PIDs {sorted(unknown)}")
        self.memory = memory
        self.vin = vin
        self.ecu_name = (
            name[:4].encode("ascii").ljust(4, b"\x00")
            + b"-"
            + long_name[:15].encode("ascii").ljust(15, b"\x00")
        )
        self._data = data
        self._sim_time = sim_time
        self._on_clear = on_clear or (lambda: None)
        self._before_dtc_read = before_dtc_read or (lambda: None)
        self._monitors = monitors  # PID 01 bytes B, C, D: spark ignition, all complete
        self.pids = self._with_ranges(pids | {0x01})

    @staticmethod
    def _with_ranges(pids: frozenset[int]) -> frozenset[int]:
        """Add the range PIDs (00, 20, 40, ...) that must be answered to reach ``pids``."""
        out = set(pids) | {0x00}
        top = max(pids)
        for base in range(0x20, top, 0x20):
            out.add(base)
        return frozenset(out)

    def _bitmap(self, base: int) -> bytes:
        bits = 0
        for pid in self.pids:
            if base < pid <= base + 0x20:
                bits |= 1 << (base + 0x20 - pid)
        return bits.to_bytes(4, "big")

    def handle(self, request: bytes, functional: bool = False) -> bytes | None:
        """Answer to an OBD-II request (None: stay silent, as J1979 asks for unsupported PIDs)."""
        mode = request[0]
        if mode == 0x01:
            out = self._current_data(request[1:])
        elif mode in (0x03, 0x07, 0x0A):
            out = self._dtcs(mode) if len(request) == 1 else None
        elif mode == 0x04:
            out = self._clear() if len(request) == 1 else None
        elif mode == 0x09:
            out = self._vehicle_info(request[1:])
        else:
            out = None
        if out is None and not functional:
            return bytes((0x7F, mode, _REQUEST_OUT_OF_RANGE))
        return out

    def _current_data(self, pids: bytes) -> bytes | None:
        if not 1 <= len(pids) <= 6:
            return None
        data: ObdData | None = None
        body = bytearray()
        for pid in pids:
            if pid not in self.pids:
                continue  # unsupported PIDs are left out of a multi-PID answer
            if pid % 0x20 == 0:
                value = self._bitmap(pid)
            elif pid == 0x01:
                value = self._monitor_status()
            else:
                data = data or self._data()
                value = _PIDS[pid](data)
            body += bytes((pid,)) + value
        return b"\x41" + bytes(body) if body else None

    def _monitor_status(self) -> bytes:
        self._before_dtc_read()
        records = [r for r in self.memory.records() if emission_related(r.code)]
        mil = any(r.status & WARNING_INDICATOR for r in records)
        count = min(sum(1 for r in records if r.status & CONFIRMED), 0x7F)
        return bytes((0x80 * mil | count, *self._monitors))

    def _dtcs(self, mode: int) -> bytes:
        self._before_dtc_read()
        wanted = {0x03: CONFIRMED, 0x07: PENDING, 0x0A: CONFIRMED | WARNING_INDICATOR}[mode]
        codes = [
            r.code >> 8
            for r in self.memory.records()
            if emission_related(r.code) and r.status & wanted == wanted
        ]
        return bytes((mode + 0x40, len(codes))) + b"".join(c.to_bytes(2, "big") for c in codes)

    def _clear(self) -> bytes:
        self.memory.clear(ALL_GROUPS, self._sim_time(), only=emission_related)
        self._on_clear()
        return b"\x44"

    def _vehicle_info(self, pids: bytes) -> bytes | None:
        if len(pids) != 1:
            return None
        pid = pids[0]
        if pid == 0x00:
            # Supported: 02 (VIN) and 0A (ECU name).
            return b"\x49\x00" + ((1 << (32 - 0x02)) | (1 << (32 - 0x0A))).to_bytes(4, "big")
        if pid == 0x02:
            return b"\x49\x02\x01" + self.vin.encode("ascii")[:17].ljust(17, b"\x00")
        if pid == 0x0A:
            return b"\x49\x0a\x01" + self.ecu_name
        return None
