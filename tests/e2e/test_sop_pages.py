"""Group SOP pages (issue 13) against the REAL engagement service (its app served on loopback, SQLite, the test's
nats-server), with an injectable clock so that a planned push is made when the test moves the clock past its
minute, never by waiting for the wall clock.

Groups (filters, a group added by hand, bulk category change, a transfer), SOP rules (validation next to the
fields, attachments uploaded, the preview of who gets what when, pause), the push settings, the calendar, and the
owner's My pushes (copy text, download, Sent, the nav counter) up to the lead's task metrics and reports.
"""

from __future__ import annotations

import importlib.util
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from shared.clock import FixedClock
from shared.settings import Settings
from shared.testing import eventually, make_settings


def _gateway_test_module(name: str):
    """The gateway's own test helpers (its conftest and stand-in backends), loaded by path: this test lives here
    because it runs the engagement app in-process (services' tests never import another service)."""
    spec = importlib.util.spec_from_file_location(f"zabota_gateway_tests_{name}", GATEWAY_TESTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GATEWAY_TESTS = Path(__file__).resolve().parents[2] / "services" / "gateway" / "tests"
_gw = _gateway_test_module("conftest")
Backend = _gateway_test_module("backends").Backend
down_service_urls, gateway_settings, sign_in = _gw.down_service_urls, _gw.gateway_settings, _gw.sign_in
app, db, client = _gw.app, _gw.db, _gw.client   # the gateway fixtures, on this module's `settings`

LEAD = ("lead", "lead")
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4"
       b"\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")
HX = {"HX-Request": "true"}


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime.now(UTC).replace(second=0, microsecond=0))


@pytest.fixture
def engagement_url(live_server, nats_server, tmp_path, clock) -> str:
    # In-process (like the e2e tests) so that its clock is the test's: materialisation at the due minute.
    from engagement.app import create_app as create_engagement

    return live_server(create_engagement(make_settings(
        "engagement", database_url=f"sqlite+aiosqlite:///{tmp_path / 'engagement.db'}", nats_url=nats_server.url),
        clock=clock))


@pytest.fixture
def settings(tmp_path, engagement_url: str) -> Settings:
    return gateway_settings(f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}",
                            service_urls={**down_service_urls(), "engagement": engagement_url})


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def api(engagement_url: str) -> Backend:
    return Backend(engagement_url, "engagement")


def hand_group(engagement_url: str, title: str, owner: str, category: str, tags: list[str]) -> dict[str, Any]:
    return api(engagement_url).call("POST", "/groups", {"channel_id": None, "external_id": title, "title": title,
                                                       "owner": owner, "category": category, "tags": tags}, as_=LEAD)


async def test_groups_filters_hand_entry_bulk_change_and_transfer(client, engagement_url) -> None:
    csrf = await sign_in(client, "lead")
    empty = await client.get("/groups")
    assert empty.status_code == 200 and "empty-state" in empty.text

    bad = await client.post("/groups", data={"_csrf": csrf, "title": "", "external_id": ""}, headers=HX)
    assert bad.status_code == 422
    assert "Назовите группу" in bad.text and "Введите id группы" in bad.text and 'class="field-error"' in bad.text
    for title, owner, category, tags in (("VIP-клуб", "agent1", "A", "vip, 新客"), ("Новички", "agent1", "B", ""),
                                         ("Оптовики", "manager1", "A", "опт")):
        added = await client.post("/groups", data={"_csrf": csrf, "title": title, "external_id": f"@{title}",
                                                   "owner": owner, "category": category, "tags": tags}, headers=HX)
        assert added.status_code == 200 and f"Группа {title} добавлена." in added.text

    listing = text_of((await client.get("/groups")).text)
    assert "Асель Жумабаева" in listing and "Дана Ахметова" in listing and "agent1" not in listing
    assert "0 / 4" in listing and "新客" in listing and "3 группы" in listing and "Вручную" in listing
    assert "Project-Id-Version" not in listing
    only_a = text_of((await client.get("/groups", params={"category": "A"})).text)
    assert "VIP-клуб" in only_a and "Оптовики" in only_a and "Новички" not in only_a
    searched = text_of((await client.get("/groups", params={"q": "товики"})).text)
    assert "Оптовики" in searched and "VIP-клуб" not in searched
    by_owner = text_of((await client.get("/groups", params={"owner": "manager1"})).text)
    assert "Оптовики" in by_owner and "Новички" not in by_owner
    by_category = text_of((await client.get("/groups", params={"sort": "category"})).text)
    assert by_category.index("Оптовики") < by_category.index("Новички")           # A before B, then by name
    by_title = text_of((await client.get("/groups")).text)
    assert by_title.index("Новички") < by_title.index("Оптовики")
    assert "Подходящих групп нет." in (await client.get("/groups", params={"channel": "no-such"})).text
    assert "Подходящих групп нет." in (await client.get("/groups", params={"state": "inactive"})).text
    none = await client.get("/groups", params={"q": "нет такой"})
    assert "Подходящих групп нет." in none.text

    ids = {g["title"]: g["id"] for g in api(engagement_url).call("GET", "/groups", as_=LEAD)["items"]}
    nothing = await client.post("/groups/bulk", data={"_csrf": csrf, "bulk_category": "C"}, headers=HX)
    assert nothing.status_code == 422 and "Отметьте группы" in nothing.text
    bulk = await client.post("/groups/bulk", data={"_csrf": csrf, "ids": [ids["VIP-клуб"], ids["Новички"]],
                                                   "bulk_category": "C", "back": "category=C"}, headers=HX)
    assert bulk.status_code == 200 and "Изменено групп: 2." in bulk.text
    assert "VIP-клуб" in bulk.text and "Оптовики" not in bulk.text           # the list kept its filter

    transfer = await client.post(f"/groups/{ids['Новички']}", data={
        "_csrf": csrf, "title": "Новички", "owner": "manager1", "category": "C", "tags": ""}, headers=HX)
    assert transfer.status_code == 200
    assert "Группа передана: Дана Ахметова" in text_of(transfer.text)
    assert api(engagement_url).call("GET", f"/groups/{ids['Новички']}", as_=LEAD)["owner"] == "manager1"
    api(engagement_url).call("PATCH", f"/groups/{ids['Оптовики']}", {"active": False}, as_=LEAD)   # the bot left
    left = text_of((await client.get("/groups", params={"state": "inactive"})).text)
    assert "Оптовики" in left and "VIP-клуб" not in left
    assert "Оптовики" not in text_of((await client.get("/groups")).text)

    client.cookies.clear()
    await sign_in(client, "analyst")
    read = await client.get("/groups")
    assert read.status_code == 200 and "VIP-клуб" in read.text and 'name="ids"' not in read.text
    assert (await client.post("/groups/bulk", data={"_csrf": csrf, "ids": [ids["VIP-клуб"]]})).status_code == 403


async def test_rule_form_validates_uploads_previews_and_pauses(client, engagement_url) -> None:
    hand_group(engagement_url, "VIP-клуб", "agent1", "A", ["vip"])
    hand_group(engagement_url, "Оптовики", "manager1", "B", [])
    csrf = await sign_in(client, "senior1")
    assert "Правил пока нет." in (await client.get("/sop/rules")).text

    bad = await client.post("/sop/rules", data={"_csrf": csrf, "name": "", "time": "9", "repeat": "weekdays"},
                            headers=HX)
    assert bad.status_code == 422
    text = text_of(bad.text)
    assert "Назовите правило" in text and "Выберите группы" in text and "Введите время в виде 09:00" in text
    assert "Выберите хотя бы один день" in text and "Напишите текст рассылки" in text

    created = await client.post("/sop/rules", data={
        "_csrf": csrf, "name": "A: утренняя карточка", "category": "A", "time": "09:00", "repeat": "weekdays",
        "weekdays": ["1", "2", "3", "4", "5", "6", "7"], "text": "Доброе утро! Карточка знаний дня.",
        "links": "https://example.kz/card", "mode": "manual"},
        files={"files": ("card.png", PNG, "image/png")}, headers=HX)
    assert created.status_code == 200, created.text
    location = created.headers["hx-redirect"]
    assert location.startswith("/sop/rules/") and location.endswith("?saved=1")
    [rule] = api(engagement_url).call("GET", "/sop-rules", as_=LEAD)
    kinds = sorted(a["kind"] for a in rule["content"]["attachments"])
    assert kinds == ["image", "link"]

    detail = await client.get(location)
    assert detail.status_code == 200 and "Правило сохранено." in detail.text
    preview = text_of(detail.text.split('id="rule-preview"', 1)[1])
    assert "VIP-клуб" in preview and "Асель Жумабаева" in preview and "Оптовики" not in preview
    assert "card.png" in detail.text and "09:00" in preview

    image = next(a for a in rule["content"]["attachments"] if a["kind"] == "image")
    edited = await client.post(f"/sop/rules/{rule['id']}", data={
        "_csrf": csrf, "name": "A: утренняя карточка", "category": "A", "time": "10:30", "repeat": "every",
        "every_n_days": "2", "text": "Карточка знаний, через день.", "attachment": json.dumps(image),
        "mode": "manual"}, headers=HX)
    assert edited.status_code == 200 and edited.headers["hx-redirect"] == location
    stored = api(engagement_url).call("GET", f"/sop-rules/{rule['id']}", as_=LEAD)
    assert (stored["time"], stored["every_n_days"]) == ("10:30", 2)
    assert [a["name"] for a in stored["content"]["attachments"]] == ["card.png"]     # kept; the link removed
    assert "10:30" in text_of((await client.get(location)).text.split('id="rule-preview"', 1)[1])

    paused = await client.post(f"/sop/rules/{rule['id']}/pause", data={"_csrf": csrf}, headers=HX)
    assert paused.status_code == 200 and "Приостановлено" in paused.text
    assert api(engagement_url).call("GET", f"/sop-rules/{rule['id']}", as_=LEAD)["paused"] is True

    # Push settings are the lead's.
    assert (await client.post("/sop/settings", data={"_csrf": csrf, "monthly_quota": "5"})).status_code == 403
    client.cookies.clear()
    csrf = await sign_in(client, "lead")
    wrong = await client.post("/sop/settings", data={"_csrf": csrf, "monthly_quota": "много",
                                                     "expire_after_hours": "24"}, headers=HX)
    assert wrong.status_code == 422 and "Введите целое число рассылок" in wrong.text
    saved = await client.post("/sop/settings", data={"_csrf": csrf, "monthly_quota": "5", "expire_after_hours": "12",
                                                     "default_owner": "agent1"}, headers=HX)
    assert saved.status_code == 200 and "Настройки рассылок сохранены." in saved.text
    stored = api(engagement_url).call("GET", "/push-settings", as_=LEAD)
    assert (stored["monthly_quota"], stored["expire_after_hours"], stored["default_owner"]) == (5, 12, "agent1")


async def test_planned_push_reaches_its_owner_who_copies_and_marks_it_sent(client, engagement_url, clock,
                                                                           app) -> None:
    group = hand_group(engagement_url, "VIP-клуб", "agent1", "A", ["vip"])
    csrf = await sign_in(client, "lead")
    tz = app.state.settings.calendar.tz
    due = (datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=3)).astimezone(tz)
    past = await client.post("/sop/calendar", data={"_csrf": csrf, "date": "2020-01-01", "time": "10:00",
                                                    "category": "A", "text": "x"}, headers=HX)
    assert past.status_code == 422 and "Выберите время в будущем." in past.text
    planned = await client.post("/sop/calendar", data={
        "_csrf": csrf, "date": due.date().isoformat(), "time": due.strftime("%H:%M"), "title": "Прямой эфир",
        "group_ids": group["id"], "text": "Сегодня в 20:00 прямой эфир!", "mode": "manual"},
        files={"files": ("poster.png", PNG, "image/png")}, headers=HX)
    assert planned.status_code == 200, planned.text
    assert "Рассылка запланирована" in planned.text and "Прямой эфир" in planned.text

    clock.advance(timedelta(minutes=4))

    async def made() -> bool:
        return bool(api(engagement_url).call("GET", "/pushes/count?owner=agent1", as_=LEAD)["pending"])

    await eventually(made, timeout=30, message="the planned push is made at its minute")

    client.cookies.clear()
    csrf = await sign_in(client, "agent1")
    counter = await client.get("/nav/counts", params={"for": "pushes"}, headers=HX)
    assert counter.status_code == 200 and ">1<" in counter.text
    mine = await client.get("/my-pushes")
    assert mine.status_code == 200
    assert 'readonly' in mine.text and "Сегодня в 20:00 прямой эфир!" in mine.text
    assert "data-copy-text" in mine.text and "/static/js/pushes.js" in mine.text
    [push] = api(engagement_url).call("GET", "/pushes?owner=agent1&status=pending", as_=LEAD)["items"]
    [poster] = [a for a in push["content"]["attachments"] if a["kind"] == "image"]
    download = await client.get(f"/sop-files/{poster['file_id']}")
    assert download.status_code == 200 and download.content == PNG
    assert download.headers["content-disposition"].startswith("attachment")

    client.cookies.clear()
    other = await sign_in(client, "manager1")
    refused = await client.post(f"/my-pushes/{push['id']}/sent", data={"_csrf": other}, headers=HX)
    assert refused.status_code == 409 and "Это рассылка другого владельца." in refused.text

    client.cookies.clear()
    csrf = await sign_in(client, "agent1")
    sent = await client.post(f"/my-pushes/{push['id']}/sent", data={"_csrf": csrf}, headers=HX)
    assert sent.status_code == 200 and "Отмечено как отправленное" in sent.text
    assert "Сейчас отправлять нечего." in sent.text
    assert "Сегодня в 20:00 прямой эфир!" in (await client.get("/my-pushes", params={"tab": "sent"})).text

    client.cookies.clear()
    await sign_in(client, "lead")
    day = due.date().isoformat()
    tasks = await client.get("/sop/tasks", params={"from": day, "to": day})
    assert tasks.status_code == 200 and "Прямой эфир" in tasks.text
    others = await client.get("/sop/tasks", params={"from": day, "to": day, "owner": "manager1"})
    assert "За этот период заданий рассылок нет." in others.text                 # not manager1's task
    [task] = api(engagement_url).call("GET", f"/push-tasks?from={day}&to={day}", as_=LEAD)
    detail = await client.get(f"/sop/tasks/{task['id']}")
    metric = re.search(r'data-metric="groups_sent"><dt>[^<]*</dt><dd>(\d+)</dd>', detail.text)
    assert metric and metric.group(1) == "1"
    assert "Асель Жумабаева" in text_of(detail.text) and "VIP-клуб" in detail.text

    report = await client.get("/sop/reports", params={"from": day, "to": day, "group_by": "week"})
    assert report.status_code == 200 and "<svg" in report.text and "Асель Жумабаева" in text_of(report.text)
    owners_csv = await client.get("/sop/reports.csv", params={"from": day, "to": day, "kind": "owners"})
    assert owners_csv.status_code == 200 and "attachment" in owners_csv.headers["content-disposition"]
    assert "Асель Жумабаева" in owners_csv.content.decode("utf-8-sig")
    periods_csv = (await client.get("/sop/reports.csv", params={"from": day, "to": day})).content.decode("utf-8-sig")
    assert "Группы с отправкой" in periods_csv.splitlines()[0]

    client.cookies.clear()
    await sign_in(client, "analyst")
    assert (await client.get(f"/sop/tasks/{task['id']}")).status_code == 200
    assert (await client.get("/sop/rules")).status_code == 403


async def test_calendar_and_tasks_validate_and_say_when_empty(client, engagement_url) -> None:
    await sign_in(client, "lead")
    calendar = await client.get("/sop/calendar", params={"month": "2026-13"})
    assert calendar.status_code == 200 and "Выберите месяц" in calendar.text
    assert 'id="month-grid"' in calendar.text
    tasks = await client.get("/sop/tasks", params={"start": "2026-12-10", "end": "2026-12-01"})
    assert tasks.status_code == 422
    assert "За этот период заданий рассылок нет." in (await client.get("/sop/tasks")).text
    mine = await client.get("/my-pushes")
    assert mine.status_code == 200 and "Сейчас отправлять нечего." in mine.text


async def test_a_transferred_push_fails_with_its_reason_and_the_lead_re_targets_it(client, engagement_url,
                                                                                  clock) -> None:
    group = hand_group(engagement_url, "VIP-клуб", "agent1", "A", [])
    api(engagement_url).call("POST", "/calendar", {
        "at": (clock.now() + timedelta(minutes=2)).isoformat(), "title": "Распродажа",
        "target": {"category": "A"}, "content": {"text": "Скидки до 50 %!", "attachments": []}, "mode": "manual"},
        as_=LEAD)
    clock.advance(timedelta(minutes=3))

    async def made() -> bool:
        return bool(api(engagement_url).call("GET", "/pushes/count?owner=agent1", as_=LEAD)["pending"])

    await eventually(made, timeout=30, message="the push is made at its minute")
    csrf = await sign_in(client, "lead")
    moved = await client.post(f"/groups/{group['id']}", data={"_csrf": csrf, "title": "VIP-клуб",
                                                               "owner": "manager1", "category": "A"}, headers=HX)
    assert moved.status_code == 200
    [task] = api(engagement_url).call("GET", "/push-tasks", as_=LEAD)
    page = await client.get(f"/sop/tasks/{task['id']}")
    text = text_of(page.text)
    assert "Группа передана другому владельцу" in text and "Перенаправить текущему владельцу" in text
    failed = await client.get(f"/sop/tasks/{task['id']}", params={"status": "failed"})
    assert "VIP-клуб" in failed.text
    [push] = api(engagement_url).call("GET", f"/push-tasks/{task['id']}", as_=LEAD)["pushes"]
    again = await client.post(f"/sop/tasks/{task['id']}/pushes/{push['id']}/retarget", data={"_csrf": csrf},
                              headers=HX)
    assert again.status_code == 200 and "Рассылка передана текущему владельцу группы." in again.text
    owners = text_of(again.text.split('id="task-owners"', 1)[1].split("</table>", 1)[0])
    assert "Дана Ахметова" in owners
    twice = await client.post(f"/sop/tasks/{task['id']}/pushes/{push['id']}/retarget", data={"_csrf": csrf},
                              headers=HX)
    assert twice.status_code == 409 and "Перенаправить можно только" in twice.text

    client.cookies.clear()
    await sign_in(client, "analyst")
    read = await client.get(f"/sop/tasks/{task['id']}")
    assert read.status_code == 200 and "/retarget" not in read.text
