"""`run.py --previous REF`: an older sessionward, from this repository's history, side by side.

`git archive` copies `src/sessionward` at REF into a temporary directory as the package
`sessionward_previous` (sessionward imports itself only relatively, so the copy is
self-contained), and the two cases in `cases.previous_cases` time it like the current one:
before-and-after numbers from one run, on one machine, at one moment.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "sessionward_previous"


@contextmanager
def checkout(ref: str) -> Iterator[str]:
    """Make sessionward at `ref` importable as `sessionward_previous`; yield its short commit."""
    git = shutil.which("git")
    if git is None:
        raise SystemExit("--previous needs git")
    commit = subprocess.run(
        [git, "-C", str(ROOT), "rev-parse", "--short", f"{ref}^{{commit}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    archive = subprocess.run(
        [git, "-C", str(ROOT), "archive", "--format=tar", commit, "src/sessionward"],
        capture_output=True,
        check=True,
    ).stdout
    with tempfile.TemporaryDirectory(prefix="sessionward-previous-") as directory:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(directory, filter="data")
        (Path(directory) / "src" / "sessionward").rename(Path(directory) / PACKAGE)
        sys.path.insert(0, directory)
        try:
            yield commit
        finally:
            sys.path.remove(directory)
