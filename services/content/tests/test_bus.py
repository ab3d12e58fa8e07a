"""The read model from a real nats-server: clients events published to JetStream (as the clients relay
does) are consumed by the durable consumer `content-clients` and build the deal's plans; the content
service's own events leave through its outbox onto the CONTENT stream."""

from __future__ import annotations

from datetime import timedelta

import nats
from content.app import create_app
from content.handlers import CONSUMER
from litestar.testing import AsyncTestClient
from nats.js.errors import NotFoundError
from shared.bus import Bus, Outgoing
from shared.clock import FixedClock
from shared.events import decode, encode
from shared.testing import default_settings, eventually, make_settings, staff_headers

from .conftest import T0, TOKEN, assigned, lost, midnight, new_deal, period_opened, profile, stage

MANAGER = staff_headers("manager1", "content_manager", default_settings("content"))


async def test_clients_events_from_nats_build_the_read_model_and_the_post_goes_out_on_content(
        tmp_path, nats_server) -> None:
    clock = FixedClock(T0)
    settings = make_settings("content", database_url=f"sqlite+aiosqlite:///{tmp_path / 'c.db'}",
                             nats_url=nats_server.url)
    app = create_app(settings=settings, clock=clock)
    bus = Bus(nats_server.url, "clients-test-publisher")
    deal, other = new_deal(), new_deal()
    async with AsyncTestClient(app) as client:
        await bus.connect(retry_forever=False)
        try:
            events = [profile("client-1", "Айгерим", [deal], T0),
                      stage(deal, "questionnaire_received", T0),
                      period_opened(deal, 1, midnight(2026, 3, 2), midnight(2026, 4, 2), at=T0),
                      period_opened(other, 1, midnight(2026, 3, 2), midnight(2026, 4, 2), manager="manager2"),
                      assigned(other, "manager2", T0), lost(other, T0 + timedelta(hours=1), manager="manager2")]
            for evt in events:  # one by one: the stream order is the order given
                await bus.publish_many([Outgoing(evt.subject, encode(evt), {"Nats-Msg-Id": evt.event_id})])
            await bus.publish_many([Outgoing(events[1].subject, encode(events[1]),
                                             {"Nats-Msg-Id": "again-" + events[1].event_id})])  # a redelivery

            async def consumed() -> bool:
                stream = await bus.js.stream_info("CLIENTS")
                try:
                    info = await bus.js.consumer_info("CLIENTS", CONSUMER)
                except NotFoundError:
                    return False
                return info.num_pending == 0 and info.num_ack_pending == 0 and \
                    info.delivered.stream_seq >= stream.state.last_seq

            await eventually(consumed, message="content consumed every clients event")
            plans = (await client.get(f"/api/content/deals/{deal}/plans", headers=MANAGER)).json()
            assert [(p["number"], p["status"]) for p in plans] == [(1, "due"), (2, "not_due"), (3, "not_due")]
            assert (await client.get(f"/api/content/deals/{other}/plans", headers=MANAGER)).status_code == 404

            # The manager writes plan 1, the client approves it, the post goes out.
            plan_id = plans[0]["id"]
            item = (await client.post(f"/api/content/plans/{plan_id}/items", headers=MANAGER,
                                      json={"date": "2026-03-02", "kind": "feed", "caption": "Hi"})).json()
            token = (await client.post(f"/api/content/plans/{plan_id}/submit", headers=MANAGER)).json()["token"]
            page = (await client.get(f"/api/content/approvals/{token}")).json()
            assert page["client_name"] == "Айгерим"
            assert (await client.post(f"/api/content/approvals/{token}", json={"decision": "approve"})
                    ).status_code == 200
            nc = await nats.connect(nats_server.url)
            try:
                js = nc.jetstream()
                sub = await js.subscribe("content.post.published.v1", ordered_consumer=True)
                response = await client.post(f"/api/content/items/{item['id']}/published", headers=MANAGER,
                                             json={"published_at": T0.isoformat()})
                assert response.status_code == 200, response.text
                msg = await sub.next_msg(timeout=30)
                evt = decode(msg.subject, msg.data)
                assert (evt.deal_id, evt.post_id, evt.published_at) == (deal, item["id"], T0)
                assert msg.headers["Nats-Msg-Id"] == evt.event_id
            finally:
                await nc.close()
        finally:
            await bus.drain()


def test_the_service_runs_as_its_own_process(service_process, nats_server) -> None:
    """`python -m content`: migrations at start, ready once NATS is up, the API answers."""
    import httpx

    url = service_process("content", nats_url=nats_server.url)
    assert httpx.get(f"{url}/health/ready").status_code == 200
    response = httpx.get(f"{url}/api/content/cadence", headers=TOKEN)
    assert response.status_code == 200 and response.json() == []
    assert httpx.get(f"{url}/api/content/approvals/nonsense").status_code == 404
