"""The workshop's history: vehicles and the recordings made of them, in one SQLite file."""

from workshop_app.core.history.errors import HistoryError, HistoryFileError
from workshop_app.core.history.location import default_history_path, default_recordings_dir, workshop_home
from workshop_app.core.history.records import RecordingRow, VehicleRow, format_bytes, log_format_name
from workshop_app.core.history.schema import SCHEMA_VERSION
from workshop_app.core.history.store import HistoryStore

__all__ = [
    "SCHEMA_VERSION",
    "HistoryError",
    "HistoryFileError",
    "HistoryStore",
    "RecordingRow",
    "VehicleRow",
    "default_history_path",
    "default_recordings_dir",
    "format_bytes",
    "log_format_name",
    "workshop_home",
]
