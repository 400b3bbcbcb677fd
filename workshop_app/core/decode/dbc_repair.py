"""Tolerant DBC loading: split a DBC into statements, repair or drop what cantools refuses.

cantools parses a DBC all-or-nothing, so one bad comment makes a whole database unusable.
This module cuts the text into top-level statements (each with its 1-based line), fixes
the problems real files have, and loads the result with cantools. Every change is reported
as a note ``(line, message)``; nothing is dropped without one.

Rendering keeps the line structure (a dropped statement becomes as many newlines as it
had), so the line/column in a cantools error points at the original file.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import cantools.database
import textparser
from cantools.database.can import Database

__all__ = ["DbcLoadResult", "DbcUnreadableError", "Statement", "load_dbc_text", "split_statements"]

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
# Statements that refer to messages, signals, nodes or attributes, or may repeat one another.
_NOTE_KINDS = frozenset(
    {
        "CM_", "BA_", "BA_REL_", "SG_MUL_VAL_", "SIG_GROUP_", "BO_TX_BU_", "BA_DEF_", "BA_DEF_REL_",
        "BA_DEF_DEF_", "BA_DEF_DEF_REL_", "VAL_TABLE_", "VAL_", "SIG_VALTYPE_",
    }
)  # fmt: skip

# A name starting with a digit: cantools splits "1stGear" into NUMBER "1" + WORD "stGear".
_DIGIT_NAME_RE = re.compile(rf"(?P<str>{_STR})|(?<![A-Za-z0-9_.])(?P<word>\d+[A-Za-z_][A-Za-z0-9_]*)", re.S)
_DIGIT_NAME_HINT_RE = re.compile(r"(?<![A-Za-z0-9_.])\d+[A-Za-z_]")
_EXPONENT_RE = re.compile(r"\d+[eE]\d*")

_EXTENDED_FLAG = 0x80000000
_INDEPENDENT_MSG = "VECTOR__INDEPENDENT_SIG_MSG"  # cantools skips this pseudo message
_NUMERIC_ATTR_TYPES = frozenset({"INT", "HEX", "FLOAT", "ENUM"})
# attributes cantools reads as numbers: the definition types it accepts for them
_NUMBER_ATTRIBUTES = {"GenSigStartValue": _NUMERIC_ATTR_TYPES, "SPN": frozenset({"INT", "HEX", "ENUM"})}
_MAX_SNIPPET = 70


class DbcUnreadableError(Exception):
    """The DBC cannot be loaded at all (raised with the 1-based line where known)."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


@dataclass(slots=True)
class Statement:
    """One top-level DBC statement: its keyword, original text and 1-based first line."""

    kind: str  # the keyword, or "?" for text that is no statement at all
    start: int  # offset in the original text
    text: str
    line: int
    parent: int | None = None  # for SG_: index of the BO_ it belongs to


@dataclass(slots=True)
class DbcLoadResult:
    """A loaded DBC, the notes about what was repaired, and where definitions are."""

    db: Database
    notes: list[Note]
    message_lines: dict[int, int]  # DBC frame id (with extended flag) -> line of its BO_
    signal_lines: dict[tuple[int, str], int]  # (DBC frame id, signal name) -> line of its SG_

    def line_of(self, frame_id: int, is_extended: bool, signal: str | None = None) -> int | None:
        """Line of a message's (or one of its signals') definition, if known."""
        dbc_id = frame_id | _EXTENDED_FLAG if is_extended else frame_id
        if signal is None:
            return self.message_lines.get(dbc_id)
        return self.signal_lines.get((dbc_id, signal))


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
        end = min(end, _LINE_END_RE.match(text, start).end())
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


# --- repair -------------------------------------------------------------------------------------


_LOG_LOCK = threading.Lock()


@contextlib.contextmanager
def _captured_cantools_logs() -> Iterator[list[logging.LogRecord]]:
    """Collect cantools' log records (e.g. overwritten messages) instead of printing them."""
    records: list[logging.LogRecord] = []

    class _Collector(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("cantools")
    handler = _Collector(logging.WARNING)
    with _LOG_LOCK:
        propagate = logger.propagate
        logger.addHandler(handler)
        logger.propagate = False
        try:
            yield records
        finally:
            logger.removeHandler(handler)
            logger.propagate = propagate


def _cantools_load(text: str) -> Database:
    db = cantools.database.can.Database(strict=False)
    db.add_dbc_string(text)
    return db


def load_dbc_text(text: str) -> DbcLoadResult:
    """Load DBC text with cantools, repairing or dropping what it refuses.

    Raises DbcUnreadableError when no usable database can be made (a message or signal
    definition with a syntax error, no messages at all).
    """
    return _Repairer(text).run()


@dataclass(slots=True)
class _AttrDef:
    type_name: str
    choices: list[str]


class _Repairer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.stmts = split_statements(text)
        self.texts: list[str] = [s.text for s in self.stmts]  # current (possibly edited) text
        self.dropped: dict[int, str | None] = {}  # statement index -> reason (None: with parent)
        self.suspects: list[int] = []  # BO_/SG_ our grammar rejects; cantools decides
        self.notes: list[Note] = []
        self._matches: dict[int, tuple[str, re.Match[str] | None]] = {}

    # -- helpers

    def parse(self, index: int) -> re.Match[str] | None:
        text = self.texts[index]
        cached = self._matches.get(index)
        if cached is not None and cached[0] is text:
            return cached[1]
        grammar = _GRAMMARS.get(self.stmts[index].kind)
        match = grammar.fullmatch(text) if grammar is not None else None
        self._matches[index] = (text, match)
        return match

    def edit(self, index: int, edits: list[tuple[int, int, str]]) -> None:
        text = self.texts[index]
        for begin, end, replacement in sorted(edits, reverse=True):
            text = text[:begin] + replacement + text[end:]
        self.texts[index] = text

    def note(self, index: int, message: str) -> None:
        self.notes.append((self.stmts[index].line, message))

    def drop(self, index: int, reason: str) -> None:
        self.dropped.setdefault(index, reason)

    def kind_indices(self, *kinds: str) -> Iterator[int]:
        for index, statement in enumerate(self.stmts):
            if statement.kind in kinds:
                yield index

    # -- main flow

    def run(self) -> DbcLoadResult:
        with _captured_cantools_logs() as records:
            db = self._try_as_is()
            if db is None:
                self._cut_at_runaway_string()
                if not any(s.kind == "BO_" and i not in self.dropped for i, s in enumerate(self.stmts)):
                    raise DbcUnreadableError("no message definitions found")
                self._repair_statements()
                db = self._load_loop(records)
            log_notes: list[Note] = [
                (None, f"cantools: {r.getMessage()}")
                for r in records
                if not r.getMessage().startswith("Overwriting")  # duplicates are reported with lines
            ]
        if not db.messages:
            raise DbcUnreadableError("no message definitions found")
        notes = self.notes + self._reference_notes() + log_notes
        notes.sort(key=lambda n: n[0] or 0)
        message_lines, signal_lines = self._definition_lines()
        return DbcLoadResult(db, notes, message_lines, signal_lines)

    def _try_as_is(self) -> Database | None:
        """The fast path: the file as it is, if cantools takes it and loses nothing."""
        if not any(s.kind == "BO_" for s in self.stmts):
            return None
        try:
            db = _cantools_load(self.text)
        except Exception:
            return None
        # cantools ignores an unparsable tail of the file without a word: count what loaded.
        if self._lost_definitions(db, self.dropped):
            return None
        for index, statement in enumerate(self.stmts):
            if statement.kind == "?":
                self.note(index, f"unrecognised text ignored: {_snippet(statement.text)}")
            elif statement.kind in _SEMI_KINDS and not self.texts[index].rstrip().endswith(";"):
                self.note(
                    index, f"{statement.kind} statement without ';' ignored: {_snippet(statement.text)}"
                )
        return db

    def _cut_at_runaway_string(self) -> None:
        """A missing quote makes every later string pair up wrongly: stop reading there."""
        offset = _runaway_string(self.text)
        if offset is None:
            return
        line = self.text.count("\n", 0, offset) + 1
        if _MESSAGE_LINE_RE.search(self.text, offset):
            raise DbcUnreadableError(
                "unbalanced quote: the string opened on this line runs into later definitions", line
            )
        first = max(bisect.bisect_right([s.start for s in self.stmts], offset) - 1, 0)
        for index in range(first, len(self.stmts)):
            self.dropped[index] = None
        self.dropped[first] = f"unbalanced quote on line {line}: the rest of the file is ignored"

    def _repair_statements(self) -> None:
        """Repairs that need only the statements themselves (done once, before loading)."""
        for index, statement in enumerate(self.stmts):
            if index in self.dropped:
                continue
            if statement.kind == "?":
                if _SIGNAL_SHAPE_RE.search(statement.text):
                    # start|length@order: a signal whose SG_ keyword is damaged
                    raise DbcUnreadableError(
                        f"syntax error in signal definition: {_snippet(statement.text)!r}", statement.line
                    )
                self.drop(index, f"unrecognised text dropped: {_snippet(statement.text)}")
            elif statement.kind in _UNSUPPORTED:
                self.drop(index, f"{statement.kind} statements are not supported; dropped")
        self._rename_digit_names()
        id_map = self._repair_messages()
        self._repair_signals()
        self._remap_ids(id_map)
        self._check_other_statements()

    def _rename_digit_names(self) -> None:
        renamed: dict[str, str] = {}
        taken: set[str] | None = None
        where: dict[str, list[int]] = {}
        for index, text in enumerate(self.texts):
            if index in self.dropped or not _DIGIT_NAME_HINT_RE.search(text):
                continue
            edits: list[tuple[int, int, str]] = []
            for m in _DIGIT_NAME_RE.finditer(text):
                word = m["word"]
                if word is None or _is_exponent_number(word, text, m.end("word")):
                    continue
                if word not in renamed:
                    if taken is None:
                        taken = set(_ID_TOKEN_RE.findall(self.text))
                    new = "_" + word
                    while new in taken:
                        new = "_" + new
                    taken.add(new)
                    renamed[word] = new
                edits.append((m.start("word"), m.end("word"), renamed[word]))
                where.setdefault(word, []).append(index)
            if edits:
                self.edit(index, edits)
        for old, new in renamed.items():
            message = f"name {old!r} starts with a digit; renamed to {new!r}"
            defining = [i for i in where[old] if self._defines(i, new)]
            for index in defining or where[old][:1]:
                self.note(index, message)

    def _defines(self, index: int, name: str) -> bool:
        kind = self.stmts[index].kind
        if kind in ("BO_", "SG_", "VAL_TABLE_", "SIG_GROUP_"):
            match = self.parse(index)
            return match is not None and match["name"] == name
        if kind == "BU_":
            match = self.parse(index)
            return match is not None and name in match["nodes"].split()
        return False

    def _repair_messages(self) -> dict[int, int]:
        id_map: dict[int, int] = {}
        for index in self.kind_indices("BO_"):
            if index in self.dropped:
                continue
            match = self.parse(index)
            if match is None:
                self.suspects.append(index)
                continue
            dbc_id = int(match["id"])
            if 0x7FF < dbc_id < _EXTENDED_FLAG:
                new_id = dbc_id | _EXTENDED_FLAG
                id_map[dbc_id] = new_id
                self.edit(index, [(match.start("id"), match.end("id"), str(new_id))])
                self.note(
                    index,
                    f"message {match['name']}: frame id 0x{dbc_id:X} is longer than 11 bits but lacks "
                    f"the extended-id flag; loaded as 29-bit id (DBC id {new_id})",
                )
            elif (dbc_id & ~_EXTENDED_FLAG) >= 1 << 29 and match["name"] != _INDEPENDENT_MSG:
                self.drop(index, f"message {match['name']}: frame id {dbc_id} exceeds 29 bits; dropped")
        return id_map

    def _repair_signals(self) -> None:
        for index in self.kind_indices("SG_"):
            statement = self.stmts[index]
            if index in self.dropped:
                continue
            if statement.parent is None:
                self.suspects.append(index)  # a signal outside any message
                continue
            match = self.parse(index)
            if match is None:
                self.suspects.append(index)
                continue
            name = match["name"]
            edits: list[tuple[int, int, str]] = []
            if match["rx"] is None:
                # cantools needs a receiver list; without one it fails (or at the end of the
                # file silently loses the signal).
                edits.append((match.end("unit"), match.end("unit"), " Vector__XXX"))
                self.note(index, f"signal {name}: no receiver node; Vector__XXX assumed")
            mux = match["mux"]
            if mux is not None and not _MUX_MARKER_RE.fullmatch(mux):
                edits.append((match.start("mux") - 1, match.end("mux"), ""))
                self.note(index, f"signal {name}: invalid multiplexer marker {mux!r} ignored")
            if edits:
                self.edit(index, edits)
            if int(match["length"]) == 0:
                self.drop(index, f"signal {name}: length 0; dropped")

    def _remap_ids(self, id_map: dict[int, int]) -> None:
        if not id_map:
            return
        for index, statement in enumerate(self.stmts):
            if statement.kind == "BO_" or index in self.dropped:
                continue
            match = self.parse(index)
            if match is None:
                continue
            edits = []
            for group in _ID_GROUPS:
                if group in match.re.groupindex and match[group] is not None:
                    new_id = id_map.get(int(match[group]))
                    if new_id is not None:
                        edits.append((match.start(group), match.end(group), str(new_id)))
            if edits:
                self.edit(index, edits)

    def _check_other_statements(self) -> None:
        for index, statement in enumerate(self.stmts):
            kind = statement.kind
            if index in self.dropped or kind in ("BO_", "SG_") or kind not in _GRAMMARS:
                continue
            text = self.texts[index]
            match = self.parse(index)
            if match is None:
                self.drop(index, _malformed_reason(kind, text))
            elif kind in ("VAL_", "VAL_TABLE_"):
                bad = [v for v in _PAIR_RE.findall(match["pairs"]) if not _INT_RE.fullmatch(v)]
                if bad:
                    self.drop(index, f"{kind} {match['name']}: non-integer value {bad[0]}; dropped")
            elif kind in ("BA_DEF_", "BA_DEF_REL_"):
                values = match["values"].split()
                numeric = match["type"] in ("INT", "HEX", "FLOAT")
                if numeric and values and len(values) < 2:
                    self.drop(
                        index, f"attribute definition {match['name']}: needs minimum and maximum; dropped"
                    )

    def _dependent_drops(self, dropped: dict[int, str | None]) -> dict[int, str | None]:
        """Statements that cannot stay once `dropped` are gone: references cantools refuses."""
        out: dict[int, str | None] = {}
        signals, independent = self._definitions(dropped)
        attr_defs = self._attribute_definitions(dropped, "BA_DEF_")
        rel_defs = self._attribute_definitions(dropped, "BA_DEF_REL_")
        for index, statement in enumerate(self.stmts):
            if index in dropped:
                continue
            kind = statement.kind
            if kind == "SG_":
                if statement.parent in dropped:
                    out[index] = None
                continue
            if kind not in ("VAL_", "SIG_VALTYPE_", "BA_", "BA_REL_", "BA_DEF_DEF_", "BA_DEF_DEF_REL_"):
                continue
            match = self.parse(index)
            if match is None:
                continue
            if kind in ("VAL_", "SIG_VALTYPE_"):
                if match["id"] is None:
                    continue
                if int(match["id"]) in independent:
                    out[index] = f"{kind} for {match['name']}, a signal outside any message; dropped"
                    continue
                reason = _reference_problem(signals, int(match["id"]), match["name"])
                if reason is not None:
                    out[index] = f"{kind} for {reason}; dropped"
                continue
            defs = rel_defs if kind in ("BA_REL_", "BA_DEF_DEF_REL_") else attr_defs
            name = _unquote(match["name"])
            definition = defs.get(name)
            if kind.startswith("BA_DEF_DEF_"):
                if definition is not None and not _value_fits(definition, match["value"], default=True):
                    out[index] = f"default {match['value']} does not fit attribute {name!r}; dropped"
            elif definition is None:
                out[index] = f"attribute {name!r} is not defined (no BA_DEF_); dropped"
            else:
                value = match["num"] if match["num"] is not None else match["str"]
                if not _value_fits(definition, value, default=False, attribute=name):
                    out[index] = (
                        f"value {value} does not fit {definition.type_name} attribute {name!r}; dropped"
                    )
        return out

    def _definitions(self, dropped: dict[int, str | None]) -> tuple[dict[int, dict[str, int]], set[int]]:
        """Kept signals per DBC frame id (name -> statement index), and the frame ids of
        VECTOR__INDEPENDENT_SIG_MSG, whose signals cantools does not load."""
        signals: dict[int, dict[str, int]] = {}
        independent: set[int] = set()
        ids: dict[int, int] = {}
        for index in self.kind_indices("BO_", "SG_"):
            if index in dropped:
                continue
            match = self.parse(index)
            if match is None:
                continue
            statement = self.stmts[index]
            if statement.kind == "BO_":
                dbc_id = int(match["id"])
                if match["name"] == _INDEPENDENT_MSG:
                    independent.add(dbc_id)
                    continue
                ids[index] = dbc_id
                signals.setdefault(dbc_id, {})
            elif statement.parent in ids and statement.parent not in dropped:
                signals[ids[statement.parent]].setdefault(match["name"], index)
        return signals, independent

    def _attribute_definitions(self, dropped: dict[int, str | None], kind: str) -> dict[str, _AttrDef]:
        defs: dict[str, _AttrDef] = {}
        for index in self.kind_indices(kind):
            match = self.parse(index) if index not in dropped else None
            if match is not None:
                choices = [_unquote(s) for s in re.findall(_STR, match["values"])]
                defs[_unquote(match["name"])] = _AttrDef(match["type"], choices)
        return defs

    def _load_loop(self, records: list[logging.LogRecord]) -> Database:
        """Load, and on each failure find the statement(s) at fault; until it loads."""
        for _ in range(len(self.stmts) + 2):
            dropped = self._with_dependents(self.dropped)
            records.clear()
            try:
                db = _cantools_load(self.render(dropped)[0])
            except Exception as exc:
                self._handle_failure(exc, dropped)
                continue
            lost = self._lost_definitions(db, dropped)
            suspect_lost = [i for i in lost if i in self.suspects]
            if suspect_lost:
                raise self._syntax_error(suspect_lost[0])
            for index in lost:
                self.note(index, f"{_snippet(self.texts[index])}: not loaded by cantools")
            for index, reason in sorted(dropped.items()):
                if reason is not None:
                    self.note(index, reason)
            self.dropped = dropped
            return db
        raise DbcUnreadableError("could not repair the database")  # pragma: no cover - loop bound

    def _with_dependents(self, dropped: dict[int, str | None]) -> dict[int, str | None]:
        result = dict(dropped)
        while True:
            more = {k: v for k, v in self._dependent_drops(result).items() if k not in result}
            if not more:
                return result
            result.update(more)

    def render(self, dropped: dict[int, str | None]) -> tuple[str, list[int]]:
        """The repaired text (same line numbers as the original) and each statement's offset."""
        parts: list[str] = []
        starts: list[int] = []
        length = 0
        position = 0
        for index, statement in enumerate(self.stmts):
            gap = self.text[position : statement.start]
            parts.append(gap)
            length += len(gap)
            starts.append(length)
            piece = "\n" * statement.text.count("\n") if index in dropped else self.texts[index]
            parts.append(piece)
            length += len(piece)
            position = statement.start + len(statement.text)
        parts.append(self.text[position:])
        # a // comment on the last line needs a newline to end it for the cantools tokenizer
        parts.append("\n")
        return "".join(parts), starts

    def _handle_failure(self, exc: Exception, dropped: dict[int, str | None]) -> None:
        cause = _root_error(exc)
        detail = " ".join(str(cause).split()) or type(cause).__name__
        offset = getattr(cause, "offset", None)
        if isinstance(cause, textparser.Error) and isinstance(offset, int):
            text, starts = self.render(dropped)
            index = max(bisect.bisect_right(starts, offset) - 1, 0)
            # the parser stops at or just after a broken definition: blame the one we doubted
            near = [i for i in self.suspects if index - 1 <= i <= index and i not in dropped]
            if near:
                raise self._syntax_error(near[-1])
            kind = self.stmts[index].kind
            if kind in ("BO_", "SG_"):
                line = text.count("\n", 0, offset) + 1
                raise DbcUnreadableError(f"syntax error in {_snippet(self.texts[index])!r}: {detail}", line)
            self.drop(index, f"{kind} statement cannot be parsed; dropped: {_snippet(self.texts[index])}")
            return
        if self._drop_by_message(cause, detail, dropped):
            return
        culprit = self._bisect(exc, dropped)
        if culprit is None:
            raise DbcUnreadableError(f"cantools refuses the database: {detail}") from exc
        kind = self.stmts[culprit].kind
        self.drop(
            culprit,
            f"{kind} statement refused by cantools ({detail}); dropped: {_snippet(self.texts[culprit])}",
        )

    def _drop_by_message(self, cause: BaseException, detail: str, dropped: dict[int, str | None]) -> bool:
        """Map cantools errors that name their subject to statements."""
        text = str(cause)
        found = False
        if text.startswith(("unused VAL_ entries", "unused SIG_VALTYPE_ entries")):
            kind = "VAL_" if text.startswith("unused VAL_") else "SIG_VALTYPE_"
            for frame_id, name in re.findall(rf"{kind} (\d+) (\w+)", text):
                for index in self.kind_indices(kind):
                    match = self.parse(index)
                    if index not in dropped and match and match["id"] == frame_id and match["name"] == name:
                        self.drop(index, f"{kind} {frame_id} {name}: not used by any message; dropped")
                        found = True
            return found
        if isinstance(cause, KeyError) and cause.args:
            name = str(cause.args[0])
            for index in self.kind_indices("BA_", "BA_REL_"):
                match = self.parse(index)
                if index not in dropped and match and _unquote(match["name"]) == name:
                    self.drop(index, f"attribute {name!r} is not defined; dropped")
                    found = True
            return found
        subject = re.search(r"in message (\w+)", text)
        if subject is None:
            return False
        signal = re.search(r"signals? (\w+)", text)
        for index in self.kind_indices("BO_"):
            match = self.parse(index)
            if index in dropped or match is None or match["name"] != subject[1]:
                continue
            if signal is not None:
                for child in self.kind_indices("SG_"):
                    child_match = self.parse(child)
                    if self.stmts[child].parent == index and child_match and child_match["name"] == signal[1]:
                        self.drop(child, f"signal {signal[1]}: {detail}; dropped")
                        return True
            self.drop(index, f"message {subject[1]}: {detail}; dropped with its signals")
            return True
        return False

    def _bisect(self, exc: Exception, dropped: dict[int, str | None]) -> int | None:
        """Find a statement whose removal makes this error go away, one class at a time."""
        signature = _signature(exc)

        def still_fails(extra: list[int]) -> bool:
            trial = dict(dropped)
            trial.update(dict.fromkeys(extra, ""))
            try:
                _cantools_load(self.render(self._with_dependents(trial))[0])
            except Exception as again:
                return _signature(again) == signature
            return False

        order = [
            "BA_", "BA_REL_", "BA_DEF_DEF_", "BA_DEF_DEF_REL_", "BA_DEF_", "BA_DEF_REL_", "VAL_",
            "VAL_TABLE_", "SIG_VALTYPE_", "SG_MUL_VAL_", "SIG_GROUP_", "BO_TX_BU_", "CM_", "EV_",
            "ENVVAR_DATA_", "BU_", "VERSION", "NS_", "BS_",
        ]  # fmt: skip
        for kind in order:
            group = [i for i in self.kind_indices(kind) if i not in dropped]
            if not group or still_fails(group):
                continue
            low, high = 1, len(group)  # removing group[:high] clears the error
            while low < high:
                middle = (low + high) // 2
                if still_fails(group[:middle]):
                    low = middle + 1
                else:
                    high = middle
            return group[low - 1]
        return None

    def _lost_definitions(self, db: Database, dropped: dict[int, str | None]) -> list[int]:
        """BO_/SG_ statements that are kept but did not come out of cantools."""
        expected_messages = 0
        expected_signals = 0
        independent: set[int] = set()
        for index in self.kind_indices("BO_", "SG_"):
            statement = self.stmts[index]
            if index in dropped or (statement.kind == "SG_" and statement.parent in dropped):
                continue
            if statement.kind == "BO_":
                match = self.parse(index)
                if match is not None and match["name"] == _INDEPENDENT_MSG:
                    independent.add(index)
                else:
                    expected_messages += 1
            elif statement.parent not in independent:
                expected_signals += 1
        loaded_signals = sum(len(m.signals) for m in db.messages)
        if len(db.messages) == expected_messages and loaded_signals == expected_signals:
            return []
        # Find which: compare names, mapping cantools' long names back to the DBC's.
        present: set[tuple[int, str]] = set()
        present_messages: set[int] = set()
        for message in db.messages:
            dbc_id = message.frame_id | (_EXTENDED_FLAG if message.is_extended_frame else 0)
            present_messages.add(dbc_id)
            present.update((dbc_id, s.name) for s in message.signals)
        long_names = self._long_signal_names()
        lost: list[int] = []
        current_id: int | None = None
        for index in self.kind_indices("BO_", "SG_"):
            statement = self.stmts[index]
            if index in dropped or statement.parent in dropped or statement.parent in independent:
                continue
            match = self.parse(index)
            if statement.kind == "BO_":
                current_id = int(match["id"]) if match else None
                if current_id is None or (index not in independent and current_id not in present_messages):
                    lost.append(index)
            elif match is None or current_id is None:
                lost.append(index)
            else:
                name = long_names.get((current_id, match["name"]), match["name"])
                if (current_id, name) not in present:
                    lost.append(index)
        return lost

    def _long_signal_names(self) -> dict[tuple[int, str], str]:
        names: dict[tuple[int, str], str] = {}
        for index in self.kind_indices("BA_"):
            match = self.parse(index)
            if (
                match
                and match["sg_id"]
                and match["str"]
                and _unquote(match["name"]) == "SystemSignalLongSymbol"
            ):
                names[(int(match["sg_id"]), match["sg_name"])] = _unquote(match["str"])
        return names

    def _syntax_error(self, index: int) -> DbcUnreadableError:
        statement = self.stmts[index]
        what = "signal" if statement.kind == "SG_" else "message"
        if statement.kind == "SG_" and statement.parent is None:
            reason = f"signal definition outside a message: {_snippet(self.texts[index])!r}"
        else:
            reason = f"syntax error in {what} definition: {_snippet(self.texts[index])!r}"
        return DbcUnreadableError(reason, statement.line)

    # -- notes on what cantools tolerates (kept, reported)

    def _reference_notes(self) -> list[Note]:
        """References to nothing and repeated definitions: cantools ignores or overrides them."""
        notes: list[Note] = []
        signals, independent = self._definitions(self.dropped)
        nodes: set[str] | None = None
        for index in self.kind_indices("BU_"):
            match = self.parse(index)
            if index not in self.dropped and match is not None:
                nodes = (nodes or set()) | set(match["nodes"].split())
        attribute_names = set(self._attribute_definitions(self.dropped, "BA_DEF_"))
        for index in self.kind_indices("BO_"):
            match = self.parse(index)
            if index not in self.dropped and match is not None and match["name"] == _INDEPENDENT_MSG:
                count = sum(1 for s in self.stmts if s.parent == index)
                message = f"{_INDEPENDENT_MSG}: {count} signal(s) outside any message not loaded"
                notes.append((self.stmts[index].line, message))
        seen: dict[tuple[str | None, ...], int] = {}
        for index, statement in enumerate(self.stmts):
            kind = statement.kind
            if kind not in _NOTE_KINDS or index in self.dropped:
                continue
            match = self.parse(index)
            if match is None:
                continue
            problem = _dangling(kind, match, signals, independent, nodes, attribute_names)
            if problem is not None:
                notes.append((statement.line, f"{kind} refers to {problem}; ignored"))
            key = _duplicate_key(kind, match)
            if key is not None:
                if key in seen:
                    first = self.stmts[seen[key]].line
                    notes.append(
                        (statement.line, f"{kind} repeats the one on line {first}; this one is used")
                    )
                seen[key] = index
        return notes

    def _definition_lines(self) -> tuple[dict[int, int], dict[tuple[int, str], int]]:
        message_lines: dict[int, int] = {}
        signal_lines: dict[tuple[int, str], int] = {}
        long_names = self._long_signal_names()
        current: int | None = None
        for index in self.kind_indices("BO_", "SG_"):
            statement = self.stmts[index]
            match = self.parse(index)
            if index in self.dropped or match is None:
                current = None if statement.kind == "BO_" else current
                continue
            if statement.kind == "BO_":
                current = int(match["id"])
                message_lines[current] = statement.line  # the later definition is the one used
            elif current is not None and statement.parent is not None:
                name = long_names.get((current, match["name"]), match["name"])
                signal_lines[(current, name)] = statement.line
        return message_lines, signal_lines


# --- small pure helpers ---------------------------------------------------------------------


def _runaway_string(text: str) -> int | None:
    """Offset of the first string that spans into a line starting with a DBC keyword."""
    for match in _STRING_RE.finditer(text):
        if "\n" in match.group() and _KEYWORD_LINE_RE.search(match.group()):
            return match.start()
    return None


def _is_exponent_number(word: str, text: str, end: int) -> bool:
    """'1E5' is a number; '1E' is one too when followed by '-05' (as in 1E-05)."""
    if not _EXPONENT_RE.fullmatch(word):
        return False
    if word[-1] not in "eE":
        return True
    return end + 1 < len(text) and text[end] in "+-" and text[end + 1].isdigit()


def _malformed_reason(kind: str, text: str) -> str:
    if kind == "CM_" and _CM_NO_SIGNAL_RE.fullmatch(text):
        return f"comment without a signal name; dropped: {_snippet(text)}"
    if kind == "CM_" and _CM_BARE_ID_RE.fullmatch(text):
        return f"comment with a frame id but no BO_/SG_ keyword; dropped: {_snippet(text)}"
    if kind in _SEMI_KINDS and not text.rstrip().endswith(";"):
        return f"{kind} statement without ';'; dropped: {_snippet(text)}"
    return f"malformed {kind} statement; dropped: {_snippet(text)}"


def _reference_problem(signals: dict[int, dict[str, int]], dbc_id: int, name: str | None) -> str | None:
    """Why (dbc_id, name) does not name a known message/signal, or None if it does."""
    message = signals.get(dbc_id)
    if message is None:
        return f"unknown message {dbc_id}"
    if name is None or name in message:
        return None
    elsewhere = [str(i) for i, names in signals.items() if name in names]
    hint = f" (it is defined in message {', '.join(elsewhere[:3])})" if elsewhere else ""
    return f"signal {name}, which message {dbc_id} does not have{hint}"


def _value_fits(definition: _AttrDef, raw: str, *, default: bool, attribute: str = "") -> bool:
    """Would cantools convert this attribute value without an exception?"""
    type_name = definition.type_name
    allowed = _NUMBER_ATTRIBUTES.get(attribute)
    if allowed is not None and type_name not in allowed:
        return False  # cantools uses these as numbers whatever the definition says
    if type_name not in _NUMERIC_ATTR_TYPES or (default and type_name == "ENUM"):
        return True  # kept as text
    text = _unquote(raw) if raw.startswith('"') else raw
    try:
        number = Decimal(text)
    except InvalidOperation:
        return False
    if not number.is_finite():
        return False
    if type_name == "ENUM" and definition.choices:
        return 0 <= int(number) < len(definition.choices)
    return True


def _dangling(
    kind: str,
    match: re.Match[str],
    signals: dict[int, dict[str, int]],
    independent: set[int],
    nodes: set[str] | None,
    attribute_names: set[str],
) -> str | None:
    """What a kept statement refers to that does not exist, or None."""
    groups = match.re.groupindex
    for group in _ID_GROUPS:
        if group in groups and match[group] is not None:
            dbc_id = int(match[group])
            if dbc_id in independent:
                return None  # a signal outside any message: reported once, at its BO_
            if group == "sg_id":
                return _reference_problem(signals, dbc_id, match["sg_name"])
            if kind == "SIG_GROUP_":
                for name in [None, *match["signals"].split()]:
                    problem = _reference_problem(signals, dbc_id, name)
                    if problem is not None:
                        return problem
                return None
            if kind == "SG_MUL_VAL_":
                return _reference_problem(signals, dbc_id, match["name"])
            if group == "bo_id" or kind == "BO_TX_BU_":
                return _reference_problem(signals, dbc_id, None)
    if nodes is not None and "bu" in groups and match["bu"] is not None and match["bu"] not in nodes:
        return f"unknown node {match['bu']}"
    if kind == "BA_DEF_DEF_" and _unquote(match["name"]) not in attribute_names:
        return f"undefined attribute {match['name']}"
    return None


def _duplicate_key(kind: str, match: re.Match[str]) -> tuple[str | None, ...] | None:
    """Key under which two statements define the same thing (the later one wins in cantools)."""
    if kind in ("BA_DEF_", "BA_DEF_REL_", "BA_DEF_DEF_", "BA_DEF_DEF_REL_", "VAL_TABLE_"):
        return (kind, match["name"])
    if kind in ("VAL_", "SIG_VALTYPE_"):
        return None if match["id"] is None else (kind, match["id"], match["name"])
    if kind == "CM_":
        target = match.group("sg_id", "sg_name", "bo_id", "bu", "ev")
        return None if not any(target) else (kind, *target)  # bus comments add up
    if kind == "BA_":
        return (kind, *match.group("name", "bo_id", "sg_id", "sg_name", "bu", "ev"))
    return None


def _root_error(exc: BaseException) -> BaseException:
    """The exception cantools wrapped (load_string wraps the real one as its cause)."""
    seen = 0
    while exc.__cause__ is not None and seen < 5:
        exc = exc.__cause__
        seen += 1
    return exc


def _signature(exc: BaseException) -> str:
    root = _root_error(exc)
    return f"{type(root).__name__}: {root}"
