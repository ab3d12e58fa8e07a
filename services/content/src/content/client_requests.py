"""CO-6: a client who wants to publish something themselves asks first, on their signed link; the
manager approves or declines with a reason; the client sees the answer on the same link."""

from __future__ import annotations

from typing import Any

from shared.errors import Conflict, NotFound
from shared.events.content import ClientRequestAnswered, ClientRequestSubmitted
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from content import access, plans, services
from content.models import Account, ClientRequest, Plan
from content.schemas import ClientRequestIn, Errors, RequestAnswerIn
from content.services import Ctx
from shared import messages as M


def request_view(r: ClientRequest) -> dict[str, Any]:
    return {"id": r.id, "deal_id": r.deal_id, "number": r.number, "text": r.text, "date": r.day.isoformat() if r.day else None,
            "media": list(r.media or []), "status": r.status, "reason": r.reason, "answered_at": plans.iso(r.answered_at),
            "created_at": plans.iso(r.created_at)}


async def requests_of(session: AsyncSession, deal_id: str) -> list[ClientRequest]:
    return list((await session.execute(select(ClientRequest).where(ClientRequest.deal_id == deal_id)
                                       .order_by(ClientRequest.number))).scalars())


async def submit_request(ctx: Ctx, token: str, data: ClientRequestIn) -> ClientRequest:
    """The link's token names a plan, hence the deal; an expired link is 410, a forged one 404."""
    ref = plans.read_approval_token(ctx, token)
    errors = Errors()
    errors.require("text", data.text)
    if data.media is not None and any(not isinstance(m, str) or not m.strip() for m in data.media):
        errors.add("media", M.CONTENT_MEDIA_LIST)
    errors.raise_if_any()
    plan = await ctx.session.get(Plan, ref["plan_id"])
    if plan is None:
        raise M.refusal(NotFound, None, M.LINK_INVALID)
    account = await services.lock_account(ctx.session, plan.deal_id)
    if account is None or account.lost_at is not None:
        raise M.refusal(Conflict, "deal", M.CONTENT_NO_LONGER_RUN)
    number = len(await requests_of(ctx.session, plan.deal_id)) + 1  # under the deal's lock
    request = ClientRequest(deal_id=plan.deal_id, plan_id=plan.id, number=number, text=data.text.strip(), day=data.date,
                            media=list(data.media or []), status="requested", created_at=ctx.now)
    ctx.session.add(request)
    await ctx.session.flush()
    ctx.emit(ClientRequestSubmitted(deal_id=plan.deal_id, client_id=account.client_id, occurred_at=ctx.now,
                                    request_id=request.id, manager=account.manager or "", day=data.date))
    return request


async def answer(ctx: Ctx, request_id: str, data: RequestAnswerIn) -> ClientRequest:
    request = await ctx.session.get(ClientRequest, request_id)
    account = await services.lock_account(ctx.session, request.deal_id) if request is not None else None
    access.require_change(ctx.actor, account, M.CONTENT_REQUEST_NOT_FOUND)
    assert request is not None and isinstance(account, Account)
    errors = Errors()
    if data.decision not in ("approve", "decline"):
        errors.add("decision", M.CONTENT_DECISION_REQUEST)
    if data.decision == "decline":
        errors.require("reason", data.reason)
    errors.raise_if_any()
    await ctx.session.refresh(request)
    if request.status != "requested":
        raise M.refusal(Conflict, "decision", M.CONTENT_REQUEST_ANSWERED, status=request.status)
    request.status = "approved" if data.decision == "approve" else "declined"
    request.reason = (data.reason or "").strip() or None
    request.answered_by, request.answered_at = ctx.actor.login, ctx.now
    ctx.emit(ClientRequestAnswered(deal_id=request.deal_id, client_id=account.client_id, occurred_at=ctx.now,
                                   request_id=request.id, decision=request.status, reason=request.reason,
                                   by=ctx.actor.login))
    return request
