"""ua-parser's rules, rewritten so that no user-agent costs the Rust regex engine much.

The Rust resolver runs each rule as a lazy DFA, which builds its states as it meets new
input. Junk user-agents meet new states all the time, and a few rules make that costly: the
ones that hunt for a bot anywhere in the first 200 characters (`^.{0,200}?...[Bb]ot`) or
through a long list (`\\w{0,30}favicon\\w{0,30}`, `[A-z]{1,30}`), whose bounded repeats
multiply the automaton's states. On 1,000 random 240-character user-agents, 8 took over
1 ms and the slowest 2 ms; real browsers take about 30 µs (benchmarks/ua_parse.py).

Three rewrites, checked on the 30,872 user-agents of uap-core's own tests
(`tests/test_ua_rules.py` keeps a sample):

- Unicode classes become ASCII ones (`\\d` is `[0-9]`, `\\b` an ASCII word boundary): only
  ASCII ever reaches the resolver (`devices._read_with_ua_parser`), so nothing else could
  match them, and the automaton is smaller. Exact.
- In the few bot-hunting rules (long bounded repeats, or a `^.{0,N}` window), a long bounded
  repeat becomes an unbounded one (`{0,50}` is `*`, `{1,30}` is `+`), as the resolver
  already does for `.{0,N}`. On a user-agent capped at 256 characters this can only let a
  junk one count as a bot; on real ones it changed nothing.
- The one rule that lists about 200 crawlers in one alternation becomes several rules of at
  most `CRAWLERS_PER_RULE` names each, in the same order: each automaton is a fraction of
  the size, and the slowest parses of junk halve. A user-agent that names two crawlers of
  that list may now be labelled by the one listed first rather than the one written first
  (6 of the 30,872: "Slurp" for "Yahoo! Slurp", "archiver" for "ia_archiver", "favicon"
  for "IconSurf", "AppEngine-Google" for a YandexBot behind Google's proxy): still a bot.
"""

from __future__ import annotations

import re
from typing import Any

# An escaped character, or a whole character class (nested classes and [:alpha:] included).
_TOKEN = re.compile(r"\\.|\[\^?\]?(?:\\.|\[:[a-z]+:\]|\[[^\]]*\]|[^\]\\])*\]", re.DOTALL)
_IN_CLASS = {"\\d": "0-9", "\\w": "A-Za-z0-9_", "\\s": "\\t\\n\\x0B\\f\\r "}
_ALONE = {"\\d": "[0-9]", "\\w": "[A-Za-z0-9_]", "\\s": "[\\t\\n\\x0B\\f\\r ]", "\\b": "(?-u:\\b)"}
_CLASS_ESCAPE = re.compile(r"\\[dws]")
# What `leading_alternatives` looks at: escapes and classes (skipped whole), parentheses, bars.
_STRUCTURE = re.compile(_TOKEN.pattern + r"|[()|]", re.DOTALL)
_LONG_REPEAT = re.compile(r"\{([01]),\d{2,}\}")
_BOT_HUNT_REPEATS = 4  # a rule with at least this many long bounded repeats hunts for bots
CRAWLERS_PER_RULE = 30


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
        [
            _with(rule, pattern, *_VERSIONED)
            for rule in agents
            for pattern in _agent_patterns(rule.regex)
        ],
        [_with(rule, ascii_classes(rule.regex), *_VERSIONED) for rule in systems],
        [_with(rule, ascii_classes(rule.regex), *_DEVICE) for rule in devices],
    )


_VERSIONED = ("family", "major", "minor", "patch", "patch_minor")
_DEVICE = ("regex_flag", "family", "brand", "model")


def _agent_patterns(pattern: str) -> list[str]:
    """A user-agent rule's pattern rewritten: one, or the bot list as several."""
    if not hunts_bots(pattern):
        return [ascii_classes(pattern)]
    pattern = ascii_classes(unbounded(pattern))
    split = leading_alternatives(pattern)
    if split is None or len(split[0]) <= CRAWLERS_PER_RULE:
        return [pattern]
    names, rest = split
    return [
        "(" + "|".join(names[i : i + CRAWLERS_PER_RULE]) + ")" + rest
        for i in range(0, len(names), CRAWLERS_PER_RULE)
    ]


def leading_alternatives(pattern: str) -> tuple[list[str], str] | None:
    """The top-level alternatives of the group `pattern` starts with, and what follows the
    group; `None` if it starts with no group. Escapes and character classes are skipped."""
    if not pattern.startswith("("):
        return None
    depth, start, alternatives = 0, 1, []
    for token in _STRUCTURE.finditer(pattern):
        text = token[0]
        if text == "(":
            depth += 1
        elif text == ")":
            depth -= 1
            if depth == 0:
                alternatives.append(pattern[start : token.start()])
                return alternatives, pattern[token.end() :]
        elif text == "|" and depth == 1:
            alternatives.append(pattern[start : token.start()])
            start = token.end()
    return None


def _with(rule: Any, pattern: str, *fields: str) -> Any:
    """A rule of the same kind with another pattern: ua-parser's matchers take their
    fields positionally, the pattern first."""
    return type(rule)(pattern, *(getattr(rule, name) for name in fields))
