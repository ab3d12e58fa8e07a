"""The service runtime: health, auth, errors, and one trace from an HTTP request to another service's consumer."""

from __future__ import annotations

import msgspec
from litestar import post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.testing import AsyncTestClient
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from shared.auth import sign
from shared.consumer import Subscription
from shared.events.system import ProbeRecorded
from shared.outbox import add_event
from shared.service import Runtime, ServiceSpec, create_service_app
from shared.telemetry import add_span_processor, current_trace_id
from shared.testing import eventually, make_settings, staff_headers
from sqlalchemy.ext.asyncio import AsyncSession

from .conftest import Effect, Probe, ProbeBase

exporter = InMemorySpanExporter()
add_span_processor(SimpleSpanProcessor(exporter))


class ProbeIn(msgspec.Struct):
    seq: int


@post("/probes")
async def create_probe(data: JSONBody[ProbeIn], session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime]) -> dict:
    session.add(Probe(seq=data.seq))
    add_event(session, ProbeRecorded(seq=data.seq), runtime.clock)
    return {"seq": data.seq, "trace_id": current_trace_id()}


seen_trace_ids: list[str | None] = []


async def on_probe(event: ProbeRecorded, session: NamedDependency[AsyncSession]) -> None:
    seen_trace_ids.append(current_trace_id())
    session.add(Effect(seq=event.seq, event_id=event.event_id))


producer_spec = ServiceSpec(name="alpha", metadata=ProbeBase.metadata, api_routes=[create_probe], create_all=True)
consumer_spec = ServiceSpec(name="beta", metadata=ProbeBase.metadata, create_all=True,
                            subscriptions=lambda rt: [Subscription("beta-probes", {ProbeRecorded.subject: on_probe})])


def _app(spec: ServiceSpec, url: str, nats_url: str):
    return create_service_app(spec, settings=make_settings(spec.name, database_url=url, nats_url=nats_url))


async def test_trace_started_by_http_continues_in_another_services_consumer(tmp_path, nats_server) -> None:
    alpha = _app(producer_spec, f"sqlite+aiosqlite:///{tmp_path / 'alpha.db'}", nats_server.url)
    beta = _app(consumer_spec, f"sqlite+aiosqlite:///{tmp_path / 'beta.db'}", nats_server.url)
    async with AsyncTestClient(alpha) as a, AsyncTestClient(beta):
        response = await a.post("/api/alpha/probes", json={"seq": 1}, headers={"Authorization": "Bearer dev-token"})
        assert response.status_code == 201, response.text
        http_trace_id = response.json()["trace_id"]
        assert http_trace_id

        async def consumed() -> bool:
            return bool(seen_trace_ids)

        await eventually(consumed, message="beta consumed the probe")
    assert seen_trace_ids == [http_trace_id]
    spans = exporter.get_finished_spans()
    consumer_spans = [s for s in spans if s.name.startswith("process ")
                      and s.attributes.get("messaging.consumer.group.name") == "beta-probes"]
    assert format(consumer_spans[0].context.trace_id, "032x") == http_trace_id
    # The database work of both sides is in the same trace (SQLAlchemy spans), beside the HTTP span.
    in_trace = [s for s in spans if format(s.context.trace_id, "032x") == http_trace_id]
    assert any(s.attributes.get("db.system") for s in in_trace), [s.name for s in in_trace]
    assert any(s.kind.name == "SERVER" for s in in_trace)


async def test_health_ready_is_503_while_nats_is_unreachable(tmp_path) -> None:
    app = _app(producer_spec, f"sqlite+aiosqlite:///{tmp_path / 'a.db'}", "nats://127.0.0.1:9")
    async with AsyncTestClient(app) as client:
        assert (await client.get("/health/live")).status_code == 200
        ready = await client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"database": True, "nats": False}


async def test_api_needs_a_token_or_a_signature_and_bad_input_is_422_naming_the_field(tmp_path) -> None:
    app = _app(producer_spec, f"sqlite+aiosqlite:///{tmp_path / 'a.db'}", "nats://127.0.0.1:9")
    async with AsyncTestClient(app) as client:
        assert (await client.post("/api/alpha/probes", json={"seq": 1})).status_code == 401
        wrong = await client.post("/api/alpha/probes", json={"seq": 1}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        body = b'{"seq": 2}'
        signed = await client.post("/api/alpha/probes", content=body, headers={
            "X-Zabota-Signature": sign(body, "dev-webhook-secret"), "Content-Type": "application/json"})
        assert signed.status_code == 201
        forged = await client.post("/api/alpha/probes", content=body, headers={
            "X-Zabota-Signature": sign(body, "guess"), "Content-Type": "application/json"})
        assert forged.status_code == 401
        bad = await client.post("/api/alpha/probes", json={"seq": "x"}, headers={"Authorization": "Bearer dev-token"})
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"] == "seq"


async def test_dead_letters_are_visible_to_operators_and_replayable_after_the_fix(tmp_path, nats_server) -> None:
    broken = {"on": True}
    applied: list[int] = []

    async def fragile(event: ProbeRecorded, session: AsyncSession) -> None:
        if broken["on"]:
            raise RuntimeError("bank rejected the statement")
        applied.append(event.seq)

    spec = ServiceSpec(name="gamma", metadata=ProbeBase.metadata, create_all=True,
                       subscriptions=lambda rt: [Subscription("gamma-probes", {ProbeRecorded.subject: fragile})])
    settings = make_settings("gamma", database_url=f"sqlite+aiosqlite:///{tmp_path / 'g.db'}",
                             nats_url=nats_server.url, max_deliver=2,
                             dead_letter_after_seconds=0.3)
    alpha = _app(producer_spec, f"sqlite+aiosqlite:///{tmp_path / 'alpha.db'}", nats_server.url)
    lead = staff_headers("lead", "lead", settings)
    async with AsyncTestClient(alpha) as a, AsyncTestClient(create_service_app(spec, settings=settings)) as g:
        await a.post("/api/alpha/probes", json={"seq": 13}, headers={"Authorization": "Bearer dev-token"})

        async def dead_lettered() -> list:
            return (await g.get("/api/gamma/ops/dead-letters", headers=lead)).json()

        letters = await eventually(dead_lettered, message="the dead letter")
        assert letters[0]["subject"] == ProbeRecorded.subject and letters[0]["deliveries"] == 2
        assert "bank rejected the statement" in letters[0]["reason"]
        manager = staff_headers("manager1", "content_manager", settings)
        assert (await g.get("/api/gamma/ops/dead-letters", headers=manager)).status_code == 403

        broken["on"] = False  # the cause is fixed
        replay = await g.post(f"/api/gamma/ops/dead-letters/{letters[0]['id']}/replay", headers=lead)
        assert replay.status_code == 200, replay.text

        async def applied_once() -> bool:
            return applied == [13]

        await eventually(applied_once, message="the replayed event applied")


@post("/boom")
async def boom() -> None:
    raise RuntimeError("the disk is full")


async def test_an_unhandled_error_is_a_plain_500_and_is_logged(tmp_path, caplog) -> None:
    spec = ServiceSpec(name="delta", metadata=ProbeBase.metadata, api_routes=[boom], create_all=True, uses_bus=False)
    app = create_service_app(spec, settings=make_settings("delta", database_url=f"sqlite+aiosqlite:///{tmp_path / 'd.db'}"))
    async with AsyncTestClient(app) as client:
        response = await client.post("/api/delta/boom", headers={"Authorization": "Bearer dev-token"})
    assert response.status_code == 500
    assert "disk is full" not in response.text  # no internals to the caller
    assert any("the disk is full" in (r.exc_text or "") + r.getMessage() or
               (r.exc_info and "the disk is full" in str(r.exc_info[1])) for r in caplog.records)
