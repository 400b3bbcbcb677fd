"""The publisher's Ed25519 signing keys: one PEM file per key, named ``<repository>-<role>-<n>.pem``.

Private keys live only with the publisher (``workshop package init`` writes them); verifying or
flashing never reads them. Files are written owner-readable only.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.signer import CryptoSigner

from workshop_app.core.errors import WorkshopError

ROLES = ("root", "targets", "snapshot", "timestamp")


def generate_keys(folder: Path, repository: str, role: str, count: int) -> list[CryptoSigner]:
    folder.mkdir(parents=True, exist_ok=True)
    signers = []
    for n in range(1, count + 1):
        signer = CryptoSigner.generate_ed25519()
        path = folder / f"{repository}-{role}-{n}.pem"
        # Created 0600 from the start: the key is never readable by others, not even briefly.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(signer.private_bytes)
        signers.append(signer)
    return signers


def load_signers(folder: Path, repository: str, role: str) -> list[CryptoSigner]:
    """Every key file present for the role (possibly fewer than its threshold)."""
    signers = []
    for path in sorted(folder.glob(f"{repository}-{role}-*.pem")):
        try:
            private_key = load_pem_private_key(path.read_bytes(), password=None)
            signers.append(CryptoSigner(private_key))
        except (OSError, ValueError, TypeError) as exc:
            raise WorkshopError(f"{path}: not a readable private key: {exc}") from exc
    return signers
