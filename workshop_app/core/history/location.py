"""Where the workshop keeps its own data: the history database and default recording folder.

``$WORKSHOP_HOME`` wins (tests and portable installs set it); otherwise the XDG data folder,
``$XDG_DATA_HOME/workshop`` or ``~/.local/share/workshop``.
"""

from __future__ import annotations

import os
from pathlib import Path


def workshop_home() -> Path:
    """The folder for the workshop's data (not created here)."""
    home = os.environ.get("WORKSHOP_HOME")
    if home:
        return Path(home).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    # The XDG spec says relative paths in these variables are invalid and must be ignored.
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "workshop"


def default_history_path() -> Path:
    """``history.db`` in :func:`workshop_home`."""
    return workshop_home() / "history.db"


def default_recordings_dir() -> Path:
    """Where the GUI proposes to save recordings."""
    return workshop_home() / "recordings"
