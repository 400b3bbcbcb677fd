"""Negative response codes (ISO 14229-1 Annex A) in plain words, each with the next step to take."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NrcInfo:
    code: int
    name: str
    meaning: str  # what the ECU said, for a technician
    next_step: str  # what to do about it

    def text(self) -> str:
        return f"{self.meaning} (NRC 0x{self.code:02X} {self.name}). {self.next_step}"


_TABLE: dict[int, tuple[str, str, str]] = {
    0x10: (
        "generalReject",
        "The module refused the request without a reason.",
        "Retry once; if it persists, check the module's power and ground.",
    ),
    0x11: (
        "serviceNotSupported",
        "The module does not offer this function.",
        "Nothing to do: this module cannot do it.",
    ),
    0x12: (
        "subFunctionNotSupported",
        "The module does not offer this variant of the function.",
        "Nothing to do: this module cannot do it.",
    ),
    0x13: (
        "incorrectMessageLengthOrInvalidFormat",
        "The module did not understand the request's length or format.",
        "Check the module description (wrong data identifier layout?) and retry.",
    ),
    0x14: (
        "responseTooLong",
        "The answer would be too long for the module to send.",
        "Ask for less data at once.",
    ),
    0x21: (
        "busyRepeatRequest",
        "The module is busy.",
        "Wait a moment and retry (the tool retries automatically).",
    ),
    0x22: (
        "conditionsNotCorrect",
        "The module refuses in the vehicle's current state.",
        "Check the conditions: ignition on, engine off, vehicle stationary, battery above 12 V; then retry.",
    ),
    0x24: (
        "requestSequenceError",
        "The request came in the wrong order.",
        "Start the procedure again from the beginning.",
    ),
    0x25: (
        "noResponseFromSubnetComponent",
        "A module behind the gateway did not answer.",
        "Check that module's power and the bus behind the gateway.",
    ),
    0x26: (
        "failurePreventsExecutionOfRequestedAction",
        "A fault in the module prevents the action.",
        "Read the module's fault codes and repair first.",
    ),
    0x31: (
        "requestOutOfRange",
        "The module does not know the requested item.",
        "The item is not supported by this module; skip it or check the module description.",
    ),
    0x33: (
        "securityAccessDenied",
        "The module is locked for this action.",
        "Unlock the module (security access) and retry.",
    ),
    0x35: (
        "invalidKey",
        "The unlock key was wrong.",
        "Check the security algorithm for this module; do not retry repeatedly (the module locks).",
    ),
    0x36: (
        "exceedNumberOfAttempts",
        "Too many wrong unlock keys.",
        "Wait for the lock-out delay (often 10 s, up to a power cycle) before trying again.",
    ),
    0x37: (
        "requiredTimeDelayNotExpired",
        "The lock-out delay after wrong keys is still running.",
        "Wait, or switch the ignition off and on, then retry.",
    ),
    0x70: (
        "uploadDownloadNotAccepted",
        "The module refuses the software transfer.",
        "Check the package matches this module and the programming preconditions.",
    ),
    0x71: (
        "transferDataSuspended",
        "The module stopped the software transfer.",
        "Restart the programming sequence.",
    ),
    0x72: (
        "generalProgrammingFailure",
        "Programming the module's memory failed.",
        "Retry the programming; if it fails again the module may need replacing.",
    ),
    0x73: (
        "wrongBlockSequenceCounter",
        "A transfer block was out of sequence.",
        "Restart the transfer from the last confirmed block.",
    ),
    0x78: (
        "requestCorrectlyReceived-ResponsePending",
        "The module is still working on the request.",
        "Wait: the tool keeps waiting while the module reports progress.",
    ),
    0x7E: (
        "subFunctionNotSupportedInActiveSession",
        "This variant is not available in the current diagnostic session.",
        "Switch to the extended session first (the tool does so where needed).",
    ),
    0x7F: (
        "serviceNotSupportedInActiveSession",
        "This function is not available in the current diagnostic session.",
        "Switch to the extended or programming session first.",
    ),
    0x81: (
        "rpmTooHigh",
        "Engine speed too high for this action.",
        "Let the engine idle or switch it off, then retry.",
    ),
    0x83: (
        "engineIsRunning",
        "The engine must be off for this action.",
        "Switch the engine off (ignition on) and retry.",
    ),
    0x88: (
        "vehicleSpeedTooHigh",
        "The vehicle must be stationary for this action.",
        "Stop the vehicle and retry.",
    ),
    0x92: (
        "voltageTooHigh",
        "Supply voltage too high for this action.",
        "Check the charger / alternator and retry.",
    ),
    0x93: (
        "voltageTooLow",
        "Supply voltage too low for this action.",
        "Connect a battery support unit and retry.",
    ),
}


def nrc_info(code: int) -> NrcInfo:
    """The plain-language reading of a negative response code (unknown codes get a generic one)."""
    if code in _TABLE:
        name, meaning, step = _TABLE[code]
        return NrcInfo(code, name, meaning, step)
    if 0x38 <= code <= 0x4F:
        return NrcInfo(
            code,
            "reservedByExtendedDataLinkSecurity",
            "The module refused for a security reason.",
            "Check the module's security requirements.",
        )
    if 0x94 <= code <= 0xFE:
        return NrcInfo(
            code,
            "vehicleManufacturerSpecificConditionsNotCorrect",
            "A manufacturer-specific condition is not met.",
            "See the manufacturer's repair information for this module.",
        )
    return NrcInfo(
        code,
        f"unknown 0x{code:02X}",
        "The module refused the request with an unknown code.",
        "Retry once; if it persists, note the code for the manufacturer's information.",
    )


def explain_nrc(code: int, action: str) -> str:
    """One line for a technician: which action failed, why, what next."""
    return f"{action}: {nrc_info(code).text()}"
