"""May this ECU be programmed now? The flash job's safety checks, before anything is changed.

Two sources answer, and at least one must: the car's live values read over UDS (battery at
least ``FlashOptions.min_battery_v``, vehicle speed 0, engine speed 0), and the ECU's own
routine 0x0203 in the extended session. An ECU in its bootloader has no live values, so its
routine is the one that speaks for it. Every refusal is a ``FlashError(refused=True)`` naming
the value and what to do; nothing here writes to the ECU.

>>> battery_read = check_live_values(client, "ECM", FlashOptions())       # doctest: +SKIP
>>> check_precondition_routine(client, "ECM", result.notes, battery_read)  # doctest: +SKIP
"""

from __future__ import annotations

from workshop_app.core.diag.client import DiagError, EcuClient
from workshop_app.core.update import protocol as p
from workshop_app.core.update.flash_types import (
    DID_BATTERY,
    DID_ENGINE_SPEED,
    DID_VEHICLE_SPEED,
    NOT_NOW,
    NOT_THERE,
    FlashError,
    FlashOptions,
)


def read_optional(client: EcuClient, did: int, *, refused: bool) -> bytes | None:
    """The DID's bytes, or None when the ECU cannot give it now (its bootloader, say).

    Any other negative answer or a lost link raises ``FlashError``; ``refused`` says whether
    nothing has been changed yet (the job counts as refused rather than failed).
    """
    try:
        return bytes(client.call(f"read DID 0x{did:04X}", client.read_did, did))
    except DiagError as exc:
        if exc.nrc in NOT_NOW:
            return None
        raise FlashError(str(exc), refused=refused, nrc=exc.nrc) from None


def check_live_values(client: EcuClient, ecu: str, options: FlashOptions) -> bool:
    """Refuse on the car's live values (reads only); True when the battery voltage was read."""
    confirmed = False
    battery = read_optional(client, DID_BATTERY, refused=True)
    if battery is not None:
        volts = int.from_bytes(battery[:2], "big") * 0.001
        if volts < options.min_battery_v:
            raise FlashError(
                f"{ecu}: battery at {volts:.2f} V (DID 0xF1A1), flashing needs at least "
                f"{options.min_battery_v:.1f} V: connect a charger",
                refused=True,
            )
        confirmed = True
    speed = read_optional(client, DID_VEHICLE_SPEED, refused=True)
    if speed is not None and speed[0] != 0:
        raise FlashError(f"{ecu}: vehicle moving at {speed[0]} km/h (DID 0x1003): stop it", refused=True)
    rpm = read_optional(client, DID_ENGINE_SPEED, refused=True)
    if rpm is not None and int.from_bytes(rpm[:2], "big") != 0:
        value = int.from_bytes(rpm[:2], "big") * 0.25
        raise FlashError(
            f"{ecu}: engine running at {value:.0f} rpm (DID 0x1001): switch it off",
            refused=True,
        )
    return confirmed


def check_precondition_routine(client: EcuClient, ecu: str, notes: list[str], battery_read: bool) -> None:
    """The ECU's own check (routine 0x0203, extended session); an ECU without it is fine when
    the live values confirmed the battery. Says in ``notes`` when the routine alone vouched."""
    confirmed = battery_read
    try:
        response = client.call(
            "check programming preconditions",
            client.client.start_routine,
            p.ROUTINE_CHECK_PROGRAMMING_PRECONDITIONS,
        )
    except DiagError as exc:
        if exc.nrc not in NOT_THERE:
            raise FlashError(str(exc), refused=True, nrc=exc.nrc) from None
    else:
        status = bytes(response.service_data.routine_status_record or b"")
        if not status or status[0] != p.ROUTINE_OK:
            code = f"0x{status[0]:02X}" if status else "none"
            raise FlashError(
                f"{ecu}: the ECU refuses programming (preconditions routine 0x0203 answered reason {code})",
                refused=True,
            )
        if not battery_read:
            notes.append("battery voltage not readable (bootloader): the ECU's own check accepted")
        confirmed = True
    if not confirmed:
        raise FlashError(
            f"{ecu}: cannot confirm the programming preconditions (no battery voltage "
            "DID 0xF1A1, no routine 0x0203)",
            refused=True,
        )
