"""Issue 7 §6 (rules that read wrong) and §7 (scale traps), clients side, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3

from alembic import command
from shared.migrate import alembic_config

from .conftest import local, payment
from .test_deals import LAUNCH, launched_deal

MANAGER1 = ("manager1", "content_manager")
GROWTH = ("growth", "growth")
LEAD = ("boss", "lead")


async def test_only_the_assignee_or_the_lead_completes_a_task_issue7(api_any) -> None:
    api = api_any
    deal = await api.pay(payment())
    after = await api.ok("post", f"/deals/{deal['deal_id']}/questionnaire", {"answers": {"a": 1}})
    growth_task = next(t for t in after["tasks"] if t["kind"] == "growth_start")
    assert growth_task["assignee"] == "growth" and after["responsible_manager"] == "manager1"
    refused = await api.post(f"/tasks/{growth_task['id']}/complete", {}, as_=MANAGER1)  # his deal, not his task
    assert refused.status_code == 403, refused.text
    done = await api.ok("post", f"/tasks/{growth_task['id']}/complete", {}, as_=GROWTH)
    assert done["status"] == "done" and done["completed_by"] == "growth"
    concept = next(t for t in after["tasks"] if t["kind"] == "concept")
    assert (await api.ok("post", f"/tasks/{concept['id']}/complete", {}, as_=LEAD))["status"] == "done"


async def test_cl3_ties_between_equally_loaded_managers_go_by_full_name_then_login(api_any) -> None:
    api = api_any
    await api.ok("put", "/staff/manager1", {"role": "content_manager", "full_name": "Ясмина Орлова"})
    await api.ok("put", "/staff/manager2", {"role": "content_manager", "full_name": "Алия Беркова"})
    assert (await api.pay(payment("a")))["responsible_manager"] == "manager2"  # Алия before Ясмина
    assert (await api.pay(payment("b")))["responsible_manager"] == "manager1"  # now manager1 has fewer
    await api.ok("put", "/staff/manager3", {"role": "content_manager", "full_name": "Алия Беркова"})
    assert (await api.pay(payment("c")))["responsible_manager"] == "manager3"  # least loaded
    await api.ok("put", "/staff/manager0", {"role": "content_manager", "full_name": "Алия Беркова"})
    assert (await api.pay(payment("d")))["responsible_manager"] == "manager0"  # least loaded
    # manager0, manager2, manager3 (same name, one deal each) and manager1 (one): name first, then login
    assert (await api.pay(payment("e")))["responsible_manager"] == "manager0"


async def test_pay2_second_month_client_renewing_a_week_early_is_after_a_full_month(api_any) -> None:
    api = api_any
    deal_id = await launched_deal(api)  # period 1: 02.03 → 02.04
    api.clock.set(local(2026, 4, 1, 12, 0))
    await api.pay(payment("r1", paid_at=local(2026, 4, 1, 11, 0)) | {"deal_id": deal_id})  # period 2: 01.04 → 01.05
    api.clock.set(local(2026, 4, 24, 12, 0))
    renewed = await api.pay(payment("r2", paid_at=local(2026, 4, 24, 11, 0)) | {"deal_id": deal_id})
    assert renewed["period"]["no"] == 3
    first, second = await api.events("clients.deal.renewed")
    assert first.after_full_month and second.after_full_month  # a week early, but period 1 was completed
    # A first-month client prepaying in the middle of the first period is not "after a month".
    other = await api.pay(payment("other", paid_at=local(2026, 4, 24, 10, 0)))
    await api.ok("post", f"/deals/{other['deal_id']}/stage", LAUNCH | {"service_start": "2026-04-24"})
    early = await api.pay(payment("r3", paid_at=local(2026, 4, 24, 11, 30)) | {"deal_id": other["deal_id"]})
    assert early["period"]["no"] == 2
    [evt] = await api.events("clients.deal.renewed", deal_id=other["deal_id"])
    assert not evt.after_full_month


async def test_tasks_and_deadlines_are_paged_with_a_maximum_issue7(api_any) -> None:
    api = api_any
    for i in range(3):
        await api.pay(payment(f"p{i}"))
    response = await api.get("/tasks", params={"limit": 2})
    assert response.status_code == 200 and len(response.json()) == 2
    assert response.headers["X-Total-Count"] == "3"
    rest = await api.get("/tasks", params={"limit": 2, "offset": 2})
    assert len(rest.json()) == 1
    assert {t["id"] for t in response.json()}.isdisjoint(t["id"] for t in rest.json())
    deadlines = await api.get("/deadlines", params={"limit": 1, "state": "open"})
    assert len(deadlines.json()) == 1 and deadlines.headers["X-Total-Count"] == "3"
    for path in ("/tasks", "/deadlines"):
        too_many = await api.get(path, params={"limit": 201})
        assert too_many.status_code == 422 and too_many.json()["errors"][0]["field"] == "limit"
        negative = await api.get(path, params={"offset": -1})
        assert negative.status_code == 422 and negative.json()["errors"][0]["field"] == "offset"
    # Visibility is counted in the database: manager2 sees only the deadlines of his own deals.
    mine = await api.get("/deadlines", as_=("manager2", "content_manager"))
    assert mine.headers["X-Total-Count"] == "1" and len(mine.json()) == 1


def test_migration_0005_indexes_deadline_task_and_lead_created_at(tmp_path) -> None:
    path = tmp_path / "c.db"
    command.upgrade(alembic_config("clients", f"sqlite+aiosqlite:///{path}"), "head")
    db = sqlite3.connect(path)
    indexes = {row[1] for row in db.execute("SELECT type, name FROM sqlite_master WHERE type = 'index'")}
    assert {"ix_deadlines_task_id", "ix_leads_created_at"} <= indexes
    columns = {row[1] for row in db.execute("PRAGMA table_info(deadlines)")}
    assert "breach_event_id" in columns
