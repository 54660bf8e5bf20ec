"""`sessionward.ua_rules`: the rewritten rules parse real user-agents exactly as ua-parser's own,
and the rewrites themselves do what they say."""

from __future__ import annotations

from pathlib import Path

import pytest

from sessionward.ua_rules import ascii_classes, cheaper, hunts_bots, unbounded
from tests.test_devices import REAL_USER_AGENTS

ua_parser = pytest.importorskip("ua_parser")
regex_resolver = pytest.importorskip("ua_parser.regex")

SAMPLE = Path(__file__).parent / "data" / "uap_core_sample.txt"
USER_AGENTS = [
    *(line for line in SAMPLE.read_text().splitlines() if line and not line.startswith("#")),
    *(str(param.values[0]) for param in REAL_USER_AGENTS),
]


@pytest.fixture(scope="module")
def resolvers() -> tuple[object, object]:
    builtins = ua_parser.load_lazy_builtins()
    return regex_resolver.Resolver(builtins), regex_resolver.Resolver(cheaper(builtins))


def test_real_user_agents_parse_as_with_the_builtin_rules(resolvers: tuple[object, object]) -> None:
    builtin, rewritten = resolvers
    assert len(USER_AGENTS) > 250
    differ = []
    for user_agent in USER_AGENTS:
        before = builtin(user_agent, ua_parser.Domain.ALL)  # type: ignore[operator]
        after = rewritten(user_agent, ua_parser.Domain.ALL)  # type: ignore[operator]
        if (before.user_agent, before.os, before.device) != (
            after.user_agent,
            after.os,
            after.device,
        ):
            differ.append(user_agent)
    assert differ == []


def test_only_the_bot_hunting_rules_lose_their_bounds() -> None:
    agents = ua_parser.load_lazy_builtins()[0]
    rewritten = cheaper((agents, [], []))[0]
    hunting = [index for index, rule in enumerate(agents) if hunts_bots(rule.regex)]
    assert 3 <= len(hunting) <= 10  # a handful, not the rules that read versions
    for index, (rule, cheap) in enumerate(zip(agents, rewritten, strict=True)):
        assert type(cheap) is type(rule)
        assert (cheap.family, cheap.major, cheap.minor) == (rule.family, rule.major, rule.minor)
        if index in hunting:
            assert "{0,200}" not in cheap.regex
            assert cheap.regex == ascii_classes(unbounded(rule.regex))
        else:
            assert cheap.regex == ascii_classes(rule.regex)


@pytest.mark.parametrize(
    ("pattern", "ascii"),
    [
        (r"(\d+)\.(\d+)", r"([0-9]+)\.([0-9]+)"),
        (r"\bfoo\w{0,3}\s", r"(?-u:\b)foo[A-Za-z0-9_]{0,3}[\t\n\x0B\f\r ]"),
        (r"[\d\.]+", r"[0-9\.]+"),
        (r"[^\w-]", r"[^A-Za-z0-9_-]"),
        (r"\\d", r"\\d"),  # an escaped backslash, then a "d"
        (r"[\]\d]", r"[\]0-9]"),
        (r"[[:alpha:]\d]", r"[[:alpha:]0-9]"),
        (r"\[\d\]", r"\[[0-9]\]"),  # escaped brackets are no class
    ],
)
def test_unicode_classes_become_ascii_ones(pattern: str, ascii: str) -> None:
    assert ascii_classes(pattern) == ascii


def test_long_bounded_repeats_become_unbounded() -> None:
    assert unbounded(r"^.{0,200}?([A-z]{1,30}Bot)\w{0,5}") == r"^.*?([A-z]+Bot)\w{0,5}"
    assert hunts_bots(r"^.{0,200}?bot")
    assert not hunts_bots(r"(Firefox)/(\d{1,10})\.(\d{1,10})")
