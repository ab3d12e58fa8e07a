"""The group SOP API under /api/engagement (issue 13, SOP_API.md): groups, the owners' roster, SOP rules, the
calendar, attachments and settings. Pushes, tasks and reports are in sop_push_controllers.py.

Who (SOP_API.md "Roles"): the lead (and integration) everything; senior agents edit groups, rules and the
calendar and re-target; analysts read everything and change nothing; owners (any staff role that may own a
group) read groups and download attachments, and see and mark only their own pushes.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Response, delete, get, patch, post, put
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from shared.auth import Actor
from shared.errors import NotFound
from shared.service import Runtime
from sqlalchemy.ext.asyncio import AsyncSession

from engagement import access, sop_groups, sop_services
from engagement.sop_models import OwnerRoster, SopFile, SopRule
from shared import messages as M

ANALYST = "analyst"
EDITORS = (access.LEAD, access.INTEGRATION, access.SENIOR)
READERS = (*EDITORS, ANALYST)
OWNER_ROLES = ("care_agent", "senior_agent", "growth", "content_manager", "ad_manager")
STAFF = (*READERS, *OWNER_ROLES)
LEADS = (access.LEAD, access.INTEGRATION)


def _tz(runtime: Runtime) -> Any:
    return runtime.settings.calendar.tz


# ------------------------------------------------------------------ roster

@put("/staff/{login:str}/owner")
async def put_owner(session: AsyncSession, actor: Actor, runtime: Runtime, login: FromPath[str],
                    data: sop_groups.OwnerIn) -> dict[str, Any]:
    access.require_roles(actor, *LEADS)
    return sop_groups.owner_out(await sop_groups.put_owner(session, login, data, runtime.clock))


@get("/owners")
async def list_owners(session: AsyncSession, actor: Actor) -> list[dict[str, Any]]:
    """The owners' roster: who works here for the group SOP, and the Telegram chat their reminders go to."""
    access.require_roles(actor, *LEADS, access.SENIOR)
    return await sop_groups.list_owners(session)


@get("/staff/{login:str}/owner")
async def get_owner(session: AsyncSession, actor: Actor, login: FromPath[str]) -> dict[str, Any]:
    """An owner's roster entry (active, linked Telegram chat); 404 for someone never put on the roster."""
    access.require_roles(actor, *LEADS, access.SENIOR)
    row = await session.get(OwnerRoster, login)
    if row is None:
        raise M.refusal(NotFound, None, M.OWNER_NOT_ON_ROSTER)
    return sop_groups.owner_out(row)


# ------------------------------------------------------------------ groups (EN-8)

@post("/groups", status_code=201)
async def create_group(session: AsyncSession, actor: Actor, runtime: Runtime,
                       data: sop_groups.GroupIn) -> dict[str, Any]:
    access.require_roles(actor, *EDITORS)
    return sop_groups.group_out(await sop_groups.create_group(session, actor, data, runtime.clock))


@get("/groups")
async def list_groups(session: AsyncSession, actor: Actor, runtime: Runtime, category: str | None = None,
                      tag: str | None = None, owner: str | None = None, q: str | None = None,
                      active: bool | None = None, page: int = 1, per_page: int = 50) -> dict[str, Any]:
    access.require_roles(actor, *STAFF)
    page, per_page = max(1, page), max(1, min(per_page, 500))
    groups, total = await sop_groups.list_groups(session, category=category, tag=tag, owner=owner, q=q,
                                                 active=active, page=page, per_page=per_page)
    counts = await sop_groups.month_counts(session, [g.id for g in groups], runtime.clock.now(), _tz(runtime))
    return {"items": [sop_groups.group_out(g, counts.get(g.id, 0)) for g in groups], "total": total}


@get("/groups/{group_id:str}")
async def get_group(session: AsyncSession, actor: Actor, runtime: Runtime, group_id: FromPath[str]) -> dict:
    access.require_roles(actor, *STAFF)
    group = await sop_groups.get_group(session, group_id)
    counts = await sop_groups.month_counts(session, [group.id], runtime.clock.now(), _tz(runtime))
    return sop_groups.group_out(group, counts.get(group.id, 0))


@patch("/groups/{group_id:str}")
async def patch_group(session: AsyncSession, actor: Actor, runtime: Runtime, group_id: FromPath[str],
                      data: sop_groups.GroupPatchIn) -> dict[str, Any]:
    access.require_roles(actor, *EDITORS)
    group = await sop_groups.patch_group(session, actor, await sop_groups.get_group(session, group_id), data,
                                         runtime.clock)
    counts = await sop_groups.month_counts(session, [group.id], runtime.clock.now(), _tz(runtime))
    return sop_groups.group_out(group, counts.get(group.id, 0))


@post("/groups/bulk", status_code=200)
async def bulk_groups(session: AsyncSession, actor: Actor, runtime: Runtime,
                      data: sop_groups.BulkIn) -> dict[str, Any]:
    access.require_roles(actor, *EDITORS)
    return {"updated": await sop_groups.bulk(session, actor, data, runtime.clock)}


# ------------------------------------------------------------------ rules (EN-9)

@post("/sop-rules", status_code=201)
async def create_rule(session: AsyncSession, actor: Actor, runtime: Runtime,
                      data: sop_services.RuleIn) -> dict[str, Any]:
    access.require_roles(actor, *EDITORS)
    rule = await sop_services.create_rule(session, actor, data, _tz(runtime), runtime.clock)
    return sop_services.rule_out(rule, sop_services.next_due(rule, _tz(runtime), runtime.clock))


@get("/sop-rules")
async def list_rules(session: AsyncSession, actor: Actor, runtime: Runtime) -> list[dict[str, Any]]:
    access.require_roles(actor, *READERS)
    from sqlalchemy import select

    rules = (await session.execute(select(SopRule).order_by(SopRule.name, SopRule.id))).scalars()
    return [sop_services.rule_out(r, sop_services.next_due(r, _tz(runtime), runtime.clock)) for r in rules]


@get("/sop-rules/{rule_id:str}")
async def get_rule(session: AsyncSession, actor: Actor, runtime: Runtime, rule_id: FromPath[str]) -> dict:
    access.require_roles(actor, *READERS)
    rule = await sop_services.get_rule(session, rule_id)
    return sop_services.rule_out(rule, sop_services.next_due(rule, _tz(runtime), runtime.clock))


@patch("/sop-rules/{rule_id:str}")
async def patch_rule(session: AsyncSession, actor: Actor, runtime: Runtime, rule_id: FromPath[str],
                     data: sop_services.RulePatchIn) -> dict[str, Any]:
    access.require_roles(actor, *EDITORS)
    rule = await sop_services.patch_rule(session, await sop_services.get_rule(session, rule_id), data,
                                         _tz(runtime), runtime.clock)
    return sop_services.rule_out(rule, sop_services.next_due(rule, _tz(runtime), runtime.clock))


async def _pause(session: AsyncSession, actor: Actor, runtime: Runtime, rule_id: str, paused: bool) -> dict:
    access.require_roles(actor, *EDITORS)
    rule = await sop_services.get_rule(session, rule_id)
    if rule.paused != paused:
        rule.paused = paused
        await sop_services.replan(session, rule, _tz(runtime), runtime.clock)
    return sop_services.rule_out(rule, sop_services.next_due(rule, _tz(runtime), runtime.clock))


@post("/sop-rules/{rule_id:str}/pause", status_code=200)
async def pause_rule(session: AsyncSession, actor: Actor, runtime: Runtime, rule_id: FromPath[str]) -> dict:
    return await _pause(session, actor, runtime, rule_id, True)


@post("/sop-rules/{rule_id:str}/resume", status_code=200)
async def resume_rule(session: AsyncSession, actor: Actor, runtime: Runtime, rule_id: FromPath[str]) -> dict:
    return await _pause(session, actor, runtime, rule_id, False)


@get("/sop-rules/{rule_id:str}/preview")
async def preview_rule(session: AsyncSession, actor: Actor, runtime: Runtime, rule_id: FromPath[str],
                       days: int = 14) -> list[dict[str, Any]]:
    access.require_roles(actor, *READERS)
    return await sop_services.preview(session, await sop_services.get_rule(session, rule_id), days, _tz(runtime),
                                      runtime.clock)


# ------------------------------------------------------------------ calendar (EN-10)

@post("/calendar", status_code=201)
async def create_entry(session: AsyncSession, actor: Actor, runtime: Runtime,
                       data: sop_services.CalendarIn) -> dict[str, Any]:
    access.require_roles(actor, *EDITORS)
    return sop_services.entry_out(await sop_services.create_entry(session, actor, data, runtime.clock))


@get("/calendar")
async def month_calendar(session: AsyncSession, actor: Actor, runtime: Runtime,
                         month: str | None = None) -> list[dict[str, Any]]:
    access.require_roles(actor, *READERS)
    month = month or runtime.clock.now().astimezone(_tz(runtime)).strftime("%Y-%m")
    return [sop_services.entry_out(e) for e in await sop_services.month_entries(session, month, _tz(runtime))]


@delete("/calendar/{entry_id:str}", status_code=204)
async def delete_entry(session: AsyncSession, actor: Actor, runtime: Runtime, entry_id: FromPath[str]) -> None:
    access.require_roles(actor, *EDITORS)
    await sop_services.delete_entry(session, entry_id, runtime.clock)


# ------------------------------------------------------------------ files and settings

@post("/sop-files", status_code=201, request_max_body_size=sop_services.MAX_FILE_BYTES + 1024 * 1024)
async def upload_file(session: AsyncSession, actor: Actor, runtime: Runtime,
                      data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]) -> dict:
    access.require_roles(actor, *EDITORS)
    upload = data.get("file")
    if not isinstance(upload, UploadFile):
        raise M.error("file", M.UPLOAD_REQUIRED)
    content_type = (upload.content_type or "").split(";")[0].strip().lower()
    row = await sop_services.add_file(session, actor, (upload.filename or "file").rsplit("/", 1)[-1],
                                      content_type, await upload.read(), runtime.clock)
    return sop_services.file_out(row)


@get("/sop-files/{file_id:str}")
async def download_file(session: AsyncSession, actor: Actor, file_id: FromPath[str]) -> Response:
    access.require_roles(actor, *STAFF)
    row = await session.get(SopFile, file_id)
    if row is None:
        raise M.refusal(NotFound, None, M.SOP_FILE_NOT_FOUND)
    safe = row.name.replace('"', "").replace("\r", "").replace("\n", "")
    return Response(row.data, media_type=row.content_type,
                    headers={"Content-Disposition": f'attachment; filename="{safe}"',
                             "X-Content-Type-Options": "nosniff"})


@get("/push-settings")
async def get_settings(session: AsyncSession, actor: Actor, runtime: Runtime) -> dict[str, Any]:
    access.require_roles(actor, *READERS)
    return sop_services.settings_out(await sop_groups.settings_row(session, runtime.clock))


@put("/push-settings")
async def put_settings(session: AsyncSession, actor: Actor, runtime: Runtime,
                       data: sop_services.SettingsIn) -> dict[str, Any]:
    access.require_roles(actor, *LEADS)
    return sop_services.settings_out(await sop_services.put_settings(session, actor, data, runtime.clock))


sop_routes = [put_owner, get_owner, list_owners, create_group, list_groups, bulk_groups, get_group, patch_group, create_rule, list_rules,
              get_rule, patch_rule, pause_rule, resume_rule, preview_rule, create_entry, month_calendar,
              delete_entry, upload_file, download_file, get_settings, put_settings]
