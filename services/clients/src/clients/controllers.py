"""Thin HTTP handlers: translate a request into a domain operation (services.py) and back.

Every route is under /api/clients (bearer token or body signature, shared/auth.py) and acts for
`actor`; role checks are in access.py. One request = one transaction (the `session` dependency):
a 4xx raised anywhere rolls back everything the request wrote.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from litestar import Request, Response, get, patch, post, put
from litestar.datastructures import ResponseHeader, UploadFile
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, JSONBody, Parameter
from litestar.response import File
from shared.auth import Actor
from shared.errors import DomainError, Forbidden, NotFound
from shared.service import Runtime
from shared.settings import var_dir
from shared.signing import BadToken, ExpiredToken, make_token, read_token
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from clients import access, imports, inbox_leads, leads, services
from clients.list_controllers import list_routes
from clients.models import Attachment, AuditEntry, Client, Deadline, Deal, Document, Import, StaffMember, Task
from clients.rules import RuleValues
from clients.schemas import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    ChecklistTickIn,
    ClientPatchIn,
    CompleteIn,
    Errors,
    FirstPostIn,
    LeadIn,
    LeadStageIn,
    ManagerIn,
    PaymentIn,
    QuestionnaireIn,
    RefundIn,
    RenewalAnswerIn,
    SettingsIn,
    StaffIn,
    StageIn,
    WaiveIn,
    check_aware,
    check_currency,
    parse_money,
    parse_page,
)
from clients.views import (
    attachment_view,
    deadline_view,
    deal_summary,
    deal_view,
    iso,
    lead_view,
    refund_view,
    staff_view,
    task_view,
)
from shared import messages as M

MAX_ATTACHMENT_BYTES = 50 * 1024 * 1024
QUESTIONNAIRE_LINK_DAYS = 14


def ctx_of(session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime], actor: NamedDependency[Actor]) -> services.Ctx:
    return services.Ctx(session, runtime.clock, runtime.settings, actor, runtime.scheduler.handlers)


# ============================================================================ payments (CL-3, CL-14)

@post("/payments")
async def post_payment(data: JSONBody[PaymentIn], session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime], actor: NamedDependency[Actor]) -> Response:
    """A payment: new client → client + deal + first-call task (CL-3); `deal_id` → renewal (CL-14).
    The same `external_id` again → 200 with the same deal, nothing duplicated."""
    access.require_payments(actor)
    result = await services.record_payment(ctx_of(session, runtime, actor), data)
    return Response(await deal_view(session, result.deal), status_code=201 if result.created else 200)


# ============================================================================ deals

TOTAL_COUNT = [ResponseHeader(name="X-Total-Count", documentation_only=True,
                              description="rows matching the filters across all pages")]


@get("/deals", response_headers=TOTAL_COUNT)
async def list_deals(session: NamedDependency[AsyncSession], actor: NamedDependency[Actor], stage: str | None = None,
                     manager: str | None = None, service_kind: str | None = None, limit: int = DEFAULT_LIMIT,
                     offset: int = 0, sort: str | None = None, q: str | None = None,
                     deal_id: list[str] | None = None) -> Response[list[dict[str, Any]]]:
    """The deals the actor may see, newest first payment first by default, each with `client_name`,
    `paid_total` (decimal string: payments minus refunds) and `currency` (that of the first payment).
    Sort fields: first_payment_at, created_at, stage (pipeline order), client_name, responsible_manager,
    service_kind, period_end, lost_at. `q`: a part of the client's name, phone, Instagram or e-mail, in
    any case. `deal_id` (repeatable, at most 200): only these deals — how a page names the deals it
    shows by their clients (a payroll statement's lines).

    Paging: `limit` (1…200, default 50), `offset` (default 0), `sort` (a field of the whitelist above,
    `-field` for descending); ties are broken by id so pages never overlap. The body stays a plain
    JSON list (a wrapper object would break existing callers); the number of rows matching the
    filters, across all pages, is in the `X-Total-Count` header. A bad limit, offset or sort is a
    422 naming that field."""
    access.require_reader(actor)
    page = parse_page(limit, offset, sort, services.DEAL_SORTS, services.DEAL_DEFAULT_SORT)
    if deal_id and len(deal_id) > MAX_LIMIT:
        raise M.error("deal_id", M.DEAL_IDS_AT_MOST, limit=MAX_LIMIT)
    rows, total = await services.list_deals(session, actor, page, stage=stage, manager=manager,
                                            service_kind=service_kind, q=q, ids=deal_id)
    return Response([deal_summary(r.deal, r.client_name, r.paid_total, r.currency) for r in rows],
                    headers={"X-Total-Count": str(total)})


@get("/deals/{deal_id:str}")
async def get_deal(deal_id: str, session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime], actor: NamedDependency[Actor]) -> dict[str, Any]:
    access.require_reader(actor)
    deal = await services.load_deal(ctx_of(session, runtime, actor), deal_id)
    return await deal_view(session, deal)


@post("/deals/{deal_id:str}/stage", status_code=200)
async def post_stage(deal_id: str, data: JSONBody[StageIn], session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime],
                     actor: NamedDependency[Actor]) -> dict[str, Any]:
    """CL-4 contacted; CL-8 project_launched (service_start + Instagram login/password); CL-12
    notification_sent (= renewal answer "continues") and lost (= "declines")."""
    ctx = ctx_of(session, runtime, actor)
    errors = Errors()
    errors.require("stage", data.stage)
    errors.raise_if_any()
    deal = await services.load_deal(ctx, deal_id, settle=False)
    if data.stage in ("notification_sent", "lost"):
        access.require_renewal_answer(actor, deal)
    else:
        access.require_deal_change(actor, deal)
    at = services.fact_time(ctx, data.at)
    await services.settle_deal(ctx, deal, before=at)  # the fact is judged on its own time (issue 7 §1)
    if data.stage == "contacted":
        await services.mark_contacted(ctx, deal, at)
    elif data.stage == "project_launched":
        await services.launch(ctx, deal, at, data.service_start, data.instagram_login, data.instagram_password)
    elif data.stage == "notification_sent":
        await services.renewal_answer(ctx, deal, True, at)
    elif data.stage == "lost":
        if deal.stage == "lost":
            raise M.error("stage", M.DEAL_ALREADY_LOST)
        with services.deal_span(deal, "declined"):
            await services.lose(ctx, deal, "declined", at)
    else:
        raise M.error("stage", M.STAGE_NOT_BY_HAND, stage=data.stage)
    await services.settle_deal(ctx, deal)
    return await deal_view(session, deal)


@post("/deals/{deal_id:str}/questionnaire", status_code=200)
async def post_questionnaire(deal_id: str, data: JSONBody[QuestionnaireIn], session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime],
                             actor: NamedDependency[Actor]) -> dict[str, Any]:
    """CL-5 entered by staff (the client uses the signed link)."""
    ctx = ctx_of(session, runtime, actor)
    errors = Errors()
    errors.require("answers", data.answers)
    errors.raise_if_any()
    deal = await services.load_deal(ctx, deal_id, settle=False)
    access.require_deal_change(actor, deal)
    received_at = services.fact_time(ctx, data.received_at, "received_at")
    await services.settle_deal(ctx, deal, before=received_at)
    await services.receive_questionnaire(ctx, deal, data.answers, received_at)
    await services.settle_deal(ctx, deal)
    return await deal_view(session, deal)


@post("/deals/{deal_id:str}/questionnaire-link", status_code=201)
async def post_questionnaire_link(deal_id: str, session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime],
                                  actor: NamedDependency[Actor]) -> dict[str, Any]:
    """CL-5: a signed link for the client (shared/signing.py), valid 14 days."""
    ctx = ctx_of(session, runtime, actor)
    deal = await services.load_deal(ctx, deal_id, settle=False)
    access.require_deal_change(actor, deal)
    expires = ctx.now + timedelta(days=QUESTIONNAIRE_LINK_DAYS)
    token = make_token({"deal_id": deal.id}, secret_key=runtime.settings.secret_key, purpose="questionnaire",
                       expires_at=expires)
    return {"token": token, "path": f"/public/clients/questionnaire/{token}", "expires_at": iso(expires)}


@post("/deals/{deal_id:str}/first-post", status_code=200)
async def post_first_post(deal_id: str, data: JSONBody[FirstPostIn], session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime],
                          actor: NamedDependency[Actor]) -> dict[str, Any]:
    """CL-9 for agencies without the content service."""
    ctx = ctx_of(session, runtime, actor)
    errors = Errors()
    errors.require("published_at", data.published_at)
    errors.raise_if_any()
    deal = await services.load_deal(ctx, deal_id, settle=False)
    access.require_deal_change(actor, deal)
    published_at = services.fact_time(ctx, data.published_at, "published_at")
    await services.settle_deal(ctx, deal, before=published_at)
    await services.record_first_post(ctx, deal, published_at)
    await services.settle_deal(ctx, deal)
    return await deal_view(session, deal)


@post("/deals/{deal_id:str}/renewal-answer", status_code=200)
async def post_renewal_answer(deal_id: str, data: JSONBody[RenewalAnswerIn], session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime],
                              actor: NamedDependency[Actor]) -> dict[str, Any]:
    ctx = ctx_of(session, runtime, actor)
    errors = Errors()
    errors.require("continues", data.continues)
    errors.raise_if_any()
    deal = await services.load_deal(ctx, deal_id, settle=False)
    access.require_renewal_answer(actor, deal)
    at = services.fact_time(ctx, data.at)
    await services.settle_deal(ctx, deal, before=at)
    await services.renewal_answer(ctx, deal, data.continues, at)
    await services.settle_deal(ctx, deal)
    return await deal_view(session, deal)


@get("/deals/{deal_id:str}/document", media_type="text/html")
async def get_document(deal_id: str, session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime], actor: NamedDependency[Actor]) -> str:
    """CL-12: the latest payment details / invoice of the deal, printable HTML."""
    access.require_reader(actor)
    deal = await services.load_deal(ctx_of(session, runtime, actor), deal_id, settle=False, lock=False)
    document = (await session.execute(select(Document).where(Document.deal_id == deal.id)
                                      .order_by(Document.created_at.desc()))).scalars().first()
    if document is None:
        raise M.refusal(NotFound, None, M.NO_DOCUMENT)
    return document.html


@post("/deals/{deal_id:str}/refunds")
async def post_refund(deal_id: str, data: JSONBody[RefundIn], session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime],
                      actor: NamedDependency[Actor]) -> Response:
    ctx = ctx_of(session, runtime, actor)
    access.require_payments(actor)
    errors = Errors()
    for name in ("external_id", "amount", "currency", "refunded_at"):
        errors.require(name, getattr(data, name))
    check_aware(errors, "refunded_at", data.refunded_at)
    amount = parse_money(errors, "amount", data.amount)
    currency = check_currency(errors, "currency", data.currency)
    errors.raise_if_any()
    deal = await services.load_deal_for_refund(ctx, deal_id)
    if data.refunded_at > ctx.now:
        raise M.error("refunded_at", M.REFUND_IN_FUTURE)
    await services.settle_deal(ctx, deal, before=data.refunded_at)
    refund, created = await services.record_refund(ctx, deal, data.external_id, amount, currency, data.refunded_at)
    await services.settle_deal(ctx, deal)
    return Response(refund_view(refund), status_code=201 if created else 200)


@post("/deals/{deal_id:str}/credentials/reveal", status_code=200)
async def reveal(deal_id: str, session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime], actor: NamedDependency[Actor]) -> dict[str, str]:
    ctx = ctx_of(session, runtime, actor)
    deal = await services.load_deal(ctx, deal_id, settle=False)
    return services.reveal_credentials(ctx, deal)


@patch("/deals/{deal_id:str}/client", status_code=200)
async def patch_client(deal_id: str, data: JSONBody[ClientPatchIn], session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime],
                       actor: NamedDependency[Actor]) -> dict[str, Any]:
    """CL-1: edit the deal's client card (any of full_name, phone, instagram, email, payer_type,
    company_name, bin, notes; a field left out stays). Who may: as for the deal (the lead, the
    responsible manager). Validated whole (422 naming each field), audited, on the deals' timelines."""
    ctx = ctx_of(session, runtime, actor)
    deal = await services.load_deal(ctx, deal_id, settle=False)
    access.require_deal_change(actor, deal)
    await services.update_client(ctx, await session.get(Client, deal.client_id), data)
    return await deal_view(session, deal)


@post("/deals/{deal_id:str}/manager", status_code=200)
async def post_manager(deal_id: str, data: JSONBody[ManagerIn], session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime],
                       actor: NamedDependency[Actor]) -> dict[str, Any]:
    access.require_roles(actor, access.LEAD, access.INTEGRATION)
    errors = Errors()
    errors.require("manager", data.manager)
    errors.raise_if_any()
    ctx = ctx_of(session, runtime, actor)
    deal = await services.load_deal(ctx, deal_id)
    await services.reassign_manager(ctx, deal, data.manager)
    return await deal_view(session, deal)


# ============================================================================ attachments

@post("/deals/{deal_id:str}/attachments", request_max_body_size=MAX_ATTACHMENT_BYTES + 1024 * 1024)
async def post_attachment(deal_id: str, session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime], actor: NamedDependency[Actor],
                          data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]
                          ) -> dict[str, Any]:
    """Call recordings (CL-11): multipart field `file` (audio/*, at most 50 MB), optional `task_id`.
    Stored under <ZABOTA_VAR_DIR>/attachments/<deal_id>/<id>, and only if the request commits
    (DESIGN 9; services.add_attachment)."""
    ctx = ctx_of(session, runtime, actor)
    deal = await services.load_deal(ctx, deal_id, settle=False)
    access.require_deal_change(actor, deal)
    upload = data.get("file")
    if not isinstance(upload, UploadFile):
        raise M.error("file", M.UPLOAD_REQUIRED)
    content_type = (upload.content_type or "").split(";")[0].strip().lower()
    if not content_type.startswith("audio/"):
        raise M.error("file", M.UPLOAD_AUDIO_ONLY)
    content = await upload.read()
    if len(content) > MAX_ATTACHMENT_BYTES:
        raise M.error("file", M.UPLOAD_TOO_LARGE, limit_mb=MAX_ATTACHMENT_BYTES // (1024 * 1024))
    if not content:
        raise M.error("file", M.UPLOAD_EMPTY)
    attachment = await services.add_attachment(ctx, deal, data.get("task_id") or None,
                                               Path(upload.filename or "recording").name, content_type, content)
    return attachment_view(attachment)


@get("/attachments/{attachment_id:str}")
async def get_attachment(attachment_id: str, session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime], actor: NamedDependency[Actor]) -> File:
    access.require_reader(actor)
    attachment = await session.get(Attachment, attachment_id)
    if attachment is None:
        raise M.refusal(NotFound, None, M.ATTACHMENT_NOT_FOUND)
    deal = await session.get(Deal, attachment.deal_id)
    access.require_visible(actor, deal, M.ATTACHMENT_NOT_FOUND)
    ctx_of(session, runtime, actor).audit("attachment.downloaded", deal.id, attachment_id=attachment.id)
    return File(path=var_dir() / attachment.path, filename=attachment.filename, media_type=attachment.content_type)


# ============================================================================ tasks, deadlines

@get("/tasks", response_headers=TOTAL_COUNT)
async def list_tasks(session: NamedDependency[AsyncSession], actor: NamedDependency[Actor], assignee: str | None = None,
                     status: str | None = "open", limit: int = DEFAULT_LIMIT,
                     offset: int = 0) -> Response[list[dict[str, Any]]]:
    """Tasks by due time (none last), each with its deal's `client_name` and `deal_stage`. Paged as
    GET /deals: `limit` 1…200 (default 50), `offset`; `X-Total-Count` = tasks matching the filters;
    a limit beyond the maximum is a 422 naming `limit`."""
    access.require_reader(actor)
    page = parse_page(limit, offset, None, services.TASK_SORTS, "due_at")
    rows, total = await services.list_tasks(session, actor, page, assignee=assignee, status=status)
    return Response([task_view(task, client_name, deal.stage) for task, deal, client_name in rows],
                    headers={"X-Total-Count": str(total)})


@post("/tasks/{task_id:str}/complete", status_code=200)
async def complete_task(task_id: str, session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime], actor: NamedDependency[Actor],
                        data: JSONBody[CompleteIn | None] = None) -> dict[str, Any]:
    ctx = ctx_of(session, runtime, actor)
    task = await session.get(Task, task_id)
    if task is None:
        raise M.refusal(NotFound, None, M.TASK_NOT_FOUND)
    deal = await services.complete_task(ctx, task, services.fact_time(ctx, data.at if data else None))
    client = await session.get(Client, deal.client_id)
    return task_view(task, client.full_name, deal.stage)


@post("/tasks/{task_id:str}/checklist", status_code=200)
async def tick_checklist(task_id: str, data: JSONBody[ChecklistTickIn], session: NamedDependency[AsyncSession],
                         runtime: NamedDependency[Runtime], actor: NamedDependency[Actor]) -> dict[str, Any]:
    """CL-7: tick one checklist item, `{"item": "avatar", "done": true}`: the task's assignee or the lead."""
    errors = Errors()
    errors.require("item", data.item)
    errors.require("done", data.done)
    errors.raise_if_any()
    task = await session.get(Task, task_id)
    if task is None:
        raise M.refusal(NotFound, None, M.TASK_NOT_FOUND)
    deal = await services.tick_checklist(ctx_of(session, runtime, actor), task, data.item, data.done)
    client = await session.get(Client, deal.client_id)
    return task_view(task, client.full_name, deal.stage)


@get("/deadlines", response_headers=TOTAL_COUNT)
async def list_deadlines(session: NamedDependency[AsyncSession], actor: NamedDependency[Actor], owner: str | None = None,
                         rule: str | None = None, state_: Annotated[str | None, Parameter(query="state")] = None,
                         limit: int = DEFAULT_LIMIT, offset: int = 0,
                         sort: str | None = None) -> Response[list[dict[str, Any]]]:
    """CAL-3 deadlines of the deals the actor may see, by due time (`sort=-due_at`: latest first).
    Paged as GET /tasks."""
    access.require_reader(actor)
    page = parse_page(limit, offset, sort, services.DEADLINE_SORTS, "due_at")
    rows, total = await services.list_deadlines(session, actor, page, owner=owner, rule=rule, state=state_)
    return Response([deadline_view(d) for d in rows], headers={"X-Total-Count": str(total)})


@post("/deadlines/{deadline_id:str}/waive", status_code=200)
async def waive_deadline(deadline_id: str, data: JSONBody[WaiveIn], session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime],
                         actor: NamedDependency[Actor]) -> dict[str, Any]:
    access.require_roles(actor, access.LEAD, access.INTEGRATION)
    errors = Errors()
    errors.require("reason", data.reason)
    errors.raise_if_any()
    deadline = await session.get(Deadline, deadline_id)
    if deadline is None:
        raise M.refusal(NotFound, None, M.DEADLINE_NOT_FOUND)
    ctx = ctx_of(session, runtime, actor)
    deal = await services.load_deal(ctx, deadline.deal_id)
    await session.refresh(deadline)  # as it is under the deal's lock, after its due timers fired
    with services.deal_span(deal, "waive"):
        services.waive(ctx, deal, deadline, data.reason)
    return deadline_view(deadline)


# ============================================================================ roster, settings, audit

@get("/staff")
async def list_staff(session: NamedDependency[AsyncSession], actor: NamedDependency[Actor]) -> list[dict[str, Any]]:
    access.require_roles(actor, access.LEAD, access.INTEGRATION, access.ANALYST)
    return [staff_view(m) for m in (await session.execute(select(StaffMember).order_by(StaffMember.login))).scalars()]


@put("/staff/{login:str}")
async def put_staff(login: str, data: JSONBody[StaffIn], session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime],
                    actor: NamedDependency[Actor]) -> dict[str, Any]:
    access.require_roles(actor, access.LEAD, access.INTEGRATION)
    errors = Errors()
    errors.require("role", data.role)
    errors.raise_if_any()
    member = await services.put_staff(ctx_of(session, runtime, actor), login, data.role, data.full_name, data.active)
    return staff_view(member)


@get("/settings")
async def get_settings(session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime], actor: NamedDependency[Actor],
                       at: datetime | None = None) -> dict[str, Any]:
    access.require_roles(actor, access.LEAD, access.INTEGRATION, access.ANALYST)
    moment = at or runtime.clock.now()
    values = await services.rule_values(session, moment)
    from clients.models import RuleSetting

    rows = (await session.execute(select(RuleSetting).order_by(RuleSetting.effective_from, RuleSetting.id))).scalars()
    return {"at": iso(moment), "values": {k: getattr(values, k) for k in RuleValues.names()},
            "defaults": {k: getattr(RuleValues(), k) for k in RuleValues.names()},
            "history": [{"key": r.key, "value": r.value, "effective_from": iso(r.effective_from),
                         "created_by": r.created_by, "created_at": iso(r.created_at)} for r in rows]}


@put("/settings")
async def put_settings(data: JSONBody[SettingsIn], session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime], actor: NamedDependency[Actor]) -> dict[str, Any]:
    access.require_roles(actor, access.LEAD, access.INTEGRATION)
    errors = Errors()
    errors.require("values", data.values)
    check_aware(errors, "effective_from", data.effective_from)
    errors.raise_if_any()
    ctx = ctx_of(session, runtime, actor)
    effective = data.effective_from or ctx.now
    await services.put_settings(ctx, data.values, effective)
    await session.flush()
    values = await services.rule_values(session, max(effective, ctx.now))
    return {"effective_from": iso(effective), "values": {k: getattr(values, k) for k in RuleValues.names()}}


@get("/audit")
async def get_audit(session: NamedDependency[AsyncSession], actor: NamedDependency[Actor], target: str | None = None,
                    limit: int = 200) -> list[dict[str, Any]]:
    access.require_roles(actor, access.LEAD, access.INTEGRATION)
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(min(max(limit, 1), 1000))
    if target:
        query = query.where(AuditEntry.target == target)
    return [{"id": a.id, "at": iso(a.at), "actor": a.actor, "role": a.role, "action": a.action,
             "target": a.target, "detail": a.detail} for a in (await session.execute(query)).scalars()]


# ============================================================================ leads (CL-16)

@post("/leads")
async def post_lead(data: JSONBody[LeadIn], session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime], actor: NamedDependency[Actor]) -> dict[str, Any]:
    access.require_roles(actor, access.LEAD, access.INTEGRATION, access.CONTENT_MANAGER)
    return lead_view(await leads.create_lead(ctx_of(session, runtime, actor), data))


@get("/leads", response_headers=TOTAL_COUNT)
async def list_leads(session: NamedDependency[AsyncSession], actor: NamedDependency[Actor], stage: str | None = None,
                     owner: str | None = None, q: str | None = None, limit: int = DEFAULT_LIMIT, offset: int = 0,
                     sort: str | None = None) -> Response[list[dict[str, Any]]]:
    """The leads the actor may see (a manager: their own), newest dialog first by default; `q` finds a
    part of the name, phone, Instagram or e-mail in any case. Sort fields: created_at, full_name,
    stage (funnel order), owner, warm_at, application_at, paid_at. Paging as for GET /deals."""
    access.require_reader(actor)
    page = parse_page(limit, offset, sort, leads.LEAD_SORTS, leads.LEAD_DEFAULT_SORT)
    found, total = await leads.list_leads(session, actor, page, stage=stage, owner=owner, q=q)
    return Response([lead_view(lead) for lead in found], headers={"X-Total-Count": str(total)})



@get("/leads/{lead_id:str}")
async def get_lead(lead_id: str, session: NamedDependency[AsyncSession], actor: NamedDependency[Actor]) -> dict[str, Any]:
    """One lead, with the list's rules: a lead the actor may not see is 404; with its inbox conversations
    (issue 15)."""
    access.require_reader(actor)
    return await inbox_leads.lead_detail(session, await leads.get_lead(session, actor, lead_id))


@post("/leads/{lead_id:str}/stage", status_code=200)
async def post_lead_stage(lead_id: str, data: JSONBody[LeadStageIn], session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime],
                          actor: NamedDependency[Actor]) -> dict[str, Any]:
    access.require_roles(actor, access.LEAD, access.INTEGRATION, access.CONTENT_MANAGER, *leads.SALES_AGENTS)
    errors = Errors()
    errors.require("stage", data.stage)
    errors.raise_if_any()
    lead = await leads.get_lead(session, actor, lead_id)
    ctx = ctx_of(session, runtime, actor)
    await leads.move_lead(ctx, lead, data.stage, services.fact_time(ctx, data.at))
    return lead_view(lead)


@get("/reports/funnel")
async def funnel(session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime], actor: NamedDependency[Actor],
                 month: str | None = None, manager: str | None = None, channel: str | None = None,
                 date_from: Annotated[str | None, Parameter(query="from")] = None,
                 date_to: Annotated[str | None, Parameter(query="to")] = None) -> dict[str, Any]:
    """CL-16; a content manager sees their own funnel only. `month` or `from`/`to`; `manager` is the
    administrator; `channel` a channel kind or `manual`."""
    if actor.role == access.CONTENT_MANAGER:
        if manager not in (None, actor.login):
            raise M.refusal(Forbidden, None, M.OWN_FUNNEL)
        manager = actor.login
    else:
        access.require_roles(actor, access.LEAD, access.INTEGRATION, access.ANALYST)
    return await leads.funnel_report(ctx_of(session, runtime, actor), month, manager, channel=channel,
                                     date_from=date_from, date_to=date_to)


# ============================================================================ imports

@post("/imports", status_code=202, request_max_body_size=20 * 1024 * 1024)
async def post_import(session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime], actor: NamedDependency[Actor],
                      data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]
                      ) -> dict[str, Any]:
    access.require_roles(actor, access.LEAD, access.INTEGRATION)
    upload = data.get("file")
    if not isinstance(upload, UploadFile):
        raise M.error("file", M.UPLOAD_CSV_REQUIRED)
    job = await imports.start_import(ctx_of(session, runtime, actor), upload.filename or "import.csv",
                                     await upload.read())
    return imports.import_view(job) | {"errors": []}


@get("/imports/{import_id:str}")
async def get_import(import_id: str, session: NamedDependency[AsyncSession], actor: NamedDependency[Actor]) -> dict[str, Any]:
    access.require_roles(actor, access.LEAD, access.INTEGRATION)
    job = await session.get(Import, import_id)
    if job is None:
        raise M.refusal(NotFound, None, M.IMPORT_NOT_FOUND)
    return imports.import_view(job)


# ============================================================================ public: the client's signed link (CL-5)

class Gone(DomainError):
    status_code = 410


def _deal_id_of(token: str, runtime: NamedDependency[Runtime]) -> str:
    """An expired link is 410 Gone (it was real: the client should ask for a new one); a forged,
    garbled or foreign link is 404, as if it never existed."""
    try:
        return read_token(token, secret_key=runtime.settings.secret_key, purpose="questionnaire",
                          now=runtime.clock.now())["deal_id"]
    except ExpiredToken:
        raise Gone(M.text(M.LINK_EXPIRED), errors=[M.item("token", M.CONTENT_LINK_EXPIRED)]) from None
    except (BadToken, KeyError, TypeError):
        raise M.refusal(NotFound, None, M.LINK_INVALID) from None


@get("/public/clients/questionnaire/{token:str}")
async def public_questionnaire(token: str, session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime]) -> dict[str, Any]:
    """What the gateway's public page shows: whom it is for and whether it was already sent."""
    from clients.models import Client

    deal = await session.get(Deal, _deal_id_of(token, runtime))
    if deal is None:
        raise M.refusal(NotFound, None, M.LINK_INVALID)
    client = await session.get(Client, deal.client_id)
    return {"client_name": client.full_name, "service_kind": deal.service_kind,
            "submitted": deal.questionnaire_received_at is not None}


@post("/public/clients/questionnaire/{token:str}", status_code=200)
async def public_questionnaire_submit(token: str, data: JSONBody[QuestionnaireIn], request: Request, session: NamedDependency[AsyncSession],
                                      runtime: NamedDependency[Runtime]) -> dict[str, Any]:
    errors = Errors()
    errors.require("answers", data.answers)
    errors.raise_if_any()
    deal_id = _deal_id_of(token, runtime)
    ctx = ctx_of(session, runtime, Actor(login="client", role="integration"))
    deal = await services.get_deal(session, deal_id)
    if deal is None:
        raise M.refusal(NotFound, None, M.LINK_INVALID)
    await services.settle_deal(ctx, deal, before=ctx.now)
    await services.receive_questionnaire(ctx, deal, data.answers, ctx.now)  # the client cannot backdate
    await services.settle_deal(ctx, deal)
    return {"submitted": True}


api_routes = [post_payment, list_deals, get_deal, post_stage, post_questionnaire, post_questionnaire_link,
              post_first_post, post_renewal_answer, get_document, post_refund, reveal, patch_client, post_manager,
              post_attachment, get_attachment, list_tasks, complete_task, tick_checklist, list_deadlines, waive_deadline,
              list_staff, put_staff, get_settings, put_settings, get_audit, post_lead, list_leads, get_lead,
              post_lead_stage, *inbox_leads.routes,
              funnel, post_import, get_import, *list_routes]
public_routes = [public_questionnaire, public_questionnaire_submit]
