"""Issue 14, traces an SRE can use: every span of a deal's journey names the deal (`zabota.deal_id`) — the HTTP
server span (deal id in the path or in the JSON answer), the outbox relay's publish span, the consumer's
process span, a timer's span — and the messaging spans follow the OpenTelemetry conventions. The journey's
steps are the service's own timing facts (`/api/<service>/ops/journeys`), slowest first."""

from __future__ import annotations

import uuid

import msgspec
from litestar import get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.testing import AsyncTestClient
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from shared.consumer import Subscription
from shared.events.system import ProbeRecorded
from shared.outbox import add_event
from shared.service import Runtime, ServiceSpec, create_service_app
from shared.telemetry import (
    JOURNEYS,
    JourneyLog,
    add_span_processor,
    merge_journeys,
    set_deal_attributes,
    trace_url,
    tracer,
)
from shared.testing import eventually, make_settings
from shared.timers import schedule
from sqlalchemy.ext.asyncio import AsyncSession

from .conftest import Effect, Probe, ProbeBase

exporter = InMemorySpanExporter()
add_span_processor(SimpleSpanProcessor(exporter))
TOKEN = {"Authorization": "Bearer dev-token"}


class DealProbeIn(msgspec.Struct):
    seq: int
    deal_id: str


@post("/deal-probes")
async def create_deal_probe(data: JSONBody[DealProbeIn], session: NamedDependency[AsyncSession],
                            runtime: NamedDependency[Runtime]) -> dict:
    """A deal id only in the answer (as a payment's): the server span names it from the body."""
    session.add(Probe(seq=data.seq))
    add_event(session, ProbeRecorded(seq=data.seq, deal_id=data.deal_id), runtime.clock)
    await schedule(session, kind="probe.due", key=f"probe:{data.seq}", due_at=runtime.clock.now(),
                   payload={"deal_id": data.deal_id})
    return {"seq": data.seq, "deal_id": data.deal_id}


@get("/deals/{deal_id:str}/probe")
async def deal_probe(deal_id: FromPath[str]) -> dict:
    return {"ok": True}


async def on_probe(event: ProbeRecorded, session: NamedDependency[AsyncSession]) -> None:
    with tracer().start_as_current_span("beta.effect"):   # the handler's own span does not name the deal
        session.add(Effect(seq=event.seq, event_id=event.event_id))


async def on_probe_due(session: AsyncSession, timer) -> None:
    with tracer().start_as_current_span("probe.due"):  # the handler names the deal on its own span
        set_deal_attributes(deal_id=timer.payload["deal_id"])


producer = ServiceSpec(name="alpha", metadata=ProbeBase.metadata, api_routes=[create_deal_probe, deal_probe],
                       create_all=True, timers=lambda rt: {"probe.due": on_probe_due})
consumer = ServiceSpec(name="beta", metadata=ProbeBase.metadata, create_all=True,
                       subscriptions=lambda rt: [Subscription("beta-deals", {ProbeRecorded.subject: on_probe})])


def _app(spec: ServiceSpec, url: str, nats_url: str):
    return create_service_app(spec, settings=make_settings(spec.name, database_url=url, nats_url=nats_url))


async def test_issue14_every_span_of_a_deals_journey_names_the_deal_with_messaging_conventions(
        tmp_path, nats_server) -> None:
    exporter.clear()
    deal_id = str(uuid.uuid4())
    alpha = _app(producer, f"sqlite+aiosqlite:///{tmp_path / 'alpha.db'}", nats_server.url)
    beta = _app(consumer, f"sqlite+aiosqlite:///{tmp_path / 'beta.db'}", nats_server.url)
    async with AsyncTestClient(alpha) as a, AsyncTestClient(beta) as b:
        response = await a.post("/api/alpha/deal-probes", json={"seq": 1, "deal_id": deal_id}, headers=TOKEN)
        assert response.status_code == 201, response.text
        assert (await a.get(f"/api/alpha/deals/{deal_id}/probe", headers=TOKEN)).status_code == 200

        def processed():
            return [s for s in exporter.get_finished_spans() if s.name == f"process {ProbeRecorded.subject}"]

        async def consumed():
            return processed() or None

        await eventually(consumed, message="beta processed the deal's event")

        # The journey (HTTP -> publish -> process) is listed by the services' own ops route.
        journeys = (await b.get("/api/beta/ops/journeys", headers=TOKEN)).json()
        assert any(j["deal_id"] == deal_id for j in journeys)
        assert (await b.get("/api/beta/ops/journeys?limit=0", headers=TOKEN)).status_code == 422

    spans = exporter.get_finished_spans()
    [server] = [s for s in spans if s.kind == SpanKind.SERVER and "deal-probes" in s.name]
    assert server.attributes["zabota.deal_id"] == deal_id                      # from the JSON answer
    [by_path] = [s for s in spans if s.kind == SpanKind.SERVER and s.name.endswith("/probe")]
    assert by_path.attributes["zabota.deal_id"] == deal_id                     # from the path parameter
    [publish] = [s for s in spans if s.name == f"publish {ProbeRecorded.subject}"]
    [process] = processed()
    assert publish.kind == SpanKind.PRODUCER and process.kind == SpanKind.CONSUMER
    for span, operation in ((publish, "publish"), (process, "process")):
        assert span.attributes["messaging.system"] == "nats"
        assert span.attributes["messaging.destination.name"] == ProbeRecorded.subject
        assert span.attributes["messaging.operation.type"] == operation
        assert span.attributes["messaging.message.id"]
        assert span.attributes["zabota.deal_id"] == deal_id
    assert process.attributes["messaging.consumer.group.name"] == "beta-deals"
    assert publish.attributes["messaging.message.id"] == process.attributes["messaging.message.id"]
    # One trace: the request, then the relay's publish, then the consumer (a child of the publish span).
    assert publish.context.trace_id == server.context.trace_id == process.context.trace_id
    assert process.parent.span_id == publish.context.span_id
    # The timer's span names the deal its handler found (spread up from the handler's span).
    [timer] = [s for s in spans if s.name == "timer probe.due"]
    assert timer.attributes["zabota.deal_id"] == deal_id
    assert timer.context.trace_id == server.context.trace_id
    # Spans under a deal's span name it too (the handler's own span).
    children = [s for s in spans if s.parent is not None and s.parent.span_id == process.context.span_id]
    assert children and all(c.attributes.get("zabota.deal_id") == deal_id for c in children)
    # /metrics is neither traced nor measured.
    assert not [s for s in spans if "/metrics" in s.name]
    journey = next(j for j in JOURNEYS.journeys() if j["deal_id"] == deal_id)
    assert {"publish " + ProbeRecorded.subject, "process " + ProbeRecorded.subject} <= {
        step["name"] for step in journey["steps"]}


def test_issue14_journeys_merge_by_trace_and_list_the_slowest_first() -> None:
    """The gateway merges each service's steps of a journey by trace id: payment request in clients ->
    last consumer effect in payroll; steps older than the window are left out."""
    log = JourneyLog(size=10)
    base = 1_800_000_000 * 10**9
    second = 10**9

    class Span:  # a finished span as the SDK hands it to a processor
        def __init__(self, trace_id, name, kind, start, end, deal="d1") -> None:
            self.attributes = {"zabota.deal_id": deal}
            self.name, self.kind, self.start_time, self.end_time = name, kind, base + start, base + end
            self.resource = None
            self.context = type("C", (), {"trace_id": trace_id})()

    log.record(Span(1, "POST /api/clients/payments", SpanKind.SERVER, 0, second // 10))
    log.record(Span(2, "POST /api/clients/payments", SpanKind.SERVER, 0, second // 10, deal="d2"))
    log.record(Span(1, "sql", SpanKind.CLIENT, 0, 5 * second))               # not a journey step
    log.record(Span(3, "old", SpanKind.SERVER, -7200 * second, -7199 * second, deal="d3"))
    here = log.journeys(3600, now_ns=base + 10 * second)
    assert [j["deal_id"] for j in here] == ["d1", "d2"]
    other_service = [{"trace_id": format(1, "032x"), "deal_id": "d1",
                      "steps": [{"name": "process clients.deal.paid.v1", "service": "payroll",
                                 "start": (base + 3 * second) / 1e9, "end": (base + 4 * second) / 1e9,
                                 "duration_seconds": 1.0}]}]
    merged = merge_journeys(here + other_service)
    assert merged[0]["deal_id"] == "d1" and merged[0]["duration_seconds"] == 4.0
    assert [s["name"] for s in merged[0]["steps"]] == ["POST /api/clients/payments", "process clients.deal.paid.v1"]
    assert merged[1]["duration_seconds"] == 0.1


def test_issue14_trace_url_fills_the_template() -> None:
    template = 'http://jaeger:16686/search?service=zabota-clients&tags={"zabota.deal_id":"{deal_id}"}'
    assert trace_url("73ff-1", template=template) == (
        'http://jaeger:16686/search?service=zabota-clients&tags={"zabota.deal_id":"73ff-1"}')
    assert trace_url(trace_id="abc", template="http://tempo/trace/{trace_id}") == "http://tempo/trace/abc"
    assert trace_url("d", template="http://tempo/trace/{trace_id}") is None      # the id it needs is unknown
    assert trace_url("d", template="") is None
    assert trace_url("a b/c", template="x?{deal_id}") == "x?a%20b%2Fc"
