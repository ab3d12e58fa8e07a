"""Issue 13 (group SOP) through the API, on SQLite and PostgreSQL, with the injectable clock: pushes materialised
at the due minute across time zones and DST by durable timers, the monthly quota, an owner leaving, transfer and
re-target, who may mark a push sent, the 8 metrics against a hand count, and the events in the outbox.

The agency's time zone is Asia/Almaty (UTC+5); T0 is Monday 2026-03-02 06:00 UTC (11:00 Almaty)."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from engagement.models import Base
from engagement.sop_models import Push, PushTask
from shared.infra import InfraBase

from .payloads import LEAD

ANN, BOB, CAT = ("ann", "care_agent"), ("bob", "growth"), ("cat", "content_manager")
SENIOR, ANALYST = ("sara", "senior_agent"), ("ivan", "analyst")
CONTENT = {"text": "Карточка знаний недели", "attachments": [{"kind": "link", "url": "https://example.kz/card"}]}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def fire(api, at: datetime) -> None:
    api.clock.set(at)
    api.in_app(api.runtime.scheduler.run_due)


async def group(api, title: str, owner: str | None, category: str = "A", tags: list[str] | None = None,
                external_id: str | None = None) -> dict:
    return await api.ok("post", "/groups", {"channel_id": None, "external_id": external_id or title, "title": title,
                                            "owner": owner, "category": category, "tags": tags or []}, status=201)


async def rule(api, time: str, target: dict, timezone: str | None = None, **extra) -> dict:
    body = {"name": f"rule {time}", "target": target, "time": time, "weekdays": [1, 2, 3, 4, 5, 6, 7],
            "content": CONTENT, "mode": "manual", **extra}
    if timezone:
        body["timezone"] = timezone
    return await api.ok("post", "/sop-rules", body, status=201)


async def patch(api, path: str, body: dict, as_: tuple[str, str] = LEAD) -> dict:
    response = await api.client.patch(f"/api/engagement{path}", json=body, headers=api.headers(as_))
    assert response.status_code == 200, response.text
    return response.json()


async def get(api, path: str, as_: tuple[str, str] = LEAD, **params) -> dict | list:
    """GET with a query (the Api helper's `ok` drops a query written into the path)."""
    response = await api.get(path, as_, **params)
    assert response.status_code == 200, response.text
    return response.json()


async def tasks(api, **params) -> list[dict]:
    response = await api.get("/push-tasks", LEAD, **params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_migrations_at_head_match_the_models(api_any) -> None:
    engine = api_any.runtime.db.engine

    async def diff() -> list:
        async with engine.connect() as conn:
            return await conn.run_sync(lambda c: compare_metadata(
                MigrationContext.configure(c, opts={"compare_type": True}), [Base.metadata, InfraBase.metadata]))

    # the PostgreSQL trigram index of the inbox search is written by migration 0005 only (no model form)
    assert [d for d in api_any.in_app(diff) if getattr(d[1], "name", None) != "ix_conversations_search_trgm"] == []


async def test_a_rule_materialises_at_the_due_minute_in_its_zone_once(api_any) -> None:
    api = api_any
    a1, a2 = await group(api, "A1", "ann"), await group(api, "A2", "bob")
    await group(api, "B1", "ann", category="B")
    r = await rule(api, "09:00", {"category": "A"}, timezone="Asia/Shanghai")
    assert r["next_due_at"] == "2026-03-03T01:00:00Z"            # 09:00 +08:00 on Tuesday
    fire(api, utc(2026, 3, 3, 0, 59))
    assert await api.count(PushTask) == 0
    fire(api, utc(2026, 3, 3, 1, 0))
    [task] = await tasks(api, **{"from": "2026-03-01", "to": "2026-03-31"})
    assert (task["source"], task["source_id"], task["due_at"]) == ("rule", r["id"], "2026-03-03T01:00:00Z")
    assert task["metrics"] == {"owners_pending": 2, "owners_done": 0, "failed_tasks": 0, "groups_pending": 2,
                               "groups_sent": 0, "groups_failed": 0}
    detail = await api.ok("get", f"/push-tasks/{task['id']}")
    assert {p["group_id"] for p in detail["pushes"]} == {a1["id"], a2["id"]}
    assert detail["content"] == {"text": CONTENT["text"], "attachments": [
        {"kind": "link", "url": "https://example.kz/card", "title": ""}]}
    fire(api, utc(2026, 3, 3, 1, 0))                               # again: nothing doubled
    assert await api.count(Push) == 2
    await patch(api, f"/sop-rules/{r['id']}", {"content": {"text": "new text", "attachments": []}})
    detail = await api.ok("get", f"/push-tasks/{task['id']}")
    assert detail["content"]["text"] == CONTENT["text"]           # the task keeps its copy
    fire(api, utc(2026, 3, 4, 1, 0))                               # the next day's; the first expires (24 h)
    newer, older = await tasks(api, **{"from": "2026-03-01", "to": "2026-03-31"})
    assert (newer["metrics"]["groups_pending"], older["metrics"]["groups_failed"]) == (2, 2)
    assert (await api.ok("get", "/pushes/count", as_=ANN)) == {"pending": 1}


async def test_dst_gap_fires_at_the_end_of_the_gap_and_the_preview_shows_it(api_any) -> None:
    api = api_any
    await group(api, "A1", "ann")
    api.clock.set(utc(2026, 3, 28, 12))
    r = await rule(api, "02:30", {"category": "A"}, timezone="Europe/Berlin")
    preview = await get(api, f"/sop-rules/{r['id']}/preview", days="2")
    assert [p["due_at"] for p in preview] == ["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"]
    assert preview[0]["groups"][0]["title"] == "A1"
    fire(api, utc(2026, 3, 29, 1, 0))
    [task] = await tasks(api, **{"from": "2026-03-28", "to": "2026-03-31"})
    assert task["due_at"] == "2026-03-29T01:00:00Z"               # 03:00 CEST: 02:30 did not exist


async def test_quota_the_fifth_push_of_a_month_fails_and_the_first_of_next_month_goes(api_any) -> None:
    api = api_any
    g = await group(api, "A1", "ann")
    api.clock.set(utc(2026, 3, 26, 12))
    await rule(api, "10:00", {"category": "A"})                   # Almaty 10:00 = 05:00 UTC
    for day in (27, 28, 29, 30, 31):
        fire(api, utc(2026, 3, day, 5))
        mine = (await get(api, "/pushes", ANN, owner="me", status="pending"))["items"]
        for push in mine:                                          # sent ones count towards the quota
            await api.ok("post", f"/pushes/{push['id']}/sent", as_=ANN)
    pushes = (await get(api, "/pushes", ANN, owner="me", per_page="10"))["items"]
    by_day = {p["due_at"][:10]: p for p in pushes}
    assert [by_day[f"2026-03-{d}"]["status"] for d in (27, 28, 29, 30)] == ["sent"] * 4
    assert (by_day["2026-03-31"]["status"], by_day["2026-03-31"]["reason"]) == ("failed", "quota")
    fire(api, utc(2026, 4, 1, 5))
    april = (await get(api, "/pushes", ANN, owner="me", status="pending"))["items"]
    assert "2026-04-01" in {p["due_at"][:10] for p in april}
    assert (await api.ok("get", f"/groups/{g['id']}"))["pushes_this_month"] == 1
    [failed] = await api.events("engagement.push.failed.v1")
    assert (failed.reason, failed.group_id, failed.owner) == ("quota", g["id"], "ann")


async def test_owner_left_transfer_retarget_and_who_marks_sent(api_any) -> None:
    api = api_any
    g1, g2 = await group(api, "A1", "ann"), await group(api, "A2", "bob")
    await rule(api, "10:00", {"category": "A"})
    fire(api, utc(2026, 3, 3, 5))
    [task] = await tasks(api)
    pushes = {p["group_id"]: p for p in (await api.ok("get", f"/push-tasks/{task['id']}"))["pushes"]}
    p1, p2 = pushes[g1["id"]], pushes[g2["id"]]
    assert (await api.post(f"/pushes/{p1['id']}/sent", as_=BOB)).status_code == 403
    assert (await api.post(f"/pushes/{p1['id']}/sent", as_=ANALYST)).status_code == 403
    api.clock.set(utc(2026, 3, 3, 5, 7))
    sent = await api.ok("post", f"/pushes/{p1['id']}/sent", as_=ANN)
    assert (sent["status"], sent["delay_seconds"]) == ("sent", 420.0)
    [evt] = await api.events("engagement.push.sent.v1")
    assert (evt.push_id, evt.owner, evt.mode, evt.channel_kind) == (p1["id"], "ann", "manual", "manual")

    await patch(api, f"/groups/{g2['id']}", {"owner": "cat"}, as_=SENIOR)   # transfer
    moved = (await api.ok("get", f"/push-tasks/{task['id']}"))["pushes"]
    assert {(p["owner"], p["status"], p["reason"]) for p in moved if p["group_id"] == g2["id"]} == {
        ("bob", "failed", "transferred")}
    assert (await api.post(f"/pushes/{p2['id']}/sent", as_=BOB)).status_code == 409
    assert (await api.post(f"/pushes/{p2['id']}/retarget", as_=ANN)).status_code == 403
    again = await api.ok("post", f"/pushes/{p2['id']}/retarget", as_=LEAD)
    assert (again["owner"], again["status"], again["reason"]) == ("cat", "pending", None)
    assert (await get(api, "/pushes/count", CAT, owner="me")) == {"pending": 1}

    await api.ok("put", "/staff/cat/owner", {"active": False, "full_name": "Cat"})   # cat leaves
    assert (await get(api, "/pushes/count", CAT, owner="me")) == {"pending": 0}
    fire(api, utc(2026, 3, 4, 5))
    [newer, _] = await tasks(api)
    reasons = {p["group_id"]: p["reason"] for p in (await api.ok("get", f"/push-tasks/{newer['id']}"))["pushes"]}
    assert reasons == {g1["id"]: None, g2["id"]: "owner_left"}
    assert [e.reason for e in await api.events("engagement.push.failed.v1")] == [
        "transferred", "owner_left", "owner_left"]
    assert (await api.put("/staff/cat/owner", {"active": True}, as_=SENIOR)).status_code == 403


async def test_the_eight_metrics_against_a_hand_count_and_the_reports(api_any) -> None:
    api = api_any
    groups = [await group(api, f"A{i}", owner) for i, owner in enumerate(["ann", "ann", "bob", "bob", "cat"])]
    await api.ok("put", "/staff/cat/owner", {"active": False})      # cat's group fails: owner_left
    await api.ok("put", "/push-settings", {"expire_after_hours": 48})
    await rule(api, "10:00", {"category": "A"})
    fire(api, utc(2026, 3, 3, 5))
    [task] = await tasks(api)
    pushes = {p["group_id"]: p for p in (await api.ok("get", f"/push-tasks/{task['id']}"))["pushes"]}
    api.clock.set(utc(2026, 3, 3, 5, 10))
    await api.ok("post", f"/pushes/{pushes[groups[0]['id']]['id']}/sent", as_=ANN)
    await api.ok("post", f"/pushes/{pushes[groups[1]['id']]['id']}/sent", as_=ANN)
    api.clock.set(utc(2026, 3, 3, 5, 30))
    await api.ok("post", f"/pushes/{pushes[groups[2]['id']]['id']}/sent", as_=BOB)
    # by hand: ann 2 sent (done); bob 1 sent + 1 pending (not done); cat 1 failed (neither)
    [task] = await tasks(api)
    assert task["metrics"] == {"owners_pending": 1, "owners_done": 1, "failed_tasks": 1, "groups_pending": 1,
                               "groups_sent": 3, "groups_failed": 1}
    detail = await api.ok("get", f"/push-tasks/{task['id']}", as_=ANALYST)
    assert detail["owners"] == [{"owner": "ann", "pending": 0, "sent": 2, "failed": 0},      # metric 7
                                {"owner": "bob", "pending": 1, "sent": 1, "failed": 0},
                                {"owner": "cat", "pending": 0, "sent": 0, "failed": 1}]
    assert sorted((p["group_title"], p["status"]) for p in detail["pushes"]) == [              # metric 8
        ("A0", "sent"), ("A1", "sent"), ("A2", "sent"), ("A3", "pending"), ("A4", "failed")]
    fire(api, utc(2026, 3, 4, 5))                                   # a second task, nothing done yet
    [week] = await get(api, "/push-reports", ANALYST, to="2026-03-08", group_by="week", **{"from": "2026-03-02"})
    assert week == {"period": "2026-03-02", "tasks": 2, "owners_pending": 3, "owners_done": 1, "failed_tasks": 2,
                    "groups_pending": 5, "groups_sent": 3, "groups_failed": 2}
    owners = {o["owner"]: o for o in await get(api, "/push-reports/owners", ANALYST, to="2026-03-31",
                                               **{"from": "2026-03-01"})}
    assert (owners["ann"]["pushes"], owners["ann"]["completion_rate"], owners["ann"]["median_delay_seconds"]) == (
        4, 0.5, 600.0)
    assert (owners["bob"]["completion_rate"], owners["bob"]["median_delay_seconds"]) == (0.25, 1800.0)
    csv = await api.get("/push-reports/owners", ANALYST, **{"from": "2026-03-01", "to": "2026-03-31",
                                                            "format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0] == "owner,pushes,sent,failed,pending,completion_rate,median_delay_seconds"
    assert (await api.put("/push-settings", {"monthly_quota": 5}, as_=ANALYST)).status_code == 403
    mine = await api.ok("get", "/push-tasks", as_=BOB)
    assert [(t["metrics"]["groups_pending"], t["metrics"]["groups_sent"]) for t in mine] == [(2, 0), (1, 1)]


async def test_calendar_entries_expiry_and_bad_input(api_any) -> None:
    api = api_any
    g = await group(api, "VIP", "ann", category="C", tags=["vip"])
    await api.ok("put", "/push-settings", {"monthly_quota": 4, "expire_after_hours": 2})
    entry = await api.ok("post", "/calendar", {"at": "2026-03-08T18:00:00+05:00", "target": {"tags": ["vip"]},
                                               "content": {"text": "8 марта!", "attachments": []},
                                               "title": "8 March"}, status=201)
    gone = await api.ok("post", "/calendar", {"at": "2026-03-09T18:00:00+05:00", "target": {"category": "C"},
                                              "content": {"text": "x", "attachments": []}}, status=201)
    assert [e["id"] for e in await get(api, "/calendar", month="2026-03")] == [entry["id"], gone["id"]]
    assert (await api.client.delete(f"/api/engagement/calendar/{gone['id']}",
                                    headers=api.headers(LEAD))).status_code == 204
    fire(api, utc(2026, 3, 8, 13))
    [task] = await tasks(api)
    assert (task["source"], task["name"], task["metrics"]["groups_pending"]) == ("calendar", "8 March", 1)
    fire(api, utc(2026, 3, 8, 15))                                 # two hours later: expired
    [push] = (await api.ok("get", f"/push-tasks/{task['id']}"))["pushes"]
    assert (push["group_id"], push["status"], push["reason"]) == (g["id"], "failed", "expired")
    fire(api, utc(2026, 3, 9, 14))
    assert len(await tasks(api)) == 1                              # the deleted entry made nothing
    bad = await api.post("/sop-rules", {"name": "x", "target": {}, "time": "25:00", "content": CONTENT})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "target"
    bad = await api.post("/sop-rules", {"name": "x", "target": {"category": "A"}, "time": "25:00",
                                        "content": CONTENT})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "time"
    assert bad.json()["errors"][0]["code"] == "time.format"                  # the gateway translates the code
    bad = await api.post("/sop-rules", {"name": "x", "target": {"category": "A"}, "time": "09:00",
                                        "timezone": "Mars/Base", "content": CONTENT})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "timezone"
    bad = await api.post("/calendar", {"at": "2026-03-01T10:00:00+05:00", "target": {"category": "A"},
                                       "content": CONTENT})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "at"
    assert (await api.post("/groups", {"external_id": "x", "title": "x"}, as_=ANN)).status_code == 403


async def test_files_upload_and_owners_download_them(api_any) -> None:
    api = api_any
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 100
    response = await api.client.post("/api/engagement/sop-files", files={"file": ("poster.png", png, "image/png")},
                                     headers=api.headers(LEAD))
    assert response.status_code == 201, response.text
    meta = response.json()
    assert (meta["name"], meta["content_type"], meta["size"]) == ("poster.png", "image/png", len(png))
    got = await api.client.get(f"/api/engagement/sop-files/{meta['file_id']}", headers=api.headers(ANN))
    assert got.status_code == 200 and got.content == png
    assert got.headers["content-disposition"] == 'attachment; filename="poster.png"'
    exe = await api.client.post("/api/engagement/sop-files", files={"file": ("x.exe", b"MZ", "application/x-exe")},
                                headers=api.headers(LEAD))
    assert exe.status_code == 422 and exe.json()["errors"][0]["field"] == "file"
    r = await rule(api, "10:00", {"category": "A"}, content={"text": "", "attachments": [
        {"kind": "image", "file_id": meta["file_id"]}]})
    assert r["content"]["attachments"][0]["name"] == "poster.png"


async def test_groups_filters_and_bulk_changes(api_any) -> None:
    api = api_any
    g1 = await group(api, "Alpha club", "ann", tags=["kz"])
    g2 = await group(api, "Beta club", "bob", category="B")
    assert (await get(api, "/groups", category="A"))["total"] == 1
    assert [g["title"] for g in (await get(api, "/groups", tag="kz"))["items"]] == ["Alpha club"]
    assert (await get(api, "/groups", q="beta"))["items"][0]["id"] == g2["id"]
    await api.ok("post", "/groups/bulk", {"ids": [g1["id"], g2["id"]], "category": "C", "owner": "cat",
                                          "add_tags": ["vip"], "remove_tags": ["kz"]}, as_=SENIOR)
    items = (await get(api, "/groups", owner="cat"))["items"]
    assert {(g["category"], tuple(g["tags"])) for g in items} == {("C", ("vip",))} and len(items) == 2
    dup = await api.post("/groups", {"external_id": "Alpha club", "title": "again"})
    assert dup.status_code == 422 and dup.json()["errors"][0]["field"] == "external_id"


async def test_pause_resume_and_an_edit_replace_the_rules_timer(api_any) -> None:
    api = api_any
    await group(api, "A1", "ann")
    r = await rule(api, "10:00", {"category": "A"})
    assert r["next_due_at"] == "2026-03-03T05:00:00Z"
    paused = await api.ok("post", f"/sop-rules/{r['id']}/pause", as_=SENIOR)
    assert (paused["paused"], paused["next_due_at"]) == (True, None)
    fire(api, utc(2026, 3, 3, 5))
    assert await api.count(PushTask) == 0                          # paused: the timer was cancelled
    resumed = await api.ok("post", f"/sop-rules/{r['id']}/resume")
    assert resumed["next_due_at"] == "2026-03-04T05:00:00Z"        # from now on, no catch-up of the pause
    api.clock.set(utc(2026, 3, 3, 12))                             # 17:00 local: today's 11:00 has passed
    await patch(api, f"/sop-rules/{r['id']}", {"time": "11:00"})
    fire(api, utc(2026, 3, 4, 5))
    assert await api.count(PushTask) == 0                          # the 10:00 timer of the old version
    fire(api, utc(2026, 3, 4, 6))
    [task] = await tasks(api)
    assert task["due_at"] == "2026-03-04T06:00:00Z"
    assert (await api.post(f"/sop-rules/{r['id']}/pause", as_=ANALYST)).status_code == 403
    listed = await api.ok("get", "/sop-rules", as_=ANALYST)
    assert [x["next_due_at"] for x in listed] == ["2026-03-05T06:00:00Z"]
