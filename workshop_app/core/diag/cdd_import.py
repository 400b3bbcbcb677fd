"""Import the data identifiers of a Vector CANdelaStudio CDD file into an ECU description.

cantools reads the CDD's DIDs (identifier, length, the bit layout and scaling of each value);
each becomes a ``DidSpec``: a single numeric value keeps its scale, offset, unit and value table,
several values become a ``record``. Services and DTC texts of the CDD are not imported.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cantools

from workshop_app.core.diag.ecu_spec import EcuSpecError


def _field(data: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": data.name,
        "start": data.start,
        "bits": data.length,
        "byte_order": data.byte_order,
    }
    scale, offset = getattr(data, "scale", 1) or 1, getattr(data, "offset", 0) or 0
    if scale != 1:
        out["scale"] = scale
    if offset:
        out["offset"] = offset
    if data.unit:
        out["unit"] = data.unit
    if data.choices:
        out["choices"] = {str(int(k)): str(v) for k, v in data.choices.items()}
    return out


def cdd_ecu(
    path: str | Path, *, name: str, request_id: int, response_id: int, description: str = ""
) -> dict[str, Any]:
    """One ECU of an ECU description file (as JSON-ready data) with the DIDs of a CDD."""
    p = Path(path)
    try:
        db = cantools.database.load_file(str(p))
    except Exception as exc:  # cantools raises several kinds on a damaged file
        raise EcuSpecError(f"{p}: cannot read as CDD ({exc})") from exc
    dids = []
    for d in getattr(db, "dids", None) or []:
        if not d.length or not d.datas:
            continue  # session entries and services without data
        entry: dict[str, Any] = {"id": f"0x{d.identifier:04X}", "name": d.name, "length": d.length}
        fields = [_field(x) for x in d.datas]
        whole = (
            len(fields) == 1 and fields[0]["bits"] == 8 * d.length and fields[0]["byte_order"] == "big_endian"
        )
        if whole:
            f = fields[0]
            entry["type"] = "uint"
            for key in ("scale", "offset", "unit", "choices"):
                if key in f:
                    entry[key] = f[key]
        else:
            entry["type"] = "record"
            entry["fields"] = fields
        dids.append(entry)
    if not dids:
        raise EcuSpecError(f"{p}: no data identifiers found (is it a CDD file?)")
    return {
        "name": name,
        "description": description or f"imported from {p.name}",
        "addressing": "normal_29bit" if max(request_id, response_id) > 0x7FF else "normal_11bit",
        "request_id": f"0x{request_id:X}",
        "response_id": f"0x{response_id:X}",
        "dids": dids,
        "live": [e["id"] for e in dids],
    }


def write_spec(
    ecus: list[dict[str, Any]], path: str | Path, *, vehicle: str = "", manufacturer: str = ""
) -> Path:
    out = Path(path)
    out.write_text(
        json.dumps({"vehicle": vehicle or out.stem, "manufacturer": manufacturer, "ecus": ecus}, indent=1)
        + "\n",
        encoding="utf-8",
    )
    return out
