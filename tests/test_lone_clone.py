"""The test suite runs from a lone clone: every file the tests read lives inside the repository."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"


def test_no_test_reads_beside_the_repository():
    # A user's clone has nothing next to it; a path that climbs out of the repository breaks it.
    climbing = re.compile(
        r"""\.parent\s*/\s*["']shared["']|["']\.\./shared|/\s*["']\.\.["']\s*/\s*["']shared"""
    )
    offenders = [
        f"{p.relative_to(REPO)}:{n}"
        for p in sorted((REPO / "tests").rglob("*.py"))
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if climbing.search(line) and p.name != Path(__file__).name
    ]
    assert offenders == []


def test_every_data_folder_carries_its_licences():
    folders = sorted({p.parent for p in DATA.rglob("*") if p.is_file() and p.name != "README.md"})
    assert folders, f"test data missing: {DATA}"
    for folder in folders:
        assert list(folder.glob("LICENSE.*.txt")), f"{folder} has data without a licence file"
