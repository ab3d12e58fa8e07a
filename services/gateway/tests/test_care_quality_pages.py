"""Care quality pages (issue 12) against a REAL engagement service (a process of its own, SQLite): the agents'
report with its chart and CSV (people by full name, the agent sees only their own line), and the check rounds
page with its empty state and a validation message."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest
from shared.settings import Settings

from .backends import Backend
from .conftest import down_service_urls, gateway_settings, sign_in

TG = {"bot_token": "123456:ABC", "secret_token": "tg-secret-token-1234567890"}
LEAD = ("lead", "lead")


@pytest.fixture
def engagement_url(service_process, nats_server) -> str:
    return service_process("engagement", nats_url=nats_server.url)


@pytest.fixture
def settings(tmp_path, engagement_url: str) -> Settings:
    return gateway_settings(f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}",
                            service_urls={**down_service_urls(), "engagement": engagement_url})


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def answered_conversation(engagement_url: str) -> None:
    """A Telegram message to the agency's brand account, answered by agent1 (Асель Жумабаева)."""
    backend = Backend(engagement_url, "engagement")
    channel = backend.call("POST", "/channels", {"kind": "telegram", "name": "Бренд", "config": TG}, as_=LEAD)
    backend.call("PUT", "/staff/agent1/accounts", {"accounts": ["agency"]}, as_=LEAD)
    update = {"update_id": 1, "message": {"message_id": 1, "date": int(datetime.now(UTC).timestamp()) - 120,
                                          "text": "Здравствуйте!", "from": {"id": 7, "is_bot": False,
                                                                            "first_name": "Анна"},
                                          "chat": {"id": 7, "type": "private", "first_name": "Анна"}}}
    response = httpx.post(f"{engagement_url}/webhooks/telegram/{channel['id']}", json=update,
                          headers={"X-Telegram-Bot-Api-Secret-Token": TG["secret_token"]}, timeout=30)
    assert response.status_code == 200

    def conversation() -> list:
        return backend.call("GET", "/conversations", as_=LEAD)

    import time
    deadline = time.monotonic() + 30
    while not conversation():
        assert time.monotonic() < deadline, "the delivery was never processed"
        time.sleep(0.2)
    [c] = conversation()
    backend.call("POST", f"/conversations/{c['id']}/replies", {"text": "Добрый день!"}, as_=("agent1", "care_agent"))


async def test_care_report_shows_agents_by_name_with_a_chart_and_a_csv(client, engagement_url) -> None:
    answered_conversation(engagement_url)
    await sign_in(client, "analyst")
    page = await client.get("/care/reports")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Асель Жумабаева" in text and "agent1" not in text
    assert "<svg" in page.text and "/care/reports.csv" in page.text
    csv = await client.get("/care/reports.csv")
    assert csv.status_code == 200 and "attachment" in csv.headers["content-disposition"]
    assert "Асель Жумабаева" in csv.content.decode("utf-8-sig")
    vk_only = await client.get("/care/reports", params={"channel": "vk"})
    assert vk_only.status_code == 200 and "empty-state" in vk_only.text                 # answered on Telegram

    bad = await client.get("/care/reports", params={"start": "2026-12-10", "end": "2026-12-01"})
    assert bad.status_code == 422 and "role=\"alert\"" in bad.text


async def test_care_report_is_empty_state_when_nothing_was_answered_and_agents_see_only_themselves(
        client, engagement_url) -> None:
    await sign_in(client, "agent1")
    page = await client.get("/care/reports")
    assert page.status_code == 200 and "empty-state" in page.text


async def test_check_rounds_page_says_when_there_are_none_and_validates_the_day(client, engagement_url) -> None:
    await sign_in(client, "manager1")
    page = await client.get("/care/rounds")
    assert page.status_code == 200 and "empty-state" in page.text
    bad = await client.get("/care/rounds", params={"day": "someday"})
    assert bad.status_code == 422


async def test_care_settings_form_validates_in_the_users_language_and_saves(client, engagement_url) -> None:
    answered_conversation(engagement_url)          # the agency's brand account exists now
    csrf = await sign_in(client, "lead")
    page = await client.get("/care/settings")
    assert page.status_code == 200 and "Бренд" in page.text and "Поддержка бренда" in page.text
    bad = await client.post("/care/settings/agency", data={"_csrf": csrf, "mode": "brand", "target_minutes": "0",
                                                            "hours": "9-18", "holidays": "tomorrow",
                                                            "contact_email": "нет", "contact_telegram": "@anna"},
                            headers={"HX-Request": "true"})
    assert bad.status_code == 422
    text = text_of(bad.text)
    assert "Введите минуты" in text and "Выберите хотя бы один день" in text and "ГГГГ-ММ-ДД" in text
    assert "name@example.kz" in text and "Id чата Telegram — это число" in text
    assert Backend(engagement_url, "engagement").call("GET", "/care-settings/agency", as_=LEAD)["target_s"] == 420
    ok = await client.post("/care/settings/agency", data={
        "_csrf": csrf, "mode": "brand", "target_minutes": "5", "hours": "09:00-13:00, 14:00-21:00",
        "days": ["1", "2", "3", "4", "5", "6", "7"], "holidays": "2026-12-16", "contact_email": "owner@brand.kz"},
        headers={"HX-Request": "true"})
    assert ok.status_code == 200 and "Сохранено." in ok.text
    saved = Backend(engagement_url, "engagement").call("GET", "/care-settings/agency", as_=LEAD)
    assert (saved["target_s"], saved["holidays"], saved["days"]) == (300, ["2026-12-16"], "1,2,3,4,5,6,7")
    assert (saved["contact_email"], saved["contact_telegram"]) == ("owner@brand.kz", "")


async def test_care_settings_are_not_for_care_agents(client, engagement_url) -> None:
    await sign_in(client, "agent1")
    assert (await client.get("/care/settings")).status_code in (403, 404)
