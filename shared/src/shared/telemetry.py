"""OpenTelemetry: one TracerProvider per process, OTLP export when configured, W3C context on NATS.

One trace per client journey (DESIGN 6): the trace context travels in NATS message headers and in
outbox / timer rows, so a consumer or a timer continues the span that caused it.

Issue 14, traces an SRE can use:
- every span of a deal's journey carries `zabota.deal_id`: the code names the deal on the spans it knows it
  for (`set_deal_attributes`, consumer / publish spans, the HTTP middleware of shared.metrics), and
  `DealSpanProcessor` spreads it inside a process: a span started under a span of a deal names that deal, and
  a span a child named a deal for (a timer span whose handler found the deal, an HTTP request whose handler
  did) names it too when it ends (the first deal named wins);
- messaging spans follow the OpenTelemetry semantic conventions (`messaging_attributes`): `publish <subject>`
  (PRODUCER, around the JetStream publish) and `process <subject>` (CONSUMER);
- the finished journey spans of the last hour (HTTP server, publish, process, timer spans naming a deal) are
  kept in an in-memory ring per process (`JOURNEYS`), the service's own timing facts behind
  `GET /api/<service>/ops/journeys` and the gateway's "slowest deal journeys" (see `JourneyLog`);
- `trace_url` fills the `ZABOTA_TRACE_URL` template (`{deal_id}`, `{trace_id}`) for "this deal's trace".
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

_provider: TracerProvider | None = None
_instrumented_httpx = False


def setup_tracing(service_name: str, otlp_endpoint: str | None = None) -> TracerProvider:
    """Install the process-wide TracerProvider once; later calls return it (tests run many apps)."""
    global _provider
    if _provider is None:
        _provider = TracerProvider(resource=Resource.create({"service.name": f"zabota-{service_name}"}))
        _provider.add_span_processor(DealSpanProcessor(JOURNEYS))
        if otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(_provider)
    instrument_httpx()
    return _provider


def add_span_processor(processor: SpanProcessor) -> None:
    """Tests attach an in-memory exporter here."""
    setup_tracing("test")
    assert _provider is not None
    _provider.add_span_processor(processor)


def instrument_httpx() -> None:
    global _instrumented_httpx
    if not _instrumented_httpx:
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        HTTPXClientInstrumentor().instrument()
        _instrumented_httpx = True


def instrument_engine(engine: Any) -> None:
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)


def tracer(name: str = "zabota") -> trace.Tracer:
    return trace.get_tracer(name)


def inject_headers(carrier: dict[str, str] | None = None) -> dict[str, str]:
    """The current trace context as W3C headers (traceparent, tracestate)."""
    carrier = {} if carrier is None else carrier
    propagate.inject(carrier)
    return carrier


def extract_context(headers: Mapping[str, str] | None) -> otel_context.Context:
    return propagate.extract(dict(headers or {}))


@contextmanager
def continue_trace(headers: Mapping[str, str] | None, span_name: str, kind: trace.SpanKind = trace.SpanKind.CONSUMER,
                   attributes: dict[str, Any] | None = None) -> Iterator[trace.Span]:
    """Start a span that continues the trace whose context `headers` carry."""
    ctx = extract_context(headers)
    token = otel_context.attach(ctx)
    try:
        with tracer().start_as_current_span(span_name, kind=kind, attributes=attributes or {}) as span:
            yield span
    finally:
        otel_context.detach(token)


def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


def trace_id_of(headers: Mapping[str, str] | None) -> str | None:
    """The trace id written in a `traceparent` header, if any."""
    parent = (headers or {}).get("traceparent", "")
    parts = parent.split("-")
    return parts[1] if len(parts) == 4 else None


def set_deal_attributes(deal_id: str | None = None, client_id: str | None = None) -> None:
    span = trace.get_current_span()
    if deal_id:
        span.set_attribute(DEAL_ID, deal_id)
    if client_id:
        span.set_attribute("zabota.client_id", client_id)


DEAL_ID = "zabota.deal_id"


def messaging_attributes(subject: str, message_id: str | None, operation: str, *,
                         consumer: str | None = None, deal_id: str | None = None) -> dict[str, Any]:
    """OpenTelemetry semantic conventions for messaging (operation `publish` or `process`)."""
    attributes: dict[str, Any] = {
        "messaging.system": "nats",
        "messaging.destination.name": subject,
        "messaging.operation.type": operation,
        "messaging.operation.name": operation,
    }
    if message_id:
        attributes["messaging.message.id"] = message_id
    if consumer:
        attributes["messaging.consumer.group.name"] = consumer
    if deal_id:
        attributes[DEAL_ID] = deal_id
    return attributes


# ------------------------------------------------------------------ journeys (issue 14, slow flows findable)

JOURNEY_KINDS = frozenset({trace.SpanKind.SERVER, trace.SpanKind.CONSUMER, trace.SpanKind.PRODUCER})


class JourneyLog:
    """The finished steps of deal journeys in this process: a ring of the last `size` spans that name a deal
    and are a journey step (an HTTP request served, a message published or processed, a timer fired).

    A journey is one trace: its steps in every service share the trace id. `slowest` groups this process's
    steps of the last `window` seconds by trace and measures each journey from its first step's start to its
    last step's end; the gateway merges the services' answers by trace id (a payment in clients, its
    `process` spans in content, engagement and payroll), so a journey's duration is payment request ->
    last consumer effect. In memory on purpose: no table, no migration, nothing to prune; a restart or
    another replica starts empty (the slow journeys of the last hour, not an archive — the trace backend
    is the archive). Times are the spans' own (wall clock), not the services' injectable clock."""

    def __init__(self, size: int = 5000) -> None:
        self.steps: deque[dict[str, Any]] = deque(maxlen=size)
        self._lock = threading.Lock()

    def record(self, span: ReadableSpan) -> None:
        attributes = span.attributes or {}
        deal_id = attributes.get(DEAL_ID)
        if not deal_id or span.start_time is None or span.end_time is None:
            return
        if span.kind not in JOURNEY_KINDS and not span.name.startswith("timer "):
            return
        service = span.resource.attributes.get("service.name", "") if span.resource else ""
        with self._lock:
            self.steps.append({"trace_id": format(span.context.trace_id, "032x"), "deal_id": str(deal_id),
                               "name": span.name, "service": str(service).removeprefix("zabota-"),
                               "start_ns": span.start_time, "end_ns": span.end_time})

    def clear(self) -> None:
        with self._lock:
            self.steps.clear()

    def journeys(self, window_seconds: float = 3600.0, now_ns: int | None = None) -> list[dict[str, Any]]:
        """Every journey with a step that ended in the window, slowest first."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        since = now_ns - int(window_seconds * 1e9)
        with self._lock:
            steps = [s for s in self.steps if s["end_ns"] >= since]
        return merge_journeys([{"trace_id": s["trace_id"], "deal_id": s["deal_id"], "steps": [step_view(s)]}
                               for s in steps])

    def slowest(self, window_seconds: float = 3600.0, limit: int = 20) -> list[dict[str, Any]]:
        return self.journeys(window_seconds)[:limit]


def step_view(step: dict[str, Any]) -> dict[str, Any]:
    return {"name": step["name"], "service": step["service"], "start": step["start_ns"] / 1e9,
            "duration_seconds": round((step["end_ns"] - step["start_ns"]) / 1e9, 6),
            "end": step["end_ns"] / 1e9}


def merge_journeys(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Journeys (`trace_id`, `deal_id`, `steps` with `start`/`end` in epoch seconds) merged by trace id —
    from one process or from every service — each measured first step start -> last step end, slowest first."""
    by_trace: dict[str, dict[str, Any]] = {}
    for part in parts:
        trace_id = part.get("trace_id")
        steps = [s for s in part.get("steps") or [] if isinstance(s, dict) and "start" in s and "end" in s]
        if not isinstance(trace_id, str) or not steps:
            continue
        journey = by_trace.setdefault(trace_id, {"trace_id": trace_id, "deal_id": part.get("deal_id"), "steps": []})
        journey["deal_id"] = journey["deal_id"] or part.get("deal_id")
        journey["steps"].extend(steps)
    result = []
    for journey in by_trace.values():
        journey["steps"].sort(key=lambda s: s["start"])
        start = min(s["start"] for s in journey["steps"])
        end = max(s["end"] for s in journey["steps"])
        result.append({**journey, "start": start, "end": end, "duration_seconds": round(end - start, 6)})
    result.sort(key=lambda j: j["duration_seconds"], reverse=True)
    return result


JOURNEYS = JourneyLog()


class DealSpanProcessor(SpanProcessor):
    """Spreads `zabota.deal_id` within a process (down at start, up at end) and records journey steps."""

    def __init__(self, journeys: JourneyLog) -> None:
        self.journeys = journeys
        self._open: dict[int, Any] = {}

    def on_start(self, span: Any, parent_context: otel_context.Context | None = None) -> None:
        self._open[span.context.span_id] = span
        parent = trace.get_current_span(parent_context)
        deal_id = (getattr(parent, "attributes", None) or {}).get(DEAL_ID)
        if deal_id and DEAL_ID not in (span.attributes or {}):
            span.set_attribute(DEAL_ID, deal_id)

    def on_end(self, span: ReadableSpan) -> None:
        self._open.pop(span.context.span_id, None)
        deal_id = (span.attributes or {}).get(DEAL_ID)
        if deal_id and span.parent is not None and not span.parent.is_remote:
            parent = self._open.get(span.parent.span_id)
            if parent is not None and parent.is_recording() and DEAL_ID not in (parent.attributes or {}):
                parent.set_attribute(DEAL_ID, deal_id)
        self.journeys.record(span)

    def shutdown(self) -> None:
        self._open.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def trace_url(deal_id: str | None = None, trace_id: str | None = None, template: str | None = None) -> str | None:
    """"This deal's trace" in the trace backend: `ZABOTA_TRACE_URL` with `{deal_id}` and `{trace_id}` filled in
    (URL-quoted), e.g. `http://jaeger:16686/search?service=zabota-clients&tags={"zabota.deal_id":"{deal_id}"}`
    or `http://jaeger:16686/trace/{trace_id}`. None when unset, or when it needs an id that is not known."""
    template = os.environ.get("ZABOTA_TRACE_URL", "") if template is None else template
    if not template:
        return None
    for name, value in (("{deal_id}", deal_id), ("{trace_id}", trace_id)):
        if name in template:
            if not value:
                return None
            template = template.replace(name, quote(str(value), safe=""))
    return template


class JsonLogFormatter(logging.Formatter):
    """One JSON object a line, with the trace id of the current span."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        trace_id = current_trace_id()
        if trace_id:
            entry["trace_id"] = trace_id
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))   # a URL in a traceback too
        return json.dumps(entry, ensure_ascii=False)


# ------------------------------------------------------------------ capabilities never in logs (issue 8 §9)

REDACTED = "[redacted]"
# A signed link's token (shared.signing: `<base64url payload>.<base64url signature>`), wherever it appears.
_SIGNED_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}")
# The path segment after a capability route: the gateway's `/q/<token>`, the services'
# `/questionnaire/<token>`, plan approvals — whatever the token looks like.
_CAPABILITY_SEGMENT = re.compile(
    r"(/(?:q|questionnaire|approve|approval|approvals|plan-approval)/)(?!\[redacted\])[^/?#\s\"'<>]+",
    re.IGNORECASE)
# Query values that are capabilities or secrets: `?token=…`, `&signature=…`, `?access_token=…`.
_SECRET_QUERY = re.compile(
    r"([?&;](?:token|access_token|refresh_token|sig|signature|secret|password|key|api_key|code)=)[^&#\s\"'<>]*",
    re.IGNORECASE)
_BEARER = re.compile(r"(\bBearer\s+)[^\s\"',;]+", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` with every capability (signed-link token, `?token=` value, bearer token) masked."""
    text = _SIGNED_TOKEN.sub(REDACTED, text)
    text = _CAPABILITY_SEGMENT.sub(lambda m: m.group(1) + REDACTED, text)
    text = _SECRET_QUERY.sub(lambda m: m.group(1) + REDACTED, text)
    return _BEARER.sub(lambda m: m.group(1) + REDACTED, text)


class RedactCapabilities(logging.Filter):
    """On the root handler, so it sees every record that reaches the log: uvicorn's request lines,
    httpx's `HTTP Request: GET …/questionnaire/<token>` lines, our own messages and tracebacks."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:   # a broken format string: let the formatter report it as logging does
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def setup_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter(service))
    handler.addFilter(RedactCapabilities())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
