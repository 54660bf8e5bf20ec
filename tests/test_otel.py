"""OpenTelemetry: what is counted, timed and traced over real requests, and what never is.

Each test records to SDK providers of its own (`Telemetry(meter_provider=...,
tracer_provider=...)`): the global ones can be set once per process, so the tests that need
them run in a subprocess.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    InMemoryMetricReader,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.types import ASGIApp, Receive, Scope, Send

from sessionward import (
    BearerSigner,
    BearerTransport,
    JWTKey,
    MemoryStore,
    RedisStore,
    SessionConfig,
    Store,
    UserSessions,
)
from sessionward.stores.instrumented import InstrumentedStore
from sessionward.telemetry import Telemetry
from sessionward.tokens import session_hash
from tests.apps import COOKIE, build_app
from tests.conftest import ROOT
from tests.redis_server import RedisServer

pytestmark = pytest.mark.anyio

CLIENT_IP = "203.0.113.77"
JWT_KEY = JWTKey("k1", "HS256", "h" * 32)
TIMEOUT = 0.5  # seconds: the outage tests' socket timeouts


@dataclass
class Recorded:
    """SDK providers of one test, with what they collected."""

    telemetry: Telemetry
    reader: InMemoryMetricReader
    spans: InMemorySpanExporter
    tracer_provider: TracerProvider

    def metrics(self) -> dict[str, list[tuple[dict[str, Any], Any]]]:
        """Every point of every metric: its attributes and its value (or histogram point)."""
        found: dict[str, list[tuple[dict[str, Any], Any]]] = {}
        data = self.reader.get_metrics_data()
        assert data is not None
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                assert scope.scope.name == "sessionward"
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        value = point.value if isinstance(point, NumberDataPoint) else point
                        attributes = dict(point.attributes or {})
                        found.setdefault(metric.name, []).append((attributes, value))
        return found

    def count(self, name: str, **attributes: str) -> int:
        """The total of a counter over the points whose attributes include these."""
        points = self.metrics().get("sessionward." + name, [])
        return sum(
            value
            for point, value in points
            if all(point.get(k.replace("_", ".")) == v for k, v in attributes.items())
        )

    def finished(self) -> tuple[ReadableSpan, ...]:
        return self.spans.get_finished_spans()


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    reader = InMemoryMetricReader()
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    meter_provider = MeterProvider(metric_readers=[reader])
    telemetry = Telemetry(meter_provider=meter_provider, tracer_provider=tracer_provider)
    yield Recorded(telemetry, reader, spans, tracer_provider)
    meter_provider.shutdown()
    tracer_provider.shutdown()


def app_for(store: Store, recorded: Recorded, **options: Any) -> Any:
    bearer = BearerTransport(BearerSigner([JWT_KEY]))
    return build_app(store, telemetry=recorded.telemetry, bearer=bearer, **options)


def browser(app: Any) -> httpx.AsyncClient:
    """A client at a distinctive IP, so the leak test can look for it."""
    transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 4321))
    return httpx.AsyncClient(transport=transport, base_url="https://testserver")


def redis_store(server: RedisServer) -> RedisStore:
    return RedisStore.from_url(
        server.url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT, retries=0
    )


# -- counters ------------------------------------------------------------------------------


async def test_loads_creates_and_saves_are_counted(store: Store, recorded: Recorded) -> None:
    async with browser(app_for(store, recorded)) as client:
        await client.get("/session")  # no cookie: nothing loaded
        await client.post("/session", json={"a": 1})
        await client.get("/session")
        await client.post("/session", json={"b": 2, "c": 3})
        await client.post("/session", json={"b": 2})  # unchanged: nothing saved
        stale = client.cookies[COOKIE]
        await client.delete("/session")
        client.cookies.clear()
        await client.get("/session", headers={"cookie": f"{COOKIE}={stale}"})
    assert recorded.count("sessions.created") == 1
    assert recorded.count("sessions.loaded", result="hit") == 4
    assert recorded.count("sessions.loaded", result="miss") == 1
    assert recorded.count("sessions.saved", result="saved") == 1
    assert recorded.count("session.fields.written") == 2


async def test_sign_ins_sign_outs_revocations_and_evictions_are_counted(
    store: Store, recorded: Recorded
) -> None:
    app = app_for(store, recorded, max_sessions_per_user=2)
    async with browser(app) as first, browser(app) as second, browser(app) as third:
        for client in (first, second, third):  # the third evicts the first
            assert (await client.post("/login/ada")).status_code == 200
        assert (await second.post("/logout")).status_code == 200
        token = (await third.post("/api/login/ada")).json()["token"]
    users = UserSessions(SessionConfig(store=store, telemetry=recorded.telemetry))
    assert await users.revoke_all("ada") == 2  # the third browser's and the bearer session
    assert recorded.count("sign_ins", sessionward_transport="cookie") == 3
    assert recorded.count("sign_ins", sessionward_transport="bearer") == 1
    assert recorded.count("sign_outs", sessionward_transport="cookie") == 1
    assert recorded.count("sessions.evicted") == 1
    assert recorded.count("sessions.revoked") == 2
    assert recorded.count("sessions.created") == 4  # one per sign-in
    assert token


async def test_rejected_tokens_are_counted_by_reason(store: Store, recorded: Recorded) -> None:
    forger = BearerSigner([JWTKey("k1", "HS256", "f" * 32)])  # the right kid, the wrong key
    forged = forger.issue("a" * 43, "ada", now=time.time())
    async with browser(app_for(store, recorded)) as client:
        await client.get("/session", headers={"cookie": f"{COOKIE}=not-a-token"})
        await client.get("/session", headers={"cookie": f"{COOKIE}={'a' * 43}.{'b' * 43}"})
        token = (await client.post("/api/login/ada")).json()["token"]
        await client.get("/me", headers={"authorization": "Bearer garbage"})
        await client.get("/me", headers={"authorization": f"Bearer {forged}"})
        await client.post("/logout", headers={"authorization": f"Bearer {token}"})
        await client.get("/me", headers={"authorization": f"Bearer {token}"})
    rejected = recorded.metrics()["sessionward.tokens.rejected"]
    assert sorted((p["sessionward.transport"], p["reason"], n) for p, n in rejected) == [
        ("bearer", "bad_signature", 1),
        ("bearer", "malformed", 1),
        ("bearer", "session_ended", 1),
        ("cookie", "bad_signature", 1),
        ("cookie", "malformed", 1),
    ]


async def test_a_stopped_redis_counts_store_errors_and_503s(
    private_redis: RedisServer, recorded: Recorded
) -> None:
    store = redis_store(private_redis)
    async with browser(app_for(store, recorded)) as client:
        await client.post("/session", json={"a": 1})
        private_redis.stop()
        assert (await client.get("/session")).status_code == 503
        assert (await client.get("/session")).status_code == 503
    await store.aclose()
    assert recorded.count("responses.unavailable") == 2
    errors = recorded.metrics()["sessionward.store.errors"]
    assert errors == [({"db.operation.name": "load", "error.type": "ConnectionError"}, 2)]
    failed = [span for span in recorded.finished() if span.status.status_code == StatusCode.ERROR]
    assert len(failed) == 2
    assert all(span.attributes == {**LOAD, "error.type": "ConnectionError"} for span in failed)
    durations = recorded.metrics()["sessionward.store.operation.duration"]
    failures = [point for attrs, point in durations if attrs.get("error.type")]
    assert [point.count for point in failures] == [2]


LOAD = {"db.operation.name": "load", "db.system.name": "redis"}


# -- spans and durations --------------------------------------------------------------------


def request_spans(app: ASGIApp, provider: TracerProvider) -> ASGIApp:
    """What an ASGI instrumentation does: a SERVER span current around the whole request."""
    tracer = provider.get_tracer("test-asgi")

    async def traced(scope: Scope, receive: Receive, send: Send) -> None:
        with tracer.start_as_current_span("GET /session", kind=SpanKind.SERVER):
            await app(scope, receive, send)

    return traced


async def test_redis_calls_are_client_spans_under_the_request_span(
    redis_client: Any, recorded: Recorded
) -> None:
    store = RedisStore(redis_client)
    app = request_spans(app_for(store, recorded), recorded.tracer_provider)
    async with browser(app) as client:
        await client.post("/session", json={"a": 1})
        recorded.spans.clear()
        await client.post("/session", json={"a": 2})
    request, *_ = (span for span in recorded.finished() if span.kind == SpanKind.SERVER)
    calls = [span for span in recorded.finished() if span.kind == SpanKind.CLIENT]
    assert [span.name for span in calls] == ["sessionward.load", "sessionward.save"]
    assert [span.attributes for span in calls] == [
        LOAD,
        {"db.operation.name": "save", "db.system.name": "redis"},
    ]
    assert request.context is not None
    for span in calls:
        assert span.parent is not None
        assert span.parent.span_id == request.context.span_id
        assert span.context is not None
        assert span.context.trace_id == request.context.trace_id
        assert span.instrumentation_scope is not None
        assert span.instrumentation_scope.name == "sessionward"
        assert span.instrumentation_scope.version
    durations = recorded.metrics()["sessionward.store.operation.duration"]
    by_operation = {attrs["db.operation.name"]: point for attrs, point in durations}
    assert by_operation["load"].count == 1  # the first request had no cookie to load
    assert 0 < by_operation["load"].sum < 1  # seconds


async def test_memory_store_calls_are_counted_but_neither_timed_nor_traced(
    recorded: Recorded,
) -> None:
    async with browser(app_for(MemoryStore(), recorded)) as client:
        await client.post("/session", json={"a": 1})
        await client.get("/session")
    assert recorded.finished() == ()
    assert "sessionward.store.operation.duration" not in recorded.metrics()
    assert recorded.count("sessions.loaded", result="hit") == 1


# -- what is never recorded -----------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:refresh_token\\(request\\) is deprecated")
async def test_no_id_token_key_user_or_ip_is_ever_an_attribute(
    private_redis: RedisServer, recorded: Recorded
) -> None:
    """A run that signs in, reads, writes, lists, revokes, refuses and fails: every attribute
    name and value of every metric point and span is checked against every secret of it."""
    user = "user-5d1c9e"
    store = redis_store(private_redis)
    app = request_spans(app_for(store, recorded, max_sessions_per_user=1), recorded.tracer_provider)
    origin = {"origin": "https://testserver"}
    secrets = {user, CLIENT_IP}
    async with browser(app) as client, browser(app) as other:
        await client.post("/session", json={"cart": [1]})
        secrets.add(client.cookies[COOKIE])
        await client.post(f"/login/{user}")
        secrets.add(client.cookies[COOKIE])
        await client.post("/session", json={"cart": [1, 2]})
        await client.get("/session")
        listed = (await client.get("/account/sessions")).json()["sessions"]
        token = (await other.post(f"/api/login/{user}")).json()["token"]  # evicts the cookie's
        secrets.add(token)
        await other.get("/me", headers={"authorization": f"Bearer {token}x"})
        await other.post("/api/refresh", headers={"authorization": f"Bearer {token}"})
        await client.delete(f"/account/sessions/{listed[0]['id']}", headers=origin)
        private_redis.stop()
        failed = await other.get("/me", headers={"authorization": f"Bearer {token}"})
    await store.aclose()
    assert failed.status_code == 503
    secrets |= {item["id"] for item in listed}
    for secret in list(secrets):
        if "." in secret and len(secret) < 128:  # a signed cookie: its id and key too
            session_id = secret.rpartition(".")[0]
            secrets |= {session_id, session_hash(session_id)}
    recorded_text = attribute_text(recorded)
    assert len(recorded_text) > 20  # the run recorded plenty
    for secret in secrets:
        assert not [text for text in recorded_text if secret in text], secret


def attribute_text(recorded: Recorded) -> list[str]:
    """Every attribute name and value, and every span name, as text."""
    texts: list[str] = []
    for name, points in recorded.metrics().items():
        texts.append(name)
        for attributes, _ in points:
            texts += [f"{key}={value!s}" for key, value in attributes.items()]
    for span in recorded.finished():
        texts.append(span.name)
        texts += [f"{key}={value!r}" for key, value in (span.attributes or {}).items()]
        for event in span.events:
            texts += [f"{key}={value!r}" for key, value in (event.attributes or {}).items()]
        if span.status.description:
            texts.append(span.status.description)
    return texts


# -- switching it on and off ----------------------------------------------------------------


def test_telemetry_false_leaves_the_store_as_given() -> None:
    store = MemoryStore()
    config = SessionConfig(store=store, telemetry=False)
    assert config.telemetry is None
    assert config.store is store


def test_a_store_from_another_config_is_measured_once(recorded: Recorded) -> None:
    first = SessionConfig(store=MemoryStore(), telemetry=recorded.telemetry)
    second = SessionConfig(store=first.store, telemetry=recorded.telemetry)
    assert isinstance(second.store, InstrumentedStore)
    assert isinstance(second.store.wrapped, MemoryStore)


WITHOUT_OPENTELEMETRY = """
import asyncio, sys
import httpx

attempts = []

class Blocker:
    # Makes OpenTelemetry missing, and notes the imports sessionward's own code tries
    # (redis-py 8 tries one of its own at import, for its optional instrumentation).

    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            frame = sys._getframe(1)
            while frame is not None and frame.f_code.co_filename.startswith("<frozen"):
                frame = frame.f_back
            if frame is not None and "/sessionward/" in frame.f_code.co_filename:
                attempts.append(name)
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Blocker())

from sessionward import MemoryStore, SessionMiddleware
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

async def write(request):
    request.session["a"] = 1
    return PlainTextResponse("ok")

telemetry = sys.argv[1] == "on"
app = Starlette(routes=[Route("/", write)])
middleware = SessionMiddleware(app, secret_keys=["k" * 32], store=MemoryStore(),
                               telemetry=telemetry)

async def main():
    transport = httpx.ASGITransport(app=middleware)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        for _ in range(3):
            assert (await client.get("/")).status_code == 200

asyncio.run(main())
assert middleware.config.telemetry is None
assert type(middleware.config.store) is MemoryStore
assert not [name for name in sys.modules if name.startswith("opentelemetry")]
print(len(attempts))
"""


@pytest.mark.parametrize(("setting", "attempts"), [("on", "1"), ("off", "0")])
def test_without_opentelemetry_nothing_is_imported_or_recorded(setting: str, attempts: str) -> None:
    """With the API missing, the default tries one import when the middleware is built and
    then costs nothing; `telemetry=False` never tries at all."""
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_OPENTELEMETRY, setting],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == attempts


WITH_GLOBAL_PROVIDERS = """
import asyncio
import httpx
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from redis.asyncio import Redis
from sessionward import RedisStore
from tests.apps import build_app

app = build_app(RedisStore(Redis.from_url(REDIS_URL)))  # built before any SDK is set

reader, spans = InMemoryMetricReader(), InMemorySpanExporter()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
tracer_provider = TracerProvider()
tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
trace.set_tracer_provider(tracer_provider)

async def main():
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        await client.post("/session", json={"a": 1})
        await client.get("/session")

asyncio.run(main())
names = {metric.name: metric for resource in reader.get_metrics_data().resource_metrics
         for scope in resource.scope_metrics for metric in scope.metrics}
loaded = names["sessionward.sessions.loaded"].data.data_points
names = sorted(span.name for span in spans.get_finished_spans())
print(sum(point.value for point in loaded), names)
"""


def test_the_global_providers_are_used_even_when_set_after_the_middleware(
    redis_url: str,
) -> None:
    source = WITH_GLOBAL_PROVIDERS.replace("REDIS_URL", repr(redis_url))
    result = subprocess.run(
        [sys.executable, "-c", source],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split(" ", 1) == [
        "1",
        "['sessionward.load', 'sessionward.save']\n",
    ]
