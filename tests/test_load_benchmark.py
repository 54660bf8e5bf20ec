"""benchmarks/load.py runs as its docstring says: a short run of each kind, on loopback.

The figures themselves are the benchmark's business; these runs check that it drives the
four session layers, that a run with Redis restarted in the middle loses no acknowledged
write and leaves no key without a TTL (the script exits non-zero otherwise), and that its
report says so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.redis_server import require_redis

LOAD = Path(__file__).resolve().parent.parent / "benchmarks" / "load.py"


def run_load(*arguments: str) -> str:
    if shutil.which("redis-server") is None:
        if require_redis():
            pytest.fail("benchmarks/load.py needs redis-server on PATH")
        pytest.skip("benchmarks/load.py needs redis-server on PATH")
    pytest.importorskip("starsessions", reason="the bench extra runs starsessions beside us")
    done = subprocess.run(
        [sys.executable, str(LOAD), "--users", "2", *arguments],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        # Its own redis-server, never a REDIS_URL the suite was given: load.py flushes it.
        env={name: value for name, value in os.environ.items() if name != "REDIS_URL"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_every_case_runs_side_by_side() -> None:
    report = run_load("--seconds", "1", "--scenario", "read-mostly")
    rows = [line for line in report.splitlines() if line.startswith("| read-mostly |")]
    assert [row.split("|")[2].strip() for row in rows] == [
        "none",
        "starlette",
        "starsessions",
        "sessionward",
    ]
    for row in rows:
        requests_per_second = float(row.split("|")[4].replace(",", ""))
        assert requests_per_second > 0


def test_a_redis_restart_mid_load_loses_no_acknowledged_write() -> None:
    report = run_load("--seconds", "6", "--scenario", "write-heavy", "--fault", "restart")
    (row,) = [line for line in report.splitlines() if line.startswith("| write-heavy |")]
    cells = [cell.strip() for cell in row.split("|")[1:-1]]
    assert cells[7:] == ["0", "0"]  # lost writes, keys without a TTL
    assert "fault restart: Redis away" in report  # (how fast it recovers is the report's)


def test_a_cluster_primary_killed_mid_load_fails_over_and_the_run_goes_on() -> None:
    report = run_load("--seconds", "8", "--scenario", "read-mostly", "--fault", "failover")
    (row,) = [line for line in report.splitlines() if line.startswith("| read-mostly |")]
    cells = [cell.strip() for cell in row.split("|")[1:-1]]
    assert cells[8] == "0"  # keys without a TTL (a write in flight at the kill may be lost)
    assert "fault failover: Redis away" in report
    assert "last error" in report


def test_repeated_rounds_report_medians() -> None:
    report = run_load("--seconds", "1", "--scenario", "churn", "--case", "none", "--repeat", "2")
    assert "Medians of 2 rounds" in report
    rows = [line for line in report.splitlines() if line.startswith("| churn | none | 1 | ")]
    assert len(rows) == 3  # each round's, then the median with the range of requests/s
    assert rows[2].count("|") == 7
    assert "-" in rows[2].split("|")[4]


def test_an_offered_rate_paces_the_requests() -> None:
    report = run_load("--seconds", "3", "--scenario", "read-mostly", "--case", "none")
    paced = run_load(
        "--seconds", "3", "--scenario", "read-mostly", "--case", "none", "--rate", "40"
    )
    rates = [
        float(line.split("|")[4].replace(",", ""))
        for text in (report, paced)
        for line in text.splitlines()
        if line.startswith("| read-mostly | none |")
    ]
    assert 25 <= rates[1] <= 45 < rates[0]  # about the rate asked for; flat out, far more
