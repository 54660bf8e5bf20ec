"""The package as an installer and a packager see it: version, metadata, build floor, and the
examples' hint when uvicorn is missing."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import metadata, version
from pathlib import Path

import sessionward

ROOT = Path(__file__).resolve().parent.parent


def test_the_version_is_the_installed_distributions() -> None:
    assert sessionward.__version__ == version("sessionward")


def test_the_metadata_names_each_supported_python_and_the_frameworks() -> None:
    classifiers = set(metadata("sessionward").get_all("Classifier") or [])
    for minor in (10, 11, 12, 13):
        assert f"Programming Language :: Python :: 3.{minor}" in classifiers
    assert "Framework :: FastAPI" in classifiers
    assert "Topic :: Internet :: WWW/HTTP :: Session" in classifiers
    assert any(name.startswith("Development Status ::") for name in classifiers)
    assert metadata("sessionward")["Requires-Python"] == ">=3.10"


def test_the_build_floor_reads_the_license_expression() -> None:
    # `license = "MIT"` (an SPDX expression, PEP 639) needs setuptools 77: 68 to 76 fail.
    pyproject = (ROOT / "pyproject.toml").read_text()  # no tomllib on Python 3.10
    assert '\nlicense = "MIT"\n' in pyproject
    assert '\nrequires = ["setuptools>=77"]' in pyproject
    assert (ROOT / "LICENSE").is_file()


def test_an_example_without_uvicorn_says_what_to_install() -> None:
    code = (
        "import runpy, sys; sys.modules['uvicorn'] = None; "
        "runpy.run_path('examples/app.py', run_name='__main__')"
    )
    environment = {**os.environ, "SESSIONWARD_SECRET_KEYS": "k" * 40}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert 'pip install "sessionward[example]"' in result.stderr
