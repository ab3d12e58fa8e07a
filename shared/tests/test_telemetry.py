"""JSON logs carry the trace id of the current span; W3C context round-trips through headers."""

from __future__ import annotations

import json
import logging

from shared.telemetry import (
    JsonLogFormatter,
    continue_trace,
    inject_headers,
    setup_tracing,
    trace_id_of,
    tracer,
)


def test_json_log_line_carries_the_trace_id() -> None:
    setup_tracing("test")
    formatter = JsonLogFormatter("clients")
    with tracer().start_as_current_span("request") as span:
        record = logging.LogRecord("zabota", logging.INFO, __file__, 1, "paid %s", ("deal-1",), None)
        line = json.loads(formatter.format(record))
    assert line["msg"] == "paid deal-1"
    assert line["service"] == "clients"
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")


def test_trace_context_survives_a_trip_through_message_headers() -> None:
    setup_tracing("test")
    with tracer().start_as_current_span("producer") as producer:
        headers = inject_headers()
    assert trace_id_of(headers) == format(producer.get_span_context().trace_id, "032x")
    with continue_trace(headers, "consumer") as consumer:
        assert consumer.get_span_context().trace_id == producer.get_span_context().trace_id
