"""What User-Agent Client Hints cost, and what they change in device labels.

    python benchmarks/client_hints.py           # a few seconds
    python benchmarks/client_hints.py --quick   # rougher

- Parse cost of hints never seen (what a new Chromium client, or an attacker sending new
  hints every time, costs): reading the seven headers and applying them to the user-agent's
  device, without the LRU (`_parse_capped.__wrapped__`, the user-agent's own parse cached as
  it is on the request path). The target is 30 µs. Android also runs ua-parser's device
  rules on a model never seen (reported apart; cached by model); hints in odd but valid
  shapes go through http-sf.
- The cost of a request whose user-agent and hints are those recorded: `Client.changes`,
  which the middleware calls on every request with a session, with and without hints.
- The labels of real user-agent + hint pairs (tests/client_hint_pairs.py, which
  tests/test_client_hints.py asserts), before (user-agent only) and after, and the bytes the
  record grows by.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sessionward import TrustedProxies, devices
from sessionward.client import Client
from sessionward.client_hints import (
    Hints,
    _hardware,
    _parse_capped,
    fingerprint,
    parse_with_hints,
)
from sessionward.devices import parse_user_agent
from sessionward.record import HINTS, device_to_fields
from tests.client_hint_pairs import PAIRS, Pair, as_headers, as_hints

NO_PROXIES = TrustedProxies([])

TARGET_US = 30.0


def per_call_us(call: Callable[[], object], number: int, rounds: int) -> float:
    """The median over `rounds` of the mean of `number` calls, in µs."""
    times = timeit.repeat(call, number=number, repeat=rounds)
    return statistics.median(times) / number * 1e6


def uncached_parse(pair: Pair, number: int, rounds: int) -> float:
    hints = as_hints(pair.hints)
    parse_user_agent(pair.user_agent)  # the user-agent's own parse is cached: only hints count
    parse = _parse_capped.__wrapped__
    return per_call_us(lambda: parse(pair.user_agent, hints), number, rounds)


def odd_shapes() -> Pair:
    """Valid hints that miss the fast path (parameters, escapes): http-sf reads them."""
    hints = {**PAIRS[0].hints}
    hints[""] = hints[""].replace('v="131"', 'v="131";x=1')
    hints["-full-version-list"] = hints["-full-version-list"].replace('"24.0.0.0"', '"24";x')
    hints["-platform"] = '"Windows";x=1'
    return PAIRS[0]._replace(name="odd shapes (http-sf)", hints=hints)


def request_headers(pair: Pair) -> list[tuple[bytes, bytes]]:
    """What Chrome sends on a page load: the hints among a dozen other headers."""
    headers = [
        (b"host", b"example.com"),
        (b"connection", b"keep-alive"),
        *[(name.encode(), value.encode()) for name, value in as_headers(pair.hints).items()],
        (b"upgrade-insecure-requests", b"1"),
        (b"user-agent", pair.user_agent.encode()),
        (b"accept", b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        (b"sec-fetch-site", b"same-origin"),
        (b"sec-fetch-mode", b"navigate"),
        (b"sec-fetch-dest", b"document"),
        (b"accept-encoding", b"gzip, deflate, br, zstd"),
        (b"accept-language", b"en-GB,en;q=0.9"),
        (b"cookie", b"__Host-session=" + b"x" * 90),
    ]
    return headers


def unchanged_request(pair: Pair, number: int, rounds: int) -> float:
    """`Client.changes` for a request that matches its record: what every request pays."""
    scope = {"type": "http", "client": ("203.0.113.9", 1234), "headers": request_headers(pair)}
    first = Client(scope, NO_PROXIES)
    recorded = first.device_fields.get(HINTS)
    agent, ip = first.agent_hash, first.ip

    def request() -> None:
        changes = Client(scope, NO_PROXIES).changes(
            ip, agent, signed_in=True, recorded_hints=recorded
        )
        assert not changes

    return per_call_us(request, number, rounds)


def record_bytes(pair: Pair, hints: Hints | None) -> int:
    device = parse_with_hints(pair.user_agent, hints)
    fields = device_to_fields(device, None if hints is None else fingerprint(hints))
    return sum(len(name) + len(value.encode()) for name, value in fields.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    number, rounds = (200, 3) if args.quick else (2000, 7)
    devices.warm_up()

    print(f"backend: {devices.USER_AGENT_BACKEND}\n")
    print(f"Parse of hints never seen (target ≤ {TARGET_US:.0f} µs):\n")
    print("| browser | µs |\n| --- | --: |")
    worst = 0.0
    for pair in [*[pair for pair in PAIRS if len(pair.hints) == 7], odd_shapes()]:
        figure = uncached_parse(pair, number, rounds)
        worst = max(worst, figure)
        print(f"| {pair.name} | {figure:.1f} |")
    print(f"\nslowest: {worst:.1f} µs ({'within' if worst <= TARGET_US else 'OVER'} the target)")
    rules = _hardware.__wrapped__
    first_sight = per_call_us(lambda: rules("Pixel 8", True), number, rounds)
    print(f"plus, for an Android model never seen (cached by model after): {first_sight:.1f} µs")

    print("\nA request whose user-agent and hints are those recorded (`Client.changes`):\n")
    print("| request | µs |\n| --- | --: |")
    chrome, firefox = PAIRS[0], next(pair for pair in PAIRS if not pair.hints)
    for name, pair in (("Chrome, all seven hints", chrome), ("Firefox, no hints", firefox)):
        print(f"| {name} | {unchanged_request(pair, number * 5, rounds):.2f} |")

    print("\nLabels, user-agent only and with hints; record bytes (names + values):\n")
    print("| browser | user-agent only | with hints | m:ch bytes | record Δ bytes |")
    print("| --- | --- | --- | --: | --: |")
    for pair in PAIRS:
        hints = as_hints(pair.hints)
        before = parse_user_agent(pair.user_agent).label
        after = parse_with_hints(pair.user_agent, hints).label
        hinted = device_to_fields(
            parse_with_hints(pair.user_agent, hints),
            None if hints is None else fingerprint(hints),
        )
        added = len(HINTS) + len(hinted[HINTS].encode()) if HINTS in hinted else 0
        delta = record_bytes(pair, hints) - record_bytes(pair, None)
        print(f"| {pair.name} | {before} | {after} | {added} | {delta:+d} |")


if __name__ == "__main__":
    main()
