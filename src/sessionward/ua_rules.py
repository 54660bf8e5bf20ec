"""ua-parser's rules, rewritten so that no user-agent costs the Rust regex engine much.

The Rust resolver runs each rule as a lazy DFA, which builds its states as it meets new
input. Junk user-agents meet new states all the time, and a few rules make that costly: the
ones that hunt for a bot anywhere in the first 200 characters (`^.{0,200}?...[Bb]ot`) or
through a long list (`\\w{0,30}favicon\\w{0,30}`, `[A-z]{1,30}`), whose bounded repeats
multiply the automaton's states. On 1,000 random 240-character user-agents, 8 took over
1 ms and the slowest 2 ms; real browsers take about 30 µs (benchmarks/ua_parse.py).

Two rewrites, both checked on the 30,872 user-agents of uap-core's own tests, which parse
exactly as before (`tests/test_ua_rules.py` keeps a sample):

- Unicode classes become ASCII ones (`\\d` is `[0-9]`, `\\b` an ASCII word boundary): only
  ASCII ever reaches the resolver (`devices._read_with_ua_parser`), so nothing else could
  match them, and the automaton is smaller.
- In the few bot-hunting rules (long bounded repeats, or a `^.{0,N}` window), a long bounded
  repeat becomes an unbounded one (`{0,50}` is `*`, `{1,30}` is `+`), as the resolver
  already does for `.{0,N}`. On a user-agent capped at 256 characters this can only let a
  junk one count as a bot; on real ones it changed nothing.
"""

from __future__ import annotations

import re
from typing import Any

# An escaped character, or a whole character class (nested classes and [:alpha:] included).
_TOKEN = re.compile(r"\\.|\[\^?\]?(?:\\.|\[:[a-z]+:\]|\[[^\]]*\]|[^\]\\])*\]", re.DOTALL)
_IN_CLASS = {"\\d": "0-9", "\\w": "A-Za-z0-9_", "\\s": "\\t\\n\\x0B\\f\\r "}
_ALONE = {"\\d": "[0-9]", "\\w": "[A-Za-z0-9_]", "\\s": "[\\t\\n\\x0B\\f\\r ]", "\\b": "(?-u:\\b)"}
_CLASS_ESCAPE = re.compile(r"\\[dws]")
_LONG_REPEAT = re.compile(r"\{([01]),\d{2,}\}")
_BOT_HUNT_REPEATS = 4  # a rule with at least this many long bounded repeats hunts for bots


def ascii_classes(pattern: str) -> str:
    """`pattern` with its Unicode classes and word boundaries made ASCII."""

    def rewrite(token: re.Match[str]) -> str:
        text = token[0]
        if text.startswith("["):
            return _CLASS_ESCAPE.sub(lambda escape: _IN_CLASS[escape[0]], text)
        return _ALONE.get(text, text)

    return _TOKEN.sub(rewrite, pattern)


def hunts_bots(pattern: str) -> bool:
    """A rule that looks for a bot's name anywhere in a window, or through a long list."""
    return pattern.startswith("^.{0,") or len(_LONG_REPEAT.findall(pattern)) >= _BOT_HUNT_REPEATS


def unbounded(pattern: str) -> str:
    """`pattern` with its long bounded repeats made unbounded."""
    return _LONG_REPEAT.sub(lambda repeat: "*" if repeat[1] == "0" else "+", pattern)


def cheaper(matchers: tuple[Any, Any, Any]) -> tuple[list[Any], list[Any], list[Any]]:
    """ua-parser's `Matchers` (user agent, OS, device), rewritten as the module says."""
    agents, systems, devices = matchers
    return (
        [_with(rule, _agent_pattern(rule.regex), *_VERSIONED) for rule in agents],
        [_with(rule, ascii_classes(rule.regex), *_VERSIONED) for rule in systems],
        [_with(rule, ascii_classes(rule.regex), *_DEVICE) for rule in devices],
    )


_VERSIONED = ("family", "major", "minor", "patch", "patch_minor")
_DEVICE = ("regex_flag", "family", "brand", "model")


def _agent_pattern(pattern: str) -> str:
    return ascii_classes(unbounded(pattern) if hunts_bots(pattern) else pattern)


def _with(rule: Any, pattern: str, *fields: str) -> Any:
    """A rule of the same kind with another pattern: ua-parser's matchers take their
    fields positionally, the pattern first."""
    return type(rule)(pattern, *(getattr(rule, name) for name in fields))
