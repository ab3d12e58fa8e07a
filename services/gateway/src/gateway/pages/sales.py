"""From the first message to a paying client (issue 15, CL-16 × EN-1): the lead panel of an inbox conversation.

`GET /inbox/{conversation_id}/lead` is an htmx fragment (`partials/inbox_lead_panel.html`) the conversation
page includes: the lead the clients service registered from the conversation (a sales account's dialog), its
CL-1 fields to fill in, one click each to move it to warm lead and to application, spam / wrong number (the
lead leaves the funnel), and — once a payment converted it — "paid — deal …" as the inbox recorded it.

The conversation is read first from engagement (a conversation the staff member may not see is 404, as in
the inbox), then its lead from clients (none: a client account's conversation, or one not registered yet).
Without htmx a form answers with a redirect back to the conversation page (`/inbox/{conversation_id}`).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath

from gateway.i18n import N_, _
from gateway.labels import LEAD_STAGES
from gateway.pages.deals import Services, is_htmx
from gateway.rendering import page, redirect
from gateway.roles import CARE_AGENT, LEAD, SENIOR_AGENT, allow
from gateway.service_client import ServiceClient, ServiceError, ServiceUnavailable
from gateway.ui import form_errors

SALES_STAFF = allow(LEAD, SENIOR_AGENT, CARE_AGENT)   # those who answer the agency's sales accounts
PANEL_FIELDS = ("full_name", "phone", "instagram", "email", "product", "payer_type", "company_name", "bin", "notes")
ONE_CLICK = ("warm_lead", "application")
DISQUALIFY: dict[str, str] = {"spam": N_("Spam"), "wrong_number": N_("Wrong number")}
CHANNEL_KINDS: dict[str, str] = {"instagram": N_("Instagram"), "telegram": N_("Telegram"), "vk": N_("VK"),
                                 "email": N_("E-mail"), "webform": N_("Site form"), "mention": N_("Mention"),
                                 "manual": N_("Entered by hand")}


def channel_label(kind: str | None) -> str:
    return _(CHANNEL_KINDS[kind]) if kind in CHANNEL_KINDS else (kind or "—")


async def panel_context(services: ServiceClient, conversation_id: str, *, errors: dict[str, str] | None = None,
                        form: dict[str, str] | None = None, notice: str = "") -> dict[str, Any]:
    conversation = await services.get("engagement", f"/conversations/{conversation_id}")   # 404 if not visible
    try:
        lead = await services.get("clients", f"/leads/by-conversation/{conversation_id}")
    except ServiceError as exc:
        if exc.status_code != 404:
            raise
        lead = None
    recorded = conversation.get("lead") or {}
    deal_id = recorded.get("deal_id") or (lead or {}).get("deal_id")
    stage = (lead or {}).get("stage") or recorded.get("stage")
    clicks = [s for s in ONE_CLICK if lead and not lead.get("disqualified")
              and list(LEAD_STAGES).index(s) > list(LEAD_STAGES).index(stage)]
    return {"conversation_id": conversation_id, "lead": lead, "deal_id": deal_id, "stage": stage,
            "clicks": clicks, "disqualify": DISQUALIFY, "errors": errors or {},
            "form": form if form is not None else {k: (lead or {}).get(k) or "" for k in PANEL_FIELDS},
            "notice": notice, "channel_label": channel_label}


def panel(request: Request, ctx: dict[str, Any], status_code: int = 200) -> Response:
    return page(request, "partials/inbox_lead_panel.html", ctx, block="panel", status_code=status_code)


async def lead_id_of(services: ServiceClient, conversation_id: str) -> str:
    await services.get("engagement", f"/conversations/{conversation_id}")   # the inbox's visibility first
    return (await services.get("clients", f"/leads/by-conversation/{conversation_id}"))["id"]


async def answer(request: Request, services: ServiceClient, conversation_id: str, call, notice: str,
                 default_field: str, form: dict[str, str] | None = None) -> Response:
    lead_id = await lead_id_of(services, conversation_id)
    try:
        await call(lead_id)
    except ServiceError as exc:
        if exc.status_code not in (409, 422):
            raise
        ctx = await panel_context(services, conversation_id, errors=form_errors(exc, default_field), form=form)
        return panel(request, ctx, status_code=422)
    if not is_htmx(request):
        return redirect(request, f"/inbox/{conversation_id}")
    return panel(request, await panel_context(services, conversation_id, notice=notice))


@get("/inbox/{conversation_id:str}/lead", name="inbox_lead", opt=SALES_STAFF)
async def inbox_lead(request: Request, services: Services, conversation_id: FromPath[str]) -> Response:
    try:
        return panel(request, await panel_context(services, conversation_id))
    except ServiceUnavailable:   # the panel loads into the conversation page: leave the page whole
        return Response("", media_type="text/html", headers={"Vary": "HX-Request"})


@post("/inbox/{conversation_id:str}/lead", name="inbox_lead_save", opt=SALES_STAFF)
async def inbox_lead_save(request: Request, services: Services, conversation_id: FromPath[str]) -> Response:
    form = await request.form()
    values = {k: str(form.get(k) or "").strip() for k in PANEL_FIELDS}
    body: dict[str, Any] = {k: v for k, v in values.items() if k != "payer_type"}
    if values["payer_type"] in ("individual", "legal"):
        body["payer_type"] = values["payer_type"]
    for key in ("company_name", "bin"):
        if not body[key]:
            body.pop(key)

    async def call(lead_id: str) -> Any:
        return await services.patch("clients", f"/leads/{lead_id}", json=body)

    return await answer(request, services, conversation_id, call, _("Lead saved."), "full_name", values)


@post("/inbox/{conversation_id:str}/lead/stage", name="inbox_lead_stage", opt=SALES_STAFF)
async def inbox_lead_stage(request: Request, services: Services, conversation_id: FromPath[str]) -> Response:
    stage = str((await request.form()).get("stage") or "")

    async def call(lead_id: str) -> Any:
        return await services.post("clients", f"/leads/{lead_id}/stage", json={"stage": stage or None})

    return await answer(request, services, conversation_id, call, _("Stage changed."), "stage")


@post("/inbox/{conversation_id:str}/lead/disqualify", name="inbox_lead_disqualify", opt=SALES_STAFF)
async def inbox_lead_disqualify(request: Request, services: Services, conversation_id: FromPath[str]) -> Response:
    reason = str((await request.form()).get("reason") or "")

    async def call(lead_id: str) -> Any:
        return await services.post("clients", f"/leads/{lead_id}/disqualify",
                                   json={"reason": reason if reason else None})

    return await answer(request, services, conversation_id, call,
                        _("Marked: the lead left the funnel.") if reason else _("The lead is back in the funnel."),
                        "reason")


routes = [inbox_lead, inbox_lead_save, inbox_lead_stage, inbox_lead_disqualify]
