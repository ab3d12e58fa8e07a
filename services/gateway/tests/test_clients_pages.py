"""Clients pages (issue 3) against a REAL clients service (served live, SQLite, the test's nats-server)."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from litestar.testing import AsyncTestClient
from shared.settings import Settings

from .backends import Backend, payment, roster, serve_clients
from .conftest import csrf_of, down_service_urls, gateway_settings, sign_in


@pytest.fixture
def clients_url(live_server, nats_server, tmp_path) -> str:
    return serve_clients(live_server, tmp_path, nats_server.url)


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
