"""DBCs as public collections ship them: generator files that import others, bare fractions.

Every database here is a real file written to disk and loaded through ``load_database`` or
``workshop info``, the way a user's file would be.
"""

from __future__ import annotations

import json
from pathlib import Path

import cantools
import pytest

from workshop_app.cli import main
from workshop_app.core.decode.database import load_database
from workshop_app.core.errors import DatabaseError

HEADER = 'VERSION ""\n\nNS_ :\n\nBS_:\n\nBU_: ECU XXX\n\n'

BRAKES = """BO_ 550 BRAKE_MODULE: 8 XXX
 SG_ BRAKE_PRESSURE : 0|9@0+ (1,0) [0|511] "" XXX
 SG_ BRAKE_PEDAL : 16|8@1+ (0.5,0) [0|100] "%" XXX

VAL_ 550 BRAKE_PEDAL 0 "released" ;
"""

STEERING = """BO_ 610 EPS_STATUS: 5 XXX
 SG_ STEER_ANGLE : 7|16@0- (0.1,0) [-3276.8|3276.7] "deg" XXX
"""


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _names(path: Path) -> set[str]:
    return {m.name for m in load_database(path).db.messages}


def test_generator_file_with_only_imports_loads_the_imported_messages(tmp_path):
    _write(tmp_path, "_brakes.dbc", BRAKES)
    _write(tmp_path, "common/_steering.dbc", STEERING)
    gen = _write(tmp_path, "car_pt.dbc", 'CM_ "IMPORT _brakes.dbc";\nCM_ "IMPORT common/_steering.dbc";\n')
    loaded = load_database(gen)
    assert {m.name for m in loaded.db.messages} == {"BRAKE_MODULE", "EPS_STATUS"}
    assert loaded.warnings == []
    pedal = loaded.db.get_message_by_name("BRAKE_MODULE").get_signal_by_name("BRAKE_PEDAL")
    assert pedal.scale == 0.5 and pedal.choices[0] == "released"
    # the comment that carried the import is not a comment of the database
    assert not (loaded.db.dbc and "IMPORT" in str(loaded.db.dbc.attributes))


def test_imports_are_found_relative_to_the_importing_file_not_the_working_directory(tmp_path, monkeypatch):
    folder = tmp_path / "opendbc" / "generator" / "toyota"
    _write(folder, "_brakes.dbc", BRAKES)
    gen = _write(folder, "toyota_pt.dbc", HEADER + 'CM_ "IMPORT _brakes.dbc";\n\n' + STEERING)
    monkeypatch.chdir(tmp_path)
    assert _names(gen.relative_to(tmp_path)) == {"BRAKE_MODULE", "EPS_STATUS"}


def test_own_definitions_may_refer_to_imported_messages(tmp_path):
    _write(tmp_path, "_brakes.dbc", BRAKES)
    gen = _write(
        tmp_path,
        "car.dbc",
        HEADER + 'CM_ "IMPORT _brakes.dbc";\n\n' + STEERING + 'VAL_ 550 BRAKE_PRESSURE 0 "none" ;\n',
    )
    loaded = load_database(gen)
    pressure = loaded.db.get_message_by_name("BRAKE_MODULE").get_signal_by_name("BRAKE_PRESSURE")
    assert pressure.choices[0] == "none"
    assert loaded.warnings == []


def test_nested_imports_and_cycles_load_each_file_once_with_a_warning(tmp_path):
    _write(tmp_path, "a.dbc", 'CM_ "IMPORT b.dbc";\n' + BRAKES)
    _write(tmp_path, "b.dbc", 'CM_ "IMPORT c.dbc";\n' + STEERING)
    _write(tmp_path, "c.dbc", '\n\nCM_ "IMPORT a.dbc";\n')
    loaded = load_database(tmp_path / "a.dbc")
    assert {m.name for m in loaded.db.messages} == {"BRAKE_MODULE", "EPS_STATUS"}
    texts = [str(w) for w in loaded.warnings]
    assert len(texts) == 1, texts
    assert texts[0].startswith(f"{tmp_path / 'c.dbc'}:3: ") and "a.dbc" in texts[0] and "cycle" in texts[0]


def test_missing_import_loads_an_empty_database_with_a_warning_naming_file_and_line(tmp_path):
    gen = _write(tmp_path, "gen.dbc", '// generated from\n\nCM_ "IMPORT _missing.dbc";\n')
    loaded = load_database(gen)
    assert loaded.db.messages == []
    assert len(loaded.warnings) == 1 and str(loaded.warnings[0]).startswith(f"{gen}:3: ")
    assert "_missing.dbc" in loaded.warnings[0].message and "not found" in loaded.warnings[0].message


def test_missing_import_beside_messages_keeps_the_messages(tmp_path):
    gen = _write(tmp_path, "car.dbc", HEADER + 'CM_ "IMPORT gone.dbc";\n' + BRAKES)
    loaded = load_database(gen)
    assert [m.name for m in loaded.db.messages] == ["BRAKE_MODULE"]
    assert len(loaded.warnings) == 1 and loaded.warnings[0].line == 9


def test_warnings_inside_an_imported_file_name_that_file_and_its_own_line(tmp_path):
    _write(tmp_path, "_brakes.dbc", BRAKES + '\nCM_ SG_ 550 "comment without a signal name";\n')
    gen = _write(tmp_path, "car.dbc", HEADER + 'CM_ "IMPORT _brakes.dbc";\n' + STEERING)
    loaded = load_database(gen)
    assert len(loaded.db.messages) == 2
    assert [str(w) for w in loaded.warnings] == [
        f"{tmp_path / '_brakes.dbc'}:7: comment without a signal name; dropped: "
        'CM_ SG_ 550 "comment without a signal name";'
    ]


def test_a_syntax_error_in_an_imported_file_names_that_file(tmp_path):
    _write(tmp_path, "_brakes.dbc", "\n" + BRAKES.replace("(1,0) [0|511]", "(1,0 [0|511]"))
    gen = _write(tmp_path, "car.dbc", 'CM_ "IMPORT _brakes.dbc";\n' + STEERING)
    with pytest.raises(DatabaseError) as info:
        load_database(gen)
    assert f"{tmp_path / '_brakes.dbc'}:3" in str(info.value)


def test_workshop_info_on_a_generator_file(capsys, tmp_path):
    _write(tmp_path, "_brakes.dbc", BRAKES)
    gen = _write(tmp_path, "car.dbc", 'CM_ "IMPORT _brakes.dbc";\nCM_ "IMPORT _absent.dbc";\n')
    assert main(["info", str(gen), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["messages"] == 1
    assert [w["line"] for w in info["warnings"]] == [2]
    assert main(["info", str(gen)]) == 0
    out = capsys.readouterr().out
    assert "1 messages" in out and f"{gen}:2:" in out and "_absent.dbc" in out


@pytest.mark.parametrize(
    ("factor", "scale", "offset"),
    [
        ("(.25,-500)", 0.25, -500.0),
        ("(-.5,1.)", -0.5, 1.0),
        ("(+.125,.5)", 0.125, 0.5),
        ("(1,-.75)", 1, -0.75),
    ],
)
def test_factors_without_a_leading_zero_load(tmp_path, factor, scale, offset):
    path = _write(
        tmp_path,
        "fractions.dbc",
        HEADER
        + "BO_ 256 Engine: 8 ECU\n"
        + f' SG_ Rpm : 0|16@1+ {factor} [.5|1.] "rpm" XXX\n'
        + ' SG_ Temp : 16|8@1+ (1,-40) [-40|215] "degC" XXX\n'
        + 'CM_ SG_ 256 Rpm "scaled by .25 in the ECU";\n',
    )
    loaded = load_database(path)
    rpm = loaded.db.get_message_by_name("Engine").get_signal_by_name("Rpm")
    assert (rpm.scale, rpm.offset, rpm.minimum, rpm.maximum) == (scale, offset, 0.5, 1.0)
    assert rpm.comment == "scaled by .25 in the ECU"  # text inside strings is left alone
    assert [w.line for w in loaded.warnings] == [10]
    # the values decode as cantools decodes the same file written with leading zeros
    fixed = (
        path.read_text()
        .replace(
            factor, factor.replace("(.", "(0.").replace("-.", "-0.").replace("+.", "0.").replace(",.", ",0.")
        )
        .replace("[.5|1.]", "[0.5|1.0]")
    )
    reference = cantools.database.load_string(fixed, strict=False)
    data = bytes([0x10, 0x27, 100, 0, 0, 0, 0, 0])
    assert loaded.db.decode_message(256, data) == reference.decode_message(256, data)
