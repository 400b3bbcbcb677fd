"""Why a package is refused: one code per reason, with plain words naming the file or ECU.

Codes are stable strings (tests, ``--json`` output and the audit log compare them); the message
is for the technician.
"""

from __future__ import annotations

from dataclasses import dataclass

from workshop_app.core.errors import WorkshopError

# What TUF refuses.
UNKNOWN_KEY = "unknown_key"
BAD_SIGNATURE = "bad_signature"
THRESHOLD_NOT_MET = "threshold_not_met"
EXPIRED = "expired_metadata"  # freeze attack
ROLLBACK = "metadata_rollback"
MIX_AND_MATCH = "mix_and_match"
ENDLESS_DATA = "endless_data"
HASH_MISMATCH = "hash_mismatch"
METADATA_INVALID = "metadata_invalid"
# Uptane's rule and the car's facts.
DIRECTOR_MISMATCH = "director_image_mismatch"
NOT_IN_IMAGE_REPOSITORY = "not_in_image_repository"
NO_DIRECTOR_TARGETS = "no_targets_for_vehicle"
UNKNOWN_ECU = "unknown_ecu"
HARDWARE_NOT_ALLOWED = "hardware_not_allowed"
BOOTLOADER_TOO_OLD = "bootloader_too_old"
RELEASE_ROLLBACK = "release_counter_rollback"
DEPENDENCY_NOT_MET = "dependency_not_met"
# Malformed packages.
PATH_TRAVERSAL = "path_traversal"
OVERSIZED_METADATA = "oversized_metadata"
ARCHIVE_BOMB = "archive_bomb"
IMAGE_TOO_LARGE = "image_too_large"
IMAGE_UNREADABLE = "image_unreadable"
PACKAGE_UNREADABLE = "package_unreadable"
NOT_TRUSTED = "no_trusted_root"


@dataclass(frozen=True, slots=True)
class Refusal:
    """One reason not to flash. ``where`` names the file, target or ECU concerned."""

    code: str
    message: str
    where: str = ""

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class PackageError(WorkshopError):
    """A package cannot be used at all; carries the refusal so callers can report its code."""

    def __init__(self, refusal: Refusal) -> None:
        self.refusal = refusal
        super().__init__(str(refusal))
