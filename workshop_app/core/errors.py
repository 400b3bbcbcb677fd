"""The error tree. Every error a user can cause carries a message fit to print on one line."""

from __future__ import annotations


class WorkshopError(Exception):
    """Base of every error the workshop reports to a user (CLI prints it on one line)."""


class SourceError(WorkshopError):
    """A frame source could not be opened or failed while running."""


class DatabaseError(WorkshopError):
    """A signal database could not be read at all."""

    def __init__(self, path: str, message: str, line: int | None = None) -> None:
        self.path = path
        self.line = line
        self.reason = message
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}")


class LogFileError(WorkshopError):
    """A log file could not be read or written."""
