"""Issue 8 §5 (rendering): a URL that comes from data is shown through one helper (`|link`,
gateway.urls) that makes an `<a href>` only for http(s). A `javascript:` Instagram link stored through
the clients API as an integration shows as text on the deal card, the lead card, the leads list and
the board — against a REAL clients service."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient
from shared.settings import Settings

from .backends import Backend, payment, roster
from .conftest import down_service_urls, gateway_settings, sign_in

PAYLOAD = 'javascript:alert(document.cookie)//"><img src=x onerror=alert(1)>'
ESCAPED = "javascript:alert(document.cookie)//&#34;&gt;&lt;img src=x onerror=alert(1)&gt;"
SAFE = "https://instagram.com/aigerim.cakes"


@pytest.fixture
def clients_db(tmp_path: Path) -> Path:
    return tmp_path / "clients.db"


@pytest.fixture
def clients_url(service_process, nats_server, clients_db: Path) -> str:
    return service_process("clients", nats_url=nats_server.url, database_url=f"sqlite+aiosqlite:///{clients_db}")


@pytest.fixture
def clients(clients_url: str) -> Backend:
    backend = Backend(clients_url, "clients")
    roster(backend)
    return backend


@pytest.fixture
def settings(tmp_path, clients_url: str) -> Settings:
    return gateway_settings(f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}",
                            service_urls={**down_service_urls(), "clients": clients_url})


def store_instagram(clients: Backend, clients_db: Path, table: str, record_id: str, stored: str | None) -> None:
    """If the clients service already refuses the payload on the way in (URL validation, issue 8 §5),
    put it in its database directly: rows written before that validation may still hold one."""
    if stored == PAYLOAD:
        return
    with sqlite3.connect(clients_db) as db:
        db.execute(f"UPDATE {table} SET instagram = ? WHERE id = ?", (PAYLOAD, record_id))


def no_script_links(html: str, where: str) -> None:
    assert not re.search(r"""href\s*=\s*["']?\s*(?:&#\w+;|\s)*j\s*a\s*v\s*a""", html, re.I), where
    assert "<img src=x" not in html, where
    assert "javascript:" not in " ".join(re.findall(r'href="([^"]*)"', html)).lower(), where


async def test_issue8_5_javascript_instagram_link_shows_as_text_everywhere(client: AsyncTestClient,
                                                                           clients: Backend,
                                                                           clients_db: Path) -> None:
    body = payment("p-xss", name="Пэйлоад Клиент")
    body["client"]["instagram"] = PAYLOAD
    response = clients.call("POST", "/payments", body, expect=(200, 201, 422))
    if "id" in response:
        deal = response
    else:   # validated on the way in: record the payment with a clean link, then plant the payload
        body["client"]["instagram"] = SAFE
        deal = clients.call("POST", "/payments", body)
    store_instagram(clients, clients_db, "clients", deal["client"]["id"],
                    body["client"]["instagram"])
    lead = clients.call("POST", "/leads", {"full_name": "Пэйлоад Лид", "instagram": PAYLOAD, "owner": "manager1"},
                        expect=(200, 201, 422))
    if "id" not in lead:
        lead = clients.call("POST", "/leads", {"full_name": "Пэйлоад Лид", "instagram": SAFE, "owner": "manager1"})
    store_instagram(clients, clients_db, "leads", lead["id"], lead["instagram"])
    # A clean link on another lead still is a link (the helper does not just drop every link).
    clean = clients.call("POST", "/leads", {"full_name": "Чистый Лид", "instagram": SAFE, "owner": "manager1"})

    await sign_in(client, "lead")
    pages = {
        "deal card": await client.get(f"/deals/{deal['id']}"),
        "lead card": await client.get(f"/leads/{lead['id']}"),
        "leads list": await client.get("/leads"),
        "board": await client.get("/deals"),
    }
    for where, page in pages.items():
        assert page.status_code == 200, (where, page.text)
        no_script_links(page.text, where)
    for where in ("deal card", "lead card", "leads list"):
        assert ESCAPED in pages[where].text, where   # shown, as text
    assert "Пэйлоад Клиент" in pages["board"].text
    assert f'<a href="{SAFE}" rel="noopener noreferrer nofollow" target="_blank">' in pages["leads list"].text
    clean_card = await client.get(f"/leads/{clean['id']}")
    assert f'<a href="{SAFE}"' in clean_card.text
