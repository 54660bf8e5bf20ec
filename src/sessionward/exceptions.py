"""One exception family, rooted in `SessionwardError`, for everything sessionward raises."""


class SessionwardError(Exception):
    """Base class of every error sessionward raises on purpose."""


class ConfigurationError(SessionwardError, ValueError):
    """The middleware, a store or a transport was set up wrongly; raised at start-up."""


class SessionError(SessionwardError):
    """The application put something in the session that cannot be stored.

    Raised inside the request that caused it, with a message that names the key.
    """


class StoreUnavailable(SessionwardError):
    """The session store could not be reached; requests that need it get a 503."""


class InvalidToken(SessionwardError):
    """A session token is malformed, tampered with, or signed by a key we do not hold.

    `reason` is one short ASCII word a bearer transport can put in `WWW-Authenticate: Bearer
    error="invalid_token", error_description="<reason>"` without escaping or leaking the
    message: "malformed", "bad_signature", "unknown_key", "wrong_algorithm", "missing_claim",
    "invalid_claim", "wrong_issuer", "wrong_audience", "expired" or "not_yet_valid".
    """

    reason: str = "invalid"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class ExpiredToken(InvalidToken):
    """A correctly signed token whose `exp` has passed: the client should get a new one."""

    reason = "expired"


class TokenNotYetValid(InvalidToken):
    """A correctly signed token whose `nbf` or `iat` is ahead of our clock (beyond the leeway)."""

    reason = "not_yet_valid"


class InvalidGrant(SessionwardError):
    """A refresh token that gets nothing: unknown, malformed, from an ended session, or
    presented again after its reuse grace (then its session is revoked as stolen).

    Token endpoints answer it as RFC 6749 does, `400 {"error": "invalid_grant"}`, and say no
    more: which of these it was is for the app's logs.
    """
