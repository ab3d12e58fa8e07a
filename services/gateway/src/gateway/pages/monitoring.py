"""Monitoring (issue 11, EN-6): the triage queue of mentions (filters, search, paging; convert into a conversation
or dismiss with a reason, in place with htmx), the manual mention form, the feed sources and keyword rules, the
monitoring dashboard's numbers and the menu's count of new mentions. The engagement service decides; these
handlers only ask it and say its answers in the user's language.

Client accounts are shown by the client's name: monitoring staff cannot read deals, so the gateway reads the names
of the accounts (and nothing else of a deal) with its own integration token (`account_names`).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath

from gateway.i18n import N_, _
from gateway.messages import say_item
from gateway.pages.deals import Services, is_htmx
from gateway.rendering import page, redirect
from gateway.roles import LEAD, MONITORING, allow
from gateway.service_client import ServiceClient, ServiceError, ServiceUnavailable
from gateway.ui import page_number, page_of

TRIAGE = allow(LEAD, MONITORING)
PAGE_SIZE = 20
STATUSES = {"new": N_("New"), "converted": N_("Turned into conversations"), "dismissed": N_("Dismissed")}
REASONS = {"spam": N_("Spam"), "irrelevant": N_("Not relevant"), "duplicate": N_("Duplicate"), "other": N_("Other")}
AGENCY = "agency"
# The engagement service's messages the forms know how to say; anything else is shown as sent.
MESSAGES = {
    "required": N_("Required."),
    "must be an http(s) URL": N_("Enter an address starting with http:// or https://."),
    "must be between 1 and 1440": N_("Between 1 and 1440 minutes."),
    "at least one keyword is required": N_("Enter at least one keyword."),
    "say why when the reason is other": N_("Say why."),
    "this client account already watches this feed": N_("This client account already watches this feed."),
}


def say(message: str) -> str:
    for known, msgid in MESSAGES.items():
        if message.strip() == known or message.strip().startswith(known):
            return _(msgid)
    if message.startswith("reason is required"):
        return _("Choose a reason.")
    if message.startswith("the mention is already"):
        return _("Someone has already triaged this mention.")
    return message


def errors_of(exc: ServiceError, default: str = "form") -> dict[str, str]:
    errors: dict[str, str] = {}
    for item in exc.errors:
        field = str(item.get("field") or default)
        message = str(item.get("message") or exc.detail)
        # This page's own wording where it has one; else the code's translation (or the service's words).
        errors[field] = say(message) if say(message) != message else say_item(item)
    return errors or {default: say(exc.detail)}


async def account_names(services: ServiceClient) -> dict[str, str]:
    """deal id → the client's name, for labelling client accounts; {} when the clients service does not answer."""
    reader = ServiceClient(services.http, services.settings, None)
    try:
        deals, _total = await reader.get_page("clients", "/deals", params={"limit": 200})
    except (ServiceError, ServiceUnavailable):
        return {}
    return {d["id"]: d.get("client_name") or d["id"] for d in deals if d.get("id")}


def account_label(names: dict[str, str], account: str | None) -> str:
    if not account or account == AGENCY:
        return _("Agency's own brand")
    return names.get(account, account)


def _text(form: Any, key: str) -> str:
    return str(form.get(key) or "").strip()


# ------------------------------------------------------------------ the triage queue

def queue_query(request: Request) -> dict[str, str]:
    q = {k: str(v).strip() for k, v in request.query_params.items() if k in ("status", "deal_id", "q", "page")}
    q["status"] = q.get("status") if q.get("status") in STATUSES else "new"
    return {k: v for k, v in q.items() if v}


async def queue_context(request: Request, services: ServiceClient, query: dict[str, str], *, notice: str = "",
                        errors: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
    page_no = page_number(query.get("page"))
    params = {k: query[k] for k in ("status", "deal_id", "q") if query.get(k)}
    mentions, total = await services.get_page("engagement", "/mentions", params={
        **params, "limit": PAGE_SIZE, "offset": (page_no - 1) * PAGE_SIZE})
    last = max(1, -(-total // PAGE_SIZE))
    if page_no > last:
        page_no = last
        mentions, total = await services.get_page("engagement", "/mentions", params={
            **params, "limit": PAGE_SIZE, "offset": (page_no - 1) * PAGE_SIZE})
    names = await account_names(services)
    accounts = sorted({*names, *(m["account"] for m in mentions if m.get("account") != AGENCY)},
                      key=lambda a: account_label(names, a).casefold())
    return {"mentions": page_of(mentions, page_no, PAGE_SIZE, total), "query": query, "statuses": STATUSES,
            "reasons": REASONS, "names": names, "accounts": [(AGENCY, account_label(names, AGENCY)),
                                                             *((a, account_label(names, a)) for a in accounts)],
            "account_label": lambda a: account_label(names, a), "notice": notice, "errors": errors or {}}


@get("/monitoring", name="monitoring", opt=TRIAGE)
async def queue(request: Request, services: Services) -> Response:
    return page(request, "pages/monitoring.html", await queue_context(request, services, queue_query(request)),
                block="queue")


def _back(form: Any) -> dict[str, str]:
    """The queue's filters the form was posted from (hidden fields), to show the same queue afterwards."""
    q = {k: _text(form, k) for k in ("status", "deal_id", "q", "page")}
    q["status"] = q["status"] if q["status"] in STATUSES else "new"
    return {k: v for k, v in q.items() if v}


def _queue_url(query: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return "/monitoring" + (f"?{urlencode(query)}" if query else "")


@post("/monitoring/mentions/{mention_id:str}/convert", name="monitoring_convert", opt=TRIAGE)
async def convert(request: Request, services: Services, mention_id: FromPath[str]) -> Response:
    form = await request.form()
    query = _back(form)
    try:
        await services.post("engagement", f"/mentions/{mention_id}/convert")
    except ServiceError as exc:
        if exc.status_code not in (404, 409, 422):
            raise
        ctx = await queue_context(request, services, query, errors={mention_id: errors_of(exc)})
        return page(request, "pages/monitoring.html", ctx, block="queue", status_code=exc.status_code)
    if not is_htmx(request):
        return redirect(request, _queue_url(query))
    ctx = await queue_context(request, services, query,
                              notice=_("The mention is now a conversation in the inbox."))
    return page(request, "pages/monitoring.html", ctx, block="queue")


@post("/monitoring/mentions/{mention_id:str}/dismiss", name="monitoring_dismiss", opt=TRIAGE)
async def dismiss(request: Request, services: Services, mention_id: FromPath[str]) -> Response:
    form = await request.form()
    query = _back(form)
    reason, note = _text(form, "reason"), _text(form, "note")
    errors: dict[str, str] = {}
    if reason not in REASONS:
        errors["reason"] = _("Choose a reason.")
    elif reason == "other" and not note:
        errors["note"] = _("Say why.")
    else:
        try:
            await services.post("engagement", f"/mentions/{mention_id}/dismiss",
                                json={"reason": reason, **({"note": note} if note else {})})
        except ServiceError as exc:
            if exc.status_code not in (404, 409, 422):
                raise
            errors = errors_of(exc)
    if errors:
        ctx = await queue_context(request, services, query, errors={mention_id: errors})
        return page(request, "pages/monitoring.html", ctx, block="queue", status_code=422)
    if not is_htmx(request):
        return redirect(request, _queue_url(query))
    ctx = await queue_context(request, services, query, notice=_("The mention is dismissed."))
    return page(request, "pages/monitoring.html", ctx, block="queue")


# ------------------------------------------------------------------ a mention entered by hand

MENTION_FIELDS = ("url", "source_name", "author", "title", "text", "deal_id")


async def _accounts(services: ServiceClient) -> list[tuple[str, str]]:
    names = await account_names(services)
    return [(AGENCY, account_label(names, AGENCY)),
            *sorted(names.items(), key=lambda kv: kv[1].casefold())]


@get("/monitoring/new", name="monitoring_new", opt=TRIAGE)
async def new_mention(request: Request, services: Services) -> Response:
    return page(request, "pages/monitoring_new.html", {"form": {}, "errors": {},
                                                       "accounts": await _accounts(services)}, block="mention_form")


@post("/monitoring/new", name="monitoring_new_submit", opt=TRIAGE)
async def new_mention_submit(request: Request, services: Services) -> Response:
    form = await request.form()
    values = {k: _text(form, k) for k in MENTION_FIELDS}
    errors = {k: _("Required.") for k in ("url", "source_name", "text") if not values[k]}
    if not errors:
        body = {k: v for k, v in values.items() if k != "deal_id"}
        if values["deal_id"] and values["deal_id"] != AGENCY:
            body["deal_id"] = values["deal_id"]
        try:
            await services.post("engagement", "/mentions", json=body)
        except ServiceError as exc:
            if exc.status_code not in (409, 422):
                raise
            errors = errors_of(exc)
    if errors:
        return page(request, "pages/monitoring_new.html", {"form": values, "errors": errors,
                                                           "accounts": await _accounts(services)},
                    block="mention_form", status_code=422)
    return redirect(request, "/monitoring")


# ------------------------------------------------------------------ sources and keyword rules

async def sources_context(services: ServiceClient, *, source_form: dict[str, str] | None = None,
                          rule_form: dict[str, str] | None = None, errors: dict[str, str] | None = None,
                          notice: str = "") -> dict[str, Any]:
    sources = await services.get("engagement", "/monitoring/sources")
    rules = await services.get("engagement", "/monitoring/rules")
    names = await account_names(services)
    return {"sources": sources, "rules": rules, "accounts": await _accounts(services),
            "account_label": lambda a: account_label(names, a), "source_form": source_form or {"interval": "15"},
            "rule_form": rule_form or {}, "errors": errors or {}, "notice": notice}


@get("/monitoring/sources", name="monitoring_sources", opt=TRIAGE)
async def sources_page(request: Request, services: Services) -> Response:
    return page(request, "pages/monitoring_sources.html", await sources_context(services), block="sources")


def _deal(value: str) -> dict[str, str]:
    return {"deal_id": value} if value and value != AGENCY else {}


@post("/monitoring/sources", name="monitoring_source_add", opt=TRIAGE)
async def source_add(request: Request, services: Services) -> Response:
    form = await request.form()
    values = {k: _text(form, k) for k in ("name", "url", "interval", "deal_id")}
    errors = {k: _("Required.") for k in ("name", "url") if not values[k]}
    try:
        interval = int(values["interval"] or 15)
    except ValueError:
        errors["interval_minutes"] = _("Between 1 and 1440 minutes.")
        interval = 15
    if not errors:
        try:
            await services.post("engagement", "/monitoring/sources", json={
                "name": values["name"], "url": values["url"], "interval_minutes": interval, **_deal(values["deal_id"])})
        except ServiceError as exc:
            if exc.status_code not in (409, 422):
                raise
            errors = errors_of(exc)
    if errors:
        ctx = await sources_context(services, source_form=values, errors=errors)
        return page(request, "pages/monitoring_sources.html", ctx, block="sources", status_code=422)
    if not is_htmx(request):
        return redirect(request, "/monitoring/sources")
    ctx = await sources_context(services, notice=_("The feed is watched; it is read within a minute."))
    return page(request, "pages/monitoring_sources.html", ctx, block="sources")


@post("/monitoring/sources/{source_id:str}/delete", name="monitoring_source_delete", opt=TRIAGE)
async def source_delete(request: Request, services: Services, source_id: FromPath[str]) -> Response:
    await services.delete("engagement", f"/monitoring/sources/{source_id}")
    if not is_htmx(request):
        return redirect(request, "/monitoring/sources")
    ctx = await sources_context(services, notice=_("The feed is no longer watched; its mentions stay."))
    return page(request, "pages/monitoring_sources.html", ctx, block="sources")


def terms(value: str) -> list[str]:
    """Keywords typed one per line or separated by commas."""
    return [t.strip() for line in value.splitlines() for t in line.split(",") if t.strip()]


@post("/monitoring/rules", name="monitoring_rule_add", opt=TRIAGE)
async def rule_add(request: Request, services: Services) -> Response:
    form = await request.form()
    values = {k: _text(form, k) for k in ("keywords", "exclusions", "rule_deal_id")}
    errors: dict[str, str] = {}
    if not terms(values["keywords"]):
        errors["keywords"] = _("Enter at least one keyword.")
    else:
        try:
            await services.post("engagement", "/monitoring/rules", json={
                "keywords": terms(values["keywords"]), "exclusions": terms(values["exclusions"]),
                **_deal(values["rule_deal_id"])})
        except ServiceError as exc:
            if exc.status_code not in (409, 422):
                raise
            errors = errors_of(exc)
    if errors:
        ctx = await sources_context(services, rule_form=values, errors=errors)
        return page(request, "pages/monitoring_sources.html", ctx, block="sources", status_code=422)
    if not is_htmx(request):
        return redirect(request, "/monitoring/sources")
    return page(request, "pages/monitoring_sources.html",
                await sources_context(services, notice=_("Keyword rule added.")), block="sources")


@post("/monitoring/rules/{keyword_rule_id:str}/delete", name="monitoring_rule_delete", opt=TRIAGE)
async def rule_delete(request: Request, services: Services, keyword_rule_id: FromPath[str]) -> Response:
    await services.delete("engagement", f"/monitoring/rules/{keyword_rule_id}")
    if not is_htmx(request):
        return redirect(request, "/monitoring/sources")
    return page(request, "pages/monitoring_sources.html",
                await sources_context(services, notice=_("Keyword rule removed.")), block="sources")


# ------------------------------------------------------------------ dashboard and menu

async def dashboard_context(services: ServiceClient) -> dict[str, Any]:
    """The monitoring role's dashboard: new mentions per client account and the feeds that fail."""
    try:
        summary = await services.get("engagement", "/mentions/summary")
    except (ServiceError, ServiceUnavailable):
        return {"summary": None}
    names = await account_names(services)
    return {"summary": summary, "account_label": lambda a: account_label(names, a)}


@get("/nav/mentions", name="nav_mentions", opt=TRIAGE)
async def nav_mentions(request: Request, services: Services) -> Response:
    """The menu's count of new mentions (htmx polls it every minute); nothing when the service does not answer."""
    try:
        _items, count = await services.get_page("engagement", "/mentions", params={"status": "new", "limit": 1})
    except (ServiceError, ServiceUnavailable):
        count = 0
    return page(request, "partials/nav_mentions.html", {"count": count}, block="count")


routes = [queue, convert, dismiss, new_mention, new_mention_submit, sources_page, source_add, source_delete, rule_add,
          rule_delete, nav_mentions]
