"""Clients (issue 9): every client with search, sort and paging, and the client card (CL-1) with all its deals.

The clients service decides who sees which client: one with at least one deal the signed-in user may
see (a manager: the clients of their deals; the lead and the analyst: everyone), and its figures count
those deals only. The card is edited by whoever may change one of its deals (the service answers 403 /
404 otherwise); its 422 field messages are shown beside the fields, with what was typed kept.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath

from gateway.i18n import _
from gateway.labels import CLIENT_FIELDS
from gateway.pages.deals import OWNERS, READERS, Services, is_htmx
from gateway.rendering import page, redirect
from gateway.service_client import ServiceClient, ServiceError
from gateway.ui import form_errors, page_number, page_of, to_decimal

PAGE_SIZE = 25
SORTS = {"name": "full_name", "deals": "deals", "paid": "paid", "activity": "last_activity"}
DEFAULT_DIR = {"name": "asc", "deals": "desc", "paid": "desc", "activity": "desc"}


def money_of(sums: list[dict[str, str]]) -> list[tuple[str, Any]]:
    return [(s["currency"], to_decimal(s["amount"])) for s in sums or []]


async def clients_context(services: ServiceClient, query: dict[str, str]) -> dict[str, Any]:
    """One page of clients, searched, sorted and counted by the clients service. A page past the end
    (an old link, a narrower search) says so and shows the last page."""
    sort = query.get("sort") if query.get("sort") in SORTS else "name"
    direction = query.get("dir") if query.get("dir") in ("asc", "desc") else DEFAULT_DIR[sort]
    params: dict[str, Any] = {"sort": ("-" if direction == "desc" else "") + SORTS[sort]}
    if (query.get("q") or "").strip():
        params["q"] = query["q"].strip()
    page_no = page_number(query.get("page"))
    rows, total = await services.get_page("clients", "/clients", params={
        **params, "limit": PAGE_SIZE, "offset": (page_no - 1) * PAGE_SIZE})
    last = max(1, -(-total // PAGE_SIZE))
    past_end = 0
    if page_no > last:
        past_end, page_no = page_no, last
        rows, total = await services.get_page("clients", "/clients", params={
            **params, "limit": PAGE_SIZE, "offset": (page_no - 1) * PAGE_SIZE})
    for row in rows:
        row["money"] = money_of(row.get("paid"))
    return {"clients": page_of(rows, page_no, PAGE_SIZE, total), "past_end": past_end,
            "query": {**{k: v for k, v in query.items() if k in ("q",)}, "sort": sort, "dir": direction}}


def query_of(request: Request) -> dict[str, str]:
    return {k: str(v) for k, v in request.query_params.items() if k in ("q", "sort", "dir", "page")}


@get("/clients", name="clients", opt=READERS)
async def clients_page(request: Request, services: Services) -> Response:
    return page(request, "pages/clients.html", await clients_context(services, query_of(request)), block="clients")


async def card_context(services: ServiceClient, client_id: str, *, errors: dict[str, str] | None = None,
                       values: dict[str, str] | None = None, notice: str = "") -> dict[str, Any]:
    card = await services.get("clients", f"/clients/{client_id}")
    for deal in card["deals"]:
        deal["amount"] = to_decimal(deal.get("paid_total"))
    return {"card": card, "money": money_of(card.get("paid")), "errors": errors or {}, "notice": notice,
            "values": values or {name: card.get(name) or "" for name in CLIENT_FIELDS}}


@get("/clients/{client_id:str}", name="client_card", opt=READERS)
async def client_card(request: Request, services: Services, client_id: FromPath[str]) -> Response:
    return page(request, "pages/client.html", await card_context(services, client_id), block="client")


@post("/clients/{client_id:str}", name="client_edit", opt=OWNERS)
async def client_edit(request: Request, services: Services, client_id: FromPath[str]) -> Response:
    """CL-1: the card's edit; the service validates it whole and writes it on every deal's timeline."""
    form = await request.form()
    values = {name: str(form.get(name) or "") for name in CLIENT_FIELDS}
    body = {name: value for name, value in values.items() if name in form}
    errors: dict[str, str] = {}
    try:
        await services.patch("clients", f"/clients/{client_id}", json=body)
    except ServiceError as exc:
        if exc.status_code not in (400, 409, 422):
            raise
        errors = form_errors(exc)
    if not errors and not is_htmx(request):
        return redirect(request, f"/clients/{client_id}")
    ctx = await card_context(services, client_id, errors=errors, values=values if errors else None,
                             notice="" if errors else _("Client card saved."))
    return page(request, "pages/client.html", ctx, block="client", status_code=422 if errors else 200)


routes = [clients_page, client_card, client_edit]
