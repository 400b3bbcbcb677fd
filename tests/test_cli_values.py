"""Bad numeric option values stop the command at parse time with one `error:` line, exit 2.

Every case runs through ``main([...])`` as a user's command line would; none of them may
start a bus, a simulator or a replay, and none may print a traceback.
"""

from __future__ import annotations

import argparse
import math

import pytest

from workshop_app import cli_values
from workshop_app.cli import build_parser, main

BAD_VALUES: list[tuple[list[str], str]] = [
    # speeds: finite and 0 or more (0 = as fast as possible)
    (["monitor", "--speed", "-1"], "--speed"),
    (["record", "x.blf", "--speed", "-1"], "--speed"),
    (["gui", "--speed", "-1"], "--speed"),
    (["dtc", "scan", "--speed", "-1"], "--speed"),
    (["monitor", "--speed", "nan"], "--speed"),
    (["replay", "x.log", "-i", "virtual", "--speed", "nan"], "--speed"),
    (["replay", "x.log", "-i", "virtual", "--speed", "inf"], "--speed"),
    (["replay", "x.log", "-i", "virtual", "--speed", "-0.5"], "--speed"),
    # simulator
    (["simulate", "--time-scale", "0"], "--time-scale"),
    (["simulate", "--time-scale", "-1"], "--time-scale"),
    (["simulate", "--time-scale", "nan"], "--time-scale"),
    (["simulate", "--time-scale", "1e300"], "--time-scale"),  # the physics would never catch up
    (["simulate", "--time-scale", "1000"], "--time-scale"),
    (["simulate", "-b", "-5"], "--bitrate"),
    (["simulate", "-b", "12"], "--bitrate"),
    (["simulate", "--port", "0"], "--port"),
    (["simulate", "--port", "70000"], "--port"),
    (["simulate", "--duration", "0"], "--duration"),
    (["simulate", "--duration", "-3"], "--duration"),
    # bus options shared by monitor, record, gui and dtc
    (["monitor", "-b", "0"], "--bitrate"),
    (["monitor", "-b", "-500000"], "--bitrate"),
    (["monitor", "-b", "500k"], "--bitrate"),
    (["monitor", "-b", "50000000"], "--bitrate"),
    (["monitor", "--data-bitrate", "-2000000"], "--data-bitrate"),
    (["monitor", "--port", "-1"], "--port"),
    (["record", "x.blf", "--port", "65536"], "--port"),
    (["monitor", "--duration", "-1"], "--duration"),
    (["monitor", "--duration", "inf"], "--duration"),
    (["monitor", "--interval", "0"], "--interval"),
    (["monitor", "--interval", "nan"], "--interval"),
    (["record", "x.blf", "--duration", "0"], "--duration"),
    (["gui", "--quit-after", "-1"], "--quit-after"),
    # dtc
    (["dtc", "scan", "--timeout", "-1"], "--timeout"),
    (["dtc", "scan", "--timeout", "0"], "--timeout"),
    (["dtc", "clear", "--timeout", "nan"], "--timeout"),
    (["dtc", "scan", "--settle", "-1"], "--settle"),
    (["dtc", "history", "--limit", "-1"], "--limit"),
    (["dtc", "history", "--scan", "0"], "--scan"),
    (["dtc", "report", "r.html", "--scan", "-4"], "--scan"),
    (["dtc", "report", "r.html", "--after", "0"], "--after"),
    (["dtc", "trace", "x.log", "--limit", "-2"], "--limit"),
    # replay and export windows
    (["replay", "x.log", "-i", "virtual", "-b", "-1"], "--bitrate"),
    (["replay", "x.log", "-i", "virtual", "--data-bitrate", "0"], "--data-bitrate"),
    (["replay", "x.log", "-i", "socketcand", "--port", "99999"], "--port"),
    (["replay", "x.log", "-i", "virtual", "--start", "nan"], "--start"),
    (["replay", "x.log", "-i", "virtual", "--start", "-1"], "--start"),
    (["replay", "x.log", "-i", "virtual", "--end", "inf"], "--end"),
    (["export", "x.log", "-o", "y.blf", "--start", "-2"], "--start"),
    (["export", "x.log", "-o", "y.blf", "--end", "nan"], "--end"),
    # absurdly large waits overflow the platform's timeouts deep inside a command
    (["dtc", "scan", "--no-sweep", "--timeout", "1e300"], "--timeout"),
    (["replay", "x.log", "-i", "virtual", "--speed", "1e-300"], "--speed"),
    (["monitor", "--duration", "1e12"], "--duration"),
    (["monitor", "--interval", "1e300"], "--interval"),
    (["export", "x.log", "-o", "y.blf", "--start", "1e300"], "--start"),
    (["dtc", "scan", "--fault", "misfire_cyl2", "--settle", "1e300"], "--settle"),
    # history
    (["history", "--limit", "-5"], "--limit"),
]


@pytest.mark.parametrize(("argv", "option"), BAD_VALUES, ids=[" ".join(a) for a, _ in BAD_VALUES])
def test_bad_numeric_option_is_one_error_line_and_exit_2(capsys, argv, option):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    assert exit_info.value.code == 2
    assert "Traceback" not in err and out == ""
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1, err
    assert errors[0] == err.splitlines()[-1]
    assert f"argument {option}" in errors[0] or f"/{option}" in errors[0], errors[0]
    assert repr(argv[-1]) in errors[0], errors[0]  # every case ends with its bad value


def test_every_numeric_option_is_checked():
    """No option of any sub-command parses numbers with bare int/float (NaN, -1 slip through)."""
    unchecked: list[str] = []

    def walk(parser: argparse.ArgumentParser, prefix: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    walk(child, f"{prefix} {name}")
            elif action.type in (int, float) and "--seed" not in action.option_strings:
                unchecked.append(f"{prefix} {'/'.join(action.option_strings)}")

    walk(build_parser(), "workshop")
    assert unchecked == []


def test_good_values_pass_and_zero_means_as_fast_as_possible():
    parser = build_parser()
    args = parser.parse_args(["monitor", "--speed", "0", "-b", "500000", "--port", "29536"])
    assert (args.speed, args.bitrate, args.port) == (0.0, 500_000, 29536)
    args = parser.parse_args(["simulate", "-b", "0", "--time-scale", "20", "--duration", "0.5"])
    assert (args.bitrate, args.time_scale, args.duration) == (0, 20.0, 0.5)
    args = parser.parse_args(["replay", "x.log", "-i", "virtual", "--speed", "2.5", "--start", "0"])
    assert (args.speed, args.start) == (2.5, 0.0)
    args = parser.parse_args(["dtc", "history", "--limit", "0"])
    assert args.limit == 0
    args = parser.parse_args(["monitor", "--data-bitrate", "2000000", "-b", "33333"])
    assert (args.data_bitrate, args.bitrate) == (2_000_000, 33_333)


@pytest.mark.parametrize(
    ("check", "text"),
    [
        (cli_values.positive_float, "abc"),
        (cli_values.positive_float, "-inf"),
        (cli_values.non_negative_int, "1.5"),
        (cli_values.port, "http"),
        (cli_values.bitrate_or_zero, "-0.0"),
        (cli_values.speed, "NaN"),
    ],
)
def test_validators_refuse_with_argparse_errors(check, text):
    with pytest.raises(argparse.ArgumentTypeError) as info:
        check(text)
    assert repr(text) in str(info.value)


def test_validators_return_numbers():
    assert cli_values.finite_float("-2.5") == -2.5
    assert cli_values.speed("0") == 0.0
    assert cli_values.bitrate_or_zero("0") == 0
    assert cli_values.data_bitrate("8000000") == 8_000_000
    assert math.isclose(cli_values.positive_float("1e-3"), 0.001)
