"""Issue 9, agency settings: the lead's settings page against a REAL clients service (which stores the values,
effective-dated and audited): validation naming the field and the reason in the user's language, the Kazakhstan
holidays preset, the calendar reaching the gateway, the default language, missing requisites."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient
from shared.settings import Settings

from .backends import Backend, serve_clients
from .conftest import down_service_urls, gateway_settings, sign_in
from .test_clients_pages import text_of

HX = {"HX-Request": "true"}


@pytest.fixture
def clients_url(service_process, nats_server) -> str:
    return serve_clients(service_process, nats_server.url)


@pytest.fixture
def clients(clients_url: str) -> Backend:
    return Backend(clients_url, "clients")


@pytest.fixture
def settings(tmp_path, clients_url: str) -> Settings:
    return gateway_settings(f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}",
                            service_urls={**down_service_urls(), "clients": clients_url})


def field_error(html: str, name: str) -> str:
    return text_of(html.split(f'id="f-{name}"')[1].split("</div>")[0])


async def test_issue9_requisites_are_validated_and_documents_stop_missing_them(client: AsyncTestClient,
                                                                                clients: Backend) -> None:
    csrf = await sign_in(client, "lead")
    assert 'id="dash-requisites"' in (await client.get("/?lang=ru")).text       # the lead is told
    page = await client.get("/settings?lang=ru")
    assert page.status_code == 200
    assert "Реквизиты агентства" in page.text and 'id="requisites-missing"' in page.text
    assert "000000000000" not in page.text
    bad = {"_csrf": csrf, "agency_name": "ТОО «Забота»", "agency_bin": "123456789012", "agency_bank": "АО «Kaspi Bank»",
           "agency_bik": "CASP", "agency_iban": "KZ00 1234", "agency_address": "Алматы, пр. Абая 1",
           "agency_signer": "Директор Омарова А. К."}
    refused = await client.post("/settings/requisites", data=bad, headers=HX)
    assert refused.status_code == 422
    assert "контрольная цифра" in field_error(refused.text, "agency_bin")
    assert "IBAN" in field_error(refused.text, "agency_iban") and "CASPKZKA" in field_error(refused.text, "agency_bik")
    assert clients.call("GET", "/settings")["values"]["agency_name"] == ""          # nothing half-written
    good = {**bad, "agency_bin": "180140000018", "agency_bik": "caspkzka", "agency_iban": "KZ86 125K ZT50 0410 0100"}
    saved = await client.post("/settings/requisites", data=good, headers=HX)
    assert saved.status_code == 200, text_of(saved.text)
    assert "Настройки сохранены." in saved.text and 'id="requisites-missing"' not in saved.text
    assert 'id="dash-requisites"' not in (await client.get("/")).text
    values = clients.call("GET", "/settings")["values"]
    assert values["agency_bik"] == "CASPKZKA" and values["agency_iban"] == "KZ86125KZT5004100100"
    history = clients.call("GET", "/audit")
    assert any(a["action"] == "settings.changed" and a["actor"] == "lead" for a in history)


async def test_issue9_kazakhstan_preset_and_calendar_reach_the_gateway(client: AsyncTestClient, app,
                                                                       clients: Backend) -> None:
    csrf = await sign_in(client, "lead")
    year = int(clients.call("GET", "/settings")["at"][:4])
    preset = await client.post("/settings/calendar", headers=HX, data={
        "_csrf": csrf, "timezone": "Asia/Almaty", "work_start": "09:00", "work_end": "18:00",
        "workdays": ["1", "2", "3", "4", "5"], "holidays": "", "preset": "kz"})
    assert preset.status_code == 200
    holidays = preset.text.split('name="holidays"')[1].split("</textarea>")[0]
    for day in (f"{year}-03-22", f"{year}-12-16", f"{year + 1}-01-01", f"{year + 1}-03-21"):
        assert day in holidays
    assert clients.call("GET", "/settings")["values"]["calendar_hours"] == ""      # the preset only fills the form
    lines = [ln.strip() for ln in holidays.split(">", 1)[1].splitlines() if ln.strip()]
    bad = await client.post("/settings/calendar", headers=HX, data={
        "_csrf": csrf, "timezone": "Mars/Olympus", "work_start": "09:00", "work_end": "18:00",
        "workdays": ["1", "2", "3", "4", "5"], "holidays": "\n".join(lines)})
    assert bad.status_code == 422 and "Asia/Almaty" in field_error(bad.text, "timezone")
    half = await client.post("/settings/calendar", headers=HX, data={"_csrf": csrf, "timezone": ""})
    assert half.status_code == 422 and 'id="e-timezone"' in half.text        # fields missing: named, never 500
    saved = await client.post("/settings/calendar", headers=HX, data={
        "_csrf": csrf, "timezone": "Asia/Almaty", "work_start": "09:00", "work_end": "18:00",
        "workdays": ["1", "2", "3", "4", "5", "6"], "holidays": "\n".join(lines)})
    assert saved.status_code == 200, text_of(saved.text)
    values = clients.call("GET", "/settings")["values"]
    assert values["calendar_hours"] == "09:00-18:00" and values["calendar_workdays"] == "1,2,3,4,5,6"
    assert f"{year}-03-22" in values["calendar_holidays"]
    calendar = app.state.settings.calendar                      # the gateway applied it at once
    assert calendar.work_start.hour == 9 and 5 in calendar.workdays
    page = await client.get("/settings")
    assert 'value="09:00"' in page.text


async def test_issue9_deadline_numbers_form_names_the_field_and_saves_from_a_date(client: AsyncTestClient,
                                                                                   clients: Backend) -> None:
    csrf = await sign_in(client, "lead")
    form = {"_csrf": csrf, "first_call_within_hours": "2", "first_call_morning": "11:00",
            "concept_within_hours": "24", "first_post_within_working_days": "3", "period_months": "1",
            "renewal_task_days_before_end": "3", "loss_after_days": "7", "money_back_days": "10",
            "effective_from": "2026-12-01"}
    refused = await client.post("/settings/deadlines?lang=en", headers=HX,
                                data={**form, "period_months": "0", "loss_after_days": "-1"})
    assert refused.status_code == 422
    assert "at least 1" in field_error(refused.text, "period_months")
    assert "negative" in field_error(refused.text, "loss_after_days")
    saved = await client.post("/settings/deadlines", headers=HX, data=form)
    assert saved.status_code == 200, text_of(saved.text)
    current = clients.call("GET", "/settings?at=2026-12-02T00:00:00%2B05:00")["values"]
    assert current["first_call_within_hours"] == 2


async def test_issue9_default_language_is_what_visitors_and_new_accounts_start_in(client: AsyncTestClient,
                                                                                  clients: Backend) -> None:
    csrf = await sign_in(client, "lead")
    saved = await client.post("/settings/language", headers=HX, data={"_csrf": csrf, "default_language": "kk"})
    assert saved.status_code == 200, text_of(saved.text)
    staff = await client.get("/staff")
    assert 'value="kk" selected' in staff.text.replace("\n", " ").replace("  ", " ") or \
        '<option value="kk" selected>' in staff.text
    await client.post("/logout", data={"_csrf": csrf})
    client.cookies.clear()
    login = await client.get("/login")
    assert 'lang="kk"' in login.text
    await sign_in(client, "manager1")                        # the settings are the lead's only
    assert (await client.get("/settings")).status_code == 403
