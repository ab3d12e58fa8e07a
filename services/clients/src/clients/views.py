"""JSON shapes of the clients API (what a deal, a task, a deadline look like to callers)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from clients import rules
from clients.models import (
    Attachment,
    Client,
    Deadline,
    Deal,
    DealHistory,
    Document,
    Lead,
    Payment,
    Refund,
    StaffMember,
    Task,
)


def iso(ts: datetime | None) -> str | None:
    return ts.isoformat() if ts is not None else None


def task_view(task: Task, client_name: str, deal_stage: str) -> dict[str, Any]:
    """`client_name` and `deal_stage` let a task list show whose task it is without reading each deal."""
    return {"id": task.id, "deal_id": task.deal_id, "kind": task.kind, "rule": task.rule, "title": task.title,
            "script": task.script, "checklist": task.checklist, "assignee": task.assignee,
            "period_no": task.period_no, "created_at": iso(task.created_at), "due_at": iso(task.due_at),
            "status": task.status, "completed_at": iso(task.completed_at), "completed_by": task.completed_by,
            "client_name": client_name, "deal_stage": deal_stage}


def deadline_view(d: Deadline) -> dict[str, Any]:
    return {"id": d.id, "deal_id": d.deal_id, "task_id": d.task_id, "rule": d.rule, "what": d.what,
            "what_code": d.what_code, "owner": d.owner, "due_at": iso(d.due_at), "state": d.state, "resolved_at": iso(d.resolved_at),
            "waived_by": d.waived_by, "reason": d.reason}


def client_view(c: Client) -> dict[str, Any]:
    return {"id": c.id, "full_name": c.full_name, "phone": c.phone, "instagram": c.instagram, "email": c.email,
            "payer_type": c.payer_type, "company_name": c.company_name, "bin": c.bin, "notes": c.notes}


def deal_summary(deal: Deal, client_name: str, paid_total: Decimal, currency: str | None) -> dict[str, Any]:
    """What a list of deals shows. `paid_total` is a decimal string: the payments minus the refunds in
    the deal's `currency` (that of its first payment; rules.net_paid)."""
    return {"id": deal.id, "deal_id": deal.id, "client_id": deal.client_id, "client_name": client_name,
            "paid_total": str(paid_total), "currency": currency, "service_kind": deal.service_kind,
            "stage": deal.stage, "responsible_manager": deal.responsible_manager, "ad_manager": deal.ad_manager,
            "growth_specialist": deal.growth_specialist, "first_payment_at": iso(deal.first_payment_at),
            "service_start": deal.service_start.isoformat() if deal.service_start else None,
            "period": {"no": deal.period_no, "start": iso(deal.period_start), "end": iso(deal.period_end)},
            "period_start": iso(deal.period_start), "period_end": iso(deal.period_end),
            "lost_at": iso(deal.lost_at), "lost_reason": deal.lost_reason}


async def _all(session: AsyncSession, model: Any, *where: Any, order: Any = None) -> list[Any]:
    query = select(model).where(*where)
    if order is not None:
        query = query.order_by(order)
    return list((await session.execute(query)).scalars())


async def deal_view(session: AsyncSession, deal: Deal) -> dict[str, Any]:
    client = await session.get(Client, deal.client_id)
    tasks = await _all(session, Task, Task.deal_id == deal.id, order=Task.created_at)
    deadlines = await _all(session, Deadline, Deadline.deal_id == deal.id, order=Deadline.due_at)
    payments = await _all(session, Payment, Payment.deal_id == deal.id, order=Payment.paid_at)
    refunds = await _all(session, Refund, Refund.deal_id == deal.id, order=Refund.refunded_at)
    attachments = await _all(session, Attachment, Attachment.deal_id == deal.id, order=Attachment.uploaded_at)
    documents = await _all(session, Document, Document.deal_id == deal.id, order=Document.created_at)
    timeline = (await session.execute(select(DealHistory).where(DealHistory.deal_id == deal.id)
                                      .order_by(DealHistory.at, DealHistory.id))).scalars().all()
    paid_total, currency = rules.net_paid([(p.currency, p.amount, p.paid_at) for p in payments],
                                          [(r.currency, r.amount) for r in refunds])
    return {
        **deal_summary(deal, client.full_name, paid_total, currency),
        "client": client_view(client),
        "lead_id": deal.lead_id,
        "contacted_at": iso(deal.contacted_at),
        "questionnaire": deal.questionnaire,
        "questionnaire_received_at": iso(deal.questionnaire_received_at),
        "first_post_at": iso(deal.first_post_at),
        "launched_at": iso(deal.launched_at),
        "has_credentials": deal.credentials is not None,
        "tasks": [task_view(t, client.full_name, deal.stage) for t in tasks],
        "deadlines": [deadline_view(d) for d in deadlines],
        "payments": [{"id": p.id, "external_id": p.external_id, "amount": str(p.amount), "currency": p.currency,
                      "paid_at": iso(p.paid_at), "renewal": p.renewal, "undid_loss": p.undid_loss}
                     for p in payments],
        "refunds": [refund_view(r) for r in refunds],
        "attachments": [attachment_view(a) for a in attachments],
        "documents": [{"id": d.id, "kind": d.kind, "number": d.number, "created_at": iso(d.created_at)}
                      for d in documents],
        "timeline": [timeline_entry(h) for h in timeline],
    }


def timeline_entry(h: DealHistory) -> dict[str, Any]:
    """`summary` is English; `code` (e.g. "deadline.met") with `data` as its parameters is what a UI
    translates (services.history lists the codes). Entries written before codes existed were given
    theirs by migration 0003; one it could not read keeps `code` null."""
    return {"at": iso(h.at), "kind": h.kind, "code": h.code, "summary": h.summary, "by": h.by, "data": h.data}


def refund_view(r: Refund) -> dict[str, Any]:
    return {"id": r.id, "external_id": r.external_id, "deal_id": r.deal_id, "payment_id": r.payment_id,
            "amount": str(r.amount), "currency": r.currency, "refunded_at": iso(r.refunded_at),
            "within_window": r.within_window}


def attachment_view(a: Attachment) -> dict[str, Any]:
    return {"id": a.id, "deal_id": a.deal_id, "task_id": a.task_id, "filename": a.filename,
            "content_type": a.content_type, "size": a.size, "sha256": a.sha256, "uploaded_by": a.uploaded_by,
            "uploaded_at": iso(a.uploaded_at), "url": f"/api/clients/attachments/{a.id}"}


def lead_view(lead: Lead) -> dict[str, Any]:
    return {"id": lead.id, "full_name": lead.full_name, "phone": lead.phone, "instagram": lead.instagram,
            "email": lead.email, "product": lead.product, "payer_type": lead.payer_type,
            "company_name": lead.company_name, "bin": lead.bin, "notes": lead.notes, "source": lead.source,
            "owner": lead.owner, "stage": lead.stage, "created_at": iso(lead.created_at),
            "warm_at": iso(lead.warm_at), "application_at": iso(lead.application_at), "paid_at": iso(lead.paid_at),
            "deal_id": lead.deal_id, "channel": lead.channel, "disqualified": lead.disqualified}


def staff_view(m: StaffMember) -> dict[str, Any]:
    return {"login": m.login, "role": m.role, "full_name": m.full_name, "active": m.active}
