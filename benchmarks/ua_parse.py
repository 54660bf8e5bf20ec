"""What one user-agent parse costs, uncached and cached, with each backend this install can run.

    python benchmarks/ua_parse.py                       # ~2 min: both backends, 30 s of search
    python benchmarks/ua_parse.py --quick               # a few seconds, rougher
    python benchmarks/ua_parse.py --search-seconds 120  # search longer for the worst input

Sessions parse a user-agent when they are created or it changes, so the uncached figure is what
a stream of new clients (or an attacker sending a new junk user-agent every time) costs, and
junk is measured at the length cap, where it costs most. Uncached is `parse_user_agent` minus
its LRU (`_parse_capped.__wrapped__`), with ua-parser's legacy 200-entry cache, which
user-agents reads through, emptied before each call. Cached is `parse_user_agent` itself on a
warm cache. Each figure is the median of several rounds of many calls, in µs per call.

The worst case is searched for with the backend in use: mutations of real user-agents and of
junk made of the rules' own literals (`search`). A search ranks by the median of repeated
parses of one string. The first parse of a string never seen costs more with ua-parser-rs, as
its regexes build their lazy DFAs' states as they go: that "first sight" figure is reported too,
as the median first parse of unseen one-character variants of the worst strings.
"""

from __future__ import annotations

import argparse
import functools
import gc
import importlib.metadata
import platform
import random
import re
import statistics
import string
import time
import timeit
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ua_parser import load_lazy_builtins, user_agent_parser

from sessionward import devices
from sessionward.devices import MAX_USER_AGENT_CHARS, parse_user_agent

CAP = MAX_USER_AGENT_CHARS
TYPICAL = {
    "desktop: Chrome on Windows": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36"
    ),
    "desktop: Firefox on Linux": (
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
    ),
    "desktop: Edge on Windows": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0"
    ),
    "iPhone: Safari": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
    ),
    "Android: Chrome on a Samsung": (
        "Mozilla/5.0 (Linux; Android 14; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.6778.81 Mobile Safari/537.36"
    ),
    "Android: Instagram in-app (capped)": (
        "Mozilla/5.0 (Linux; Android 14; SM-S918B Build/UP1A.231005.007; wv) "
        "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/131.0.6778.81 Mobile "
        "Safari/537.36 Instagram 357.0.0.25.101 Android (34/14; 480dpi; 1080x2106; samsung; "
        "SM-S918B; dm3q; qcom; en_US; 659325269)"
    )[:CAP],
    "bot: Googlebot": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "tool: curl": "curl/8.5.0",
}


def _repeat(text: str) -> str:
    return (text * (CAP // len(text) + 1))[:CAP]


_random = random.Random(2024)
JUNK = {
    "';' x 256": ";" * CAP,
    "' ' x 256": " " * CAP,
    "'a' x 256": "a" * CAP,
    "'é' x 256": "é" * CAP,
    "random printable": "".join(_random.choice(string.printable) for _ in range(CAP)),
    "'Mozilla/5.0 (' x n": _repeat("Mozilla/5.0 ("),
    "'Android ' x n": _repeat("Android "),
    "'Windows Phone 8.0; ' x n": _repeat("Windows Phone 8.0; "),
    # The slowest string a 10 s `search` found before ua-parser-rs was given non-ASCII as "?":
    # ~2 ms, as its "é"s made the regex engine give up its lazy DFA (devices.py says more).
    "non-ASCII worst, now '?'": (
        ".botNokiJSSailfishBrowsercssonSonyEricsso; SonMID835ynSonyErMaJsonSonyEricssonSonyEricC"
        "sonSonyEricsicssonSonyEricssonSKitricFedorassonSonyEricssonUCWEBUCWETUCWEBUCWwhitsurveyo"
        "nEBUCWEBUCWEfd MoziTopBuzzlla/5.0 (Eraé&éééé5.0ADR8995BraveNexus 10YahooSeeker0AD"
    ),
    # The slowest string `search` found (--search-seconds 180) for ua-parser-rs: tokens that
    # pass its prefilter for many rules, each of which then runs over the whole string. The
    # same string is tests/test_devices.py's SEARCHED_WORST_USER_AGENT.
    "searched worst (ua-parser-rs)": (
        ".botNokiaSAMSpNChromxuWebZIPPbmobileowseXricssonSonyEricssonSonyEricssonSonyEricssonSo"
        "nyEricssonSonyEkNrgusweisSonyEricssonSonyEricEcosiassosonSonyEricHuaweissonSonyEnodejs"
        "cssoiyEricssRnUCWEBUCWEBUCWEBUCWyBUMID860CWEBri/iaNIGHTt#shscoopockt600DarwiZ/2crawl"
    ),
}
TARGETS_US = {"typical": 50.0, "worst": 1000.0, "cached": 2.0}


def per_call_us(call: Callable[[], object], rounds: int, round_seconds: float) -> float:
    """Median over `rounds` of the mean time of one call, in µs."""
    timer = timeit.Timer(call)
    once = min(timer.repeat(repeat=3, number=1))
    number = max(1, int(round_seconds / max(once, 1e-7)))
    return statistics.median(timer.repeat(repeat=rounds, number=number)) / number * 1e6


def uncached(user_agent: str) -> Callable[[], object]:
    parse = devices._parse_capped.__wrapped__
    capped = user_agent[:CAP]

    def call() -> object:
        user_agent_parser._PARSE_CACHE.clear()
        return parse(capped)

    return call


def cached(user_agent: str) -> Callable[[], object]:
    parse_user_agent(user_agent)
    return lambda: parse_user_agent(user_agent)


def measure(backend: str, rounds: int, round_seconds: float) -> dict[str, float]:
    """Every row's figure with this backend, which is put back as it was afterwards."""
    in_use = devices._read
    devices._read = devices._READERS[backend]
    devices._parse_capped.cache_clear()
    try:
        figures = {
            name: per_call_us(uncached(user_agent), rounds, round_seconds)
            for name, user_agent in {**TYPICAL, **JUNK}.items()
        }
        figures["cached"] = per_call_us(cached(TYPICAL["desktop: Chrome on Windows"]), rounds, 0.05)
    finally:
        devices._read = in_use
        devices._parse_capped.cache_clear()
    return figures


# Searching for the worst input.

# Text the rules look for beyond their own literals, and characters to mutate with.
_TOKENS = [
    "Mozilla/5.0 (", "Android ", "; ", "Build/", "bot", "Bot", "spider", "crawl", "Version/",
    "Mobile", "Safari/", "Chrome/", "like Gecko", "Windows NT 10.0", "Windows Phone ", "Linux",
    "iPhone", "CPU OS ", "like Mac OS X", "KHTML", "AppleWebKit/", "SAMSUNG-", "SonyEricsson",
    "UCWEB", "Nokia", "HbbTV/1.1.1 (", "/", "(", ")", " ", ";", "-", "_", ".", "+", "1234567890",
    "9" * 24, "é", "ü", "中文", "\u00a0", "\u200b", "\ud800",
]  # fmt: skip
_CHARS = string.ascii_letters + string.digits + string.punctuation + " éü中\u00a0\ud800"


def rule_literals() -> list[str]:
    """The literal text of ua-parser's rules: what its prefilter passes a rule on."""
    literals = set()
    for matchers in load_lazy_builtins():
        for matcher in matchers:
            pattern = re.sub(r"\(\?[:iP!=<]*(?:<\w+>)?", "(", matcher.regex)
            pattern = re.sub(r"\\[dDwWsSbBAzZ]", " ", pattern)
            pattern = re.sub(r"\\(.)", r"\1", pattern)
            pattern = re.sub(r"\[[^\]]*\]", " ", pattern)
            for piece in re.split(r"[()|?*+{}^$]|\.(?!\d)", pattern):
                if len(piece := piece.strip()) >= 3 and not piece.replace(",", "").isdigit():
                    literals.add(piece)
    return sorted(literals)


@dataclass(frozen=True)
class Found:
    user_agent: str
    us: float


class Search:
    """A hill-climb for the capped string that costs `parse` most, uncached.

    Deterministic but for timing: a pool of the slowest strings seen, seeded with `seeds`;
    each step mutates one of them (insert, overwrite, duplicate, repeat to the cap, splice with
    another, delete, change a character) and keeps the child if it is slower than the pool's
    fastest. Each string's cost is the median of `repeats` parses (`rank`); its first parse,
    the first time the process saw that string, is kept apart (`first_sight`).
    """

    POOL = 24

    def __init__(self, parse: Callable[[str], object], seed: int = 2024, repeats: int = 5):
        self.parse, self.repeats = parse, repeats
        self.random = random.Random(seed)
        self.tokens = _TOKENS + rule_literals()
        self.seen: set[str] = set()
        self.pool: list[tuple[float, str]] = []  # (median µs, string), slowest first
        self.first_sight: list[tuple[float, str]] = []  # (first parse µs, string), slowest first
        self.tried = 0

    def timed_us(self, user_agent: str) -> float:
        start = time.perf_counter_ns()
        self.parse(user_agent)
        return (time.perf_counter_ns() - start) / 1000

    def rank(self, user_agent: str) -> None:
        user_agent = user_agent[:CAP]
        if not user_agent or user_agent in self.seen:
            return
        self.seen.add(user_agent)
        self.tried += 1
        first = self.timed_us(user_agent)
        median = statistics.median(self.timed_us(user_agent) for _ in range(self.repeats))
        for pool, us in ((self.pool, median), (self.first_sight, first)):
            if len(pool) < self.POOL or us > pool[-1][0]:
                pool.append((us, user_agent))
                pool.sort(reverse=True)
                del pool[self.POOL :]

    def junk(self) -> str:
        parts: list[str] = []
        while sum(map(len, parts)) < CAP:
            parts.append(self.random.choice(self.tokens))
        return "".join(parts)

    def mutate(self, text: str) -> str:
        rnd, token = self.random, self.random.choice(self.tokens)
        at, to = sorted(rnd.randrange(len(text) + 1) for _ in range(2))
        match rnd.randrange(8):
            case 0:
                return text[:at] + token + text[at:]
            case 1:
                return text[:at] + token + text[at + len(token) :]
            case 2:
                return text[:to] + text[at:to] + text[to:]
            case 3:
                return text[:at] + (text[at:to] or token) * CAP
            case 4:
                other = rnd.choice(self.pool)[1]
                return text[:at] + other[rnd.randrange(len(other)) :]
            case 5:
                return (text[:at] + text[to:]) or token
            case 6:
                return text[:at] + rnd.choice(_CHARS) + text[at + 1 :]
            case _:
                return (text + self.junk())[:CAP]

    def parent(self) -> str:
        pool = self.first_sight if self.random.random() < 0.2 else self.pool
        return pool[int(len(pool) * self.random.random() ** 2)][1]  # the slowest most often

    def run(self, seeds: Iterable[str], seconds: float) -> None:
        for seed in filter(None, seeds):
            self.rank(seed)
            self.rank(_repeat(seed))
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.random.random() < 0.05:
                self.rank(self.junk())
                continue
            child = self.parent()
            for _ in range(self.random.randint(1, 3)):
                child = self.mutate(child)[:CAP]
            self.rank(child)

    def unseen_variants(self, user_agent: str, count: int) -> list[str]:
        """`count` strings never parsed before, each `user_agent` with one character changed."""
        variants: list[str] = []
        while len(variants) < count:
            at = self.random.randrange(len(user_agent))
            variant = user_agent[:at] + self.random.choice(_CHARS) + user_agent[at + 1 :]
            if variant not in self.seen:
                self.seen.add(variant)
                variants.append(variant)
        return variants

    def worst(self, top: int = 5) -> tuple[Found, Found]:
        """The worst string measured again, and the worst first sight of an unseen variant."""
        again = [
            Found(text, per_call_us(functools.partial(self.parse, text), 5, 0.05))
            for _, text in self.pool[:top]
        ]
        fresh = [
            Found(text, statistics.median(map(self.timed_us, self.unseen_variants(text, 31))))
            for text in dict.fromkeys(text for _, text in self.first_sight[:top] + self.pool[:top])
        ]
        return max(again, key=lambda found: found.us), max(fresh, key=lambda found: found.us)


def search(seconds: float, seed: int = 2024) -> tuple[Found, Found, int]:
    """The worst strings for the backend in use: (repeated, first sight, strings tried)."""
    parse = devices._parse_capped.__wrapped__

    def parse_uncached(user_agent: str) -> object:
        user_agent_parser._PARSE_CACHE.clear()
        return parse(user_agent)

    finder = Search(parse_uncached, seed)
    gc.collect()
    gc.disable()
    try:
        finder.run([*TYPICAL.values(), *JUNK.values()], seconds)
        repeated, first_sight = finder.worst()
    finally:
        gc.enable()
    return repeated, first_sight, finder.tried


def versions() -> str:
    found = []
    for package in ("ua-parser", "ua-parser-builtins", "ua-parser-rs", "user-agents"):
        try:
            found.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{package} (not installed)")
    return ", ".join(found)


def table(results: dict[str, dict[str, float]]) -> str:
    backends = list(results)
    lines = [
        "| case | chars | " + " | ".join(f"{name} (µs)" for name in backends) + " |",
        "|---|---:|" + "---:|" * len(backends),
    ]
    rows = [(name, name, text) for name, text in TYPICAL.items()]
    rows += [(f"junk: {name}", name, text) for name, text in JUNK.items()]
    for label, name, text in rows:
        cells = " | ".join(f"{results[backend][name]:,.1f}" for backend in backends)
        lines.append(f"| {label} | {len(text)} | {cells} |")
    summary = {
        "**typical** (target ≤ 50)": [
            f"{min(r[n] for n in TYPICAL):,.1f} to {max(r[n] for n in TYPICAL):,.1f}"
            for r in results.values()
        ],
        "**worst junk** (target ≤ 1,000)": [
            f"{max(r[n] for n in JUNK):,.1f}" for r in results.values()
        ],
        "**cached** (target ≤ 2)": [f"{r['cached']:,.1f}" for r in results.values()],
    }
    for label, figures in summary.items():
        lines.append(f"| {label} | | " + " | ".join(figures) + " |")
    return "\n".join(lines)


def verdict(results: dict[str, dict[str, float]], searched: dict[str, float]) -> list[str]:
    lines = []
    for backend, figures in results.items():
        worst = max(figures[name] for name in JUNK)
        if backend == devices.USER_AGENT_BACKEND and searched:
            worst = max(worst, searched["repeated"])
        checks = {
            "typical": max(figures[name] for name in TYPICAL) <= TARGETS_US["typical"],
            "worst": worst <= TARGETS_US["worst"],
            "cached": figures["cached"] <= TARGETS_US["cached"],
        }
        if backend == devices.USER_AGENT_BACKEND and searched:
            checks["worst first sight"] = searched["first sight"] <= TARGETS_US["worst"]
        met = ", ".join(f"{name} {'met' if ok else 'NOT MET'}" for name, ok in checks.items())
        lines.append(f"- {backend}: {met}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    parser.add_argument(
        "--search-seconds",
        type=float,
        help="how long to search for the worst input, 0 for not at all (30, or 3 with --quick)",
    )
    args = parser.parse_args()
    rounds, round_seconds = (3, 0.02) if args.quick else (7, 0.2)
    seconds = args.search_seconds if args.search_seconds is not None else 3 if args.quick else 30
    print(f"Python {platform.python_version()} on {platform.machine()}; {versions()}")
    print(f"Backend in use: {devices.USER_AGENT_BACKEND}\n")
    searched: dict[str, float] = {}
    if seconds > 0:
        repeated, first_sight, tried = search(seconds)
        searched = {"repeated": repeated.us, "first sight": first_sight.us}
        print(f"Search: {tried:,} strings in {seconds:g} s with {devices.USER_AGENT_BACKEND}")
        print(f"- worst, repeated: {repeated.us:,.1f} µs for {repeated.user_agent!r}")
        print(
            f"- worst first sight (median of 31 unseen one-character variants): "
            f"{first_sight.us:,.1f} µs for {first_sight.user_agent!r}\n"
        )
    results = {name: measure(name, rounds, round_seconds) for name in devices._READERS}
    print(table(results))
    print("\nTargets (uncached typical ≤ 50 µs, worst ≤ 1 ms, cached ≤ 2 µs):")
    print("\n".join(verdict(results, searched)))


if __name__ == "__main__":
    main()
