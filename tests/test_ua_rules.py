"""`sessionward.ua_rules`: the rewritten rules parse real user-agents exactly as ua-parser's own,
and the rewrites themselves do what they say."""

from __future__ import annotations

from pathlib import Path

import pytest

from sessionward.ua_rules import (
    CRAWLERS_PER_RULE,
    ascii_classes,
    cheaper,
    hunts_bots,
    leading_alternatives,
    unbounded,
)
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


# A user-agent that names two crawlers of the split list is labelled by the one listed first
# (`ua_rules`): the six of uap-core's tests where that changes the name. Still bots.
RENAMED = {
    "IconSurf/2.0 favicon finder (see http://iconsurf.com/robot.html)": "favicon",
    "Mozilla/5.0 (compatible; Yahoo! Slurp/3.0 ; http://help.yahoo.com/help/us/ysearch/slurp)": (
        "Slurp"
    ),
    "ia_archiver/8.7 (Windows NT 5.0; )": "archiver",
}


def test_real_user_agents_parse_as_with_the_builtin_rules(resolvers: tuple[object, object]) -> None:
    builtin, rewritten = resolvers
    assert len(USER_AGENTS) > 250
    differ = {}
    for user_agent in [*USER_AGENTS, *RENAMED]:
        before = builtin(user_agent, ua_parser.Domain.ALL)  # type: ignore[operator]
        after = rewritten(user_agent, ua_parser.Domain.ALL)  # type: ignore[operator]
        assert (before.os, before.device) == (after.os, after.device), user_agent
        if before.user_agent != after.user_agent:
            differ[user_agent] = after.user_agent.family
    assert differ == RENAMED


def test_the_bot_hunting_rules_lose_their_bounds_and_the_list_is_split() -> None:
    agents = ua_parser.load_lazy_builtins()[0]
    rewritten = [rule.regex for rule in cheaper((agents, [], []))[0]]
    expected = []
    for rule in agents:
        if not hunts_bots(rule.regex):
            expected.append(ascii_classes(rule.regex))
            continue
        pattern = ascii_classes(unbounded(rule.regex))
        split = leading_alternatives(pattern)
        if split is None or len(split[0]) <= CRAWLERS_PER_RULE:
            expected.append(pattern)
            continue
        names, rest = split
        chunks = [names[i : i + CRAWLERS_PER_RULE] for i in range(0, len(names), CRAWLERS_PER_RULE)]
        assert len(chunks) > 3  # the crawler list, about 200 names
        expected += ["(" + "|".join(chunk) + ")" + rest for chunk in chunks]
    assert rewritten == expected
    assert 3 <= sum(hunts_bots(rule.regex) for rule in agents) <= 10  # a handful


@pytest.mark.parametrize(
    ("pattern", "split"),
    [
        (r"(a|b)(\d+)", (["a", "b"], r"(\d+)")),
        (r"(a\|b|c)", ([r"a\|b", "c"], "")),
        (r"([x|y]|(?:d|e)|f)x", (["[x|y]", "(?:d|e)", "f"], "x")),
        (r"(a|[\]|]|b)", (["a", r"[\]|]", "b"], "")),
        (r"x(a|b)", None),
        (r"(a|b", None),
    ],
)
def test_leading_alternatives(pattern: str, split: tuple[list[str], str] | None) -> None:
    assert leading_alternatives(pattern) == split


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
