"""Reading a log for a command: recover what can be recovered, say once what was wrong.

Shared by ``decode``, ``export``, ``dtc trace`` and ``replay`` so damaged, wrong and impossible
input reads the same way everywhere: the recovered frames and one warning line on stderr
(exit 0), or with ``--strict`` one error line (exit 1).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from workshop_app.core.errors import LogFileError

if TYPE_CHECKING:  # the readers pull in numpy and python-can: not for every CLI start
    from workshop_app.core.logs.notes import LogRead

STRICT_HELP = "treat a damaged log or an impossible frame as an error (default: keep what reads, warn once)"


def add_strict_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--strict", action="store_true", help=STRICT_HELP)


class LogRefused(LogFileError):
    """Damage under ``--strict``: the message names the first damaged place and the counts."""


def load_log(path: str | Path, command: str, *, strict: bool = False) -> LogRead:
    """The log's frames; a warning line printed for damage, or LogRefused under ``strict``.

    A file that is no log at all (missing, a directory, another format) raises LogFileError
    with one printable line; the CLI prints it as the command's error.
    """
    from workshop_app.core.logs.reader import read_log

    read = read_log(path)
    warning = read.warning()
    if warning is not None:
        if strict:
            raise LogRefused(f"{warning} (refused: --strict)")
        print(f"workshop {command}: warning: {warning}", file=sys.stderr)
    return read
