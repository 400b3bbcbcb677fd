"""DBC files that import others: ``CM_ "IMPORT other.dbc";``, as in opendbc's generator.

Public collections keep shared message sets in fragment files and build each car's DBC
from ``CM_ "IMPORT _fragment.dbc";`` lines (opendbc's generator pastes the imported files
in front of the importing one and removes the lines). cantools reads such a line as a bus
comment, so a file made only of imports loads as an empty database.

``expand_imports`` does what the generator does, in memory: imported files first, in
order, then the importing file with its import lines blanked. Imports are found relative
to the importing file, nested imports are followed, and a file already on the way (a
cycle) or already pasted (imported twice) is skipped with a warning. The combined text
keeps a map back to every piece, so a warning or error on a combined line names the file
it came from and its own line.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ExpandedDbc", "expand_imports"]

# The import line as opendbc writes it; whitespace is tolerated as cantools tolerates it.
_IMPORT_RE = re.compile(r'^[ \t]*CM_[ \t]+"IMPORT[ \t]+(?P<name>[^"\n]+?)[ \t]*"[ \t]*;', re.M)
_MAX_DEPTH = 32  # imports nested deeper than this are a mistake, not a design

ReadText = Callable[[Path, str], str]


@dataclass(slots=True)
class ExpandedDbc:
    """The combined text and where each of its lines came from."""

    text: str
    has_imports: bool = False
    # problems found while following imports: (file shown, line, message)
    problems: list[tuple[str, int, str]] = field(default_factory=list)
    _starts: list[int] = field(default_factory=list)  # first combined line of each piece
    _pieces: list[tuple[str, int]] = field(default_factory=list)  # (file shown, its first line)

    def origin(self, line: int | None, fallback: str) -> tuple[str, int | None]:
        """The file and line that a 1-based line of the combined text came from."""
        if line is None or not self._starts:
            return fallback, line
        piece = max(bisect.bisect_right(self._starts, line) - 1, 0)
        shown, first = self._pieces[piece]
        return shown, first + line - self._starts[piece]


def expand_imports(path: Path, shown: str, text: str, read_text: ReadText) -> ExpandedDbc:
    """``text`` (the content of ``path``) with every imported DBC pasted in front of it.

    ``read_text(path, shown)`` reads an imported file; any exception it raises becomes a
    problem of the importing line (the import is skipped). A file without import lines
    comes back unchanged, at no cost beyond one regular-expression search.
    """
    if _IMPORT_RE.search(text) is None:
        return ExpandedDbc(text)
    result = ExpandedDbc("", has_imports=True)
    chunks: list[str] = []
    state = _State(result, chunks, read_text, [_key(path)], {_key(path)})
    state.paste(path, shown, text, 0)
    result.text = "".join(chunks)
    return result


def _key(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path.absolute()


@dataclass(slots=True)
class _State:
    result: ExpandedDbc
    chunks: list[str]
    read_text: ReadText
    stack: list[Path]  # files being expanded, outermost first: a cycle returns to one of them
    done: set[Path]
    line: int = 1  # first combined line of the next chunk

    def paste(self, path: Path, shown: str, text: str, depth: int) -> None:
        own = text
        for match in _IMPORT_RE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            # blanked, not removed, so the importing file's lines keep their numbers
            own = own[: match.start()] + " " * (match.end() - match.start()) + own[match.end() :]
            self._follow(path, shown, line, match["name"], depth)
        self._append(shown, own)

    def _follow(self, path: Path, shown: str, line: int, name: str, depth: int) -> None:
        target = path.parent / name
        target_shown = str(Path(shown).parent / name)
        key = _key(target)
        if key in self.stack:
            self._problem(shown, line, f"import of {name} skipped: it forms a cycle (it imports this file)")
            return
        if key in self.done:
            self._problem(shown, line, f"{name} is already imported; not imported again")
            return
        if depth >= _MAX_DEPTH:
            self._problem(
                shown, line, f"import of {name} skipped: imports nested more than {_MAX_DEPTH} deep"
            )
            return
        try:
            imported = self.read_text(target, target_shown)
        except Exception as exc:
            reason = getattr(exc, "reason", exc)  # DatabaseError: without the path, named here
            where = target.parent if target.parent != Path() else Path.cwd()
            self._problem(
                shown, line, f"imported file {name}: {reason} (in {where}); its definitions are missing"
            )
            return
        self.done.add(key)
        self.stack.append(key)
        try:
            self.paste(target, target_shown, imported, depth + 1)
        finally:
            self.stack.pop()

    def _append(self, shown: str, text: str) -> None:
        if not text.endswith("\n"):
            text += "\n"  # a piece ends with its last line: the next piece starts a new one
        self.result._starts.append(self.line)
        self.result._pieces.append((shown, 1))
        self.chunks.append(text)
        self.line += text.count("\n")

    def _problem(self, shown: str, line: int, message: str) -> None:
        self.result.problems.append((shown, line, message))
