"""The suite on every supported Python, and on the oldest release of every dependency that
pyproject.toml admits: `pip install nox`, then `nox` (all), `nox -s tests-3.10`, or
`nox -s minimum`. Redis tests need `redis-server` on PATH, as in `.ci/run`."""

from __future__ import annotations

import re
from pathlib import Path

import nox

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
nox.options.sessions = [f"tests-{python}" for python in PYTHONS] + ["minimum"]
nox.options.reuse_existing_virtualenvs = True


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    session.install("-e", ".[dev]")
    session.run("python", "-m", "pytest", *session.posargs, env={"SESSIONWARD_REQUIRE_REDIS": "1"})


@nox.session(python=PYTHONS[0])
def minimum(session: nox.Session) -> None:
    """Every runtime dependency at the lowest version its `>=` floor allows."""
    floors = _floors(Path("pyproject.toml").read_text())
    session.install("-e", ".[dev]", *(f"{name}=={version}" for name, version in floors))
    session.run("python", "-m", "pytest", *session.posargs, env={"SESSIONWARD_REQUIRE_REDIS": "1"})


def _floors(pyproject: str) -> list[tuple[str, str]]:
    """The `name>=version` pins of `[project] dependencies`, markers and extras aside."""
    block = pyproject.split("dependencies = [", 1)[1].split("]\n", 1)[0]
    found = re.findall(r'^\s*"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?>=([0-9][^";,]*)', block, re.M)
    return [(name, version.strip()) for name, version in found]
