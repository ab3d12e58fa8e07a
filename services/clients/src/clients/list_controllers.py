"""List routes of issue 9 ("Lists that scale"): the pipeline board and the Clients list / client card.

Same conventions as controllers.py: under /api/clients, acting for `actor`, role checks in access.py,
one request = one transaction; a bad parameter is a 422 naming it.
"""

from __future__ import annotations

from typing import Any

from litestar import Response, get, patch
from litestar.di import NamedDependency
from litestar.params import JSONBody
from shared.auth import Actor
from shared.errors import Forbidden
from shared.service import Runtime
from sqlalchemy.ext.asyncio import AsyncSession

from clients import access, services
from clients.schemas import DEFAULT_LIMIT, MAX_LIMIT, ClientPatchIn, Errors, parse_page
from clients.views import client_view, deal_summary, iso
from shared import messages as M

TOTAL_COUNT_DOC = "rows matching the filters across all pages"


def money_view(sums: list[tuple[str, Any]]) -> list[dict[str, str]]:
    return [{"currency": currency, "amount": str(amount)} for currency, amount in sums]


@get("/board")
async def get_board(session: NamedDependency[AsyncSession], actor: NamedDependency[Actor], manager: str | None = None,
                    service_kind: str | None = None, q: str | None = None,
                    limit: int = DEFAULT_LIMIT) -> dict[str, Any]:
    """The pipeline board in one request: per stage (pipeline order) `count` and `sums` (per currency,
    payments − refunds) of ALL its deals the actor may see under the filters — computed by aggregate
    queries — and its first `limit` deals (1…200, default 50; newest first payment first, Lost: most
    recently lost first). The rest of a column: GET /deals?stage=…&sort=…&offset=…&q=… . Filters:
    `manager` (responsible manager), `service_kind`, `q` (a part of the client's name, phone,
    Instagram or e-mail, any case). `managers`: the responsible managers of the visible deals."""
    access.require_reader(actor)
    if not 1 <= limit <= MAX_LIMIT:
        errors = Errors()
        errors.add("limit", M.LIST_LIMIT, max=MAX_LIMIT)
        errors.raise_if_any()
    columns, managers = await services.board(session, actor, limit=limit, manager=manager,
                                             service_kind=service_kind, q=q)
    return {"columns": [{"stage": c.stage, "count": c.count, "sums": money_view(c.sums),
                         "sort": services.BOARD_SORT.get(c.stage, services.DEAL_DEFAULT_SORT),
                         "deals": [deal_summary(r.deal, r.client_name, r.paid_total, r.currency) for r in c.rows]}
                        for c in columns],
            "managers": managers, "total": sum(c.count for c in columns)}


@get("/clients")
async def list_clients(session: NamedDependency[AsyncSession], actor: NamedDependency[Actor], q: str | None = None,
                       limit: int = DEFAULT_LIMIT, offset: int = 0, sort: str | None = None) -> Response[list[dict[str, Any]]]:
    """The clients with at least one deal the actor may see (a manager: the clients of their deals),
    each with `deals` (how many visible), `paid` (per currency, payments − refunds of those deals) and
    `last_activity` (the latest payment or stage fact of those deals). `q`: a part of the name, phone,
    Instagram or e-mail, any case. Sort: full_name (default), deals, paid, last_activity (`-` for
    descending). Paging as GET /deals (`X-Total-Count`)."""
    access.require_reader(actor)
    page = parse_page(limit, offset, sort, services.CLIENT_SORTS, services.CLIENT_DEFAULT_SORT)
    rows, total = await services.list_clients(session, actor, page, q=q)
    return Response([{**client_view(r.client), "deals": r.deals, "paid": money_view(r.paid),
                      "last_activity": iso(r.last_activity)} for r in rows],
                    headers={"X-Total-Count": str(total)})


async def card_view(session: AsyncSession, actor: Actor, client_id: str) -> dict[str, Any]:
    client, rows = await services.client_card(session, actor, client_id)
    totals: dict[str, Any] = {}
    for r in rows:
        if r.currency:
            totals[r.currency] = totals.get(r.currency, 0) + r.paid_total
    return {**client_view(client), "deals": [deal_summary(r.deal, r.client_name, r.paid_total, r.currency)
                                             for r in rows],
            "paid": money_view(sorted(totals.items())),
            "may_edit": services.may_edit_card(actor, [r.deal for r in rows])}


@get("/clients/{client_id:str}")
async def get_client(client_id: str, session: NamedDependency[AsyncSession], actor: NamedDependency[Actor]) -> dict[str, Any]:
    """CL-1: the client card with all the deals the actor may see of it (`deals`, newest first), their
    total paid, and `may_edit`. A client with no deal the actor may see is a 404, as if absent."""
    access.require_reader(actor)
    return await card_view(session, actor, client_id)


@patch("/clients/{client_id:str}", status_code=200)
async def patch_client_card(client_id: str, data: JSONBody[ClientPatchIn], session: NamedDependency[AsyncSession],
                            runtime: NamedDependency[Runtime], actor: NamedDependency[Actor]) -> dict[str, Any]:
    """CL-1: edit the card by its id — the same edit as PATCH /deals/{id}/client, allowed to whoever may
    change one of the client's deals (404 with no visible deal, 403 with visible deals only to read)."""
    from clients.controllers import ctx_of

    client, rows = await services.client_card(session, actor, client_id)
    if not services.may_edit_card(actor, [r.deal for r in rows]):
        raise M.refusal(Forbidden, None, M.ROLE_MAY_NOT_CHANGE_CARD, role=actor.role)
    await services.update_client(ctx_of(session, runtime, actor), client, data)
    return await card_view(session, actor, client_id)


list_routes = [get_board, list_clients, get_client, patch_client_card]
