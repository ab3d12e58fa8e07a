"""The group SOP's pushes, push tasks and reports under /api/engagement (issue 13, EN-11…EN-13).

Owners see and mark only their own pushes (`owner=me`); the lead and senior agents see anyone's; analysts read
everything. `POST /pushes/{id}/sent` is the owner's or the lead's: anyone else 403.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Response, get, post
from litestar.params import FromPath, Parameter
from shared.auth import Actor
from shared.errors import Forbidden
from shared.service import Runtime
from sqlalchemy.ext.asyncio import AsyncSession

from engagement import access, sop_reports, sop_services
from engagement.sop_controllers import EDITORS, OWNER_ROLES, READERS, STAFF
from engagement.sop_models import Group
from shared import messages as M

PUSH_COLUMNS = ["period", "tasks", "owners_pending", "owners_done", "failed_tasks", "groups_pending",
                "groups_sent", "groups_failed"]
OWNER_COLUMNS = ["owner", "pushes", "sent", "failed", "pending", "completion_rate", "median_delay_seconds"]


def _owner_of(actor: Actor, owner: str | None) -> str | None:
    """`me` is the actor; an owner who is not a reader sees only their own pushes."""
    if owner == "me":
        return actor.login
    if actor.role in READERS:
        return owner or None
    if owner and owner != actor.login:
        raise M.refusal(Forbidden, None, M.OWN_PUSHES)
    return actor.login


def _range(runtime: Runtime, from_: str | None, to: str | None) -> Any:
    tz = runtime.settings.calendar.tz
    return sop_reports.day_range(from_, to, runtime.clock.now().astimezone(tz).date(), tz)


def _csv(rows: list[dict[str, Any]], columns: list[str], name: str) -> Response:
    return Response(sop_reports.to_csv(rows, columns), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


@get("/pushes")
async def my_pushes(session: AsyncSession, actor: Actor, owner: str | None = "me", status: str | None = None,
                    page: int = 1, per_page: int = 50) -> dict[str, Any]:
    access.require_roles(actor, *STAFF)
    if status and status not in ("pending", "sent", "failed"):
        raise M.error("status", M.SOP_STATUS)
    who = _owner_of(actor, owner)
    if who is None:
        raise M.error("owner", M.SOP_CHOOSE_OWNER)
    return await sop_reports.owner_pushes(session, who, status, max(1, page), max(1, min(per_page, 200)))


@get("/pushes/count")
async def push_count(session: AsyncSession, actor: Actor, owner: str | None = "me") -> dict[str, int]:
    access.require_roles(actor, *STAFF)
    who = _owner_of(actor, owner) or actor.login
    return {"pending": await sop_reports.pending_count(session, who)}


async def _push_view(session: AsyncSession, push: Any) -> dict[str, Any]:
    group = await session.get(Group, push.group_id)
    return sop_reports.push_out(push, group.title if group else "")


@post("/pushes/{push_id:str}/sent", status_code=200)
async def mark_sent(session: AsyncSession, actor: Actor, runtime: Runtime, push_id: FromPath[str]) -> dict:
    access.require_roles(actor, *STAFF)
    return await _push_view(session, await sop_services.mark_sent(session, actor, push_id, runtime.clock))


@post("/pushes/{push_id:str}/retarget", status_code=200)
async def retarget(session: AsyncSession, actor: Actor, runtime: Runtime, push_id: FromPath[str]) -> dict:
    access.require_roles(actor, *EDITORS)
    return await _push_view(session, await sop_services.retarget(session, push_id, runtime.clock))


@get("/push-tasks")
async def list_tasks(session: AsyncSession, actor: Actor, runtime: Runtime,
                     from_: Annotated[str | None, Parameter(query="from")] = None, to: str | None = None,
                     owner: str | None = None) -> list[dict[str, Any]]:
    access.require_roles(actor, *STAFF)
    start, end = _range(runtime, from_, to)
    who = _owner_of(actor, owner) if (owner or actor.role not in READERS) else None
    return await sop_reports.list_tasks(session, start, end, who)


@get("/push-tasks/{task_id:str}")
async def task_detail(session: AsyncSession, actor: Actor, task_id: FromPath[str]) -> dict[str, Any]:
    access.require_roles(actor, *STAFF)
    return await sop_reports.task_detail(session, task_id, None if actor.role in READERS else actor.login)


@get("/push-reports")
async def period_report(session: AsyncSession, actor: Actor, runtime: Runtime,
                        from_: Annotated[str | None, Parameter(query="from")] = None, to: str | None = None,
                        group_by: str = "day", format_: Annotated[str | None, Parameter(query="format")] = None
                        ) -> Any:
    access.require_roles(actor, *READERS)
    start, end = _range(runtime, from_, to)
    rows = await sop_reports.period_report(session, start, end, group_by, runtime.settings.calendar.tz)
    return _csv(rows, PUSH_COLUMNS, "push-report") if format_ == "csv" else rows


@get("/push-reports/owners")
async def owners_report(session: AsyncSession, actor: Actor, runtime: Runtime,
                        from_: Annotated[str | None, Parameter(query="from")] = None, to: str | None = None,
                        format_: Annotated[str | None, Parameter(query="format")] = None) -> Any:
    access.require_roles(actor, *READERS, *OWNER_ROLES)
    start, end = _range(runtime, from_, to)
    rows = await sop_reports.owners_report(session, start, end)
    if actor.role not in READERS:
        rows = [r for r in rows if r["owner"] == actor.login]
    return _csv(rows, OWNER_COLUMNS, "push-owners") if format_ == "csv" else rows


push_routes = [my_pushes, push_count, mark_sent, retarget, list_tasks, task_detail, period_report, owners_report]
