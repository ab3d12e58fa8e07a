"""Clients pages (issue 3) against a REAL clients service (served live, SQLite, the test's nats-server)."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
from litestar.testing import AsyncTestClient
from shared.settings import Settings

from .backends import Backend, payment, roster, serve_clients
from .conftest import csrf_of, down_service_urls, gateway_settings, sign_in


@pytest.fixture
def clients_url(service_process, nats_server) -> str:
    return serve_clients(service_process, nats_server.url)


@pytest.fixture
def clients(clients_url: str) -> Backend:
    backend = Backend(clients_url, "clients")
    roster(backend)
    return backend


@pytest.fixture
def settings(tmp_path, clients_url: str) -> Settings:
    return gateway_settings(f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}",
                            service_urls={**down_service_urls(), "clients": clients_url})


def local_today() -> str:
    return datetime.now(ZoneInfo("Asia/Almaty")).date().isoformat()


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


async def test_cl3_manager_sees_the_first_call_task_and_completes_it_in_one_click(client: AsyncTestClient,
                                                                                 clients: Backend) -> None:
    deal = clients.call("POST", "/payments", payment("p-1"))
    token = await sign_in(client, "manager1")
    page = await client.get("/tasks?lang=en")
    assert page.status_code == 200, page.text
    assert "Айгерим Сапарова" in page.text and f'href="/deals/{deal["id"]}"' in page.text
    task = deal["tasks"][0]
    assert f'action="/tasks/{task["id"]}/complete"' in page.text
    assert "data-countdown" in page.text

    done = await client.post(f"/tasks/{task['id']}/complete", data={"_csrf": token, "back": "tasks"},
                             headers={"HX-Request": "true"})
    assert done.status_code == 200, done.text
    assert done.headers["vary"] == "HX-Request"
    assert "Task completed." in done.text and "No open tasks." in done.text
    assert clients.call("GET", f"/deals/{deal['id']}")["stage"] == "contacted"   # CL-4


async def test_lead_sees_everyones_tasks_only_when_asking_for_all(client: AsyncTestClient, clients: Backend) -> None:
    clients.call("POST", "/payments", payment("p-all"))  # a first-call task of manager1
    await sign_in(client, "lead")
    mine = await client.get("/tasks?lang=en")
    assert mine.status_code == 200 and "Айгерим Сапарова" not in mine.text
    everyone = await client.get("/tasks?scope=all&lang=en")
    assert everyone.status_code == 200 and "Айгерим Сапарова" in everyone.text


async def test_board_shows_columns_with_counts_and_sums_and_a_launch_shows_what_is_missing(
        client: AsyncTestClient, clients: Backend) -> None:
    deal = clients.call("POST", "/payments", payment("p-1"))
    clients.call("POST", "/payments", payment("p-2", name="Берик Ахметов", amount="40000.00"))
    clients.call("POST", "/payments", payment("p-3", "manager2", name="Чужой Клиент"))
    token = await sign_in(client, "manager1")
    board = await client.get("/deals?lang=en")
    assert board.status_code == 200, board.text
    text = text_of(board.text)
    assert "Айгерим Сапарова" in text and "Берик Ахметов" in text
    assert "Чужой Клиент" not in text                    # another manager's deal is not on my board
    assert re.search(r'New \(paid\) <span class="count">2</span>', board.text)
    assert "100\u202f000 KZT" in board.text              # the column's sum

    # Launching straight away: the service names what the stage needs, shown on the card.
    moved = await client.post(f"/deals/{deal['id']}/stage", headers={"HX-Request": "true"},
                              data={"_csrf": token, "back": "board", "stage": "project_launched"})
    assert moved.status_code == 422
    card = re.search(rf'id="card-{deal["id"]}".*?</article>', moved.text, re.S).group(0)
    assert card.count('class="field-error"') >= 2, card

    moved = await client.post(f"/deals/{deal['id']}/stage", headers={"HX-Request": "true"},
                              data={"_csrf": token, "back": "board", "stage": "contacted"})
    assert moved.status_code == 200, moved.text
    column = re.search(r'data-stage="contacted".*?</section>', moved.text, re.S).group(0)
    assert "Айгерим Сапарова" in column


async def test_deal_card_timeline_link_credentials_and_another_managers_deal(client: AsyncTestClient,
                                                                             clients: Backend) -> None:
    deal = clients.call("POST", "/payments", payment("p-1"))
    other = clients.call("POST", "/payments", payment("p-2", "manager2", name="Чужой Клиент"))
    token = await sign_in(client, "manager1")
    card = await client.get(f"/deals/{deal['id']}?lang=en")
    assert card.status_code == 200, card.text
    assert "Айгерим Сапарова" in card.text and 'id="mark-contacted"' in card.text
    assert "first call" in card.text.lower()

    # The service hides another manager's deal (404), and the page says so instead of failing.
    foreign = await client.get(f"/deals/{other['id']}")
    assert foreign.status_code == 404
    assert "Чужой Клиент" not in foreign.text

    link = await client.post(f"/deals/{deal['id']}/questionnaire-link", data={"_csrf": token},
                             headers={"HX-Request": "true"})
    assert link.status_code == 200, link.text
    assert re.search(r'value="http://[^"]+/q/[^"]+"', link.text)

    # Launch with the credentials, then reveal them on click.
    clients.call("POST", f"/deals/{deal['id']}/stage", {"stage": "contacted"}, as_=("manager1", "content_manager"))
    launched = await client.post(f"/deals/{deal['id']}/stage", data={
        "_csrf": token, "back": "deal", "stage": "project_launched", "service_start": local_today(),
        "instagram_login": "aigerim.cakes", "instagram_password": "s3cret!"}, headers={"HX-Request": "true"})
    assert launched.status_code == 200, launched.text
    assert "s3cret!" not in launched.text
    revealed = await client.post(f"/deals/{deal['id']}/credentials", data={"_csrf": token},
                                 headers={"HX-Request": "true"})
    assert revealed.status_code == 200 and "s3cret!" in revealed.text
    audit = clients.call("GET", f"/audit?target={deal['id']}", as_=("lead", "lead"))
    assert any(a["action"] == "credentials.revealed" and a["actor"] == "manager1" for a in audit)


async def test_cl5_public_questionnaire_without_sign_in(client: AsyncTestClient, clients: Backend) -> None:
    deal = clients.call("POST", "/payments", payment("p-1"))
    link = clients.call("POST", f"/deals/{deal['id']}/questionnaire-link", as_=("manager1", "content_manager"))
    form = await client.get(f"/q/{link['token']}?lang=en")
    assert form.status_code == 200, form.text
    assert "Айгерим Сапарова" in form.text
    empty = await client.post(f"/q/{link['token']}", data={"_csrf": csrf_of(form.text)})
    assert empty.status_code == 422 and "Please answer this question." in empty.text
    sent = await client.post(f"/q/{link['token']}", data={
        "_csrf": csrf_of(form.text), "business": "Торты на заказ", "audience": "Мамы Алматы", "goals": "Заявки"})
    assert sent.status_code == 200 and "Thank you!" in sent.text
    assert clients.call("GET", f"/deals/{deal['id']}")["stage"] == "questionnaire_received"
    again = await client.get(f"/q/{link['token']}")
    assert "We already have your answers" in again.text

    bad = await client.get("/q/not-a-token")
    assert bad.status_code == 404 and "This link is not valid" in bad.text


def launched_deal(clients: Backend, external_id: str, days_ago: int) -> dict:
    """A deal paid and launched `days_ago` days ago (an integration may backdate facts)."""
    from datetime import UTC, timedelta

    paid_at = datetime.now(UTC) - timedelta(days=days_ago)
    deal = clients.call("POST", "/payments", payment(external_id, paid_at=paid_at))
    clients.call("POST", f"/deals/{deal['id']}/stage", {"stage": "contacted", "at": paid_at.isoformat()})
    start = paid_at.astimezone(ZoneInfo("Asia/Almaty")).date().isoformat()
    return clients.call("POST", f"/deals/{deal['id']}/stage", {
        "stage": "project_launched", "at": paid_at.isoformat(), "service_start": start,
        "instagram_login": "login", "instagram_password": "password"})


async def wait_for_task(clients: Backend, deal_id: str, kind: str) -> dict:
    from shared.testing import eventually

    async def found():
        tasks = clients.call("GET", "/tasks?assignee=manager1")
        return next((t for t in tasks if t["deal_id"] == deal_id and t["kind"] == kind), None)

    return await eventually(found, timeout=20, message=f"{kind} task")


async def test_cl11_renewal_call_is_completed_only_with_the_recording_uploaded(client: AsyncTestClient,
                                                                              clients: Backend) -> None:
    deal = launched_deal(clients, "p-renew", days_ago=29)
    task = await wait_for_task(clients, deal["id"], "renewal_call")
    token = await sign_in(client, "manager1")
    tasks = await client.get("/tasks?lang=en")
    assert f'action="/deals/{deal["id"]}/recordings"' in tasks.text and "<progress" in tasks.text

    # Without a file: the form says what is missing, nothing changes.
    empty = await client.post(f"/deals/{deal['id']}/recordings", headers={"HX-Request": "true"},
                              data={"_csrf": token, "task_id": task["id"], "complete": "1", "back": "tasks"})
    assert empty.status_code == 422 and "Choose the recording file." in empty.text
    # Not audio: the service refuses, and the page shows its reason.
    wrong = await client.post(f"/deals/{deal['id']}/recordings", headers={"HX-Request": "true"},
                              data={"_csrf": token, "task_id": task["id"], "complete": "1", "back": "tasks"},
                              files={"file": ("notes.txt", b"hello", "text/plain")})
    assert wrong.status_code == 422 and "audio" in wrong.text
    ok = await client.post(f"/deals/{deal['id']}/recordings", headers={"HX-Request": "true"},
                           data={"_csrf": token, "task_id": task["id"], "complete": "1", "back": "tasks"},
                           files={"file": ("call.mp3", b"ID3" + b"\0" * 2048, "audio/mpeg")})
    assert ok.status_code == 200, ok.text
    assert "Recording attached, task completed." in ok.text
    view = clients.call("GET", f"/deals/{deal['id']}")
    assert next(t for t in view["tasks"] if t["id"] == task["id"])["status"] == "done"

    card = await client.get(f"/deals/{deal['id']}")
    attachment = view["attachments"][0]
    assert f'<audio controls preload="none" src="/attachments/{attachment["id"]}">' in card.text
    audio = await client.get(f"/attachments/{attachment['id']}")
    assert audio.status_code == 200 and audio.headers["content-type"].startswith("audio/mpeg")
    assert audio.content.startswith(b"ID3")


async def test_lead_waives_a_deadline_with_a_reason_and_the_card_shows_who_and_why(client: AsyncTestClient,
                                                                                  clients: Backend) -> None:
    deal = clients.call("POST", "/payments", payment("p-1"))
    deadline = deal["deadlines"][0]
    token = await sign_in(client, "lead")
    card = await client.get(f"/deals/{deal['id']}?lang=en")
    assert f'/deadlines/{deadline["id"]}/waive' in card.text
    empty = await client.post(f"/deals/{deal['id']}/deadlines/{deadline['id']}/waive", data={"_csrf": token},
                              headers={"HX-Request": "true"})
    assert empty.status_code == 422 and "Say why the deadline is waived." in empty.text
    done = await client.post(f"/deals/{deal['id']}/deadlines/{deadline['id']}/waive", headers={"HX-Request": "true"},
                             data={"_csrf": token, "reason": "Клиент в отпуске"})
    assert done.status_code == 200, done.text
    assert "waived by lead: Клиент в отпуске" in done.text


async def test_cl12_document_print_view_after_the_client_continues(client: AsyncTestClient, clients: Backend) -> None:
    deal = launched_deal(clients, "p-doc", days_ago=29)
    clients.call("POST", f"/deals/{deal['id']}/stage", {"stage": "notification_sent"})
    await sign_in(client, "manager1")
    card = await client.get(f"/deals/{deal['id']}?lang=en")
    assert f'href="/deals/{deal["id"]}/document"' in card.text and "Payment details" in card.text
    document = await client.get(f"/deals/{deal['id']}/document")
    assert document.status_code == 200 and "Реквизиты для оплаты" in document.text
    # Issue 8 §7: served under a CSP of its own — no inline script (the print button is data-print, handled
    # by static app.js), its <style> allowed by hash only.
    assert "onclick" not in document.text and "data-print" in document.text and "/static/js/app.js" in document.text
    policy = document.headers["content-security-policy"]
    assert "unsafe-inline" not in policy and "'sha256-" in policy and "frame-ancestors 'none'" in policy

    other = clients.call("POST", "/payments", payment("p-nodoc"))
    missing = await client.get(f"/deals/{other['id']}/document?lang=en")
    assert missing.status_code == 404 and "No document yet" in missing.text


async def test_analyst_sees_deals_without_buttons_and_may_not_change_them(client: AsyncTestClient,
                                                                         clients: Backend) -> None:
    deal = launched_deal(clients, "p-1", days_ago=3)
    token = await sign_in(client, "analyst")
    for path in ("/deals", f"/deals/{deal['id']}", "/leads", "/reports/funnel"):
        response = await client.get(path)
        assert response.status_code == 200, (path, response.text)
        main = response.text.split('<main id="content">')[1]
        assert 'method="post"' not in main, path
    assert "s3cret" not in main and "/credentials" not in main
    for path in (f"/deals/{deal['id']}/stage", f"/tasks/{deal['tasks'][0]['id']}/complete",
                 f"/deals/{deal['id']}/credentials", f"/deals/{deal['id']}/questionnaire-link", "/leads"):
        response = await client.post(path, data={"_csrf": token, "stage": "lost"})
        assert response.status_code == 403, path
    assert clients.call("GET", f"/deals/{deal['id']}")["stage"] == "project_launched"


async def test_cl5_expired_link_is_a_clear_410(client: AsyncTestClient, clients: Backend, settings) -> None:
    from datetime import UTC, timedelta

    from shared.signing import make_token

    deal = clients.call("POST", "/payments", payment("p-1"))
    token = make_token({"deal_id": deal["id"]}, secret_key=settings.secret_key, purpose="questionnaire",
                       expires_at=datetime.now(UTC) - timedelta(days=1))
    page = await client.get(f"/q/{token}?lang=en")
    assert page.status_code == 410 and "This link has expired" in page.text


async def test_leads_sorting_pagination_stage_move_and_the_funnel_chart(client: AsyncTestClient,
                                                                       clients: Backend) -> None:
    for i in range(27):
        clients.call("POST", "/leads", {"full_name": f"Лид {i:02d}", "phone": f"+7 700 000 00{i:02d}",
                                        "owner": "manager1"}, as_=("manager1", "content_manager"))
    token = await sign_in(client, "manager1")
    first = await client.get("/leads?sort=name&dir=asc&lang=en")
    assert first.status_code == 200
    names = re.findall(r">Лид (\d\d)</a>", first.text)
    assert names == [f"{i:02d}" for i in range(25)] and "Page 1 of 2" in first.text
    second = await client.get("/leads?sort=name&dir=asc&page=2")
    assert re.findall(r">Лид (\d\d)</a>", second.text) == ["25", "26"]

    created = await client.post("/leads", data={"_csrf": token, "full_name": ""}, headers={"HX-Request": "true"})
    assert created.status_code == 422 and 'class="field-error"' in created.text

    lead_id = re.search(r'href="/leads/([^"]+)">Лид 00<', first.text).group(1)
    moved = await client.post(f"/leads/{lead_id}/stage", data={"_csrf": token, "stage": "application"},
                              headers={"HX-Request": "true"})
    assert moved.status_code == 200 and "Application" in moved.text

    funnel = await client.get("/reports/funnel?lang=en")
    assert funnel.status_code == 200 and "<svg" in funnel.text
    assert re.search(r"<td>Dialogs</td><td class=\"num\">27</td>", funnel.text)
    assert re.search(r"<td>Applications</td><td class=\"num\">1</td><td class=\"num\">100%</td>", funnel.text)


async def test_import_of_an_amocrm_export_shows_progress_and_row_errors(client: AsyncTestClient,
                                                                       clients: Backend) -> None:
    csv_text = ("ID;Бюджет;Этап сделки;Дата оплаты;Контакт: ФИО;Контакт: Телефон;Тип услуги;Ответственный\n"
                "101;60000;Оплачено;01.03.2026 12:00;Айгуль Ибраева;+77010000101;Ведение аккаунта;manager1\n"
                "102;;Оплачено;01.03.2026 12:00;Без бюджета;+77010000102;Ведение аккаунта;manager1\n")
    token = await sign_in(client, "lead")
    form = await client.get("/imports?lang=en")
    assert form.status_code == 200 and 'enctype="multipart/form-data"' in form.text
    started = await client.post("/imports", data={"_csrf": token}, follow_redirects=False,
                                files={"file": ("deals.csv", csv_text.encode(), "text/csv")})
    assert started.status_code == 303, started.text
    location = started.headers["location"]

    from shared.testing import eventually

    async def finished():
        page = await client.get(location, headers={"HX-Request": "true"})
        return page if 'hx-trigger="every 1s"' not in page.text else None

    page = await eventually(finished, timeout=20, message="the import to finish")
    assert "<progress" in page.text and "Rows with errors" in page.text
    assert re.search(r"<td>3</td>", page.text)       # the row without a budget, numbered as in the file


@pytest.mark.postgres
async def test_board_and_deal_card_on_postgresql(service_process, nats_server, tmp_path, postgres_url) -> None:
    """Smoke: the same pages with the clients service on PostgreSQL."""
    from gateway.app import create_app

    clients_url = serve_clients(service_process, nats_server.url, database_url=postgres_url)
    backend = Backend(clients_url, "clients")
    roster(backend)
    deal = backend.call("POST", "/payments", payment("p-pg"))
    settings = gateway_settings(f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}",
                                service_urls={**down_service_urls(), "clients": clients_url})
    app = create_app(settings, background=False)
    async with AsyncTestClient(app, base_url="http://127.0.0.1") as client:
        await sign_in(client, "manager1")
        board = await client.get("/deals")
        assert board.status_code == 200 and "Айгерим Сапарова" in board.text
        card = await client.get(f"/deals/{deal['id']}")
        assert card.status_code == 200 and 'id="mark-contacted"' in card.text


# ------------------------------------------------------------------ list pages read lists, not every deal

def service_calls(client: AsyncTestClient) -> list[str]:
    """Records "METHOD path?query" of every call the gateway makes to a service from now on."""
    http = client.app.state.runtime.state["http"]
    seen: list[str] = []

    async def record(request) -> None:
        seen.append(f"{request.method} {request.url.path}?{request.url.query.decode()}")

    http.event_hooks["request"] = [*http.event_hooks["request"], record]
    return seen


def deal_reads(calls: list[str]) -> list[str]:
    return [c for c in calls if re.match(r"GET /api/clients/deals/[^?]+\?", c)]


async def test_board_is_one_request_with_server_sums_and_each_column_shows_more_on_demand(
        client: AsyncTestClient, clients: Backend, monkeypatch) -> None:
    """Issue 9: counts and sums come from the service for the whole column; a column shows its first
    page and a "show more" button that fetches the next page as a fragment."""
    from datetime import UTC, timedelta
    from datetime import datetime as dt

    from gateway.pages import deals as deals_page

    monkeypatch.setattr(deals_page, "COLUMN_PAGE", 2)   # 5 new deals → 2 + 2 + 1
    now = dt.now(UTC)
    ids = [clients.call("POST", "/payments", payment(f"p-{i}", name=f"Клиент {i}",
                                                     paid_at=now - timedelta(minutes=50 - i)))["id"] for i in range(5)]
    clients.call("POST", f"/deals/{ids[0]}/refunds", {"external_id": "rf-1", "amount": "10000.00", "currency": "KZT",
                                                      "refunded_at": now.isoformat()})
    for name in ("Ушедший Первый", "Ушедший Второй", "Ушедший Третий"):
        lost = clients.call("POST", "/payments", payment(f"lost-{name}", name=name))
        clients.call("POST", f"/deals/{lost['id']}/stage", {"stage": "lost"})
    await sign_in(client, "lead")
    calls = service_calls(client)
    board = await client.get("/deals?lang=en")
    assert board.status_code == 200, board.text
    assert deal_reads(calls) == [] and [c.split("?")[0] for c in calls] == ["GET /api/clients/board"]
    new_column = re.search(r'data-stage="new".*?</section>', board.text, re.S).group(0)
    assert '<span class="count">5</span>' in new_column
    assert "290\u202f000 KZT" in new_column                               # 5 × 60 000 − 10 000, by the service
    assert re.findall(r">(Клиент \d)<", new_column) == ["Клиент 4", "Клиент 3"]   # newest first payment first
    more = re.search(r'hx-get="(/deals/column\?[^"]+)"', new_column).group(1).replace("&amp;", "&")
    assert "Show 2 more" in new_column and "3 left" in new_column
    lost_column = re.search(r'data-stage="lost".*?</section>', board.text, re.S).group(0)
    assert '<span class="count">3</span>' in lost_column and "180\u202f000 KZT" in lost_column

    page2 = await client.get(more + "&lang=en", headers={"HX-Request": "true"})
    assert page2.status_code == 200, page2.text
    assert re.findall(r">(Клиент \d)<", page2.text) == ["Клиент 2", "Клиент 1"]
    assert "<html" not in page2.text and "Show 1 more" in page2.text
    last = re.search(r'hx-get="(/deals/column\?[^"]+)"', page2.text).group(1).replace("&amp;", "&")
    page3 = await client.get(last + "&lang=en", headers={"HX-Request": "true"})
    assert re.findall(r">(Клиент \d)<", page3.text) == ["Клиент 0"] and "hx-get" not in page3.text
    bad = await client.get("/deals/column?stage=nope&lang=en", headers={"HX-Request": "true"})
    assert bad.status_code == 422 and "Choose the stage." in bad.text


async def test_board_searches_by_name_phone_and_instagram_and_filters_by_manager_and_service(
        client: AsyncTestClient, clients: Backend) -> None:
    body = payment("p-1", name="Айгерим Сапарова")
    body["client"] |= {"phone": "+7 701 555 1234", "instagram": "https://instagram.com/sweet.cakes"}
    clients.call("POST", "/payments", body)
    clients.call("POST", "/payments", payment("p-2", "manager2", name="Берик Ахметов", kind="complex_promotion"))
    await sign_in(client, "lead")
    for q in ("сапар", "555 1234", "sweet.cakes"):
        found = await client.get("/deals", params={"q": q, "lang": "en"})
        text = text_of(found.text)
        assert "Айгерим Сапарова" in text and "Берик Ахметов" not in text, q
        assert f'value="{q}"' in found.text
    none = await client.get("/deals", params={"q": "никого", "lang": "en"})
    assert "No deals match." in none.text
    by_manager = text_of((await client.get("/deals?manager=manager2&lang=en")).text)
    assert "Берик Ахметов" in by_manager and "Айгерим Сапарова" not in by_manager
    by_kind = text_of((await client.get("/deals?kind=account_management&lang=en")).text)
    assert "Айгерим Сапарова" in by_kind and "Берик Ахметов" not in by_kind


async def test_my_tasks_show_client_and_deal_stage_from_the_task_list_alone(client: AsyncTestClient,
                                                                            clients: Backend) -> None:
    first = clients.call("POST", "/payments", payment("p-1", name="Айгерим Сапарова"))
    clients.call("POST", "/payments", payment("p-2", name="Берик Ахметов"))
    await sign_in(client, "lead")
    calls = service_calls(client)
    page = await client.get("/tasks?scope=all&lang=en")
    assert page.status_code == 200, page.text
    # one GET /tasks from clients (beside it only today's EN-4 check rounds, from engagement)
    assert deal_reads(calls) == [] and len([c for c in calls if "/api/clients/" in c]) == 1
    row = re.search(rf'href="/deals/{first["id"]}">(.*?)</td>', page.text, re.S).group(1)
    assert "Айгерим Сапарова" in row and "New (paid)" in row
    assert "Берик Ахметов" in page.text


async def test_leads_list_is_paged_sorted_and_searched_by_the_service_and_the_card_reads_one_lead(
        client: AsyncTestClient, clients: Backend) -> None:
    for name in ("Берик Ахметов", "Айгуль Ибраева", "Данияр Касымов"):
        clients.call("POST", "/leads", {"full_name": name, "phone": "+7 700 000 0000", "owner": "manager1"},
                     as_=("manager1", "content_manager"))
    theirs = clients.call("POST", "/leads", {"full_name": "Чужой Лид", "phone": "1", "owner": "manager2"},
                          as_=("manager2", "content_manager"))
    await sign_in(client, "manager1")
    calls = service_calls(client)
    found = await client.get("/leads?q=БЕРИК&sort=name&dir=asc&lang=en")
    assert found.status_code == 200, found.text
    assert re.findall(r'href="/leads/[^"]+">([^<]+)</a>', found.text) == ["Берик Ахметов"]
    [listed] = [c for c in calls if c.startswith("GET /api/clients/leads?")]
    assert "limit=25" in listed and "offset=0" in listed and "sort=full_name" in listed and "q=" in listed
    desc = await client.get("/leads?sort=name&dir=desc&lang=en")
    assert re.findall(r'href="/leads/[^"]+">([^<]+)</a>', desc.text) == ["Данияр Касымов", "Берик Ахметов",
                                                                        "Айгуль Ибраева"]
    lead_id = re.search(r'href="/leads/([^"]+)">Берик Ахметов<', desc.text).group(1)
    calls.clear()
    card = await client.get(f"/leads/{lead_id}?lang=en")
    assert card.status_code == 200 and "Берик Ахметов" in card.text
    assert calls == [f"GET /api/clients/leads/{lead_id}?"]                  # one lead, not the whole list
    foreign = await client.get(f"/leads/{theirs['id']}")
    assert foreign.status_code == 404 and "Чужой Лид" not in foreign.text


async def test_deal_card_translates_deadlines_and_the_timeline_from_their_codes(client: AsyncTestClient,
                                                                               clients: Backend) -> None:
    deal = clients.call("POST", "/payments", payment("p-1"))
    clients.call("POST", f"/deadlines/{deal['deadlines'][0]['id']}/waive", {"reason": "отпуск"})
    await sign_in(client, "lead")
    ru = await client.get(f"/deals/{deal['id']}?lang=ru")
    assert ru.status_code == 200, ru.text
    deadline_row = re.search(r'id="deadline-.*?</tr>', ru.text, re.S).group(0)
    assert "Первый звонок (скрипт №3)" in deadline_row and "First call" not in deadline_row
    history = text_of(re.search(r'<ol class="timeline">.*?</ol>', ru.text, re.S).group(0))
    for said in ("Оплачено 60 000 KZT", "Этап: — → Новая (оплачено)",
                 "Задача «Первый звонок (скрипт №3)» для manager1", "Срок CL-3 снят: отпуск"):
        assert said in history, (said, history)
    assert "paid 60000.00 KZT" not in history and "waived" not in history
    en = await client.get(f"/deals/{deal['id']}?lang=en")
    history = text_of(re.search(r'<ol class="timeline">.*?</ol>', en.text, re.S).group(0))
    assert "Paid 60 000 KZT" in history and "Deadline CL-3 waived: отпуск" in history


def test_a_timeline_entry_without_a_known_code_or_its_parameters_shows_the_services_summary() -> None:
    from gateway.i18n import activate, deactivate
    from gateway.labels import timeline_text

    token = activate("ru")
    try:
        assert timeline_text({"code": "something.new", "summary": "something new", "data": {}}) == "something new"
        assert timeline_text({"code": None, "summary": "old entry", "data": {}}) == "old entry"
        assert timeline_text({"code": "payment.received", "summary": "paid 5.00 KZT", "data": {}}) == "paid 5.00 KZT"
        assert timeline_text({"code": "money_back.ended", "summary": "x", "data": {"refunded": True}}) == (
            "Срок возврата денег истёк (деньги возвращены)")
    finally:
        deactivate(token)


async def test_cl5_expired_link_answered_410_by_the_service_is_the_expired_page(client: AsyncTestClient,
                                                                               clients: Backend, settings) -> None:
    """The service says 410 Gone for an expired link (and 404 for a forged one): the gateway page shows
    "expired" with 410, also when the client submits the form."""
    from datetime import UTC, timedelta

    from shared.signing import make_token

    deal = clients.call("POST", "/payments", payment("p-1"))
    token = make_token({"deal_id": deal["id"]}, secret_key=settings.secret_key, purpose="questionnaire",
                       expires_at=datetime.now(UTC) - timedelta(minutes=1))
    upstream = httpx.get(f"{clients.base_url}/public/clients/questionnaire/{token}")
    assert upstream.status_code == 410
    form = await client.get("/login")
    sent = await client.post(f"/q/{token}?lang=en", data={"_csrf": csrf_of(form.text), "business": "x",
                                                          "audience": "y", "goals": "z"})
    assert sent.status_code == 410 and "This link has expired" in sent.text
    forged = make_token({"deal_id": deal["id"]}, secret_key="not-ours", purpose="questionnaire",
                        expires_at=datetime.now(UTC) + timedelta(days=1))
    page = await client.get(f"/q/{forged}?lang=en")
    assert page.status_code == 404 and "This link is not valid" in page.text
    assert clients.call("GET", f"/deals/{deal['id']}")["stage"] == "new"
