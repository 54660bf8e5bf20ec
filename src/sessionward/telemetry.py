"""OpenTelemetry metrics and spans, when `opentelemetry-api` is installed (the `otel` extra).

On by default, as OpenTelemetry asks of instrumentation libraries: sessionward records through
the global `MeterProvider` and `TracerProvider`, which do nothing until the app configures an
SDK, so an app that never does pays close to nothing. Without `opentelemetry-api` installed,
nothing is imported and nothing is recorded. `SessionMiddleware(telemetry=False)` turns it off
where the API is installed for something else; `telemetry=Telemetry(meter_provider=...,
tracer_provider=...)` records to providers of the app's choosing instead of the global ones.

Never recorded: session ids, tokens, store keys and public ids (hashes of session ids), user
ids and IP addresses. Every attribute is one of a few fixed words.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

from .exceptions import ConfigurationError

if TYPE_CHECKING:  # never at run time: the API may be missing
    from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation
    from opentelemetry.trace import Span, Tracer, TracerProvider

SCOPE: Final = "sessionward"
# The buckets OpenTelemetry's database conventions advise for `db.client.operation.duration`.
DURATION_BUCKETS: Final = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)
_LOOK_AGAIN_SECONDS = 1.0  # how often to check whether the app has set a TracerProvider yet


class Telemetry:
    """The instruments sessionward records with, on the given providers or the global ones.

    Counts are kept as plain ints and reported through asynchronous (observable) counters
    when a reader collects: an SDK's `Counter.add` costs several µs a call, an int addition
    next to nothing, and a count of a few fixed attribute sets loses nothing by it.
    Spans are started only once a `TracerProvider` is set: the global proxy would otherwise
    cost about a µs a store call to produce a span nobody records.
    """

    def __init__(
        self,
        *,
        meter_provider: MeterProvider | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        from opentelemetry import metrics, trace  # ImportError: the caller turns it off

        self._trace = trace
        version = _version()
        if meter_provider is not None:
            meter = meter_provider.get_meter(SCOPE, version)
        else:
            meter = metrics.get_meter(SCOPE, version)
        self._tracer: Tracer | None = None
        self._tracer_provider = tracer_provider
        if tracer_provider is not None:
            self._tracer = tracer_provider.get_tracer(SCOPE, version)
        self._next_look = 0.0
        self.loaded = _Tally(meter, "sessions.loaded", "{session}", ("result",))
        self.created = _Tally(meter, "sessions.created", "{session}")
        self.saved = _Tally(meter, "sessions.saved", "{session}", ("result",))
        self.fields_written = _Tally(meter, "session.fields.written", "{field}")
        self.sign_ins = _Tally(meter, "sign_ins", "{session}", ("sessionward.transport",))
        self.sign_outs = _Tally(meter, "sign_outs", "{session}", ("sessionward.transport",))
        self.revoked = _Tally(meter, "sessions.revoked", "{session}")
        self.evicted = _Tally(meter, "sessions.evicted", "{session}")
        self.rejected_tokens = _Tally(
            meter, "tokens.rejected", "{token}", ("sessionward.transport", "reason")
        )
        self.store_errors = _Tally(
            meter, "store.errors", "{error}", ("db.operation.name", "error.type")
        )
        self.unavailable = _Tally(meter, "responses.unavailable", "{response}")
        self.duration = meter.create_histogram(
            "sessionward.store.operation.duration",
            unit="s",
            description="How long each session store call took, by operation.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )

    def tracer(self) -> Tracer | None:
        """The tracer to start store spans with, or `None` while no provider is set."""
        tracer = self._tracer
        if tracer is not None:
            return tracer
        now = time.monotonic()
        if now < self._next_look:
            return None
        self._next_look = now + _LOOK_AGAIN_SECONDS
        provider = self._trace.get_tracer_provider()
        if isinstance(provider, self._trace.ProxyTracerProvider):
            return None  # no SDK (yet): keep looking, now and then
        self._tracer = provider.get_tracer(SCOPE, _version())
        return self._tracer

    def start_span(self, operation: str, attributes: dict[str, str]) -> Span | None:
        """A CLIENT span for one store call, a child of the current span (the request's)."""
        tracer = self.tracer()
        if tracer is None:
            return None
        kind = self._trace.SpanKind.CLIENT
        return tracer.start_span("sessionward." + operation, kind=kind, attributes=attributes)

    def failed(self, span: Span | None, error_type: str) -> None:
        """Mark a span failed by its error's class name only: a message may name a key."""
        if span is not None and span.is_recording():
            span.set_attribute("error.type", error_type)
            span.set_status(self._trace.StatusCode.ERROR)

    def event(self, kind: str, transport: str) -> None:
        """Count a lifecycle event (see `sessionward.events`) that has a counter."""
        if kind == "session.login":
            self.sign_ins.add((transport,))
        elif kind == "session.logout":
            self.sign_outs.add((transport,))


class _Tally:
    """One counter: totals per attribute values in a dict, observed at collection."""

    __slots__ = ("counts", "names")

    def __init__(self, meter: Meter, name: str, unit: str, names: tuple[str, ...] = ()) -> None:
        self.names = names
        self.counts: dict[tuple[str, ...], int] = {}
        meter.create_observable_counter("sessionward." + name, [self._observe], unit)

    def add(self, values: tuple[str, ...] = (), amount: int = 1) -> None:
        counts = self.counts
        counts[values] = counts.get(values, 0) + amount

    def _observe(self, options: CallbackOptions) -> Iterator[Observation]:
        from opentelemetry.metrics import Observation

        for values, count in list(self.counts.items()):  # a reader may run in its own thread
            yield Observation(count, dict(zip(self.names, values, strict=True)))


def telemetry_for(setting: bool | Telemetry) -> Telemetry | None:
    """What `SessionConfig(telemetry=...)` records with; `None` means nothing, at no cost."""
    if isinstance(setting, Telemetry):
        return setting
    if setting is not True and setting is not False:
        raise ConfigurationError(
            f"telemetry must be True, False or a Telemetry(...), not {setting!r}"
        )
    if not setting:
        return None
    try:
        return Telemetry()
    except ImportError:  # opentelemetry-api is not installed
        return None


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sessionward")
    except PackageNotFoundError:  # run from a source tree
        return "0+unknown"
