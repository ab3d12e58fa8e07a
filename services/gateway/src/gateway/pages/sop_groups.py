"""Groups (issue 13, EN-8): the chat groups the agency runs, their owners, categories and tags.

Lead and senior agents edit (bulk category / owner change, a group added by hand, one group's form, where an
owner change is a transfer); analysts read. Each row shows this month's pushes against the monthly quota.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from gateway.i18n import _
from gateway.pages.sop_common import (
    SOP_EDITORS,
    SOP_READERS,
    can_edit,
    channel_label,
    channel_list,
    owner_choices,
    sop_errors,
    tags_of,
)
from gateway.people import person
from gateway.rendering import page, redirect
from gateway.service_client import ServiceClient, ServiceError, ServiceUnavailable
from gateway.ui import page_number, page_of

Services = NamedDependency[ServiceClient]
PER_PAGE = 25
FILTERS = ("category", "tag", "owner", "channel", "q", "sort", "page", "state")
SORTS = ("title", "category", "owner", "-pushes")
ALL_PAGE = 500   # the service's largest page


def query_of(pairs: Any) -> dict[str, str]:
    return {k: str(v).strip() for k, v in pairs if k in FILTERS and str(v).strip()}


async def quota_of(services: ServiceClient) -> int | None:
    try:
        return int((await services.get("engagement", "/push-settings"))["monthly_quota"])
    except (ServiceError, ServiceUnavailable, KeyError, TypeError, ValueError):
        return None


async def groups_context(request: Request, services: ServiceClient, query: dict[str, str], *,
                         notice: str = "", errors: dict[str, str] | None = None,
                         form: dict[str, Any] | None = None) -> dict[str, Any]:
    number = page_number(query.get("page"))
    answer = await list_groups(services, query, number)
    channels = await channel_list(services)
    names = {c["id"]: c.get("name") or c["id"] for c in channels}
    for g in answer["items"]:
        g["owner_name"] = person(g.get("owner")) if g.get("owner") else _("No owner yet")
        g["channel_name"] = names.get(g.get("channel_id"), channel_label(g.get("channel_kind")))
    return {"groups": page_of(answer["items"], number, PER_PAGE, int(answer.get("total", len(answer["items"])))),
            "query": query, "quota": await quota_of(services), "channels": channels,
            "owners": await owner_choices(request), "can_edit": can_edit(request), "notice": notice,
            "errors": errors or {}, "form": form or {},
            "back": urlencode({k: v for k, v in query.items()})}


async def list_groups(services: ServiceClient, query: dict[str, str], number: int) -> dict[str, Any]:
    """One page of groups. The service filters by category, tag, owner and name, pages by title; a channel
    filter or another order is applied here over all the matching groups (an agency has hundreds, not more)."""
    active = "false" if query.get("state") == "inactive" else "true"   # groups the bot was removed from
    params: dict[str, Any] = {"active": active, **{k: query[k] for k in ("category", "tag", "owner", "q")
                                                    if query.get(k)}}
    sort, channel = query.get("sort") if query.get("sort") in SORTS else "", query.get("channel", "")
    if not sort and not channel:
        return await services.get("engagement", "/groups", params={**params, "page": number, "per_page": PER_PAGE})
    items: list[dict[str, Any]] = []
    while True:
        answer = await services.get("engagement", "/groups", params={
            **params, "page": len(items) // ALL_PAGE + 1, "per_page": ALL_PAGE})
        items += answer["items"]
        if len(answer["items"]) < ALL_PAGE or len(items) >= int(answer.get("total", 0)):
            break
    if channel:
        items = [g for g in items if (g.get("channel_id") or "") == channel]
    if sort:
        key = {"title": lambda g: (g.get("title") or "").lower(), "category": lambda g: g.get("category") or "",
               "owner": lambda g: person(g.get("owner")) if g.get("owner") else "",
               "-pushes": lambda g: -int(g.get("pushes_this_month") or 0)}[sort]
        items.sort(key=key)
    start = (number - 1) * PER_PAGE
    return {"items": items[start:start + PER_PAGE], "total": len(items)}


@get("/groups", name="groups", opt=SOP_READERS)
async def groups_page(request: Request, services: Services) -> Response:
    ctx = await groups_context(request, services, query_of(request.query_params.items()))
    return page(request, "pages/sop_groups.html", ctx, block="groups")


@post("/groups/bulk", name="groups_bulk", opt=SOP_EDITORS)
async def groups_bulk(request: Request, services: Services) -> Response:
    """One change for the ticked groups: a category and/or an owner (an owner change transfers each group)."""
    form = await request.form()
    query = query_of(parse_qsl(str(form.get("back") or "")))
    ids = [str(i) for i in form.getall("ids", []) if str(i).strip()]
    body: dict[str, Any] = {"ids": ids}
    if str(form.get("bulk_category") or "").strip():
        body["category"] = str(form["bulk_category"]).strip()
    if str(form.get("bulk_owner") or "").strip():
        body["owner"] = str(form["bulk_owner"]).strip()
    errors: dict[str, str] = {}
    if not ids:
        errors["ids"] = _("Tick the groups to change.")
    if len(body) == 1:
        errors["bulk"] = _("Choose a new category or a new owner.")
    if not errors:
        try:
            await services.post("engagement", "/groups/bulk", json=body)
        except ServiceError as exc:
            if exc.status_code not in (400, 404, 409, 422):
                raise
            errors = {"bulk": " ".join(sop_errors(exc, "bulk").values())}
    notice = "" if errors else _("%(n)s groups changed.") % {"n": len(ids)}
    ctx = await groups_context(request, services, query, notice=notice, errors=errors)
    return page(request, "pages/sop_groups.html", ctx, block="groups", status_code=422 if errors else 200)


def group_body(form: Any, *, new: bool) -> tuple[dict[str, Any], dict[str, str]]:
    errors: dict[str, str] = {}
    body: dict[str, Any] = {"title": str(form.get("title") or "").strip(),
                            "owner": str(form.get("owner") or "").strip() or None,
                            "category": str(form.get("category") or "").strip(),
                            "tags": tags_of(str(form.get("tags") or ""))}
    if not body["title"]:
        errors["title"] = _("Name the group as it is called in the messenger.")
    if new:
        body["channel_id"] = str(form.get("channel_id") or "").strip() or None
        body["external_id"] = str(form.get("external_id") or "").strip()
        if not body["external_id"]:
            errors["external_id"] = _("Enter the group's id or link in the messenger.")
    return body, errors


@post("/groups", name="group_create", opt=SOP_EDITORS)
async def group_create(request: Request, services: Services) -> Response:
    """A group entered by hand (a channel where no bot posts: its pushes are sent by their owner)."""
    form = await request.form()
    query = query_of(parse_qsl(str(form.get("back") or "")))
    body, errors = group_body(form, new=True)
    if not errors:
        try:
            await services.post("engagement", "/groups", json=body)
        except ServiceError as exc:
            if exc.status_code not in (400, 404, 409, 422):
                raise
            errors = sop_errors(exc, "title")
    if errors:
        ctx = await groups_context(request, services, query, errors=errors,
                                   form={k: str(v) for k, v in form.items() if k != "_csrf"})
        return page(request, "pages/sop_groups.html", ctx, block="groups", status_code=422)
    ctx = await groups_context(request, services, query, notice=_("Group %(title)s added.") % {"title": body["title"]})
    return page(request, "pages/sop_groups.html", ctx, block="groups")


async def group_context(request: Request, services: ServiceClient, group_id: str, **extra: Any) -> dict[str, Any]:
    group = await services.get("engagement", f"/groups/{group_id}")
    channels = await channel_list(services)
    names = {c["id"]: c.get("name") or c["id"] for c in channels}
    group["channel_name"] = names.get(group.get("channel_id"), channel_label(group.get("channel_kind")))
    return {"group": group, "owners": await owner_choices(request), "quota": await quota_of(services),
            "can_edit": can_edit(request), "errors": {}, "notice": "", "form": None, **extra}


@get("/groups/{group_id:str}", name="group_page", opt=SOP_READERS)
async def group_page(request: Request, services: Services, group_id: FromPath[str]) -> Response:
    return page(request, "pages/sop_group.html", await group_context(request, services, group_id), block="group")


@post("/groups/{group_id:str}", name="group_update", opt=SOP_EDITORS)
async def group_update(request: Request, services: Services, group_id: FromPath[str]) -> Response:
    form = await request.form()
    body, errors = group_body(form, new=False)
    before = await services.get("engagement", f"/groups/{group_id}")
    if not errors:
        try:
            await services.patch("engagement", f"/groups/{group_id}", json=body)
        except ServiceError as exc:
            if exc.status_code not in (400, 404, 409, 422):
                raise
            errors = sop_errors(exc, "title")
    if errors:
        ctx = await group_context(request, services, group_id, errors=errors,
                                  form={k: str(v) for k, v in form.items() if k != "_csrf"})
        return page(request, "pages/sop_group.html", ctx, block="group", status_code=422)
    if not request.headers.get("hx-request"):
        return redirect(request, f"/groups/{group_id}")
    notice = _("Saved.")
    if body["owner"] != before.get("owner"):
        notice = _("The group is transferred to %(name)s. Pushes already made for %(old)s fail as transferred; "
                   "the lead can re-target them to the new owner.") % {
            "name": person(body["owner"]), "old": person(before.get("owner"))}
    return page(request, "pages/sop_group.html", await group_context(request, services, group_id, notice=notice),
                block="group")


routes = [groups_page, groups_bulk, group_create, group_page, group_update]
