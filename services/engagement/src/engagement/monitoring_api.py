"""The monitoring JSON API under /api/engagement (issue 11, "Monitoring mentions"): the triage queue, manual
mentions, feed sources and keyword rules. Thin: parse, call engagement.monitoring, answer."""

from __future__ import annotations

from typing import Any

from litestar import Response, delete, get, post
from litestar.params import FromPath
from shared.auth import Actor
from shared.service import Runtime
from sqlalchemy.ext.asyncio import AsyncSession

from engagement import monitoring
from engagement.schemas import DismissIn, KeywordRuleIn, MentionIn, SourceIn


def _wake(runtime: Runtime) -> None:
    if (poller := runtime.state.get("poller")) is not None:
        poller.wake()


@get("/mentions")
async def list_mentions(session: AsyncSession, actor: Actor, status: str | None = None, deal_id: str | None = None,
                        q: str | None = None, limit: int = 50, offset: int = 0) -> Response:
    limit = max(1, min(limit, 200))
    rows, total = await monitoring.list_mentions(session, actor, status=status, deal_id=deal_id, q=q, limit=limit,
                                                 offset=offset)
    return Response([monitoring.mention_out(m) for m in rows], headers={"X-Total-Count": str(total)})


@get("/mentions/summary")
async def mentions_summary(session: AsyncSession, actor: Actor) -> dict[str, Any]:
    return await monitoring.summary(session, actor)


@post("/mentions", status_code=201)
async def add_mention(session: AsyncSession, actor: Actor, runtime: Runtime, data: MentionIn) -> dict[str, Any]:
    return monitoring.mention_out(await monitoring.add_manual(session, actor, data, runtime.clock))


@get("/mentions/{mention_id:str}")
async def get_mention(session: AsyncSession, actor: Actor, mention_id: FromPath[str]) -> dict[str, Any]:
    return monitoring.mention_out(await monitoring.get_mention(session, actor, mention_id))


@post("/mentions/{mention_id:str}/convert", status_code=201)
async def convert_mention(session: AsyncSession, actor: Actor, runtime: Runtime,
                          mention_id: FromPath[str]) -> dict[str, Any]:
    m = await monitoring.convert(session, actor, mention_id, settings=runtime.settings, clock=runtime.clock)
    return monitoring.mention_out(m)


@post("/mentions/{mention_id:str}/dismiss", status_code=200)
async def dismiss_mention(session: AsyncSession, actor: Actor, runtime: Runtime, mention_id: FromPath[str],
                          data: DismissIn) -> dict[str, Any]:
    return monitoring.mention_out(await monitoring.dismiss(session, actor, mention_id, data, runtime.clock))


@get("/monitoring/sources")
async def list_sources(session: AsyncSession, actor: Actor, deal_id: str | None = None) -> list[dict[str, Any]]:
    return [monitoring.source_out(s) for s in await monitoring.list_sources(session, actor, deal_id)]


@post("/monitoring/sources", status_code=201)
async def add_source(session: AsyncSession, actor: Actor, runtime: Runtime, data: SourceIn) -> dict[str, Any]:
    source = await monitoring.create_source(session, actor, data, settings=runtime.settings, clock=runtime.clock)
    out = monitoring.source_out(source)
    _wake(runtime)
    return out


@delete("/monitoring/sources/{source_id:str}", status_code=204)
async def delete_source(session: AsyncSession, actor: Actor, source_id: FromPath[str]) -> None:
    await monitoring.delete_source(session, actor, source_id)


@get("/monitoring/rules")
async def list_rules(session: AsyncSession, actor: Actor, deal_id: str | None = None) -> list[dict[str, Any]]:
    return [monitoring.rule_out(r) for r in await monitoring.list_rules(session, actor, deal_id)]


@post("/monitoring/rules", status_code=201)
async def add_rule(session: AsyncSession, actor: Actor, runtime: Runtime, data: KeywordRuleIn) -> dict[str, Any]:
    return monitoring.rule_out(await monitoring.create_rule(session, actor, data, runtime.clock))


@delete("/monitoring/rules/{keyword_rule_id:str}", status_code=204)
async def delete_rule(session: AsyncSession, actor: Actor, keyword_rule_id: FromPath[str]) -> None:
    await monitoring.delete_rule(session, actor, keyword_rule_id)


monitoring_routes = [list_mentions, mentions_summary, add_mention, get_mention, convert_mention, dismiss_mention,
                     list_sources, add_source, delete_source, list_rules, add_rule, delete_rule]
