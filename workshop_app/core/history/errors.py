"""Errors of the workshop history; each names the history file so a user can find it."""

from __future__ import annotations

from workshop_app.core.errors import WorkshopError


class HistoryError(WorkshopError):
    """A history operation failed (duplicate VIN, unknown vehicle, database busy, ...)."""


class HistoryFileError(HistoryError):
    """The history file cannot be used: not SQLite, damaged, another program's, or too new.

    The file is never replaced or repaired automatically; the message says what to do.
    """
