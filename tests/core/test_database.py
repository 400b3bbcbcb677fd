"""Tolerant database loading and the per-channel database set.

Real files come from tests/data (shipped in the repository); the tests fail (not
skip) when it is missing. Broken DBCs are written by each test so the bad line is known.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import can
import cantools
import pytest

from workshop_app.core.decode.database import (
    DatabaseSet,
    LoadedDatabase,
    LoadWarning,
    j1939_pgn,
    load_database,
)
from workshop_app.core.errors import DatabaseError

DATA = Path(__file__).resolve().parents[1] / "data"
DBC_DIR = DATA / "dbc"
LOG_DIR = DATA / "logs"
J1939_DEMO = DBC_DIR / "CSS-Electronics-SAE-J1939-DEMO.dbc"
TESLA_CAN = DBC_DIR / "tesla_can.dbc"

# (messages, signals) as listed in the data README (measured with cantools 45.1.0).
# tesla_can: cantools refuses the file; its 44 BO_ entries all load here.
EXPECTED_COUNTS = {
    "vw_mqb.dbc": (113, 1348),
    "ford_lincoln_base_pt.dbc": (331, 2150),
    "toyota_prius_2010_pt.dbc": (26, 78),
    "nissan_leaf_2018_generated.dbc": (18, 130),
    "nissan_xterra_2011.dbc": (15, 30),
    "gm_global_a_high_voltage_management.dbc": (12, 125),
    "hyundai_2015_ccan.dbc": (113, 1154),
    "tesla_powertrain.dbc": (6, 74),
    "tesla_can.dbc": (44, None),
    "CSS-Electronics-SAE-J1939-DEMO.dbc": (2, 2),
    "css_tp_j1939.dbc": (1, 1),
}

BASE_LINES = [
    'VERSION ""',
    "",
    "NS_ :",
    "\tCM_",
    "\tBA_DEF_",
    "",
    "BS_:",
    "",
    "BU_: ECU1 ECU2",
    "",
    "BO_ 100 Engine: 8 ECU1",
    ' SG_ Rpm : 0|16@1+ (0.25,0) [0|16383.75] "rpm" ECU2',
    ' SG_ Temp : 16|8@1+ (1,-40) [-40|215] "degC" ECU2',
    "",
    'BA_DEF_ BO_ "GenMsgCycleTime" INT 0 10000;',
    'BA_DEF_DEF_ "GenMsgCycleTime" 100;',
    'BA_ "GenMsgCycleTime" BO_ 100 20;',
]
ENGINE_FRAME = bytes([0x40, 0x1F, 100, 0, 0, 0, 0, 0])  # Rpm 2000, Temp 60


def write_dbc(tmp_path: Path, *extra: str, name: str = "test.dbc") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([*BASE_LINES, "", *extra]) + "\n", encoding="utf-8")
    return path


def line_of(path: Path, prefix: str, occurrence: int = 1) -> int:
    """1-based number of the `occurrence`-th line starting with `prefix` (counted by hand)."""
    seen = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith(prefix):
            seen += 1
            if seen == occurrence:
                return number
    raise AssertionError(f"no line starts with {prefix!r}")


def warnings_with(loaded: LoadedDatabase, text: str) -> list[LoadWarning]:
    return [w for w in loaded.warnings if text in w.message]


def one_warning(loaded: LoadedDatabase, text: str) -> LoadWarning:
    found = warnings_with(loaded, text)
    assert len(found) == 1, f"expected one warning with {text!r}, got {loaded.warnings}"
    return found[0]


def assert_engine_usable(loaded: LoadedDatabase) -> None:
    engine = loaded.db.get_message_by_name("Engine")
    assert engine.cycle_time == 20
    assert engine.decode(ENGINE_FRAME) == {"Rpm": 2000.0, "Temp": 60}


# --- real files --------------------------------------------------------------------------


def test_shared_data_folder_has_the_documented_dbcs():
    assert DBC_DIR.is_dir(), f"test data missing: {DBC_DIR}"
    assert {p.name for p in DBC_DIR.glob("*.dbc")} == set(EXPECTED_COUNTS)


@pytest.mark.parametrize("name", sorted(EXPECTED_COUNTS))
def test_real_dbc_loads_with_documented_counts(name):
    loaded = load_database(DBC_DIR / name)
    messages, signals = EXPECTED_COUNTS[name]
    assert loaded.message_count == messages
    if signals is not None:
        assert loaded.signal_count == signals
    assert loaded.name == Path(name).stem
    for warning in loaded.warnings:
        assert warning.path == str(DBC_DIR / name)


def test_tesla_can_is_refused_by_cantools_but_loads_here():
    with pytest.raises(Exception, match="unused VAL_ entries"):
        cantools.database.load_file(TESLA_CAN, strict=False)
    loaded = load_database(TESLA_CAN)
    text = TESLA_CAN.read_text()
    bo_ids = {int(m) for m in re.findall(r"^BO_ (\d+) ", text, re.M)}
    assert len(bo_ids) == 44
    assert {m.frame_id for m in loaded.db.messages} == bo_ids  # every BO_ survived
    # The VAL_ names UI_mapSpeedLimit under message 568, but that signal is in message 968.
    warning = one_warning(loaded, "UI_mapSpeedLimit")
    assert warning.line == line_of(TESLA_CAN, "VAL_ 568 UI_mapSpeedLimit ")
    assert "968" in warning.message
    assert str(warning).startswith(f"{TESLA_CAN}:{warning.line}: ")
    assert loaded.warnings == [warning]


def test_tesla_can_decodes_the_real_candump():
    loaded = load_database(TESLA_CAN)
    frames: Counter[int] = Counter()
    full_length_decoded = 0
    for frame in can.LogReader(LOG_DIR / "savvycan_tesla_model_s_candump.log"):
        message = loaded.find(frame.arbitration_id, frame.is_extended_id)
        if message is None:
            continue
        frames[frame.arbitration_id] += 1
        # some captured frames are shorter than the DBC says: decode what is there
        decoded = message.decode(frame.data, allow_truncated=True)
        if len(frame.data) == message.length:
            assert decoded
            full_length_decoded += 1
    assert len(frames) == 14
    assert sum(frames.values()) == 1618
    assert full_length_decoded > 1000


def test_real_overlapping_signals_are_reported_with_their_line():
    path = DBC_DIR / "nissan_xterra_2011.dbc"
    loaded = load_database(path)
    warning = one_warning(loaded, "WHEEL_1 and WHEEL_2 overlap")
    assert warning.line == line_of(path, " SG_ WHEEL_2 ")


# --- repairs, one class at a time ---------------------------------------------------------


def test_clean_file_has_no_warnings(tmp_path):
    loaded = load_database(write_dbc(tmp_path))
    assert loaded.warnings == []
    assert_engine_usable(loaded)


def test_29_bit_id_without_extended_flag_gets_the_flag(tmp_path):
    path = write_dbc(
        tmp_path,
        "BO_ 419364350 Big: 8 ECU1",  # 0x18FEFDFE without bit 31
        ' SG_ Level : 0|8@1+ (1,0) [0|255] "" ECU2',
        "",
        'CM_ SG_ 419364350 Level "fill level";',
        'VAL_ 419364350 Level 255 "SNA";',
    )
    loaded = load_database(path)
    warning = one_warning(loaded, "extended-id flag")
    assert warning.line == line_of(path, "BO_ 419364350")
    big = loaded.db.get_message_by_name("Big")
    assert (big.frame_id, big.is_extended_frame) == (0x18FEFDFE, True)
    level = big.get_signal_by_name("Level")
    assert level.comment == "fill level"  # references moved to the flagged id too
    assert level.choices[255] == "SNA"
    assert_engine_usable(loaded)


def test_names_starting_with_a_digit_are_renamed(tmp_path):
    path = write_dbc(
        tmp_path,
        "BO_ 200 2ndEngine: 8 ECU1",
        ' SG_ 1stGear : 0|8@1+ (1,0) [0|255] "" ECU2',
        "",
        'VAL_ 200 1stGear 1 "one";',
    )
    loaded = load_database(path)
    assert one_warning(loaded, "'2ndEngine'").line == line_of(path, "BO_ 200")
    assert one_warning(loaded, "'1stGear'").line == line_of(path, " SG_ 1stGear")
    message = loaded.db.get_message_by_name("_2ndEngine")
    assert message.get_signal_by_name("_1stGear").choices[1] == "one"
    assert_engine_usable(loaded)


def test_comment_without_signal_name_is_dropped(tmp_path):
    path = write_dbc(
        tmp_path,
        'CM_ SG_ 100 "spans',
        'two lines";',
        'CM_ BO_ 100 "engine data";',
    )
    loaded = load_database(path)
    warning = one_warning(loaded, "without a signal name")
    assert warning.line == line_of(path, "CM_ SG_ 100")
    assert loaded.db.get_message_by_name("Engine").comment == "engine data"
    assert_engine_usable(loaded)


def test_comment_with_bare_frame_id_is_dropped(tmp_path):
    path = write_dbc(tmp_path, 'CM_ 446 "no object keyword";', 'CM_ SG_ 100 Rpm "engine speed";')
    loaded = load_database(path)
    assert one_warning(loaded, "no BO_/SG_ keyword").line == line_of(path, "CM_ 446")
    assert loaded.db.get_message_by_name("Engine").get_signal_by_name("Rpm").comment == "engine speed"


def test_statement_missing_its_semicolon_is_dropped(tmp_path):
    path = write_dbc(tmp_path, 'CM_ BO_ 100 "unterminated"', 'CM_ SG_ 100 Temp "coolant";')
    loaded = load_database(path)
    assert one_warning(loaded, "without ';'").line == line_of(path, 'CM_ BO_ 100 "unterminated"')
    assert loaded.db.get_message_by_name("Engine").get_signal_by_name("Temp").comment == "coolant"


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ('VAL_ 999 Rpm 0 "off";', "unknown message 999"),
        ('VAL_ 100 Speed 0 "stop";', "signal Speed, which message 100 does not have"),
        ("SIG_VALTYPE_ 100 Speed : 1;", "signal Speed, which message 100 does not have"),
    ],
)
def test_dangling_value_tables_are_dropped(tmp_path, statement, expected):
    path = write_dbc(tmp_path, statement, 'VAL_ 100 Temp 215 "SNA";')
    loaded = load_database(path)
    warning = one_warning(loaded, expected)
    assert warning.line == line_of(path, statement.split()[0] + " " + statement.split()[1])
    assert "dropped" in warning.message
    assert loaded.db.get_message_by_name("Engine").get_signal_by_name("Temp").choices[215] == "SNA"


def test_value_table_names_where_the_signal_really_is(tmp_path):
    path = write_dbc(
        tmp_path,
        "BO_ 300 Gearbox: 8 ECU1",
        ' SG_ Gear : 0|4@1+ (1,0) [0|15] "" ECU2',
        "",
        'VAL_ 100 Gear 0 "P";',
    )
    loaded = load_database(path)
    assert "defined in message 300" in one_warning(loaded, "signal Gear").message


def test_references_cantools_ignores_are_reported_and_kept_harmless(tmp_path):
    path = write_dbc(
        tmp_path,
        'CM_ BO_ 999 "nobody";',
        'CM_ SG_ 100 Speed "nobody";',
        'BA_ "GenMsgCycleTime" BO_ 999 10;',
    )
    loaded = load_database(path)
    assert one_warning(loaded, "CM_ refers to unknown message 999").line == line_of(path, "CM_ BO_ 999")
    assert one_warning(loaded, "CM_ refers to signal Speed").line == line_of(path, "CM_ SG_ 100 Speed")
    assert one_warning(loaded, "BA_ refers to unknown message 999").line == line_of(
        path, 'BA_ "GenMsgCycleTime" BO_ 999'
    )
    assert_engine_usable(loaded)


def test_attribute_without_definition_is_dropped(tmp_path):
    path = write_dbc(tmp_path, 'BA_ "GenSigStartValue" SG_ 100 Rpm 5;')
    loaded = load_database(path)
    warning = one_warning(loaded, "'GenSigStartValue' is not defined")
    assert warning.line == line_of(path, 'BA_ "GenSigStartValue"')
    assert_engine_usable(loaded)


def test_attribute_values_that_do_not_fit_their_definition_are_dropped(tmp_path):
    path = write_dbc(
        tmp_path,
        'BA_DEF_ BO_ "Kind" ENUM "a","b";',
        'BA_DEF_DEF_ "Kind" "a";',
        'BA_ "Kind" BO_ 100 "b";',  # cantools wants the index, not the label
        'BA_ "Kind" BO_ 100 7;',  # index out of range
        'BA_DEF_ SG_ "Limit" INT 0 10;',
        'BA_DEF_DEF_ "Limit" "high";',  # not a number
    )
    loaded = load_database(path)
    assert one_warning(loaded, 'value "b"').line == line_of(path, 'BA_ "Kind" BO_ 100 "b"')
    assert one_warning(loaded, "value 7").line == line_of(path, 'BA_ "Kind" BO_ 100 7')
    assert one_warning(loaded, 'default "high"').line == line_of(path, 'BA_DEF_DEF_ "Limit"')
    assert_engine_usable(loaded)


def test_duplicate_definitions_are_reported_at_the_later_one(tmp_path):
    path = write_dbc(
        tmp_path,
        "BO_ 100 EngineCopy: 8 ECU1",
        ' SG_ Rpm : 0|16@1+ (0.25,0) [0|16383.75] "rpm" ECU2',
        "",
        "BO_ 300 Twice: 8 ECU1",
        ' SG_ Same : 0|8@1+ (1,0) [0|255] "" ECU2',
        ' SG_ Same : 8|8@1+ (1,0) [0|255] "" ECU2',
        "",
        'BA_DEF_ BO_ "GenMsgCycleTime" INT 0 5000;',
    )
    loaded = load_database(path)
    assert one_warning(loaded, "share frame id 0x64").line == line_of(path, "BO_ 100 EngineCopy")
    assert one_warning(loaded, "Same is defined twice").line == line_of(path, " SG_ Same", 2)
    assert one_warning(loaded, "repeats the one on line").line == line_of(
        path, 'BA_DEF_ BO_ "GenMsgCycleTime"', 2
    )


def test_signal_without_receiver_at_end_of_file_is_kept(tmp_path):
    # cantools silently loses an incomplete last statement: the count check catches it.
    path = write_dbc(tmp_path, "BO_ 300 Tail: 8 ECU1", ' SG_ Last : 0|8@1+ (1,0) [0|255] ""')
    cantools_db = cantools.database.load_file(path, strict=False)
    assert cantools_db.get_message_by_name("Tail").signals == []
    loaded = load_database(path)
    assert one_warning(loaded, "no receiver node").line == line_of(path, " SG_ Last")
    assert [s.name for s in loaded.db.get_message_by_name("Tail").signals] == ["Last"]
    assert_engine_usable(loaded)


def test_zero_length_signal_is_dropped_alone(tmp_path):
    path = write_dbc(
        tmp_path,
        "BO_ 300 Body: 8 ECU1",
        ' SG_ Empty : 0|0@1+ (1,0) [0|0] "" ECU2',
        ' SG_ Door : 8|1@1+ (1,0) [0|1] "" ECU2',
    )
    loaded = load_database(path)
    assert one_warning(loaded, "signal Empty: length 0").line == line_of(path, " SG_ Empty")
    assert [s.name for s in loaded.db.get_message_by_name("Body").signals] == ["Door"]


def test_unsupported_statements_and_stray_text_are_dropped(tmp_path):
    path = write_dbc(
        tmp_path,
        'SGTYPE_ Type1 : 8@1+ (1,0) [0|1] "" ;',
        "some stray words",
        'CM_ BO_ 100 "still read";',
    )
    loaded = load_database(path)
    assert one_warning(loaded, "SGTYPE_ statements are not supported").line == line_of(path, "SGTYPE_")
    assert one_warning(loaded, "unrecognised text").line == line_of(path, "some stray words")
    assert loaded.db.get_message_by_name("Engine").comment == "still read"


def test_error_without_a_line_is_found_by_elimination(tmp_path):
    # cantools raises a bare ParseError (no position) for an INT VFrameFormat without default
    path = write_dbc(
        tmp_path,
        'BA_DEF_ BO_ "VFrameFormat" INT 0 15;',
        'BA_ "VFrameFormat" BO_ 100 0;',
    )
    with pytest.raises(Exception, match="VFrameFormat"):
        cantools.database.load_file(path, strict=False)
    loaded = load_database(path)
    assert one_warning(loaded, "refused by cantools").line == line_of(path, 'BA_DEF_ BO_ "VFrameFormat"')
    assert one_warning(loaded, "'VFrameFormat' is not defined").line == line_of(path, 'BA_ "VFrameFormat"')
    assert_engine_usable(loaded)


def test_overlapping_signals_load_with_a_warning(tmp_path):
    path = write_dbc(
        tmp_path,
        "BO_ 300 Mixed: 8 ECU1",
        ' SG_ Low : 0|8@1+ (1,0) [0|255] "" ECU2',
        ' SG_ High : 7|8@0+ (1,0) [0|255] "" ECU2',  # Motorola, bits 7..0: same byte
        ' SG_ Mux M : 16|8@1+ (1,0) [0|255] "" ECU2',
        ' SG_ A m0 : 24|8@1+ (1,0) [0|255] "" ECU2',
        ' SG_ B m1 : 24|8@1+ (1,0) [0|255] "" ECU2',  # same bits, other mux value: fine
    )
    with pytest.raises(Exception, match="overlapping"):
        cantools.database.load_file(path, strict=True)
    loaded = load_database(path)
    assert one_warning(loaded, "Low and High overlap").line == line_of(path, " SG_ High")
    assert warnings_with(loaded, "A and B") == []


def test_many_problems_in_one_file(tmp_path):
    path = write_dbc(
        tmp_path,
        "BO_ 419364350 Big: 8 ECU1",
        ' SG_ 9Volt : 0|8@1+ (1,0) [0|255] "" ECU2',
        "",
        'CM_ SG_ 100 "no name";',
        'VAL_ 419364350 9Volt 0 "low";',
        'VAL_ 101 Nothing 0 "x";',
        'BA_ "Undefined" BO_ 100 1;',
    )
    loaded = load_database(path)
    expected = {
        "extended-id flag": "BO_ 419364350",
        "'9Volt'": " SG_ 9Volt",
        "without a signal name": "CM_ SG_ 100",
        "unknown message 101": "VAL_ 101",
        "'Undefined' is not defined": 'BA_ "Undefined"',
    }
    for text, prefix in expected.items():
        assert one_warning(loaded, text).line == line_of(path, prefix)
    assert loaded.db.get_message_by_name("Big").get_signal_by_name("_9Volt").choices[0] == "low"
    assert_engine_usable(loaded)


def test_signals_outside_any_message_are_reported(tmp_path):
    path = write_dbc(
        tmp_path,
        "BO_ 3221225472 VECTOR__INDEPENDENT_SIG_MSG: 0 Vector__XXX",
        ' SG_ Loose : 0|8@1+ (1,0) [0|0] "" Vector__XXX',
        "",
        'VAL_ 3221225472 Loose 1 "on" 0 "off";',  # cantools refuses this one
    )
    loaded = load_database(path)
    assert one_warning(loaded, "1 signal(s) outside any message").line == line_of(path, "BO_ 3221225472")
    assert one_warning(loaded, "VAL_ for Loose").line == line_of(path, "VAL_ 3221225472")
    assert loaded.message_count == 1
    assert_engine_usable(loaded)


def test_unbalanced_quote_after_the_messages_ignores_the_rest(tmp_path):
    path = write_dbc(tmp_path, 'CM_ BO_ 100 "engine;', 'CM_ SG_ 100 Rpm "speed";', 'CM_ SG_ 100 Temp "t";')
    loaded = load_database(path)
    warning = one_warning(loaded, "unbalanced quote")
    assert warning.line == line_of(path, 'CM_ BO_ 100 "engine;')
    assert "rest of the file" in warning.message
    assert_engine_usable(loaded)


# --- files that cannot be used ------------------------------------------------------------


def test_syntax_error_in_signal_names_file_and_line(tmp_path):
    path = write_dbc(
        tmp_path,
        "BO_ 300 Broken: 8 ECU1",
        ' SG_ Bad : 0|8@1+ (1,0) [0|255 "" ECU2',
        ' SG_ Good : 8|8@1+ (1,0) [0|255] "" ECU2',
    )
    with pytest.raises(DatabaseError) as caught:
        load_database(path)
    line = line_of(path, " SG_ Bad")
    assert caught.value.line == line
    assert caught.value.path == str(path)
    assert str(caught.value).startswith(f"{path}:{line}: ")


def test_syntax_error_in_message_header_names_its_line(tmp_path):
    path = write_dbc(tmp_path, "BO_ 300 NoColon 8 ECU1", ' SG_ X : 0|8@1+ (1,0) [0|255] "" ECU2')
    with pytest.raises(DatabaseError) as caught:
        load_database(path)
    assert caught.value.line == line_of(path, "BO_ 300")


def test_signal_outside_any_message_is_an_error(tmp_path):
    path = write_dbc(tmp_path, 'CM_ BO_ 100 "x";', ' SG_ Lost : 0|8@1+ (1,0) [0|255] "" ECU2')
    with pytest.raises(DatabaseError) as caught:
        load_database(path)
    assert caught.value.line == line_of(path, " SG_ Lost")


def test_unbalanced_quote_before_messages_names_its_line(tmp_path):
    path = tmp_path / "quote.dbc"
    path.write_text(
        'VERSION "1.0\n\nBU_: A B\n\nBO_ 100 M: 8 A\n SG_ S : 0|8@1+ (1,0) [0|255] "" B\n'
        'BO_ 200 N: 8 A\n SG_ T : 0|8@1+ (1,0) [0|255] "%" B\n'
    )
    with pytest.raises(DatabaseError, match="unbalanced quote") as caught:
        load_database(path)
    assert caught.value.line == 1


def test_missing_file(tmp_path):
    with pytest.raises(DatabaseError, match="not found") as caught:
        load_database(tmp_path / "nope.dbc")
    assert str(tmp_path / "nope.dbc") in str(caught.value)


def test_binary_file(tmp_path):
    path = tmp_path / "random.dbc"
    path.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(DatabaseError, match="not a text file"):
        load_database(path)


@pytest.mark.parametrize("content", ["", "\n\n", "just some words\nand more\n", 'VERSION ""\nBS_:\nBU_: A\n'])
def test_text_without_messages(tmp_path, content):
    path = tmp_path / "empty.dbc"
    path.write_text(content)
    with pytest.raises(DatabaseError, match=r"empty|no message"):
        load_database(path)


def test_directory_is_not_a_database(tmp_path):
    with pytest.raises(DatabaseError):
        load_database(tmp_path)


def test_cp1252_file_loads(tmp_path):
    path = tmp_path / "latin.dbc"
    text = "\n".join([*BASE_LINES, 'CM_ BO_ 100 "Motordrehzahl für Anzeige";']) + "\n"
    path.write_bytes(text.encode("cp1252"))
    loaded = load_database(path)
    assert loaded.db.get_message_by_name("Engine").comment == "Motordrehzahl für Anzeige"


# --- other formats --------------------------------------------------------------------------

TINY_KCD = """<?xml version="1.0" encoding="UTF-8"?>
<NetworkDefinition xmlns="http://kayak.2codeornot2code.org/1.0">
  <Document name="tiny"/>
  <Node id="1" name="ECU"/>
  <Bus name="Body">
    <Message id="0x123" name="Speed" length="8">
      <Signal name="VehicleSpeed" offset="0" length="16">
        <Value slope="0.01" unit="km/h"/>
      </Signal>
      <Signal name="Gear" offset="16" length="4"/>
    </Message>
    <Message id="0x18FEF100" format="extended" name="Ext" length="8">
      <Signal name="A" offset="0" length="8"/>
    </Message>
  </Bus>
</NetworkDefinition>
"""


def test_kcd_loads(tmp_path):
    path = tmp_path / "tiny.kcd"
    path.write_text(TINY_KCD)
    loaded = load_database(path, channel="can1")
    assert (loaded.message_count, loaded.signal_count, loaded.channel) == (2, 3, "can1")
    assert loaded.warnings == []
    speed = loaded.find(0x123, False)
    assert speed is not None
    assert speed.decode(bytes([0x10, 0x27, 3, 0, 0, 0, 0, 0])) == {"VehicleSpeed": 100.0, "Gear": 3}
    assert loaded.find(0x18FEF100, True).name == "Ext"


def test_broken_kcd_names_the_line(tmp_path):
    path = tmp_path / "broken.kcd"
    lines = TINY_KCD.splitlines()
    bad = next(i for i, line in enumerate(lines) if "</Message>" in line)
    lines[bad] = lines[bad].replace("</Message>", "</Mesage>")
    path.write_text("\n".join(lines))
    with pytest.raises(DatabaseError) as caught:
        load_database(path)
    assert caught.value.line == bad + 1


# --- small API pieces -----------------------------------------------------------------------


def test_load_warning_text():
    assert str(LoadWarning("a.dbc", 12, "oops")) == "a.dbc:12: oops"
    assert str(LoadWarning("a.dbc", None, "oops")) == "a.dbc: oops"


def test_loaded_database_helpers(tmp_path):
    loaded = load_database(write_dbc(tmp_path, name="my_car.dbc"))
    assert (loaded.name, loaded.message_count, loaded.signal_count) == ("my_car", 1, 2)
    assert loaded.channel is None
    assert not loaded.is_j1939


def test_j1939_pgn():
    assert j1939_pgn(0x0CF00400) == 0xF004  # EEC1, PDU2
    assert j1939_pgn(0x18FEF1FE) == 0xFEF1  # CCVS1, PDU2
    assert j1939_pgn(0x18EA00F9) == 0xEA00  # request, PDU1: destination byte ignored
    assert j1939_pgn(0x18EAFF00) == 0xEA00
    assert j1939_pgn(0x19FEF100) == 0x1FEF1  # data page bit kept


# --- DatabaseSet ----------------------------------------------------------------------------


def test_set_keeps_previous_database_when_a_new_one_fails(tmp_path):
    dbs = DatabaseSet()
    good = dbs.add(write_dbc(tmp_path, name="good.dbc"))
    assert dbs.lookup("can0", 100, False).name == "Engine"
    broken = tmp_path / "broken.dbc"
    broken.write_text('BO_ 100 Other: 8 X\n SG_ S : 0|8@1+ (1,0) [0|255 "" X\n')
    with pytest.raises(DatabaseError):
        dbs.add(broken, channel="can0")
    with pytest.raises(DatabaseError):
        dbs.add(tmp_path / "missing.dbc")
    assert dbs.databases == [good]
    assert dbs.lookup("can0", 100, False).name == "Engine"


def test_set_channel_databases_take_precedence(tmp_path):
    common = tmp_path / "common.dbc"
    common.write_text('BO_ 100 Common: 8 X\n SG_ S : 0|8@1+ (1,0) [0|255] "" X\n')
    special = tmp_path / "special.dbc"
    special.write_text('BO_ 100 Special: 8 X\n SG_ S : 0|8@1+ (1,0) [0|255] "" X\n')
    dbs = DatabaseSet()
    dbs.add(common)
    dbs.add(special, channel="can1")
    assert dbs.lookup("can1", 100, False).name == "Special"
    assert dbs.lookup("can0", 100, False).name == "Common"
    assert dbs.lookup("can0", 100, True) is None  # same number, other id type
    assert dbs.lookup("can0", 101, False) is None


def test_set_cache_is_cleared_on_add_and_remove(tmp_path):
    path = write_dbc(tmp_path)
    dbs = DatabaseSet()
    assert dbs.lookup("can0", 100, False) is None  # cached miss
    dbs.add(path)
    assert dbs.lookup("can0", 100, False).name == "Engine"
    dbs.remove(path)
    assert dbs.lookup("can0", 100, False) is None
    assert dbs.databases == []
    with pytest.raises(KeyError):
        dbs.remove(path)


def test_set_adding_a_path_again_reloads_it(tmp_path):
    path = write_dbc(tmp_path)
    dbs = DatabaseSet()
    dbs.add(path, channel="can2")
    path.write_text('BO_ 100 Renamed: 8 X\n SG_ S : 0|8@1+ (1,0) [0|255] "" X\n')
    dbs.add(path, channel="can2")
    assert len(dbs.databases) == 1
    assert dbs.lookup("can2", 100, False).name == "Renamed"
    assert dbs.lookup("can0", 100, False) is None


def test_set_same_file_on_two_channels(tmp_path):
    path = write_dbc(tmp_path)
    dbs = DatabaseSet()
    dbs.add(path, channel="can0")
    dbs.add(path, channel="can1")
    assert [d.channel for d in dbs.databases] == ["can0", "can1"]
    assert dbs.lookup("can0", 100, False).name == "Engine"
    assert dbs.lookup("can1", 100, False).name == "Engine"
    assert dbs.lookup("can2", 100, False) is None
    dbs.remove(path)
    assert dbs.databases == []


def test_set_j1939_matches_any_source_address():
    dbs = DatabaseSet()
    loaded = dbs.add(J1939_DEMO)
    assert loaded.is_j1939
    # EEC1 is defined as 0x0CF004FE; frames from another source address and priority match
    assert dbs.lookup("1", 0x0CF00400, True).name == "EEC1"
    assert dbs.lookup("1", 0x18F00417, True).name == "EEC1"
    assert dbs.lookup("1", 0x18FEF100, True).name == "CCVS1"
    assert dbs.lookup("1", 0x0CF00400, False) is None  # 11-bit frames never match on a PGN
    assert dbs.lookup("1", 0x18FEF200, True) is None


def test_set_exact_id_beats_pgn_match(tmp_path):
    exact = tmp_path / "exact.dbc"
    exact.write_text('BO_ 2364539904 ExactEEC1: 8 X\n SG_ S : 0|8@1+ (1,0) [0|255] "" X\n')  # 0x0CF00400
    dbs = DatabaseSet()
    dbs.add(J1939_DEMO)
    dbs.add(exact)
    assert dbs.lookup("1", 0x0CF00400, True).name == "ExactEEC1"
    assert dbs.lookup("1", 0x0CF00401, True).name == "EEC1"


def test_j1939_protocol_from_attribute_default():
    # css_tp_j1939 sets ProtocolType to "" explicitly; the definition's default is J1939PG
    loaded = load_database(DBC_DIR / "css_tp_j1939.dbc")
    assert loaded.is_j1939
    assert loaded.find(0x18FEE317, True).name == "EC1"


def test_non_j1939_database_needs_exact_ids(tmp_path):
    path = tmp_path / "plain.dbc"
    path.write_text('BO_ 2566844926 Plain: 8 X\n SG_ S : 0|8@1+ (1,0) [0|255] "" X\n')  # 0x18FEF1FE
    loaded = load_database(path)
    assert loaded.find(0x18FEF1FE, True).name == "Plain"
    assert loaded.find(0x18FEF100, True) is None


@pytest.mark.slow
def test_set_decodes_real_j1939_truck_log():
    dbs = DatabaseSet()
    dbs.add(J1939_DEMO)
    found: Counter[str] = Counter()
    for frame in can.LogReader(LOG_DIR / "css_j1939_truck_00000001.MF4"):
        message = dbs.lookup(str(frame.channel), frame.arbitration_id, frame.is_extended_id)
        if message is not None:
            found[message.name] += 1
            values = message.decode(frame.data)
            assert all(v == v for v in values.values())  # no NaN
    assert found == {"EEC1": 3993, "CCVS1": 3993}
    assert sum(found.values()) == 7986
