"""OpenTelemetry: one TracerProvider per process, OTLP export when configured, W3C context on NATS.

One trace per client journey (DESIGN 6): the trace context travels in NATS message headers and in
outbox / timer rows, so a consumer or a timer continues the span that caused it.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

_provider: TracerProvider | None = None
_instrumented_httpx = False


def setup_tracing(service_name: str, otlp_endpoint: str | None = None) -> TracerProvider:
    """Install the process-wide TracerProvider once; later calls return it (tests run many apps)."""
    global _provider
    if _provider is None:
        _provider = TracerProvider(resource=Resource.create({"service.name": f"zabota-{service_name}"}))
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
        span.set_attribute("zabota.deal_id", deal_id)
    if client_id:
        span.set_attribute("zabota.client_id", client_id)


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
