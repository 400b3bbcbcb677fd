"""DBC text cut into top-level statements, and the regular grammars of those statements.

cantools parses a DBC all-or-nothing. To repair one, we first need its statements, each
with its 1-based line, whatever is broken around them. ``split_statements`` does that from
strings, ';' and keywords at the start of a line only, so it never fails; the grammars
below then say whether one statement is well-formed (``fullmatch`` on its text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["GRAMMARS", "Note", "Statement", "bare_fraction_edits", "split_statements"]

Note = tuple[int | None, str]

# --- lexical pieces, mirroring the cantools tokenizer -------------------------------------

_NUM = r"[-+]?\d+\.?\d*(?:[eE][+-]?\d+)?"
_ID = r"[A-Za-z_][A-Za-z0-9_]*"
_STR = r'"(?:\\"|[^"])*?"'
_TAIL = r"(?:\s*//[^\n]*)*"  # trailing line comments inside a line-based statement

# Statements that end with ';'. The others (VERSION, NS_, BS_, BU_, BO_, SG_) end where
# the next statement starts.
_SEMI_KINDS = frozenset(
    {
        "CM_", "BA_DEF_", "BA_DEF_DEF_", "BA_", "BA_REL_", "BA_DEF_REL_", "BA_DEF_DEF_REL_",
        "VAL_", "VAL_TABLE_", "SIG_VALTYPE_", "SG_MUL_VAL_", "BO_TX_BU_", "SIG_GROUP_", "EV_",
        "ENVVAR_DATA_", "BA_DEF_SGTYPE_", "BA_SGTYPE_", "SGTYPE_", "SGTYPE_VAL_",
        "SIG_TYPE_REF_", "SIGTYPE_VALTYPE_", "CAT_DEF_", "CAT_", "FILTER", "EV_DATA_",
        "NS_DESC_", "BU_SG_REL_", "BU_BO_REL_", "BU_EV_REL_",
    }
)  # fmt: skip
_LINE_KINDS = frozenset({"VERSION", "NS_", "BS_", "BU_", "BO_", "SG_"})
_ONE_LINE_KINDS = frozenset({"VERSION", "BS_", "BO_", "SG_"})
# Keywords the cantools grammar has no rule for: such a statement always fails to parse.
_UNSUPPORTED = frozenset(
    {
        "BA_DEF_SGTYPE_", "BA_SGTYPE_", "SGTYPE_", "SGTYPE_VAL_", "SIG_TYPE_REF_",
        "SIGTYPE_VALTYPE_", "CAT_DEF_", "CAT_", "FILTER", "EV_DATA_", "NS_DESC_",
        "BU_SG_REL_", "BU_BO_REL_", "BU_EV_REL_",
    }
)  # fmt: skip
# Keywords that also occur inside other statements (CM_ SG_ ..., BA_ BO_ ...).
_SUB_KEYWORDS = frozenset({"SG_", "BO_", "BU_", "EV_", "BU_SG_REL_", "BU_BO_REL_", "BU_EV_REL_"})
_KEYWORDS = sorted(_SEMI_KINDS | _LINE_KINDS, key=len, reverse=True)
_KW = "|".join(_KEYWORDS)

# Only strings, ';', comments and keywords at the start of a line matter for splitting;
# every alternative starts with a fixed character so the scan runs at C speed.
_EVENT_RE = re.compile(rf'"(?:\\"|[^"])*?"|//[^\n]*|(?P<semi>;)|\n[ \t]*(?P<kw>{_KW})\b')
_KW_AT_RE = re.compile(rf"[ \t]*(?P<kw>{_KW})\b")
_BO_HEAD_RE = re.compile(r"BO_\s+\d+\s+\w+\s*:")
_SG_HEAD_RE = re.compile(r"SG_\s+\w+(?:\s+\w+)?\s*:")
_NS_ENTRY_RE = re.compile(r"(?:[ \t]+[A-Z_]+)*[ \t]*(?:\r?\n|$)")
_LINE_END_RE = re.compile(r'(?:[^"\n]+|"(?:\\"|[^"])*?")*')  # up to the end of the line, strings included
_JUNK_RE = re.compile(r"\S")
_GAP_COMMENT_RE = re.compile(r"//[^\n]*")

# --- statement grammars (fullmatch on a statement's text) ----------------------------------

_BO_RE = re.compile(rf"BO_\s+(?P<id>\d+)\s+(?P<name>{_ID})\s*:\s*(?P<dlc>\d+)\s+(?P<sender>{_ID}){_TAIL}")
_SG_RE = re.compile(
    rf"SG_\s+(?P<name>{_ID})(?:\s+(?P<mux>{_ID}))?\s*:\s*(?P<start>\d+)\s*\|\s*(?P<length>\d+)"
    rf"\s*@\s*(?P<order>\d+)\s*(?P<sign>[+-])\s*\(\s*{_NUM}\s*,\s*{_NUM}\s*\)"
    rf"\s*\[\s*{_NUM}\s*\|\s*{_NUM}\s*\]\s*(?P<unit>{_STR})"
    rf"(?:\s*(?P<rx>{_ID}(?:\s*,\s*{_ID})*))?{_TAIL}",
    re.S,
)
_MUX_MARKER_RE = re.compile(r"M|m\d+M?")
_CM_RE = re.compile(
    rf"CM_(?:\s+SG_\s+(?P<sg_id>\d+)\s+(?P<sg_name>{_ID})|\s+BO_\s+(?P<bo_id>\d+)"
    rf"|\s+BU_\s+(?P<bu>{_ID})|\s+EV_\s+(?P<ev>{_ID}))?\s*(?P<text>{_STR})\s*;",
    re.S,
)
_CM_NO_SIGNAL_RE = re.compile(rf"CM_\s+SG_\s+\d+\s*{_STR}\s*;", re.S)
_CM_BARE_ID_RE = re.compile(rf"CM_\s+\d+\s*{_STR}\s*;", re.S)
_VAL_RE = re.compile(
    rf"VAL_\s+(?:(?P<id>\d+)\s+)?(?P<name>{_ID})(?P<pairs>(?:\s+{_NUM}\s*{_STR})*)\s*;", re.S
)
_VAL_TABLE_RE = re.compile(rf"VAL_TABLE_\s+(?P<name>{_ID})(?P<pairs>(?:\s+{_NUM}\s*{_STR})*)\s*;", re.S)
_PAIR_RE = re.compile(rf"({_NUM})\s*{_STR}", re.S)
_INT_RE = re.compile(r"[-+]?\d+")
_BA_DEF_RE = re.compile(
    rf"BA_DEF_(?:\s+(?P<obj>SG_|BO_|BU_|EV_))?\s+(?P<name>{_STR})\s*(?P<type>{_ID})"
    rf"(?P<values>(?:\s*{_STR}(?:\s*,\s*{_STR})*)|(?:\s+{_NUM})*)\s*;",
    re.S,
)
_BA_DEF_REL_RE = re.compile(
    rf"BA_DEF_REL_(?:\s+(?P<obj>BU_SG_REL_|BU_BO_REL_|BU_EV_REL_))?\s+(?P<name>{_STR})\s*(?P<type>{_ID})"
    rf"(?P<values>(?:\s*{_STR}(?:\s*,\s*{_STR})*)|(?:\s+{_NUM})*)\s*;",
    re.S,
)
_BA_DEF_DEF_RE = re.compile(rf"BA_DEF_DEF_(?:REL_)?\s+(?P<name>{_STR})\s*(?P<value>{_NUM}|{_STR})\s*;", re.S)
_BA_RE = re.compile(
    rf"BA_\s+(?P<name>{_STR})\s*(?:BO_\s+(?P<bo_id>\d+)|SG_\s+(?P<sg_id>\d+)\s+(?P<sg_name>{_ID})"
    rf"|BU_\s+(?P<bu>{_ID})|EV_\s+(?P<ev>{_ID}))?(?:\s+(?P<num>{_NUM})|\s*(?P<str>{_STR}))\s*;",
    re.S,
)
_BA_REL_RE = re.compile(
    rf"BA_REL_\s+(?P<name>{_STR})\s*(?:BU_SG_REL_\s+(?P<sg_node>{_ID})\s+SG_\s+(?P<sg_id>\d+)\s+"
    rf"(?P<sg_name>{_ID})|BU_BO_REL_\s+(?P<bo_node>{_ID})\s+(?P<bo_id>\d+))"
    rf"(?:\s+(?P<num>{_NUM})|\s*(?P<str>{_STR}))\s*;",
    re.S,
)
_SIG_VALTYPE_RE = re.compile(rf"SIG_VALTYPE_\s+(?P<id>\d+)\s+(?P<name>{_ID})\s*:\s*(?P<type>\d+)\s*;")
_SG_MUL_VAL_RE = re.compile(
    rf"SG_MUL_VAL_\s+(?P<id>\d+)\s+(?P<name>{_ID})\s+(?P<mux>{_ID})\s+\d+\s*-\d+(?:\s*,\s*\d+\s*-\d+)*\s*;"
)
_BO_TX_BU_RE = re.compile(rf"BO_TX_BU_\s+(?P<id>\d+)\s*:\s*{_ID}(?:\s*,\s*{_ID})*\s*;")
_SIG_GROUP_RE = re.compile(
    rf"SIG_GROUP_\s+(?P<id>\d+)\s+(?P<name>{_ID})\s+\d+\s*:(?P<signals>(?:\s*{_ID})*)\s*;"
)
_BU_RE = re.compile(rf"BU_\s*:(?P<nodes>(?:\s*{_ID})*){_TAIL}")
_VERSION_RE = re.compile(rf"VERSION\s*{_STR}{_TAIL}", re.S)
_BS_RE = re.compile(rf"BS_\s*:{_TAIL}")
_ID_TOKEN_RE = re.compile(_ID)
_STRING_RE = re.compile(_STR, re.S)
_KEYWORD_LINE_RE = re.compile(rf"\n[ \t]*(?:{_KW})\b")
_SIGNAL_SHAPE_RE = re.compile(r"\d+\s*\|\s*\d+\s*@\s*[01]")
_MESSAGE_LINE_RE = re.compile(r"^[ \t]*(?:BO_|SG_)\s", re.M)

_GRAMMARS: dict[str, re.Pattern[str]] = {
    "BO_": _BO_RE,
    "SG_": _SG_RE,
    "CM_": _CM_RE,
    "VAL_": _VAL_RE,
    "VAL_TABLE_": _VAL_TABLE_RE,
    "BA_DEF_": _BA_DEF_RE,
    "BA_DEF_REL_": _BA_DEF_REL_RE,
    "BA_DEF_DEF_": _BA_DEF_DEF_RE,
    "BA_DEF_DEF_REL_": _BA_DEF_DEF_RE,
    "BA_": _BA_RE,
    "BA_REL_": _BA_REL_RE,
    "SIG_VALTYPE_": _SIG_VALTYPE_RE,
    "SG_MUL_VAL_": _SG_MUL_VAL_RE,
    "BO_TX_BU_": _BO_TX_BU_RE,
    "SIG_GROUP_": _SIG_GROUP_RE,
    "BU_": _BU_RE,
    "VERSION": _VERSION_RE,
    "BS_": _BS_RE,
}
_ID_GROUPS = ("id", "bo_id", "sg_id")  # groups holding a DBC frame id in the grammars above
GRAMMARS = _GRAMMARS
_MAX_SNIPPET = 70

# A number written without its leading zero (".25", "-.5"): the cantools tokenizer wants a
# digit first, so one such factor in a signal makes the whole file fail to parse.
_BARE_FRACTION_RE = re.compile(rf"(?P<str>{_STR})|(?<![\w.])(?P<sign>[-+]?)\.(?P<digits>\d)", re.S)


def bare_fraction_edits(text: str) -> list[tuple[int, int, str]]:
    """Edits that write ".25" as "0.25" (outside strings), as (begin, end, replacement)."""
    return [
        (m.start("sign"), m.start("digits"), f"{m['sign']}0.")
        for m in _BARE_FRACTION_RE.finditer(text)
        if m["str"] is None
    ]


@dataclass(slots=True)
class Statement:
    """One top-level DBC statement: its keyword, original text and 1-based first line."""

    kind: str  # the keyword, or "?" for text that is no statement at all
    start: int  # offset in the original text
    text: str
    line: int
    parent: int | None = None  # for SG_: index of the BO_ it belongs to


def _snippet(text: str) -> str:
    first = " ".join(text.split())
    return first if len(first) <= _MAX_SNIPPET else first[: _MAX_SNIPPET - 3] + "..."


def _unquote(token: str) -> str:
    return token[1:-1].replace('\\"', '"')


# --- splitting --------------------------------------------------------------------------------


def split_statements(text: str) -> list[Statement]:
    """Cut DBC text into top-level statements; text between statements becomes kind "?"."""
    spans = [_junk_free(text, kind, s, e) for kind, s, e in _statement_spans(text)]
    spans.append(("", len(text), len(text)))  # sentinel: junk after the last statement
    statements: list[Statement] = []
    line = 1
    counted = 0
    gap_start = 0
    last_bo: int | None = None
    for kind, s, e in spans:
        if gap_start < s and _JUNK_RE.search(text, gap_start, s):
            junk = _junk_span(text, gap_start, s)
            if junk is not None:
                line += text.count("\n", counted, junk[0])
                counted = junk[0]
                statements.append(Statement("?", junk[0], text[junk[0] : junk[1]], line))
                last_bo = None
        if not kind:
            break
        line += text.count("\n", counted, s)
        counted = s
        statement = Statement(kind, s, text[s:e], line)
        if kind == "SG_":
            statement.parent = last_bo
        else:
            last_bo = len(statements) if kind == "BO_" else None
        statements.append(statement)
        gap_start = e
    return statements


def _statement_spans(text: str) -> list[tuple[str, int, int]]:
    """(keyword, start, end) of each statement, found from ';', strings and line starts."""
    spans: list[tuple[str, int, int]] = []
    kind: str | None = None
    start = 0
    first = _KW_AT_RE.match(text)
    if first:
        kind, start = first["kw"], first.start("kw")
    for m in _EVENT_RE.finditer(text):
        group = m.lastgroup
        if group is None:
            continue  # a string or comment: only skipped over
        if group == "kw":
            kw, pos = m["kw"], m.start("kw")
            if kind in _SEMI_KINDS:
                # A keyword at the start of a line while a ';' is still due: either a keyword
                # used inside this statement (CM_\n SG_ ...) or a statement whose ';' is missing.
                if not _starts_new_statement(text, kw, pos):
                    continue
            elif kind == "NS_" and _NS_ENTRY_RE.match(text, m.end()):
                continue  # one of the bare keywords listed in the NS_ section
            if kind is not None:
                spans.append((kind, start, pos))
            kind, start = kw, pos
        elif kind in _SEMI_KINDS:
            spans.append((kind, start, m.end()))
            kind = None
            nxt = _KW_AT_RE.match(text, m.end())  # another statement on the same line
            if nxt:
                kind, start = nxt["kw"], nxt.start("kw")
    if kind is not None:
        spans.append((kind, start, len(text)))
    return spans


def _junk_free(text: str, kind: str, start: int, end: int) -> tuple[str, int, int]:
    """Trim a line-based statement: trailing blanks, and for one-line kinds the next lines."""
    if kind in _ONE_LINE_KINDS:
        # these end with their line: a stray line after a signal is junk, not part of it
        line = _LINE_END_RE.match(text, start)
        assert line is not None  # the pattern also matches an empty line
        end = min(end, line.end())
    if kind in _LINE_KINDS:
        while end > start and text[end - 1].isspace():
            end -= 1
    return kind, start, end


def _starts_new_statement(text: str, kw: str, pos: int) -> bool:
    if kw not in _SUB_KEYWORDS:
        return True
    if kw == "BO_":
        return _BO_HEAD_RE.match(text, pos) is not None
    if kw == "SG_":
        return _SG_HEAD_RE.match(text, pos) is not None
    return False


def _junk_span(text: str, begin: int, end: int) -> tuple[int, int] | None:
    """Text between statements must be whitespace or // comments; the span of anything else."""
    cleaned = _GAP_COMMENT_RE.sub(lambda m: " " * len(m.group()), text[begin:end])
    first = _JUNK_RE.search(cleaned)
    if first is None:
        return None
    return begin + first.start(), begin + len(cleaned.rstrip())
