"""The socketcand protocol's pure functions, with literal strings."""

from __future__ import annotations

import pytest

from workshop_app.core.sim.socketcand_protocol import (
    BadInput,
    Command,
    ProtocolError,
    error_line,
    parse_fdsend,
    parse_send,
    parse_sendrtr,
    quote,
    split_commands,
)


def test_quote_keeps_printable_text_and_escapes_the_rest():
    assert quote("12G") == '"12G"'
    assert quote("a<b>c") == '"a\\x3cb\\x3ec"'
    assert quote('say "hi" \\ bye') == '"say \\"hi\\" \\\\ bye"'
    assert quote("\x00\xe9\n") == '"\\x00\\xe9\\x0a"'
    assert quote("\u20ac") == '"\\u20ac"'
    assert quote("x" * 50, limit=5) == '"xxxxx"...'


def test_error_line_never_ends_early():
    line = error_line("odd > reason <")
    assert line == "< error odd \\x3e reason \\x3c >"
    assert line.count(">") == 1 and line.count("<") == 1


def test_split_commands_keeps_the_unfinished_rest():
    items, rest = split_commands("< open can0 >< rawmode >< sen")
    assert items == [Command("open", ["can0"]), Command("rawmode", [])]
    assert rest == "< sen"
    items, rest = split_commands(rest + "d 123 0 >")
    assert items == [Command("send", ["123", "0"])] and rest == ""


def test_split_commands_reports_what_is_not_a_command():
    items, rest = split_commands("junk < >  < abc < echo > tail")
    assert items == [
        BadInput('text outside a command: "junk"'),
        BadInput("empty command"),
        BadInput('unterminated command "abc"'),
        Command("echo", []),
        BadInput('text outside a command: "tail"'),
    ]
    assert rest == ""
    items, rest = split_commands("<" + "x" * 2000)
    assert items == [BadInput("command too long (over 1024 characters)")] and rest == ""
    assert split_commands(" \r\n") == ([], "")


def test_parse_send_accepts_decimal_and_python_cans_hex_lengths():
    assert bytes(parse_send(["123", "2", "AA", "bb"]).data) == b"\xaa\xbb"
    twelve = [f"{n:x}" for n in range(12)]
    for length in ("12", "C"):
        msg = parse_send(["7FF", length, *twelve])
        assert msg.is_fd and len(msg.data) == 12 and not msg.bitrate_switch
    ext = parse_send(["1ABCDEF0", "0"])
    assert ext.is_extended_id and ext.arbitration_id == 0x1ABCDEF0


@pytest.mark.parametrize(
    ("parse", "args", "reason"),
    [
        (parse_send, ["12G", "0"], 'bad CAN id "12G"'),
        (parse_send, ["800", "0"], 'standard CAN id "800" out of range (extended ids take 8 digits)'),
        (parse_send, ["123", "3", "1", "2"], 'send length "3" does not match 2 data bytes'),
        (parse_send, ["123", "1", "<>"], 'bad data byte "\\x3c\\x3e"'),
        (parse_sendrtr, ["123", "9"], 'bad dlc "9" in sendrtr'),
        (parse_fdsend, ["123", "ZZ", "0"], 'bad flags "ZZ" in fdsend'),
        (parse_fdsend, ["123", "1", "9", *"123456789"], "9 bytes is not a CAN FD frame length"),
    ],
)
def test_parse_errors_quote_the_offending_token(parse, args, reason):
    with pytest.raises(ProtocolError) as info:
        parse(args)
    assert str(info.value) == reason
