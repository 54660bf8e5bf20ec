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
    """A session token is malformed, tampered with, or signed by a key we do not hold."""
