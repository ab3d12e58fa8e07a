"""Issue 10 §3: the CL-9 loop through the REAL clients and content services and a real nats-server.

Nothing is fed by hand: the clients service records the payment, the questionnaire and the launch; its
outbox relay publishes `clients.client.profile_changed.v1`, `…stage_changed.v1` and `…period_opened.v1`;
the content service's durable consumer builds its read model and plan 1 from them. The manager writes
plan 1, the client approves it on the signed link; the clock passes the CL-9 due time and the clients'
timer breaches the first-post deadline; then the lead reports the post as published by hand, dated before
the due time (it went out on time, it is recorded late). Content publishes `content.post.published.v1`,
clients consumes it and judges it on its own time: CL-9 is met, and the breach the timer made is retracted.

Both services share one injectable clock (FixedClock). Content runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from litestar.testing import AsyncTestClient
from shared.clock import FixedClock
from shared.testing import eventually, make_settings

ALMATY = ZoneInfo("Asia/Almaty")
TOKEN = {"Authorization": "Bearer dev-token"}
LEAD, ANNA = ("aliya", "lead"), ("anna", "content_manager")


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=ALMATY)


class Service:
    def __init__(self, name: str, client: AsyncTestClient, app: Any, clock: FixedClock) -> None:
        self.name, self.client, self.app, self.clock = name, client, app, clock

    def staff(self, who: tuple[str, str]) -> dict[str, str]:
        """As a staff member, the way the gateway calls the service (its signed assertion where the
        runtime has one, else the actor headers)."""
        try:
            from shared.testing import staff_headers
        except ImportError:
            return {**TOKEN, "X-Zabota-Actor": who[0], "X-Zabota-Role": who[1]}
        return staff_headers(who[0], who[1], self.app.state.settings)

    async def call(self, method: str, path: str, json: Any = None, headers: Any = None,
                   status: tuple[int, ...] = (200, 201)) -> Any:
        url = path if path.startswith("/api/") else f"/api/{self.name}{path}"
        if isinstance(headers, tuple):
            headers = self.staff(headers)
        response = await self.client.request(method, url, json=json, headers=TOKEN if headers is None else headers)
        assert response.status_code in status, f"{method} {url}: {response.status_code} {response.text}"
        return response.json()

    def run_due(self) -> None:
        self.client.blocking_portal.call(self.app.state.runtime.scheduler.run_due)


@pytest.fixture
async def services(tmp_path, nats_server, monkeypatch, database_url) -> AsyncIterator[tuple[Service, Service]]:
    from clients.app import create_app as clients_app
    from content.app import create_app as content_app

    monkeypatch.setenv("ZABOTA_VAR_DIR", str(tmp_path / "var"))
    clock = FixedClock(local(2026, 3, 2, 12, 0))        # Monday
    capp = clients_app(settings=make_settings("clients", database_url=f"sqlite+aiosqlite:///{tmp_path / 'c.db'}",
                                              nats_url=nats_server.url), clock=clock)
    settings = make_settings("content", database_url=database_url, nats_url=nats_server.url)
    settings = make_settings("content", database_url=database_url, nats_url=nats_server.url,
                             service_urls={**settings.service_urls, "gateway": "https://zabota.example.kz"})
    kapp = content_app(settings=settings, clock=clock)
    async with AsyncTestClient(capp) as c, AsyncTestClient(kapp) as k:
        clients, content = Service("clients", c, capp, clock), Service("content", k, kapp, clock)
        await clients.call("PUT", "/staff/anna", {"role": "content_manager"})
        yield clients, content


def cl9_of(deal: dict) -> dict:
    [cl9] = [d for d in deal["deadlines"] if d["rule"] == "CL-9"]
    return cl9


async def test_cl9_loop_post_published_on_time_but_recorded_after_the_breach_meets_it(services) -> None:
    clients, content = services
    clock = clients.clock
    # CL-3: a payment creates the deal; CL-4, CL-5: contacted, the questionnaire is in (CL-9 starts).
    paid = await clients.call("POST", "/payments", {
        "external_id": "e2e-cl9", "paid_at": clock.now().isoformat(), "amount": "60000.00", "currency": "KZT",
        "service_kind": "account_management", "responsible_manager": "anna",
        "client": {"full_name": "Айгерим Сапарова", "phone": "+7 701 555 0101", "instagram": "@aigerim.cakes",
                   "email": "a@example.kz", "payer_type": "individual"}})
    deal_id = paid["deal_id"]
    await clients.call("POST", f"/deals/{deal_id}/stage", {"stage": "contacted"})
    deal = await clients.call("POST", f"/deals/{deal_id}/questionnaire", {"answers": {"niche": "cakes"}})
    due = datetime.fromisoformat(cl9_of(deal)["due_at"])
    post_at = due - timedelta(hours=2)                  # when the post really went out
    # CL-8: the launch opens period 1 on the day after the questionnaire.
    await clients.call("POST", f"/deals/{deal_id}/stage", {
        "stage": "project_launched", "service_start": "2026-03-03", "instagram_login": "acc",
        "instagram_password": "pw"})

    # Content learns all of it from NATS only: period 1's three plans, plan 1 due (CO-1, CO-2).
    async def plans_ready() -> bool:
        response = await content.client.get(f"/api/content/deals/{deal_id}/plans", headers=content.staff(LEAD))
        return response.status_code == 200 and len(response.json()) == 3 and \
            response.json()[0]["first_day"] == "2026-03-03" and response.json()[0]["status"] == "due"

    await eventually(plans_ready, timeout=30, message="content built period 1 from the clients events")
    [plan_1, *_] = await content.call("GET", f"/deals/{deal_id}/plans", headers=ANNA)  # anna manages it

    # Plan 1 is written, submitted and approved by the client on the signed link (CO-4).
    item = await content.call("POST", f"/plans/{plan_1['id']}/items", {
        "date": post_at.astimezone(ALMATY).date().isoformat(), "kind": "feed", "caption": "Знакомство"},
        headers=ANNA)
    sent = await content.call("POST", f"/plans/{plan_1['id']}/submit", headers=ANNA)
    token = sent["approval_url"].rsplit("/", 1)[1]
    page = await content.call("GET", f"/api/content/approvals/{token}", headers={})
    assert page["client_name"] == "Айгерим Сапарова"   # clients.client.profile_changed.v1, through NATS
    await content.call("POST", f"/api/content/approvals/{token}", {"decision": "approve", "comments": []},
                       headers={})

    # The clock passes the CL-9 due time: the clients' timer breaches the first-post deadline.
    clock.set(due + timedelta(days=1))
    clients.run_due()
    assert cl9_of(await clients.call("GET", f"/deals/{deal_id}"))["state"] == "breached"

    # The lead reports the post, dated when it went out (before the due time): published by hand.
    published = await content.call("POST", f"/items/{item['id']}/published",
                                   {"published_at": post_at.isoformat()}, headers=LEAD)
    assert published["status"] == "published" and published["published_at"] == post_at.isoformat()

    async def met() -> bool:
        deal = await clients.call("GET", f"/deals/{deal_id}")
        return cl9_of(deal)["state"] == "met"

    await eventually(met, timeout=30, message="clients consumed content.post.published.v1 and met CL-9")
    deal = await clients.call("GET", f"/deals/{deal_id}")
    assert datetime.fromisoformat(deal["first_post_at"]) == post_at
    assert [d for d in deal["deadlines"] if d["rule"] == "CL-9" and d["state"] == "breached"] == []  # none left
    assert "deadline.breach_retracted" in [entry["code"] for entry in deal["timeline"]]


async def test_cl9_loop_automatic_instagram_publication_meets_cl9(services, monkeypatch) -> None:
    """The same loop with the post published automatically at its scheduled time through the Content
    Publishing API (a stand-in Graph server on loopback): content.post.published.v1 reaches clients over
    NATS and meets CL-9 before its due time — no breach at all."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "services" / "content" / "tests"))
    from graph_standin import GraphStandIn

    graph = GraphStandIn().start()
    monkeypatch.setenv("INSTAGRAM_GRAPH_URL", graph.url)
    graph.account("17841400000000042", "IGAAT-e2e")
    try:
        clients, content = services
        clock = clients.clock
        paid = await clients.call("POST", "/payments", {
            "external_id": "e2e-cl9-auto", "paid_at": clock.now().isoformat(), "amount": "60000.00",
            "currency": "KZT", "service_kind": "account_management", "responsible_manager": "anna",
            "client": {"full_name": "Дана Омарова", "phone": "+7 701 555 0202", "instagram": "@dana.flowers",
                       "email": "d@example.kz", "payer_type": "individual"}})
        deal_id = paid["deal_id"]
        await clients.call("POST", f"/deals/{deal_id}/stage", {"stage": "contacted"})
        deal = await clients.call("POST", f"/deals/{deal_id}/questionnaire", {"answers": {"niche": "flowers"}})
        due = datetime.fromisoformat(cl9_of(deal)["due_at"])
        await clients.call("POST", f"/deals/{deal_id}/stage", {
            "stage": "project_launched", "service_start": "2026-03-03", "instagram_login": "acc",
            "instagram_password": "pw"})

        async def plans_ready() -> bool:
            response = await content.client.get(f"/api/content/deals/{deal_id}/plans", headers=content.staff(LEAD))
            return response.status_code == 200 and len(response.json()) == 3 and \
                response.json()[0]["first_day"] == "2026-03-03"

        await eventually(plans_ready, timeout=30, message="content built period 1 from the clients events")
        plan_1 = (await content.call("GET", f"/deals/{deal_id}/plans", headers=ANNA))[0]
        when = due - timedelta(hours=3)
        await content.call("PUT", f"/deals/{deal_id}/instagram",
                           {"ig_user_id": "17841400000000042", "access_token": "IGAAT-e2e"}, headers=ANNA)
        item = await content.call("POST", f"/plans/{plan_1['id']}/items", {
            "date": when.astimezone(ALMATY).date().isoformat(), "kind": "reel", "caption": "Букет дня",
            "scheduled_at": when.isoformat(), "media": ["https://cdn.example.kz/bouquet.mp4"]}, headers=ANNA)
        token = (await content.call("POST", f"/plans/{plan_1['id']}/submit", headers=ANNA))["token"]
        await content.call("POST", f"/api/content/approvals/{token}", {"decision": "approve", "comments": []},
                           headers={})

        clock.set(when)
        content.run_due()                                   # the publishing timer: container, status, publish

        async def posted() -> bool:
            # The background scheduler may have claimed the timer first (SKIP LOCKED on PostgreSQL).
            return len(graph.state.posts) == 1

        await eventually(posted, timeout=30, message="the reel posted once through the stand-in Graph API")
        [post] = graph.state.posts
        assert graph.state.containers[post["container"]]["params"]["media_type"] == "REELS"

        async def met() -> bool:
            return cl9_of(await clients.call("GET", f"/deals/{deal_id}"))["state"] == "met"

        await eventually(met, timeout=30, message="clients met CL-9 from the automatic publication")
        deal = await clients.call("GET", f"/deals/{deal_id}")
        assert datetime.fromisoformat(deal["first_post_at"]) == when
        assert "deadline.breach_retracted" not in [entry["code"] for entry in deal["timeline"]]
        items = (await content.call("GET", f"/deals/{deal_id}/plans", headers=ANNA))[0]["items"]
        assert [(i["id"], i["status"], i["permalink"]) for i in items] == [(item["id"], "published", post["permalink"])]
    finally:
        graph.stop()
