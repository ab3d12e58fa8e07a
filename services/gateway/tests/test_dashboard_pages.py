"""Issue 9 §1: the dashboard per role and the navigation counts, against a REAL clients service."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from litestar.testing import AsyncTestClient
from shared.settings import Settings

from .backends import Backend, payment, roster, serve_clients
from .conftest import down_service_urls, gateway_settings, sign_in
from .test_clients_pages import text_of

HX = {"HX-Request": "true"}


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


def overdue_deal(clients: Backend, external_id: str, name: str, manager: str = "manager1") -> dict:
    """A deal paid ten days ago: its first-call task (CL-3) is long overdue."""
    return clients.call("POST", "/payments", payment(external_id, manager, name=name,
                                                     paid_at=datetime.now(UTC) - timedelta(days=10)))


async def test_issue9_manager_dashboard_shows_the_overdue_first_call_in_red(client: AsyncTestClient,
                                                                            clients: Backend) -> None:
    deal = overdue_deal(clients, "p-dash-1", "Гульнара Омарова")
    await sign_in(client, "manager1")
    page = await client.get("/?lang=ru")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Ничего не требует вашего внимания" not in text
    overdue = page.text.split('id="dash-overdue"')[1].split("</section>")[0]
    assert "dash-alert" in page.text.split('id="dash-overdue"')[0][-80:]          # the card is red
    assert f'href="/deals/{deal["id"]}#task-' in overdue and "Гульнара Омарова" in overdue
    assert "Первый звонок" in text_of(overdue)
    deals = text_of(page.text.split('id="dash-deals"')[1].split("</section>")[0])
    assert "Мои сделки по этапам" in text_of(page.text) and "Новая (оплачено) 1" in deals


async def test_issue9_nav_counts_my_open_tasks_with_the_overdue_in_red(client: AsyncTestClient,
                                                                       clients: Backend) -> None:
    overdue_deal(clients, "p-dash-2", "Гульнара Омарова")
    clients.call("POST", "/payments", payment("p-dash-3", name="Жанна Ким"))   # due later: open, not overdue
    await sign_in(client, "manager1")
    page = await client.get("/tasks")
    assert 'hx-get="/nav/counts"' in page.text and 'hx-trigger="load, every 60s"' in page.text
    badge = await client.get("/nav/counts?lang=ru", headers=HX)
    assert badge.status_code == 200
    assert 'class="nav-count late"' in badge.text and ">2 · 1<" in badge.text
    assert "2 открытые задачи · 1 просрочена" in badge.text


async def test_issue9_lead_dashboard_names_people_not_logins(client: AsyncTestClient, clients: Backend) -> None:
    overdue_deal(clients, "p-dash-4", "Гульнара Омарова", manager="manager1")
    overdue_deal(clients, "p-dash-5", "Жанна Ким", manager="manager2")
    await sign_in(client, "lead")
    page = await client.get("/?lang=ru")
    team = text_of(page.text.split('id="dash-team-overdue"')[1].split("</section>")[0])
    assert "Дана Ахметова" in team and "Тимур Касымов" in team     # display names of manager1 and manager2
    assert "manager1" not in team
    stages = text_of(page.text.split('id="dash-stages"')[1].split("</section>")[0])
    assert "Новая (оплачено) 2" in stages and "Гульнара Омарова" in stages    # the one waiting longest
    assert "Зарплата сейчас недоступна." in text_of(page.text)              # payroll is down: only its card says so


async def test_issue9_analyst_dashboard_has_the_month_funnel(client: AsyncTestClient, clients: Backend) -> None:
    await sign_in(client, "analyst")
    page = await client.get("/?lang=en")
    text = text_of(page.text)
    assert "Funnel for" in text and "Dialogs" in text and "Deadline compliance by manager" in text


# Every role has its area now (care: the inbox, issue 11; monitoring: the triage queue): nobody is told
# "it is coming" any more.


@pytest.mark.parametrize("login", ["agent1", "senior1"])
async def test_issue11_care_roles_have_their_inbox_dashboard(client: AsyncTestClient, clients: Backend,
                                                             login: str) -> None:
    """Care and senior agents get the inbox dashboard (issue 11); with the engagement service down here, the
    page says so instead of failing (the widgets with a real service: test_inbox_pages.py)."""
    await sign_in(client, login)
    page = await client.get("/?lang=ru")
    assert page.status_code == 200 and 'id="dash-care"' in page.text and 'id="dash-coming"' not in page.text
    assert "Входящие не загрузились" in text_of(page.text)
