"""Which sessions a command works on: the app's own configuration (`--app module:attribute`,
found as uvicorn finds an app) or a Redis URL with `SESSIONWARD_SECRET_KEYS`; and running a
command's async work on it, every failure turned into one line and a non-zero exit.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from ..config import SessionConfig
from ..exceptions import ConfigurationError, SessionwardError, StoreUnavailable
from ..testing import session_middleware

T = TypeVar("T")
SECRET_KEYS_VARIABLE = "SESSIONWARD_SECRET_KEYS"  # noqa: S105 - its name, not a key


@dataclass(frozen=True, slots=True)
class Target:
    """The command-line options that say where the sessions are."""

    app: str | None
    redis_url: str | None
    cluster: bool
    prefix: str
    idle_ttl: int | None
    as_json: bool


_OPTIONS = (
    click.option(
        "--app",
        envvar="SESSIONWARD_APP",
        metavar="MODULE:ATTRIBUTE",
        help="The app (or its SessionMiddleware, or a SessionConfig), as uvicorn takes it.",
    ),
    click.option(
        "--redis-url",
        envvar="SESSIONWARD_REDIS_URL",
        help=f"Redis to use instead of an app's; keys from ${SECRET_KEYS_VARIABLE}.",
    ),
    click.option("--cluster", is_flag=True, help="--redis-url names a Redis Cluster node."),
    click.option("--prefix", default="sessionward:", show_default=True, help="With --redis-url."),
    click.option("--idle-ttl", type=int, help="With --redis-url: the app's idle_ttl (s)."),
    click.option("--json", "as_json", is_flag=True, help="JSON output."),
)


def target_options(command: Callable[..., T]) -> Callable[..., T]:
    """Add the target options to a command, which receives them as one `Target`."""

    @functools.wraps(command)
    def wrapper(**options: Any) -> T:
        target = Target(
            options.pop("app"),
            options.pop("redis_url"),
            options.pop("cluster"),
            options.pop("prefix"),
            options.pop("idle_ttl"),
            options.pop("as_json"),
        )
        return command(target, **options)

    decorated: Callable[..., T] = wrapper
    for option in reversed(_OPTIONS):
        decorated = option(decorated)
    return decorated


def load_config(target: Target) -> SessionConfig:
    """The configuration the options name; `click.ClickException` (one line) when they do not."""
    if target.app and target.redis_url:
        raise click.UsageError("give --app or --redis-url, not both")
    if target.app:
        return _config_of(_import_app(target.app), target.app)
    if target.redis_url:
        return _redis_config(target)
    raise click.UsageError(
        "say where the sessions are: --app module:attribute (or $SESSIONWARD_APP), "
        f"or --redis-url URL (or $SESSIONWARD_REDIS_URL) with ${SECRET_KEYS_VARIABLE}"
    )


def _import_app(path: str) -> object:
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise click.UsageError(f"--app {path!r}: give it as module:attribute, e.g. main:app")
    if os.getcwd() not in sys.path:  # as uvicorn does: the app's module is beside the shell
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise click.ClickException(f"--app {path!r}: cannot import {exc.name!r}") from None
    except Exception as exc:
        raise click.ClickException(
            f"--app {path!r}: importing {module_name} failed: {type(exc).__name__}: {exc}"
        ) from None
    found: object = module
    for name in attribute.split("."):
        if not hasattr(found, name):
            raise click.ClickException(f"--app {path!r}: {module_name} has no {attribute!r}")
        found = getattr(found, name)
    return found


def _config_of(found: object, path: str) -> SessionConfig:
    if isinstance(found, SessionConfig):
        return found
    try:  # the SessionMiddleware itself, or the one in the app's middleware stack
        return session_middleware(found).config  # type: ignore[arg-type]
    except LookupError:
        raise click.ClickException(
            f"--app {path!r} is a {type(found).__name__} with no SessionMiddleware: name "
            "the app, its SessionMiddleware or a SessionConfig"
        ) from None


def _redis_config(target: Target) -> SessionConfig:
    from redis.asyncio import RedisCluster

    from ..stores.redis import RedisStore

    assert target.redis_url is not None
    text = os.environ.get(SECRET_KEYS_VARIABLE, "")
    keys = [key.strip() for key in text.split(",") if key.strip()]
    try:
        if target.cluster:
            store = RedisStore(RedisCluster.from_url(target.redis_url), prefix=target.prefix)
        else:
            store = RedisStore.from_url(target.redis_url, prefix=target.prefix)
    except ValueError as exc:
        raise click.ClickException(f"--redis-url: {exc}") from None
    settings: dict[str, Any] = {"idle_ttl": target.idle_ttl} if target.idle_ttl else {}
    try:
        return SessionConfig(secret_keys=keys or None, store=store, telemetry=False, **settings)
    except ConfigurationError as exc:
        raise click.ClickException(f"${SECRET_KEYS_VARIABLE}: {exc}") from None


def redis_client(config: SessionConfig) -> Any:
    """The Redis client under the configured store; a one-line failure for another store."""
    from ..stores.redis import RedisStore

    store = getattr(config.store, "wrapped", config.store)
    if not isinstance(store, RedisStore):
        raise click.ClickException(
            f"the app keeps its sessions in a {type(store).__name__}, in its own process: "
            "the command line reaches only a RedisStore's sessions"
        )
    return store.client


def run(target: Target, work: Callable[[SessionConfig], Awaitable[T]]) -> T:
    """Run `work` on the target's configuration in a new event loop, then close its store.

    Every expected failure (an unreachable Redis, a configuration error) becomes one line on
    standard error and exit status 1, never a traceback.
    """
    config = load_config(target)

    async def main() -> T:
        try:
            return await work(config)
        finally:
            await config.store.aclose()

    try:
        return asyncio.run(main())
    except StoreUnavailable as exc:
        raise click.ClickException(f"cannot reach the session store: {exc}") from None
    except SessionwardError as exc:
        raise click.ClickException(str(exc)) from None
    except (OSError, _redis_error()) as exc:
        raise click.ClickException(
            f"cannot reach Redis: {type(exc).__name__}: {exc}".rstrip(": ")
        ) from None


def _redis_error() -> type[Exception]:
    """redis-py's base error, if the target has loaded redis-py, else one never raised."""
    module = sys.modules.get("redis.exceptions")
    error: type[Exception] = getattr(module, "RedisError", _Never)
    return error


class _Never(Exception):
    pass
