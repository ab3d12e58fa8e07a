"""Payroll pages (issue 4) against a REAL payroll service (served live, SQLite, the test's nats-server)."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from litestar.testing import AsyncTestClient
from shared.bus import Bus, Outgoing
from shared.events import encode
from shared.events.clients import DealRenewed
from shared.settings import Settings
from shared.testing import eventually

from .backends import Backend, serve_payroll
from .conftest import down_service_urls, gateway_settings, sign_in


def this_month() -> str:
    return datetime.now(ZoneInfo("Asia/Almaty")).strftime("%Y-%m")


def previous_month() -> str:
    year, month = map(int, this_month().split("-"))
    return f"{year - 1}-12" if month == 1 else f"{year}-{month - 1:02d}"


@pytest.fixture
def payroll_url(service_process, nats_server) -> str:
    return serve_payroll(service_process, nats_server.url)


@pytest.fixture
def payroll(payroll_url: str) -> Backend:
    backend = Backend(payroll_url, "payroll")
    start = previous_month() + "-01"
    for login in ("manager1", "manager2"):
        backend.call("PUT", f"/employees/{login}", {"employed_from": start})
    return backend


@pytest.fixture
def settings(tmp_path, payroll_url: str) -> Settings:
    return gateway_settings(f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}",
                            service_urls={**down_service_urls(), "payroll": payroll_url})


async def test_lead_sees_the_month_with_a_chart_and_each_statement_with_csv_and_print(client: AsyncTestClient,
                                                                                    payroll: Backend) -> None:
    await sign_in(client, "lead")
    month = this_month()
    page = await client.get(f"/payroll?month={month}&lang=en")
    assert page.status_code == 200, page.text
    assert "<svg" in page.text and 'role="img"' in page.text
    assert "Дана Ахметова" in page.text and "Тимур Касымов" in page.text    # staff by full name (issue 9)
    assert ">manager1<" not in page.text and ">manager2<" not in page.text
    assert "open (live preview)" in page.text
    # Issue 9: the current month has not ended: no close form, a plain word instead.
    assert 'id="close-form"' not in page.text and 'id="close-later"' in page.text
    # The picker: months with data, or the current one (named, not "2026-12").
    options = re.findall(r'<option value="(\d{4}-\d{2})"[^>]*>([^<]+)</option>', page.text)
    assert [value for value, _text in options] == [month]
    assert options[0][1] != month and options[0][1].endswith(month[:4])
    assert "150\u202f000 KZT" in page.text                                  # PAY-1 base salary

    statement = await client.get(f"/payroll/statements/{month}/manager1?lang=en")
    assert statement.status_code == 200, statement.text
    assert "PAY-1" in statement.text and "Base salary" in statement.text
    csv = await client.get(f"/payroll/statements/{month}/manager1/csv")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert "PAY-1" in csv.text and "TOTAL" in csv.text
    printable = await client.get(f"/payroll/statements/{month}/manager1?print=1&lang=en")
    assert printable.status_code == 200 and "data-print" in printable.text and 'class="topbar"' not in printable.text


async def test_content_manager_sees_only_their_own_statement(client: AsyncTestClient, payroll: Backend) -> None:
    await sign_in(client, "manager1")
    month = this_month()
    overview = await client.get(f"/payroll?month={month}")
    assert overview.status_code == 200
    assert "manager1" in overview.text and "manager2" not in overview.text
    assert 'id="close-form"' not in overview.text
    assert (await client.get(f"/payroll/statements/{month}/manager1")).status_code == 200
    assert (await client.get(f"/payroll/statements/{month}/manager2")).status_code == 403
    assert (await client.get(f"/payroll/statements/{month}/manager2/csv")).status_code == 403


async def test_analyst_reads_everything_but_sees_no_buttons_and_may_not_post(client: AsyncTestClient,
                                                                             payroll: Backend) -> None:
    token = await sign_in(client, "analyst")
    month = previous_month()
    overview = await client.get(f"/payroll?month={month}")
    assert overview.status_code == 200 and "manager2" in overview.text
    assert 'method="post"' not in overview.text.split('<main id="content">')[1]
    rules = await client.get("/payroll/rules")
    assert rules.status_code == 200 and 'id="rules-form"' not in rules.text
    for path in (f"/payroll/months/{month}/close", "/payroll/rules"):
        response = await client.post(path, data={"_csrf": token, "password": "demo"})
        assert response.status_code == 403, path
    assert payroll.call("GET", f"/months/{month}")["state"] == "open"


async def test_only_the_lead_closes_a_month_and_only_after_typing_the_password_again(client: AsyncTestClient,
                                                                                   payroll: Backend) -> None:
    token = await sign_in(client, "lead")
    month = previous_month()
    wrong = await client.post(f"/payroll/months/{month}/close", data={"_csrf": token, "password": "nope"},
                              headers={"HX-Request": "true"})
    assert wrong.status_code == 422 and 'class="field-error"' in wrong.text
    assert payroll.call("GET", f"/months/{month}")["state"] == "open"

    # The current month has not ended: the service refuses, and the page says why.
    early = await client.post(f"/payroll/months/{this_month()}/close", data={"_csrf": token, "password": "demo"},
                              headers={"HX-Request": "true"})
    assert early.status_code == 422 and "ещё не закончился" in early.text   # the service's code, said in Russian

    ended = await client.get(f"/payroll?month={month}&lang=en")
    assert 'id="close-form"' in ended.text and 'id="close-later"' not in ended.text    # an ended month: the form
    closed = await client.post(f"/payroll/months/{month}/close", data={"_csrf": token, "password": "demo"},
                               headers={"HX-Request": "true"})
    assert closed.status_code == 200, closed.text
    assert payroll.call("GET", f"/months/{month}")["state"] == "closed"
    assert 'id="close-form"' not in closed.text
    picker = await client.get("/payroll?lang=en")                    # the closed month now has data: listed
    assert re.findall(r'<option value="(\d{4}-\d{2})"', picker.text) == [this_month(), month]


async def test_lead_creates_a_rule_version_and_sees_the_history(client: AsyncTestClient, payroll: Backend) -> None:
    token = await sign_in(client, "lead")
    page = await client.get("/payroll/rules?lang=en")
    assert page.status_code == 200 and 'id="rules-form"' in page.text
    bad = await client.post("/payroll/rules", headers={"HX-Request": "true"},
                            data={"_csrf": token, "effective_from": this_month(), "amount_PAY-2": "-5"})
    assert bad.status_code == 422 and 'class="field-error"' in bad.text
    # Issue 9: a fine per deadline rule is its own field; a bad one is named with the reason.
    bad_fine = await client.post("/payroll/rules", headers={"HX-Request": "true"},
                                 data={"_csrf": token, "effective_from": this_month(), "fine_CL-3": "abc"})
    assert bad_fine.status_code == 422
    assert 'class="field-error"' in bad_fine.text.split('id="f-fine_CL-3"')[1].split("</div>")[0]
    # Issue 9: the payroll service answers with codes; the page says them in the reader's language.
    in_russian = await client.post("/payroll/rules?lang=ru", headers={"HX-Request": "true"},
                                   data={"_csrf": token, "effective_from": this_month(), "amount_PAY-2": "-5",
                                         "fine_CL-3": "abc"})
    assert in_russian.status_code == 422
    assert "Премия — 0 или больше." in in_russian.text
    assert "Введите сумму, например 150000 или -5000.50." in in_russian.text
    assert "must be &gt;= 0" not in in_russian.text and "not a decimal number" not in in_russian.text
    saved = await client.post("/payroll/rules", headers={"HX-Request": "true"},
                              data={"_csrf": token, "effective_from": this_month(), "amount_PAY-2": "12000",
                                    "fine_CL-9": "-6000", "fine_CL-11": "-1000"})
    assert saved.status_code == 200, saved.text
    rules = payroll.call("GET", "/rules")
    assert rules["current"]["amounts"]["PAY-2"] in ("12000.00", "12000")
    assert rules["current"]["deadline_fines"]["CL-9"] in ("-6000.00", "-6000")
    assert rules["current"]["deadline_fines"]["CL-11"] in ("-1000.00", "-1000")
    assert len(re.findall(r"<tr><td>\d+</td>", saved.text)) == 2


async def test_pay7_tie_is_shown_close_refused_and_the_lead_picks_the_best_manager(client: AsyncTestClient,
                                                                                  payroll: Backend,
                                                                                  nats_server) -> None:
    """Issue 7 §6: equal on every criterion → the page shows the tie with the figures, closing is refused with
    a translated reason, the lead picks with a validated form, and the +30,000 goes to the picked manager."""
    month = previous_month()
    when = datetime.fromisoformat(f"{month}-10T09:00:00+05:00")
    bus = Bus(nats_server.url, "gateway-test-clients")
    await bus.connect(retry_forever=False)
    try:
        for i, manager in enumerate(("manager2", "manager1")):
            evt = DealRenewed(manager=manager, payment_id=f"p{i}", period_start=when, period_end=when + timedelta(30),
                              occurred_at=when + timedelta(hours=i), deal_id=f"deal-{manager}")
            await bus.publish_many([Outgoing(evt.subject, encode(evt), {"Nats-Msg-Id": evt.event_id})])
    finally:
        await bus.drain()

    async def tied() -> bool:
        view = await asyncio.to_thread(payroll.call, "GET", f"/months/{month}")
        return bool(view.get("tie"))

    await eventually(tied, message="payroll saw both renewals")
    token = await sign_in(client, "lead")
    overview = await client.get(f"/payroll?month={month}&lang=en")
    assert overview.status_code == 200
    assert "Tie: Дана Ахметова, Тимур Касымов are equal on every criterion." in overview.text
    assert 'id="pick-form"' in overview.text and 'id="best-manager-figures"' in overview.text

    refused = await client.post(f"/payroll/months/{month}/close", data={"_csrf": token, "password": "demo"},
                                headers={"HX-Request": "true"})
    assert refused.status_code == 422
    assert "The best manager is tied between Дана Ахметова, Тимур Касымов: pick one before closing the month." in refused.text
    assert payroll.call("GET", f"/months/{month}")["state"] == "open"

    empty = await client.post(f"/payroll/months/{month}/best-manager", data={"_csrf": token},
                              headers={"HX-Request": "true"})
    assert empty.status_code == 422 and "Choose the best manager among the tied managers." in empty.text
    stranger = await client.post(f"/payroll/months/{month}/best-manager", data={"_csrf": token, "manager": "lead"},
                                 headers={"HX-Request": "true"})
    assert stranger.status_code == 422 and "Choose one of the tied managers: Дана Ахметова, Тимур Касымов." in stranger.text

    picked = await client.post(f"/payroll/months/{month}/best-manager", data={"_csrf": token, "manager": "manager2"},
                               headers={"HX-Request": "true"})
    assert picked.status_code == 200, picked.text
    assert "Тимур Касымов is the best manager of" in picked.text and 'id="best-manager-picked"' in picked.text
    view = payroll.call("GET", f"/months/{month}")
    assert view["best_manager"] == "manager2" and view["tie"]["picked_by"] == "lead"
    statements = {st["manager"]: st for st in payroll.call("GET", "/statements?month=" + month)}
    assert "PAY-7" in [ln["rule"] for ln in statements["manager2"]["lines"]]
    assert "PAY-7" not in [ln["rule"] for ln in statements["manager1"]["lines"]]

    closed = await client.post(f"/payroll/months/{month}/close", data={"_csrf": token, "password": "demo"},
                               headers={"HX-Request": "true"})
    assert closed.status_code == 200, closed.text
    assert payroll.call("GET", f"/months/{month}")["best_manager"] == "manager2"


async def test_pay7_only_the_lead_picks_the_best_manager(client: AsyncTestClient, payroll: Backend) -> None:
    month = previous_month()
    for login in ("analyst", "manager1"):
        token = await sign_in(client, login)
        response = await client.post(f"/payroll/months/{month}/best-manager",
                                     data={"_csrf": token, "manager": "manager1"})
        assert response.status_code == 403, login
        overview = await client.get(f"/payroll?month={month}")
        assert 'id="pick-form"' not in overview.text
