"""DESIGN 6: one trace from the payment to the renewal — HTTP steps, timer-fired steps and the events
they write all continue the trace of the payment that created the deal; spans carry the deal's ids.
Also: the events reach the CLIENTS stream on a real NATS."""

from __future__ import annotations

from datetime import timedelta

import nats
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from shared.telemetry import add_span_processor, trace_id_of

from .conftest import T0, _api, local, payment

exporter = InMemorySpanExporter()
add_span_processor(SimpleSpanProcessor(exporter))


async def test_one_trace_runs_from_payment_through_timers_to_renewal(tmp_path, clock) -> None:
    exporter.clear()
    async for api in _api(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}", clock):
        deal = await api.pay(payment("trace-pay"))
        deal_id = deal["deal_id"]
        [paid_row] = [r for r in await api.outbox() if r.subject == "clients.deal.paid.v1"]
        trace_id = trace_id_of(paid_row.headers)
        assert trace_id

        await api.tick(hours=2)                                   # timer: first call breached
        await api.ok("post", f"/deals/{deal_id}/stage", {"stage": "contacted"})
        await api.ok("post", f"/deals/{deal_id}/questionnaire", {"answers": {"niche": "cakes"}})
        await api.ok("post", f"/deals/{deal_id}/stage", {
            "stage": "project_launched", "service_start": (T0 + timedelta(days=3)).date().isoformat(),
            "instagram_login": "x", "instagram_password": "y"})
        api.clock.set(local(2026, 4, 3, 12, 0))                   # timer: the CL-11 renewal task
        await api.run_due()
        await api.pay(payment("trace-renewal", paid_at=api.clock.now()) | {"deal_id": deal_id})

        rows = [r for r in await api.outbox()]
        assert {r.subject for r in rows} >= {"clients.deal.paid.v1", "clients.deadline.breached.v1",
                                             "clients.task.assigned.v1", "clients.deal.renewed.v1"}
        assert {trace_id_of(r.headers) for r in rows} == {trace_id}

    # The service's own spans (issue 14 also names the deal on each request's server span: a trace of its own).
    deal_spans = [s for s in exporter.get_finished_spans()
                  if (s.attributes or {}).get("zabota.deal_id") == deal_id and s.name.startswith("clients.")]
    names = {s.name for s in deal_spans}
    assert {"clients.payment", "clients.contacted", "clients.questionnaire", "clients.launch",
            "clients.renewal_task", "clients.deadline_due", "clients.renewal"} <= names
    assert {format(s.context.trace_id, "032x") for s in deal_spans} == {trace_id}
    assert all(s.attributes.get("zabota.client_id") == deal["client_id"] for s in deal_spans)
    timer_spans = [s for s in exporter.get_finished_spans() if s.name.startswith("timer clients.")]
    assert timer_spans and {format(s.context.trace_id, "032x") for s in timer_spans} == {trace_id}


async def test_events_are_published_to_the_clients_stream(tmp_path, clock, nats_server) -> None:
    async for api in _api(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}", clock, nats_server.url):
        runtime = api.app.state.runtime
        api.in_app(runtime.bus.connect, False)
        deal = await api.pay(payment("nats-pay"))
        assert api.in_app(runtime.relay.flush) >= 4
        nc = await nats.connect(nats_server.url)
        try:
            js = nc.jetstream()
            sub = await js.pull_subscribe("clients.deal.paid.v1", durable="test-reader", stream="CLIENTS")
            [msg] = await sub.fetch(1, timeout=5)
            assert b'"deal_id":"' + deal["deal_id"].encode() in msg.data
            assert msg.headers["traceparent"]
        finally:
            await nc.drain()
