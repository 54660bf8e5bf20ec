"""The `sessionward` command line: sessions, revocation, tokens, counts and a health check
for operators, from a shell (see docs/cli.md).

This module imports nothing but the standard library until it has checked that Click and
rich, the `cli` extra, are installed: without them the command says how to get them in one
line rather than failing on an import.
"""

from __future__ import annotations

import sys

INSTALL_HINT = 'the sessionward command line needs Click and rich: pip install "sessionward[cli]"'


def main() -> None:
    """The console script's entry point."""
    try:
        import click  # noqa: F401
        import rich  # noqa: F401
    except ImportError:
        print(f"sessionward: {INSTALL_HINT}", file=sys.stderr)
        raise SystemExit(1) from None
    from .commands import cli

    cli(prog_name="sessionward")
