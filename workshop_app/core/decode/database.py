"""Signal databases: tolerant loading (DBC, KCD, SYM, ARXML) and a set of databases per channel.

Real DBC files often break the rules cantools enforces. ``load_database`` loads them anyway:
what cantools refuses is repaired or dropped (see ``dbc_load``), and every change comes back
as a ``LoadWarning`` with the file and line. Only a file that cannot be used at all raises
``DatabaseError``.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import cantools.database
from cantools.database.can import Database

from workshop_app.core.decode.dbc_imports import expand_imports
from workshop_app.core.decode.dbc_load import DbcUnreadableError, load_dbc_text
from workshop_app.core.errors import DatabaseError

if TYPE_CHECKING:
    from collections.abc import Callable

    from cantools.database.can import Message, Signal

__all__ = ["DatabaseSet", "LoadWarning", "LoadedDatabase", "j1939_pgn", "load_database"]

_FORMATS = {".dbc": "dbc", ".kcd": "kcd", ".sym": "sym", ".arxml": "arxml"}
_PDU1_LIMIT = 240  # J1939: a PDU format byte below this means PDU1 (PS is a destination address)
_CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 12, 13))  # never in a text database
_CDD_ROOT_RE = re.compile(r"<(?:!DOCTYPE\s+)?CANDELA\b")
_ODX_ROOT_RE = re.compile(r"<ODX[\s>]")
_ODX_SUFFIXES = frozenset(
    {".odx", ".odx-d", ".odx-c", ".odx-v", ".odx-f", ".odx-e", ".odx-cs", ".odx-m", ".pdx"}
)
_CACHE_LIMIT = 1 << 16  # lookup cache entries before it is cleared (bounds memory on id floods)


@dataclass(frozen=True, slots=True)
class LoadWarning:
    """A problem found while loading a database that did not stop it from loading."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        if self.line is None:
            return f"{self.path}: {self.message}"
        return f"{self.path}:{self.line}: {self.message}"


@dataclass
class LoadedDatabase:
    """A database loaded from ``path``, the warnings from loading it, and its channel.

    ``channel`` None means the database applies to frames of every channel.
    """

    path: Path
    db: Database
    warnings: list[LoadWarning]
    channel: str | None = None
    _index: _MessageIndex | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def name(self) -> str:
        """The file name without its extension."""
        return self.path.stem

    @property
    def message_count(self) -> int:
        """Number of messages in the database."""
        return len(self.db.messages)

    @property
    def signal_count(self) -> int:
        """Number of signals over all messages."""
        return sum(len(m.signals) for m in self.db.messages)

    @property
    def is_j1939(self) -> bool:
        """True if any message is matched on its J1939 PGN rather than its full id."""
        return bool(self._message_index().by_pgn)

    def find(self, arbitration_id: int, is_extended: bool) -> Message | None:
        """The message for a frame id: exact id first, then (J1939 only) the PGN."""
        index = self._message_index()
        message = index.exact.get((arbitration_id, is_extended))
        if message is None and is_extended and index.by_pgn:
            message = index.by_pgn.get(j1939_pgn(arbitration_id))
        return message

    def find_exact(self, arbitration_id: int, is_extended: bool) -> Message | None:
        """The message defined with exactly this frame id, if any."""
        return self._message_index().exact.get((arbitration_id, is_extended))

    def find_pgn(self, arbitration_id: int) -> Message | None:
        """The J1939 message whose PGN matches this 29-bit id, if any."""
        return self._message_index().by_pgn.get(j1939_pgn(arbitration_id))

    def _message_index(self) -> _MessageIndex:
        if self._index is None:
            self._index = _MessageIndex.build(self.db)
        return self._index


@dataclass(slots=True)
class _MessageIndex:
    exact: dict[tuple[int, bool], Message]
    by_pgn: dict[int, Message]

    @classmethod
    def build(cls, db: Database) -> _MessageIndex:
        exact: dict[tuple[int, bool], Message] = {}
        by_pgn: dict[int, Message] = {}
        j1939_db = _database_is_j1939(db)
        for message in db.messages:
            # later definitions win, as in cantools' own frame id lookup
            exact[(message.frame_id, message.is_extended_frame)] = message
            if message.is_extended_frame and (j1939_db or message.protocol == "j1939"):
                by_pgn.setdefault(j1939_pgn(message.frame_id), message)
        return cls(exact, by_pgn)


def j1939_pgn(arbitration_id: int) -> int:
    """The PGN of a 29-bit J1939 id (without priority and source address; PDU1 without DA)."""
    pgn = (arbitration_id >> 8) & 0x3FFFF
    if (pgn >> 8) & 0xFF < _PDU1_LIMIT:
        pgn &= 0x3FF00
    return pgn


def _database_is_j1939(db: Database) -> bool:
    """Whether the DBC declares the J1939 protocol (BA_ "ProtocolType" "J1939...")."""
    specifics = db.dbc
    if specifics is None:
        return False
    attribute = specifics.attributes.get("ProtocolType")
    value = str(attribute.value) if attribute is not None else ""
    if not value:
        # An empty value means "not set" here: fall back to the definition's default.
        definition = specifics.attribute_definitions.get("ProtocolType")
        value = str(definition.default_value or "") if definition is not None else ""
    return value.upper().startswith("J1939")


# --- loading ------------------------------------------------------------------------------


def load_database(path: str | Path, *, channel: str | None = None) -> LoadedDatabase:
    """Load a signal database (DBC, KCD, SYM or ARXML) from ``path``.

    DBC files are loaded tolerantly: definitions cantools refuses are repaired or left out,
    each with a ``LoadWarning`` naming the line. Overlapping signals (which cantools' strict
    mode refuses) load and are reported as warnings. ``CM_ "IMPORT other.dbc";`` lines are
    followed relative to the file (see ``dbc_imports``); a file made only of imports that
    cannot be found loads as an empty database with a warning per missing import.

    Raises ``DatabaseError`` (with the line where known) if the file is missing, is not a
    text file, has a syntax error in a message or signal definition, or has no messages.
    """
    shown = str(path)
    file = Path(path)
    _refuse_other_kinds(file, shown, None)  # binary ones (MF4, BLF, PDX) before reading text
    text = _read_text(file, shown)
    _refuse_other_kinds(file, shown, text[:4096])
    fmt = _FORMATS.get(file.suffix.lower()) or _sniff_format(text)
    if fmt == "dbc":
        return _load_dbc(file, shown, text, channel)
    db = _load_other(text, fmt, shown)
    if not db.messages:
        raise DatabaseError(shown, "no message definitions found")
    return LoadedDatabase(file, db, _consistency_warnings(db, shown, None), channel)


def _load_dbc(file: Path, shown: str, text: str, channel: str | None) -> LoadedDatabase:
    expanded = expand_imports(file, shown, text, _read_text)
    import_warnings = [LoadWarning(path, line, message) for path, line, message in expanded.problems]
    try:
        result = load_dbc_text(expanded.text)
    except DbcUnreadableError as exc:
        if expanded.has_imports and exc.reason == "no message definitions found":
            # A generator file whose imports are all missing: an empty database, as cantools
            # gives, with the warnings that say why, rather than a refusal.
            db = cantools.database.can.Database(strict=False)
            return LoadedDatabase(file, db, import_warnings, channel)
        path, line = expanded.origin(exc.line, shown)
        raise DatabaseError(path, exc.reason, line) from exc
    warnings = [LoadWarning(shown, line, message) for line, message in result.notes]
    warnings.extend(_consistency_warnings(result.db, shown, result.line_of))
    if expanded.has_imports:
        # lines of the combined text back to the file (imported or not) they came from
        warnings = [LoadWarning(*expanded.origin(w.line, shown), w.message) for w in warnings]
    return LoadedDatabase(file, result.db, import_warnings + warnings, channel)


def _refuse_other_kinds(file: Path, shown: str, head: str | None) -> None:
    """Files users pick from the same folder as their databases, with what to do instead.

    A parser's complaint about such a file (a KCD root element, an ARXML syntax error)
    would not tell the user that the file is of another kind altogether.
    """
    suffix = file.suffix.lower()
    if suffix == ".cdd" or (head is not None and _CDD_ROOT_RE.search(head)):
        raise DatabaseError(
            shown,
            "a CANdelaStudio diagnostic description (CDD): it describes an ECU's DIDs and DTCs, "
            "not CAN signals; make an ECU description from it with `workshop dtc import-cdd`",
        )
    if suffix in _ODX_SUFFIXES or (head is not None and _ODX_ROOT_RE.search(head)):
        raise DatabaseError(
            shown,
            "an ODX/PDX diagnostic description: it describes an ECU's DIDs and DTCs, not CAN signals; "
            "ODX import is not there yet (a CDD imports with `workshop dtc import-cdd`)",
        )
    if suffix not in _FORMATS:
        from workshop_app.core.logfiles import READABLE_SUFFIXES, log_suffix  # only for odd files

        if log_suffix(file) in READABLE_SUFFIXES:
            raise DatabaseError(
                shown, "a CAN log, not a signal database: decode it with `workshop decode LOG --dbc DB`"
            )


def _read_text(file: Path, shown: str) -> str:
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise DatabaseError(shown, "file not found") from None
    except IsADirectoryError:
        raise DatabaseError(shown, "is a directory, not a database file") from None
    except OSError as exc:
        raise DatabaseError(shown, f"cannot read file: {exc.strerror or exc}") from None
    if not data.strip():
        raise DatabaseError(shown, "file is empty")
    # Text databases never contain NUL or many control bytes; binary files almost always do.
    sample = data[:65536]
    controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
    if b"\x00" in sample or controls > len(sample) // 100:
        raise DatabaseError(shown, "not a text file (binary content)")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")  # every byte is valid: never fails


def _sniff_format(text: str) -> str | None:
    head = text.lstrip()[:4096]
    if head.startswith("<"):
        return "arxml" if "AUTOSAR" in head else "kcd"
    if "FormatVersion=" in head:
        return "sym"
    if "BO_ " in text or "VERSION" in head:
        return "dbc"
    return None


def _load_other(text: str, fmt: str | None, shown: str) -> Database:
    db = cantools.database.can.Database(strict=False)
    loaders = {"kcd": db.add_kcd_string, "sym": db.add_sym_string, "arxml": db.add_arxml_string}
    try:
        if fmt is None:
            loaded = cantools.database.load_string(text, strict=False)
            if not isinstance(loaded, Database):
                raise DatabaseError(shown, "not a CAN signal database")
            return loaded
        loaders[fmt](text)
    except DatabaseError:
        raise
    except Exception as exc:
        reason, line = _describe_error(exc, text)
        raise DatabaseError(shown, f"cannot read {fmt or 'database'} file: {reason}", line) from exc
    return db


def _describe_error(exc: BaseException, text: str) -> tuple[str, int | None]:
    """One-line reason and 1-based line from a parser exception (or its causes)."""
    current: BaseException | None = exc
    line: int | None = None
    while current is not None and line is None:
        position = getattr(current, "position", None)  # xml.etree ParseError: (line, column)
        offset = getattr(current, "offset", None)  # textparser: character offset
        if isinstance(position, tuple) and position:
            line = int(position[0])
        elif isinstance(offset, int) and 0 <= offset <= len(text):
            line = text.count("\n", 0, offset) + 1
        current = current.__cause__ or current.__context__
    reason = " ".join(str(exc).split()) or type(exc).__name__
    return reason, line


def _consistency_warnings(
    db: Database, shown: str, locate: Callable[[int, bool, str | None], int | None] | None
) -> list[LoadWarning]:
    """Duplicates and overlapping signals: cantools loads them (non-strict); we report them."""
    warnings: list[LoadWarning] = []

    def line_of(message: Message, signal: str | None = None) -> int | None:
        return locate(message.frame_id, message.is_extended_frame, signal) if locate else None

    seen_ids: dict[tuple[int, bool], Message] = {}
    seen_names: dict[str, Message] = {}
    for message in db.messages:
        key = (message.frame_id, message.is_extended_frame)
        if key in seen_ids:
            first = seen_ids[key]
            warnings.append(
                LoadWarning(
                    shown,
                    line_of(message),
                    f"messages {first.name} and {message.name} share frame id 0x{message.frame_id:X}; "
                    f"{message.name} is used for decoding",
                )
            )
        seen_ids[key] = message
        if message.name in seen_names and seen_names[message.name] is not message:
            warnings.append(
                LoadWarning(shown, line_of(message), f"message name {message.name} is used twice")
            )
        seen_names[message.name] = message
        warnings.extend(_signal_warnings(message, shown, line_of))
    return warnings


def _signal_warnings(
    message: Message, shown: str, line_of: Callable[[Message, str | None], int | None]
) -> list[LoadWarning]:
    warnings: list[LoadWarning] = []
    size = 8 * message.length
    names: set[str] = set()
    placed: list[tuple[Signal, int]] = []
    for signal in message.signals:
        if signal.name in names:
            warnings.append(
                LoadWarning(
                    shown,
                    line_of(message, signal.name),
                    f"signal {signal.name} is defined twice in message {message.name}; "
                    "decoding reports only one value",
                )
            )
        names.add(signal.name)
        bits = _signal_bits(signal)
        if bits is None or bits >> size:
            warnings.append(
                LoadWarning(
                    shown,
                    line_of(message, signal.name),
                    f"signal {signal.name} does not fit in message {message.name} ({message.length} bytes)",
                )
            )
            continue
        for other, other_bits in placed:
            # a repeated name was reported above; its copy overlapping itself is no news
            if bits & other_bits and other.name != signal.name and _can_coexist(signal, other):
                warnings.append(
                    LoadWarning(
                        shown,
                        line_of(message, signal.name),
                        f"signals {other.name} and {signal.name} overlap in message {message.name}",
                    )
                )
        placed.append((signal, bits))
    return warnings


def _signal_bits(signal: Signal) -> int | None:
    """Bit mask of the payload bits a signal occupies (bit n = byte n // 8, bit n % 8)."""
    if signal.length <= 0 or signal.start < 0:
        return None
    if signal.byte_order == "little_endian":
        return ((1 << signal.length) - 1) << signal.start
    # Motorola: start is the most significant bit; walk down, wrapping to the next byte.
    bits = 0
    position = signal.start
    for _ in range(signal.length):
        bits |= 1 << position
        position = position + 15 if position % 8 == 0 else position - 1
    return bits


def _can_coexist(a: Signal, b: Signal) -> bool:
    """Can both signals be present in the same frame (multiplexing permitting)?"""
    if a.multiplexer_ids is None or b.multiplexer_ids is None:
        return True
    if a.multiplexer_signal != b.multiplexer_signal:
        return False  # different (nested) multiplexers: not decidable here, do not warn
    return bool(set(a.multiplexer_ids) & set(b.multiplexer_ids))


# --- several databases ----------------------------------------------------------------------


class DatabaseSet:
    """Several databases at once, each for one channel or (channel None) for all channels.

    Lookups prefer databases assigned to the frame's channel over unassigned ones; within
    each group, an exact frame id beats a J1939 PGN match, and earlier-added databases beat
    later ones. Results are cached; adding or removing a database clears the cache.
    """

    def __init__(self) -> None:
        self._entries: tuple[LoadedDatabase, ...] = ()
        self._cache: dict[tuple[str, int, bool], Message | None] = {}
        self._lock = threading.Lock()

    @property
    def databases(self) -> list[LoadedDatabase]:
        """The loaded databases, in the order they were added."""
        return list(self._entries)

    def add(self, path: str | Path, channel: str | None = None) -> LoadedDatabase:
        """Load ``path`` and make it active for ``channel`` (None: all channels).

        Adding a path again for the same channel reloads it in place; the same file may be
        active on several channels. If loading fails, ``DatabaseError`` propagates and the
        set is unchanged.
        """
        loaded = load_database(path, channel=channel)  # may raise: nothing changed yet
        key = (_path_key(loaded.path), channel)
        with self._lock:
            entries = list(self._entries)
            for position, entry in enumerate(entries):
                if (_path_key(entry.path), entry.channel) == key:
                    entries[position] = loaded
                    break
            else:
                entries.append(loaded)
            self._entries = tuple(entries)
            self._cache = {}
        return loaded

    def remove(self, path: str | Path) -> None:
        """Remove the database loaded from ``path`` (on every channel); KeyError if absent."""
        key = _path_key(Path(path))
        with self._lock:
            kept = tuple(e for e in self._entries if _path_key(e.path) != key)
            if len(kept) == len(self._entries):
                raise KeyError(f"database not loaded: {path}")
            self._entries = kept
            self._cache = {}

    def lookup(self, channel: str, arbitration_id: int, is_extended: bool) -> Message | None:
        """The message that decodes this frame on ``channel``, or None if no database has it."""
        cache = self._cache  # a snapshot: add/remove swap in a new dict
        key = (channel, arbitration_id, is_extended)
        try:
            return cache[key]
        except KeyError:
            pass
        message = self._resolve(channel, arbitration_id, is_extended)
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[key] = message
        return message

    def _resolve(self, channel: str, arbitration_id: int, is_extended: bool) -> Message | None:
        entries = self._entries
        for group in (
            [e for e in entries if e.channel is not None and e.channel == channel],
            [e for e in entries if e.channel is None],
        ):
            for entry in group:
                message = entry.find_exact(arbitration_id, is_extended)
                if message is not None:
                    return message
            if is_extended:
                for entry in group:
                    message = entry.find_pgn(arbitration_id)
                    if message is not None:
                        return message
        return None


def _path_key(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path.absolute()
