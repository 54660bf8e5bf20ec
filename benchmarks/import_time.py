"""What `import sessionward` costs sessionward's own modules, as `python -X importtime` reports.

    python benchmarks/import_time.py              # median of 5 runs, with the per-module split
    python benchmarks/import_time.py --runs 9     # more runs
    python benchmarks/import_time.py --quiet      # the total alone, in ms
    python benchmarks/import_time.py --statement "from sessionward import SessionMiddleware"
    python benchmarks/import_time.py --cached-bytecode   # as an installed package imports

Each run is a fresh interpreter, `python -X importtime -c "import sessionward"` (or the
`--statement`). The figure is the sum of the *self* times of the lines whose module is
`sessionward` or `sessionward.*`: the work done at the top level of the package's own modules
(their class and function definitions, regexes compiled and tables built at import), not the
third-party modules they import, which have lines of their own. The total is the median of the
runs' sums, and each module's figure the median of its self times.

A module's self time also counts compiling its source to bytecode when no cached bytecode is
used: with `PYTHONDONTWRITEBYTECODE=1` in the environment (as on the project's machines) every
import compiles, and that is most of the figure. The runs inherit the environment, so by
default they measure what `python -X importtime -c ...` measures here. `--cached-bytecode`
measures what an installed package costs, whose bytecode pip wrote at install: the runs then
read and write bytecode under a temporary `PYTHONPYCACHEPREFIX`, which one untimed run fills.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

PACKAGE = "sessionward"


def self_times(stderr: str) -> dict[str, int]:
    """The self time, in µs, of each sessionward module in one `-X importtime` report."""
    times: dict[str, int] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        fields = line.removeprefix("import time:").split("|")
        if len(fields) != 3 or not fields[0].strip().isdigit():
            continue  # the header line
        module = fields[2].strip()
        if module == PACKAGE or module.startswith(PACKAGE + "."):
            times[module] = int(fields[0])
    return times


def one_run(statement: str, env: dict[str, str]) -> dict[str, int]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    times = self_times(result.stderr)
    if PACKAGE not in times:
        raise SystemExit(f"no `{PACKAGE}` line in the report:\n{result.stderr}")
    return times


def measure(statement: str, runs: int, env: dict[str, str]) -> list[dict[str, int]]:
    one_run(statement, env)  # untimed: warms the file system cache (and writes bytecode)
    return [one_run(statement, env) for _ in range(runs)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh interpreters (default 5)")
    parser.add_argument("--quiet", action="store_true", help="print the total alone, in ms")
    parser.add_argument(
        "--statement", default=f"import {PACKAGE}", help='what to time (default "%(default)s")'
    )
    parser.add_argument(
        "--cached-bytecode",
        action="store_true",
        help="import from bytecode written by an untimed run, as an installed package does",
    )
    args = parser.parse_args()
    runs: int = args.runs
    if runs < 1:
        parser.error("--runs must be at least 1")

    env = dict(os.environ)
    if args.cached_bytecode:
        with tempfile.TemporaryDirectory(prefix="import-time-") as cache:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = cache
            reports = measure(args.statement, runs, env)
    else:
        reports = measure(args.statement, runs, env)
    total_ms = statistics.median(sum(report.values()) for report in reports) / 1000
    if args.quiet:
        print(f"{total_ms:.1f}")
        return

    modules = sorted({module for report in reports for module in report})
    medians = {
        module: statistics.median(report.get(module, 0) for report in reports) for module in modules
    }
    compiles = not args.cached_bytecode and bool(env.get("PYTHONDONTWRITEBYTECODE"))
    source = "compiling the sources" if compiles else "from bytecode where cached"
    print(f"{args.statement!r}: self time of {PACKAGE} modules, {source}")
    print(f"median of {runs} runs (ms)")
    for module, micros in sorted(medians.items(), key=lambda item: (-item[1], item[0])):
        print(f"  {micros / 1000:8.2f}  {module}")
    print(f"  {total_ms:8.2f}  total ({len(modules)} modules)")


if __name__ == "__main__":
    main()
