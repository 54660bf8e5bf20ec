"""Real user-agents with the Client Hints their browsers send, and the labels they read as:
shared by tests/test_client_hints.py and benchmarks/client_hints.py."""

from __future__ import annotations

from typing import NamedTuple

from sessionward.client_hints import HINT_HEADERS, Hints

WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko)"
PHONE = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko)"
CHROME = "Chrome/131.0.0.0 Safari/537.36"
CHROME_MOBILE = "Chrome/131.0.0.0 Mobile Safari/537.36"
GOOGLE = '"Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24"'
GOOGLE_FULL = (
    '"Google Chrome";v="131.0.6778.86", "Chromium";v="131.0.6778.86", "Not_A Brand";v="24.0.0.0"'
)


class Pair(NamedTuple):
    name: str
    user_agent: str
    hints: dict[str, str]  # header name (without "sec-ch-ua"'s prefix) to its value as sent
    before: str  # the label from the user-agent alone
    after: str  # the label with the hints
    kind: str


def chromium(
    brands: str,
    platform: str,
    version: str,
    *,
    full: str | None = None,
    model: str = "",
    mobile: bool = False,
    form_factor: str = "Desktop",
) -> dict[str, str]:
    """Every hint a Chromium browser sends to a page that asked for them with Accept-CH."""
    return {
        "": brands,
        "-mobile": "?1" if mobile else "?0",
        "-platform": f'"{platform}"',
        "-platform-version": f'"{version}"',
        "-model": f'"{model}"',
        "-full-version-list": full or brands,
        "-form-factors": f'"{form_factor}"',
    }


def as_hints(hints: dict[str, str]) -> Hints | None:
    """A request's hints as `Client.hints` holds them."""
    if not hints:
        return None
    values = {f"sec-ch-ua{suffix}".encode(): value.encode() for suffix, value in hints.items()}
    return tuple(values.get(name) for name in HINT_HEADERS)


def as_headers(hints: dict[str, str]) -> dict[str, str]:
    return {f"sec-ch-ua{suffix}": value for suffix, value in hints.items()}


PAIRS = (
    Pair(
        "Chrome, Windows 11",
        f"{WINDOWS} {CHROME}",
        chromium(GOOGLE, "Windows", "15.0.0", full=GOOGLE_FULL),
        "Chrome 131 on Windows",
        "Chrome 131 on Windows 11",
        "desktop",
    ),
    Pair(
        "Chrome, Windows 10",
        f"{WINDOWS} {CHROME}",
        chromium(GOOGLE, "Windows", "10.0.0", full=GOOGLE_FULL),
        "Chrome 131 on Windows",
        "Chrome 131 on Windows 10",
        "desktop",
    ),
    Pair(
        "Edge, Windows 11",
        f"{WINDOWS} {CHROME} Edg/131.0.0.0",
        chromium(
            '"Microsoft Edge";v="131", "Chromium";v="131", "Not_A Brand";v="24"',
            "Windows",
            "19.0.0",
            full='"Microsoft Edge";v="131.0.2903.86", "Chromium";v="131.0.6778.86", '
            '"Not_A Brand";v="24.0.0.0"',
        ),
        "Edge 131 on Windows",
        "Edge 131 on Windows 11",
        "desktop",
    ),
    Pair(
        "Opera, Windows 10",
        f"{WINDOWS} Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0",
        chromium(
            '"Chromium";v="130", "Opera";v="115", "Not?A_Brand";v="99"',
            "Windows",
            "10.0.0",
            full='"Chromium";v="130.0.6723.137", "Opera";v="115.0.5322.109", '
            '"Not?A_Brand";v="99.0.0.0"',
        ),
        "Opera 115 on Windows",
        "Opera 115 on Windows 10",
        "desktop",
    ),
    Pair(
        "Brave, Windows 11 (no trace of it in the user-agent)",
        f"{WINDOWS} {CHROME}",
        chromium('"Brave";v="131", "Chromium";v="131", "Not_A Brand";v="24"', "Windows", "15.0.0"),
        "Chrome 131 on Windows",
        "Brave 131 on Windows 11",
        "desktop",
    ),
    Pair(
        "Chrome, macOS 15",
        f"{MAC} {CHROME}",
        chromium(GOOGLE, "macOS", "15.1.0", full=GOOGLE_FULL),
        "Chrome 131 on macOS",
        "Chrome 131 on macOS 15",
        "desktop",
    ),
    Pair(
        "Edge, macOS 15",
        f"{MAC} {CHROME} Edg/131.0.0.0",
        chromium(
            '"Microsoft Edge";v="131", "Chromium";v="131", "Not_A Brand";v="24"',
            "macOS",
            "15.2.0",
        ),
        "Edge 131 on macOS",
        "Edge 131 on macOS 15",
        "desktop",
    ),
    Pair(
        "Chrome, Android 15 phone",
        f"{PHONE} {CHROME_MOBILE}",
        chromium(
            GOOGLE,
            "Android",
            "15.0.0",
            full=GOOGLE_FULL,
            model="Pixel 8",
            mobile=True,
            form_factor="Mobile",
        ),
        "Chrome 131 on Android",
        "Chrome 131 on Android 15 (Pixel 8)",
        "mobile",
    ),
    Pair(
        "Samsung Internet, Android 14 phone",
        f"{PHONE} SamsungBrowser/27.0 Chrome/125.0.0.0 Mobile Safari/537.36",
        chromium(
            '"Samsung Internet";v="27", "Chromium";v="125", "Not.A/Brand";v="24"',
            "Android",
            "14.0.0",
            full='"Samsung Internet";v="27.0", "Chromium";v="125.0.6422.165", '
            '"Not.A/Brand";v="24.0.0.0"',
            model="SM-S928B",
            mobile=True,
            form_factor="Mobile",
        ),
        "Samsung Internet 27 on Android",
        "Samsung Internet 27 on Android 14 (Samsung SM-S928B)",
        "mobile",
    ),
    Pair(
        "Chrome, Android 14 tablet",
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) " + CHROME,
        chromium(
            GOOGLE,
            "Android",
            "14.0.0",
            full=GOOGLE_FULL,
            model="Pixel Tablet",
            form_factor="Tablet",
        ),
        "Chrome 131 on Android",
        "Chrome 131 on Android 14 (Pixel Tablet)",
        "tablet",
    ),
    Pair(
        "Chrome, ChromeOS",
        f"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) {CHROME}",
        chromium(GOOGLE, "Chrome OS", "16093.68.0", full=GOOGLE_FULL),
        "Chrome 131 on ChromeOS",
        "Chrome 131 on ChromeOS",  # its release is the browser's: the version would add nothing
        "desktop",
    ),
    Pair(
        "Chrome, Linux",
        f"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) {CHROME}",
        chromium(GOOGLE, "Linux", "6.8.0", full=GOOGLE_FULL),
        "Chrome 131 on Linux",
        "Chrome 131 on Linux",
        "desktop",
    ),
    Pair(
        "Chrome, Windows 11, low-entropy hints only (no Accept-CH yet)",
        f"{WINDOWS} {CHROME}",
        {"": GOOGLE, "-mobile": "?0", "-platform": '"Windows"'},
        "Chrome 131 on Windows",
        "Chrome 131 on Windows",
        "desktop",
    ),
    Pair(
        "Firefox, Windows (sends no hints)",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
        {},
        "Firefox 133 on Windows",
        "Firefox 133 on Windows",
        "desktop",
    ),
    Pair(
        "Safari, macOS (sends no hints)",
        f"{MAC} Version/18.1 Safari/605.1.15",
        {},
        "Safari on macOS",
        "Safari on macOS",
        "desktop",
    ),
    Pair(
        "Safari, iPhone (sends no hints)",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        {},
        "Safari on iPhone",
        "Safari on iPhone",
        "mobile",
    ),
)
