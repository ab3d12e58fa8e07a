"""Thin HTTP handlers: translate a request into a domain operation (services.py, plans.py) and back.

Staff routes are under /api/content (bearer token, shared/auth.py) and act for `actor`; role checks
are in access.py. The client's approval routes are public — the signed token is the credential — at
`/api/content/approvals/{token}` (the issue's contract, reached through the gateway's /api proxy) and at
`/public/content/approvals/{token}` (the gateway's convention for its own public pages). One request =
one transaction: a 4xx raised anywhere rolls back everything the request wrote.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from litestar import Response, get, patch, post, put
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, JSONBody
from shared.auth import Actor
from shared.service import Runtime
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from content import access, cadence, client_requests, plans, services, stats
from content.models import Deadline, RuleSetting
from content.plans import iso
from content.rules import RuleValues
from content.schemas import (
    ClientRequestIn,
    DecisionIn,
    Errors,
    ItemIn,
    ItemPatchIn,
    MaterialsIn,
    PublishedIn,
    RequestAnswerIn,
    ResolveIn,
    SettingsIn,
    SubmitIn,
)
from shared import messages as M

CLIENT = Actor(login="client", role="client")


def ctx_of(session: AsyncSession, runtime: Runtime, actor: Actor) -> services.Ctx:
    return services.Ctx(session, runtime.clock, runtime.settings, actor, runtime.scheduler.handlers)


def deadline_view(d: Deadline) -> dict[str, Any]:
    return {"id": d.id, "deal_id": d.deal_id, "plan_id": d.plan_id, "rule": d.rule, "owner": d.owner,
            "due_at": iso(d.due_at), "state": d.state, "resolved_at": iso(d.resolved_at),
            "waived_by": d.waived_by, "reason": d.reason}


# ============================================================================ plans (CO-1…CO-3)

@get("/deals/{deal_id:str}/plans")
async def deal_plans(deal_id: str, session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime],
                     actor: NamedDependency[Actor]) -> list[dict[str, Any]]:
    """Every plan of the deal (CO-1), in period then number order, with its items and comments."""
    ctx = ctx_of(session, runtime, actor)
    account = await services.load_account(ctx, deal_id)
    await services.settle(ctx, account.deal_id)
    return await plans.deal_plans(ctx, deal_id)


@get("/deals/{deal_id:str}/deadlines")
async def deal_deadlines(deal_id: str, session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime],
                         actor: NamedDependency[Actor]) -> list[dict[str, Any]]:
    """The deal's CO-3 deadlines (CAL-3): met, breached, waived or open."""
    ctx = ctx_of(session, runtime, actor)
    account = await services.load_account(ctx, deal_id)
    await services.settle(ctx, account.deal_id)
    return [deadline_view(d) for d in await services.deadlines_of(session, deal_id)]


@post("/deals/{deal_id:str}/materials-received", status_code=200)
async def materials_received(deal_id: str, data: JSONBody[MaterialsIn], session: NamedDependency[AsyncSession],
                             runtime: NamedDependency[Runtime], actor: NamedDependency[Actor]) -> list[dict[str, Any]]:
    """CO-2: the materials are in (the button): plan 1 becomes due, if the questionnaire did not already."""
    ctx = ctx_of(session, runtime, actor)
    account = await services.load_account(ctx, deal_id)
    access.require_change(actor, account)
    at = services.fact_time(ctx, data.at)
    await services.settle(ctx, deal_id, before=at)
    await services.materials_received(ctx, account, at)
    await services.settle(ctx, deal_id)
    return await plans.deal_plans(ctx, deal_id)


@get("/plans/{plan_id:str}")
async def get_plan(plan_id: str, session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime],
                   actor: NamedDependency[Actor]) -> dict[str, Any]:
    ctx = ctx_of(session, runtime, actor)
    _, plan = await plans.load_plan(ctx, plan_id, change=False)
    return await plans.one_plan_view(ctx, plan)


@post("/plans/{plan_id:str}/items", status_code=201)
async def post_item(plan_id: str, data: JSONBody[ItemIn], session: NamedDependency[AsyncSession],
                    runtime: NamedDependency[Runtime], actor: NamedDependency[Actor]) -> dict[str, Any]:
    """A post, reel or story on one of the plan's days (a date outside them → 422 naming `date`)."""
    ctx = ctx_of(session, runtime, actor)
    account, plan = await plans.load_plan(ctx, plan_id, change=True)
    return plans.item_view(await plans.add_item(ctx, account, plan, data))


@patch("/items/{item_id:str}")
async def patch_item(item_id: str, data: JSONBody[ItemPatchIn], session: NamedDependency[AsyncSession],
                     runtime: NamedDependency[Runtime], actor: NamedDependency[Actor]) -> dict[str, Any]:
    ctx = ctx_of(session, runtime, actor)
    account, plan, item = await plans.load_item(ctx, item_id)
    return plans.item_view(await plans.patch_item(ctx, account, plan, item, data))


@post("/plans/{plan_id:str}/submit", status_code=200)
async def submit_plan(plan_id: str, session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime],
                      actor: NamedDependency[Actor], data: JSONBody[SubmitIn | None] = None) -> dict[str, Any]:
    """CO-4: a new approval round and the client's signed link; CO-3: the first one meets the deadline."""
    ctx = ctx_of(session, runtime, actor)
    account, plan = await plans.load_plan(ctx, plan_id, change=True)
    at = services.fact_time(ctx, data.at if data else None)
    result = await plans.submit(ctx, account, plan, at)
    await services.settle(ctx, account.deal_id)
    return result


@post("/plans/{plan_id:str}/link", status_code=200)
async def plan_link(plan_id: str, session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime],
                    actor: NamedDependency[Actor]) -> dict[str, Any]:
    """CO-4: a new signed link to the round that waits for the client."""
    ctx = ctx_of(session, runtime, actor)
    _, plan = await plans.load_plan(ctx, plan_id, change=True)
    return await plans.fresh_link(ctx, plan)


@post("/plans/{plan_id:str}/comments/{comment_id:str}/resolve", status_code=200)
async def resolve_comment(plan_id: str, comment_id: str, session: NamedDependency[AsyncSession],
                          runtime: NamedDependency[Runtime], actor: NamedDependency[Actor],
                          data: JSONBody[ResolveIn | None] = None) -> dict[str, Any]:
    ctx = ctx_of(session, runtime, actor)
    _, plan = await plans.load_plan(ctx, plan_id, change=True)
    return plans.comment_view(await plans.resolve_comment(ctx, plan, comment_id, data.reply if data else None))


@post("/items/{item_id:str}/published", status_code=200)
async def item_published(item_id: str, data: JSONBody[PublishedIn], session: NamedDependency[AsyncSession],
                         runtime: NamedDependency[Runtime], actor: NamedDependency[Actor]) -> dict[str, Any]:
    """Publishing by hand: the item went out at `published_at` (a manager: now, give or take a few minutes;
    only the lead or an integration may backdate). CO-2 gate → 409; the event goes through the outbox."""
    ctx = ctx_of(session, runtime, actor)
    errors = Errors()
    errors.require("published_at", data.published_at)
    errors.raise_if_any()
    account, plan, item = await plans.load_item(ctx, item_id)
    rv = await services.rule_values(session, ctx.now)
    published_at = services.fact_time(ctx, data.published_at, "published_at", rv.publish_grace_minutes)
    await plans.mark_published(ctx, account, plan, item, published_at, data.permalink)
    await services.settle(ctx, account.deal_id)
    return plans.item_view(item)


# ============================================================================ CO-6 the client's own publications

@get("/deals/{deal_id:str}/requests")
async def deal_requests(deal_id: str, session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime],
                        actor: NamedDependency[Actor]) -> list[dict[str, Any]]:
    ctx = ctx_of(session, runtime, actor)
    await services.load_account(ctx, deal_id)
    return [client_requests.request_view(r) for r in await client_requests.requests_of(session, deal_id)]


@post("/requests/{request_id:str}/answer", status_code=200)
async def answer_request(request_id: str, data: JSONBody[RequestAnswerIn], session: NamedDependency[AsyncSession],
                         runtime: NamedDependency[Runtime], actor: NamedDependency[Actor]) -> dict[str, Any]:
    """CO-6: approve, or decline with a reason (422 naming `reason` without one)."""
    ctx = ctx_of(session, runtime, actor)
    return client_requests.request_view(await client_requests.answer(ctx, request_id, data))


# ============================================================================ CO-7 weekly statistics

@post("/deals/{deal_id:str}/stats/import", status_code=201)
async def stats_import(deal_id: str, session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime],
                       actor: NamedDependency[Actor],
                       data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]) -> Response:
    """Multipart field `file`: the platform's insights export (CSV). 201 with the rows read and the per-row
    errors; the same file again → 200 with the same import (nothing written twice)."""
    ctx = ctx_of(session, runtime, actor)
    account = await services.load_account(ctx, deal_id)
    access.require_change(actor, account)
    upload = data.get("file")
    if not isinstance(upload, UploadFile):

        raise M.error("file", M.UPLOAD_CSV_REQUIRED)
    job, repeated = await stats.import_csv(ctx, account, upload.filename or "insights.csv", await upload.read())
    return Response(stats.import_view(job, repeated), status_code=200 if repeated else 201)


@put("/deals/{deal_id:str}/stats/weeks/{week_start:str}")
async def stats_week(deal_id: str, week_start: str, data: JSONBody[dict[str, Any]],
                     session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime],
                     actor: NamedDependency[Actor]) -> dict[str, Any]:
    """Manual entry of a week's figures (`likes`, `comments`, `saves`, `reach`, `followers`)."""
    ctx = ctx_of(session, runtime, actor)
    account = await services.load_account(ctx, deal_id)
    access.require_change(actor, account)
    week = cadence.parse_day(week_start, ctx.now, ctx, field="week_start")
    await stats.enter_week(ctx, account, week, data)
    await session.flush()
    return next(w for w in await stats.weeks(ctx, account, 1, until=week))


@get("/deals/{deal_id:str}/stats")
async def stats_weeks(deal_id: str, session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime],
                      actor: NamedDependency[Actor], weeks: int = 8, until: date | None = None) -> list[dict[str, Any]]:
    """The last `weeks` weeks (Monday-based, up to this week or `until`'s): figures, engagement rate
    (interactions / reach) and the change from the week before."""
    ctx = ctx_of(session, runtime, actor)
    account = await services.load_account(ctx, deal_id)
    return await stats.weeks(ctx, account, weeks, until)


@post("/deals/{deal_id:str}/stats/report-link", status_code=201)
async def stats_report_link(deal_id: str, session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime],
                            actor: NamedDependency[Actor], weeks: int = 4, until: date | None = None) -> dict[str, Any]:
    """CO-7: a signed link to the weekly report for the client (no login), on the gateway."""
    ctx = ctx_of(session, runtime, actor)
    account = await services.load_account(ctx, deal_id)
    access.require_change(actor, account)
    return stats.report_link(ctx, account, weeks, until)


# ============================================================================ CO-5 cadence

@get("/cadence")
async def get_cadence(session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime],
                      actor: NamedDependency[Actor], date: str | None = None) -> list[dict[str, Any]]:
    """The "Today" board: every current client (a manager: their own) on `date` (default today, local):
    feed done, stories due / done, and what was missed once the day's check time has come."""
    ctx = ctx_of(session, runtime, actor)
    return await cadence.board(ctx, cadence.parse_day(date, ctx.now, ctx))


# ============================================================================ settings

@get("/settings")
async def get_settings(session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime],
                       actor: NamedDependency[Actor], at: datetime | None = None) -> dict[str, Any]:
    if actor.role not in (access.LEAD, access.INTEGRATION, access.ANALYST):
        access.require_lead(actor)
    moment = at or runtime.clock.now()
    values = await services.rule_values(session, moment)
    rows = (await session.execute(select(RuleSetting).order_by(RuleSetting.effective_from, RuleSetting.id))).scalars()
    return {"at": iso(moment), "values": {k: getattr(values, k) for k in RuleValues.names()},
            "defaults": {k: getattr(RuleValues(), k) for k in RuleValues.names()},
            "history": [{"key": r.key, "value": r.value, "effective_from": iso(r.effective_from),
                         "created_by": r.created_by, "created_at": iso(r.created_at)} for r in rows]}


@put("/settings")
async def put_settings(data: JSONBody[SettingsIn], session: NamedDependency[AsyncSession],
                       runtime: NamedDependency[Runtime], actor: NamedDependency[Actor]) -> dict[str, Any]:
    access.require_lead(actor)
    errors = Errors()
    errors.require("values", data.values)
    errors.aware("effective_from", data.effective_from)
    errors.raise_if_any()
    ctx = ctx_of(session, runtime, actor)
    effective = data.effective_from or ctx.now
    await services.put_settings(ctx, data.values, effective)
    await session.flush()
    values = await services.rule_values(session, max(effective, ctx.now))
    return {"effective_from": iso(effective), "values": {k: getattr(values, k) for k in RuleValues.names()}}


# ============================================================================ public: the client's signed link (CO-4)

APPROVAL_PATHS = ["/api/content/approvals/{token:str}", "/public/content/approvals/{token:str}"]


@get(APPROVAL_PATHS)
async def public_approval(token: str, session: NamedDependency[AsyncSession],
                          runtime: NamedDependency[Runtime]) -> dict[str, Any]:
    """What the client sees: the plan, the rounds and what changed between them, the comments."""
    return await plans.public_plan(ctx_of(session, runtime, CLIENT), token)


@post(APPROVAL_PATHS, status_code=200)
async def public_decision(token: str, data: JSONBody[DecisionIn], session: NamedDependency[AsyncSession],
                          runtime: NamedDependency[Runtime]) -> Response:
    """The client's answer: approve, or ask for changes with comments on the plan or on items."""
    ctx = ctx_of(session, runtime, CLIENT)
    return Response(await plans.decide(ctx, token, data), status_code=200)


@post(["/api/content/approvals/{token:str}/requests", "/public/content/approvals/{token:str}/requests"],
      status_code=201)
async def public_request(token: str, data: JSONBody[ClientRequestIn], session: NamedDependency[AsyncSession],
                         runtime: NamedDependency[Runtime]) -> dict[str, Any]:
    """CO-6: the client asks to publish something of their own; the answer shows on the same link."""
    ctx = ctx_of(session, runtime, CLIENT)
    return client_requests.request_view(await client_requests.submit_request(ctx, token, data))


api_routes = [deal_plans, deal_deadlines, materials_received, get_plan, post_item, patch_item, submit_plan, plan_link,
              resolve_comment, item_published, deal_requests, answer_request, stats_import,
              stats_week, stats_weeks, stats_report_link, get_cadence, get_settings, put_settings]
@get(["/api/content/reports/{token:str}", "/public/content/reports/{token:str}"])
async def public_report(token: str, session: NamedDependency[AsyncSession],
                        runtime: NamedDependency[Runtime]) -> dict[str, Any]:
    """CO-7: the weekly report the manager shared (the token is the credential)."""
    return await stats.public_report(ctx_of(session, runtime, CLIENT), token)


public_routes = [public_approval, public_decision, public_request, public_report]
