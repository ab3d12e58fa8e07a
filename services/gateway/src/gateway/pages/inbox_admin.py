"""The care inbox's settings pages and the client's answer page (issue 11).

- `/inbox/channels` (the lead): channel accounts (Instagram, Telegram, VK, e-mail, web form) bound to a deal's
  client account or to the agency's own; the secrets are typed once and never shown back (the engagement
  service keeps them encrypted and never answers them); a Telegram account has a "register webhook" button.
- `/inbox/templates` (the lead and senior agents): reply templates and scripts per category, with the variables
  `{client_name}`, `{customer_name}`, `{agent_name}`.
- `/answer/{token}` (public, the signed link of "ask the client", EN-5): the client's contact person reads the
  agent's question and answers it once; an expired link is a 410 page, a wrong one a 404 page.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from gateway.i18n import N_, _
from gateway.pages.content_public import link_problem
from gateway.pages.inbox import ilabel
from gateway.rendering import page, redirect
from gateway.roles import LEAD, PUBLIC, SENIOR_AGENT, allow
from gateway.service_client import ServiceClient, ServiceError, ServiceUnavailable
from gateway.ui import form_errors

Services = NamedDependency[ServiceClient]
CHANNEL_KINDS = ("instagram", "telegram", "vk", "email", "webform")
# The config keys of issue 11's contract per kind; the secret ones are password fields, never filled back.
CONFIG_FIELDS: dict[str, tuple[str, ...]] = {
    "instagram": ("ig_user_id", "access_token"),
    "telegram": ("bot_token", "secret_token"),
    "vk": ("group_id", "access_token", "secret", "confirmation"),
    "email": ("address", "imap_host", "imap_port", "smtp_host", "smtp_port", "username", "password", "tls",
              "imap_security", "smtp_security"),
    "webform": ("email_channel_id",),   # the e-mail channel the form's answers go out through
}
# What each key is called on the page (the API's key names are for integrations).
CONFIG_LABELS: dict[str, str] = {
    "ig_user_id": N_("Instagram user id"), "access_token": N_("Access token"), "bot_token": N_("Bot token"),
    "secret_token": N_("Webhook secret"), "group_id": N_("Community id"), "secret": N_("Secret key"),
    "confirmation": N_("Confirmation string"), "address": N_("Mailbox address"), "imap_host": N_("IMAP server"),
    "imap_port": N_("IMAP port"), "smtp_host": N_("SMTP server"), "smtp_port": N_("SMTP port"),
    "username": N_("Login"), "password": N_("Password"), "tls": N_("Encrypted connection (TLS)"),
    "email_channel_id": N_("Answers go out by e-mail through"),
    "imap_security": N_("IMAP connection"), "smtp_security": N_("SMTP connection"),
}
# The e-mail security choices (engagement's channels/email.py); "" = by the TLS box and the port.
SECURITY_FIELDS = {"imap_security", "smtp_security"}
SECURITY_CHOICES: dict[str, str] = {
    "": N_("By the TLS box and the port"), "ssl": N_("TLS from the start (SSL)"), "starttls": N_("STARTTLS"),
    "none": N_("Not encrypted"),
}
SECRET_FIELDS = {"access_token", "bot_token", "secret_token", "secret", "confirmation", "password"}
NUMBER_FIELDS = {"imap_port", "smtp_port"}


# ------------------------------------------------------------------ channel accounts

async def channels_context(request: Request, services: ServiceClient, *, form: dict[str, str] | None = None,
                           errors: dict[str, str] | None = None, notice: str = "") -> dict[str, Any]:
    channels = await services.get("engagement", "/channels")
    try:
        deals, _total = await services.get_page("clients", "/deals", params={"limit": 200, "sort": "client_name"})
    except (ServiceError, ServiceUnavailable):   # the deal picker is a help: without it, the agency's own
        deals = []
    names = {d["id"]: d.get("client_name") or d["id"] for d in deals}
    return {"channels": channels, "deals": deals, "deal_names": names, "kinds": CHANNEL_KINDS,
            "fields": CONFIG_FIELDS, "secrets": SECRET_FIELDS, "form": form or {}, "errors": errors or {},
            "config_labels": CONFIG_LABELS, "security_fields": SECURITY_FIELDS,
            "security_choices": SECURITY_CHOICES, "email_channels": [c for c in channels if c.get("kind") == "email"],
            "notice": notice, "ilabel": ilabel}


@get("/inbox/channels", name="inbox_channels", opt=allow(LEAD))
async def channels_page(request: Request, services: Services) -> Response:
    return page(request, "pages/inbox_channels.html", await channels_context(request, services), block="channels")


def channel_body(form: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    kind = form.get("kind", "")
    errors: dict[str, str] = {}
    if kind not in CHANNEL_KINDS:
        return {}, {"kind": _("Choose the channel.")}
    config: dict[str, Any] = {}
    for key in CONFIG_FIELDS[kind]:
        raw = form.get(f"{kind}_{key}", "").strip()
        if key == "tls":
            config[key] = raw in ("on", "1", "true")
        elif key in NUMBER_FIELDS and raw:
            if not raw.isdigit():
                errors[f"config.{key}"] = _("Enter a port number.")
            config[key] = int(raw) if raw.isdigit() else raw
        elif raw:
            config[key] = raw
    body: dict[str, Any] = {"kind": kind, "name": form.get("name", "").strip(), "config": config}
    if form.get("deal_id", "").strip():
        body["deal_id"] = form["deal_id"].strip()
    if not body["name"]:
        errors["name"] = _("Name the account.")
    return body, errors


@post("/inbox/channels", name="inbox_channel_create", opt=allow(LEAD))
async def channel_create(request: Request, services: Services) -> Response:
    raw = await request.form()
    form = {k: str(v) for k, v in raw.items() if k != "_csrf"}
    body, errors = channel_body(form)
    # The secrets are never written back into the form, even after an error.
    shown = {k: v for k, v in form.items() if k.split("_", 1)[-1] not in SECRET_FIELDS}
    if not errors:
        try:
            await services.post("engagement", "/channels", json=body)
        except ServiceError as exc:
            if exc.status_code not in (400, 409, 422):
                raise
            errors = form_errors(exc, "name")
    if errors:
        ctx = await channels_context(request, services, form=shown, errors=errors)
        return page(request, "pages/inbox_channels.html", ctx, block="channels", status_code=422)
    ctx = await channels_context(request, services, notice=_("Channel account %(name)s created.") % {
        "name": body["name"]})
    return page(request, "pages/inbox_channels.html", ctx, block="channels")


@post("/inbox/channels/{channel_id:str}/register-webhook", name="inbox_channel_webhook", opt=allow(LEAD))
async def channel_webhook(request: Request, services: Services, channel_id: FromPath[str]) -> Response:
    try:
        await services.post("engagement", f"/channels/{channel_id}/register-webhook")
    except (ServiceError, ServiceUnavailable) as exc:
        # Telegram's refusal comes back as the service's 502, which the client reports as unavailable.
        if isinstance(exc, ServiceError) and exc.status_code not in (400, 409, 422):
            raise
        message = " ".join(form_errors(exc).values()) if isinstance(exc, ServiceError) else \
            _("Telegram did not accept the webhook or could not be reached. Check the bot token and try again.")
        ctx = await channels_context(request, services, errors={"webhook": message})
        return page(request, "pages/inbox_channels.html", ctx, block="channels", status_code=422)
    ctx = await channels_context(request, services, notice=_("Telegram webhook registered."))
    return page(request, "pages/inbox_channels.html", ctx, block="channels")


# ------------------------------------------------------------------ templates

async def templates_context(services: ServiceClient, *, form: dict[str, str] | None = None,
                            errors: dict[str, str] | None = None, notice: str = "",
                            editing: str = "") -> dict[str, Any]:
    return {"templates": await services.get("engagement", "/templates"), "form": form or {},
            "errors": errors or {}, "notice": notice, "editing": editing}


@get("/inbox/templates", name="inbox_templates", opt=allow(LEAD, SENIOR_AGENT))
async def templates_page(request: Request, services: Services) -> Response:
    return page(request, "pages/inbox_templates.html", await templates_context(services), block="templates")


async def _save_template(request: Request, services: ServiceClient, template_id: str | None) -> Response:
    raw = await request.form()
    form = {k: str(v) for k, v in raw.items() if k != "_csrf"}
    body = {"title": form.get("title", ""), "body": form.get("body", ""), "category": form.get("category", ""),
            "kind": form.get("kind", "template")}
    try:
        if template_id:
            await services.put("engagement", f"/templates/{template_id}", json=body)
        else:
            await services.post("engagement", "/templates", json=body)
    except ServiceError as exc:
        if exc.status_code not in (400, 404, 422):
            raise
        ctx = await templates_context(services, form=form, errors=form_errors(exc, "title"),
                                      editing=template_id or "")
        return page(request, "pages/inbox_templates.html", ctx, block="templates", status_code=422)
    if not request.headers.get("hx-request"):
        return redirect(request, "/inbox/templates")
    return page(request, "pages/inbox_templates.html", await templates_context(services, notice=_("Template saved.")),
                block="templates")


@post("/inbox/templates", name="inbox_template_create", opt=allow(LEAD, SENIOR_AGENT))
async def template_create(request: Request, services: Services) -> Response:
    return await _save_template(request, services, None)


@post("/inbox/templates/{template_id:str}", name="inbox_template_update", opt=allow(LEAD, SENIOR_AGENT))
async def template_update(request: Request, services: Services, template_id: FromPath[str]) -> Response:
    return await _save_template(request, services, template_id)


@post("/inbox/templates/{template_id:str}/delete", name="inbox_template_delete", opt=allow(LEAD, SENIOR_AGENT))
async def template_delete(request: Request, services: Services, template_id: FromPath[str]) -> Response:
    await services.delete("engagement", f"/templates/{template_id}")
    if not request.headers.get("hx-request"):
        return redirect(request, "/inbox/templates")
    return page(request, "pages/inbox_templates.html",
                await templates_context(services, notice=_("Template deleted.")), block="templates")


# ------------------------------------------------------------------ the client's answer (EN-5)

ANSWER_TEMPLATE = "pages/inbox_answer.html"


@get("/answer/{token:str}", name="client_answer", opt=PUBLIC)
async def answer_page(request: Request, services: Services, token: FromPath[str]) -> Response:
    try:
        question = await services.public("GET", "engagement", f"/ask/{token}")
    except ServiceError as exc:
        return link_problem(request, exc, ANSWER_TEMPLATE)
    return page(request, ANSWER_TEMPLATE, {"state": "question", "q": question, "token": token, "errors": {},
                                           "notice": "", "value": ""})


@post("/answer/{token:str}", name="client_answer_post", opt=PUBLIC)
async def answer_post(request: Request, services: Services, token: FromPath[str]) -> Response:
    raw = await request.form()
    text = str(raw.get("answer") or "").strip()
    errors: dict[str, str] = {}
    if not text:
        errors["answer"] = _("Write your answer.")
    else:
        try:
            await services.public("POST", "engagement", f"/ask/{token}", json={"answer": text})
        except ServiceError as exc:
            if exc.status_code == 409:
                errors["answer"] = _("This question has already been answered.")
            elif exc.status_code == 422:
                errors["answer"] = " ".join(form_errors(exc, "answer").values())
            else:
                return link_problem(request, exc, ANSWER_TEMPLATE)
    try:
        question = await services.public("GET", "engagement", f"/ask/{token}")
    except ServiceError as exc:
        return link_problem(request, exc, ANSWER_TEMPLATE)
    notice = "" if errors else _("Thank you! Your answer was sent to the agent.")
    return page(request, ANSWER_TEMPLATE, {"state": "question", "q": question, "token": token, "errors": errors,
                                           "notice": notice, "value": text if errors else ""},
                status_code=422 if errors else 200)


routes = [channels_page, channel_create, channel_webhook, templates_page, template_create, template_update,
          template_delete, answer_page, answer_post]
