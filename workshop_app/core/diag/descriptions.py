"""DTC descriptions from files: shipped ones in ``resources/dtc`` and the user's own.

One file per manufacturer, named after it (``generic.csv``, ``demo.csv``, ``acme.json``).
CSV: a header ``code,description`` then one code per line (``P0118`` or with its failure
type ``C0035-31``); JSON: an object ``{"P0118": "text", ...}``. Files in
``$WORKSHOP_HOME/dtc`` are read after the shipped ones and win. A manufacturer's text wins
over the generic one; a code with a failure type falls back to its base code.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from workshop_app.core.diag.dtc import parse_sae, sae_code
from workshop_app.core.diag.ecu_spec import EcuSpecError
from workshop_app.core.history.location import workshop_home

GENERIC = "generic"


class DescriptionError(EcuSpecError):
    """A description file that cannot be read; names the file and line."""


def _read_csv(path: Path) -> dict[int, str]:
    out: dict[int, str] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for number, row in enumerate(csv.reader(fh), start=1):
            if not row or row[0].startswith("#") or (number == 1 and row[0].strip().lower() == "code"):
                continue
            if len(row) < 2:
                raise DescriptionError(f"{path}:{number}: expected 'code,description'")
            try:
                out[parse_sae(row[0])] = ",".join(row[1:]).strip()  # unquoted commas in the text
            except ValueError as exc:
                raise DescriptionError(f"{path}:{number}: {exc}") from None
    return out


def _read_json(path: Path) -> dict[int, str]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DescriptionError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(raw, dict):
        raise DescriptionError(f"{path}: expected an object of code → description")
    out: dict[int, str] = {}
    for code, text in raw.items():
        try:
            out[parse_sae(code)] = str(text)
        except ValueError as exc:
            raise DescriptionError(f"{path}: {exc}") from None
    return out


class DtcDescriptions:
    """Code → text lookup across the description files of several manufacturers."""

    def __init__(self, folders: list[Path] | None = None, *, strict: bool = False) -> None:
        self.tables: dict[str, dict[int, str]] = {}
        self.warnings: list[str] = []
        if folders is None:
            from workshop_app.paths import resources_dir

            folders = [resources_dir() / "dtc", workshop_home() / "dtc"]
        for folder in folders:
            if not folder.is_dir():
                continue
            for path in sorted(folder.iterdir()):
                if path.suffix.lower() not in (".csv", ".json"):
                    continue
                try:
                    table = _read_csv(path) if path.suffix.lower() == ".csv" else _read_json(path)
                except (DescriptionError, OSError, UnicodeDecodeError) as exc:
                    if strict:
                        raise
                    # One bad user file must not hide every description: skip it, say so.
                    self.warnings.append(str(exc))
                    print(f"warning: {exc}", file=sys.stderr)
                    continue
                self.tables.setdefault(path.stem.lower(), {}).update(table)

    def describe(self, code: int, manufacturer: str = "") -> str:
        """The best text for a 3-byte DTC; empty when no file knows it."""
        order = [manufacturer.lower()] if manufacturer else []
        order.append(GENERIC)
        for key in (code, code & 0xFFFF00):
            for table in order:
                text = self.tables.get(table, {}).get(key)
                if text:
                    return text
        return ""

    def known_codes(self, manufacturer: str = "") -> list[str]:
        codes = set(self.tables.get(GENERIC, {})) | set(self.tables.get(manufacturer.lower(), {}))
        return [sae_code(c) for c in sorted(codes)]
