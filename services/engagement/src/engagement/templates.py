"""EN-5: reply templates and scripts per category (issue 11 §templates), with variables filled on insertion.

Variables: `{client_name}` (the client account, e.g. the deal's client), `{customer_name}` (the person who wrote),
`{agent_name}` (the agent answering). `fill()` replaces only these three; any other `{…}` stays as written, so
a template with a typo still inserts (the agent sees it). The seeds' scripts #3 (the first call) and #4 (renewal)
are seeded by migration 0003 as examples.

The lead and senior agents keep them (DOMAIN roles: senior agent "templates, categories"); everyone who answers
reads them.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import delete, get, post, put
from litestar.params import FromPath
from shared.auth import Actor
from shared.errors import DomainError, NotFound
from shared.service import Runtime
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engagement import access
from engagement.models import ReplyTemplate, new_id
from shared import messages as M

VARIABLES = ("client_name", "customer_name", "agent_name")
KINDS = ("template", "script")
KEEPERS = (access.LEAD, access.INTEGRATION, access.SENIOR)
READERS = (*KEEPERS, access.AGENT, access.MONITORING)


class TemplateIn(msgspec.Struct, forbid_unknown_fields=True):
    title: str
    body: str
    category: str = ""
    kind: str = "template"


def fill(body: str, **values: str) -> str:
    out = body
    for name in VARIABLES:
        out = out.replace("{" + name + "}", values.get(name) or "")
    return out


def template_out(t: ReplyTemplate) -> dict[str, Any]:
    return {"id": t.id, "kind": t.kind, "category": t.category, "title": t.title, "body": t.body,
            "updated_at": t.updated_at, "updated_by": t.updated_by}


def _checked(data: TemplateIn) -> tuple[str, str, str, str]:
    title, body, category = data.title.strip(), data.body.strip(), data.category.strip().lower()
    errors = []
    if not title:
        errors.append(M.item("title", M.REQUIRED))
    elif len(title) > 200:
        errors.append(M.item("title", M.TOO_LONG_200))
    if not body:
        errors.append(M.item("body", M.REQUIRED))
    if len(category) > 50:
        errors.append(M.item("category", M.CATEGORY_TOO_LONG))
    if data.kind not in KINDS:
        errors.append(M.item("kind", M.TEMPLATE_KIND, choices=", ".join(KINDS)))
    if errors:
        raise DomainError("; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors)
    return title, body, category, data.kind


@get("/templates")
async def list_templates(session: AsyncSession, actor: Actor, category: str | None = None) -> list[dict[str, Any]]:
    """All templates, or those of one category plus the ones for any category ("")."""
    access.require_roles(actor, *READERS)
    query = select(ReplyTemplate).order_by(ReplyTemplate.kind.desc(), ReplyTemplate.category, ReplyTemplate.title)
    if category is not None:
        query = query.where(ReplyTemplate.category.in_({category.strip().lower(), ""}))
    return [template_out(t) for t in (await session.execute(query)).scalars()]


@post("/templates", status_code=201)
async def create_template(session: AsyncSession, actor: Actor, runtime: Runtime, data: TemplateIn) -> dict:
    access.require_roles(actor, *KEEPERS)
    title, body, category, kind = _checked(data)
    now = runtime.clock.now()
    row = ReplyTemplate(id=new_id(), kind=kind, category=category, title=title, body=body, created_at=now,
                        created_by=actor.login, updated_at=now, updated_by=actor.login)
    session.add(row)
    await session.flush()
    return template_out(row)


@put("/templates/{template_id:str}")
async def update_template(session: AsyncSession, actor: Actor, runtime: Runtime, template_id: FromPath[str],
                          data: TemplateIn) -> dict:
    access.require_roles(actor, *KEEPERS)
    row = await session.get(ReplyTemplate, template_id)
    if row is None:
        raise M.refusal(NotFound, None, M.TEMPLATE_NOT_FOUND)
    row.title, row.body, row.category, row.kind = _checked(data)
    row.updated_at, row.updated_by = runtime.clock.now(), actor.login
    return template_out(row)


@delete("/templates/{template_id:str}", status_code=204)
async def delete_template(session: AsyncSession, actor: Actor, template_id: FromPath[str]) -> None:
    access.require_roles(actor, *KEEPERS)
    row = await session.get(ReplyTemplate, template_id)
    if row is None:
        raise M.refusal(NotFound, None, M.TEMPLATE_NOT_FOUND)
    await session.delete(row)


async def get_template(session: AsyncSession, template_id: str) -> ReplyTemplate:
    row = await session.get(ReplyTemplate, template_id)
    if row is None:
        raise M.error("template_id", M.NO_SUCH_TEMPLATE)
    return row


routes = [list_templates, create_template, update_template, delete_template]
