"""Content pages (issue 10) against REAL clients and content services (each a process of its own, SQLite,
the test's nats-server): the content service learns the deals from the clients events, as in production."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from litestar.testing import AsyncTestClient
from shared.settings import Settings
from shared.signing import make_token
from shared.testing import eventually, make_settings

from .backends import Backend, payment, roster, serve_clients
from .conftest import down_service_urls, gateway_settings, sign_in

ALMATY = ZoneInfo("Asia/Almaty")
HX = {"HX-Request": "true"}
LEAD = ("lead", "lead")


@pytest.fixture
def clients_url(service_process, nats_server) -> str:
    return serve_clients(service_process, nats_server.url)


@pytest.fixture
def content_db(request) -> str:
    """The content service's database: SQLite unless a test asks for PostgreSQL (indirect parametrize)."""
    return getattr(request, "param", "sqlite")


@pytest.fixture
def content_url(request, service_process, nats_server, content_db: str) -> str:
    database_url = request.getfixturevalue("postgres_url") if content_db == "postgres" else None
    return service_process("content", nats_url=nats_server.url, database_url=database_url)


@pytest.fixture
def clients(clients_url: str) -> Backend:
    backend = Backend(clients_url, "clients")
    roster(backend)
    return backend


@pytest.fixture
def content(content_url: str) -> Backend:
    return Backend(content_url, "content")


@pytest.fixture
def settings(tmp_path, clients_url: str, content_url: str) -> Settings:
    return gateway_settings(f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}",
                            service_urls={**down_service_urls(), "clients": clients_url, "content": content_url})


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def local_day(days: int = 0) -> str:
    return (datetime.now(ALMATY) + timedelta(days=days)).date().isoformat()


async def launched(clients: Backend, content: Backend, external_id: str, days_ago: int = 0,
                   manager: str = "manager1", name: str = "Айгерим Сапарова") -> tuple[dict, list[dict]]:
    """A deal paid, questionnaire in, launched `days_ago` days ago; and its plans once content has them."""
    paid_at = datetime.now(UTC) - timedelta(days=days_ago, minutes=5)
    deal = clients.call("POST", "/payments", payment(external_id, manager, name=name, paid_at=paid_at))
    clients.call("POST", f"/deals/{deal['id']}/stage", {"stage": "contacted", "at": paid_at.isoformat()})
    clients.call("POST", f"/deals/{deal['id']}/questionnaire", {"answers": {"business": "cakes"}})
    start = paid_at.astimezone(ALMATY).date().isoformat()
    clients.call("POST", f"/deals/{deal['id']}/stage", {
        "stage": "project_launched", "at": paid_at.isoformat(), "service_start": start,
        "instagram_login": "login", "instagram_password": "password"})

    async def plans():
        # Current (the period clients opened, not a provisional one): on the cadence board.
        board = content.call("GET", f"/cadence?date={start}", as_=LEAD)
        if not any(r["deal_id"] == deal["id"] for r in board):
            return None
        found = content.call("GET", f"/deals/{deal['id']}/plans", as_=LEAD)
        return found if len(found) == 3 and found[0]["first_day"] == start else None

    return deal, await eventually(plans, timeout=30, message="the content plans of the launched deal")


async def add_item(client: AsyncTestClient, token: str, plan: dict, day: str, caption: str = "Торт дня",
                   kind: str = "feed") -> None:
    response = await client.post(f"/content/plans/{plan['id']}/items",
                                 data={"_csrf": token, "date": day, "kind": kind, "caption": caption})
    assert response.status_code in (200, 303), response.text


# ------------------------------------------------------------------ calendar

async def test_co1_calendar_shows_items_by_day_and_a_drag_moves_one_through_the_form(
        client: AsyncTestClient, clients: Backend, content: Backend) -> None:
    deal, plans = await launched(clients, content, "p-cal")
    plan = plans[0]
    token = await sign_in(client, "manager1")
    await add_item(client, token, plan, plan["first_day"], "Первый пост")

    month = await client.get(f"/content?lang=en&at={plan['first_day']}")
    assert month.status_code == 200, month.text
    assert "Айгерим Сапарова" in month.text and "Feed post" in month.text
    assert 'id="move-form"' in month.text and 'action="/content/move"' in month.text
    assert 'draggable="true"' in month.text and '/static/js/content.js' in month.text
    item_id = content.call("GET", f"/deals/{deal['id']}/plans", as_=LEAD)[0]["items"][0]["id"]
    assert f'data-day="{plan["first_day"]}"' in month.text and f'data-item="{item_id}"' in month.text

    week = await client.get(f"/content?lang=en&view=week&deal={deal['id']}&at={plan['first_day']}")
    assert week.status_code == 200 and "cal-week" in week.text and "Первый пост" not in week.text  # no captions

    # The drag-and-drop form (what content.js submits), as htmx posts it.
    target = (datetime.fromisoformat(plan["first_day"]) + timedelta(days=1)).date().isoformat()
    moved = await client.post("/content/move", headers=HX, data={"_csrf": token, "item_id": item_id, "date": target,
                                                                 "view": "month", "at": plan["first_day"]})
    assert moved.status_code == 200, moved.text
    assert "Item moved." in moved.text or "Элемент перенесён." in moved.text
    assert content.call("GET", f"/deals/{deal['id']}/plans", as_=LEAD)[0]["items"][0]["date"] == target

    # Outside the plan's days: the service's 422, said in words.
    outside = await client.post("/content/move?lang=en", headers=HX, data={
        "_csrf": token, "item_id": item_id, "date": plans[1]["first_day"], "at": plan["first_day"]})
    assert outside.status_code == 422
    assert "The date must be one of the plan" in text_of(outside.text)


# ------------------------------------------------------------------ plan editor

async def test_co1_plan_editor_shows_the_services_422_beside_the_date_and_live_check(
        client: AsyncTestClient, clients: Backend, content: Backend) -> None:
    _deal, plans = await launched(clients, content, "p-422")
    plan = plans[0]
    token = await sign_in(client, "manager1")
    page = await client.get(f"/content/plans/{plan['id']}?lang=en")
    assert page.status_code == 200 and 'id="item-form"' in page.text and "Plan 1" in page.text

    bad = await client.post(f"/content/plans/{plan['id']}/items?lang=en", headers=HX, data={
        "_csrf": token, "date": plans[2]["first_day"], "kind": "feed", "caption": "x"})
    assert bad.status_code == 422
    assert 'class="field invalid"' in bad.text and "The date must be one of the plan" in bad.text
    assert 'value="x"' not in bad.text and ">x</textarea>" in bad.text   # what was typed is kept

    live = await client.post(f"/content/plans/{plan['id']}/check?lang=en", headers=HX, data={
        "_csrf": token, "date": plans[1]["first_day"], "kind": "feed"})
    assert live.status_code == 422 and "The date must be one of the plan" in live.text and "<html" not in live.text
    ok = await client.post(f"/content/plans/{plan['id']}/check?lang=en", headers=HX, data={
        "_csrf": token, "date": plan["first_day"], "kind": "reel"})
    assert ok.status_code == 200 and "The date must be" not in ok.text and 'hx-swap-oob="true"' in ok.text
    assert content.call("GET", f"/plans/{plan['id']}", as_=LEAD)["items"] == []   # the check writes nothing

    empty = await client.post(f"/content/plans/{plan['id']}/items?lang=en", headers=HX, data={"_csrf": token})
    assert empty.status_code == 422 and "Required." in empty.text


@pytest.mark.parametrize("content_db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
                         indirect=True)
async def test_co4_two_rounds_on_the_public_page_and_co2_publish_after_approval(
        client: AsyncTestClient, clients: Backend, content: Backend, content_db: str) -> None:
    deal, plans = await launched(clients, content, "p-co4")
    plan = plans[0]
    token = await sign_in(client, "manager1")
    await add_item(client, token, plan, plan["first_day"], "Торт дня")
    item_id = content.call("GET", f"/plans/{plan['id']}", as_=LEAD)["items"][0]["id"]

    # CO-2: not approved yet → publishing is refused, said beside the item.
    early = await client.post(f"/content/items/{item_id}/published?lang=en", headers=HX,
                              data={"_csrf": token, "plan_id": plan["id"]})
    assert early.status_code == 422 and "must be approved by the client" in early.text

    sent = await client.post(f"/content/plans/{plan['id']}/submit?lang=en", headers=HX, data={"_csrf": token})
    assert sent.status_code == 200, sent.text
    url = re.search(r'id="approval-url" value="([^"]+)"', sent.text).group(1)
    assert url.startswith("http://127.0.0.1/approve/") and "data-copy" in sent.text
    link = url.removeprefix("http://127.0.0.1")

    # The client (a fresh browser, no login) asks for changes on the item.
    client.cookies.clear()
    public = await client.get(link + "?lang=en")
    assert public.status_code == 200 and "Торт дня" in public.text and 'name="decision" value="approve"' in public.text
    csrf = re.search(r'name="_csrf" value="([^"]+)"', public.text).group(1)
    nothing = await client.post(link + "?lang=en", data={"_csrf": csrf, "decision": "changes"})
    assert nothing.status_code == 422 and "Say what to change" in nothing.text
    changes = await client.post(link + "?lang=en", data={"_csrf": csrf, "decision": "changes",
                                                       f"comment_{item_id}": "Другое фото, пожалуйста"})
    assert changes.status_code == 200 and "Your comments were sent" in changes.text
    # CO-6: the client asks to publish their own post.
    own = await client.post(link + "/requests?lang=en", data={"_csrf": csrf, "request_text": "Акция 8 марта"})
    assert own.status_code == 200 and "Акция 8 марта" in own.text

    # The manager sees the comment; resubmitting without addressing it → 422 listing it.
    token = await sign_in(client, "manager1")
    editor = await client.get(f"/content/plans/{plan['id']}?lang=en")
    assert "Другое фото, пожалуйста" in editor.text and "changes requested" in editor.text
    comment_id = content.call("GET", f"/plans/{plan['id']}", as_=LEAD)["comments"][0]["id"]
    refused = await client.post(f"/content/plans/{plan['id']}/submit?lang=en", headers=HX, data={"_csrf": token})
    assert refused.status_code == 422 and "Answer or mark done every comment first" in refused.text
    assert "Not addressed yet." in refused.text
    edited = await client.post(f"/content/items/{item_id}/edit?lang=en", headers=HX, data={
        "_csrf": token, "plan_id": plan["id"], "caption": "Торт дня (новое фото)"})
    assert edited.status_code == 200, edited.text
    resolved = await client.post(f"/content/plans/{plan['id']}/comments/{comment_id}/resolve?lang=en", headers=HX,
                                 data={"_csrf": token, "reply": "Заменили фото"})
    assert resolved.status_code == 200 and "Заменили фото" in resolved.text
    request_id = content.call("GET", f"/deals/{deal['id']}/requests", as_=LEAD)[0]["id"]
    declined = await client.post(f"/content/requests/{request_id}/answer?lang=en", headers=HX, data={
        "_csrf": token, "plan_id": plan["id"], "decision": "decline"})
    assert declined.status_code == 422 and "Say why you decline." in declined.text
    approved_request = await client.post(f"/content/requests/{request_id}/answer?lang=en", headers=HX, data={
        "_csrf": token, "plan_id": plan["id"], "decision": "approve"})
    assert approved_request.status_code == 200
    second = await client.post(f"/content/plans/{plan['id']}/submit?lang=en", headers=HX, data={"_csrf": token})
    assert second.status_code == 200 and 'id="plan-round">2' in second.text
    assert "revision rounds: 1" in second.text and "changed: caption" in second.text   # the rounds table
    link2 = re.search(r'id="approval-url" value="([^"]+)"', second.text).group(1).removeprefix("http://127.0.0.1")

    # Round 2 on the client's page: what changed, the revision count; the old link may not answer any more.
    client.cookies.clear()
    page2 = await client.get(link2 + "?lang=en")
    assert "What changed since the last round" in page2.text and "changed: caption" in page2.text
    assert "revision rounds: 1" in page2.text and "approved" in text_of(page2.text)  # the CO-6 answer
    old = await client.get(link + "?lang=en")
    assert old.status_code == 200 and 'value="approve"' not in old.text
    csrf = re.search(r'name="_csrf" value="([^"]+)"', page2.text).group(1)
    yes = await client.post(link2 + "?lang=en", data={"_csrf": csrf, "decision": "approve"})
    assert yes.status_code == 200 and "The plan is approved" in yes.text

    # CO-2 satisfied: the manager marks the post published; the deal card's block shows the plan approved.
    token = await sign_in(client, "manager1")
    published = await client.post(f"/content/items/{item_id}/published?lang=en", headers=HX, data={
        "_csrf": token, "plan_id": plan["id"], "permalink": "https://www.instagram.com/p/abc/"})
    assert published.status_code == 200, published.text
    assert "Marked as published." in published.text and 'href="https://www.instagram.com/p/abc/"' in published.text
    block = await client.get(f"/content/deals/{deal['id']}/plans?lang=en", headers=HX)
    assert block.status_code == 200 and "approved" in block.text and f'/content/plans/{plan["id"]}' in block.text

    # The deal card: the plans block (loaded by htmx) and CL-9, met once clients consumed the publication.
    async def first_post_met():
        card = await client.get(f"/deals/{deal['id']}?lang=en")
        assert card.status_code == 200 and f'hx-get="/content/deals/{deal["id"]}/plans"' in card.text
        line = re.search(r'id="first-post-deadline">(.*?)</p>', card.text, re.S)
        return line is not None and "First post (CL-9)" in line.group(1) and "state-met" in line.group(1)

    await eventually(first_post_met, timeout=30, message="CL-9 met on the deal card")


async def test_co4_public_page_expired_is_410_and_invalid_is_404_translated(
        client: AsyncTestClient, clients: Backend, content: Backend) -> None:
    _deal, plans = await launched(clients, content, "p-410")
    secret = make_settings("content", database_url="sqlite+aiosqlite:///:memory:").secret_key
    expired = make_token({"plan_id": plans[0]["id"], "round": 1}, secret_key=secret, purpose="content-approval",
                         expires_at=datetime.now(UTC) - timedelta(minutes=1))
    gone = await client.get(f"/approve/{expired}?lang=en")
    assert gone.status_code == 410 and "This link has expired" in gone.text
    bad = await client.get("/approve/not-a-token?lang=kk")
    assert bad.status_code == 404 and "This link is not valid" not in bad.text and "<h1>" in bad.text
    assert (await client.get("/report/not-a-token?lang=en")).status_code == 404


# ------------------------------------------------------------------ roles

async def test_roles_analyst_reads_without_buttons_other_manager_gets_404_ad_manager_403(
        client: AsyncTestClient, clients: Backend, content: Backend) -> None:
    _deal, plans = await launched(clients, content, "p-roles")
    plan = plans[0]
    token = await sign_in(client, "analyst")
    page = await client.get(f"/content/plans/{plan['id']}?lang=en")
    assert page.status_code == 200 and 'id="item-form"' not in page.text and "submit-plan" not in page.text
    refused = await client.post(f"/content/plans/{plan['id']}/items", data={"_csrf": token, "date": plan["first_day"],
                                                                            "kind": "feed"})
    assert refused.status_code == 403
    card = await client.get(f"/deals/{_deal['id']}?lang=en")   # the analyst's deal card loads the plans block
    assert card.status_code == 200 and f'hx-get="/content/deals/{_deal["id"]}/plans"' in card.text
    block = await client.get(f"/content/deals/{_deal['id']}/plans?lang=en", headers=HX)
    assert block.status_code == 200 and "Plan 1" in block.text and "Materials received" not in block.text
    client.cookies.clear()
    await sign_in(client, "manager2", "demo")   # the demo team's second content manager
    assert (await client.get(f"/content/plans/{plan['id']}?lang=en")).status_code == 404
    calendar = await client.get("/content?lang=en")
    assert calendar.status_code == 200 and "Айгерим Сапарова" not in calendar.text
    client.cookies.clear()
    await sign_in(client, "admanager")
    assert (await client.get("/content")).status_code == 403
    assert (await client.get("/cadence")).status_code == 403


async def test_deal_card_block_says_content_is_down_without_replacing_the_card(tmp_path) -> None:
    from gateway.app import create_app

    app = create_app(gateway_settings(f"sqlite+aiosqlite:///{tmp_path / 'down.db'}"), background=False)
    async with AsyncTestClient(app, base_url="http://127.0.0.1") as down:
        await sign_in(down, "manager1")
        block = await down.get("/content/deals/some-deal/plans?lang=en", headers=HX)
        assert block.status_code == 200 and "hx-retarget" not in block.headers
        assert "The content service is unavailable" in block.text and 'id="content-plans"' in block.text
        assert (await down.get("/content?lang=en")).status_code == 503   # a page of its own says so


# ------------------------------------------------------------------ cadence board

async def test_co5_cadence_board_shows_yesterdays_missed_feed_in_red_for_the_manager_and_the_lead(
        client: AsyncTestClient, clients: Backend, content: Backend) -> None:
    await launched(clients, content, "p-cad", days_ago=3)
    await launched(clients, content, "p-cad2", days_ago=3, manager="manager2", name="Берик Ахметов")
    await sign_in(client, "manager1")
    board = await client.get(f"/cadence?date={local_day(-1)}&lang=en")
    assert board.status_code == 200, board.text
    assert "Айгерим Сапарова" in board.text and "Берик Ахметов" not in board.text
    assert 'class="missed"' in board.text and "no feed post" in board.text
    client.cookies.clear()
    await sign_in(client, "lead")
    board = await client.get(f"/cadence?date={local_day(-1)}&lang=en")
    assert "Айгерим Сапарова" in board.text and "Берик Ахметов" in board.text
    assert "2 clients missed the cadence." in text_of(board.text)


# ------------------------------------------------------------------ statistics

CSV = ("Date,Likes,Comments,Saves,Reach,Followers\n"
       "{d1},120,10,5,\"1,500\",900\n"
       "{d2},abc,3,1,800,905\n")


async def test_co7_csv_upload_shows_per_row_errors_manual_entry_charts_and_the_shared_report(
        client: AsyncTestClient, clients: Backend, content: Backend) -> None:
    deal, _plans = await launched(clients, content, "p-stats")
    token = await sign_in(client, "manager1")
    monday = datetime.now(ALMATY).date() - timedelta(days=datetime.now(ALMATY).weekday() + 7)
    csv = CSV.format(d1=monday.isoformat(), d2=(monday + timedelta(days=1)).isoformat()).encode()
    uploaded = await client.post(f"/content/deals/{deal['id']}/stats/import?lang=en", headers=HX,
                                 data={"_csrf": token}, files={"file": ("insights.csv", csv, "text/csv")})
    assert uploaded.status_code == 200, uploaded.text
    text = text_of(uploaded.text)
    assert "Rows read: 2, imported: 1, with errors: 1." in text and "row-errors" in uploaded.text
    assert "<svg" in uploaded.text and "Reach" in uploaded.text
    again = await client.post(f"/content/deals/{deal['id']}/stats/import?lang=en", headers=HX,
                              data={"_csrf": token}, files={"file": ("insights.csv", csv, "text/csv")})
    assert "already imported" in again.text

    bad = await client.post(f"/content/deals/{deal['id']}/stats/week?lang=en", headers=HX, data={
        "_csrf": token, "week_start": monday.isoformat(), "likes": "много"})
    assert bad.status_code == 422 and "A whole number." in bad.text
    manual = await client.post(f"/content/deals/{deal['id']}/stats/week?lang=en", headers=HX, data={
        "_csrf": token, "week_start": monday.isoformat(), "likes": "1 000", "reach": "10000"})
    assert manual.status_code == 200 and "Figures saved." in manual.text and "10\u202f000" in manual.text

    shared = await client.post(f"/content/deals/{deal['id']}/stats/report-link?lang=en", headers=HX,
                               data={"_csrf": token})
    url = re.search(r'id="report-url" value="([^"]+)"', shared.text).group(1)
    client.cookies.clear()
    report = await client.get(url.removeprefix("http://127.0.0.1") + "?lang=en")
    assert report.status_code == 200 and "Weekly report" in report.text and "<svg" in report.text
    assert "data-print" in report.text and "1\u202f000" in report.text
    # The client's name comes with clients' `client.profile_changed` event (not emitted by clients yet).
