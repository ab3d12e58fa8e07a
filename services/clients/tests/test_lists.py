"""What list pages need from the API, on SQLite and PostgreSQL: deal summaries and tasks that carry the
client's name and the money (no read per deal), paging and sorting with X-Total-Count, one lead by id
under the list's role rules, the expired questionnaire link as 410, and codes a UI can translate."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

from shared.signing import make_token
from sqlalchemy import event

from .conftest import T0, payment

M1, M2 = ("manager1", "content_manager"), ("manager2", "content_manager")
ANALYST, GROWTH, LEAD = ("analyst", "analyst"), ("growth", "growth"), ("boss", "lead")


def named(external_id: str, name: str, minutes_ago: int = 0, **extra) -> dict:
    body = payment(external_id, paid_at=T0 - timedelta(minutes=minutes_ago), **extra)
    body["client"]["full_name"] = name
    return body


@contextmanager
def counting_queries(api):
    """Counts the SQL statements the app sends while the block runs."""
    engine = api.app.state.runtime.db.engine.sync_engine
    seen: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def test_deal_summary_carries_client_name_paid_total_net_of_refunds_and_currency(api_any) -> None:
    api = api_any
    deal = await api.pay(named("p-1", "Айгерим Сапарова"))
    await api.ok("post", f"/deals/{deal['id']}/refunds", {"external_id": "rf-1", "amount": "15000.50",
                                                          "currency": "KZT", "refunded_at": T0.isoformat()})
    [summary] = await api.ok("get", "/deals")
    assert summary["client_name"] == "Айгерим Сапарова"
    assert summary["paid_total"] == "44999.50" and summary["currency"] == "KZT"
    full = await api.deal(deal["id"])                  # the card says the same
    assert (full["client_name"], full["paid_total"], full["currency"]) == ("Айгерим Сапарова", "44999.50", "KZT")


async def test_task_list_carries_client_name_and_deal_stage(api_any) -> None:
    api = api_any
    deal = await api.pay(named("p-1", "Айгерим Сапарова"))
    [task] = await api.ok("get", "/tasks?assignee=manager1", as_=M1)
    assert task["deal_id"] == deal["id"] and task["client_name"] == "Айгерим Сапарова" and task["deal_stage"] == "new"
    done = await api.ok("post", f"/tasks/{task['id']}/complete", {}, as_=M1)
    assert done["client_name"] == "Айгерим Сапарова" and done["deal_stage"] == "contacted"


async def test_deal_and_task_lists_read_a_fixed_number_of_queries_however_many_deals(api_any) -> None:
    api = api_any
    await api.pay(named("p-0", "Клиент 0"))
    with counting_queries(api) as few_deals:
        assert len(await api.ok("get", "/deals")) == 1
    with counting_queries(api) as few_tasks:
        await api.ok("get", "/tasks")
    for i in range(1, 8):
        await api.pay(named(f"p-{i}", f"Клиент {i}", minutes_ago=i))
    with counting_queries(api) as many_deals:
        assert len(await api.ok("get", "/deals")) == 8
    with counting_queries(api) as many_tasks:
        assert len(await api.ok("get", "/tasks")) == 8
    assert len(many_deals) == len(few_deals) and len(many_tasks) == len(few_tasks)


async def test_deals_page_with_limit_offset_sort_and_total_in_x_total_count(api_any) -> None:
    api = api_any
    for i, name in enumerate(["Вера", "Алия", "Борис", "Галина", "Данияр"]):
        await api.pay(named(f"p-{i}", name, minutes_ago=i, responsible_manager="manager1"))
    await api.pay(named("p-other", "Чужой", responsible_manager="manager2"))
    first = await api.get("/deals?sort=client_name&limit=2")
    assert first.status_code == 200 and first.headers["x-total-count"] == "6"
    assert [d["client_name"] for d in first.json()] == ["Алия", "Борис"]
    second = await api.get("/deals?sort=client_name&limit=2&offset=2")
    assert [d["client_name"] for d in second.json()] == ["Вера", "Галина"]
    newest = await api.ok("get", "/deals?limit=1")                       # default: -first_payment_at
    assert newest[0]["client_name"] in ("Вера", "Чужой")
    oldest = await api.ok("get", "/deals?sort=first_payment_at&limit=1")
    assert oldest[0]["client_name"] == "Данияр"
    descending = await api.ok("get", "/deals?sort=-client_name&limit=1")
    assert descending[0]["client_name"] == "Чужой"
    # The total counts what the actor may see and the filters keep, not every row.
    mine = await api.get("/deals?limit=1", as_=M1)
    assert mine.headers["x-total-count"] == "5" and len(mine.json()) == 1
    assert (await api.get("/deals?stage=contacted")).headers["x-total-count"] == "0"


async def test_bad_limit_offset_or_sort_is_422_naming_the_field(api_any) -> None:
    api = api_any
    for path, field in (("/deals?limit=0", "limit"), ("/deals?limit=201", "limit"), ("/deals?offset=-1", "offset"),
                        ("/deals?sort=password", "sort"), ("/deals?sort=-", "sort"), ("/deals?limit=many", "limit"),
                        ("/leads?limit=500", "limit"), ("/leads?sort=bin", "sort")):
        response = await api.get(path)
        assert response.status_code == 422, (path, response.text)
        assert field in [e["field"] for e in response.json()["errors"]], (path, response.json())
    assert (await api.get("/deals?limit=200")).status_code == 200


async def test_leads_page_sorted_by_funnel_stage_and_searched_in_any_case(api_any) -> None:
    api = api_any
    ids = {}
    for name, phone in (("Лид Первый", "+7 700 000 0001"), ("Лид Второй", "+7 700 000 0002"),
                        ("Другой Человек", "+7 700 000 0003")):
        ids[name] = (await api.ok("post", "/leads", {"full_name": name, "phone": phone, "owner": "manager1"}))["id"]
    await api.ok("post", f"/leads/{ids['Лид Второй']}/stage", {"stage": "application"})
    await api.ok("post", f"/leads/{ids['Другой Человек']}/stage", {"stage": "warm_lead"})
    by_stage = await api.ok("get", "/leads?sort=-stage")
    assert [lead["full_name"] for lead in by_stage] == ["Лид Второй", "Другой Человек", "Лид Первый"]
    found = await api.get("/leads?q=лид&sort=full_name&limit=1")
    assert found.headers["x-total-count"] == "2" and found.json()[0]["full_name"] == "Лид Второй"
    assert [lead["full_name"] for lead in await api.ok("get", "/leads?q=0000003")] == ["Другой Человек"]
    assert await api.ok("get", "/leads?q=100%") == []                    # LIKE wildcards are plain text


async def test_get_lead_by_id_follows_the_lists_role_rules(api_any) -> None:
    api = api_any
    mine = (await api.ok("post", "/leads", {"full_name": "Мой", "phone": "1"}, as_=M1))["id"]
    theirs = (await api.ok("post", "/leads", {"full_name": "Чужой", "phone": "2"}, as_=M2))["id"]
    assert (await api.ok("get", f"/leads/{mine}", as_=M1))["full_name"] == "Мой"
    assert (await api.get(f"/leads/{theirs}", as_=M1)).status_code == 404   # as if it did not exist
    assert (await api.get(f"/leads/{theirs}", as_=ANALYST)).status_code == 200
    assert (await api.get(f"/leads/{theirs}", as_=LEAD)).status_code == 200
    assert (await api.get(f"/leads/{theirs}", as_=GROWTH)).status_code == 404
    assert (await api.get("/leads/no-such-lead")).status_code == 404
    assert [lead["id"] for lead in await api.ok("get", "/leads", as_=M1)] == [mine]


async def test_cl5_expired_questionnaire_link_is_410_gone_and_a_forged_one_404(api_any) -> None:
    api = api_any
    deal = await api.pay(payment())
    secret = api.app.state.runtime.settings.secret_key
    expired = make_token({"deal_id": deal["id"]}, secret_key=secret, purpose="questionnaire",
                         expires_at=T0 - timedelta(seconds=1))
    for method in ("get", "post"):
        response = await getattr(api.client, method)(f"/public/clients/questionnaire/{expired}",
                                                     **({"json": {"answers": {"a": 1}}} if method == "post" else {}))
        assert response.status_code == 410, response.text
        assert response.json()["detail"] == "this link has expired"
        assert response.json()["errors"][0]["field"] == "token"
    forged = make_token({"deal_id": deal["id"]}, secret_key="not-ours", purpose="questionnaire",
                        expires_at=T0 + timedelta(days=1))
    assert (await api.client.get(f"/public/clients/questionnaire/{forged}")).status_code == 404
    assert (await api.client.get("/public/clients/questionnaire/garbage")).status_code == 404
    assert (await api.deal(deal["id"]))["stage"] == "new"                # nothing was written


async def test_deadline_what_code_and_timeline_codes_with_their_parameters(api_any) -> None:
    api = api_any
    deal = await api.pay(payment())
    await api.ok("post", f"/deals/{deal['id']}/questionnaire", {"answers": {"a": 1}})
    await api.ok("post", f"/deadlines/{deal['deadlines'][0]['id']}/waive", {"reason": "отпуск"})
    view = await api.deal(deal["id"])
    codes = {d["rule"]: d["what_code"] for d in view["deadlines"]}
    assert codes == {"CL-3": "first_call", "CL-6": "concept", "CL-9": "first_post"}
    assert all(d["what"] for d in view["deadlines"])                     # the English text stays for API users
    entries = {(e["code"], e["data"].get("task_kind") or e["data"].get("to_stage")): e for e in view["timeline"]}
    paid = entries[("payment.received", None)]
    assert paid["data"]["amount"] == "60000.00" and paid["data"]["currency"] == "KZT" and paid["kind"] == "payment"
    assert entries[("task.assigned", "first_call")]["data"]["assignee"] == "manager1"
    assert ("stage.changed", "questionnaire_received") in entries
    waived = entries[("deadline.waived", None)]
    assert waived["data"] == {"deadline_id": deal["deadlines"][0]["id"], "rule": "CL-3", "what_code": "first_call",
                              "reason": "отпуск"}
    assert all(e["code"] and e["summary"] for e in view["timeline"])


async def test_openapi_documents_the_paging_parameters_and_the_total_header(api) -> None:
    doc = (await api.client.get("/schema/openapi.json")).json()
    for path in ("/api/clients/deals", "/api/clients/leads"):
        operation = doc["paths"][path]["get"]
        assert {"limit", "offset", "sort"} <= {p["name"] for p in operation["parameters"]}, path
        assert "X-Total-Count" in operation["responses"]["200"]["headers"], path
    assert "/api/clients/leads/{lead_id}" in doc["paths"]
