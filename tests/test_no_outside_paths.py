"""No file of the project points at a path a user of the package does not have.

A comment or data file citing an absolute path on a development machine (a shared
notes file, a home directory) is useless to a reader: cite the public source instead.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# absolute paths of the machines the project was written on, and the steering notes by name
FORBIDDEN = re.compile(r"/work/|/Users/|[A-Z]:\\\\Users|\bDOMAIN\.md\b|\bDESIGN\.md\b")
ALLOWED = {"tests/test_no_outside_paths.py"}


def _tracked_text_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    files = [ROOT / p for p in out.decode().split("\0") if p and p not in ALLOWED]
    return [f for f in files if f.is_file() and f.suffix not in (".parquet", ".png", ".pq", ".gz", ".zip")]


def test_no_file_cites_a_path_outside_the_project():
    hits = []
    for f in _tracked_text_files():
        try:
            text = f.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if FORBIDDEN.search(line):
                hits.append(f"{f.relative_to(ROOT)}:{n}: {line.strip()[:100]}")
    assert hits == []


def test_the_check_itself_catches_such_a_path():
    assert FORBIDDEN.search("# Sources: see /work/shared/DOMAIN.md")
    assert FORBIDDEN.search("# (DOMAIN.md, 'Other guarantee schemes')")
    assert not FORBIDDEN.search("# Sources: CGC Tokyo fee pages")
