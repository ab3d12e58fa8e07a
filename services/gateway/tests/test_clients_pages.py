"""Clients pages (issue 3) against a REAL clients service (served live, SQLite, the test's nats-server)."""

from __future__ import annotations

import re

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
