"""Repairs of single DBC statements, before cantools sees them.

Each repair edits or drops statements of a split DBC (see ``dbc_syntax``) and records a
note ``(line, message)``: names starting with a digit, 29-bit ids without the extended
flag, numbers written without their leading zero, signals without receivers, references
to things that do not exist. ``dbc_load`` runs these repairs and then loads the result.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from workshop_app.core.decode.dbc_syntax import (
    _CM_BARE_ID_RE,
    _CM_NO_SIGNAL_RE,
    _GRAMMARS,
    _ID_GROUPS,
    _ID_TOKEN_RE,
    _INT_RE,
    _MUX_MARKER_RE,
    _PAIR_RE,
    _SEMI_KINDS,
    _SIGNAL_SHAPE_RE,
    _STR,
    _UNSUPPORTED,
    Note,
    _snippet,
    _unquote,
    bare_fraction_edits,
    split_statements,
)

__all__ = ["DbcUnreadableError", "StatementRepairs"]

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
_FRACTION_RE = re.compile(r"[-+]?\.\d+")
_NUMERIC_ATTR_TYPES = frozenset({"INT", "HEX", "FLOAT", "ENUM"})
# attributes cantools reads as numbers: the definition types it accepts for them
_NUMBER_ATTRIBUTES = {"GenSigStartValue": _NUMERIC_ATTR_TYPES, "SPN": frozenset({"INT", "HEX", "ENUM"})}


class DbcUnreadableError(Exception):
    """The DBC cannot be loaded at all (raised with the 1-based line where known)."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


@dataclass(slots=True)
class _AttrDef:
    type_name: str
    choices: list[str]


class StatementRepairs:
    """The statements of one DBC text, their current (repaired) text, drops and notes."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.stmts = split_statements(text)
        self.texts: list[str] = [s.text for s in self.stmts]  # current (possibly edited) text
        self.dropped: dict[int, str | None] = {}  # statement index -> reason (None: with parent)
        self.suspects: list[int] = []  # BO_/SG_ our grammar rejects; cantools decides
        self.notes: list[Note] = []
        self._matches: dict[int, tuple[str, re.Match[str] | None]] = {}

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
        self._add_leading_zeros()
        self._rename_digit_names()
        id_map = self._repair_messages()
        self._repair_signals()
        self._remap_ids(id_map)
        self._check_other_statements()

    def _add_leading_zeros(self) -> None:
        """Write ".25" as "0.25": one such number would make cantools refuse the whole file."""
        for index, text in enumerate(self.texts):
            if index in self.dropped or self.stmts[index].kind == "?" or "." not in text:
                continue
            edits = bare_fraction_edits(text)
            if edits:
                self.edit(index, edits)
                found = (_FRACTION_RE.match(text, begin) for begin, _, _ in edits[:3])
                shown = ", ".join(m[0] for m in found if m is not None)
                self.note(index, f"number without a leading zero read as 0.x: {shown}")

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
