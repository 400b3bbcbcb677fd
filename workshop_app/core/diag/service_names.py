"""Names and formulas of diagnostic services: UDS (ISO 14229-1), KWP2000 local identifiers,
negative response codes and OBD-II (SAE J1979) modes and mode 01 PIDs.

Tables only, no parsing of whole messages (that is ``trace``'s job). The PID formulas are
written from the J1979 definitions: ``A``, ``B``, ... are the data bytes after the PID.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

NEGATIVE_RESPONSE = 0x7F
RESPONSE_PENDING = 0x78
POSITIVE_OFFSET = 0x40  # a positive response's SID is the request's SID + 0x40
SUPPRESS_POSITIVE = 0x80  # bit 7 of a sub-function byte: "do not answer positively"

UDS_SERVICES: dict[int, str] = {
    0x10: "DiagnosticSessionControl",
    0x11: "ECUReset",
    0x14: "ClearDiagnosticInformation",
    0x19: "ReadDTCInformation",
    0x22: "ReadDataByIdentifier",
    0x23: "ReadMemoryByAddress",
    0x24: "ReadScalingDataByIdentifier",
    0x27: "SecurityAccess",
    0x28: "CommunicationControl",
    0x29: "Authentication",
    0x2A: "ReadDataByPeriodicIdentifier",
    0x2C: "DynamicallyDefineDataIdentifier",
    0x2E: "WriteDataByIdentifier",
    0x2F: "InputOutputControlByIdentifier",
    0x31: "RoutineControl",
    0x34: "RequestDownload",
    0x35: "RequestUpload",
    0x36: "TransferData",
    0x37: "RequestTransferExit",
    0x38: "RequestFileTransfer",
    0x3D: "WriteMemoryByAddress",
    0x3E: "TesterPresent",
    0x83: "AccessTimingParameter",
    0x84: "SecuredDataTransmission",
    0x85: "ControlDTCSetting",
    0x86: "ResponseOnEvent",
    0x87: "LinkControl",
}

# KWP2000 (ISO 14230-3) services that UDS dropped; many tools still poll them over ISO-TP.
KWP_SERVICES: dict[int, str] = {
    0x12: "ReadFreezeFrameData",
    0x13: "ReadDiagnosticTroubleCodes",
    0x17: "ReadStatusOfDiagnosticTroubleCodes",
    0x18: "ReadDiagnosticTroubleCodesByStatus",
    0x1A: "ReadEcuIdentification",
    0x20: "StopDiagnosticSession",
    0x21: "ReadDataByLocalIdentifier",
    0x30: "InputOutputControlByLocalIdentifier",
    0x32: "StopRoutineByLocalIdentifier",
    0x33: "RequestRoutineResultsByLocalIdentifier",
    0x3B: "WriteDataByLocalIdentifier",
    0x81: "StartCommunication",
    0x82: "StopCommunication",
}

OBD_MODES: dict[int, str] = {
    0x01: "Show current data",
    0x02: "Show freeze frame data",
    0x03: "Show stored DTCs",
    0x04: "Clear DTCs and stored values",
    0x05: "Oxygen sensor monitoring (non-CAN)",
    0x06: "On-board monitoring test results",
    0x07: "Show pending DTCs",
    0x08: "Control of on-board system",
    0x09: "Request vehicle information",
    0x0A: "Show permanent DTCs",
}

NRC_NAMES: dict[int, str] = {
    0x10: "generalReject",
    0x11: "serviceNotSupported",
    0x12: "subFunctionNotSupported",
    0x13: "incorrectMessageLengthOrInvalidFormat",
    0x14: "responseTooLong",
    0x21: "busyRepeatRequest",
    0x22: "conditionsNotCorrect",
    0x24: "requestSequenceError",
    0x25: "noResponseFromSubnetComponent",
    0x26: "failurePreventsExecutionOfRequestedAction",
    0x31: "requestOutOfRange",
    0x33: "securityAccessDenied",
    0x34: "authenticationRequired",
    0x35: "invalidKey",
    0x36: "exceededNumberOfAttempts",
    0x37: "requiredTimeDelayNotExpired",
    0x38: "secureDataTransmissionRequired",
    0x39: "secureDataTransmissionNotAllowed",
    0x3A: "secureDataVerificationFailed",
    0x50: "certificateVerificationFailedInvalidTimePeriod",
    0x51: "certificateVerificationFailedInvalidSignature",
    0x52: "certificateVerificationFailedInvalidChainOfTrust",
    0x53: "certificateVerificationFailedInvalidType",
    0x54: "certificateVerificationFailedInvalidFormat",
    0x55: "certificateVerificationFailedInvalidContent",
    0x56: "certificateVerificationFailedInvalidScope",
    0x57: "certificateVerificationFailedInvalidCertificate",
    0x58: "ownershipVerificationFailed",
    0x59: "challengeCalculationFailed",
    0x5A: "settingAccessRightsFailed",
    0x5B: "sessionKeyCreationDerivationFailed",
    0x5C: "configurationDataUsageFailed",
    0x5D: "deAuthenticationFailed",
    0x70: "uploadDownloadNotAccepted",
    0x71: "transferDataSuspended",
    0x72: "generalProgrammingFailure",
    0x73: "wrongBlockSequenceCounter",
    0x78: "requestCorrectlyReceivedResponsePending",
    0x7E: "subFunctionNotSupportedInActiveSession",
    0x7F: "serviceNotSupportedInActiveSession",
    0x81: "rpmTooHigh",
    0x82: "rpmTooLow",
    0x83: "engineIsRunning",
    0x84: "engineIsNotRunning",
    0x85: "engineRunTimeTooLow",
    0x86: "temperatureTooHigh",
    0x87: "temperatureTooLow",
    0x88: "vehicleSpeedTooHigh",
    0x89: "vehicleSpeedTooLow",
    0x8A: "throttlePedalTooHigh",
    0x8B: "throttlePedalTooLow",
    0x8C: "transmissionRangeNotInNeutral",
    0x8D: "transmissionRangeNotInGear",
    0x8F: "brakeSwitchesNotClosed",
    0x90: "shifterLeverNotInPark",
    0x91: "torqueConverterClutchLocked",
    0x92: "voltageTooHigh",
    0x93: "voltageTooLow",
    0x94: "resourceTemporarilyNotAvailable",
}

# Sub-function names per service (bit 7, suppress positive response, already removed).
SUB_FUNCTIONS: dict[int, dict[int, str]] = {
    0x10: {1: "defaultSession", 2: "programmingSession", 3: "extendedDiagnosticSession", 4: "safetySystem"},
    0x11: {
        1: "hardReset",
        2: "keyOffOnReset",
        3: "softReset",
        4: "enableRapidPowerShutDown",
        5: "disableRapidPowerShutDown",
    },
    0x19: {
        0x01: "reportNumberOfDTCByStatusMask",
        0x02: "reportDTCByStatusMask",
        0x03: "reportDTCSnapshotIdentification",
        0x04: "reportDTCSnapshotRecordByDTCNumber",
        0x05: "reportDTCStoredDataByRecordNumber",
        0x06: "reportDTCExtDataRecordByDTCNumber",
        0x07: "reportNumberOfDTCBySeverityMaskRecord",
        0x08: "reportDTCBySeverityMaskRecord",
        0x09: "reportSeverityInformationOfDTC",
        0x0A: "reportSupportedDTC",
        0x0B: "reportFirstTestFailedDTC",
        0x0C: "reportFirstConfirmedDTC",
        0x0D: "reportMostRecentTestFailedDTC",
        0x0E: "reportMostRecentConfirmedDTC",
        0x14: "reportDTCFaultDetectionCounter",
        0x15: "reportDTCWithPermanentStatus",
        0x17: "reportUserDefMemoryDTCByStatusMask",
    },
    0x28: {0: "enableRxAndTx", 1: "enableRxAndDisableTx", 2: "disableRxAndEnableTx", 3: "disableRxAndTx"},
    0x31: {1: "startRoutine", 2: "stopRoutine", 3: "requestRoutineResults"},
    0x3E: {0: "zeroSubFunction"},
    0x85: {1: "on", 2: "off"},
    0x87: {1: "verifyModeTransitionWithFixedParameter", 2: "verifyModeTransitionWithSpecificParameter"},
}

# Services whose second byte is a sub-function (so bit 7 means "suppress positive response").
SERVICES_WITH_SUB_FUNCTION = frozenset(
    {0x10, 0x11, 0x19, 0x27, 0x28, 0x29, 0x31, 0x3E, 0x83, 0x85, 0x86, 0x87}
)

# Data identifiers ISO 14229-1 Annex C reserves for identification.
STANDARD_DIDS: dict[int, str] = {
    0xF180: "bootSoftwareIdentification",
    0xF181: "applicationSoftwareIdentification",
    0xF182: "applicationDataIdentification",
    0xF183: "bootSoftwareFingerprint",
    0xF184: "applicationSoftwareFingerprint",
    0xF186: "activeDiagnosticSession",
    0xF187: "manufacturerSparePartNumber",
    0xF188: "manufacturerECUSoftwareNumber",
    0xF189: "manufacturerECUSoftwareVersionNumber",
    0xF18A: "systemSupplierIdentifier",
    0xF18B: "ECUManufacturingDate",
    0xF18C: "ECUSerialNumber",
    0xF190: "VIN",
    0xF191: "manufacturerECUHardwareNumber",
    0xF192: "systemSupplierECUHardwareNumber",
    0xF193: "systemSupplierECUHardwareVersionNumber",
    0xF194: "systemSupplierECUSoftwareNumber",
    0xF195: "systemSupplierECUSoftwareVersionNumber",
    0xF197: "systemNameOrEngineType",
    0xF198: "repairShopCodeOrTesterSerialNumber",
    0xF199: "programmingDate",
    0xF19E: "ODXFile",
}


def service_name(sid: int) -> str:
    """Name of a request SID (UDS first, then KWP2000, then OBD-II modes)."""
    if sid in UDS_SERVICES:
        return UDS_SERVICES[sid]
    if sid in KWP_SERVICES:
        return KWP_SERVICES[sid]
    if sid in OBD_MODES:
        return f"OBD mode {sid:02X}: {OBD_MODES[sid]}"
    return f"service 0x{sid:02X}"


def is_request_sid(sid: int) -> bool:
    """True for a SID a tester sends: known, and without the response bit (0x40)."""
    return not sid & POSITIVE_OFFSET and (sid in UDS_SERVICES or sid in KWP_SERVICES or sid in OBD_MODES)


def is_response_sid(sid: int) -> bool:
    """True for a positive response to a known service, or a negative response."""
    return sid == NEGATIVE_RESPONSE or (bool(sid & POSITIVE_OFFSET) and is_request_sid(sid - POSITIVE_OFFSET))


def answers(request_sid: int, response: bytes) -> bool:
    """True if ``response`` is the positive or negative answer to ``request_sid``."""
    if not response:
        return False
    if response[0] == NEGATIVE_RESPONSE:
        return len(response) >= 2 and response[1] == request_sid
    return response[0] == request_sid + POSITIVE_OFFSET


def nrc_name(code: int) -> str:
    if code in NRC_NAMES:
        return NRC_NAMES[code]
    if 0x95 <= code <= 0xEF:
        return f"reservedForSpecificConditionsNotCorrect(0x{code:02X})"
    if 0xF0 <= code <= 0xFE:
        return f"vehicleManufacturerSpecific(0x{code:02X})"
    return f"ISOSAEReserved(0x{code:02X})"


def sub_function_name(sid: int, sub: int) -> str:
    """Name of a sub-function value (without the suppress bit), or its hex value."""
    sub &= 0x7F
    if sid == 0x27:
        return f"requestSeed(level {sub})" if sub % 2 else f"sendKey(level {sub - 1})"
    return SUB_FUNCTIONS.get(sid, {}).get(sub, f"0x{sub:02X}")


# --- OBD-II mode 01 PIDs -----------------------------------------------------------------------


@dataclass(frozen=True)
class PidSpec:
    """One mode 01/02 PID: how many data bytes it has and how they become a value."""

    pid: int
    name: str
    length: int
    unit: str = ""
    formula: Callable[[bytes], float | int | str] | None = None  # None: shown as hex

    def decode(self, data: bytes) -> float | int | str:
        if len(data) < self.length:
            raise ValueError(f"PID {self.pid:02X} needs {self.length} bytes, got {len(data)}")
        data = data[: self.length]
        return self.formula(data) if self.formula is not None else data.hex(" ").upper()


def _u16(d: bytes) -> int:
    return (d[0] << 8) | d[1]


def _percent(d: bytes) -> float:
    return d[0] * 100 / 255


def _temperature(d: bytes) -> int:
    return d[0] - 40


def _trim(d: bytes) -> float:
    return (d[0] - 128) * 100 / 128


def _supported(base: int) -> Callable[[bytes], str]:
    def decode(d: bytes) -> str:
        # Bit 31 (MSB of A) stands for PID base+1, bit 0 for base+32.
        bits = int.from_bytes(d[:4], "big")
        pids = [base + i + 1 for i in range(32) if bits & (1 << (31 - i))]
        return " ".join(f"{p:02X}" for p in pids) or "none"

    return decode


def _monitor_status(d: bytes) -> str:
    mil = "MIL on" if d[0] & 0x80 else "MIL off"
    return f"{mil}, {d[0] & 0x7F} DTCs"


_OBD_STANDARDS = {
    1: "OBD-II (CARB)",
    2: "OBD (EPA)",
    3: "OBD and OBD-II",
    4: "OBD-I",
    5: "not OBD compliant",
    6: "EOBD",
    7: "EOBD and OBD-II",
    8: "EOBD and OBD",
    9: "EOBD, OBD and OBD-II",
    10: "JOBD",
    11: "JOBD and OBD-II",
    12: "JOBD and EOBD",
    13: "JOBD, EOBD and OBD-II",
}


def _pid_table() -> dict[int, PidSpec]:
    specs = [
        PidSpec(0x01, "Monitor status since DTCs cleared", 4, "", _monitor_status),
        PidSpec(0x02, "Freeze DTC", 2),
        PidSpec(0x03, "Fuel system status", 2),
        PidSpec(0x04, "Calculated engine load", 1, "%", _percent),
        PidSpec(0x05, "Engine coolant temperature", 1, "°C", _temperature),
        PidSpec(0x06, "Short term fuel trim bank 1", 1, "%", _trim),
        PidSpec(0x07, "Long term fuel trim bank 1", 1, "%", _trim),
        PidSpec(0x08, "Short term fuel trim bank 2", 1, "%", _trim),
        PidSpec(0x09, "Long term fuel trim bank 2", 1, "%", _trim),
        PidSpec(0x0A, "Fuel pressure", 1, "kPa", lambda d: 3 * d[0]),
        PidSpec(0x0B, "Intake manifold absolute pressure", 1, "kPa", lambda d: d[0]),
        PidSpec(0x0C, "Engine speed", 2, "rpm", lambda d: _u16(d) / 4),
        PidSpec(0x0D, "Vehicle speed", 1, "km/h", lambda d: d[0]),
        PidSpec(0x0E, "Timing advance", 1, "° before TDC", lambda d: d[0] / 2 - 64),
        PidSpec(0x0F, "Intake air temperature", 1, "°C", _temperature),
        PidSpec(0x10, "Mass air flow rate", 2, "g/s", lambda d: _u16(d) / 100),
        PidSpec(0x11, "Throttle position", 1, "%", _percent),
        PidSpec(0x12, "Commanded secondary air status", 1),
        PidSpec(0x13, "Oxygen sensors present (2 banks)", 1),
        PidSpec(0x1C, "OBD standard", 1, "", lambda d: _OBD_STANDARDS.get(d[0], f"0x{d[0]:02X}")),
        PidSpec(0x1D, "Oxygen sensors present (4 banks)", 1),
        PidSpec(0x1E, "Auxiliary input status", 1),
        PidSpec(0x1F, "Run time since engine start", 2, "s", _u16),
        PidSpec(0x21, "Distance traveled with MIL on", 2, "km", _u16),
        PidSpec(0x22, "Fuel rail pressure (relative to vacuum)", 2, "kPa", lambda d: _u16(d) * 0.079),
        PidSpec(0x23, "Fuel rail gauge pressure", 2, "kPa", lambda d: _u16(d) * 10),
        PidSpec(0x2C, "Commanded EGR", 1, "%", _percent),
        PidSpec(0x2D, "EGR error", 1, "%", _trim),
        PidSpec(0x2E, "Commanded evaporative purge", 1, "%", _percent),
        PidSpec(0x2F, "Fuel tank level input", 1, "%", _percent),
        PidSpec(0x30, "Warm-ups since codes cleared", 1, "", lambda d: d[0]),
        PidSpec(0x31, "Distance traveled since codes cleared", 2, "km", _u16),
        PidSpec(
            0x32, "Evap. system vapor pressure", 2, "Pa", lambda d: int.from_bytes(d, "big", signed=True) / 4
        ),
        PidSpec(0x33, "Absolute barometric pressure", 1, "kPa", lambda d: d[0]),
        PidSpec(0x3C, "Catalyst temperature bank 1 sensor 1", 2, "°C", lambda d: _u16(d) / 10 - 40),
        PidSpec(0x3D, "Catalyst temperature bank 2 sensor 1", 2, "°C", lambda d: _u16(d) / 10 - 40),
        PidSpec(0x3E, "Catalyst temperature bank 1 sensor 2", 2, "°C", lambda d: _u16(d) / 10 - 40),
        PidSpec(0x3F, "Catalyst temperature bank 2 sensor 2", 2, "°C", lambda d: _u16(d) / 10 - 40),
        PidSpec(0x41, "Monitor status this drive cycle", 4),
        PidSpec(0x42, "Control module voltage", 2, "V", lambda d: _u16(d) / 1000),
        PidSpec(0x43, "Absolute load value", 2, "%", lambda d: _u16(d) * 100 / 255),
        PidSpec(0x44, "Commanded air-fuel equivalence ratio", 2, "λ", lambda d: _u16(d) * 2 / 65536),
        PidSpec(0x45, "Relative throttle position", 1, "%", _percent),
        PidSpec(0x46, "Ambient air temperature", 1, "°C", _temperature),
        PidSpec(0x47, "Absolute throttle position B", 1, "%", _percent),
        PidSpec(0x48, "Absolute throttle position C", 1, "%", _percent),
        PidSpec(0x49, "Accelerator pedal position D", 1, "%", _percent),
        PidSpec(0x4A, "Accelerator pedal position E", 1, "%", _percent),
        PidSpec(0x4B, "Accelerator pedal position F", 1, "%", _percent),
        PidSpec(0x4C, "Commanded throttle actuator", 1, "%", _percent),
        PidSpec(0x4D, "Time run with MIL on", 2, "min", _u16),
        PidSpec(0x4E, "Time since trouble codes cleared", 2, "min", _u16),
        PidSpec(0x51, "Fuel type", 1, "", lambda d: d[0]),
        PidSpec(0x52, "Ethanol fuel", 1, "%", _percent),
        PidSpec(0x59, "Fuel rail absolute pressure", 2, "kPa", lambda d: _u16(d) * 10),
        PidSpec(0x5A, "Relative accelerator pedal position", 1, "%", _percent),
        PidSpec(0x5B, "Hybrid battery pack remaining life", 1, "%", _percent),
        PidSpec(0x5C, "Engine oil temperature", 1, "°C", _temperature),
        PidSpec(0x5D, "Fuel injection timing", 2, "°", lambda d: _u16(d) / 128 - 210),
        PidSpec(0x5E, "Engine fuel rate", 2, "L/h", lambda d: _u16(d) / 20),
        PidSpec(0x61, "Driver's demand engine torque", 1, "%", lambda d: d[0] - 125),
        PidSpec(0x62, "Actual engine torque", 1, "%", lambda d: d[0] - 125),
        PidSpec(0x63, "Engine reference torque", 2, "Nm", _u16),
        PidSpec(0xA6, "Odometer", 4, "km", lambda d: int.from_bytes(d, "big") / 10),
    ]
    specs += [
        PidSpec(base, f"PIDs supported {base + 1:02X}-{base + 32:02X}", 4, "", _supported(base))
        for base in range(0, 0xE0, 0x20)
    ]
    # Oxygen sensor voltages: A/200 V (byte B is the sensor's fuel trim).
    specs += [
        PidSpec(pid, f"Oxygen sensor {pid - 0x13} voltage", 2, "V", lambda d: d[0] / 200)
        for pid in range(0x14, 0x1C)
    ]
    return {s.pid: s for s in specs}


OBD_PIDS: dict[int, PidSpec] = _pid_table()

# Mode 09 info types.
OBD_INFO_TYPES: dict[int, str] = {
    0x00: "Supported info types 01-20",
    0x01: "VIN message count",
    0x02: "VIN",
    0x03: "Calibration ID message count",
    0x04: "Calibration ID",
    0x06: "Calibration verification numbers",
    0x08: "In-use performance tracking (spark)",
    0x0A: "ECU name",
    0x0B: "In-use performance tracking (compression)",
}
