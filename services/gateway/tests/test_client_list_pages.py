"""Issue 9: the Clients page (search, sort, paging, totals) and the client card by id (CL-1 fields, edit
with validation messages, all deals), against a REAL clients service. Who sees which client is the
deal rule (tests/security/test_client_card.py): a manager sees the clients of their deals only."""

from __future__ import annotations

import re

import pytest
from litestar.testing import AsyncTestClient
from shared.settings import Settings

from .backends import Backend, payment, roster, serve_clients
from .conftest import down_service_urls, gateway_settings, sign_in
from .test_clients_pages import text_of


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


def names(html: str) -> list[str]:
    return re.findall(r'href="/clients/[^"]+">([^<]+)</a>', html)


async def test_clients_page_searches_sorts_pages_and_shows_totals(client: AsyncTestClient, clients: Backend,
                                                                  monkeypatch) -> None:
    from gateway.pages import clients as clients_page

    monkeypatch.setattr(clients_page, "PAGE_SIZE", 2)
    clients.call("POST", "/payments", payment("p-1", name="Айгерим Сапарова"))
    clients.call("POST", "/payments", payment("p-2", name="Берик Ахметов", amount="150000.00"))
    clients.call("POST", "/payments", payment("p-3", "manager2", name="Данияр Касымов"))
    await sign_in(client, "lead")
    listing = await client.get("/clients?lang=ru")
    assert listing.status_code == 200, listing.text
    assert names(listing.text) == ["Айгерим Сапарова", "Берик Ахметов"]                 # by name, page 1 of 2
    assert "60\u202f000 KZT" in listing.text
    assert "Страница 1 из 2" in text_of(listing.text)
    page2 = await client.get("/clients?page=2&lang=en")
    assert names(page2.text) == ["Данияр Касымов"]
    beyond = await client.get("/clients?page=9&lang=en")
    assert 'id="past-end"' in beyond.text and "There is no page 9" in beyond.text
    assert names(beyond.text) == ["Данияр Касымов"]
    by_paid = await client.get("/clients?sort=paid&dir=desc&lang=en")
    assert names(by_paid.text)[0] == "Берик Ахметов"
    found = await client.get("/clients?q=касым&lang=en", headers={"HX-Request": "true"})
    assert names(found.text) == ["Данияр Касымов"] and "<html" not in found.text
    nothing = await client.get("/clients?q=никого&lang=en")
    assert "No clients match." in nothing.text

    await sign_in(client, "manager1")                                                    # their clients only
    mine = await client.get("/clients?lang=en")
    assert names(mine.text) == ["Айгерим Сапарова", "Берик Ахметов"]
    assert "Данияр Касымов" not in mine.text


async def test_client_card_shows_all_deals_and_is_edited_with_field_messages(client: AsyncTestClient,
                                                                            clients: Backend) -> None:
    first = clients.call("POST", "/payments", payment("p-1", name="Айгерим Сапарова"))
    again = payment("p-2", name="Айгерим Сапарова", kind="complex_promotion")
    again["client"]["phone"] = clients.call("GET", f"/deals/{first['id']}")["client"]["phone"]
    second = clients.call("POST", "/payments", again)
    foreign = clients.call("POST", "/payments", payment("p-3", "manager2", name="Чужой Клиент"))
    token = await sign_in(client, "manager1")
    deal_page = await client.get(f"/deals/{first['id']}?lang=en")
    assert f'href="/clients/{first["client_id"]}"' in deal_page.text                     # reachable from a deal
    card = await client.get(f"/clients/{first['client_id']}?lang=en")
    assert card.status_code == 200, card.text
    rows = re.findall(r'data-deal="([^"]+)"', card.text)
    assert sorted(rows) == sorted([first["id"], second["id"]])
    assert "Дана Ахметова" in card.text and "manager1" not in text_of(card.text)         # staff by full name
    assert "120\u202f000 KZT" in card.text                                               # total paid
    assert 'action="/clients/' in card.text

    bad = await client.post(f"/clients/{first['client_id']}", headers={"HX-Request": "true"},
                            data={"_csrf": token, "full_name": "Айгерим", "phone": "+7 701 000 00 00",
                                  "email": "not-an-email", "payer_type": "individual", "lang": "en"})
    assert bad.status_code == 422, bad.text
    assert "Enter an e-mail address like name@example.kz." in bad.text and 'value="not-an-email"' in bad.text
    ok = await client.post(f"/clients/{first['client_id']}", headers={"HX-Request": "true"},
                           data={"_csrf": token, "full_name": "Айгерим Сапарова", "phone": "+7 701 000 00 00",
                                 "email": "a@example.kz", "payer_type": "individual", "notes": "VIP"})
    assert ok.status_code == 200, ok.text
    assert clients.call("GET", f"/deals/{second['id']}")["client"]["notes"] == "VIP"

    hidden = await client.get(f"/clients/{foreign['client_id']}?lang=en")
    assert hidden.status_code == 404 and "Чужой Клиент" not in hidden.text
    refused = await client.post(f"/clients/{foreign['client_id']}", data={"_csrf": token, "notes": "x"})
    assert refused.status_code == 404
    await sign_in(client, "analyst")
    read_only = await client.get(f"/clients/{first['client_id']}?lang=en")
    assert read_only.status_code == 200 and 'action="/clients/' not in read_only.text
