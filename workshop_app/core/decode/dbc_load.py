"""Tolerant DBC loading: repair or drop what cantools refuses, load the rest.

cantools parses a DBC all-or-nothing, so one bad comment makes a whole database unusable.
``load_dbc_text`` cuts the text into top-level statements (``dbc_syntax``), applies the
repairs real files need (``dbc_repair``), and loads the result with cantools; when cantools
still refuses, the statement at fault is found (from the error, or by bisection) and
dropped. Every change is reported as a note ``(line, message)``; nothing is dropped
without one.

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

import cantools.database
import textparser
from cantools.database.can import Database

from workshop_app.core.decode.dbc_repair import (
    _EXTENDED_FLAG,
    _INDEPENDENT_MSG,
    DbcUnreadableError,
    StatementRepairs,
)
from workshop_app.core.decode.dbc_syntax import (
    _KEYWORD_LINE_RE,
    _MESSAGE_LINE_RE,
    _SEMI_KINDS,
    _STRING_RE,
    Note,
    _snippet,
    _unquote,
)

__all__ = ["DbcLoadResult", "DbcUnreadableError", "load_dbc_text"]


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
    return _Loader(text).run()


class _Loader(StatementRepairs):
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

    def _syntax_error(self, index: int) -> DbcUnreadableError:
        statement = self.stmts[index]
        what = "signal" if statement.kind == "SG_" else "message"
        if statement.kind == "SG_" and statement.parent is None:
            reason = f"signal definition outside a message: {_snippet(self.texts[index])!r}"
        else:
            reason = f"syntax error in {what} definition: {_snippet(self.texts[index])!r}"
        return DbcUnreadableError(reason, statement.line)

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


def _runaway_string(text: str) -> int | None:
    """Offset of the first string that spans into a line starting with a DBC keyword."""
    for match in _STRING_RE.finditer(text):
        if "\n" in match.group() and _KEYWORD_LINE_RE.search(match.group()):
            return match.start()
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
