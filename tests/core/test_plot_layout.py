"""PlotLayout: JSON round trip and errors that name the file."""

from __future__ import annotations

import json

import pytest

from workshop_app.core.errors import WorkshopError
from workshop_app.core.plot_layout import PlotLayout, PlotLayoutError, PlotSpec, PlotTrace

LAYOUT = PlotLayout(
    (
        PlotSpec(
            (
                PlotTrace("ENGINE_DATA", "EngineSpeed", "#3b82f6"),
                PlotTrace("TRANSMISSION", "TurbineSpeed", "#f97316"),
            )
        ),
        PlotSpec((PlotTrace("TRANSMISSION", "GearSelector", "#22a355"),), y_range=(-0.5, 4.5)),
        PlotSpec(),
    ),
    window_seconds=10.0,
)


def _document(**changes: object) -> str:
    document = json.loads(LAYOUT.to_json())
    document.update(changes)
    return json.dumps(document)


def test_json_round_trip_keeps_everything():
    assert PlotLayout.from_json(LAYOUT.to_json()) == LAYOUT
    everything = PlotLayout(window_seconds=None)
    assert PlotLayout.from_json(everything.to_json()) == everything


def test_file_round_trip(tmp_path):
    path = tmp_path / "layout.json"
    LAYOUT.save(path)
    assert PlotLayout.load(path) == LAYOUT
    assert json.loads(path.read_text())["plots"][1]["y_range"] == [-0.5, 4.5]


def test_bad_json_names_the_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"format": "workshop-plot-layout", ')
    with pytest.raises(PlotLayoutError, match=r"broken\.json: not valid JSON") as info:
        PlotLayout.load(path)
    assert isinstance(info.value, WorkshopError)
    assert info.value.source == str(path)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[]", "expected a JSON object"),
        (_document(format="something-else"), "not a plot layout"),
        (_document(version=99), "unsupported version 99"),
        (_document(plots={}), '"plots" must be a list'),
        (_document(window_seconds=-1), "window_seconds"),
        (_document(plots=[{"signals": [], "y_range": [5, 1]}]), r"plots\[0\]\.y_range"),
        (
            _document(plots=[{"signals": [{"message": "M", "signal": "S"}]}]),
            r'plots\[0\]\.signals\[0\]\."colour"',
        ),
        (
            _document(plots=[{"signals": [{"message": "M", "signal": "S", "colour": "blue"}]}]),
            "is not",
        ),
        (_document(plots=[{"y_range": None}]), r"plots\[0\]\.signals must be a list"),
    ],
)
def test_schema_errors_name_the_file_and_the_place(tmp_path, text, reason):
    path = tmp_path / "odd.json"
    path.write_text(text)
    with pytest.raises(PlotLayoutError, match=reason) as info:
        PlotLayout.load(path)
    assert str(info.value).startswith(f"{path}: ")


def test_missing_file_and_unwritable_target(tmp_path):
    with pytest.raises(PlotLayoutError, match=r"nowhere\.json: file not found"):
        PlotLayout.load(tmp_path / "nowhere.json")
    with pytest.raises(PlotLayoutError, match="cannot write"):
        LAYOUT.save(tmp_path / "no-such-folder" / "layout.json")
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(PlotLayoutError, match=r"binary\.json"):
        PlotLayout.load(binary)


def test_from_json_names_a_given_source():
    with pytest.raises(PlotLayoutError, match=r"^clipboard: "):
        PlotLayout.from_json("nope", source="clipboard")
